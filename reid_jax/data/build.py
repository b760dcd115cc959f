"""Prepares a re-ID dataset as TFDS ArrayRecord files, without TensorFlow.

Usage::

  python -m reid_jax.data.build cuhk01/p486_s0 --manual_dir ../shared/data/cuhk01
  python -m reid_jax.data.build synthetic_persons/tiny
  python -m reid_jax.data.build --list
  python -m reid_jax.data.build custom_folder --manual_dir DIR --config_name NAME \
      --pattern 'REGEX with (?P<pid>...) and (?P<cam>...)' [--num_test_ids N]

For each split it prints the number of images, identities and cameras, and at the end
where the files are and how long the build took. A problem with the user's data (missing
folder, wrong layout, unreadable image, wrong counts) ends the command with one line
``error: <message>`` on stderr and exit status 2.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Sequence

import tensorflow_datasets as tfds

from data_builders import common, registry
from data_builders.custom_folder import custom_folder_dataset_builder as custom_folder

_CHUNK = 1024


def split_stats(builder: tfds.core.DatasetBuilder, split: str) -> dict[str, int]:
    """Images, identities, cameras (and tracklets for video) of one prepared split.

    Read without decoding images.
    """
    source = builder.as_data_source(split, decoders={"image": tfds.decode.SkipDecoding()})
    video = "tracklet_id" in builder.info.features
    ids: set[int] = set()
    cams: set[int] = set()
    tracklets: set[int] = set()
    n = len(source)
    for start in range(0, n, _CHUNK):
        for ex in source.__getitems__(list(range(start, min(n, start + _CHUNK)))):
            ids.add(int(ex["person_id"]))
            cams.add(int(ex["camera_id"]))
            if video:
                tracklets.add(int(ex["tracklet_id"]))
    stats = {"images": n, "ids": len(ids), "cameras": len(cams)}
    if video:
        stats["tracklets"] = len(tracklets)
    return stats


def list_datasets() -> str:
    """One line per dataset in the registry with its configs."""
    lines = []
    for name in sorted(registry.MODULES):
        try:
            configs = registry.config_names(name)
            lines.append(f"{name}: {', '.join(configs) if configs else '(no configs)'}")
        except ImportError as e:
            lines.append(f"{name}: (builder not available: {e})")
    return "\n".join(lines)


def custom_config(args: argparse.Namespace) -> custom_folder.CustomConfig:
    """The custom_folder config described by the command-line flags."""
    return custom_folder.CustomConfig(
        name=args.config_name or args.domain,
        description=f"pattern={args.pattern!r}" if args.pattern else f"csv={args.csv!r}",
        pattern=args.pattern or "", csv=args.csv or "", domain=args.domain,
        num_test_ids=args.num_test_ids, split_index=args.split_index,
        query_camera=args.query_camera, camera_base=args.camera_base,
        encoding_format=args.encoding_format,
    )


def build(name: str, manual_dir: str | None, data_dir: str | None, overwrite: bool,
          config: tfds.core.BuilderConfig | None = None) -> str:
    """Prepares ``name`` and returns the report printed by the command."""
    # (builder.is_prepared() would log a warning for a copy that does not exist yet.)
    existing = registry.get_builder(name, data_dir=data_dir, config=config).data_dir
    reused = not overwrite and os.path.exists(os.path.join(existing, "dataset_info.json"))
    start = time.perf_counter()
    builder = registry.prepare(name, data_dir=data_dir, manual_dir=manual_dir, overwrite=overwrite,
                               config=config)
    seconds = time.perf_counter() - start
    lines = [f"{builder.name}/{builder.builder_config.name if builder.builder_config else ''}"]
    stats = {split: split_stats(builder, split) for split in builder.info.splits}
    columns = list(next(iter(stats.values()), {"images": 0, "ids": 0, "cameras": 0}))
    lines.append(f"{'split':<10}" + "".join(f" {c:>9}" for c in columns))
    for split, row in stats.items():
        lines.append(f"{split:<10}" + "".join(f" {row[c]:>9}" for c in columns))
    lines.append(f"written to {builder.data_dir}")
    lines.append("already prepared (--overwrite rebuilds it)" if reused else f"prepared in {seconds:.1f} s")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    """Command-line entry point; returns the exit status."""
    parser = argparse.ArgumentParser(
        prog="python -m reid_jax.data.build", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("name", nargs="?", help="dataset or dataset/config, e.g. cuhk01/p486_s0")
    parser.add_argument("--manual_dir", help="folder holding the manual download")
    parser.add_argument("--data_dir", help="where prepared datasets live "
                        "(default $TFDS_DATA_DIR or ~/tensorflow_datasets)")
    parser.add_argument("--overwrite", action="store_true", help="rebuild an existing copy")
    parser.add_argument("--list", action="store_true", help="list datasets and their configs")
    custom = parser.add_argument_group("custom_folder (see data_builders/custom_folder)")
    custom.add_argument("--pattern", help="regex over relative image paths, groups pid, cam or cam0.., split")
    custom.add_argument("--csv", help="CSV in the manual_dir: path,person_id,camera_id[,split]")
    custom.add_argument("--config_name", help="name of the prepared copy (default: --domain)")
    custom.add_argument("--domain", default="custom", help="dataset name stored in every example")
    custom.add_argument("--num_test_ids", type=int, default=0, help="hold out this many ids for query/gallery")
    custom.add_argument("--split_index", type=int, default=0, help="seed of the identity split")
    custom.add_argument("--query_camera", type=int, default=0, help="camera of the query images")
    custom.add_argument("--camera_base", type=int, default=1, help="subtracted from a cam group")
    custom.add_argument("--encoding_format", default="jpeg", choices=["jpeg", "png"])
    args = parser.parse_args(argv)
    if args.list:
        print(list_datasets())
        return 0
    if not args.name:
        parser.error("give a dataset name (or --list)")
    config = None
    if args.pattern or args.csv:
        if args.name.partition("/")[0] != custom_folder.Builder.name:
            parser.error("--pattern and --csv go with the custom_folder dataset")
        config = custom_config(args)
    try:
        print(build(args.name, args.manual_dir, args.data_dir, args.overwrite, config))
    except common.DatasetError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except ImportError as e:
        # A registered builder whose module is missing is a broken checkout, not bad data.
        print(f"error: the builder for {args.name!r} cannot be imported ({e}).", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
