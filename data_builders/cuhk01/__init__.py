"""CUHK01: see cuhk01_dataset_builder.py (module ``Builder``, configs p486_s0..p100_s9)."""
