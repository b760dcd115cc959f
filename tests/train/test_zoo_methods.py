"""Each model-zoo method trains 2 steps and evaluates in its tiny configuration.

One test per method, 1 epoch of data.steps_per_epoch=2 on synthetic_persons/tiny, so
each pays one small compile. They check the config builds the intended model, that the
loss terms the method should produce appear and are finite, and that evaluation runs.
"""

import json
import math

import flax
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from experiments import agw, apr, bot_ibn, common, ianet, idver, margin, pcb
from reid_jax import config_schema, errors
from reid_jax.data import sources
from reid_jax.losses import classification, metric, objective
from reid_jax.losses import margin as margin_lib
from reid_jax.models import zoo
from reid_jax.train import init, loop


def _tiny(module, tfds_dir, arg="synthetic_tiny"):
    c = module.get_config(arg)
    c.data.data_dir = tfds_dir
    c.num_devices = 1
    c.eval.before_training = False
    c.data.steps_per_epoch = 2
    c.train.num_epochs = 1
    return c


def _train(config, workdir):
    """Runs the trainer; returns (result, last logged train metrics)."""
    result = loop.train(config, str(workdir))
    with open(result["paths"]["metrics"]) as f:
        records = [json.loads(line) for line in f]
    train = [r for r in records if any(k.startswith("train/") for k in r)]
    assert int(jax.device_get(result["state"].train.step)) == 2
    assert result["after"]["num_valid_queries"] > 0
    assert 0.0 <= result["after"]["mAP"] <= 1.0
    for key, value in train[-1].items():
        assert math.isfinite(value), key
    return result, train[-1]


def _param_names(result):
    params = result["state"].train.params["model"]
    return {"/".join(str(getattr(k, "key", k)) for k in path)
            for path, _ in jax.tree_util.tree_flatten_with_path(params)[0]}


def test_bot_ibn(tfds_dir, tmp_path):
    config = _tiny(bot_ibn, tfds_dir)
    assert config.model.norm == "ibn_a"
    result, metrics = _train(config, tmp_path)
    assert any("/bn1/IN/" in n for n in _param_names(result))
    assert {"train/id_loss", "train/triplet_loss"} <= set(metrics)


def test_agw(tfds_dir, tmp_path):
    config = _tiny(agw, tfds_dir)
    result, metrics = _train(config, tmp_path)
    names = _param_names(result)
    assert any("NL_2_0" in n for n in names)
    assert any(n.startswith("pool/p") for n in names)
    assert {"train/id_loss", "train/triplet_loss"} <= set(metrics)
    assert "train/center_loss" not in metrics


def test_pcb(tfds_dir, tmp_path):
    config = _tiny(pcb, tfds_dir)
    result, metrics = _train(config, tmp_path)
    assert "pcb/fc_kernel" in _param_names(result)
    assert "train/id_loss" in metrics and "train/triplet_loss" not in metrics
    # Six stripe classifiers over K classes start near uniform: the sum is about 6 log K.
    assert metrics["train/id_loss"] > 3 * np.log(2)


def test_margin_cosface_with_circle(tfds_dir, tmp_path):
    config = _tiny(margin, tfds_dir, "circle-synthetic_tiny")
    assert config.loss.margin_softmax == "cosface" and config.loss.triplet_weight == 0
    result, metrics = _train(config, tmp_path)
    assert "neck/classifier/kernel" in _param_names(result)
    assert {"train/id_loss", "train/circle_loss"} <= set(metrics)


def test_ianet(tfds_dir, tmp_path):
    config = _tiny(ianet, tfds_dir)
    result, metrics = _train(config, tmp_path)
    names = _param_names(result)
    assert any(n.startswith("backbone/IA_2/") for n in names)
    assert any(n.startswith("backbone/IA_3/") for n in names)
    assert {"train/id_loss", "train/triplet_loss"} <= set(metrics)


def test_identification_verification(tfds_dir, tmp_path):
    config = _tiny(idver, tfds_dir)
    result, metrics = _train(config, tmp_path)
    assert "verification/kernel" in _param_names(result)
    assert {"train/id_loss", "train/verification_loss", "train/verification_acc"} <= set(metrics)
    assert "train/triplet_loss" not in metrics


def test_rpp_from_a_pcb_run(tfds_dir, tmp_path):
    """PCB 2 steps, then RPP from it: both held steps move only the part classifier."""
    pcb_result, _ = _train(_tiny(pcb, tfds_dir), tmp_path / "pcb")
    config = _tiny(pcb, tfds_dir, "rpp-synthetic_tiny")
    assert config.model.rpp and config.optim.rpp_classifier_only_epochs == 0  # official: joint
    with pytest.raises(errors.ReidError, match="init_from_run"):
        loop.train(config, str(tmp_path / "no_pcb"))
    config.model.init_from_run = str(tmp_path / "pcb")
    config.optim.rpp_classifier_only_epochs = 1  # = both steps of the 1-epoch run
    result, metrics = _train(config, tmp_path / "rpp")
    assert "train/id_loss" in metrics
    before = flax.traverse_util.flatten_dict(jax.device_get(pcb_result["state"].train.params["model"]))
    after = flax.traverse_util.flatten_dict(jax.device_get(result["state"].train.params["model"]))
    assert set(after) - set(before) == {("rpp_classifier", "classifier", "kernel"),
                                        ("rpp_classifier", "classifier", "bias")}
    for key, value in before.items():
        np.testing.assert_array_equal(after[key], value, err_msg="/".join(key))
    assert not np.allclose(after[("rpp_classifier", "classifier", "kernel")], 0.0)
    fresh = init.model_variables(zoo.build_model(config.model, 8), config,
                                 jax.random.key(config.seed), load=False)[0]
    assert not np.allclose(after[("rpp_classifier", "classifier", "kernel")],
                           fresh["rpp_classifier"]["classifier"]["kernel"])


def test_apr_attributes_from_the_builder(tfds_dir, tmp_path):
    """synthetic_persons carries 8 attributes per image: APR trains 2 steps and logs them."""
    config = _tiny(apr, tfds_dir)
    assert config.model.num_attributes == 8
    train = sources.open_train(config.data)
    assert train.attributes.shape == (len(train), 8) and (train.attributes >= 0).all()
    _, metrics = _train(config, tmp_path)
    assert {"train/attribute_loss", "train/attribute_acc", "train/id_loss"} <= set(metrics)
    assert 0.0 <= metrics["train/attribute_acc"] <= 1.0
    assert np.isclose(metrics["train/loss"],
                      metrics["train/id_loss"] + metrics["train/attribute_loss"] / 8, rtol=1e-5)
    # Batches without attributes: the loss refuses rather than dropping the term.
    out = {"features": jnp.zeros((2, 4)), "logits": jnp.zeros((2, 3)),
           "attribute_logits": jnp.zeros((2, 8))}
    with pytest.raises(errors.ReidError, match="attributes"):
        objective.loss_terms(out, jnp.array([0, 1]), None, config.loss, None)


def test_apr_on_a_dataset_without_attributes_borrows_them():
    """cuhk01+synthetic trains CUHK01 with the rendered identities' attributes, tests on CUHK01.

    (How a part without attributes becomes all-unknown is tested in test_attributes.py.)
    """
    config = apr.get_config("cuhk01+synthetic")
    assert config.data.train == "cuhk01/p486_s0:train," + apr.ATTRIBUTE_SOURCE
    assert (config.data.query, config.data.gallery) == ("query", "gallery")
    assert config.data.dataset == "cuhk01/p486_s0"
    assert config.model.num_attributes == 8 and config.data.steps_per_epoch == 30
    assert config.loss.attribute_weight == apr.ATTRIBUTE_WEIGHT


def _loss_cfg(**keys):
    c = common.base_config("supervised").loss
    c.center_weight = 0.0
    for k, v in keys.items():
        c[k] = v
    return c


def test_loss_terms_dispatch_matches_the_loss_functions():
    """loss_terms routes each config key to the right loss (no model, no compile)."""
    rng = np.random.default_rng(0)
    labels = jnp.array([0, 0, 1, 1, 2, 2])
    feats = jnp.asarray(rng.normal(size=(6, 8)), jnp.float32)
    cos = jnp.asarray(rng.uniform(-0.9, 0.9, size=(6, 3)), jnp.float32)
    parts = jnp.asarray(rng.normal(size=(6, 4, 3)), jnp.float32)
    out = {"features": feats, "logits": cos}

    bot = objective.loss_terms(out, labels, None, _loss_cfg())
    np.testing.assert_allclose(bot["triplet_loss"], metric.batch_hard_triplet(feats, labels))
    wrt = objective.loss_terms(out, labels, None, _loss_cfg(triplet="wrt"))
    np.testing.assert_allclose(wrt["triplet_loss"], metric.weighted_regularized_triplet(feats, labels))

    cosface = objective.loss_terms(out, labels, None, _loss_cfg(
        margin_softmax="cosface", margin_scale=30.0, margin_m=0.35))
    ref = classification.cross_entropy(margin_lib.cosface_logits(cos, labels, 30.0, 0.35), labels, 0.1)
    np.testing.assert_allclose(cosface["id_loss"], ref, rtol=1e-6)
    arc = objective.loss_terms(out, labels, None, _loss_cfg(
        margin_softmax="arcface", margin_scale=margin_lib.ARCFACE_SCALE, margin_m=0.5))
    ref = classification.cross_entropy(margin_lib.arcface_logits(cos, labels), labels, 0.1)
    np.testing.assert_allclose(arc["id_loss"], ref, rtol=1e-6)

    circle = objective.loss_terms(out, labels, None, _loss_cfg(triplet_weight=0.0, circle_weight=2.0))
    assert "triplet_loss" not in circle
    np.testing.assert_allclose(circle["loss"], circle["id_loss"] + 2 * circle["circle_loss"], rtol=1e-6)

    pcb_out = {"features": feats, "logits": None, "part_logits": parts}
    per_part = [classification.cross_entropy(parts[:, p], labels, 0.0) for p in range(4)]
    pcb_sum = objective.loss_terms(pcb_out, labels, None, _loss_cfg(label_smoothing=0.0, triplet_weight=0.0))
    np.testing.assert_allclose(pcb_sum["id_loss"], sum(per_part), rtol=1e-6)
    pcb_mean = objective.loss_terms(pcb_out, labels, None, _loss_cfg(
        label_smoothing=0.0, triplet_weight=0.0, part_reduction="mean"))
    np.testing.assert_allclose(pcb_mean["id_loss"], sum(per_part) / 4, rtol=1e-6)

    unlabeled = jnp.array([0, 0, 1, 1, -1, -1])
    lsro_terms = objective.loss_terms(out, unlabeled, None, _loss_cfg(triplet_weight=0.0, lsro=True))
    assert np.isfinite(float(lsro_terms["loss"]))

    with pytest.raises(errors.ReidError, match="margin_softmax.*choose from"):
        config_schema.check_value("loss.margin_softmax", "sphereface",
                                  objective.CONFIG["margin_softmax"])
    with pytest.raises(errors.ReidError, match="verification"):
        objective.loss_terms(out, labels, None, _loss_cfg(verification_weight=1.0))


def test_lsro_appends_unlabeled_pictures(tfds_dir, tmp_path, monkeypatch):
    """lsro-: every batch is P x K labelled pictures, then unlabeled ones with label -1."""
    config = _tiny(idver, tfds_dir, "lsro-synthetic_tiny")
    assert config.loss.lsro and config.data.unlabeled == idver.LSRO_EXTRA_SYNTHETIC
    assert idver.get_config("lsro-cuhk01").data.unlabeled == idver.LSRO_EXTRA
    config.data.unlabeled = "synthetic_persons/tiny:query"  # the tiny set's own pictures
    config.data.unlabeled_per_batch = 4
    seen = []
    loader = loop.pipeline.train_loader

    def recording_loader(data, batches, *args):
        seen.append((np.asarray(data.labels)[batches], np.asarray(data.domains)[batches]))
        return loader(data, batches, *args)

    monkeypatch.setattr(loop.pipeline, "train_loader", recording_loader)
    result, metrics = _train(config, tmp_path)
    labels, domains = seen[0]
    pk = config.data.p * config.data.k
    assert labels.shape == (2, pk + 4)
    assert (labels[:, :pk] >= 0).all() and (domains[:, :pk] == 0).all()
    assert (labels[:, pk:] == -1).all() and (domains[:, pk:] == 1).all()
    # The classifier covers the labelled identities only.
    train = sources.open_data([("synthetic_persons/tiny", "train")], tfds_dir)
    kernel = result["state"].train.params["model"]["neck"]["classifier"]["kernel"]
    assert kernel.shape[-1] == train.num_classes
    assert {"train/id_loss", "train/verification_loss"} <= set(metrics)
    # --mode=eval leaves the unlabeled pictures unread and restores the same classifier.
    evaluated = loop.evaluate(config, str(tmp_path))
    np.testing.assert_allclose(evaluated["after"]["mAP"], result["after"]["mAP"], rtol=1e-6)


@pytest.mark.parametrize("change, match", [
    (dict(lsro=False), "loss.lsro"),
    (dict(triplet_weight=0.3), "triplet"),
    (dict(per_batch=0), "unlabeled_per_batch"),
])
def test_lsro_refuses_unusable_settings(tfds_dir, tmp_path, change, match):
    config = _tiny(idver, tfds_dir, "lsro-synthetic_tiny")
    config.data.unlabeled = "synthetic_persons/tiny:query"
    config.loss.lsro = change.get("lsro", True)
    config.loss.triplet_weight = change.get("triplet_weight", 0.0)
    config.data.unlabeled_per_batch = change.get("per_batch", 4)
    with pytest.raises(errors.ReidError, match=match):
        loop.train(config, str(tmp_path))
