"""Recipe cards of the domain-generalization methods: MetaBIN, M3L."""

from __future__ import annotations

from reid_jax.recipes import Behaviour, Card, Fact
from reid_jax.recipes.clustering import SELECT_BEST
from reid_jax.recipes.supervised import PK, WEIGHTS

MB = "bismex/MetaBIN@aa81471"
BDG = f"{MB} configs/Base-DG.yml"
CFG = f"{MB} fastreid/config/defaults.py"
TL = f"{MB} fastreid/engine/train_loop.py"
M3 = "HeliosZhao/M3L@fa6c234"

METABIN = Card(
    "experiments/metabin.py:grid", "MetaBIN (Choi et al., CVPR 2021), target GRID",
    f"{MB} (configs/Sample/DG-mobilenet.yml over configs/Base-DG.yml)",
    "GRID 49.7 / 58.1, VIPeR 56.9 / 66.0, PRID 72.5 / 79.8, iLIDS 79.7 / 85.5 (rank-1 / mAP, "
    "mean of 10 splits, MobileNetV2 x1.4)",
    (
        Fact("data.train", "cuhk02/all:train,cuhk03/np_detected:all,market1501/standard:all,"
             "dukemtmc_reid/standard:all,cuhk_sysu/crops:train",
             f"{BDG}:129 DATASETS.NAMES; fastreid/data/datasets/DG_*.py (every picture)"),
        Fact("optim.name", "sgd", f"{BDG}:143 SOLVER.OPT"),
        Fact("optim.lr", 0.01, f"{BDG}:149 SOLVER.BASE_LR"),
        Fact("optim.momentum", 0.9, f"{BDG}:145"),
        Fact("optim.nesterov", False, f"{MB} fastreid/solver/optim/sgd.py:58-59"),
        Fact("optim.weight_decay", 5e-4, f"{BDG}:158"),
        Fact("optim.decay_norm_and_bias", True, f"{BDG}:159-160; {MB} fastreid/solver/"
             "build.py:20-35 (WEIGHT_DECAY_NORM 0 reaches only the gates)"),
        Fact("optim.bias_lr_factor", 2.0, f"{CFG}:415 SOLVER.BIAS_LR_FACTOR"),
        Fact("optim.milestones", (40, 70), f"{BDG}:152 SOLVER.STEPS (epochs)"),
        Fact("optim.gamma", 0.1, f"{CFG}:429"),
        Fact("optim.warmup_epochs", 10.0, f"{BDG}:155 WARMUP_ITERS (epochs)"),
        Fact("optim.warmup_factor", 0.01, f"{BDG}:154"),
        Fact("optim.schedule_unit", "step", f"{MB} fastreid/engine/hooks.py:230-235 (every "
             "iteration)"),
        Fact("train.num_epochs", 100, f"{BDG}:151 SOLVER.MAX_ITER (epochs)"),
        Fact("data.p", 20, f"{BDG}:157 IMS_PER_BATCH 80 / NUM_INSTANCE 4"),
        Fact("data.k", 4, f"{BDG}:136 DATALOADER.NUM_INSTANCE"),
        Fact("data.resize", "bicubic", f"{MB} fastreid/data/transforms/build.py:53, 77"),
        Fact("aug.flip", 0.5, f"{CFG}:339-340"),
        Fact("aug.pad", 10, f"{CFG}:343-345"),
        Fact("aug.erasing", 0.0, f"{BDG}:10-11 INPUT.REA.ENABLED False"),
        Fact("loss.label_smoothing", 0.1, f"{BDG}:77 CE.EPSILON"),
        Fact("loss.triplet_margin", 0.3, f"{BDG}:78-81 TRI.MARGIN"),
        Fact("loss.triplet_feature", "features", f"{BDG}:78-81 TRI.FEAT_ORDER 'before'"),
        Fact("loss.center_weight", 0.0, f"{BDG}:110 LOSSES.NAME (CE, Triplet)"),
        Fact("model.norm", "bin", f"{BDG}:124 TYPE_BACKBONE BIN_gate2"),
        Fact("model.backbone", "mobilenetv2_x1.4", f"{MB} configs/Sample/DG-mobilenet.yml:"
             "19-25", "no MobileNetV2 here: ResNet-50 with BIN (the official "
             "configs/Sample/DG-resnet.yml runs the same recipe on ResNet-50)"),
        Fact("meta.num_meta_test", 2, f"{BDG}:48 MTRAIN.NUM_DOMAIN 3 of 5"),
        Fact("meta.domain_p", 4, f"{BDG}:17-18 MTRAIN_MINI_BATCH 80 = 5 x 4 x 4"),
        Fact("meta.first_base_steps", 10, f"{BDG}:38 INIT.FIRST_INNER_LOOP; {TL}:134-140"),
        Fact("meta.gate_lr_factor", 10.0, f"{BDG}:29 LR_FACTOR.GATE"),
        Fact("meta.inner_cycle_low", 0.001, f"{BDG}:31, 34 MIDDLE_LR 0.01 / RATIO 10"),
        Fact("meta.inner_cycle_high", 0.1, f"{BDG}:31, 34 MIDDLE_LR 0.01 x RATIO 10"),
        Fact("meta.inner_cycles_per_epoch", 0.2, f"{BDG}:32 META_CYCLIC_PERIOD_PER_EPOCH"),
        Fact("meta.inner_clamp", "straight_through", f"{MB} fastreid/modeling/ops.py:462-463 "
             "(update_gate.data.clamp_: invisible to autograd)"),
        Fact("meta.first_order", True, f"{BDG}:47 SECOND_ORDER False, :55 STOP_GRADIENT True"),
        Fact("meta.triplet_margin", 0.3, f"{BDG}:90-104 TRI_MTRAIN / TRI_MTEST.MARGIN"),
        Fact("meta.outer_with_mtr", False, f"{BDG}:58-59 META.LOSS.COMBINED False"),
        Fact("eval.evaluators", ("splits",), f"{MB} evaluation (10 splits of each target)"),
        Fact("eval.select_best", True, f"{MB} result script (best average rank-1)",
             SELECT_BEST),
        Behaviour("two loaders", "a base batch of 20 ids x 4 over the pooled sources "
                  "(NaiveIdentitySampler) and a domain-balanced meta batch of 5 x 4 x 4",
                  "one host row: the P x K base batch, then episodes.domain_pk_batches",
                  f"{MB} fastreid/data/build.py:147-167, 209-220, 321-326"),
        PK,
        Behaviour("meta step", "gates only (optimizer_norm, SGD, momentum 0, constant lr 0.1); "
                  "BN running statistics held; inner lr = gate lr x triangular CyclicLR "
                  "starting low, stepped before each meta step",
                  "train/metabin.py; meta/inner.triangular_lr (tests/meta/test_episodes.py)",
                  f"{TL}:665-667, 881-882, 921-974; {MB} fastreid/engine/defaults.py:279-301"),
        Behaviour("inter-domain triplet", "positives: the other domains' pictures (NEW_POS "
                  "[0, 0, 1]); negatives: other ids of the anchor's domain (NEW_NEG "
                  "[0, 1, 0]); soft margin", "losses/meta.inter_domain_triplet (tests)",
                  f"{BDG}:82-89 TRI_ADD"),
        Behaviour("BIN from ImageNet", "BatchNorm weights and statistics into BIN's BN half, "
                  "IN affine fresh, gates 1", "models/load_torch.source_key (tests/train/"
                  "test_init.py)", f"{MB} fastreid/modeling/backbones/mobilenet_v2.py:235-257"),
        WEIGHTS,
    ),
)

M3L = Card(
    "experiments/m3l.py:market1501", "M3L (Zhao et al., CVPR 2021), target Market-1501", M3,
    "ResNet-50 mAP / rank-1: Market 48.1 / 74.5, Duke 50.5 / 69.4, CUHK03-NP 29.9 / 30.7, "
    "MSMT17 12.9 / 33.0 (paper, REFERENCE.md)",
    (
        Fact("data.train", "dukemtmc_reid/standard:train,cuhk03/np_detected:train,"
             "msmt17/v1:train", f"{M3} README.md (CUHK-NP detected, MSMT17 V1 recommended)"),
        Fact("optim.name", "adam", f"{M3} main.py:186-188"),
        Fact("optim.lr", 3.5e-4, f"{M3} main.py:265-266 --lr"),
        Fact("optim.weight_decay", 5e-4, f"{M3} main.py:267"),
        Fact("optim.milestones", (30, 50), f"{M3} main.py:189-190"),
        Fact("optim.warmup_epochs", 10.0, f"{M3} main.py:189-190 warmup_iters 10"),
        Fact("optim.warmup_factor", 0.01, f"{M3} main.py:189-190"),
        Fact("optim.schedule_unit", "epoch", f"{M3} main.py:217 (stepped after each epoch)"),
        Fact("train.num_epochs", 60, f"{M3} main.py:268"),
        Fact("data.steps_per_epoch", 200, f"{M3} main.py:269 --iters"),
        Fact("data.p", 16, f"{M3} main.py:238, 243 (64 = 16 x 4 per source)"),
        Fact("data.k", 4, f"{M3} main.py:243"),
        Fact("data.resize", "bicubic", f"{M3} main.py:47"),
        Fact("aug.erasing", 0.0, f"{M3} main.py:44-52 (flip, pad 10, crop)"),
        Fact("meta.temperature", 0.05, f"{M3} main.py:275 --temp"),
        Fact("meta.memory_momentum", 0.2, f"{M3} main.py:256 --momentum"),
        Fact("meta.triplet_margin", 0.3, f"{M3} main.py:261 --margin"),
        Fact("meta.inner_solver", "adam", f"{M3} reid/trainers.py:79-81 solver='adam'"),
        Fact("meta.inner_lr_factor", 1.0, f"{M3} reid/trainers.py:32 (the current lr)"),
        Fact("meta.first_order", False, f"{M3} reid/trainers.py:74 create_graph=True"),
        Fact("meta.mix_with_std", False, f"{M3} reid/models/MetaModules.py:362 "
             "Normal(meta_mean, meta_var)", "REFERENCE.md: the variance used as a standard "
             "deviation gives NaN at higher lr; --config.meta.mix_with_std=False is the "
             "official behaviour"),
        Fact("model.stem_relu", False, f"{M3} reid/models/resMeta.py:88-90"),
        Fact("model.last_stride", 1, f"{M3} reid/models/resMeta.py:153-154"),
        Behaviour("BatchNorm statistics", "updated by both meta-train forwards and the three "
                  "memory forwards (train mode); the meta-test forward through theta' "
                  "probably too (shared buffers)", "meta-train + memory forwards, in order "
                  "(forward.compose_running_stats, tests); not the meta-test forward",
                  f"{M3} reid/trainers.py:25, 65, 109-113",
                  "the meta-test update is inferred from buffer sharing, not read; left out"),
        Behaviour("meta-test gradient", "the meta-model is a detached clone: L_mte reaches "
                  "theta only through the inner gradient (no identity term)",
                  "the paper's theta' = theta - a grad: d L_mte(theta')/d theta includes "
                  "the identity", f"{M3} reid/models/MetaModules.py:116-119",
                  "the paper's equation; the clone's detachment looks accidental"),
        Behaviour("memories", "class means of eval-mode features at start; after each "
                  "optimizer step a no-grad train-mode forward of every source, "
                  "M <- 0.2 M + 0.8 f, renormalised", "train/m3l.py start + step (tests)",
                  f"{M3} main.py:157-181; reid/trainers.py:105-113"),
        Behaviour("ImageNet BatchNorm statistics", "not loaded (copyWeight copies parameters "
                  "only)", "loaded with the weights (models/load_torch.py)",
                  f"{M3} reid/models/MetaModules.py:126-148", "statistics that belong to the "
                  "weights; the official memory init then sees mean 0 / var 1 statistics"),
        Fact("eval.select_best", True, f"{M3} main.py (best epoch on the target)",
             SELECT_BEST),
        WEIGHTS,
    ),
)

CARDS = (METABIN, M3L)
