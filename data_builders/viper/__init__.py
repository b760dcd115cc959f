"""VIPeR: see viper_dataset_builder.py."""
