r"""BoT with an IBN-Net-a backbone (ResNet-50-IBN-a).

The BoT recipe of experiments/bot.py with `model.norm='ibn_a'`: InstanceNorm on half the
channels of the first norm of every block in stages 1-3 (Pan et al., "Two at Once:
Enhancing Learning and Generalization Capacities via IBN-Net", ECCV 2018; see
`reid_jax/models/resnet.py`).
Published (BoT ResNet-50-IBN-a, Luo et al. reid-strong-baseline): Market-1501 rank-1 95.0 /
mAP 88.2, DukeMTMC 90.1 / 79.1 (ImageNet-pretrained IBN-a weights; import them with
`python -m reid_jax.tools.import_torch` and set `--config.model.init_from`).

Commands:
  python -m reid_jax.main --config experiments/bot_ibn.py:synthetic --workdir runs/bot_ibn_synth
  python -m reid_jax.main --config experiments/bot_ibn.py:cuhk01 --workdir runs/bot_ibn_cuhk01
  python -m reid_jax.main --config experiments/bot_ibn.py:market1501 --workdir runs/bot_ibn_market \
      --config.model.init_from=/path/resnet50_ibn_a_flax

Arguments: as experiments/bot.py (synthetic, synthetic_tiny, cuhk01, cuhk01_full, market1501, ...).
"""

from __future__ import annotations

import ml_collections

from experiments import bot

ARGS = bot.ARGS


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
    """BoT-IBN-a config for the dataset or variant named by ``arg``."""
    c = bot.get_config(arg)
    c.model.norm = "ibn_a"
    c.model.stem_relu = True  # the IBN-a backbone of reid-strong-baseline keeps its ReLU
    return c
