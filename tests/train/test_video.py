"""The video and TKP trainers: config rules, tracklet features against a NumPy reference
(video networks and image networks), two steps on 8 devices equal to 1, tiny runs through
the command line and through ``main.run`` with V2V and I2V evaluation."""

import os
import subprocess
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from data_builders import registry
from experiments import bot, tkp, video
from reid_jax import config_schema, errors, main, sharding
from reid_jax.data import pipeline, tracklets
from reid_jax.evaluation import evaluators
from reid_jax.evaluation import video as video_eval
from reid_jax.train import loop

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def test_config_errors_are_one_line(tiny_config):
    c = tiny_config(video, **{"eval.evaluators": ("retrieval",)})
    with pytest.raises(errors.ReidError, match="evaluated on tracklets"):
        config_schema.validate(c)
    c = tiny_config(video, **{"data.clip_len": 4, "train.bn_group_size": 2})
    with pytest.raises(errors.ReidError, match="whole clips"):
        config_schema.validate(c)
    c = tiny_config(video, **{"loss.center_weight": 0.1})
    with pytest.raises(errors.ReidError, match="center_weight"):
        config_schema.validate(c)
    c = tiny_config(bot, **{"model.name": "video_net"})
    with pytest.raises(errors.ReidError, match="trainer 'video'"):
        config_schema.validate(c)
    c = tiny_config(tkp, **{"tkp.id_weight": 0.0, "tkp.triplet_weight": 0.0})
    with pytest.raises(errors.ReidError, match="nothing trains"):
        config_schema.validate(c)
    c = tiny_config(bot, **{"data.clip_len": 8})  # a video key on an image network
    with pytest.raises(errors.ReidError, match="clip_len"):
        config_schema.validate(c, {"data.clip_len"})


def test_every_video_builder_config_has_a_training_config():
    assert set(video.REAL) == set(registry.VIDEO)
    for name in registry.VIDEO:
        builder = registry.builder_class(name)
        for cfg in builder.BUILDER_CONFIGS:
            c = video.get_config(name)
            c.data.dataset = f"{name}/{cfg.name}"  # e.g. ilids_vid/s3: one of the 10 splits
            config_schema.validate(c)
    for arg in tkp.REAL:
        config_schema.validate(tkp.get_config(arg))


def _steps(config, n=2):
    trainer, ctx = loop.build(config)
    state, batches = loop.host_batches(trainer, config, trainer.state, 0, n)
    for b in batches:
        state, metrics = trainer.train_step(state, sharding.to_global(b, ctx.mesh),
                                            jax.random.key(3))
    return jax.device_get(state.train.params), metrics


@pytest.mark.parametrize("module, overrides", [
    (video, {}), (video, {"model.temporal": "attention"}), (tkp, {})])
def test_eight_devices_equal_one(module, overrides, tiny_config):
    config = tiny_config(module, **{"optim.name": "sgd", "optim.lr": 0.05,
                                    "optim.schedule": "constant", **overrides})
    one, m1 = _steps(config)
    config.num_devices = 8
    eight, m8 = _steps(config)
    assert float(m1["loss"]) == pytest.approx(float(m8["loss"]), rel=1e-4)
    for a, b in zip(jax.tree.leaves(one), jax.tree.leaves(eight)):
        np.testing.assert_allclose(a, b, rtol=2e-3, atol=2e-5)


def test_clip_batches_reach_the_step_as_clips(tiny_config):
    config = tiny_config(video)
    trainer, _ = loop.build(config)
    _, batches = loop.host_batches(trainer, config, trainer.state, 0, 1)
    t, d = config.data.clip_len, config.data
    labels = batches[0]["label"].reshape(d.p * d.k, t)
    assert (labels == labels[:, :1]).all()  # every frame of a clip has its clip's label


def _frame_features(model, variables, data, config, method):
    feats = []
    for i in range(len(data)):
        img = pipeline.load_image(data, i, config.data.height, config.data.width)
        x = (jnp.asarray(img, jnp.float32)[None] / 255.0 - jnp.asarray(
            [0.485, 0.456, 0.406])) / jnp.asarray([0.229, 0.224, 0.225])
        kw = {"method": method} if method else {}
        feats.append(np.asarray(model.apply(variables, x, train=False, **kw)[
            config.eval.feature])[0])
    return np.stack(feats)


@pytest.mark.parametrize("module", [video, bot])
def test_tracklet_features_against_numpy(module, tiny_config):
    """A TAP network's tracklet feature is the weighted mean of its frames' features (dense
    clips, the last one padded); an image network's the mean of its frames' features."""
    if module is bot:
        config = tiny_config(bot, **{"eval.evaluators": ("video",)})
        config.data.dataset = "synthetic_persons/video_tiny"
    else:
        config = tiny_config(video)
    trainer, ctx = loop.build(config, for_eval=True)
    variables = trainer.eval_variables(trainer.state)
    ev = evaluators.Evaluators(config, ctx.mesh)
    gallery = ev.split(config.data.gallery)
    got = video_eval.embed_tracklets(trainer.model, variables, gallery, config, ctx.mesh, "g")
    frames = _frame_features(trainer.model, variables, gallery, config,
                             "images" if module is video else None)
    tracks = tracklets.of(gallery)
    if module is video:
        clips, owner = tracklets.test_clips(tracks, config.data.clip_len, "dense")
        want = np.stack([frames[clips[owner == i]].mean(axis=(0, 1)) for i in range(len(tracks))])
    else:
        want = np.stack([frames[f].mean(0) for f in tracks.frames])
    np.testing.assert_allclose(got.features, want, rtol=1e-4, atol=1e-5)
    assert (got.person_ids == tracks.person_ids).all()


def test_video_through_the_command_line_train_then_eval(tfds_dir, tmp_path):
    env = dict(os.environ, TFDS_DATA_DIR=tfds_dir, XLA_FLAGS="", JAX_PLATFORMS="cpu")
    base = [sys.executable, "-m", "reid_jax.main", "--config",
            "experiments/video.py:synthetic_tiny", "--workdir", str(tmp_path)]
    for extra in ([], ["--mode=eval"]):
        done = subprocess.run(base + extra, cwd=ROOT, env=env, capture_output=True, text=True,
                              timeout=300)
        assert done.returncode == 0, done.stderr[-2000:]
        assert "evaluator image_to_video" in done.stdout and "mAP" in done.stdout
    assert (tmp_path / "ranked_list.png").exists()


def test_tkp_tiny_run_evaluates_both_protocols(tiny_config, tmp_path):
    config = tiny_config(tkp)
    res = main.run(config, str(tmp_path), "train")
    for name in ("image_to_video", "video"):
        out = res["evaluations"][name]
        assert out["num_valid_queries"] > 0 and 0.0 <= out["mAP"] <= 1.0
    params = res["state"].train.params["model"]
    assert set(params) == {"image_net", "video_net", "classifier"}
