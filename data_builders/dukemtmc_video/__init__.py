"""DukeMTMC-VideoReID: see dukemtmc_video_dataset_builder.py."""
