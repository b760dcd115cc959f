"""CUHK03: see cuhk03_dataset_builder.py."""
