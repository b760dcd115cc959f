"""CUHK-SYSU (cropped persons): see cuhk_sysu_dataset_builder.py."""
