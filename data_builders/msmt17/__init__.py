"""MSMT17: see msmt17_dataset_builder.py."""
