"""CUHK02: see cuhk02_dataset_builder.py."""
