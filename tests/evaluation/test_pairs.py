"""Pair scoring: blocks equal all pairs at once, 8 devices equal 1, the streamed protocol
equals the protocol on the whole matrix, re-ranking on pair scores."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from reid_jax import sharding
from reid_jax.evaluation import evaluate as evaluate_lib
from reid_jax.evaluation import pairs, protocols, rerank
from reid_jax.models import pairwise


@pytest.fixture(scope="module")
def idla():
    """A small-input IDLA with random weights and trunk maps of 11 + 13 pictures."""
    model = pairwise.IDLA()
    x = jax.random.uniform(jax.random.key(0), (24, 40, 24, 3))
    variables = model.init(jax.random.key(1), x)
    trunk = np.asarray(model.apply(variables, x, method="embed"))
    return model, variables, trunk[:11], trunk[11:]


def _all_pairs(model, variables, q, g):
    """Every pair in one call: the reference."""
    a = np.repeat(q, len(g), axis=0)
    b = np.tile(g, (len(q), 1, 1, 1))
    out = model.apply(variables, jnp.asarray(a), jnp.asarray(b), method="compare")
    return np.asarray(out["pair_distance"]).reshape(len(q), len(g))


@pytest.mark.parametrize("pair_block", [1, 24, 64, 1000])
def test_blocks_equal_scoring_all_pairs_at_once(idla, pair_block):
    model, variables, q, g = idla
    want = _all_pairs(model, variables, q, g)
    mesh = sharding.make_mesh(1)
    got = pairs.pair_distance_matrix(model, variables, q, g, mesh, pair_block)
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)
    starts = [s for s, _ in pairs.iter_pair_distances(model, variables, q, g, mesh, pair_block)]
    assert starts == list(range(0, 11, pairs.block_shape(pair_block, 1)[0]))


def test_eight_devices_equal_one(idla):
    assert len(jax.devices()) == 8
    model, variables, q, g = idla
    one = pairs.pair_distance_matrix(model, variables, q, g, sharding.make_mesh(1), 64)
    eight = pairs.pair_distance_matrix(model, variables, q, g, sharding.make_mesh(8), 64)
    np.testing.assert_allclose(eight, one, rtol=1e-5, atol=1e-5)


def test_streamed_protocol_equals_the_whole_matrix(idla):
    model, variables, q, g = idla
    rng = np.random.default_rng(0)
    q_pids, g_pids = rng.integers(0, 4, len(q)), rng.integers(0, 4, len(g))
    q_cams, g_cams = np.zeros(len(q), int), np.ones(len(g), int)
    mesh = sharding.make_mesh(2)
    full = pairs.pair_distance_matrix(model, variables, q, g, mesh, 16)
    want = protocols.evaluate_market(full, q_pids, g_pids, q_cams, g_cams, max_rank=5)
    blocks = pairs.iter_pair_distances(model, variables, q, g, mesh, 16)
    got = evaluate_lib.evaluate_blocks(blocks, q_pids, g_pids, q_cams, g_cams, max_rank=5)
    for key in ("rank1", "rank5", "mAP", "mINP"):
        assert got[key] == pytest.approx(want[key], abs=1e-12)


def test_rerank_of_given_distances_equals_the_feature_version():
    """On squared Euclidean distances of features, re-ranking the given matrix is the
    feature version (the sparse, memory-bounded implementation is the reference)."""
    rng = np.random.default_rng(1)
    qf, gf = rng.normal(size=(6, 5)), rng.normal(size=(15, 5))
    both = np.concatenate([qf, gf]).astype(np.float32)
    sq = ((both[:, None] - both[None]) ** 2).sum(-1)
    got = rerank.rerank_distances(sq, 6, k1=4, k2=2)
    want = rerank.k_reciprocal_rerank(qf, gf, k1=4, k2=2)
    np.testing.assert_allclose(got, want, rtol=2e-3, atol=2e-3)
    with pytest.raises(ValueError, match="num_query"):
        rerank.rerank_distances(sq, 0)
