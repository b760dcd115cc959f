"""GRID: see grid_dataset_builder.py."""
