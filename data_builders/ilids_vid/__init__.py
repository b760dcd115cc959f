"""iLIDS-VID (video): see ilids_vid_dataset_builder.py."""
