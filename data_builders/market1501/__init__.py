"""Market-1501: see market1501_dataset_builder.py."""
