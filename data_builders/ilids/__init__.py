"""QMUL iLIDS: see ilids_dataset_builder.py."""
