"""synthetic_persons: a procedurally rendered re-ID dataset that needs no download.

``render`` draws the pedestrian crops (NumPy only); ``synthetic_persons_dataset_builder``
lays them out in Market-1501-style splits and writes them with TFDS.
"""
