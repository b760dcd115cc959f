"""reid_jax: person re-identification in JAX/Flax.

Importing the package sets one XLA flag for the CPU backend before JAX starts it (see
``xla_cpu_flags``); the flag is left alone if ``XLA_FLAGS`` already names it.
"""

from __future__ import annotations

import os
from importlib import metadata

# XLA:CPU in jaxlib 0.10 hands convolutions to YNNPACK by default; on the BoT step of
# ResNet-18/w32 at 128x64 (batch 64, 2 Intel cores) Eigen's convolutions make the whole
# step 1.45x faster, chiefly the kernel gradients of the narrow layers and the 7x7 stem
# (benchmarks/conv_vs_torch.py prints both per layer). YNNPACK keeps the dots and
# reductions, where it is the faster. The flag is read only by the CPU backend.
CPU_FLAG = "--xla_cpu_experimental_ynn_fusion_type=-individual_convolution"


def xla_cpu_flags() -> None:
    """Adds ``CPU_FLAG`` to ``XLA_FLAGS`` unless the variable already sets that option.

    Has an effect only before JAX creates its CPU backend (the first array or device
    query); ``import reid_jax`` calls it. Set ``XLA_FLAGS=--xla_cpu_experimental_ynn_fusion_type=``
    (any value) to choose otherwise. Checked with jaxlib 0.10; older ones are left as they are.
    """
    try:  # an XLA that does not know the flag would refuse to start: add it where checked
        major, minor = (int(v) for v in metadata.version("jaxlib").split(".")[:2])
    except (metadata.PackageNotFoundError, ValueError):
        return
    flags = os.environ.get("XLA_FLAGS", "")
    if (major, minor) >= (0, 10) and CPU_FLAG.split("=")[0] not in flags:
        os.environ["XLA_FLAGS"] = f"{flags} {CPU_FLAG}".strip()


xla_cpu_flags()
