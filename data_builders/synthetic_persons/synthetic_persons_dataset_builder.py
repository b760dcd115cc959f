"""TFDS builder for synthetic_persons: rendered pedestrians in Market-1501-style splits.

Nothing is downloaded: every crop is drawn by :mod:`render` from the config's seed, so two
builds of the same config give identical bytes. The layout follows Market-1501:

- ``train`` and the test splits use disjoint identities; person ids start at 1 and
  ``person_id == 0`` marks a distractor (a random person who is in no query).
- Each identity appears in at least two cameras, with a few images per camera.
- ``query`` holds one image per (test identity, camera) for a random subset of that
  identity's cameras, always leaving at least one camera with gallery images only, so
  every query has a cross-camera match.
- ``gallery`` holds every other image of the test identities (same-camera images of a
  query's identity included: the evaluation protocol ignores them, as in Market-1501)
  plus the distractors.
- ``label`` is 0..N-1 on a training split and -1 elsewhere; ``camera_id`` is 0-based.

Every image has ``attributes``: 8 binary attributes of its identity (``ATTRIBUTE_NAMES``,
defined by :func:`attributes` from the drawn :class:`render.Identity`, so they are exact
and identity-level like Market-1501's annotations; distractors have theirs too). They are
derived from the identity already drawn for the picture: adding them (version 1.1.0)
changed no pixel.

Video configs (``video``, ``video_tiny``; added within version 1.1.0, the image configs
unchanged) follow MARS: every frame is an example with ``tracklet_id`` (0..n-1 within a
split, in the order written) and ``frame_id`` (0..T-1), frames written in temporal order,
a tracklet's frames one after the other. A tracklet is one person walking in one camera
(:func:`tracklet_render.render_tracklet`: fixed background and viewpoint, gait, drift, sometimes a
passing occluder). The identity and camera rules are those of the images, per tracklet:
``train`` holds every tracklet of the training identities; ``query`` one tracklet per
(test identity, camera) for a random proper subset of its cameras; ``gallery`` every other
test tracklet plus distractor tracklets (``person_id == 0``, a fresh random person each)
and junk tracklets (``person_id == -1``: bad detections, mostly background or a body
part, as MARS's junk). Frame files are named ``<pid>_c<cam>_t<tracklet>_f<frame>.png``.
The people are those of the image configs with the same seed (same identity stream).

Multi-domain configs render K domains, each with its own style family (backgrounds,
lighting, colour casts, body proportions, camera count) and its own identities, into
splits ``train_d{k}``, ``query_d{k}``, ``gallery_d{k}`` with ``domain == "synthetic_d{k}"``.
Labels are contiguous within each ``train_d{k}``.

Build: ``registry.prepare("synthetic_persons/tiny")``, or ``tfds build
data_builders/synthetic_persons --config tiny`` where TensorFlow is installed.
"""

from __future__ import annotations

import dataclasses
import io
from collections.abc import Iterator
from typing import NamedTuple

import numpy as np
import tensorflow_datasets as tfds
from PIL import Image

from data_builders import common
from data_builders.synthetic_persons import render, tracklet_render

# The attributes every example carries, in order (see `attributes`).
ATTRIBUTE_NAMES = (
    "backpack",  # a backpack (seen from behind or the side)
    "shoulder_bag",  # a bag on a strap across the chest
    "hat",
    "top_dark",  # top colour black or navy
    "bottom_dark",  # trousers / shorts black or navy
    "top_patterned",  # horizontal or vertical stripes, or checks, on the top
    "top_logo",  # a logo on the chest (seen from the front)
    "shorts",  # short lower-body clothing
)
# The two palette colours far darker than the rest (luma about 29 and 50 of 255; the
# next darkest, red and brown, are near 80).
DARK_COLOURS = (render.COLOUR_NAMES.index("black"), render.COLOUR_NAMES.index("navy"))

# First entries after (seed, domain) of every generator's seed, so that no two streams
# of random numbers (a camera, a person, a layout, an image) can coincide.
_CAMERA, _IDENTITY, _LAYOUT, _IMAGE, _DISTRACTOR = range(5)
# The video configs' own streams: their layout, their tracklets, their junk people.
_VIDEO_LAYOUT, _TRACKLET, _JUNK = range(5, 8)


@dataclasses.dataclass(eq=False)
class SyntheticPersonsConfig(tfds.core.BuilderConfig):
    """Sizes, image shape, domains and seed of a synthetic_persons build.

    Identity and image counts are per domain.
    """

    num_train_ids: int = 300
    num_test_ids: int = 300
    images_per_id_per_cam: tuple[int, int] = (1, 4)  # inclusive range
    cameras_per_id: tuple[int, int] = (2, 6)  # inclusive range, capped by the camera count
    num_cameras: int = 6
    domain_cameras: tuple[int, ...] = ()  # per-domain camera counts; () = num_cameras each
    height: int = 128
    width: int = 64
    num_domains: int = 1
    num_distractors: int = 400  # images, or tracklets in a video config
    seed: int = 0
    # Video configs: MARS-style tracklets instead of single images.
    video: bool = False
    tracklets_per_id_per_cam: tuple[int, int] = (1, 2)  # inclusive range
    frames_per_tracklet: tuple[int, int] = (8, 16)  # inclusive range
    num_junk: int = 0  # junk tracklets (person_id -1) in the gallery


class Item(NamedTuple):
    """One image to render: who, which camera, which of that person's images."""

    person_id: int  # 0 for a distractor
    camera_id: int
    index: int  # the person's image number (the distractor number for person 0)
    label: int  # -1 outside training splits


class Tracklet(NamedTuple):
    """One tracklet to render: who, which camera, which of that person's tracklets."""

    person_id: int  # 0 for a distractor, -1 for junk
    camera_id: int
    index: int  # the person's tracklet number (the distractor / junk number for 0 / -1)
    label: int  # -1 outside training splits
    num_frames: int


def num_cameras(config: SyntheticPersonsConfig, domain: int) -> int:
    """The camera count of a domain."""
    return config.domain_cameras[domain] if config.domain_cameras else config.num_cameras


def split_names(config: SyntheticPersonsConfig, domain: int) -> tuple[str, str, str]:
    """The (train, query, gallery) split names of a domain."""
    suffix = f"_d{domain}" if config.num_domains > 1 else ""
    return (f"train{suffix}", f"query{suffix}", f"gallery{suffix}")


def domain_name(config: SyntheticPersonsConfig, domain: int) -> str:
    """The ``domain`` feature of a domain's examples."""
    return f"synthetic_d{domain}" if config.num_domains > 1 else "synthetic"


def file_name(config: SyntheticPersonsConfig, domain: int, item: Item) -> str:
    """A unique name per image, Market-style: ``<pid>_c<cam>_<index>.png``."""
    prefix = f"d{domain}/" if config.num_domains > 1 else ""
    return f"{prefix}{item.person_id:05d}_c{item.camera_id}_{item.index:04d}.png"


def tracklet_file_name(
    config: SyntheticPersonsConfig, domain: int, tracklet: Tracklet, frame: int
) -> str:
    """A unique name per frame, MARS-like: ``<pid>_c<cam>_t<tracklet>_f<frame>.png``.

    The person id has five characters with its sign: ``00012``, ``00000`` (distractor),
    ``-0001`` (junk).
    """
    prefix = f"d{domain}/" if config.num_domains > 1 else ""
    t = tracklet
    return f"{prefix}{t.person_id:05d}_c{t.camera_id}_t{t.index:04d}_f{frame:03d}.png"


def _camera_range(config: SyntheticPersonsConfig, domain: int) -> tuple[int, int, int]:
    """(cameras of the domain, fewest and most cameras per identity)."""
    cams = num_cameras(config, domain)
    if cams < 2:
        raise common.DatasetError(f"synthetic_persons: domain {domain} needs >= 2 cameras.")
    # Every identity is seen by two cameras or more, as in Market-1501.
    hi_c = max(2, min(config.cameras_per_id[1], cams))
    lo_c = max(2, min(config.cameras_per_id[0], hi_c))
    return cams, lo_c, hi_c


def plan(config: SyntheticPersonsConfig, domain: int) -> dict[str, list[Item]]:
    """Lays out one domain's images into its train, query and gallery splits.

    Args:
      config: the build config.
      domain: 0-based domain index.

    Returns:
      split name -> the items of that split, in a fixed order.
    """
    cams, lo_c, hi_c = _camera_range(config, domain)
    lo_n, hi_n = config.images_per_id_per_cam
    first = 1 + domain * (config.num_train_ids + config.num_test_ids)
    train_name, query_name, gallery_name = split_names(config, domain)
    splits: dict[str, list[Item]] = {train_name: [], query_name: [], gallery_name: []}

    for k in range(config.num_train_ids + config.num_test_ids):
        pid = first + k
        rng = np.random.default_rng([config.seed, domain, _LAYOUT, pid])
        id_cams = np.sort(rng.choice(cams, int(rng.integers(lo_c, hi_c + 1)), replace=False))
        counts = rng.integers(lo_n, hi_n + 1, size=len(id_cams))
        items = [(int(c), int(n)) for c, count in zip(id_cams, counts) for n in range(int(count))]
        if k < config.num_train_ids:
            splits[train_name] += [Item(pid, c, i, k) for i, (c, _) in enumerate(items)]
            continue
        # At least one camera keeps all its images in the gallery: the cross-camera match.
        query_cams = set(
            int(c) for c in rng.choice(id_cams, int(rng.integers(1, len(id_cams))), replace=False)
        )
        for i, (c, n) in enumerate(items):
            split = query_name if (c in query_cams and n == 0) else gallery_name
            splits[split].append(Item(pid, c, i, -1))

    rng = np.random.default_rng([config.seed, domain, _LAYOUT, 0])
    splits[gallery_name] += [
        Item(0, int(c), j, -1)
        for j, c in enumerate(rng.integers(cams, size=config.num_distractors))
    ]
    return splits


def plan_tracklets(config: SyntheticPersonsConfig, domain: int) -> dict[str, list[Tracklet]]:
    """Lays out one domain's tracklets into its train, query and gallery splits.

    The rules of :func:`plan`, per tracklet: each identity is seen by two cameras or
    more, with ``tracklets_per_id_per_cam`` tracklets in each; a test identity's first
    tracklet in each of a random proper subset of its cameras is a query.

    Args:
      config: a video build config.
      domain: 0-based domain index.

    Returns:
      split name -> the tracklets of that split, in the order they are written.
    """
    cams, lo_c, hi_c = _camera_range(config, domain)
    lo_t, hi_t = config.tracklets_per_id_per_cam
    lo_f, hi_f = config.frames_per_tracklet
    if not 1 <= lo_t <= hi_t or not 1 <= lo_f <= hi_f:
        raise common.DatasetError(
            "synthetic_persons: tracklets_per_id_per_cam and frames_per_tracklet must be "
            f"ranges (lo, hi) with 1 <= lo <= hi; got {config.tracklets_per_id_per_cam} and "
            f"{config.frames_per_tracklet}."
        )
    first = 1 + domain * (config.num_train_ids + config.num_test_ids)
    train_name, query_name, gallery_name = split_names(config, domain)
    splits: dict[str, list[Tracklet]] = {train_name: [], query_name: [], gallery_name: []}

    for k in range(config.num_train_ids + config.num_test_ids):
        pid = first + k
        rng = np.random.default_rng([config.seed, domain, _VIDEO_LAYOUT, pid])
        id_cams = np.sort(rng.choice(cams, int(rng.integers(lo_c, hi_c + 1)), replace=False))
        counts = rng.integers(lo_t, hi_t + 1, size=len(id_cams))
        tracks = [(int(c), n) for c, count in zip(id_cams, counts) for n in range(int(count))]
        lengths = rng.integers(lo_f, hi_f + 1, size=len(tracks))
        if k < config.num_train_ids:
            splits[train_name] += [
                Tracklet(pid, c, i, k, int(t)) for i, ((c, _), t) in enumerate(zip(tracks, lengths))
            ]
            continue
        # At least one camera keeps all its tracklets in the gallery: the cross-camera match.
        query_cams = set(
            int(c) for c in rng.choice(id_cams, int(rng.integers(1, len(id_cams))), replace=False)
        )
        for i, ((c, n), t) in enumerate(zip(tracks, lengths)):
            split = query_name if (c in query_cams and n == 0) else gallery_name
            splits[split].append(Tracklet(pid, c, i, -1, int(t)))

    rng = np.random.default_rng([config.seed, domain, _VIDEO_LAYOUT, 0])
    for pid, count in ((0, config.num_distractors), (-1, config.num_junk)):
        where = rng.integers(cams, size=count)
        lengths = rng.integers(lo_f, hi_f + 1, size=count)
        splits[gallery_name] += [
            Tracklet(pid, int(c), j, -1, int(t)) for j, (c, t) in enumerate(zip(where, lengths))
        ]
    return splits


def cameras(config: SyntheticPersonsConfig, domain: int) -> list[render.CameraStyle]:
    """The fixed camera styles of a domain."""
    style = render.domain_style(domain, config.num_domains)
    return [
        render.sample_camera(np.random.default_rng([config.seed, domain, _CAMERA, c]), style, c)
        for c in range(num_cameras(config, domain))
    ]


def identity(config: SyntheticPersonsConfig, domain: int, item: Item) -> render.Identity:
    """The person an item shows (a fresh random person for each distractor)."""
    if item.person_id == 0:
        seed = [config.seed, domain, _DISTRACTOR, item.index]
    else:
        seed = [config.seed, domain, _IDENTITY, item.person_id]
    style = render.domain_style(domain, config.num_domains)
    return render.sample_identity(np.random.default_rng(seed), style)


def tracklet_identity(
    config: SyntheticPersonsConfig, domain: int, tracklet: Tracklet
) -> render.Identity:
    """The person a tracklet shows: the identity's, or a fresh random person for a
    distractor (as :func:`identity`) or a junk tracklet (from its own stream)."""
    if tracklet.person_id >= 0:
        return identity(config, domain, Item(tracklet.person_id, 0, tracklet.index, -1))
    style = render.domain_style(domain, config.num_domains)
    rng = np.random.default_rng([config.seed, domain, _JUNK, 0, tracklet.index])
    return render.sample_identity(rng, style)


def attributes(person: render.Identity) -> np.ndarray:
    """The ``ATTRIBUTE_NAMES`` of a person as int8 0/1, read off its fields (no random draw)."""
    return np.array(
        [
            person.backpack >= 0,
            person.bag >= 0,
            person.hat >= 0,
            person.top in DARK_COLOURS,
            person.bottom in DARK_COLOURS,
            person.top_texture in (render.HSTRIPES, render.VSTRIPES, render.CHECKS),
            person.top_texture == render.LOGO,
            person.shorts,
        ],
        np.int8,
    )


def render_item(
    config: SyntheticPersonsConfig,
    domain: int,
    item: Item,
    camera_styles: list[render.CameraStyle] | None = None,
) -> np.ndarray:
    """Renders one planned image as a uint8 (height, width, 3) array.

    Args:
      config: the build config.
      domain: the item's domain.
      item: from :func:`plan`.
      camera_styles: :func:`cameras` of the domain (computed when not given).
    """
    if camera_styles is None:
        camera_styles = cameras(config, domain)
    person = identity(config, domain, item)
    rng = np.random.default_rng([config.seed, domain, _IMAGE, item.person_id, item.index])
    return render.render(person, camera_styles[item.camera_id], rng, config.height, config.width)


def render_tracklet_item(
    config: SyntheticPersonsConfig,
    domain: int,
    tracklet: Tracklet,
    camera_styles: list[render.CameraStyle] | None = None,
) -> list[np.ndarray]:
    """Renders one planned tracklet as ``num_frames`` uint8 (height, width, 3) arrays.

    Args:
      config: the build config.
      domain: the tracklet's domain.
      tracklet: from :func:`plan_tracklets`.
      camera_styles: :func:`cameras` of the domain (computed when not given).
    """
    if camera_styles is None:
        camera_styles = cameras(config, domain)
    person = tracklet_identity(config, domain, tracklet)
    junk = tracklet.person_id < 0
    if junk:
        seed = [config.seed, domain, _JUNK, 1, tracklet.index]
    else:
        seed = [config.seed, domain, _TRACKLET, tracklet.person_id, tracklet.index]
    return tracklet_render.render_tracklet(
        person,
        camera_styles[tracklet.camera_id],
        np.random.default_rng(seed),
        config.height,
        config.width,
        tracklet.num_frames,
        junk=junk,
    )


def encode_png(image: np.ndarray) -> io.BytesIO:
    """PNG bytes of a uint8 image, as a file object TFDS stores without TensorFlow."""
    buf = io.BytesIO()
    Image.fromarray(image).save(buf, format="PNG", compress_level=1)
    buf.seek(0)
    return buf


class Builder(tfds.core.GeneratorBasedBuilder):
    """synthetic_persons: rendered pedestrians, Market-1501 conventions, no download."""

    name = "synthetic_persons"
    VERSION = tfds.core.Version("1.1.0")
    RELEASE_NOTES = {
        "1.0.0": "Initial release.",
        "1.1.0": "Per-image 'attributes' (8 binary attributes of the identity); images unchanged.",
    }
    BUILDER_CONFIGS = [
        SyntheticPersonsConfig(
            name="tiny",
            description="8 + 8 identities, 4 cameras, 64x32: for tests.",
            num_train_ids=8,
            num_test_ids=8,
            images_per_id_per_cam=(1, 3),
            cameras_per_id=(2, 4),
            num_cameras=4,
            height=64,
            width=32,
            num_distractors=10,
        ),
        SyntheticPersonsConfig(
            name="default",
            description="300 + 300 identities, 6 cameras, 128x64: the demo dataset.",
        ),
        SyntheticPersonsConfig(
            name="large",
            description="As default at 256x128.",
            height=256,
            width=128,
        ),
        SyntheticPersonsConfig(
            name="multidomain",
            description="4 rendering domains of 100 + 100 identities, 6/4/5/3 cameras, 128x64.",
            num_train_ids=100,
            num_test_ids=100,
            domain_cameras=(6, 4, 5, 3),
            num_domains=4,
            num_distractors=150,
        ),
        SyntheticPersonsConfig(
            name="multidomain_tiny",
            description="4 rendering domains of 6 + 6 identities, 4/3/4/2 cameras, 64x32.",
            num_train_ids=6,
            num_test_ids=6,
            images_per_id_per_cam=(1, 2),
            cameras_per_id=(2, 4),
            domain_cameras=(4, 3, 4, 2),
            height=64,
            width=32,
            num_domains=4,
            num_distractors=6,
        ),
        SyntheticPersonsConfig(
            name="video",
            description=(
                "Tracklets of 150 + 150 identities, 6 cameras, 1-2 tracklets per identity "
                "and camera, 8-16 frames, 128x64: the video demo dataset."
            ),
            num_train_ids=150,
            num_test_ids=150,
            cameras_per_id=(2, 6),
            num_distractors=60,
            video=True,
            tracklets_per_id_per_cam=(1, 2),
            frames_per_tracklet=(8, 16),
            num_junk=20,
        ),
        SyntheticPersonsConfig(
            name="video_tiny",
            description="Tracklets of 8 + 8 identities, 4 cameras, 4-8 frames, 64x32: for tests.",
            num_train_ids=8,
            num_test_ids=8,
            cameras_per_id=(2, 4),
            num_cameras=4,
            height=64,
            width=32,
            num_distractors=3,
            video=True,
            tracklets_per_id_per_cam=(1, 2),
            frames_per_tracklet=(4, 8),
            num_junk=2,
        ),
    ]
    DEFAULT_CONFIG_NAME = "default"

    def _info(self) -> tfds.core.DatasetInfo:
        video = self.builder_config.video
        return tfds.core.DatasetInfo(
            builder=self,
            description=__doc__,
            features=common.reid_features(
                "png", video=video, num_attributes=len(ATTRIBUTE_NAMES)
            ),
            # Video splits keep the order written (tracklet by tracklet, frames in order);
            # image splits are shuffled by key as before.
            disable_shuffling=video,
        )

    def _split_generators(self, dl_manager: tfds.download.DownloadManager) -> dict:
        del dl_manager  # nothing to download
        config = self.builder_config
        generators = {}
        for domain in range(config.num_domains):
            if config.video:
                for split, tracklets in plan_tracklets(config, domain).items():
                    generators[split] = self._generate_tracklets(domain, tracklets)
                continue
            for split, items in plan(config, domain).items():
                generators[split] = self._generate_examples(domain, items)
        return generators

    def _generate_tracklets(
        self, domain: int, tracklets: list[Tracklet]
    ) -> Iterator[tuple[int, dict]]:
        """Every frame of every tracklet, in order; the key is the frame's position."""
        config = self.builder_config
        styles = cameras(config, domain)
        name = domain_name(config, domain)
        key = 0
        for tracklet_id, t in enumerate(tracklets):
            person_attributes = attributes(tracklet_identity(config, domain, t))
            for frame_id, frame in enumerate(render_tracklet_item(config, domain, t, styles)):
                file_name = tracklet_file_name(config, domain, t, frame_id)
                yield (
                    key,
                    common.make_example(
                        encode_png(frame), t.person_id, t.camera_id, file_name, name,
                        label=t.label, tracklet_id=tracklet_id, frame_id=frame_id,
                        attributes=person_attributes,
                    ),
                )
                key += 1

    def _generate_examples(self, domain: int, items: list[Item]) -> Iterator[tuple[str, dict]]:
        config = self.builder_config
        styles = cameras(config, domain)
        name = domain_name(config, domain)
        for item in items:
            key = file_name(config, domain, item)
            image = encode_png(render_item(config, domain, item, styles))
            # identity() draws from its own seeded generator: calling it again here changes
            # no other stream, so the pixels are those of version 1.0.0.
            person = identity(config, domain, item)
            yield (
                key,
                common.make_example(
                    image, item.person_id, item.camera_id, key, name, label=item.label,
                    attributes=attributes(person),
                ),
            )
