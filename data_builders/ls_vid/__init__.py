"""LS-VID: see ls_vid_dataset_builder.py."""
