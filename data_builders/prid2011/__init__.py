"""PRID2011 single-shot: see prid2011_dataset_builder.py."""
