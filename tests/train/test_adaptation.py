"""Domain adaptation, source -> target: the source run's target-BatchNorm forward, the
'SOURCE->TARGET' configs, the check of the source run, and a two-round adaptation of
every clustering method from a tiny source run, end to end."""

import os

import jax
import numpy as np
import pytest
from PIL import Image

from data_builders import registry
from experiments import bot, cap, cluster_contrast, common, mmt, pplr
from reid_jax import errors, main, plots, sharding
from reid_jax.train import forward, loop

SOURCE, TARGET = "synthetic_multidomain_tiny", "synthetic_tiny"
ARG = f"{SOURCE}->{TARGET}"
METHODS = {"cluster_contrast": cluster_contrast, "pplr": pplr, "cap": cap, "mmt": mmt}
AUG_OFF = {"aug.flip": 0.0, "aug.pad": 0, "aug.erasing": 0.0}
ERASING = ("aug.erasing_max_area", "aug.erasing_aspect", "aug.erasing_tries", "aug.erasing_fill")


def _config(module, arg, tfds_dir, **overrides):
    c = module.get_config(arg)
    c.data.data_dir, c.num_devices = tfds_dir, 1
    for key, value in overrides.items():
        node, _, leaf = key.rpartition(".")
        (c[node] if node else c)[leaf] = value
    return c


@pytest.fixture(scope="module")
def source_runs(tfds_dir, tmp_path_factory):
    """Two tiny supervised source runs (seeds 1, 2) on the multidomain pictures, each
    evaluated on the target: {workdir: its final target results}."""
    registry.prepare("synthetic_persons/multidomain_tiny", data_dir=tfds_dir)
    runs = {}
    for seed in (1, 2):
        c = _config(bot, ARG, tfds_dir, **{"eval.before_training": False, "seed": seed,
                                           "train.num_epochs": 1, "data.steps_per_epoch": 2})
        workdir = str(tmp_path_factory.mktemp(f"source{seed}"))
        runs[workdir] = loop.train(c, workdir)["after"]
    return runs


def test_source_config_evaluates_on_the_target_and_adapts_batchnorm_to_it():
    c = bot.get_config("synthetic_all->cuhk01")
    target = common.DATASETS["cuhk01"]["dataset"]
    assert (c.data.query, c.data.gallery) == (f"{target}:query", f"{target}:gallery")
    assert c.data.bn_target == f"{target}:train"
    assert c.data.bn_target_per_batch == c.data.p * c.data.k
    assert "multidomain:train_d3" in c.data.train and not c.data.source


def test_transfer_arguments_are_checked():
    with pytest.raises(ValueError, match="quote it"):
        cluster_contrast.get_config("synthetic-")  # what the shell leaves of an unquoted '->'
    with pytest.raises(ValueError, match="unknown source 'nowhere'"):
        cluster_contrast.get_config("nowhere->cuhk01")
    with pytest.raises(ValueError, match="unknown target 'nowhere'"):
        mmt.get_config("synthetic->nowhere")
    c = pplr.get_config("synthetic_all->cuhk01")
    assert c.data.dataset == common.DATASETS["cuhk01"]["dataset"]
    assert c.data.source.split(",")[0] == "synthetic_persons/default:train"


def test_bn_target_forward_changes_batchnorm_statistics_only(tiny_config):
    """One step with target pictures appended: the same parameters as without them, and
    the running statistics of one more training-mode forward of the target pictures."""
    plain = tiny_config(bot, **AUG_OFF)
    with_target = tiny_config(bot, **AUG_OFF, **{
        "data.bn_target": "synthetic_persons/tiny:query", "data.bn_target_per_batch": 8})
    for c in (plain, with_target):
        common.reset(c, *ERASING)
    n = plain.data.p * plain.data.k
    (tp, ctx), (tt, _) = loop.build(plain), loop.build(with_target)
    sp, [bp] = loop.host_batches(tp, plain, tp.state, limit=1)
    st, [bt] = loop.host_batches(tt, with_target, tt.state, limit=1)
    np.testing.assert_array_equal(bt["image"][:n], bp["image"])
    assert bt["image"].shape[0] == n + 8
    rng = jax.random.key(3)
    params0 = jax.device_get(st.train.params)["model"]  # the step donates its state
    new_p, _ = tp.train_step(sp, sharding.to_global(bp, ctx.mesh), rng)
    new_t, _ = tt.train_step(st, sharding.to_global(bt, ctx.mesh), rng)
    got_p, got_t = jax.device_get(new_p.train), jax.device_get(new_t.train)
    jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6),
                 got_t.params, got_p.params)
    # Reference: the plain step's statistics, then the target pictures in training mode.
    fwd = forward.Forward.from_config(tt.model, with_target)
    x = fwd.augment(rng, 0, bt["image"][n:])  # augmentation off: resize + normalise only
    _, ref = tt.model.apply(
        {"params": params0, "batch_stats": got_p.batch_stats},
        x, train=True, mutable=["batch_stats"])
    jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5),
                 got_t.batch_stats, ref["batch_stats"])
    assert not np.allclose(jax.tree.leaves(got_t.batch_stats)[0],
                           jax.tree.leaves(got_p.batch_stats)[0])


def test_bn_target_needs_its_count(tiny_config):
    c = tiny_config(bot, **{"data.bn_target": "synthetic_persons/tiny:query"})
    with pytest.raises(errors.ReidError, match="bn_target_per_batch"):
        loop.build(c)


def test_adaptation_refuses_to_start_without_the_source_run(tfds_dir, source_runs, tmp_path):
    c = _config(cluster_contrast, ARG, tfds_dir)
    with pytest.raises(errors.ReidError, match="pass --config.model.init_from_run"):
        loop.build(c)
    other = tmp_path / "other"
    c2 = bot.get_config("synthetic_tiny")  # a run trained on the target's own pictures
    c2.data.data_dir, c2.num_devices, c2.eval.before_training = tfds_dir, 1, False
    c2.train.num_epochs, c2.data.steps_per_epoch = 1, 1
    loop.train(c2, str(other))
    c.model.init_from_run = str(other)
    with pytest.raises(errors.ReidError, match="config.data.source"):
        loop.build(c)


@pytest.mark.parametrize("method", sorted(METHODS))
def test_two_rounds_of_adaptation_from_the_source_runs(method, tfds_dir, source_runs, tmp_path):
    runs = list(source_runs)
    c = _config(METHODS[method], ARG, tfds_dir, **{
        "model.init_from_run": ",".join(runs if method == "mmt" else runs[:1]),
        "eval.before_training": True})
    if c.cluster.method == "dbscan":  # a trained start: features closer than at random init
        c.cluster.eps = 0.5
    assert c.train.num_epochs >= 2
    c.train.num_epochs = 2
    workdir = str(tmp_path / method)
    result = main.run(c, workdir, "train")
    assert result["before_label"] == "direct transfer (source model)"
    if method != "mmt":  # the target evaluation before adapting is the source run's own
        for key in ("rank1", "mAP"):
            assert result["before"][key] == pytest.approx(source_runs[runs[0]][key], abs=1e-6)
    rounds = plots.read_rounds(workdir)
    assert [r["round"] for r in rounds] == [1, 2]
    for r in rounds:
        assert r["num_clusters"] >= c.data.p
        for key in ("nmi", "purity", "camera_purity", "outlier_fraction"):
            assert 0.0 <= r[key] <= 1.0, (key, r)
    with Image.open(result["paths"]["cluster_rounds"]) as png:
        assert png.format == "PNG" and png.width >= 5 * 300
    assert os.path.exists(os.path.join(workdir, "ranked_list.png"))
    assert np.isfinite(result["after"]["mAP"])


def test_read_rounds_keeps_the_resumed_record(tmp_path):
    rows = [{"step": 1, "cluster/round": 1, "cluster/nmi": 0.1},
            {"step": 2, "cluster/round": 2, "cluster/nmi": 0.2},
            {"step": 2, "train/loss": 1.0},
            {"step": 2, "cluster/round": 2, "cluster/nmi": 0.3}]  # round 2 again, resumed
    with open(tmp_path / "metrics.jsonl", "w") as f:
        f.write("\n".join(__import__("json").dumps(r) for r in rows) + "\n")
    got = plots.read_rounds(str(tmp_path))
    assert [(r["round"], r["nmi"]) for r in got] == [(1, 0.1), (2, 0.3)]


def test_line_panels_draws_each_series_in_its_colour(tmp_path):
    path = plots.line_panels({"nmi": {"a": [(1, 0.0), (2, 1.0)], "b": [(1, 1.0), (2, 0.0)]},
                              "num_clusters": {"a": [(1, 40), (2, 60)]}},
                             str(tmp_path / "p.png"), title="t")
    with Image.open(path) as png:
        pixels = np.asarray(png.convert("RGB")).reshape(-1, 3)
    colours = {tuple(p) for p in pixels}
    assert (31, 119, 180) in colours and (255, 127, 14) in colours


def test_adaptation_to_a_custom_folder_dataset(tfds_dir, source_runs, tmp_path):
    """The same protocol on a dataset the user builds: a CUHK01-layout folder read by
    custom_folder, named by --config.data.dataset; nothing dataset-specific is needed."""
    from data_builders.cuhk01 import fixture as cuhk01_fixture
    from data_builders.custom_folder import custom_folder_dataset_builder as custom

    manual = cuhk01_fixture.make_campus(str(tmp_path / "campus"), num_ids=16, size=(32, 16))
    registry.prepare("custom_folder/campus_t", data_dir=tfds_dir, manual_dir=manual,
                     config=custom.CustomConfig(
                         name="campus_t", domain="campus", num_test_ids=6, encoding_format="png",
                         pattern=r"campus/(?P<pid>\d{4})(?:(?P<cam0>00[12])|(?P<cam1>00[34]))\.png"))
    runs = list(source_runs)
    c = _config(cluster_contrast, ARG, tfds_dir, **{
        "model.init_from_run": runs[0], "eval.before_training": True,
        "data.dataset": "custom_folder/campus_t", "train.num_epochs": 2,
        "cluster.min_samples": 2})
    result = main.run(c, str(tmp_path / "cc"), "train")
    assert [r["round"] for r in plots.read_rounds(str(tmp_path / "cc"))] == [1, 2]
    assert result["before_label"] == "direct transfer (source model)"
    assert 0.0 <= result["after"]["mAP"] <= 1.0
    src = bot.get_config(f"{SOURCE}->custom_folder/campus_t")  # the source side, evaluated there
    assert src.data.query == "custom_folder/campus_t:query"
    assert src.data.bn_target == "custom_folder/campus_t:train"


def test_oracle_labels_are_the_hidden_identities():
    from reid_jax.clustering import pseudo_labels

    ids = np.array([7, 7, 3, 9, 3, 7])
    clus = pseudo_labels.oracle(ids)
    assert clus.num_clusters == 3 and clus.num_outliers == 0
    np.testing.assert_array_equal(clus.labels, [0, 0, 1, 2, 1, 0])
    q = pseudo_labels.cluster_quality(clus.labels, ids, np.array([0, 1, 0, 1, 1, 0]))
    assert q["purity"] == 1.0 and q["nmi"] == pytest.approx(1.0)
