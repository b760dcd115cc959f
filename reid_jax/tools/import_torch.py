"""Converts PyTorch ResNet weights (torchvision / IBN-Net layout) for `init_from`.

    python -m reid_jax.tools.import_torch --in resnet50.pth --out weights/resnet50_flax
    python -m reid_jax.tools.import_torch --in resnet50_ibn_a.pth --out DIR --norm ibn_a

Then train with `--config.model.init_from=DIR`. Every tensor's name and shape is
checked against our ResNet (`reid_jax.models.load_torch`); a mismatch is one `error:`
line and exit status 2. Reading .pth files needs PyTorch (`pip install -e '.[torch]'`).
"""

from __future__ import annotations

import argparse
import os
import sys

from reid_jax import errors
from reid_jax.models import load_torch, resnet


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Command-line arguments.

    Args:
        argv: arguments without the program name; None reads sys.argv.

    Returns:
        The parsed namespace (in_path, out, backbone, norm, width, stage_sizes).
    """
    parser = argparse.ArgumentParser(
        prog="python -m reid_jax.tools.import_torch", description=__doc__.splitlines()[0]
    )
    parser.add_argument("--in", dest="in_path", required=True, help="PyTorch .pth state_dict")
    parser.add_argument("--out", required=True, help="output directory")
    parser.add_argument("--backbone", default="resnet50", choices=sorted(resnet.BACKBONES))
    parser.add_argument("--norm", default="bn", choices=resnet.NORMS)
    parser.add_argument("--width", type=int, default=64, help="base width (tests use 8)")
    parser.add_argument(
        "--stage_sizes", default="", help="blocks per stage, e.g. 1,1,1,1 (default: backbone's)"
    )
    return parser.parse_args(argv)


def run(
    in_path: str,
    out: str,
    backbone: str = "resnet50",
    norm: str = "bn",
    width: int = 64,
    stage_sizes: list[int] | None = None,
) -> str:
    """Reads, converts, checks and writes the weights.

    Args:
        in_path: PyTorch checkpoint.
        out: output directory.
        backbone: a key of `resnet.BACKBONES`.
        norm: 'bn', 'ibn_a' or 'ibn_b'.
        width: base width of the ResNet.
        stage_sizes: blocks per stage; None for the backbone's.

    Returns:
        A one-line summary.
    """
    state_dict = load_torch.read_torch_file(in_path)
    shapes = load_torch.resnet_shapes(backbone, norm=norm, width=width, stage_sizes=stage_sizes)
    variables = load_torch.convert(state_dict, shapes)
    dropped = sorted(n for n in state_dict if load_torch.flax_path(n, 0) is None)
    path = load_torch.save(
        variables,
        out,
        {
            "source": os.path.abspath(in_path),
            "backbone": backbone,
            "norm": norm,
            "width": width,
            "stage_sizes": stage_sizes,
        },
    )
    kept = len(state_dict) - len(dropped)
    classifier = [n for n in dropped if n.startswith(load_torch.SKIPPED_PREFIXES)]
    return (
        f"converted {kept} tensors of {backbone} ({norm}) to {path}; dropped "
        f"{len(dropped) - len(classifier)} num_batches_tracked and classifier {classifier}"
    )


def main(argv: list[str] | None = None) -> None:
    """CLI entry point: prints a summary, or one `error:` line and exits with status 2.

    Args:
        argv: arguments without the program name; None reads sys.argv.
    """
    args = parse_args(argv)
    try:
        stage_sizes = [int(n) for n in args.stage_sizes.split(",")] if args.stage_sizes else None
        print(run(args.in_path, args.out, args.backbone, args.norm, args.width, stage_sizes))
    except errors.ReidError as e:
        print(f"error: {e}", file=sys.stderr)
        sys.exit(2)


if __name__ == "__main__":
    main()
