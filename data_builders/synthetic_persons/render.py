"""A small procedural renderer of pedestrian crops, in NumPy only.

A person is an :class:`Identity`: body proportions, clothing colours from a deliberately
small palette, textures on the top and bottom, and accessories. A camera is a
:class:`CameraStyle`: the viewpoint it mostly sees (front, back or side), its lighting and
colour cast, blur and resolution loss, its background and how often something occludes
the person. :func:`render` draws one crop of an identity seen by a camera, adding per-image
jitter (pose position, scale, viewpoint, background clutter, occlusion) from an explicit
``numpy.random.Generator``, so the same generator state always gives the same pixels.
:func:`render_tracklet` draws a short video of one person walking past a camera (fixed
background and viewpoint, a gait cycle, a drifting box, sometimes a passing occluder), for
MARS-like tracklets; single images are drawn standing, unchanged by it.

The palette has only nine clothing colours and colours repeat across identities, so a
colour histogram cannot tell many people apart: the textures (stripes, checks, a chest
logo seen only from the front), the proportions and the accessories (a backpack seen only
from behind or the side, a shoulder bag, a hat) are what separates them.

Drawing works on a float32 HxWx3 array in [0, 1] with slices and small boolean masks over
bounding boxes; nothing loops over pixels.
"""

from __future__ import annotations

import dataclasses

import numpy as np

# Nine clothing colours (RGB in [0, 1]); dark and neutral ones are the most common, as on a
# real street, which makes many identities share their top or bottom colour.
PALETTE = (
    np.array(
        [
            [28, 28, 32],  # black
            [222, 222, 218],  # white
            [120, 122, 126],  # grey
            [172, 34, 40],  # red
            [32, 48, 110],  # navy
            [44, 118, 64],  # green
            [214, 182, 48],  # yellow
            [112, 72, 42],  # brown
            [96, 140, 196],  # light blue
        ],
        np.float32,
    )
    / 255.0
)
COLOUR_NAMES = ("black", "white", "grey", "red", "navy", "green", "yellow", "brown", "lightblue")
TOP_WEIGHTS = np.array([3, 2, 2, 1.2, 1.5, 1, 0.8, 0.8, 1.2]) / 13.5
BOTTOM_WEIGHTS = np.array([4, 0.5, 2, 0.4, 2.5, 0.4, 0.3, 1, 2.4]) / 13.5
SHOE_WEIGHTS = np.array([5, 3, 1, 0.3, 0.5, 0.2, 0.2, 1.5, 0.3]) / 12.0
SKIN = np.array([[236, 196, 170], [200, 150, 112], [150, 100, 70], [96, 62, 42]], np.float32) / 255
HAIR = np.array([[20, 16, 14], [84, 52, 30], [180, 140, 80], [140, 140, 140]], np.float32) / 255

TEXTURES = ("plain", "hstripes", "vstripes", "checks", "logo")
PLAIN, HSTRIPES, VSTRIPES, CHECKS, LOGO = range(len(TEXTURES))
VIEWS = ("front", "back", "side")
FRONT, BACK, SIDE = range(len(VIEWS))

# Background families: walls, ground and clutter colours a domain draws from.
BACKGROUNDS = {
    "street": [[150, 150, 148], [110, 112, 115], [180, 176, 168], [90, 92, 96], [160, 150, 140]],
    "park": [[70, 120, 60], [100, 140, 80], [120, 100, 70], [60, 90, 50], [150, 160, 120]],
    "mall": [[210, 196, 170], [190, 170, 140], [230, 220, 200], [160, 130, 100], [200, 180, 150]],
    "night": [[30, 36, 60], [50, 56, 80], [20, 24, 40], [70, 70, 90], [40, 48, 70]],
}


@dataclasses.dataclass(frozen=True)
class DomainStyle:
    """The family a rendering domain draws its cameras and people from."""

    backgrounds: np.ndarray  # (n, 3) wall/ground/clutter colours
    brightness: tuple[float, float]  # range of a camera's gain
    cast: float  # std of a camera's per-channel colour gain
    cast_bias: tuple[float, float, float]  # domain-wide per-channel gain
    height_mean: float  # mean fraction of the crop height a person fills
    shoulder_mean: float  # mean shoulder width / person height


@dataclasses.dataclass(frozen=True)
class CameraStyle:
    """A camera's fixed look; every image from it adds random jitter on top."""

    main_view: int  # FRONT, BACK or SIDE: the viewpoint this camera sees most
    brightness: float
    cast: np.ndarray  # (3,) per-channel gain
    blur: int  # blur strength: Gaussian variance of blur / 2 px^2 at 128 px height
    downscale: int  # resolution loss factor at 128 px height (1 = none)
    wall: np.ndarray  # (3,)
    ground: np.ndarray  # (3,)
    horizon: float  # fraction of the height where the ground starts
    clutter: np.ndarray  # (k, 3) colours of background objects
    num_clutter: int
    occlusion: float  # probability of an occluding box
    noise: float  # std of pixel noise
    scale: float  # mean person size (distance to the camera)


@dataclasses.dataclass(frozen=True)
class Identity:
    """What makes a person recognisable across cameras."""

    height: float  # fraction of the crop height the person fills
    shoulder: float  # shoulder width / person height
    leg: float  # leg length / person height
    head: float  # head height / person height
    top: int  # PALETTE indices
    bottom: int
    shoes: int
    top_texture: int  # index into TEXTURES
    top_second: int  # second colour of the top texture (or of the logo)
    bottom_texture: int  # PLAIN, HSTRIPES, VSTRIPES or CHECKS
    bottom_second: int
    period: float  # stripe period / person height
    short_sleeves: bool
    shorts: bool
    skin: int  # SKIN index
    hair: int  # HAIR index
    long_hair: bool
    hat: int  # PALETTE index, -1 for none
    backpack: int  # PALETTE index, -1 for none
    bag: int  # PALETTE index, -1 for none
    bag_side: int  # 0: the person's right shoulder, 1: the left


def domain_style(domain: int, num_domains: int) -> DomainStyle:
    """The style family of a rendering domain.

    Args:
      domain: 0-based domain index.
      num_domains: how many domains the dataset has; with one domain, cameras draw from
        every background family (a mixed "campus"), with several each domain has its own.
    """
    if num_domains == 1:
        return DomainStyle(
            backgrounds=np.concatenate([np.array(v, np.float32) for v in BACKGROUNDS.values()])
            / 255,
            brightness=(0.7, 1.25),
            cast=0.09,
            cast_bias=(1.0, 1.0, 1.0),
            height_mean=0.85,
            shoulder_mean=0.25,
        )
    family = ("street", "park", "mall", "night")[domain % 4]
    params = {
        "street": ((0.85, 1.15), 0.06, (1.0, 1.0, 1.0), 0.86, 0.25),
        "park": ((0.95, 1.3), 0.08, (1.04, 1.06, 0.92), 0.80, 0.28),
        "mall": ((0.8, 1.05), 0.10, (1.1, 1.0, 0.82), 0.89, 0.22),
        "night": ((0.5, 0.75), 0.12, (0.85, 0.95, 1.2), 0.84, 0.25),
    }[family]
    return DomainStyle(np.array(BACKGROUNDS[family], np.float32) / 255, *params)


def sample_camera(rng: np.random.Generator, style: DomainStyle, camera: int) -> CameraStyle:
    """Draws the fixed style of camera ``camera`` of a domain."""
    bg = style.backgrounds
    clutter = np.concatenate([bg[rng.choice(len(bg), 3)], PALETTE[rng.choice(len(PALETTE), 2)]])
    cast = np.clip(1.0 + rng.normal(0.0, style.cast, 3), 0.7, 1.3) * np.array(style.cast_bias)
    return CameraStyle(
        main_view=camera % 3,
        brightness=float(rng.uniform(*style.brightness)),
        cast=cast.astype(np.float32),
        blur=int(rng.choice([0, 1, 2, 3])),
        downscale=int(rng.choice([1, 2, 4], p=[0.4, 0.45, 0.15])),
        wall=bg[rng.integers(len(bg))],
        ground=bg[rng.integers(len(bg))] * 0.85,
        horizon=float(rng.uniform(0.55, 0.85)),
        clutter=clutter.astype(np.float32),
        num_clutter=int(rng.integers(1, 6)),
        occlusion=float(rng.uniform(0.05, 0.3)),
        # Sensor noise on about a third of the cameras only: noisy pixels triple the PNG size.
        noise=float(rng.uniform(0.008, 0.02)) if rng.random() < 0.35 else 0.0,
        scale=float(rng.uniform(0.9, 1.02)),
    )


def _other(rng: np.random.Generator, colour: int) -> int:
    """A palette index different from ``colour``."""
    return int((colour + rng.integers(1, len(PALETTE))) % len(PALETTE))


def sample_identity(rng: np.random.Generator, style: DomainStyle) -> Identity:
    """Draws a person: proportions from the domain's distribution, clothes from the palette."""
    n = len(PALETTE)
    top = int(rng.choice(n, p=TOP_WEIGHTS))
    bottom = int(rng.choice(n, p=BOTTOM_WEIGHTS))
    return Identity(
        height=float(np.clip(rng.normal(style.height_mean, 0.035), 0.72, 0.96)),
        shoulder=float(np.clip(rng.normal(style.shoulder_mean, 0.03), 0.17, 0.34)),
        leg=float(np.clip(rng.normal(0.46, 0.03), 0.38, 0.53)),
        head=float(rng.uniform(0.11, 0.15)),
        top=top,
        bottom=bottom,
        shoes=int(rng.choice(n, p=SHOE_WEIGHTS)),
        top_texture=int(rng.choice(len(TEXTURES), p=[0.36, 0.16, 0.14, 0.14, 0.2])),
        top_second=_other(rng, top),
        bottom_texture=int(rng.choice(4, p=[0.76, 0.06, 0.08, 0.1])),
        bottom_second=_other(rng, bottom),
        period=float(rng.uniform(0.025, 0.055)),
        short_sleeves=bool(rng.random() < 0.35),
        shorts=bool(rng.random() < 0.25),
        skin=int(rng.integers(len(SKIN))),
        hair=int(rng.integers(len(HAIR))),
        long_hair=bool(rng.random() < 0.3),
        hat=int(rng.integers(n)) if rng.random() < 0.2 else -1,
        backpack=int(rng.integers(n)) if rng.random() < 0.3 else -1,
        bag=int(rng.integers(n)) if rng.random() < 0.3 else -1,
        bag_side=int(rng.integers(2)),
    )


# ----------------------------------------------------------------------------- drawing


def _box(img: np.ndarray, y0: float, y1: float, x0: float, x1: float) -> tuple[int, int, int, int]:
    """Rounds and clips a box to the image."""
    h, w = img.shape[:2]
    return (
        max(0, int(round(y0))),
        min(h, int(round(y1))),
        max(0, int(round(x0))),
        min(w, int(round(x1))),
    )


def _rect(img: np.ndarray, y0: float, y1: float, x0: float, x1: float, colour: np.ndarray) -> None:
    a, b, c, d = _box(img, y0, y1, x0, x1)
    if b > a and d > c:
        img[a:b, c:d] = colour


def _pattern(
    img: np.ndarray,
    box: tuple[float, float, float, float],
    c1: np.ndarray,
    c2: np.ndarray,
    texture: int,
    period: int,
    origin: tuple[float, float] | None = None,
) -> None:
    """Fills a box with a plain, striped or checked pattern of two colours.

    The stripes start at ``origin`` (y, x), the box's top-left corner by default; pieces of
    one garment drawn as several boxes pass the garment's origin to keep the stripes aligned.
    """
    y0, y1, x0, x1 = box
    oy, ox = (y0, x0) if origin is None else origin
    a, b, c, d = _box(img, y0, y1, x0, x1)
    if b <= a or d <= c:
        return
    region = img[a:b, c:d]
    region[...] = c1
    if texture in (PLAIN, LOGO):
        return
    rows = ((np.arange(a, b) - int(round(oy))) // period % 2)[:, None] == 1
    cols = ((np.arange(c, d) - int(round(ox))) // period % 2)[None, :] == 1
    mask = {
        HSTRIPES: rows & np.ones_like(cols),
        VSTRIPES: cols & np.ones_like(rows),
        CHECKS: rows ^ cols,
    }[texture]
    region[mask] = c2


def _ellipse(
    img: np.ndarray,
    cy: float,
    cx: float,
    ry: float,
    rx: float,
    colour: np.ndarray,
    y_max: float | None = None,
) -> None:
    """Fills an ellipse, optionally only the part above ``y_max``."""
    a, b, c, d = _box(img, cy - ry, cy + ry + 1, cx - rx, cx + rx + 1)
    if b <= a or d <= c:
        return
    yy = np.arange(a, b, dtype=np.float32)[:, None] + 0.5
    xx = np.arange(c, d, dtype=np.float32)[None, :] + 0.5
    mask = ((yy - cy) / ry) ** 2 + ((xx - cx) / rx) ** 2 <= 1.0
    if y_max is not None:
        mask &= yy < y_max
    img[a:b, c:d][mask] = colour


def _line(
    img: np.ndarray,
    p0: tuple[float, float],
    p1: tuple[float, float],
    width: float,
    colour: np.ndarray,
) -> None:
    """Draws a straight strap from ``p0`` to ``p1`` (points as (y, x))."""
    (ya, xa), (yb, xb) = p0, p1
    a, b, c, d = _box(img, min(ya, yb), max(ya, yb), min(xa, xb) - width, max(xa, xb) + width)
    if b <= a or d <= c:
        return
    yy = np.arange(a, b, dtype=np.float32)[:, None] + 0.5
    xx = np.arange(c, d, dtype=np.float32)[None, :] + 0.5
    x_on_line = xa + (yy - ya) * (xb - xa) / max(yb - ya, 1e-3)
    img[a:b, c:d][np.abs(xx - x_on_line) <= width / 2] = colour


def _blur(img: np.ndarray, sigma: float) -> np.ndarray:
    """Separable Gaussian blur of standard deviation ``sigma`` pixels (edges replicated)."""
    if sigma <= 0.3:
        return img
    r = int(np.ceil(2.5 * sigma))
    k = np.exp(-0.5 * (np.arange(-r, r + 1) / sigma) ** 2)
    k = (k / k.sum()).astype(np.float32)
    h, w = img.shape[:2]
    p = np.pad(img, ((r, r), (0, 0), (0, 0)), mode="edge")
    img = sum(k[i] * p[i : i + h] for i in range(2 * r + 1))
    p = np.pad(img, ((0, 0), (r, r), (0, 0)), mode="edge")
    return sum(k[i] * p[:, i : i + w] for i in range(2 * r + 1))


def _upsample_linear(small: np.ndarray, factor: int) -> np.ndarray:
    """Linear interpolation by an integer factor along both image axes."""
    for axis in (0, 1):
        n = small.shape[axis]
        pos = (np.arange(n * factor, dtype=np.float32) + 0.5) / factor - 0.5
        base = np.floor(pos)
        t = pos - base
        i0 = np.clip(base.astype(np.int64), 0, n - 1)
        i1 = np.clip(base.astype(np.int64) + 1, 0, n - 1)
        shape = (-1, 1, 1) if axis == 0 else (1, -1, 1)
        a, b = np.take(small, i0, axis=axis), np.take(small, i1, axis=axis)
        small = a + (b - a) * t.reshape(shape)
    return small


def _downscale_upscale(img: np.ndarray, factor: int) -> np.ndarray:
    """Loses resolution: block-average by ``factor``, then interpolate back up."""
    h, w = img.shape[:2]
    while factor > 1 and (h % factor or w % factor):
        factor //= 2
    if factor <= 1:
        return img
    # Summing strided views is much faster than a mean over the axes of a 5-d reshape.
    small = sum(img[i::factor, j::factor] for i in range(factor) for j in range(factor))
    return _upsample_linear(small / (factor * factor), factor)


def _optics(img: np.ndarray, cam: CameraStyle) -> np.ndarray:
    """The camera's fixed resolution loss and blur (scaled to the crop height)."""
    ref = img.shape[0] / 128.0
    img = _downscale_upscale(img, max(1, int(round(cam.downscale * ref))))
    return _blur(img, np.sqrt(0.5 * cam.blur) * ref)


def _to_uint8(img: np.ndarray) -> np.ndarray:
    return (np.clip(img, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)


def _background(img: np.ndarray, cam: CameraStyle, rng: np.random.Generator) -> None:
    """Wall with a vertical gradient, ground, and a few random objects (clutter)."""
    h, w = img.shape[:2]
    horizon = int(h * np.clip(cam.horizon + rng.normal(0, 0.04), 0.4, 0.95))
    shade = np.linspace(1.08, 0.9, horizon, dtype=np.float32)[:, None, None]
    wall = np.clip(cam.wall + rng.normal(0, 0.03, 3), 0, 1).astype(np.float32)
    img[:horizon] = wall * shade
    ground = np.clip(cam.ground + rng.normal(0, 0.03, 3), 0, 1).astype(np.float32)
    img[horizon:] = ground * np.linspace(0.9, 1.05, h - horizon, dtype=np.float32)[:, None, None]
    for _ in range(cam.num_clutter + int(rng.integers(0, 3))):
        colour = cam.clutter[rng.integers(len(cam.clutter))] * rng.uniform(0.8, 1.15)
        if rng.random() < 0.4:  # a pole or a door frame
            x = rng.uniform(0, w)
            bw = rng.uniform(0.04, 0.15) * w
            _rect(
                img, rng.uniform(0, 0.3) * h, horizon + rng.uniform(0, 0.2) * h, x, x + bw, colour
            )
        else:  # a window, a sign, a parked thing
            y = rng.uniform(0, 0.9) * h
            x = rng.uniform(-0.2, 0.9) * w
            _rect(img, y, y + rng.uniform(0.05, 0.3) * h, x, x + rng.uniform(0.15, 0.6) * w, colour)


def _limb(
    img: np.ndarray,
    top: float,
    split: float,
    end: float,
    x0: float,
    w: float,
    swing: float,
    cloth: tuple[np.ndarray, np.ndarray],
    skin: np.ndarray,
    texture: int = PLAIN,
    period: int = 2,
) -> None:
    """Draws a swinging arm or leg as horizontal bands, sheared about its top (the joint).

    Args:
      img: the picture.
      top: the joint's row.
      split: where the clothing ends and skin starts (``end`` or below: no skin).
      end: the row of the hand or the ankle.
      x0: the left column of the limb hanging straight.
      w: its width.
      swing: how far the far end (row ``end``) is moved sideways, in pixels.
      cloth: the clothing's two colours (``texture`` as in :func:`_pattern`).
      skin: the colour below ``split`` (drawn 10% narrower on each side, as a bare arm).
      texture: the clothing's texture.
      period: stripe period in pixels.
    """
    # Six bands approximate the slanted limb closely enough at 64-256 px crops.
    ys = np.linspace(top, end, 7)
    for y0, y1 in zip(ys[:-1], ys[1:]):
        xa = x0 + swing * ((y0 + y1) / 2 - top) / max(end - top, 1e-3)
        if y0 < split:
            box = (y0, min(y1, split), xa, xa + w)
            _pattern(img, box, cloth[0], cloth[1], texture, period, origin=(top, xa))
        if y1 > split:
            _rect(img, max(y0, split), y1, xa + 0.1 * w, xa + 0.9 * w, skin)


def _strides(gait: float, side: bool, u: float) -> list[tuple[float, float, float]]:
    """(leg swing, foot lift, hand lift) of the picture's left and right leg and arm.

    From the side the legs swing back and forth in opposition (the one swinging forward
    lifts its foot); from the front or back the swing is towards or away from the camera,
    seen as each foot and the opposite hand rising in turn.
    """
    out = []
    for sign in (-1.0, 1.0):
        if side:
            swing = sign * 0.12 * u * np.sin(gait)
            lift = 0.03 * u * max(0.0, sign * np.cos(gait))
            out.append((swing, lift, 0.0))
        else:
            s = sign * np.sin(gait)
            out.append((0.0, 0.035 * u * max(0.0, s), 0.05 * u * max(0.0, -s)))
    return out


def _person(
    img: np.ndarray,
    p: Identity,
    view: int,
    top: float,
    feet: float,
    cx: float,
    gait: float | None = None,
) -> None:
    """Draws the person between rows ``top`` and ``feet``, centred on column ``cx``.

    Args:
      img: the float32 picture to draw on.
      p: the person.
      view: FRONT, BACK or SIDE (a side view faces right).
      top: the row of the top of the head.
      feet: the row of the soles.
      cx: the body's centre column.
      gait: None draws the standing pose of single images; a walking phase in radians
        swings the legs and arms (a full stride every 2 pi).
    """
    u = feet - top  # person height in pixels
    c = PALETTE
    skin, hair = SKIN[p.skin], HAIR[p.hair]
    side = view == SIDE
    sw = p.shoulder * u * (0.55 if side else 1.0)
    head_h = p.head * u
    head_w = head_h * (0.82 if side else 0.74)
    neck = top + head_h
    torso_top = neck + 0.02 * u
    hip = feet - p.leg * u
    shoe_h = 0.035 * u
    period = max(2, int(round(p.period * u)))
    dark = 0.6

    # Backpack behind the body: seen as a block sticking out at the back from the side.
    if p.backpack >= 0 and side:
        _rect(
            img,
            torso_top + 0.02 * u,
            torso_top + 0.62 * (hip - torso_top),
            cx - sw / 2 - 0.11 * u,
            cx - sw / 2 + 1,
            c[p.backpack],
        )
    # Long hair hangs behind the shoulders.
    if p.long_hair:
        hw = head_w * (1.1 if view == BACK else 0.95)
        x0 = cx - hw / 2 - (0.2 * head_w if side else 0)
        _rect(img, top + 0.4 * head_h, torso_top + 0.25 * (hip - torso_top), x0, x0 + hw, hair)

    # Legs, with shorts or trousers, then shoes.
    leg_top = hip + 0.06 * u
    knee = hip + 0.45 * (feet - hip)
    if side:
        leg_w = 0.45 * p.shoulder * u
        legs = [(cx - 0.35 * leg_w - leg_w / 2, dark), (cx + 0.35 * leg_w - leg_w / 2, 1.0)]
    else:
        leg_w = 0.42 * sw
        gap = 0.08 * sw
        legs = [(cx - gap / 2 - leg_w, 1.0), (cx + gap / 2, 1.0)]
    strides = None if gait is None else _strides(gait, side, u)
    for k, (x0, tone) in enumerate(legs):
        if strides is not None:
            swing, lift = strides[k][:2]
            foot = feet - lift
            _limb(
                img,
                leg_top - 1,
                knee if p.shorts else foot - shoe_h,
                foot - shoe_h,
                x0,
                leg_w,
                swing,
                (c[p.bottom] * tone, c[p.bottom_second] * tone),
                skin * tone,
                p.bottom_texture,
                period,
            )
            toe = 0.35 * leg_w if side else 0.1 * leg_w
            x1 = x0 + swing
            _rect(img, foot - shoe_h, foot, x1 - 0.1 * leg_w, x1 + leg_w + toe, c[p.shoes] * tone)
            continue
        low = knee if p.shorts else feet - shoe_h
        _pattern(
            img,
            (leg_top - 1, low, x0, x0 + leg_w),
            c[p.bottom] * tone,
            c[p.bottom_second] * tone,
            p.bottom_texture,
            period,
        )
        if p.shorts:
            _rect(img, knee, feet - shoe_h, x0 + 0.1 * leg_w, x0 + 0.9 * leg_w, skin * tone)
        toe = 0.35 * leg_w if side else 0.1 * leg_w
        _rect(img, feet - shoe_h, feet, x0 - 0.1 * leg_w, x0 + leg_w + toe, c[p.shoes] * tone)
    _pattern(
        img,
        (
            hip - 1,
            leg_top,
            cx - 0.47 * (sw if not side else 0.9 * leg_w * 2),
            cx + 0.47 * (sw if not side else 0.9 * leg_w * 2),
        ),
        c[p.bottom],
        c[p.bottom_second],
        p.bottom_texture,
        period,
    )

    # Arms (sleeves, then skin below short sleeves, then hands).
    arm_w = 0.065 * u
    arm_end = hip + 0.06 * u
    sleeve_end = torso_top + (0.35 if p.short_sleeves else 0.92) * (arm_end - torso_top)
    arms = [cx - arm_w / 2 + 0.05 * u] if side else [cx - sw / 2 - arm_w + 1, cx + sw / 2 - 1]
    for k, x0 in enumerate(arms):
        if strides is not None:
            # From the side this is the far arm, swinging with the near leg; from the front
            # or back an arm swinging towards or away from the camera looks shorter.
            swing = 0.8 * strides[1][0] if side else 0.0
            arm_top = torso_top + 0.01 * u
            short = 1.0 - strides[k][2] / (arm_end - arm_top)
            end = arm_top + short * (arm_end - arm_top)
            split = arm_top + short * (sleeve_end - arm_top)
            sleeve = c[p.top] * 0.92
            _limb(img, arm_top, split, end, x0, arm_w, swing, (sleeve, sleeve), skin)
            continue
        _rect(img, torso_top + 0.01 * u, sleeve_end, x0, x0 + arm_w, c[p.top] * 0.92)
        _rect(img, sleeve_end, arm_end, x0 + 0.1 * arm_w, x0 + 0.9 * arm_w, skin)

    # Torso with its texture; the logo patch is printed on the front only.
    texture = PLAIN if (p.top_texture == LOGO and view != FRONT) else p.top_texture
    _ellipse(img, torso_top + 0.03 * u, cx, 0.035 * u, sw / 2, c[p.top])  # round shoulders
    _pattern(
        img,
        (torso_top + 0.02 * u, hip + 0.01 * u, cx - sw / 2, cx + sw / 2),
        c[p.top],
        c[p.top_second],
        texture,
        period,
    )
    if side and strides is not None:  # the near arm, swinging with the far leg
        x0, sleeve = arms[0], c[p.top] * 0.85
        top_arm = torso_top + 0.01 * u
        swing = 0.8 * strides[0][0]
        _limb(img, top_arm, sleeve_end, arm_end, x0, arm_w, swing, (sleeve, sleeve), skin * 0.9)
    elif side:  # the near arm in front of the torso
        x0 = arms[0]
        _rect(img, torso_top + 0.01 * u, sleeve_end, x0, x0 + arm_w, c[p.top] * 0.85)
        _rect(img, sleeve_end, arm_end, x0 + 0.1 * arm_w, x0 + 0.9 * arm_w, skin * 0.9)
    if texture == LOGO:
        s = 0.32 * sw
        y0 = torso_top + 0.12 * u
        _rect(img, y0, y0 + s, cx - s / 2, cx + s / 2, c[p.top_second])
        _rect(img, y0 + s / 3, y0 + 2 * s / 3, cx - s / 6, cx + s / 6, c[p.top])

    # Backpack: a block on the back, two straps on the front.
    if p.backpack >= 0 and view == BACK:
        _rect(
            img,
            torso_top + 0.03 * u,
            torso_top + 0.68 * (hip - torso_top),
            cx - 0.36 * sw,
            cx + 0.36 * sw,
            c[p.backpack],
        )
        _rect(
            img,
            torso_top + 0.4 * (hip - torso_top),
            torso_top + 0.5 * (hip - torso_top),
            cx - 0.3 * sw,
            cx + 0.3 * sw,
            c[p.backpack] * dark,
        )
    elif p.backpack >= 0 and view == FRONT:
        for x in (cx - 0.3 * sw, cx + 0.3 * sw - 0.03 * u):
            _rect(
                img,
                torso_top,
                torso_top + 0.45 * (hip - torso_top),
                x,
                x + 0.03 * u,
                c[p.backpack] * dark,
            )

    # Shoulder bag: a strap across the chest to a bag on the hip. The person's right is
    # the picture's left from the front and its right from the back.
    if p.bag >= 0:
        on_left = (p.bag_side == 0) == (view == FRONT)
        sgn = -1.0 if on_left else 1.0
        if side:
            sgn = 0.3
        bag_x = cx + sgn * (sw / 2 + 0.02 * u)
        _line(
            img,
            (torso_top, cx - sgn * sw * 0.4),
            (hip, bag_x),
            max(1.0, 0.025 * u),
            c[p.bag] * dark,
        )
        bs = 0.13 * u
        _rect(img, hip - 0.3 * bs, hip + 0.7 * bs, bag_x - bs / 2, bag_x + bs / 2, c[p.bag])

    # Neck, head, hair, hat.
    _rect(img, neck - 0.02 * u, torso_top + 0.02 * u, cx - 0.2 * head_w, cx + 0.2 * head_w, skin)
    hcy = top + head_h / 2
    hcx = cx + (0.1 * head_w if side else 0)
    if view == BACK:
        _ellipse(img, hcy, hcx, head_h / 2, head_w / 2, hair)
    else:
        _ellipse(img, hcy, hcx, head_h / 2, head_w / 2, skin)
        _ellipse(img, hcy, hcx, head_h / 2 + 0.5, head_w / 2 + 0.5, hair, y_max=top + 0.38 * head_h)
        if side:  # hair on the back half of the head
            _rect(
                img,
                top + 0.3 * head_h,
                top + 0.75 * head_h,
                hcx - head_w / 2,
                hcx - 0.05 * head_w,
                hair,
            )
    if p.hat >= 0:
        _ellipse(
            img,
            top + 0.28 * head_h,
            hcx,
            0.3 * head_h,
            0.55 * head_w,
            c[p.hat],
            y_max=top + 0.35 * head_h,
        )
        brim = 0.75 * head_w
        bx = hcx + (0.25 * head_w if side else 0)
        _rect(img, top + 0.28 * head_h, top + 0.38 * head_h, bx - brim, bx + brim, c[p.hat] * 0.8)


def render(
    identity: Identity,
    camera: CameraStyle,
    rng: np.random.Generator,
    height: int,
    width: int,
) -> np.ndarray:
    """Renders one crop of ``identity`` as seen by ``camera``.

    Args:
      identity: the person.
      camera: the camera's fixed style.
      rng: the per-image generator (viewpoint, pose jitter, clutter, occlusion, noise).
      height: crop height in pixels (a multiple of 4).
      width: crop width in pixels (a multiple of 4).

    Returns:
      A uint8 array of shape (height, width, 3).
    """
    img = np.empty((height, width, 3), np.float32)
    _background(img, camera, rng)

    # Viewpoint: mostly the camera's own, sometimes either of the others.
    view = (
        camera.main_view if rng.random() < 0.7 else int((camera.main_view + rng.integers(1, 3)) % 3)
    )
    size = identity.height * camera.scale * rng.uniform(0.93, 1.05)
    u = height * min(size, 0.97)
    feet = height * rng.uniform(0.975, 1.0) - rng.uniform(0, height - u) * 0.15
    cx = width * (0.5 + rng.normal(0, 0.05))
    _person(img, identity, view, feet - u, feet, cx)
    if view == SIDE and rng.random() < 0.5:  # walking to the left instead of the right
        img = img[:, ::-1]

    # Partial occlusion: something in front of the legs or at one side.
    if rng.random() < camera.occlusion:
        colour = camera.clutter[rng.integers(len(camera.clutter))]
        if rng.random() < 0.6:
            _rect(img, height * rng.uniform(0.6, 0.85), height, 0, width, colour)
        else:
            x = width * (rng.uniform(0.55, 0.8) if rng.random() < 0.5 else rng.uniform(-0.3, 0.0))
            _rect(img, height * rng.uniform(0.0, 0.3), height, x, x + 0.5 * width, colour)

    # Camera: light and colour cast, resolution loss, blur, sensor noise.
    gain = camera.brightness * rng.uniform(0.92, 1.08) * camera.cast
    img = img * gain.astype(np.float32)
    img = _optics(img, camera)
    if camera.noise > 0:
        img = img + rng.normal(0.0, camera.noise, img.shape).astype(np.float32)
    return _to_uint8(img)
