"""Tracklets of a video split and the clips a video network sees, as pure NumPy functions.

A video split (MARS, DukeMTMC-VideoReID, iLIDS-VID, PRID-2011, LS-VID, synthetic
tracklets) is stored frame by frame, each frame with its ``tracklet_id`` and
``frame_id``. :func:`of` groups the frames into :class:`Tracklets`; a video network
trains and is evaluated on *clips* of ``T`` frames of one tracklet:

- training (:func:`clip_batches`): P identities x K tracklets (the identity-balanced,
  camera-diverse ``samplers.pk_batches`` applied to tracklets) x T frames, the frames of
  each tracklet drawn by ``mode``:

  - ``'restricted_random'`` (Li et al., "Diversity Regularized Spatiotemporal Attention
    for Video-based Person Re-identification", CVPR 2018; baist/SINet and
    blue-blue272/BiCnet-TKS implement it): the tracklet is cut into T equal chunks and
    one random frame is taken from each, so a clip spans the whole tracklet;
  - ``'consecutive'`` (Gao and Nevatia, "Revisiting Temporal Modeling for Video-based
    Person ReID", 2018): T consecutive frames from a random start (every start with T
    frames after it; jiyanggao/Video-Person-ReID video_loader.py:42-58 never draws the
    last one);
  - ``'stride'`` (TKP's ``TemporalRandomCrop``, guxinqian/TKP
    transforms/temporal_transforms.py:72-109): T frames ``stride`` apart from a random
    start when the tracklet has T x stride frames or more, else T distinct random
    frames in order (with repetition below T frames);
  - ``'evenly'``: T evenly spaced frames (no randomness);

- test (:func:`test_clips`): ``'dense'``, every frame once, in consecutive chunks of T,
  the last chunk completed by repeating its own frames cyclically ([8, 9] -> [8, 9, 8,
  9]: jiyanggao/Video-Person-ReID video_loader.py:85-89), the clip features averaged
  per tracklet; or ``'evenly'``, one clip of T evenly spaced frames. TKP's test averages
  the features of all frames without padding (test.py:123-138): the same for temporal
  average pooling when T divides the tracklet.

A tracklet shorter than T repeats frames in every mode (each of the T chunks still gets
one frame, in temporal order). Restricted random sampling's chunks are
``[floor(k L / T), floor((k + 1) L / T))``; blue-blue272/BiCnet-TKS
(transforms/temporal_transforms.py:101-136) sizes them the same but puts the longer
chunks first, and draws T frames with replacement below T frames. Shapes are fixed
(every clip has T frames), so a jitted step compiles once. The same (seed, epoch) give
the same batches.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from reid_jax import errors
from reid_jax.data import samplers, sources

TRAIN_MODES = ("restricted_random", "consecutive", "stride", "evenly")
TEST_MODES = ("dense", "evenly")


@dataclasses.dataclass(frozen=True)
class Tracklets:
    """The tracklets of one split, in increasing tracklet id.

    Attributes:
      frames: per tracklet, its frames' indices into the split, in temporal order.
      person_ids: [n] identity of each tracklet.
      labels: [n] training label of each tracklet (-1 outside training splits).
      camera_ids: [n] camera of each tracklet.
    """

    frames: list[np.ndarray]
    person_ids: np.ndarray
    labels: np.ndarray
    camera_ids: np.ndarray

    def __len__(self) -> int:
        return len(self.frames)

    @property
    def lengths(self) -> np.ndarray:
        """[n] frames per tracklet."""
        return np.asarray([len(f) for f in self.frames], np.int64)

    def middle_frames(self) -> np.ndarray:
        """[n] the middle frame of each tracklet (the ranked-list picture's thumbnail)."""
        return np.asarray([f[len(f) // 2] for f in self.frames], np.int64)


def of(data: sources.ReidData) -> Tracklets:
    """Groups the frames of a video split into tracklets (frames ordered by frame id).

    Raises:
      errors.ReidError: when the split has no tracklet ids (an image dataset), or a
        tracklet mixes identities or cameras.
    """
    trk = data.tracklet_ids
    if trk is None or len(trk) == 0 or (trk < 0).any():
        raise errors.ReidError(
            f"{data.name} has no tracklet ids: a video network needs a video dataset "
            "(mars, dukemtmc_video, ilids_vid, prid2011_video, ls_vid, synthetic_persons/video)."
        )
    frame = data.frame_ids if data.frame_ids is not None else np.zeros_like(trk)
    order = np.lexsort((np.arange(len(trk)), frame, trk))  # by tracklet, then frame id
    ids, starts = np.unique(trk[order], return_index=True)
    groups = np.split(order, starts[1:])
    first = order[starts]
    for name, values in (("identities", data.person_ids), ("cameras", data.camera_ids)):
        mixed = [int(ids[i]) for i, g in enumerate(groups) if (values[g] != values[g[0]]).any()]
        if mixed:
            raise errors.ReidError(
                f"{data.name}: tracklet {mixed[0]} mixes {name}; rebuild the dataset "
                "(python -m reid_jax.data.build ...)."
            )
    return Tracklets(
        frames=[g.astype(np.int64) for g in groups],
        person_ids=data.person_ids[first],
        labels=data.labels[first],
        camera_ids=data.camera_ids[first],
    )


def _chunk_bounds(length: int, t: int) -> tuple[np.ndarray, np.ndarray]:
    """[t] start and end (exclusive) of T equal chunks of ``length`` frames; every chunk
    holds at least one frame (chunks share frames when length < T)."""
    lo = (np.arange(t) * length) // t
    hi = np.maximum(((np.arange(t) + 1) * length) // t, lo + 1)
    return lo, np.minimum(hi, length)


def sample_clip(
    rng: np.random.Generator, length: int, t: int, mode: str, stride: int = 8
) -> np.ndarray:
    """T positions (0-based, non-decreasing) in a tracklet of ``length`` frames.

    Args:
      rng: the generator ('evenly' draws nothing).
      length: frames in the tracklet.
      t: clip length T.
      mode: one of ``TRAIN_MODES`` (module docstring).
      stride: frames between the clip's frames with mode 'stride'.
    """
    if mode == "restricted_random":
        lo, hi = _chunk_bounds(length, t)
        return lo + (rng.random(t) * (hi - lo)).astype(np.int64)
    if mode == "consecutive":
        if length <= t:
            return np.minimum(np.arange(t), length - 1) if length < t else np.arange(t)
        start = int(rng.integers(0, length - t + 1))
        return start + np.arange(t)
    if mode == "stride":
        if length >= t * stride:
            return int(rng.integers(0, length - t * stride + 1)) + stride * np.arange(t)
        return np.sort(rng.choice(length, size=t, replace=length < t))
    if mode == "evenly":
        return np.round(np.linspace(0, length - 1, t)).astype(np.int64)
    raise errors.ReidError(f"unknown clip sampling {mode!r}; choose one of {', '.join(TRAIN_MODES)}.")


def steps_per_epoch(tracks: Tracklets, p: int, k: int) -> int:
    """P x K batches of tracklets in one epoch (every tracklet about once)."""
    return samplers.steps_per_epoch(tracks.labels, p, k)


def clip_batches(
    tracks: Tracklets, p: int, k: int, t: int, seed: int, epoch: int, num_batches: int,
    mode: str = "restricted_random", stride: int = 8,
) -> np.ndarray:
    """One epoch of training clips: P identities x K tracklets x T frames per batch.

    Args:
      tracks: the training tracklets (label >= 0 are drawn).
      p, k: identities per batch, tracklets per identity.
      t: frames per clip.
      seed, epoch: fix the result.
      num_batches: batches to draw.
      mode: frame sampling within a tracklet (``TRAIN_MODES``).
      stride: frames between a clip's frames with mode 'stride'.

    Returns:
      int64 [num_batches, p * k * t] frame indices; row b holds P x K clips, each T
      consecutive entries of one tracklet in temporal order, K clips per identity
      consecutive (the layout ``samplers.pk_batches`` gives pictures).
    """
    rows = samplers.pk_batches(tracks.labels, tracks.camera_ids, p, k, seed, epoch, num_batches)
    rng = np.random.default_rng([seed, epoch, 3])  # 3: a stream apart from the samplers'
    lengths = tracks.lengths
    out = np.empty((rows.shape[0], p * k * t), np.int64)
    for b, row in enumerate(rows):
        out[b] = np.concatenate([
            tracks.frames[i][sample_clip(rng, int(lengths[i]), t, mode, stride)] for i in row])
    return out


def clip_labels(values: np.ndarray, t: int) -> np.ndarray:
    """Per-clip values (labels, cameras) from per-frame ones laid out clip by clip."""
    return values[..., ::t]


def test_clips(tracks: Tracklets, t: int, mode: str = "dense") -> tuple[np.ndarray, np.ndarray]:
    """The clips a tracklet is embedded from at test time.

    Args:
      tracks: the tracklets.
      t: frames per clip.
      mode: 'dense' (every frame once, in chunks of T; the last chunk completed by
        repeating its own frames) or 'evenly' (one clip of T evenly spaced frames).

    Returns:
      (clips [m, t] frame indices, owner [m] tracklet of each clip, every tracklet
      owning at least one clip).
    """
    if mode not in TEST_MODES:
        raise errors.ReidError(f"unknown test clip sampling {mode!r}; choose one of "
                               f"{', '.join(TEST_MODES)}.")
    clips, owner = [], []
    for i, frames in enumerate(tracks.frames):
        n = len(frames)
        if mode == "evenly":
            clips.append(frames[np.round(np.linspace(0, n - 1, t)).astype(np.int64)][None])
            owner.append(i)
            continue
        m = -(-n // t)
        pos = np.arange(m * t)
        last = (m - 1) * t  # the last chunk's first frame; it repeats its own frames
        pos[last:] = last + np.arange(t) % (n - last)
        clips.append(frames[pos].reshape(m, t))
        owner.extend([i] * m)
    return np.concatenate(clips), np.asarray(owner, np.int64)


def mean_by_owner(features: np.ndarray, owner: np.ndarray, num: int) -> np.ndarray:
    """[num, d] mean of the clip features of each tracklet (float64 sums)."""
    sums = np.zeros((num, features.shape[1]), np.float64)
    np.add.at(sums, owner, features)
    counts = np.bincount(owner, minlength=num)
    return (sums / np.maximum(counts, 1)[:, None]).astype(np.float32)
