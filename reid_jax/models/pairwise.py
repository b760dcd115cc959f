r"""Pairwise matching networks: a (picture, picture) pair in, a score out.

Unlike the embedding networks of ``zoo.py``, these compare two pictures inside the
network, so a query is ranked by scoring it against every gallery picture. Each network
splits into what depends on one picture (``embed``, computed once per picture) and what
depends on the pair (``compare``); ``reid_jax/evaluation/pairs.py`` scores query x
gallery blocks from the embedded pictures and ``reid_jax/train/pairwise.py`` trains them.
Both return ``pair_distance`` (smaller = more alike), the score the protocols rank by.

IDLA: Ahmed, Jones and Marks, "An Improved Deep Learning Architecture for Person
Re-identification", CVPR 2015 (sizes from its Sec. 3, 60 x 160 input):

- tied convolutions: 20 x 5x5, 2x2 max pool, 25 x 5x5, 2x2 max pool, unpadded, one set of
  weights for both pictures -> f, g of 37 x 12 x 25 (rows x columns x channels);
- cross-input neighbourhood differences (Sec. 3.2): K_i(x, y) = f_i(x, y) 1(5, 5) -
  N[g_i(x, y)], N the 5 x 5 neighbourhood of g centred at (x, y), and K' with f and g
  swapped; both through a ReLU (the paper: "we pass these neighborhood difference maps
  through a rectified linear unit"). Outside g the neighbourhood reads zeros (the paper
  does not say; zero padding is our choice);
- patch summary (Sec. 3.3): 25 filters of 5 x 5 x 25, stride 5, on the 5 x 5 blocks of K
  (one block per position: a dot over (neighbour, channel)), ReLU; K and K' untied;
- across-patch (Sec. 3.4): 25 x 3x3 unpadded, 2x2 max pool with Caffe's ceil rounding
  (35 x 10 -> 18 x 5), untied for the two directions;
- FC 500 over both directions' maps (2 x 18 x 5 x 25 = 4,500 inputs), ReLU, FC 2, softmax
  ("same" is class 1). 2,308,147 parameters, the count the paper states (Sec. 3).
The paper does not name the nonlinearity after the tied and across-patch convolutions;
ReLU, as both public reimplementations (Ning-Ding/Implementation-CVPR2015-CNN-for-ReID,
digitalbrain79/person-reid).

Gated siamese CNN: Varior, Haloi and Wang, "Gated Siamese Convolutional Neural Network
Architecture for Human Re-Identification", ECCV 2016. What we could verify of it (the
paper's layer table was not available to us; the gaps are filled with stated choices):

- 128 x 64 input, small kernels with BatchNorm and PReLU, three max pools; layers 4-6 keep
  the rows of layer 3's map and shrink its columns to one with 1 x k kernels. Our widths
  32, 64, 64, 64, 64, 64 and kernels 5x5, 3x3, 3x3, 1x3, 1x3, 1x4 (our choice, so that
  16 x 8 -> 16 x 1) give a 16 x 64 = 1,024-d feature, L2-normalised; the score is the
  Euclidean distance of the two features.
- matching gate between two mid-level maps x1, x2 (R rows, W columns, C channels):
  each row is summarised by one learned 1 x W convolution (C -> C channels, shared by
  the branches) and a ReLU, y_r; the gate per row and channel is
  g_r^i = exp(-(y1_r^i - y2_r^i)^2 / p_i^2) with a learned p per channel (initialised to
  1, our choice); it is repeated along the row and applied to both branches,
  a = x + x * g, then each position is L2-normalised across channels.
- gates after layers 3, 4 and 5 (``gate_layers``; the paper inserts them in the
  mid-level layers, we could not confirm which); ``gate_layers=()`` is the siamese
  baseline (S-CNN), whose whole network is then per picture.
"""

from __future__ import annotations

from collections.abc import Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp

from reid_jax import vectors

# Class index of "same person" in IDLA's 2-way logits (as the verification head's).
SAME = 1
NEIGHBOURHOOD = 5  # IDLA's 5 x 5 neighbourhood (and patch-summary stride)


def _max_pool_ceil(x: jax.Array) -> jax.Array:
    """2 x 2 max pooling, stride 2, keeping a last odd row/column (Caffe's ceil rounding)."""
    h, w = x.shape[-3], x.shape[-2]
    pad = ((0, 0),) * (x.ndim - 3) + ((0, h % 2), (0, w % 2), (0, 0))
    x = jnp.pad(x, pad, constant_values=-jnp.inf)
    return nn.max_pool(x, (2, 2), strides=(2, 2))


def neighbourhoods(g: jax.Array, size: int = NEIGHBOURHOOD) -> jax.Array:
    """N[g]: every position's ``size x size`` neighbourhood, zeros outside the map.

    Args:
      g: [..., H, W, C] maps.
      size: odd neighbourhood side.

    Returns:
      [..., H, W, size * size, C]; entry (y, x, dy * size + dx) is g(y + dy - r, x + dx - r),
      r = size // 2.
    """
    r = size // 2
    h, w = g.shape[-3], g.shape[-2]
    pad = ((0, 0),) * (g.ndim - 3) + ((r, r), (r, r), (0, 0))
    gp = jnp.pad(g, pad)
    shifts = [gp[..., dy:dy + h, dx:dx + w, :] for dy in range(size) for dx in range(size)]
    return jnp.stack(shifts, axis=-2)


def neighbourhood_differences(f: jax.Array, g: jax.Array, size: int = NEIGHBOURHOOD) -> jax.Array:
    """IDLA's cross-input neighbourhood differences K = f 1(size, size) - N[g] (no ReLU).

    Args:
      f, g: [..., H, W, C] maps of the two pictures.

    Returns:
      [..., H, W, size * size, C] (K'(f, g) is ``neighbourhood_differences(g, f)``).
    """
    return f[..., None, :] - neighbourhoods(g, size)


def pairs_of_batch(net: nn.Module, x: jax.Array, first: jax.Array | None,
                   second: jax.Array | None, train: bool) -> dict[str, jax.Array]:
    """A pair network's ``__call__``: ``net.compare`` of pairs (x[first[i]], x[second[i]])
    of a batch (default: each picture with itself), each picture embedded once."""
    f = net.embed(x, train)
    first = jnp.arange(x.shape[0]) if first is None else first
    second = first if second is None else second
    return net.compare(f[first], f[second], train)


class IDLA(nn.Module):
    """Ahmed et al.'s pair network (see the module docstring).

    Attributes:
      num_classes: unused (a pair network has no identity classifier); kept so that
        ``zoo.build_model`` builds every model alike.
    """

    num_classes: int = 0

    pairwise = True  # ranked through pair scores, not embeddings

    def setup(self) -> None:
        self.conv1 = nn.Conv(20, (5, 5), padding="VALID")
        self.conv2 = nn.Conv(25, (5, 5), padding="VALID")
        # Patch summary: a 5 x 5 x 25 filter at stride 5 over K's blocks = one dense map
        # of the (neighbour, channel) entries of each position.
        self.summary = nn.DenseGeneral(25, axis=(-2, -1), name="summary")
        self.summary_rev = nn.DenseGeneral(25, axis=(-2, -1), name="summary_rev")
        self.across = nn.Conv(25, (3, 3), padding="VALID")
        self.across_rev = nn.Conv(25, (3, 3), padding="VALID")
        self.fc1 = nn.Dense(500)
        self.fc2 = nn.Dense(2)

    def embed(self, x: jax.Array, train: bool = False) -> jax.Array:
        """The tied convolutions: [N, 160, 60, 3] -> [N, 37, 12, 25]."""
        del train
        x = nn.max_pool(nn.relu(self.conv1(x)), (2, 2), strides=(2, 2))
        return nn.max_pool(nn.relu(self.conv2(x)), (2, 2), strides=(2, 2))

    def compare(self, f: jax.Array, g: jax.Array, train: bool = False) -> dict[str, jax.Array]:
        """Scores pairs (f[i], g[i]) of embedded pictures.

        Returns:
          {'pair_logits': [n, 2] (class 1: same person), 'pair_distance': [n] the
          log-odds of "different", logit_0 - logit_1}.
        """
        del train
        k = nn.relu(neighbourhood_differences(f, g))
        k_rev = nn.relu(neighbourhood_differences(g, f))
        m = _max_pool_ceil(nn.relu(self.across(nn.relu(self.summary(k)))))
        m_rev = _max_pool_ceil(nn.relu(self.across_rev(nn.relu(self.summary_rev(k_rev)))))
        h = jnp.concatenate([m.reshape(m.shape[0], -1), m_rev.reshape(m.shape[0], -1)], -1)
        logits = self.fc2(nn.relu(self.fc1(h))).astype(jnp.float32)
        return {"pair_logits": logits, "pair_distance": logits[:, 1 - SAME] - logits[:, SAME]}

    def __call__(self, x: jax.Array, first: jax.Array | None = None,
                 second: jax.Array | None = None, train: bool = False) -> dict[str, jax.Array]:
        """Pairs (x[first[i]], x[second[i]]) of a batch (``pairs_of_batch``)."""
        return pairs_of_batch(self, x, first, second, train)


class _ConvBlock(nn.Module):
    """Conv -> BatchNorm -> PReLU (-> 2 x 2 max pool).

    ``shrink`` = r > 0: a 1 x k unpadded kernel that takes the map's width w down by
    (w - 1) // r columns (r: this and the later shrinking layers), so the last one
    (r = 1) leaves one column whatever the input width.
    """

    features: int
    kernel: tuple[int, int]
    padding: str = "SAME"
    pool: bool = False
    shrink: int = 0

    @nn.compact
    def __call__(self, x: jax.Array, train: bool) -> jax.Array:
        kernel = self.kernel
        if self.shrink:
            kernel = (1, (x.shape[-2] - 1) // self.shrink + 1)
        x = nn.Conv(self.features, kernel, padding=self.padding, use_bias=False)(x)
        x = nn.BatchNorm(use_running_average=not train, momentum=0.9, epsilon=1e-5)(x)
        x = nn.PReLU(negative_slope_init=0.25)(x)
        return nn.max_pool(x, (2, 2), strides=(2, 2)) if self.pool else x


class MatchingGate(nn.Module):
    """Varior et al.'s matching gate between the two branches' maps (module docstring)."""

    p_init: float = 1.0

    @nn.compact
    def __call__(self, x1: jax.Array, x2: jax.Array) -> tuple[jax.Array, jax.Array]:
        """Gates [n, R, W, C] maps x1, x2 of the pairs; returns the gated pair."""
        c, w = x1.shape[-1], x1.shape[-2]
        summarise = nn.Conv(c, (1, w), padding="VALID", name="summary")  # shared
        y1, y2 = nn.relu(summarise(x1)), nn.relu(summarise(x2))  # [n, R, 1, C]
        p = self.param("p", nn.initializers.constant(self.p_init), (c,), jnp.float32)
        gate = matching_gate(y1, y2, p)
        return (vectors.l2_normalize(x1 + x1 * gate), vectors.l2_normalize(x2 + x2 * gate))


def matching_gate(y1: jax.Array, y2: jax.Array, p: jax.Array) -> jax.Array:
    """g = exp(-(y1 - y2)^2 / p^2) per row and channel (broadcast along the row)."""
    return jnp.exp(-jnp.square(y1 - y2) / jnp.square(p))


# (features, kernel, padding, pool, shrink) of layers 1-6 (module docstring; our widths).
# Layers 4-6 take the columns down to one: 1x3, 1x3, 1x4 at 128 x 64 (8 -> 6 -> 4 -> 1).
SCNN_LAYERS = (
    (32, (5, 5), "SAME", True, 0),
    (64, (3, 3), "SAME", True, 0),
    (64, (3, 3), "SAME", True, 0),
    (64, (1, 0), "VALID", False, 3),
    (64, (1, 0), "VALID", False, 2),
    (64, (1, 0), "VALID", False, 1),
)


class GatedSCNN(nn.Module):
    """The siamese CNN with matching gates after ``gate_layers`` (module docstring).

    Attributes:
      gate_layers: 1-based layers followed by a matching gate; () = the S-CNN baseline.
      num_classes: unused (no identity classifier).
    """

    gate_layers: Sequence[int] = (3, 4, 5)
    num_classes: int = 0

    pairwise = True

    def setup(self) -> None:
        self.layers = [_ConvBlock(*layer) for layer in SCNN_LAYERS]
        self.gates = {i: MatchingGate(name=f"gate{i}") for i in sorted(self.gate_layers)}

    @property
    def _split(self) -> int:
        """Layers computed per picture: up to the first gate (all without gates)."""
        return min(self.gate_layers) if self.gate_layers else len(SCNN_LAYERS)

    def embed(self, x: jax.Array, train: bool = False) -> jax.Array:
        """Per picture: layers 1 .. first gated layer ([N, 16, 8, 64] with gates, the
        final [N, 16, 1, 64] map without)."""
        for layer in self.layers[:self._split]:
            x = layer(x, train)
        return x

    def compare(self, f: jax.Array, g: jax.Array, train: bool = False) -> dict[str, jax.Array]:
        """Pairs (f[i], g[i]) of embedded pictures: gates and the remaining layers.

        Returns:
          {'features': ([n, D], [n, D]) the two L2-normalised features,
          'pair_distance': [n] their Euclidean distance}.
        """
        for i in range(self._split, len(SCNN_LAYERS) + 1):
            if i in self.gates:
                f, g = self.gates[i](f, g)
            if i < len(SCNN_LAYERS):
                f, g = self.layers[i](f, train), self.layers[i](g, train)
        fa = vectors.l2_normalize(f.reshape(f.shape[0], -1).astype(jnp.float32))
        fb = vectors.l2_normalize(g.reshape(g.shape[0], -1).astype(jnp.float32))
        dist = jnp.sqrt(jnp.maximum(jnp.sum(jnp.square(fa - fb), -1), 1e-12))
        return {"features": (fa, fb), "pair_distance": dist}

    def __call__(self, x: jax.Array, first: jax.Array | None = None,
                 second: jax.Array | None = None, train: bool = False) -> dict[str, jax.Array]:
        """Pairs (x[first[i]], x[second[i]]) of a batch (``pairs_of_batch``)."""
        return pairs_of_batch(self, x, first, second, train)


PAIR_MODELS: dict[str, type[nn.Module]] = {"idla": IDLA, "gated_scnn": GatedSCNN}
