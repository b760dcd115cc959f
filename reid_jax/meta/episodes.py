"""Meta-train / meta-test episodes over source domains, as data rather than control flow.

A domain-generalization batch is laid out domain-major: ``D`` source domains, each
contributing the same number ``B`` of images (a P x K block of its own identities), so
the global batch has ``D * B`` rows and row ``d * B + i`` belongs to domain ``d``.

Each iteration a random split of the domains into meta-train and meta-test is drawn
*inside* the jitted step from the step's rng, as two index arrays of static length
(``split_domains``). Gathering the domain blocks with them (``take_domains``) gives
static shapes, so one compiled step serves every split: no Python branch on the split,
no recompilation.

Samplers here are NumPy functions of (labels, domains, seed, epoch), like
``reid_jax.data.samplers``: a resumed run sees the same batches.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from reid_jax import errors
from reid_jax.data import samplers, sources


def num_domains_of(domains: np.ndarray) -> int:
    """Number of source domains (domain indices are 0..D-1, as sources.open_data sets them)."""
    return int(np.max(domains)) + 1


def domain_steps_per_epoch(labels: np.ndarray, domains: np.ndarray, p: int, k: int) -> int:
    """Batches per epoch: enough for the largest domain's K-chunks to be used about once."""
    return max(
        samplers.steps_per_epoch(labels[domains == d], p, k)
        for d in range(num_domains_of(domains))
    )


def open_sources(
    data_cfg: object, devices: int, min_domains: int, method: str
) -> tuple[sources.ReidData, int, int]:
    """The source domains of ``config.data.train``: (pictures, number of domains, steps).

    Raises:
      errors.ReidError: fewer than ``min_domains`` sources, or a domain-balanced batch
        the devices do not divide.
    """
    train = sources.open_train(data_cfg)
    d = num_domains_of(train.domains)
    if d < min_domains:
        raise errors.ReidError(
            f"{method} needs {min_domains} or more source domains; config.data.train names {d}."
        )
    p, k = data_cfg.p, data_cfg.k
    if (d * p * k) % devices:
        raise errors.ReidError(
            f"batch {d} domains x {p} x {k} is not divisible by {devices} devices."
        )
    steps = data_cfg.steps_per_epoch or domain_steps_per_epoch(train.labels, train.domains, p, k)
    return train, d, steps


def domain_pk_batches(
    labels: np.ndarray,
    camera_ids: np.ndarray,
    domains: np.ndarray,
    p: int,
    k: int,
    seed: int,
    epoch: int,
    num_batches: int,
) -> np.ndarray:
    """Domain-balanced P x K batches: every row holds a P x K block from each domain.

    The meta-learning trainers' view of ``samplers.domain_pk_batches`` ('per_domain'),
    which also refuses a source domain without labelled images.

    Args:
      labels: [N] training labels (disjoint across domains; < 0 never drawn).
      camera_ids: [N] cameras.
      domains: [N] domain index of each example.
      p: identities per domain per batch.
      k: instances per identity.
      seed: run seed.
      epoch: epoch; (seed, epoch) fixes the result.
      num_batches: rows to draw.

    Returns:
      int64 [num_batches, D * p * k], domain-major (block d holds domain d's examples).
    """
    for d in range(num_domains_of(domains)):
        if not ((domains == d) & (labels >= 0)).any():
            raise errors.ReidError(f"source domain {d} has no labelled training images.")
    return samplers.domain_pk_batches(
        labels, camera_ids, domains, p, k, seed, epoch, num_batches, mode="per_domain"
    )


def split_domains(rng: jax.Array, num_domains: int, num_meta_test: int) -> tuple[jax.Array, jax.Array]:
    """A random meta-train / meta-test split of the domains.

    Args:
      rng: key of this iteration.
      num_domains: D source domains.
      num_meta_test: how many go to meta-test (MetaBIN: 2 of 5; M3L: 1).

    Returns:
      (meta_train [D - num_meta_test] int32, meta_test [num_meta_test] int32) domain
      indices, each sorted; together a permutation of 0..D-1.
    """
    if not 0 < num_meta_test < num_domains:
        raise errors.ReidError(
            f"cannot split {num_domains} source domains into meta-train and {num_meta_test} "
            "meta-test domains; meta-learning needs at least 2 source domains."
        )
    perm = jax.random.permutation(rng, num_domains).astype(jnp.int32)
    return jnp.sort(perm[num_meta_test:]), jnp.sort(perm[:num_meta_test])


def by_domain(x: jax.Array, num_domains: int) -> jax.Array:
    """[D * B, ...] domain-major rows -> [D, B, ...]."""
    return x.reshape((num_domains, x.shape[0] // num_domains) + x.shape[1:])


def take_domains(x: jax.Array, idx: jax.Array, num_domains: int, flatten: bool = True) -> jax.Array:
    """The rows of the domains ``idx`` from a domain-major batch.

    Args:
      x: [D * B, ...] batch.
      idx: [n] domain indices.
      num_domains: D.
      flatten: return [n * B, ...] (True) or [n, B, ...].
    """
    blocks = jnp.take(by_domain(x, num_domains), idx, axis=0)
    return blocks.reshape((-1,) + blocks.shape[2:]) if flatten else blocks


def domain_one_hot(domains: jax.Array, num_domains: int) -> jax.Array:
    """[N] domain ids -> [N, D] float mask."""
    return jax.nn.one_hot(domains, num_domains, dtype=jnp.float32)
