"""The pair trainer: pair selection, losses against NumPy, the hard-negative phase (top
layer only), the 'inv' schedule, translations, config errors, tiny runs of IDLA and the
gated siamese CNN end to end, and 8 devices equal to 1."""

import os
import subprocess
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from experiments import bot, gated_scnn, idla
from reid_jax import config_schema, errors, main, sharding
from reid_jax.data import augment
from reid_jax.evaluation import evaluators, rerank, retrieval
from reid_jax.losses import pairwise as pair_losses
from reid_jax.train import loop, optim

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def test_select_pairs_positives_across_cameras_negatives_of_other_identities():
    labels = jnp.array([0, 0, 0, 1, 1, 1, 2, 2])
    cams = jnp.array([0, 1, 0, 0, 0, 1, 1, 1])
    for seed in range(5):
        first, second = pair_losses.select_pairs(jax.random.key(seed), labels, cams, 3)
        first, second = np.asarray(first), np.asarray(second)
        n = len(labels)
        assert first.shape == second.shape == (n * 4,)
        np.testing.assert_array_equal(first[:n], np.arange(n))
        lab, cam = np.asarray(labels), np.asarray(cams)
        pos = second[:n]
        assert (lab[pos] == lab).all() and (pos != np.arange(n)).all()
        # every picture whose identity was seen by another camera is paired across cameras
        for i in range(n):
            if (cam[lab == lab[i]] != cam[i]).any():
                assert cam[pos[i]] != cam[i]
        neg_first, neg_second = first[n:], second[n:]
        assert (lab[neg_first] != lab[neg_second]).all()
        # three distinct negatives per picture
        assert all(len(set(neg_second[3 * i:3 * i + 3])) == 3 for i in range(n))
    again = pair_losses.select_pairs(jax.random.key(4), labels, cams, 3)
    np.testing.assert_array_equal(np.asarray(again[1]), second)


def test_hardest_first_orders_candidates_by_distance():
    cand = jnp.array([[5, 6, 7], [1, 2, 3]])
    dist = jnp.array([[0.3, -1.0, 0.2], [2.0, 2.0, 1.0]])
    np.testing.assert_array_equal(pair_losses.hardest_first(cand, dist), [[6, 7, 5], [3, 1, 2]])


def test_losses_against_numpy():
    rng = np.random.default_rng(0)
    logits = rng.normal(size=(6, 2)).astype(np.float32)
    same = np.array([1, 0, 0, 1, 0, 0], bool)
    w = np.array([1, 1, 0, 1, 0, 1], np.float32)
    p = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
    nll = -np.log(np.where(same, p[:, 1], p[:, 0]))
    assert float(pair_losses.pair_softmax_loss(logits, same)) == pytest.approx(nll.mean(), 1e-5)
    assert float(pair_losses.pair_softmax_loss(logits, same, w)) == pytest.approx(
        (nll * w).sum() / w.sum(), 1e-5)
    d = np.abs(rng.normal(size=6)).astype(np.float32)
    want = np.where(same, d**2, np.maximum(0.8 - d, 0) ** 2)
    assert float(pair_losses.contrastive_loss(d, same, 0.8)) == pytest.approx(want.mean(), 1e-5)


def test_inv_schedule_is_caffes():
    c = idla.get_config("cuhk01")
    lr = optim.schedule(c.optim, 100, 10)
    for t in (0, 1, 999, 5000):
        assert float(lr(t)) == pytest.approx(0.01 * (1 + 1e-4 * t) ** -0.75, rel=1e-5)


def test_translate_shifts_with_zero_fill():
    img = jnp.arange(20 * 10 * 3, dtype=jnp.float32).reshape(20, 10, 3) + 1
    out = np.asarray(augment.translate(jax.random.key(3), img, 0.1))  # up to 2 rows, 1 column
    src = np.asarray(img)
    found = False
    for dy in range(-2, 3):
        for dx in range(-1, 2):
            shifted = np.zeros_like(src)
            ys, yd = (slice(0, 20 - dy), slice(dy, 20)) if dy >= 0 else (slice(-dy, 20), slice(0, 20 + dy))
            xs, xd = (slice(0, 10 - dx), slice(dx, 10)) if dx >= 0 else (slice(-dx, 10), slice(0, 10 + dx))
            shifted[yd, xd] = src[ys, xs]
            found |= np.array_equal(out, shifted)
    assert found
    offsets = {tuple(np.argwhere(np.asarray(augment.translate(jax.random.key(s), img, 0.1))
                                 == 1.0)[0][:2]) for s in range(40) if
               (np.asarray(augment.translate(jax.random.key(s), img, 0.1)) == 1.0).any()}
    assert len(offsets) > 3  # several offsets are drawn


def test_config_errors_are_one_line(tiny_config):
    c = bot.get_config("synthetic_tiny")
    c.model.name = "idla"
    with pytest.raises(errors.ReidError, match="trainer 'pairwise'"):
        config_schema.validate(c)
    c = tiny_config(idla, **{"pairs.loss": "contrastive"})
    with pytest.raises(errors.ReidError, match="does not fit"):
        config_schema.validate(c)
    c = tiny_config(idla, **{"eval.aqe_k": 3})
    with pytest.raises(errors.ReidError, match="aqe_k"):
        config_schema.validate(c)
    c = tiny_config(idla, **{"pairs.negatives_per_positive": 7})
    with pytest.raises(errors.ReidError, match="other identities"):
        config_schema.validate(c)
    c = tiny_config(gated_scnn, **{"model.gate_layers": (6,)})
    with pytest.raises(errors.ReidError, match="gate_layers"):
        config_schema.validate(c)


def _steps(config, n=2, epoch=0):
    trainer, ctx = loop.build(config)
    state, batches = loop.host_batches(trainer, config, trainer.state, epoch, n)
    state = state.replace(train=state.train.replace(epoch=jnp.asarray(epoch, jnp.int32)))
    for b in batches:
        state, metrics = trainer.train_step(state, sharding.to_global(b, ctx.mesh),
                                            jax.random.key(7))
    return jax.device_get(state.train.params), metrics


@pytest.mark.parametrize("module", [idla, gated_scnn])
def test_eight_devices_equal_one(module, tiny_config):
    config = tiny_config(module, **{"optim.name": "sgd", "optim.lr": 0.05,
                                    "optim.schedule": "constant"})
    config.optim.momentum = 0.9
    one, m1 = _steps(config)
    config.num_devices = 8
    eight, m8 = _steps(config)
    assert float(m1["loss"]) == pytest.approx(float(m8["loss"]), rel=1e-4)
    for a, b in zip(jax.tree.leaves(one), jax.tree.leaves(eight)):
        np.testing.assert_allclose(a, b, rtol=2e-3, atol=2e-5)


def test_hard_negative_phase_trains_only_idlas_top_layer(tiny_config, tmp_path):
    """synthetic_tiny: epoch 1 random negatives, epoch 2 hard negatives (fc2 only)."""
    config = tiny_config(idla)
    assert config.train.num_epochs - config.pairs.hard_negative_epochs == 1
    config.train.stop_after_epochs = 1
    first = loop.train(config, str(tmp_path))
    config.train.stop_after_epochs = 0
    second = loop.train(config, str(tmp_path))  # resumes into the hard epoch
    before = jax.device_get(first["state"].train.params["model"])
    after = jax.device_get(second["state"].train.params["model"])
    moved = {name for name in after if any(
        not np.array_equal(a, b) for a, b in zip(jax.tree.leaves(after[name]),
                                                  jax.tree.leaves(before[name])))}
    assert moved == {"fc2"}
    # the first epoch trained everything
    init = jax.device_get(loop.build(config)[0].state.train.params["model"])
    assert not np.array_equal(init["conv1"]["kernel"], before["conv1"]["kernel"])


def test_idla_through_the_command_line_train_then_eval(tfds_dir, tmp_path):
    env = dict(os.environ, TFDS_DATA_DIR=tfds_dir, XLA_FLAGS="", JAX_PLATFORMS="cpu")
    base = [sys.executable, "-m", "reid_jax.main", "--config", "experiments/idla.py:synthetic_tiny",
            "--workdir", str(tmp_path)]
    for extra in ([], ["--mode=eval"]):
        done = subprocess.run(base + extra, cwd=ROOT, env=env, capture_output=True, text=True,
                              timeout=300)
        assert done.returncode == 0, done.stderr[-2000:]
        assert "rank1" in done.stdout and "mAP" in done.stdout
    assert (tmp_path / "ranked_list.png").exists()


def test_gated_scnn_tiny_run_single_shot(tiny_config, tmp_path):
    config = tiny_config(gated_scnn, **{"eval.evaluators": ("single_shot", "retrieval"),
                                        "eval.single_shot_draws": 2, "eval.rerank": True,
                                        "eval.rerank_k1": 5, "eval.rerank_k2": 2})
    res = main.run(config, str(tmp_path), "train")
    shot = res["evaluations"]["single_shot"]
    assert shot["num_splits"] == 2 and 0.0 <= shot["rank1"] <= 1.0
    full = res["evaluations"]["retrieval"]
    assert full["num_valid_queries"] > 0 and 0.0 <= full["rerank_mAP"] <= 1.0
    # re-ranking on pair scores is the dense algorithm on the shifted pair-distance matrix
    trainer, ctx = loop.build(config, for_eval=True)
    variables = trainer.eval_variables(res["state"])
    ev = evaluators.Evaluators(config, ctx.mesh)
    query, gallery = ev.split(config.data.query), ev.split(config.data.gallery)
    scorer = retrieval.Scorer(trainer.model, variables, config, ctx.mesh)
    qf, gf = scorer.represent(query, "q"), scorer.represent(gallery, "g")
    both = np.concatenate([qf, gf])
    whole = np.asarray(trainer.model.apply(
        variables, jnp.asarray(np.repeat(both, len(both), 0)), jnp.asarray(np.tile(both, (len(both), 1, 1, 1))),
        method="compare")["pair_distance"]).reshape(len(both), len(both))
    want = rerank.rerank_distances(whole - whole.min(), len(qf), 5, 2, 0.3)
    np.testing.assert_allclose(retrieval.pair_rerank(scorer, qf, gf, config), want, atol=1e-5)
    assert (tmp_path / "ranked_list.png").exists()
