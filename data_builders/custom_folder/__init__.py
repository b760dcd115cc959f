"""Any re-ID folder described by a file-name pattern or a CSV: see custom_folder_dataset_builder.py."""
