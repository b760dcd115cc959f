"""Tracklets of one walking person (the video configs of synthetic_persons).

:func:`render_tracklet` draws the frames of one tracklet with :mod:`render`'s person,
background and camera: the background, viewpoint and facing fixed for the tracklet, a
gait cycle, smooth position and scale drift, sometimes a passing occluder, per-frame
noise and, in a few frames, motion blur.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from data_builders.synthetic_persons import render

# The mean of render.CameraStyle.occlusion (uniform on [0.05, 0.3] in sample_camera): a camera
# with the mean occlusion has a passing occluder in OCCLUDED_TRACKLETS of its tracklets.
_MEAN_OCCLUSION = 0.175
OCCLUDED_TRACKLETS = 0.4
MOTION_BLUR_FRAMES = 0.12  # fraction of frames with extra motion blur
GAIT_PERIOD = (6.0, 10.0)  # frames per stride, uniform range


def _motion_blur(img: np.ndarray, length: int) -> np.ndarray:
    """Horizontal box blur over ``length`` pixels (edges replicated): a fast horizontal move."""
    if length <= 1:
        return img
    w = img.shape[1]
    left = (length - 1) // 2
    p = np.pad(img, ((0, 0), (left, length - 1 - left), (0, 0)), mode="edge")
    return sum(p[:, i : i + w] for i in range(length)) / np.float32(length)


@dataclasses.dataclass(frozen=True)
class _Occluder:
    """Something passing between the camera and the person (a pole, a cart, a passer-by)."""

    colour: np.ndarray
    y0: float  # rows covered: y0 to the bottom of the crop
    width: float
    start: float  # the frame at which its leading edge enters the crop
    frames: float  # how many frames it takes to cross the crop
    direction: int  # +1 moving right, -1 moving left

    def draw(self, img: np.ndarray, t: int) -> None:
        """Draws the occluder where it is at frame ``t`` (nothing once it is out of the crop)."""
        h, w = img.shape[:2]
        travel = (w + self.width) * (t - self.start) / self.frames
        x0 = travel - self.width if self.direction > 0 else w - travel
        render._rect(img, self.y0, h, x0, x0 + self.width, self.colour)


def _occluder(
    cam: render.CameraStyle, rng: np.random.Generator, height: int, width: int, num_frames: int
) -> _Occluder:
    """A passing occluder that covers part of the crop in some frames of a tracklet."""
    colour = cam.clutter[rng.integers(len(cam.clutter))] * np.float32(rng.uniform(0.6, 0.95))
    if rng.random() < 0.5:  # a tall thing: a pole, a person walking by
        y0, ow = height * rng.uniform(0.0, 0.3), width * rng.uniform(0.15, 0.45)
    else:  # a low thing: a cart, a bench, a railing at the legs
        y0, ow = height * rng.uniform(0.55, 0.8), width * rng.uniform(0.5, 0.9)
    # It enters at a random frame and crosses in a fraction of the tracklet, so that
    # only some frames are occluded.
    start = num_frames * rng.uniform(-0.2, 0.6)
    frames = max(2.0, num_frames * rng.uniform(0.35, 0.75))
    return _Occluder(colour, y0, ow, start, frames, 1 if rng.random() < 0.5 else -1)


def render_tracklet(
    identity: render.Identity,
    camera: render.CameraStyle,
    rng: np.random.Generator,
    height: int,
    width: int,
    num_frames: int,
    junk: bool = False,
) -> list[np.ndarray]:
    """Renders a tracklet: consecutive crops of ``identity`` walking in front of ``camera``.

    What stays fixed over the tracklet: the background (wall, ground, clutter), the
    viewpoint and facing, the gain. What changes from frame to frame: the gait phase (a
    stride every 6-10 frames from a random start), a small smooth drift of the box (a few
    percent in position and size) with sub-pixel jitter, the sensor noise, extra motion
    blur on some frames, and in some tracklets an occluder crossing the crop over a few
    frames. The camera's fixed resolution loss and blur apply to every frame.

    Args:
      identity: the person.
      camera: the camera's fixed style.
      rng: the per-tracklet generator.
      height: crop height in pixels (a multiple of 4).
      width: crop width in pixels (a multiple of 4).
      num_frames: how many frames to render.
      junk: a bad detection instead (as MARS's junk tracklets): no person, a person cut
        by the crop's edge, a crop far too close (a body part) or one far too wide.

    Returns:
      ``num_frames`` uint8 arrays of shape (height, width, 3), in temporal order.
    """
    background = np.empty((height, width, 3), np.float32)
    render._background(background, camera, rng)
    view = (
        camera.main_view if rng.random() < 0.7 else int((camera.main_view + rng.integers(1, 3)) % 3)
    )
    mirrored = view == render.SIDE and rng.random() < 0.5  # walking to the left
    size = identity.height * camera.scale * rng.uniform(0.93, 1.05)
    u = height * min(size, 0.97)
    feet = height * rng.uniform(0.975, 1.0) - rng.uniform(0, height - u) * 0.15
    cx = width * (0.5 + rng.normal(0, 0.05))
    # The detector's box follows the walker, not exactly: a smooth drift over the tracklet.
    grow = rng.uniform(-0.05, 0.05)
    shift = width * rng.uniform(-0.06, 0.06)
    period = rng.uniform(*GAIT_PERIOD)
    phase = rng.uniform(0.0, 2.0 * np.pi)
    drawn = True
    if junk:
        kind = int(rng.integers(4))
        drawn = kind != 0  # 0: background only
        if kind == 1:  # cut by the edge: mostly background
            cx = width * rng.uniform(-0.4, -0.15)
            cx = cx if rng.random() < 0.5 else width - cx
        elif kind == 2:  # far too close: a part of the body fills the crop
            u = height * rng.uniform(1.5, 2.3)
            feet = height * rng.uniform(1.1, 1.9)
        elif kind == 3:  # far too wide: a small person somewhere in the crop
            u = height * rng.uniform(0.3, 0.5)
            feet = rng.uniform(u, height)
            cx = width * rng.uniform(0.15, 0.85)
    occlusion = min(1.0, OCCLUDED_TRACKLETS * camera.occlusion / _MEAN_OCCLUSION)
    occluder = (
        _occluder(camera, rng, height, width, num_frames) if rng.random() < occlusion else None
    )
    gain = (camera.brightness * rng.uniform(0.92, 1.08) * camera.cast).astype(np.float32)
    ref = height / 128.0

    frames = []
    for t in range(num_frames):
        f = t / max(1, num_frames - 1)
        img = background.copy()
        if drawn:
            ut = u * (1.0 + grow * f)
            ft = feet + rng.normal(0, 0.004 * height)
            ct = cx + shift * f + rng.normal(0, 0.006 * width)
            render._person(img, identity, view, ft - ut, ft, ct, gait=phase + 2.0 * np.pi * t / period)
        if mirrored:
            img = img[:, ::-1]
        if occluder is not None:
            occluder.draw(img, t)
        img = img * gain
        if rng.random() < MOTION_BLUR_FRAMES:
            img = _motion_blur(img, int(round(rng.uniform(2.0, 5.0) * ref)) + 1)
        img = render._optics(img, camera)
        if camera.noise > 0:
            img = img + rng.normal(0.0, camera.noise, img.shape).astype(np.float32)
        frames.append(render._to_uint8(img))
    return frames
