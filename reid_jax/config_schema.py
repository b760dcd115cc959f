r"""Every config key, declared once: its default, what it means, and what it accepts.

A config is the keys of the sections every trainer reads (declared here: top level,
``data``, ``aug``, ``model``, ``optim``, ``train``, ``eval``) plus the sections its
trainer declares beside its code (``CONFIG`` of each module in
``reid_jax.train.trainers.TRAINERS``: ``loss`` for the supervised objective,
``cluster`` for pseudo labels, ``pplr``, ``meta``, ...; a trainer may also add keys to
a common section, as the supervised trainer's ``data.unlabeled``).

``defaults(trainer)`` builds the locked ``ConfigDict`` an experiment file starts from
(a key that is not declared cannot be added, in the file or on the command line);
``validate(config)`` checks every value before any work: types, ranges, choices, keys
that are set but cannot be used by the chosen trainer or model, and the trainer's own
cross-key rules. Each problem is one ``ReidError`` naming the key and the fix, which
``reid_jax.main`` prints as one ``error:`` line (exit status 2).

  python -m reid_jax.config_schema            # every key of every trainer, with its meaning
  python -m reid_jax.config_schema supervised # the keys of one trainer
"""

from __future__ import annotations

import dataclasses
import sys
from collections.abc import Callable, Collection, Mapping
from typing import Any

import ml_collections

from reid_jax import errors

Config = ml_collections.ConfigDict
Predicate = Callable[[Config], bool]


@dataclasses.dataclass(frozen=True)
class Key:
    """One declared config key.

    Attributes:
      default: the value of a fresh config; its type is the key's type (an int default
        accepts ints, a float default ints and floats, a tuple default tuples).
      doc: what the key means.
      choices: the allowed values (strings), or the allowed items of a tuple key.
      low: smallest allowed value (numbers, and the items of a tuple of numbers).
      high: largest allowed value.
      when: the key is only usable when this holds; set to anything but its default
        otherwise, it is an error.
      when_doc: the condition of ``when``, for the message ("model.head='pcb'").
      check: extra check of the value; returns a problem description or None.
    """

    default: Any
    doc: str
    choices: tuple = ()
    low: float | None = None
    high: float | None = None
    when: Predicate | None = None
    when_doc: str = ""
    check: Callable[[Any], str | None] | None = None


Section = Mapping[str, Key]


def is_(key: str, *values: Any) -> Predicate:
    """A ``when`` predicate: config ``key`` ('section.name') has one of ``values``."""
    section, name = key.split(".")
    return lambda c: c[section][name] in values


PAIR_MODELS = ("idla", "gated_scnn")  # reid_jax/models/pairwise.py
VIDEO_MODELS = ("video_net", "tkp")  # reid_jax/models/video.py
VIDEO_TRAINERS = {"video_net": "video", "tkp": "tkp"}  # the trainer of each video network
_VIDEO = "a video network (model.name 'video_net' or 'tkp')"


def _video(c: Config) -> bool:
    return c.model.name in VIDEO_MODELS


# ------------------------------------------------------------------------ common sections
TOP: Section = {
    "seed": Key(0, "Seed of the initialisation, the sampler and the augmentation.", low=0),
    "num_devices": Key(0, "Devices of the mesh; 0 = every visible device (a multi-process "
                       "run uses all of every process's). The results do not depend on it: "
                       "the global batches, BatchNorm statistics (train.bn_group_size), "
                       "augmentation draws and clustering are properties of the config; "
                       "only float rounding (reduction order) differs.", low=0),
    "trainer": Key("supervised", "The trainer (reid_jax/train/trainers.py)."),
}

DATA: Section = {
    "dataset": Key("synthetic_persons/default", "TFDS builder/config the split names refer to."),
    "train": Key("train", "'split' or 'dataset:split', comma-separated for a multi-source mix."),
    "query": Key("query", "Query split ('split' or 'dataset:split')."),
    "gallery": Key("gallery", "Gallery split ('split' or 'dataset:split')."),
    "source": Key("", "Domain adaptation ('SOURCE->TARGET' configs): the source run's "
                  "training pictures ('dataset:split', comma-separated); model.init_from_run "
                  "must name a run trained on exactly these."),
    "data_dir": Key("", "TFDS data dir; '' = $TFDS_DATA_DIR or ~/tensorflow_datasets."),
    "height": Key(256, "Input height in pixels.", low=16, high=4096),
    "width": Key(128, "Input width in pixels.", low=8, high=4096),
    "p": Key(16, "Identities (pseudo identities, proxies) per batch.", low=1),
    "k": Key(4, "Pictures per identity in a batch.", low=1),
    "steps_per_epoch": Key(0, "Batches per epoch; 0 = derived from the data (clustering: "
                           "the round's clustered pictures // batch, every round).", low=0),
    "sampler": Key("pk", "Batches: 'pk' (P identities x K, camera-diverse), 'random' "
                   "(shuffled pictures, PCB), 'cluster_uniform' (every pseudo identity once "
                   "per pass, an anchor then K-1 from other cameras: the clustering "
                   "references' RandomMultipleGallerySampler).",
                   choices=("pk", "random", "cluster_uniform")),
    "num_threads": Key(4, "Host threads decoding pictures.", low=1, high=256),
    "clip_len": Key(4, "Video networks: frames per clip (T), in training and at test.",
                    low=1, high=256, when=_video, when_doc=_VIDEO),
    "clip_sampling": Key("restricted_random", "Video networks: the T training frames of a "
                         "tracklet: one random frame from each of T equal chunks (Li et al. "
                         "2018), T consecutive frames from a random start (Gao and Nevatia "
                         "2018), T frames data.clip_stride apart from a random start (TKP), "
                         "or T evenly spaced (reid_jax/data/tracklets.py).",
                         choices=("restricted_random", "consecutive", "stride", "evenly"),
                         when=_video, when_doc=_VIDEO),
    "clip_stride": Key(8, "Frames between the clip's frames of clip_sampling='stride' (TKP 8).",
                       low=1, when=lambda c: _video(c) and c.data.clip_sampling == "stride",
                       when_doc="data.clip_sampling='stride'"),
    "resize": Key("bilinear", "Resize interpolation of the host loader (torchvision's default "
                  "bilinear; fast-reid and the clustering references use bicubic).",
                  choices=("bilinear", "bicubic")),
}

AUG: Section = {
    "flip": Key(0.5, "Probability of a horizontal flip.", low=0.0, high=1.0),
    "pad": Key(10, "Zero padding before the random crop, in pixels.", low=0),
    "erasing": Key(0.5, "Probability of random erasing.", low=0.0, high=1.0),
    "erasing_max_area": Key(0.4, "Largest erased area, as a fraction of the picture (CAP 0.2).",
                            low=0.02, high=1.0, when=lambda c: c.aug.erasing > 0,
                            when_doc="aug.erasing > 0"),
    "erasing_aspect": Key("uniform", "Aspect ratio draw: uniform in [0.3, 3.33] (Zhong et al.) "
                          "or log-uniform (torchvision).", choices=("uniform", "log_uniform"),
                          when=lambda c: c.aug.erasing > 0, when_doc="aug.erasing > 0"),
    "erasing_tries": Key(100, "Rectangles drawn until one fits (Zhong et al. 100, torchvision "
                         "10).", low=1, high=1000, when=lambda c: c.aug.erasing > 0,
                         when_doc="aug.erasing > 0"),
    "erasing_fill": Key("imagenet_mean_values", "Erased value: the ImageNet mean numbers or "
                        "(0.4914, 0.4822, 0.4465) written into the normalised picture, as the "
                        "references do, or the mean pixel.",
                        choices=("imagenet_mean_values", "mean_values", "pixel_mean"),
                        when=lambda c: c.aug.erasing > 0, when_doc="aug.erasing > 0"),
    "translate": Key(0.0, "Random translation by up to this fraction of the height and "
                     "of the width (zero fill; IDLA 0.05), after the pad + crop.", low=0.0,
                     high=0.5),
    "color_jitter": Key(0.0, "Brightness/contrast/saturation jitter strength; 0 = off.",
                        low=0.0, high=1.0),
}

_GLOBAL = "model.name='reid_net' with model.head='global'"


def _global_head(c: Config) -> bool:
    return c.model.name == "reid_net" and c.model.head == "global"


def _has_init_run(c: Config) -> bool:
    return bool(c.model.init_from_run)


MODEL: Section = {
    "name": Key("reid_net", "Network (reid_jax/models/zoo.py MODELS); 'idla' and "
                "'gated_scnn' are pair networks (trainer 'pairwise'), 'video_net' and 'tkp' "
                "video networks (trainers 'video' and 'tkp').",
                choices=("reid_net", "part_net", "idla", "gated_scnn", "video_net", "tkp")),
    "temporal": Key("avg", "Video networks: frame features -> clip feature, temporal average "
                    "pooling (TAP) or temporal attention (Gao and Nevatia 2018).",
                    choices=("avg", "attention"), when=_video, when_doc=_VIDEO),
    "attention_gen": Key("softmax", "Temporal attention: frame scores normalised by a softmax "
                         "or by sigmoids divided by their sum.", choices=("softmax", "sigmoid"),
                         when=lambda c: _video(c) and c.model.temporal == "attention",
                         when_doc="model.temporal='attention'"),
    "gate_layers": Key((3, 4, 5), "Gated siamese CNN: layers followed by a matching gate; "
                       "() = the siamese baseline (S-CNN).", low=1, high=5,
                       when=is_("model.name", "gated_scnn"),
                       when_doc="model.name='gated_scnn'"),
    "backbone": Key("resnet50", "ResNet depth.",
                    choices=("resnet18", "resnet34", "resnet50", "resnet101")),
    "stage_sizes": Key((), "Blocks per stage, overriding the backbone's; () = its own.", low=1,
                       check=lambda v: None if len(v) in (0, 4) else
                       "give the blocks of all 4 stages, e.g. (1, 1, 1, 1), or ()"),
    "width": Key(64, "Base width of the ResNet (64 as published).", low=1),
    "last_stride": Key(1, "Stride of the last stage (1 for re-ID).", choices=(1, 2)),
    "norm": Key("bn", "Backbone normalisation.", choices=("bn", "ibn_a", "ibn_b", "bin")),
    "dtype": Key("float32", "Backbone compute dtype.", choices=("float32", "bfloat16")),
    "stem_relu": Key(True, "ReLU after the stem's norm (torchvision); the ResNet-50 files of "
                     "BoT, MMT, M3L and CAP leave it out."),
    "pooling": Key("avg", "Global pooling.", choices=("avg", "gem"), when=_global_head,
                   when_doc=_GLOBAL),
    "gem_learnable": Key(True, "GeM's exponent is learned (else fixed at 3, fast-reid).",
                         when=lambda c: _global_head(c) and c.model.pooling == "gem",
                         when_doc="model.pooling='gem'"),
    "neck": Key("bnneck", "BatchNorm neck after pooling.", choices=("bnneck", "none"),
                when=lambda c: _global_head(c) or _video(c),
                when_doc=f"{_GLOBAL}, or {_VIDEO}"),
    "classifier": Key("linear", "Identity classifier: bias-free linear, or cosine (margin "
                      "softmaxes).", choices=("linear", "cosine"), when=_global_head,
                      when_doc=_GLOBAL),
    "head": Key("global", "Global feature, or PCB part stripes.", choices=("global", "pcb"),
                when=is_("model.name", "reid_net"), when_doc="model.name='reid_net'"),
    "num_parts": Key(6, "Horizontal stripes (PCB 6, PPLR 3).", low=1, high=32,
                     when=lambda c: c.model.name == "part_net" or c.model.head == "pcb",
                     when_doc="model.name='part_net' or model.head='pcb'"),
    "part_dim": Key(256, "PCB channels per stripe.", low=1, when=is_("model.head", "pcb"),
                    when_doc="model.head='pcb'"),
    "rpp": Key(False, "Refined part pooling on the PCB head (Sun et al. 2018).",
               when=is_("model.head", "pcb"), when_doc="model.head='pcb'"),
    "pcb_dropout": Key(0.0, "Dropout on the PCB stripes before the reduction (official 0.5).",
                       low=0.0, high=0.99, when=is_("model.head", "pcb"),
                       when_doc="model.head='pcb'"),
    "pcb_shared_reduction": Key(False, "One reduction conv + BatchNorm for all PCB stripes "
                                "(the official code) instead of one per stripe.",
                                when=is_("model.head", "pcb"), when_doc="model.head='pcb'"),
    "non_local": Key(False, "AGW non-local blocks in stages 2 and 3.",
                     when=is_("model.name", "reid_net"), when_doc="model.name='reid_net'"),
    "ianet_stages": Key((), "1-based stages followed by an IANet IA block; () = none.",
                        low=1, high=4,
                        when=lambda c: c.model.name == "reid_net" and c.model.norm != "bin",
                        when_doc="model.name='reid_net' and model.norm 'bn', 'ibn_a' or "
                        "'ibn_b'"),
    "ianet_patch": Key(1, "K of IANet's spatial patch relation.", low=1,
                       when=lambda c: bool(c.model.ianet_stages),
                       when_doc="model.ianet_stages is set"),
    "verification": Key(False, "Verification head on every pair (Zheng et al. 2016).",
                        when=_global_head, when_doc=_GLOBAL),
    "num_attributes": Key(0, "APR attribute heads; 0 = none.", low=0, when=_global_head,
                          when_doc=_GLOBAL),
    "init_from": Key("", "Folder of converted PyTorch ImageNet weights (python -m "
                     "reid_jax.tools.import_torch) for the backbone; '' = random."),
    "init_from_run": Key("", "Workdir(s) of earlier runs to start from (backbone, neck; "
                         "MMT: two comma-separated source runs, one per student)."),
    "init_from_run_classifier": Key(False, "Also copy the identity classifier(s) of "
                                    "model.init_from_run (same identities only).",
                                    when=_has_init_run, when_doc="model.init_from_run is set"),
}

OPTIM: Section = {
    "name": Key("adam", "Optimizer.", choices=("adam", "sgd")),
    "lr": Key(3.5e-4, "Base learning rate.", low=0.0, high=10.0),
    "momentum": Key(0.9, "SGD momentum.", low=0.0, high=1.0, when=is_("optim.name", "sgd"),
                    when_doc="optim.name='sgd'"),
    "nesterov": Key(False, "Nesterov momentum.", when=is_("optim.name", "sgd"),
                    when_doc="optim.name='sgd'"),
    "weight_decay": Key(5e-4, "L2 weight decay added to the gradient.", low=0.0, high=1.0),
    "decay_norm_and_bias": Key(True, "Also decay normalisation scales and biases."),
    "schedule": Key("multistep", "Learning-rate decay after the warmup ('inv': Caffe's "
                    "lr (1 + inv_gamma t)^-inv_power).",
                    choices=("multistep", "cosine", "constant", "inv")),
    "inv_gamma": Key(1e-4, "gamma of the 'inv' schedule.", low=0.0,
                     when=is_("optim.schedule", "inv"), when_doc="optim.schedule='inv'"),
    "inv_power": Key(0.75, "power of the 'inv' schedule.", low=0.0,
                     when=is_("optim.schedule", "inv"), when_doc="optim.schedule='inv'"),
    "milestones": Key((40, 70), "Epochs of the multistep decays.", low=0,
                      when=is_("optim.schedule", "multistep"),
                      when_doc="optim.schedule='multistep'"),
    "gamma": Key(0.1, "Factor of each multistep decay.", low=0.0, high=1.0,
                 when=is_("optim.schedule", "multistep"), when_doc="optim.schedule='multistep'"),
    "schedule_unit": Key("step", "What the schedule counts: 'step' (the scheduler is stepped "
                         "every iteration) or 'epoch' (once per epoch, as BoT, CAP, M3L).",
                         choices=("step", "epoch")),
    "schedule_epoch_offset": Key(0, "Epochs added before evaluating a per-epoch schedule (1 "
                                 "where the reference steps it at each epoch's start).",
                                 low=0, high=1, when=is_("optim.schedule_unit", "epoch"),
                                 when_doc="optim.schedule_unit='epoch'"),
    "warmup_epochs": Key(10.0, "Linear warmup length in epochs; 0 = none.", low=0.0),
    "warmup_factor": Key(0.1, "Learning-rate factor at the start of the warmup.", low=0.0,
                         high=1.0, when=lambda c: c.optim.warmup_epochs > 0,
                         when_doc="optim.warmup_epochs > 0"),
    "grad_clip": Key(0.0, "Global gradient-norm clip; 0 = off.", low=0.0),
    "bias_lr_factor": Key(1.0, "Biases at this factor x the learning rate.", low=0.0,
                          high=10.0),
    "backbone_lr_mult": Key(1.0, "Backbone learning rate = this x the new layers' (PCB 0.1).",
                            low=0.0, high=10.0),
    "rpp_classifier_only_epochs": Key(0, "RPP: epochs in which only the part classifier "
                                      "learns.", low=0, when=is_("model.rpp", True),
                                      when_doc="model.rpp=True"),
}

TRAIN: Section = {
    "num_epochs": Key(120, "Epochs (clustering trainers: pseudo-label rounds).", low=1),
    "stop_after_epochs": Key(0, "> 0: stop after this many epochs, as if interrupted; a "
                             "second run in the workdir resumes.", low=0),
    "log_every_steps": Key(20, "Steps between logged training metrics.", low=1),
    "checkpoint_every_epochs": Key(10, "Epochs between checkpoints (the last is always "
                                   "saved).", low=1),
    "checkpoint_every_steps": Key(0, "> 0: also checkpoint every this many steps inside an "
                                  "epoch, with the epoch's position (and a clustering "
                                  "round's pseudo labels), so that a killed run resumes "
                                  "mid-epoch to the uninterrupted result; 0 = epoch "
                                  "checkpoints only.", low=0),
    "keep_checkpoints": Key(2, "Newest checkpoints kept in the workdir (older ones are "
                            "deleted after a newer one is complete).", low=1),
    "progress": Key(True, "Progress bars on stderr."),
    "bn_group_size": Key(0, "BatchNorm statistics per group of this many consecutive "
                         "pictures of the global batch (e.g. 64 = a 4-GPU DataParallel run "
                         "at batch 256), whatever the devices or processes; 0 = the whole "
                         "batch. No trainer computes a per-device statistic.", low=0),
}

EVAL: Section = {
    "evaluators": Key(("retrieval",), "What --mode=eval and the end of training run "
                      "(reid_jax/evaluation/evaluators.py).",
                      choices=("retrieval", "splits", "cuhk03_classic", "single_shot", "video",
                               "image_to_video")),
    "batch_size": Key(128, "Pictures per embedding batch.", low=1),
    "metric": Key("cosine", "Distance between features.", choices=("cosine", "euclidean")),
    "feature": Key("neck_features", "Model output used as the retrieval feature."),
    "flip": Key(False, "Average the features of each picture and its mirror image."),
    "before_training": Key(True, "Also evaluate the untrained model (once per workdir)."),
    "select_best": Key(False, "Also report the evaluation with the best mAP among the "
                       "periodic ones and the last, as the references that keep "
                       "model_best do: a test-set-selected number, marked as such.",
                       when=lambda c: c.eval.every_epochs > 0,
                       when_doc="eval.every_epochs > 0"),
    "every_epochs": Key(0, "Evaluate every this many epochs during training; 0 = only at "
                        "the end.", low=0),
    "num_ranked_queries": Key(6, "Queries shown in ranked_list.png; 0 = no picture.", low=0),
    "rerank": Key(False, "Also report k-reciprocal re-ranking (Zhong et al. 2017)."),
    "rerank_k1": Key(20, "Re-ranking k1.", low=1, when=is_("eval.rerank", True),
                     when_doc="eval.rerank=True"),
    "rerank_k2": Key(6, "Re-ranking k2.", low=1, when=is_("eval.rerank", True),
                     when_doc="eval.rerank=True"),
    "rerank_lambda": Key(0.3, "Re-ranking weight of the original distance.", low=0.0,
                         high=1.0, when=is_("eval.rerank", True), when_doc="eval.rerank=True"),
    "aqe_k": Key(0, "> 0: average query expansion over this many neighbours.", low=0),
    "splits": Key("", "Comma-separated datasets whose query/gallery are each a test set "
                  "(the 10-split mean of the small benchmarks).",
                  when=lambda c: "splits" in c.eval.evaluators,
                  when_doc="'splits' in eval.evaluators"),
    "cuhk03_repeats": Key(10, "Random single-shot galleries per query (CUHK03 classic).",
                          low=1, when=lambda c: "cuhk03_classic" in c.eval.evaluators,
                          when_doc="'cuhk03_classic' in eval.evaluators"),
    "single_shot_draws": Key(10, "Random single-shot subsets averaged (one picture per "
                             "identity in query and gallery).", low=1,
                             when=lambda c: "single_shot" in c.eval.evaluators,
                             when_doc="'single_shot' in eval.evaluators"),
    "pair_block": Key(256, "Pair networks: (query, gallery) pairs scored per jitted call.",
                      low=1, when=lambda c: c.model.name in PAIR_MODELS,
                      when_doc="a pair network (model.name 'idla' or 'gated_scnn')"),
    "video_pooling": Key("avg", "Image networks: their frame features -> tracklet feature "
                         "(a video network averages its clip features).", choices=("avg", "max"),
                         when=lambda c: not _video(c) and _video_eval(c),
                         when_doc="an image network with a video evaluator"),
    "clip_sampling": Key("dense", "Video networks at test: every frame of a tracklet once, in "
                         "clips of data.clip_len (the last completed by repeating its frames), "
                         "clip features averaged; or one clip of evenly spaced frames.",
                         choices=("dense", "evenly"),
                         when=lambda c: _video(c) and _video_eval(c),
                         when_doc=f"{_VIDEO} with a video evaluator"),
}

def _video_eval(c: Config) -> bool:
    return bool({"video", "image_to_video"} & set(c.eval.evaluators))


COMMON: dict[str, Section] = {
    "": TOP, "data": DATA, "aug": AUG, "model": MODEL, "optim": OPTIM, "train": TRAIN,
    "eval": EVAL,
}


# ------------------------------------------------------------------------ building
def sections(trainer: str) -> dict[str, dict[str, Key]]:
    """Every declared key of ``trainer``'s configs: the common sections plus its own."""
    from reid_jax.train import trainers  # the trainer modules import this module

    if trainer not in trainers.TRAINERS:
        raise errors.ReidError(
            f"unknown config.trainer {trainer!r}; choose one of {', '.join(trainers.TRAINERS)}."
        )
    out = {name: dict(keys) for name, keys in COMMON.items()}
    for name, keys in trainers.TRAINERS[trainer].CONFIG.items():
        out.setdefault(name, {})
        clash = set(out[name]) & set(keys)
        if clash:
            raise AssertionError(f"{trainer} declares {name}.{clash.pop()} twice")
        out[name].update(keys)
    return out


def defaults(trainer: str) -> Config:
    """A locked ConfigDict with every key of ``trainer`` at its default."""
    c = Config()
    for name, keys in sections(trainer).items():
        node = c
        if name:
            c[name] = Config()
            node = c[name]
        for key, spec in keys.items():
            node[key] = spec.default
    c.trainer = trainer
    c.lock()
    return c


# ------------------------------------------------------------------------ validation
def _fail(path: str, value: Any, problem: str) -> errors.ReidError:
    return errors.ReidError(f"config.{path} = {value!r}: {problem}")


def _type_ok(value: Any, default: Any) -> bool:
    if isinstance(default, bool):
        return isinstance(value, bool)
    if isinstance(default, int):
        return isinstance(value, int) and not isinstance(value, bool)
    if isinstance(default, float):
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if isinstance(default, tuple):
        return isinstance(value, (tuple, list))
    return isinstance(value, type(default))


def _in_range(x: Any, spec: Key) -> bool:
    if not isinstance(x, (int, float)) or isinstance(x, bool):
        return True
    if x != x:  # NaN
        return False
    return (spec.low is None or x >= spec.low) and (spec.high is None or x <= spec.high)


def _range_text(spec: Key) -> str:
    if spec.low is not None and spec.high is not None:
        return f"between {spec.low} and {spec.high}"
    return f">= {spec.low}" if spec.low is not None else f"<= {spec.high}"


def check_value(path: str, value: Any, spec: Key) -> None:
    """Raises ReidError if ``value`` is not a valid value of the key at ``path``."""
    if not _type_ok(value, spec.default):
        raise _fail(path, value, f"expected a {type(spec.default).__name__} ({spec.doc})")
    items = list(value) if isinstance(spec.default, tuple) else [value]
    numeric = isinstance(spec.default, tuple) and not spec.choices and (
        spec.low is not None or spec.high is not None)
    for item in items:
        if numeric and (not isinstance(item, int) or isinstance(item, bool)):
            raise _fail(path, value, f"expected a tuple of integers ({spec.doc})")
        if spec.choices and item not in spec.choices:
            raise _fail(path, value, f"choose from {', '.join(map(repr, spec.choices))}")
        if not _in_range(item, spec):
            raise _fail(path, value, f"must be {_range_text(spec)} ({spec.doc})")
    if spec.check is not None:
        problem = spec.check(value)
        if problem:
            raise _fail(path, value, problem)


def validate(config: Config, overrides: Collection[str] | None = None) -> None:
    """Checks every key of ``config`` against its declaration and the trainer's rules.

    Args:
      config: the config.
      overrides: the keys ('data.height') set on the command line. A key that is set but
        cannot be used (its ``when`` does not hold) is an error if it differs from its
        declared default and, when ``overrides`` is given, was one of them: a user
        switching a setting off (``optim.warmup_epochs=0``) is not blamed for the
        experiment file's value of a key that depended on it (``warmup_factor``). The
        experiment files themselves are held to the strict rule by the tests.

    Raises:
      errors.ReidError: one line naming the first key that is wrong and the fix.
    """
    from reid_jax.train import trainers

    declared = sections(config.trainer)
    for name in config.keys():
        node = config[name]
        if isinstance(node, Config):
            if name not in declared or not name:
                raise errors.ReidError(
                    f"config.{name} is not read by trainer {config.trainer!r}; remove it."
                )
            unknown = sorted(set(node.keys()) - set(declared[name]))
            if unknown:
                raise errors.ReidError(
                    f"config.{name}.{unknown[0]} is not a key of trainer {config.trainer!r}; "
                    f"the keys of config.{name} are {', '.join(sorted(declared[name]))}."
                )
        elif name not in declared[""]:
            raise errors.ReidError(f"config.{name} is not a config key; remove it.")
    for name, keys in declared.items():
        node = config[name] if name else config
        if name and name not in config:
            raise errors.ReidError(f"config.{name} is missing; start from experiments/common.py.")
        for key, spec in keys.items():
            path = f"{name}.{key}" if name else key
            if key not in node:
                raise errors.ReidError(f"config.{path} is missing; start from experiments/common.py.")
            check_value(path, node[key], spec)
    if (config.model.name in PAIR_MODELS) != (config.trainer == "pairwise"):
        raise errors.ReidError(
            f"config.model.name = {config.model.name!r} with trainer {config.trainer!r}: the "
            f"pair networks ({', '.join(PAIR_MODELS)}) train with trainer 'pairwise' and it "
            "trains only them; start from experiments/idla.py or experiments/gated_scnn.py."
        )
    want = VIDEO_TRAINERS.get(config.model.name)
    if want != config.trainer and (want or config.trainer in VIDEO_TRAINERS.values()):
        raise errors.ReidError(
            f"config.model.name = {config.model.name!r} with trainer {config.trainer!r}: "
            "'video_net' trains with trainer 'video' and 'tkp' with trainer 'tkp', each only "
            "it; start from experiments/video.py or experiments/tkp.py."
        )
    trainers.TRAINERS[config.trainer].validate(config)
    for name, keys in declared.items():
        node = config[name] if name else config
        for key, spec in keys.items():
            value = node[key]
            path = f"{name}.{key}" if name else key
            if overrides is not None and path not in overrides:
                continue
            if spec.when is not None and not spec.when(config) and _differs(value, spec.default):
                raise _fail(
                    path, value,
                    f"set but not used: it applies only with {spec.when_doc}; remove it "
                    "or change that setting.",
                )


def _differs(value: Any, default: Any) -> bool:
    if isinstance(default, tuple):
        return tuple(value) != default
    return value != default


def describe(trainer: str | None = None) -> str:
    """Every key (of one trainer, or of all) with its default and meaning."""
    from reid_jax.train import trainers

    names = [trainer] if trainer else list(trainers.TRAINERS)
    seen: set[str] = set()
    lines = []
    for t in names:
        lines.append(f"# trainer {t}")
        for name, keys in sections(t).items():
            for key, spec in keys.items():
                path = f"{name}.{key}" if name else key
                if not trainer and path in seen:
                    continue
                seen.add(path)
                extra = f" [{', '.join(map(str, spec.choices))}]" if spec.choices else ""
                when = f" (only with {spec.when_doc})" if spec.when_doc else ""
                lines.append(f"{path} = {spec.default!r}{extra}: {spec.doc}{when}")
    return "\n".join(lines)


if __name__ == "__main__":
    print(describe(sys.argv[1] if len(sys.argv) > 1 else None))
