"""Index generators: identity-balanced P x K training batches and padded eval batches.

Samplers are pure NumPy functions of (labels, cameras, seed, epoch): the same arguments
give the same batches, so a run resumed at an epoch boundary sees exactly the batches an
uninterrupted run would have seen.

The P x K scheme (P identities, K instances each) is the one of Hermans et al. 2017
("In Defense of the Triplet Loss"), as used by BoT (Luo et al. 2019). Like BoT's
RandomIdentitySampler, an identity with fewer than K images is sampled with replacement.
Unlike it, we order each identity's images round-robin over its cameras so that the K
instances of a batch come from as many different cameras as the identity has, and we fix
the number of batches per epoch so that learning-rate schedules know the epoch length.
"""

from __future__ import annotations

import numpy as np

from reid_jax import errors


def _camera_diverse_order(rng: np.random.Generator, idx: np.ndarray, cams: np.ndarray) -> np.ndarray:
    """Shuffles ``idx`` so that consecutive items cycle through the cameras."""
    idx = rng.permutation(idx)
    by_cam = {}
    for i in idx:
        by_cam.setdefault(int(cams[i]), []).append(int(i))
    queues = [by_cam[c] for c in rng.permutation(sorted(by_cam))]
    out = []
    while any(queues):
        for q in queues:
            if q:
                out.append(q.pop())
    return np.asarray(out, dtype=np.int64)


def _chunks(rng: np.random.Generator, idx: np.ndarray, cams: np.ndarray, k: int) -> list[np.ndarray]:
    """Splits one identity's images into chunks of exactly K (padding by resampling)."""
    order = _camera_diverse_order(rng, idx, cams)
    if len(order) < k:
        extra = rng.choice(idx, size=k - len(order), replace=True)
        return [np.concatenate([order, extra])]
    n = len(order) // k
    return [order[i * k : (i + 1) * k] for i in range(n)]


def steps_per_epoch(labels: np.ndarray, p: int, k: int) -> int:
    """Number of P x K batches in one epoch: every identity's K-chunks used about once."""
    ids, counts = np.unique(labels[labels >= 0], return_counts=True)
    chunks = int(np.maximum(counts // k, 1).sum())
    return max(1, chunks // p)


def check_pk(
    labels: np.ndarray, p: int, k: int, num_devices: int = 1, extra_per_batch: int = 0
) -> None:
    """Raises ReidError when P x K cannot be drawn from ``labels``.

    ``extra_per_batch`` unlabeled pictures (LSRO) join every batch; the devices must
    divide P x K plus them.
    """
    num_ids = len(np.unique(labels[labels >= 0]))
    if p < 1 or k < 1:
        raise errors.ReidError(f"impossible P x K = {p} x {k}: both must be >= 1.")
    if num_ids < p:
        raise errors.ReidError(
            f"impossible P x K = {p} x {k}: the training data has only {num_ids} identities; "
            f"set --config.data.p to at most {num_ids}."
        )
    if k < 2:
        raise errors.ReidError(
            f"impossible P x K = {p} x {k}: the triplet loss needs K >= 2 instances per identity."
        )
    if (p * k + extra_per_batch) % num_devices:
        extra = f" + {extra_per_batch} unlabeled" if extra_per_batch else ""
        raise errors.ReidError(
            f"batch P x K{extra} = {p * k + extra_per_batch} is not divisible by the "
            f"{num_devices} devices; change data.p or data.k"
            + (" or data.unlabeled_per_batch." if extra_per_batch else ".")
        )


def pk_batches(
    labels: np.ndarray,
    camera_ids: np.ndarray,
    p: int,
    k: int,
    seed: int,
    epoch: int,
    num_batches: int | None = None,
) -> np.ndarray:
    """Identity-balanced batches for one epoch.

    Args:
      labels: [N] training labels (examples with label < 0 are never drawn).
      camera_ids: [N] camera of each example.
      p: identities per batch.
      k: instances per identity.
      seed: run seed.
      epoch: epoch number; (seed, epoch) fixes the result.
      num_batches: batches to draw (default: steps_per_epoch(labels, p, k)).

    Returns:
      int64 array [num_batches, p * k] of example indices; row b holds K consecutive
      indices of each of its P identities.
    """
    labels = np.asarray(labels)
    camera_ids = np.asarray(camera_ids)
    check_pk(labels, p, k)
    rng = np.random.default_rng([seed, epoch])
    if num_batches is None:
        num_batches = steps_per_epoch(labels, p, k)
    ids = np.unique(labels[labels >= 0])
    members = {int(i): np.flatnonzero(labels == i) for i in ids}
    queues: dict[int, list[np.ndarray]] = {}
    out = np.empty((num_batches, p * k), dtype=np.int64)
    for b in range(num_batches):
        ready = [i for i in ids if queues.get(int(i))]
        if len(ready) < p:
            # Refill the exhausted identities with a fresh camera-diverse pass.
            for i in ids:
                if not queues.get(int(i)):
                    queues[int(i)] = _chunks(rng, members[int(i)], camera_ids, k)
            ready = list(ids)
        # Identities with more chunks left are drawn more often, so an epoch covers the data.
        left = np.asarray([len(queues[int(i)]) for i in ready], dtype=np.float64)
        chosen = rng.choice(np.asarray(ready), size=p, replace=False, p=left / left.sum())
        out[b] = np.concatenate([queues[int(i)].pop() for i in chosen])
    return out


def random_batches(
    labels: np.ndarray, batch: int, seed: int, epoch: int, num_batches: int
) -> np.ndarray:
    """Shuffled batches of labelled examples, no identity structure (PCB's loader:
    ``shuffle=True, drop_last=True``): passes over the data, each a fresh permutation.

    Returns:
      int64 [num_batches, batch].
    """
    pool = np.flatnonzero(np.asarray(labels) >= 0)
    if pool.size < batch:
        raise errors.ReidError(f"{pool.size} labelled pictures cannot fill a batch of {batch}.")
    rng = np.random.default_rng([seed, epoch])
    per_pass = pool.size // batch  # drop_last in every pass
    rows = [rng.permutation(pool)[: per_pass * batch].reshape(per_pass, batch)
            for _ in range(-(-num_batches // per_pass))]
    return np.concatenate(rows)[:num_batches]


def _group(rng: np.random.Generator, idx: np.ndarray, cams: np.ndarray, k: int,
           cross_camera: bool) -> np.ndarray:
    """One identity's K pictures, as the references' samplers pick them."""
    if not cross_camera:  # CAP's ClassUniformlySampler: K of the proxy's pictures
        if len(idx) >= k:
            return rng.permutation(idx)[:k]
        return rng.permutation(np.tile(idx, k))[:k]
    anchor = rng.choice(idx)
    others = idx[idx != anchor]
    cand = others[cams[others] != cams[anchor]]
    if cand.size == 0:  # every picture in the anchor's camera: the other pictures
        cand = others
    if cand.size == 0:  # a singleton: the anchor alone
        return np.asarray([anchor])
    picks = rng.choice(cand, size=k - 1, replace=cand.size < k)  # threshold K, as the code
    return np.concatenate([[anchor], picks])


def cluster_uniform_batches(
    labels: np.ndarray,
    camera_ids: np.ndarray,
    p: int,
    k: int,
    seed: int,
    epoch: int,
    num_batches: int,
    cross_camera: bool = True,
) -> np.ndarray:
    """The clustering references' batches: every pseudo identity once per pass.

    cluster contrast and PPLR (``RandomMultipleGallerySampler``): each pass visits every
    identity once, in a random order, and emits an anchor picture then K-1 companions
    taken from the identity's *other cameras* (without replacement when there are K or
    more, else with), or, when all its pictures share the anchor's camera, from its other
    pictures; a single-picture identity emits the anchor alone. CAP
    (``ClassUniformlySampler``, ``cross_camera=False``): K of the proxy's pictures,
    without replacement when it has K, else repeated. The stream of a pass is cut into
    batches of P x K indices, the incomplete last one dropped, and passes follow each
    other until ``num_batches`` (``IterLoader`` restarting the loader).

    Returns:
      int64 [num_batches, p * k].
    """
    labels, cams = np.asarray(labels), np.asarray(camera_ids)
    ids = np.unique(labels[labels >= 0])
    if ids.size == 0:
        raise errors.ReidError("no clustered pictures to sample from.")
    members = {int(i): np.flatnonzero(labels == i) for i in ids}
    rng = np.random.default_rng([seed, epoch, 2])  # 2: a stream apart from pk_batches'
    batch = p * k
    rows: list[np.ndarray] = []
    while len(rows) < num_batches:
        stream = np.concatenate([_group(rng, members[int(i)], cams, k, cross_camera)
                                 for i in rng.permutation(ids)])
        full = stream.size // batch
        if full == 0:
            raise errors.ReidError(
                f"one pass over {ids.size} pseudo identities gives {stream.size} pictures, "
                f"fewer than a batch of {batch}; lower data.p or data.k."
            )
        rows.extend(stream[: full * batch].reshape(full, batch))
    return np.stack(rows[:num_batches]).astype(np.int64)


def epoch_batches(
    sampler: str,
    labels: np.ndarray,
    camera_ids: np.ndarray,
    p: int,
    k: int,
    seed: int,
    epoch: int,
    num_batches: int,
    cross_camera: bool = True,
) -> np.ndarray:
    """The batches of one epoch from ``config.data.sampler`` ('pk', 'random' or
    'cluster_uniform'; see ``pk_batches``, ``random_batches``, ``cluster_uniform_batches``)."""
    if sampler == "random":
        return random_batches(labels, p * k, seed, epoch, num_batches)
    if sampler == "cluster_uniform":
        return cluster_uniform_batches(labels, camera_ids, p, k, seed, epoch, num_batches,
                                       cross_camera)
    return pk_batches(labels, camera_ids, p, k, seed, epoch, num_batches)


def unlabeled_batches(
    pool: np.ndarray, num_batches: int, per_batch: int, seed: int, epoch: int
) -> np.ndarray:
    """``per_batch`` unlabeled example indices for each of ``num_batches`` batches.

    The indices of ``pool`` are drawn in shuffled passes (each pass uses every one once),
    so an epoch spreads its draws evenly over the pool; (seed, epoch) fix the result.

    Returns:
      int64 array [num_batches, per_batch], to append to the P x K rows.
    """
    pool = np.asarray(pool, dtype=np.int64)
    if per_batch <= 0:
        return np.empty((num_batches, 0), dtype=np.int64)
    if pool.size == 0:
        raise errors.ReidError("no unlabeled examples to draw from; check config.data.unlabeled.")
    rng = np.random.default_rng([seed, epoch, 1])  # 1: a stream apart from pk_batches'
    need = num_batches * per_batch
    passes = [rng.permutation(pool) for _ in range(-(-need // pool.size))]
    return np.concatenate(passes)[:need].reshape(num_batches, per_batch)


def eval_batches(n: int, batch_size: int) -> tuple[np.ndarray, np.ndarray]:
    """Splits 0..n-1 into fixed-size batches; the last is padded and masked.

    Returns:
      (indices [B, batch_size] int64, mask [B, batch_size] bool): padding repeats
      index 0 with mask False, so every example is embedded exactly once.
    """
    if n <= 0:
        raise errors.ReidError("cannot evaluate an empty split.")
    num = -(-n // batch_size)
    flat = np.zeros(num * batch_size, dtype=np.int64)
    flat[:n] = np.arange(n)
    mask = np.zeros(num * batch_size, dtype=bool)
    mask[:n] = True
    return flat.reshape(num, batch_size), mask.reshape(num, batch_size)


def _domain_seed(seed: int, domain: int) -> int:
    """An independent seed for one domain's P x K stream, fixed by (seed, domain)."""
    return int(np.random.SeedSequence([seed, domain]).generate_state(1)[0])


def domain_pk_batches(
    labels: np.ndarray,
    camera_ids: np.ndarray,
    domains: np.ndarray,
    p: int,
    k: int,
    seed: int,
    epoch: int,
    num_batches: int | None = None,
    mode: str = "per_domain",
) -> np.ndarray:
    """Domain-balanced P x K batches over a multi-source training set, for one epoch.

    Each domain (source dataset) is sampled on its own with :func:`pk_batches`, from a
    seed fixed by (seed, domain), so labels only need to be distinct within a domain and
    adding a domain does not change the batches drawn from the others.

    Args:
      labels: [N] training labels (examples with label < 0 are never drawn).
      camera_ids: [N] camera of each example.
      domains: [N] domain index of each example (``ReidData.domains``).
      p: identities per domain block.
      k: instances per identity.
      seed: run seed.
      epoch: epoch number; (seed, epoch) fixes the result.
      num_batches: batches to draw. Default: every domain is covered about once, so
        the largest domain sets the length (smaller domains start a new pass when they
        run out): ``max_d steps_per_epoch(domain d)`` for 'per_domain', ``D`` times
        that for 'alternate'.
      mode: 'per_domain': every batch holds P x K from each of the D domains, rows
        grouped by domain in increasing domain order (batch size D * P * K), as in the
        domain-generalization methods that need every source in every step;
        'alternate': batch b holds P x K from domain ``b mod D`` only (batch size P * K).

    Returns:
      int64 array [num_batches, D * P * K] ('per_domain') or [num_batches, P * K]
      ('alternate') of example indices; each domain block is laid out as in pk_batches.
    """
    labels = np.asarray(labels)
    camera_ids = np.asarray(camera_ids)
    domains = np.asarray(domains)
    if not labels.shape == camera_ids.shape == domains.shape:
        raise errors.ReidError(
            f"labels {labels.shape}, camera_ids {camera_ids.shape} and domains {domains.shape} "
            "must have the same length."
        )
    if mode not in ("per_domain", "alternate"):
        raise errors.ReidError(f"unknown domain sampling mode {mode!r}; use 'per_domain' or 'alternate'.")
    doms = [int(d) for d in np.unique(domains[labels >= 0])]
    if not doms:
        raise errors.ReidError("no labelled training examples to sample from.")
    members = {d: np.flatnonzero((domains == d) & (labels >= 0)) for d in doms}
    for d, idx in members.items():
        num_ids = len(np.unique(labels[idx]))
        if num_ids < p:
            raise errors.ReidError(
                f"impossible P x K = {p} x {k} per domain: domain {d} has only {num_ids} "
                f"identities; set --config.data.p to at most {num_ids}."
            )
    steps = max(steps_per_epoch(labels[idx], p, k) for idx in members.values())
    num_domains = len(doms)
    if num_batches is None:
        num_batches = steps if mode == "per_domain" else steps * num_domains
    if mode == "per_domain":
        counts = {d: num_batches for d in doms}
    else:
        # Domain j takes batches j, j + D, j + 2D, ...
        counts = {d: len(range(j, num_batches, num_domains)) for j, d in enumerate(doms)}
    blocks = {}
    for d, idx in members.items():
        local = pk_batches(labels[idx], camera_ids[idx], p, k, _domain_seed(seed, d), epoch,
                           num_batches=counts[d]) if counts[d] else np.empty((0, p * k), np.int64)
        blocks[d] = idx[local]
    if mode == "per_domain":
        return np.concatenate([blocks[d] for d in doms], axis=1)
    out = np.empty((num_batches, p * k), dtype=np.int64)
    for j, d in enumerate(doms):
        out[j::num_domains] = blocks[d]
    return out
