"""The supervised objective declared by ``config.loss``: a weighted sum of loss terms.

BoT by default (identity cross-entropy with label smoothing + batch-hard triplet +
center loss; Luo et al., CVPRW 2019); the zoo's variants switch terms on through the
keys below: AGW's weighted regularization triplet, PCB's per-stripe identity losses,
CosFace / ArcFace margins on a cosine classifier, the pairwise circle loss, LSRO's
uniform target for unlabeled pictures, the identification + verification loss and APR's
attribute loss. The supervised trainer and MetaBIN's base step use it.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import ml_collections

from reid_jax import config_schema, errors
from reid_jax.config_schema import Key
from reid_jax.losses import attribute, lsro, margin, metric, verification

_cfg = config_schema.is_

# config.loss, declared once (the supervised trainer and MetaBIN read it).
CONFIG: config_schema.Section = {
    "id_weight": Key(1.0, "Weight of the identity cross-entropy.", low=0.0),
    "label_smoothing": Key(0.1, "Label smoothing of the identity loss.", low=0.0, high=1.0),
    "triplet_weight": Key(1.0, "Weight of the triplet loss.", low=0.0),
    "triplet": Key("hard", "Triplet: batch-hard, or AGW's weighted regularization triplet.",
                   choices=("hard", "wrt"), when=lambda c: c.loss.triplet_weight > 0,
                   when_doc="loss.triplet_weight > 0"),
    "triplet_feature": Key("features", "Feature of the triplet: pooled (BoT) or after the neck "
                           "(IANet).", choices=("features", "neck_features"),
                           when=lambda c: c.loss.triplet_weight > 0,
                           when_doc="loss.triplet_weight > 0"),
    "triplet_distance": Key("euclidean", "Distance of the batch-hard triplet (IANet: cosine).",
                            choices=("euclidean", "cosine"),
                            when=lambda c: c.loss.triplet_weight > 0 and c.loss.triplet == "hard",
                            when_doc="loss.triplet='hard' and loss.triplet_weight > 0"),
    "triplet_margin": Key(metric.TRIPLET_MARGIN, "Batch-hard triplet margin.", low=0.0,
                          when=lambda c: c.loss.triplet_weight > 0 and c.loss.triplet == "hard",
                          when_doc="loss.triplet='hard' and loss.triplet_weight > 0"),
    "soft_margin": Key(False, "Soft-margin (softplus) batch-hard triplet.",
                       when=lambda c: c.loss.triplet_weight > 0 and c.loss.triplet == "hard",
                       when_doc="loss.triplet='hard' and loss.triplet_weight > 0"),
    "center_weight": Key(0.0005, "Weight of the center loss (BoT 5e-4); 0 = off.", low=0.0),
    "center_lr": Key(0.5, "SGD learning rate of the centres (BoT).", low=0.0,
                     when=lambda c: c.loss.center_weight > 0, when_doc="loss.center_weight > 0"),
    "part_reduction": Key("sum", "PCB: sum (Sun et al.) or mean of the stripe losses.",
                          choices=("sum", "mean"), when=_cfg("model.head", "pcb"),
                          when_doc="model.head='pcb'"),
    "margin_softmax": Key("none", "Margin on the cosine logits.",
                          choices=("none", "cosface", "arcface"),
                          when=_cfg("model.classifier", "cosine"),
                          when_doc="model.classifier='cosine'"),
    "margin_scale": Key(30.0, "Scale s of the margin softmax.", low=0.0,
                        when=lambda c: c.loss.margin_softmax != "none",
                        when_doc="loss.margin_softmax set"),
    "margin_m": Key(margin.COSFACE_MARGIN, "Margin m (CosFace 0.35, ArcFace 0.5).", low=0.0,
                    when=lambda c: c.loss.margin_softmax != "none",
                    when_doc="loss.margin_softmax set"),
    "circle_weight": Key(0.0, "Weight of the pairwise circle loss; 0 = off.", low=0.0),
    "circle_margin": Key(metric.CIRCLE_MARGIN, "Circle loss margin m.", low=0.0,
                         when=lambda c: c.loss.circle_weight > 0, when_doc="loss.circle_weight > 0"),
    "circle_gamma": Key(metric.CIRCLE_GAMMA, "Circle loss scale gamma.", low=0.0,
                        when=lambda c: c.loss.circle_weight > 0, when_doc="loss.circle_weight > 0"),
    "lsro": Key(False, "LSRO: pictures labelled -1 get a uniform identity target."),
    "verification_weight": Key(0.0, "Weight of the verification loss (Zheng et al. 2016).",
                               low=0.0, when=_cfg("model.verification", True),
                               when_doc="model.verification=True"),
    "attribute_weight": Key(0.0, "Weight of APR's attribute loss.", low=0.0,
                            when=lambda c: c.model.num_attributes > 0,
                            when_doc="model.num_attributes > 0"),
}


def identity_loss(out: dict, labels: jax.Array, cfg: ml_collections.ConfigDict) -> jax.Array:
    """Identity cross-entropy on 'logits', or over the PCB stripes' 'part_logits'.

    PCB (Sun et al., ECCV 2018, Sec. 3.1): every stripe has its own classifier and the
    loss is the sum of the P cross-entropies (``part_reduction='mean'`` divides by P).
    Margin softmaxes turn the cosines into logits first; ``lsro`` gives samples
    labeled -1 a uniform target.
    """
    if out.get("part_logits") is not None:
        per_part = jax.vmap(
            lambda lg: lsro.identity_cross_entropy(lg, labels, cfg.label_smoothing, cfg.lsro),
            in_axes=1,
        )(out["part_logits"])
        return jnp.sum(per_part) if cfg.part_reduction == "sum" else jnp.mean(per_part)
    logits = out["logits"]
    if cfg.margin_softmax == "cosface":
        logits = margin.cosface_logits(logits, labels, cfg.margin_scale, cfg.margin_m)
    elif cfg.margin_softmax == "arcface":
        logits = margin.arcface_logits(logits, labels, cfg.margin_scale, cfg.margin_m)
    return lsro.identity_cross_entropy(logits, labels, cfg.label_smoothing, cfg.lsro)


def loss_terms(
    out: dict,
    labels: jax.Array,
    centers: jax.Array | None,
    cfg: ml_collections.ConfigDict,
    attributes: jax.Array | None = None,
) -> dict[str, jax.Array]:
    """The loss terms from model outputs; 'loss' is their weighted sum.

    Samples labeled -1 (LSRO) are only understood by the identity and verification
    losses (the trainer's config check keeps the others off when the data holds them).

    Args:
        out: model outputs (see ``zoo.ReIDNet``).
        labels: [N] identities.
        centers: center-loss centres, or None when the center loss is off.
        cfg: config.loss.
        attributes: [N, M] binary attribute targets (negative: unknown), or None.

    Returns:
        Dict of scalar terms and their weighted sum 'loss'.
    """
    terms = {}
    total = 0.0
    if cfg.id_weight > 0:
        terms["id_loss"] = identity_loss(out, labels, cfg)
        total += cfg.id_weight * terms["id_loss"]
    if cfg.triplet_weight > 0:
        f = out[cfg.triplet_feature]
        if cfg.triplet == "hard":
            terms["triplet_loss"] = metric.batch_hard_triplet(
                f, labels, margin=cfg.triplet_margin, soft_margin=cfg.soft_margin,
                distance=cfg.triplet_distance,
            )
        else:
            terms["triplet_loss"] = metric.weighted_regularized_triplet(f, labels)
        total += cfg.triplet_weight * terms["triplet_loss"]
    if cfg.circle_weight > 0:
        terms["circle_loss"] = metric.pairwise_circle_loss(
            out["features"], labels, margin=cfg.circle_margin, gamma=cfg.circle_gamma
        )
        total += cfg.circle_weight * terms["circle_loss"]
    if centers is not None:
        terms["center_loss"] = metric.center_loss(out["features"], labels, centers)
        total += cfg.center_weight * terms["center_loss"]
    if cfg.verification_weight > 0:
        logits = out.get("verification_logits")
        if logits is None:
            raise errors.ReidError("loss.verification_weight > 0 needs model.verification=True.")
        terms["verification_loss"] = verification.verification_loss(logits, labels)
        terms["verification_acc"] = verification.verification_accuracy(logits, labels)
        total += cfg.verification_weight * terms["verification_loss"]
    if cfg.attribute_weight > 0:
        if attributes is None:
            raise errors.ReidError(
                "loss.attribute_weight > 0 but the batches carry no 'attributes'; the training "
                "data has no attribute annotations (see data_builders/README.md): set "
                "loss.attribute_weight=0."
            )
        terms["attribute_loss"] = attribute.attribute_bce(out["attribute_logits"], attributes)
        terms["attribute_acc"] = attribute.attribute_accuracy(out["attribute_logits"], attributes)
        total += cfg.attribute_weight * terms["attribute_loss"]
    terms["loss"] = total
    return terms
