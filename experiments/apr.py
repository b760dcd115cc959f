r"""APR: attribute-person recognition (Lin et al., "Improving Person Re-identification by
Attribute and Identity Learning", Pattern Recognition 2019, arXiv:1703.07220).

A ResNet-50 embedding with the identity classifier and M binary attribute classifiers
(`model.num_attributes`, `reid_jax/models/attributes.py`); loss = CE_id +
attribute_weight * mean BCE over attributes (`reid_jax/losses/attribute.py`). The paper
writes it as lambda * L_id + (1 / M) sum L_att; attribute_weight = 1 / lambda, with
lambda = 8 as we read the paper (not verified against code). The trainer takes the
targets from `batch['attributes']` ([N, M] in {0, 1}, negative = unknown).
Attribute annotations: Market-1501 27 attributes per training identity
(vana77/Market-1501_Attribute; 'age' has 4 classes, one-hot it into 4 binary attributes
for M = 30), DukeMTMC 23 (vana77/DukeMTMC-attribute). NOT YET PROVIDED by the dataset
builders: until they are, a run with attribute_weight > 0 stops with an error naming
the missing 'attributes'; pass --config.loss.attribute_weight=0 to train ID only.
Published (from the paper as we read it; not in /work/shared/REFERENCE.md, verify before
quoting): Market-1501 rank-1 87.0 / mAP 66.9, DukeMTMC 73.9 / 55.6.

Commands (once a builder yields 'attributes'):
  python -m reid_jax.main --config experiments/apr.py:market1501 --workdir runs/apr_market \
      --config.model.init_from=/path/resnet50_flax

Arguments: as experiments/bot.py.
"""

from __future__ import annotations

import ml_collections

from experiments import bot

ARGS = bot.ARGS
# Binary attributes per dataset: Market-1501's 27 with 'age' one-hot (4) -> 30; Duke 23.
NUM_ATTRIBUTES = {"market1501": 30, "dukemtmc": 23}
# APR: lambda = 8 on the ID loss -> 1/8 on the attribute mean relative to it.
ATTRIBUTE_WEIGHT = 1.0 / 8.0


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
    """APR config for the dataset or variant named by ``arg``."""
    c = bot.get_config(arg)
    c.model.num_attributes = NUM_ATTRIBUTES.get(arg or "synthetic", 8)
    c.loss.attribute_weight = ATTRIBUTE_WEIGHT
    c.loss.triplet_weight = 0.0
    c.loss.center_weight = 0.0
    return c
