"""MARS (video): see mars_dataset_builder.py."""
