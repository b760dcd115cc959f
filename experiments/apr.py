r"""APR: attribute-person recognition (Lin et al., "Improving Person Re-identification by
Attribute and Identity Learning", Pattern Recognition 2019, arXiv:1703.07220).

A ResNet-50 embedding with the identity classifier and M binary attribute classifiers
(`model.num_attributes`, `reid_jax/models/attributes.py`); loss = CE_id +
attribute_weight * mean BCE over attributes (`reid_jax/losses/attribute.py`). The paper
writes it as lambda * L_id + (1 / M) sum L_att; attribute_weight = 1 / lambda, with
lambda = 8 as we read the paper (not verified against code). The trainer takes the
targets from `batch['attributes']` ([N, M] in {0, 1}, -1 unknown), which the data
pipeline reads from the dataset's `attributes` feature:
- Market-1501: 27 identity-level attributes of Lin et al. (`market_attribute.mat` from
  github.com/vana77/Market-1501_Attribute), 'age' one-hot into 4 -> M = 30;
- DukeMTMC-reID: 23 (`duke_attribute.mat` from github.com/vana77/DukeMTMC-attribute);
- synthetic_persons: 8 exact attributes of the rendered identity (backpack, shoulder bag,
  hat, dark top, dark bottom, patterned top, logo, shorts).
Put the .mat file into the dataset's --manual_dir and build (data_builders/README.md);
built without it, every attribute is unknown and training stops with an error naming the
missing labels. CUHK01 (and the other datasets) have no attribute annotations. The
`cuhk01+synthetic` variant trains CUHK01's identities together with the rendered
synthetic_persons identities, whose 8 attributes are the only attribute labels (CUHK01's
pictures count as unknown and take no attribute loss); it is evaluated on CUHK01 and is
compared with the same mix at `--config.loss.attribute_weight=0`. Its epoch is CUHK01's
alone (30 batches), so a run costs what the other CUHK01 rows cost.
Published (from the paper as we read it; not in /work/shared/REFERENCE.md, verify before
quoting): Market-1501 rank-1 87.0 / mAP 66.9, DukeMTMC 73.9 / 55.6.

Commands:
  python -m reid_jax.main --config experiments/apr.py:synthetic --workdir runs/apr_synth
  python -m reid_jax.main --config experiments/apr.py:cuhk01+synthetic --workdir runs/apr_cuhk01
  python -m reid_jax.data.build market1501 --manual_dir DIR  # DIR: the images + market_attribute.mat
  python -m reid_jax.main --config experiments/apr.py:market1501 --workdir runs/apr_market \
      --config.model.init_from=/path/resnet50_flax

Arguments: synthetic, synthetic_tiny (tests), market1501, dukemtmc, cuhk01+synthetic.
"""

from __future__ import annotations

import ml_collections

from experiments import bot, common

# Binary attributes per dataset: Market-1501's 27 with 'age' one-hot (4) -> 30; Duke 23;
# synthetic_persons 8 (data_builders/synthetic_persons, ATTRIBUTE_NAMES).
NUM_ATTRIBUTES = {"synthetic": 8, "synthetic_tiny": 8, "market1501": 30, "dukemtmc": 23,
                  "cuhk01+synthetic": 8}
# cuhk01+synthetic: the attribute-labelled pictures added to CUHK01's training split, and the
# number of P x K batches of CUHK01's own epoch (485 ids x 4 pictures / (16 x 4)).
ATTRIBUTE_SOURCE = "synthetic_persons/default:train"
CUHK01_STEPS_PER_EPOCH = 30
ARGS = tuple(NUM_ATTRIBUTES)
# APR: lambda = 8 on the ID loss -> 1/8 on the attribute mean relative to it.
ATTRIBUTE_WEIGHT = 1.0 / 8.0


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
    """APR config for the dataset or variant named by ``arg``."""
    arg = common.parse_arg(arg, "synthetic", ARGS)
    c = bot.get_config(arg.split("+")[0])
    if arg == "cuhk01+synthetic":
        c.data.train = f"{c.data.dataset}:train,{ATTRIBUTE_SOURCE}"
        c.data.steps_per_epoch = CUHK01_STEPS_PER_EPOCH
    c.model.num_attributes = NUM_ATTRIBUTES[arg]
    c.loss.attribute_weight = ATTRIBUTE_WEIGHT
    c.loss.triplet_weight = 0.0
    c.loss.center_weight = 0.0
    return c
