"""DukeMTMC-reID: see dukemtmc_reid_dataset_builder.py."""
