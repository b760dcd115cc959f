"""The clustering trainers: two-round tiny runs, exact resume, hidden labels, PartNet."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from experiments import cap, cluster_contrast, mmt, pplr
from reid_jax import errors
from reid_jax.models import heads, parts
from reid_jax.train import forward, loop, rounds


def _config(module, tfds_dir, **overrides):
    c = module.get_config("synthetic_tiny")
    c.data.data_dir = tfds_dir
    c.num_devices = 1
    c.eval.before_training = False
    for key, value in overrides.items():
        node, leaf = key.rsplit(".", 1) if "." in key else ("", key)
        (c if not node else c[node])[leaf] = value
    return c


def _leaves(state):
    return [np.asarray(x) for x in jax.tree.leaves(jax.device_get(state))]


def test_cluster_contrast_two_rounds_and_exact_resume(tfds_dir, tmp_path):
    config = _config(cluster_contrast, tfds_dir)
    full = loop.train(config, str(tmp_path / "full"))
    assert full["epochs_done"] == 2 and len(full["rounds"]) == 2
    for r in full["rounds"]:
        assert r["num_clusters"] >= config.data.p
        assert 0.0 <= r["nmi"] <= 1.0
    cs = full["state"]
    assert int(cs.train.step) == 2 * config.data.steps_per_epoch
    # The memory holds unit rows for the round's clusters, zeros beyond.
    mem = np.asarray(cs.memory)
    c = int(cs.num_clusters)
    np.testing.assert_allclose(np.linalg.norm(mem[:c], axis=1), 1.0, atol=1e-5)
    np.testing.assert_array_equal(mem[c:], 0.0)
    assert 0.0 <= full["after"]["mAP"] <= 1.0

    # Interrupted after the first epoch (round), then resumed in the same workdir.
    first = loop.train(
        _config(cluster_contrast, tfds_dir, **{"train.stop_after_epochs": 1}), str(tmp_path / "re")
    )
    assert first["epochs_done"] == 1
    resumed = loop.train(config, str(tmp_path / "re"))
    assert len(resumed["rounds"]) == 1
    assert resumed["rounds"][0]["num_clusters"] == full["rounds"][1]["num_clusters"]
    for a, b in zip(_leaves(full["state"]), _leaves(resumed["state"])):
        np.testing.assert_array_equal(a, b)
    assert resumed["after"] == full["after"]


def test_pplr_two_rounds(tfds_dir, tmp_path):
    config = _config(pplr, tfds_dir)
    res = loop.train(config, str(tmp_path / "pplr"))
    assert len(res["rounds"]) == 2
    for r in res["rounds"]:
        for p in range(3):
            assert 0.0 <= r[f"agreement_part{p}"] <= 1.0
    cs = res["state"]
    assert np.asarray(cs.agreement).shape == (len(cs.agreement), 3)
    assert np.isfinite(_leaves(cs.train.params)[0]).all()
    # Evaluating the checkpoint gives the final numbers again.
    again = loop.evaluate(config, str(tmp_path / "pplr"))
    assert again["after"] == res["after"]


def test_cap_two_rounds(tfds_dir, tmp_path):
    config = _config(cap, tfds_dir)
    res = loop.train(config, str(tmp_path / "cap"))
    assert len(res["rounds"]) == 2
    cs = res["state"]
    m = int(cs.num_proxies)
    assert m == res["rounds"][-1]["num_proxies"] >= res["rounds"][-1]["num_clusters"]
    pc, cams = np.asarray(cs.proxy_cluster), np.asarray(cs.proxy_camera)
    assert (pc[:m] >= 0).all() and (pc[m:] == -1).all() and (cams[:m] >= 0).all()
    np.testing.assert_allclose(np.linalg.norm(np.asarray(cs.memory)[:m], axis=1), 1.0, atol=1e-5)


def test_mmt_two_rounds_with_mean_teachers(tfds_dir, tmp_path):
    config = _config(mmt, tfds_dir)
    res = loop.train(config, str(tmp_path / "mmt"))
    assert [r["num_clusters"] for r in res["rounds"]] == [4, 4]
    cs = res["state"]
    students = jax.device_get(cs.train.params)
    teachers = jax.device_get(cs.teachers["params"])
    assert set(students) == {"model", "model2"}
    diffs = [float(np.abs(a - b).max()) for a, b in zip(jax.tree.leaves(students["model"]),
                                                         jax.tree.leaves(teachers["model"]))]
    assert max(diffs) > 0  # the teacher lags the student
    # A fresh Adam every round (the official script builds it inside the epoch loop): the
    # optimizer has counted only the last round's steps.
    counts = [int(v) for path, v in jax.tree_util.tree_flatten_with_path(
        jax.device_get(cs.train.opt_state))[0] if "count" in jax.tree_util.keystr(path)]
    assert counts and set(counts) == {config.data.steps_per_epoch}
    # The two students started from different initialisations.
    k1 = students["model"]["backbone"]
    k2 = students["model2"]["backbone"]
    assert not np.allclose(jax.tree.leaves(k1)[0], jax.tree.leaves(k2)[0])


def test_trainer_never_sees_identity_labels(tfds_dir, tmp_path, monkeypatch):
    seen = []
    real = rounds.cluster

    def spy(s, config, feats, epoch):
        seen.append((s.data.labels.copy(), s.data.person_ids.copy()))
        return real(s, config, feats, epoch)

    monkeypatch.setattr(rounds, "cluster", spy)
    config = _config(cluster_contrast, tfds_dir, **{"train.stop_after_epochs": 1})
    loop.train(config, str(tmp_path / "spy"))
    labels, pids = seen[0]
    assert (labels == -1).all() and (pids == -1).all()


def test_too_few_clusters_is_a_clear_error(tfds_dir, tmp_path):
    config = _config(cluster_contrast, tfds_dir, **{"cluster.eps": 0.01, "cluster.min_samples": 40})
    with pytest.raises(errors.ReidError, match="clusters, fewer than data.p"):
        loop.train(config, str(tmp_path / "few"))


def test_grouped_batchnorm_equals_separate_forwards():
    from reid_jax.models import zoo

    model = zoo.ReIDNet(backbone="resnet18", stage_sizes=(1, 1, 1, 1), width=8)
    x = jax.random.normal(jax.random.key(0), (8, 32, 16, 3))
    variables = model.init(jax.random.key(1), x, train=False)
    params, stats = variables["params"], variables["batch_stats"]
    out, new_stats = forward.apply_train(model, params, stats, x, bn_group_size=4)
    parts_out = [
        model.apply({"params": params, "batch_stats": stats}, x[i:i + 4], train=True,
                    mutable=["batch_stats"])
        for i in (0, 4)
    ]
    want = np.concatenate([np.asarray(o["neck_features"]) for o, _ in parts_out])
    np.testing.assert_allclose(out["neck_features"], want, rtol=1e-4, atol=1e-5)
    mean_stats = jax.tree.map(lambda a, b: (a + b) / 2, parts_out[0][1]["batch_stats"],
                              parts_out[1][1]["batch_stats"])
    for a, b in zip(jax.tree.leaves(new_stats), jax.tree.leaves(mean_stats)):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
    whole, _ = forward.apply_train(model, params, stats, x, bn_group_size=0)
    assert not np.allclose(whole["neck_features"], want, atol=1e-3)


def test_stripe_pool_uses_adaptive_bins():
    x = jnp.arange(2 * 8 * 2 * 1, dtype=jnp.float32).reshape(2, 8, 2, 1)
    got = heads.stripe_pool(x, 3)  # bins [0, 3), [2, 6), [5, 8)
    xn = np.asarray(x)
    want = np.stack([xn[:, 0:3].mean((1, 2)), xn[:, 2:6].mean((1, 2)), xn[:, 5:8].mean((1, 2))], 1)
    np.testing.assert_allclose(got, want)


def test_part_net_outputs():
    model = parts.PartNet(backbone="resnet18", stage_sizes=(1, 1, 1, 1), width=8, num_classes=5)
    x = jnp.zeros((2, 32, 16, 3))
    out = jax.eval_shape(lambda: model.init_with_output(jax.random.key(0), x, train=False)[0])
    assert out["neck_features"].shape == (2, 64)
    assert out["part_features"].shape == (2, 3, 64)
    assert out["part_logits"].shape == (2, 3, 5)
    assert out["all_features"].shape == (2, 4, 64)
