"""PRID-2011 multi-shot (video): see prid2011_video_dataset_builder.py."""
