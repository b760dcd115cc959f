"""Re-ID networks assembled from a backbone, a pooling and a neck, and `build_model`.

`ReIDNet` covers the global-feature baselines:
- BoT (Luo et al., CVPRW 2019): ResNet-50, last stride 1, average pooling, BNNeck.
- AGW (Ye et al., "Deep Learning for Person Re-identification: A Survey and Outlook",
  TPAMI 2021): the same with GeM pooling (`pooling='gem'`) and non-local blocks after
  the last 2 blocks of stage 2 and the last 3 of stage 3 (`non_local=True`, see
  `reid_jax/models/non_local.py`); its loss is
  `reid_jax.losses.metric.weighted_regularized_triplet`. GeM with a learnable p as the
  official `Baseline` (`GeneralizedMeanPoolingP`). The official `ResNetNL` stem lacks
  its ReLU ("add missed relu" is commented out); we keep it, as fast-reid does.
- PCB (Sun et al., ECCV 2018): `head='pcb'` replaces pooling and neck by six stripe
  classifiers (`heads.PCBHead`); the identity loss is the sum of the per-stripe
  cross-entropies over 'part_logits', and retrieval uses the concatenated stripe
  features ('neck_features'). `rpp=True` replaces the uniform stripes by refined part
  pooling (RPP, same paper; `reid_jax/models/rpp.py`): a part classifier
  ('rpp_classifier') assigns each position of the map to the parts.

Names map to models through the explicit dict `MODELS` (no registries).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp

from reid_jax import vectors
from reid_jax.models import attributes as attr_heads
from reid_jax.models import heads, ianet, pairwise, parts, resnet, rpp, video
from reid_jax.models import non_local as nl_block
from reid_jax.models import verification as verif_head

POOLINGS = ("avg", "gem")
NECKS = ("bnneck", "none")
HEADS = ("global", "pcb")
CLASSIFIERS = ("linear", "cosine")


class ReIDNet(nn.Module):
    """Backbone -> global pooling -> (BNNeck) -> (classifier).

    Attributes:
        backbone: a key of `resnet.BACKBONES`.
        stage_sizes: overrides the backbone's blocks per stage (tests: [1, 1, 1, 1]).
        width: base width of the ResNet (64 as published).
        last_stride: stride of stage 4 (1 for re-ID).
        pooling: 'avg' or 'gem'.
        neck: 'bnneck' or 'none'.
        num_classes: identities for the classifier; 0 for none (feature extractor).
        dtype: compute dtype of the backbone; heads and outputs are float32.
        norm: backbone normalisation, 'bn', 'ibn_a' or 'ibn_b'.
        non_local: AGW non-local blocks in stages 2 and 3.
        non_local_inter: their embedding channels (1 as the official AGW code; None
            for C // 2 as Wang et al.).
        classifier: 'linear' (bias-free FC, BoT) or 'cosine' (logits are cos(theta) to
            normalised class weights; apply `losses.margin.cosface_logits` /
            `arcface_logits` with the labels before the cross-entropy).
        head: 'global' (pooling + neck) or 'pcb' (part stripes; pooling and neck unused).
        num_parts: PCB stripes.
        part_dim: PCB channels per stripe.
        rpp: PCB head only: refined part pooling (soft part assignment by a part
            classifier) instead of uniform stripes.
        ianet_stages: 1-based stages followed by an IANet IA block (Hou et al. 2019;
            `reid_jax/models/ianet.py`; (2, 3) as published); () for none.
        ianet_patch: K of the SIA patch relation (1 as the official code).
        verification: add 'verification_logits' [N, N, 2] (same/different for every
            pair of the batch, Zheng et al. 2016; `reid_jax/models/verification.py`)
            from 'features'; global head only.
        num_attributes: APR attribute heads (Lin et al. 2019): 'attribute_logits'
            [N, M] from 'neck_features'; 0 for none; global head only.
        stem_relu: ReLU after the backbone stem's norm (see `resnet.ResNet`).
        gem_learnable: GeM's exponent is a parameter (else fixed at 3).
        pcb_dropout: PCB: dropout rate on the stripe features before the reduction.
        pcb_shared_reduction: PCB: one 1x1 reduction conv (and BatchNorm) for all
            stripes (the official code) instead of one per stripe.
    """

    backbone: str = "resnet50"
    stage_sizes: Sequence[int] | None = None
    width: int = 64
    last_stride: int = 1
    pooling: str = "avg"
    neck: str = "bnneck"
    num_classes: int = 0
    dtype: Any = jnp.float32
    norm: str = "bn"
    non_local: bool = False
    non_local_inter: int | None = 1
    classifier: str = "linear"
    head: str = "global"
    num_parts: int = heads.PCB_PARTS
    part_dim: int = heads.PCB_DIM
    rpp: bool = False
    ianet_stages: Sequence[int] = ()
    ianet_patch: int = 1
    verification: bool = False
    num_attributes: int = 0
    stem_relu: bool = True
    gem_learnable: bool = True
    pcb_dropout: float = 0.0
    pcb_shared_reduction: bool = False

    @nn.compact
    def __call__(self, x: jax.Array, train: bool) -> dict[str, jax.Array | None]:
        """Embeds a batch of images.

        Args:
            x: images [N, H, W, 3] float32, already normalised with ImageNet mean/std.
            train: training mode for BatchNorm.

        Returns:
            Dict of float32 arrays. Global head: 'features' ([N, C] pooled, before the
            neck), 'neck_features' ([N, C] after the neck BatchNorm; equal to
            'features' when neck='none') and 'logits' ([N, num_classes], or None when
            num_classes == 0). PCB head: 'features' ([N, P * C] concatenated stripe
            means g), 'neck_features' ([N, P * part_dim] concatenated h, the test
            descriptor), 'part_features' ([N, P, part_dim]), 'part_logits'
            ([N, P, num_classes] or None) and 'logits' None; with rpp also
            'part_probabilities' ([N, H, W, P], each position's part assignment).
        """
        if self.pooling not in POOLINGS:
            raise ValueError(f"unknown pooling {self.pooling!r}; expected one of {POOLINGS}")
        if self.neck not in NECKS:
            raise ValueError(f"unknown neck {self.neck!r}; expected one of {NECKS}")
        if self.classifier not in CLASSIFIERS:
            raise ValueError(
                f"unknown classifier {self.classifier!r}; expected one of {CLASSIFIERS}"
            )
        if self.head not in HEADS:
            raise ValueError(f"unknown head {self.head!r}; expected one of {HEADS}")
        if self.rpp and self.head != "pcb":
            raise ValueError("rpp (refined part pooling) needs head='pcb'")
        if self.ianet_stages:
            if self.non_local:
                raise ValueError("ianet_stages and non_local cannot be combined")
            fmap = ianet.ia_resnet(
                self.backbone,
                stage_sizes=self.stage_sizes,
                width=self.width,
                last_stride=self.last_stride,
                dtype=self.dtype,
                norm=self.norm,
                ia_stages=tuple(self.ianet_stages),
                ia_patch=self.ianet_patch,
                stem_relu=self.stem_relu,
                name="backbone",
            )(x, train)
        else:
            fmap = resnet.resnet(
                self.backbone,
                stage_sizes=self.stage_sizes,
                width=self.width,
                last_stride=self.last_stride,
                dtype=self.dtype,
                norm=self.norm,
                non_local=nl_block.AGW_NON_LOCAL if self.non_local else (0, 0, 0, 0),
                non_local_inter=self.non_local_inter,
                stem_relu=self.stem_relu,
                name="backbone",
            )(x, train)
        if self.head == "pcb":
            if self.verification or self.num_attributes > 0:
                raise ValueError("verification and attribute heads need head='global'")
            part_map, probs = fmap, None
            if self.rpp:
                logits = rpp.PartClassifier(self.num_parts, name="rpp_classifier")(fmap)
                probs = jax.nn.softmax(logits, axis=-1)
                # PCBHead stripe-pools its input: a map of P rows of width 1 whose row i
                # is the refined part i gives back exactly those parts.
                part_map = rpp.refined_pool(fmap, probs)[:, :, None, :]
            parts = heads.PCBHead(
                num_parts=self.num_parts,
                part_dim=self.part_dim,
                num_classes=self.num_classes,
                dropout=self.pcb_dropout,
                shared_reduction=self.pcb_shared_reduction,
                name="pcb",
            )(part_map, train)
            batch = fmap.shape[0]
            out = {
                "features": parts["stripe_features"].reshape(batch, -1),
                # The official PCB test descriptor: each stripe's pooled feature
                # L2-normalised, concatenated (syfafterzy/PCB_RPP_for_reID).
                "stripe_descriptor": vectors.l2_normalize(parts["stripe_features"]).reshape(
                    batch, -1),
                "neck_features": parts["part_features"].reshape(batch, -1),
                "part_features": parts["part_features"],
                "part_logits": parts["part_logits"],
                "logits": None,
            }
            if probs is not None:
                out["part_probabilities"] = probs
            return out
        if self.pooling == "gem":
            pooled = heads.GeM(learnable=self.gem_learnable, name="pool")(fmap)
        else:
            pooled = heads.avg_pool(fmap)
        out = heads.BNNeck(
            num_classes=self.num_classes,
            use_bn=self.neck == "bnneck",
            cosine=self.classifier == "cosine",
            name="neck",
        )(pooled, train)
        if self.verification:
            out["verification_logits"] = verif_head.VerificationHead(name="verification")(
                out["features"]
            )
        if self.num_attributes > 0:
            out["attribute_logits"] = attr_heads.AttributeHeads(
                self.num_attributes, name="attributes"
            )(out["neck_features"])
        return out


MODELS: dict[str, type[nn.Module]] = {
    "reid_net": ReIDNet, "part_net": parts.PartNet, **pairwise.PAIR_MODELS,
    **video.VIDEO_MODELS,
}


def build_model(model_config: Mapping[str, Any], num_classes: int = 0) -> nn.Module:
    """Builds a model from a config.

    Args:
        model_config: config.model (or a mapping) with `name` (a key of `MODELS`) and
            any fields of that model class; keys that are not fields of the class
            (`init_from`, the other model's fields) are not read. `dtype` may be a
            string such as 'bfloat16'; an empty `stage_sizes` means the backbone's.
        num_classes: classifier rows (identities); 0 for none.

    Returns:
        The unbound Flax module.
    """
    name = model_config["name"] if "name" in model_config else "reid_net"
    if name not in MODELS:
        raise ValueError(f"unknown model {name!r}; expected one of {list(MODELS)}")
    cls = MODELS[name]
    # `name` and `parent` are Linen bookkeeping fields, not architecture.
    fields = {f.name for f in dataclasses.fields(cls)} - {"name", "parent"}
    kwargs = {key: model_config[key] for key in model_config.keys() if key in fields}
    kwargs["num_classes"] = num_classes
    if isinstance(kwargs.get("dtype"), str):
        kwargs["dtype"] = jnp.dtype(kwargs["dtype"])
    for key in ("stage_sizes", "ianet_stages", "gate_layers"):
        if key in kwargs:
            kwargs[key] = tuple(kwargs[key]) or (None if key == "stage_sizes" else ())
    return cls(**kwargs)
