"""Recipe cards of the supervised methods: BoT, BoT-IBN, AGW, IANet, PCB, RPP."""

from __future__ import annotations

from reid_jax.recipes import Behaviour, Card, Fact

RSB = "michuanhaohao/reid-strong-baseline@3da7e6f"
Y = f"{RSB} configs/softmax_triplet_with_center.yml"
FR = "JDAI-CV/fast-reid@c9bc3ce"
BT = f"{FR} configs/Base-bagtricks.yml"
IA = "blue-blue272/ImgReID-IAnet@e104e28"
PR = "syfafterzy/PCB_RPP_for_reID@e29cf54"

WEIGHTS = Behaviour(
    "ImageNet initialisation", "torchvision ImageNet weights loaded at start",
    "--config.model.init_from=DIR (converted with python -m reid_jax.tools.import_torch)",
    "the reference's pretrained path", "weights cannot be downloaded by the library: the user "
    "converts them once and names them",
)
PK = Behaviour(
    "P x K sampler", "RandomIdentitySampler: P random identities, K random pictures each",
    "samplers.pk_batches: K pictures in camera round-robin order, identities drawn in "
    "proportion to their chunks left", f"{RSB} data/samplers/triplet_sampler.py",
    "camera-diverse positives and an epoch that covers every identity's pictures; the same "
    "P x K batch shape",
)

_BOT_ROWS = (
    Fact("optim.name", "adam", f"{Y}:27 SOLVER.OPTIMIZER_NAME"),
    Fact("optim.lr", 3.5e-4, f"{Y}:29 SOLVER.BASE_LR"),
    Fact("optim.weight_decay", 5e-4, f"{Y}:43 SOLVER.WEIGHT_DECAY"),
    Fact("optim.decay_norm_and_bias", True, f"{Y}:44 WEIGHT_DECAY_BIAS 5e-4; {RSB} "
         "solver/build.py:29-38 (every parameter, BatchNorm included)"),
    Fact("optim.bias_lr_factor", 1.0, f"{Y}:42 SOLVER.BIAS_LR_FACTOR"),
    Fact("optim.schedule", "multistep", f"{RSB} solver/lr_scheduler.py WarmupMultiStepLR"),
    Fact("optim.milestones", (40, 70), f"{Y}:47 SOLVER.STEPS"),
    Fact("optim.gamma", 0.1, f"{Y}:48 SOLVER.GAMMA"),
    Fact("optim.warmup_epochs", 10.0, f"{Y}:51 WARMUP_ITERS (the scheduler is stepped per "
         "epoch: 10 epochs)"),
    Fact("optim.warmup_factor", 0.01, f"{Y}:50 WARMUP_FACTOR"),
    Fact("optim.schedule_unit", "epoch", f"{RSB} engine/trainer.py:254-256 scheduler.step() "
         "at Events.EPOCH_STARTED"),
    Fact("optim.schedule_epoch_offset", 1, f"{RSB} engine/trainer.py:254-256: stepped at the "
         "start of epoch 1 already (last_epoch = 1 in the first epoch)"),
    Fact("train.num_epochs", 120, f"{Y}:28 SOLVER.MAX_EPOCHS"),
    Fact("loss.label_smoothing", 0.1, f"{RSB} layers/triplet_loss.py:129 epsilon=0.1"),
    Fact("loss.triplet_margin", 0.3, f"{RSB} config/defaults.py:101 SOLVER.MARGIN"),
    Fact("loss.triplet_feature", "features", f"{RSB} modeling/baseline.py:163-165 (pooled "
         "feature before the BNNeck)"),
    Fact("loss.center_weight", 5e-4, f"{Y}:34 SOLVER.CENTER_LOSS_WEIGHT"),
    Fact("loss.center_lr", 0.5, f"{Y}:33 SOLVER.CENTER_LR"),
    Fact("data.p", 16, f"{Y}:45 IMS_PER_BATCH 64 / NUM_INSTANCE 4"),
    Fact("data.k", 4, f"{Y}:23 DATALOADER.NUM_INSTANCE"),
    Fact("data.height", 256, f"{Y}:12 INPUT.SIZE_TRAIN"),
    Fact("data.width", 128, f"{Y}:12 INPUT.SIZE_TRAIN"),
    Fact("data.resize", "bilinear", f"{RSB} data/transforms/build.py:16 (T.Resize default)"),
    Fact("aug.flip", 0.5, f"{Y}:14 INPUT.PROB"),
    Fact("aug.pad", 10, f"{Y}:16 INPUT.PADDING"),
    Fact("aug.erasing", 0.5, f"{Y}:15 INPUT.RE_PROB"),
    Fact("aug.erasing_max_area", 0.4, f"{RSB} data/transforms/transforms.py:23 sh"),
    Fact("aug.erasing_aspect", "uniform", f"{RSB} data/transforms/transforms.py:39"),
    Fact("aug.erasing_tries", 100, f"{RSB} data/transforms/transforms.py:35"),
    Fact("aug.erasing_fill", "imagenet_mean_values", f"{RSB} data/transforms/build.py:21-22 "
         "(mean=PIXEL_MEAN written after Normalize)"),
    Fact("model.backbone", "resnet50", f"{Y}:2-3 MODEL.PRETRAIN_PATH"),
    Fact("model.last_stride", 1, f"{RSB} config/defaults.py:27 MODEL.LAST_STRIDE"),
    Fact("model.neck", "bnneck", f"{RSB} config/defaults.py:34 MODEL.NECK"),
    Fact("model.pooling", "avg", f"{RSB} modeling/baseline.py:135"),
    Fact("model.stem_relu", False, f"{RSB} modeling/backbones/resnet.py:97, 125 (the stem's "
         "relu commented out)"),
    Fact("eval.feature", "neck_features", f"{Y}:62 TEST.NECK_FEAT 'after'"),
    Fact("eval.metric", "cosine", f"{Y}:63 TEST.FEAT_NORM (normalised, then Euclidean: the "
         "cosine ranking)"),
    Fact("eval.select_best", False, f"{RSB} Test-all_tricks-*.sh:12 (the epoch-120 model)"),
    WEIGHTS, PK,
)

BOT = Card(
    "experiments/bot.py:market1501",
    "BoT (Luo et al., CVPRW 2019), ResNet-50 + all tricks + center loss",
    RSB, "Market-1501 rank-1 94.5 / mAP 85.9, DukeMTMC 86.4 / 76.4 (README.md:91)", _BOT_ROWS,
)

BOT_IBN = Card(
    "experiments/bot_ibn.py:market1501", "BoT with ResNet-50-IBN-a", RSB,
    "Market-1501 95.0 / 88.2, DukeMTMC 90.1 / 79.1 (README.md:105)",
    tuple(r for r in _BOT_ROWS if not (isinstance(r, Fact) and r.key == "model.stem_relu"))
    + (Fact("model.norm", "ibn_a", f"{RSB} modeling/backbones/resnet_ibn_a.py"),
       Fact("model.stem_relu", True, f"{RSB} modeling/backbones/resnet_ibn_a.py:86, 129")),
)

AGW = Card(
    "experiments/agw.py:market1501",
    "AGW (Ye et al., TPAMI 2021), fast-reid's configs (whose numbers REFERENCE.md quotes)",
    f"{FR} configs/Base-AGW.yml over Base-bagtricks.yml",
    "fast-reid AGW R50: Market-1501 95.3 / 88.2, DukeMTMC 89.0 / 79.9, MSMT17 78.3 / 55.6 "
    f"({FR} MODEL_ZOO.md:61, 96, 131)",
    (
        Fact("optim.name", "adam", f"{BT}:56 SOLVER.OPT"),
        Fact("optim.lr", 3.5e-4, f"{BT}:58 SOLVER.BASE_LR"),
        Fact("optim.weight_decay", 5e-4, f"{BT}:59-60"),
        Fact("optim.bias_lr_factor", 1.0, f"{FR} fastreid/config/defaults.py:237"),
        Fact("optim.milestones", (40, 90), f"{BT}:63-65 SOLVER.STEPS"),
        Fact("optim.gamma", 0.1, f"{BT}:63-65 SOLVER.GAMMA"),
        Fact("train.num_epochs", 120, f"{BT}:57 SOLVER.MAX_EPOCH"),
        Fact("optim.warmup_factor", 0.1, f"{BT}:67-68 SOLVER.WARMUP_FACTOR"),
        Fact("optim.warmup_epochs", 10.0, f"{BT}:67-68 WARMUP_ITERS 2000 iterations (9.9 "
             "epochs of Market-1501 at 64 pictures)"),
        Fact("optim.schedule_unit", "step", f"{FR} fastreid/solver/lr_scheduler.py (warmup "
             "stepped every iteration)"),
        Behaviour("milestones after the warmup", "the multistep decay is stepped per epoch "
                  "once the warmup iterations are over", "decays at epochs 40 and 90 counted "
                  "from the start", f"{FR} fastreid/engine/hooks.py LRScheduler",
                  "a 2000-iteration warmup ends near epoch 10 on Market-1501; the shift of "
                  "the decays is at most a fraction of an epoch"),
        Fact("loss.center_weight", 0.0, f"{FR} configs/Base-AGW.yml LOSSES.NAME (CE, Triplet)"),
        Fact("loss.triplet", "wrt", f"{FR} configs/Base-AGW.yml TRI.HARD_MINING False, "
             "MARGIN 0 (weighted, soft margin)"),
        Fact("loss.triplet_feature", "features", f"{BT}:18 HEADS.NECK_FEAT 'before'"),
        Fact("loss.label_smoothing", 0.1, f"{FR} configs/Base-AGW.yml:12-14 CE.EPSILON"),
        Behaviour("label-smoothing target", "1 - eps on the true class, eps / (K - 1) "
                  "elsewhere", "(1 - eps) one-hot + eps / K (losses/classification.py)",
                  f"{FR} fastreid/modeling/losses/cross_entroy_loss.py",
                  "BoT's form, shared by every recipe; differs by eps / K(K-1) per class"),
        Fact("model.non_local", True, f"{FR} configs/Base-AGW.yml WITH_NL (layers 2 and 3: "
             "the last 2 and 3 blocks)"),
        Fact("model.pooling", "gem", f"{FR} configs/Base-AGW.yml POOL_LAYER"),
        Fact("model.gem_learnable", False, f"{FR} GeneralizedMeanPooling (p = 3, fixed)"),
        Fact("model.stem_relu", True, f"{FR} fastreid/modeling/backbones/resnet.py:134-136"),
        Fact("model.last_stride", 1, f"{BT}:8"),
        Fact("data.p", 16, f"{BT}:61 IMS_PER_BATCH 64, NUM_INSTANCE 4"),
        Fact("data.k", 4, f"{BT}:49-50 NUM_INSTANCE"),
        Fact("data.resize", "bicubic", f"{FR} fastreid/data/transforms/build.py (interpolation=3)"),
        Fact("aug.pad", 10, f"{BT}:45-46 PADDING"),
        Fact("aug.erasing", 0.5, f"{BT} REA.PROB"),
        Fact("aug.erasing_max_area", 0.33, "torchvision RandomErasing scale=(0.02, 0.33)"),
        Fact("aug.erasing_aspect", "log_uniform", "torchvision RandomErasing (log ratio)"),
        Fact("aug.erasing_tries", 10, "torchvision RandomErasing (10 attempts)"),
        Fact("aug.erasing_fill", "pixel_mean", f"{FR} fastreid/data/transforms/build.py "
             "(value = ImageNet mean x 255 on the 0-255 picture)"),
        Fact("eval.feature", "neck_features", f"{FR} embedding_head.py:123-129 (the BNNeck "
             "output at test)"),
        Fact("eval.metric", "cosine", f"{FR} fastreid/config/defaults.py:299-301 TEST.METRIC"),
        Behaviour("non-local embedding channels", "inter_channels = reduc_ratio // "
                  "reduc_ratio = 1", "non_local_inter = 1 (models/non_local.py)",
                  "mangye16/ReID-Survey@38f5912 modeling/layer/non_local.py:12; fast-reid "
                  "the same"),
        WEIGHTS,
    ),
)

IANET = Card(
    "experiments/ianet.py:market1501", "IANet (Hou et al., CVPR 2019)", IA,
    "Market-1501 94.4 / 83.1, DukeMTMC 87.1 / 73.4 (paper)",
    (
        Fact("optim.name", "adam", f"{IA} train.py:54 --optim"),
        Fact("optim.lr", 3.5e-4, f"{IA} train.py:64 --lr"),
        Fact("optim.weight_decay", 5e-4, f"{IA} train.py:70 --weight-decay"),
        Fact("optim.milestones", (20, 40), f"{IA} train.py:66 --stepsize"),
        Fact("optim.warmup_epochs", 0.0, f"{IA} (no warmup anywhere)"),
        Fact("optim.schedule_unit", "epoch", f"{IA} train.py:197-201 scheduler.step() per epoch"),
        Fact("train.num_epochs", 60, f"{IA} train.py:56 --max-epoch"),
        Fact("data.p", 16, f"{IA} train.py:60, 74 (64 = 16 x 4, RandomIdentitySampler)"),
        Fact("data.resize", "bicubic", f"{IA} train.py:128, 136 (interpolation=3)"),
        Fact("aug.pad", 0, f"{IA} train.py:128-132 (resize, flip, erasing: no pad or crop)"),
        Fact("aug.erasing", 0.5, f"{IA} train.py:132"),
        Fact("aug.erasing_fill", "mean_values", f"{IA} spatial_transforms.py:501 (the class "
             "default (0.4914, 0.4822, 0.4465), after Normalize)"),
        Fact("loss.triplet_feature", "neck_features", f"{IA} models/IAUnet.py:48-51 (the BN "
             "output)"),
        Fact("loss.triplet_distance", "cosine", f"{IA} train.py:87 --distance 'consine'"),
        Fact("loss.triplet_margin", 0.3, f"{IA} train.py:72 --margin"),
        Fact("loss.center_weight", 0.0, f"{IA} train.py:167-169 (CE + triplet)"),
        Fact("model.ianet_stages", (2, 3), f"{IA} models/IAResnet.py (IA after the last "
             "block of layer2 and layer3)"),
        Fact("model.stem_relu", True, f"{IA} models/IAResnet.py:25, 54-57"),
        Fact("eval.metric", "cosine", f"{IA} train.py:319-325"),
        Fact("eval.select_best", True, f"{IA} train.py (keeps the best rank-1 over the "
             "evaluated epochs)",
             "a test-set-selected number is marked as such: "
             "--config.eval.every_epochs=N --config.eval.select_best=True reports it beside "
             "the last"),
        Behaviour("trained network", "train.py builds IAUnet (IAU blocks + a 0.5 x mask "
                  "loss on part masks); IANet's IAResNet50_location is in the tree but not "
                  "wired", "IANet's IA blocks (models/ianet.py), CE + triplet",
                  f"{IA} train.py:36 market1501_seg, models/IAUnet.py", "the paper's IANet, "
                  "as the method cited; IAUnet needs part masks no dataset here has"),
        WEIGHTS,
    ),
)

_PCB_ROWS = (
    Fact("data.height", 384, f"{PR} train_PCB.sh:1 --height 384"),
    Fact("data.width", 128, f"{PR} train_PCB.sh:1 --width 128"),
    Fact("data.resize", "bilinear", f"{PR} reid/utils/data/transforms.py:9-19 RectScale"),
    Fact("data.sampler", "random", f"{PR} PCB.py:44-48 (shuffle, drop_last)"),
    Fact("aug.pad", 0, f"{PR} PCB.py:31-36 (flip only)"),
    Fact("aug.erasing", 0.0, f"{PR} PCB.py:31-36 (flip only)"),
    Fact("optim.name", "sgd", f"{PR} PCB.py:127-130"),
    Fact("optim.momentum", 0.9, f"{PR} PCB.py:186 --momentum"),
    Fact("optim.nesterov", True, f"{PR} PCB.py:127-130 nesterov=True"),
    Fact("optim.weight_decay", 5e-4, f"{PR} PCB.py:187 --weight-decay"),
    Fact("loss.label_smoothing", 0.0, f"{PR} reid/trainers_partloss.py:33-41 (plain CE)"),
    Fact("loss.triplet_weight", 0.0, f"{PR} reid/trainers_partloss.py:33-41"),
    Fact("loss.part_reduction", "sum", f"{PR} reid/trainers_partloss.py:40 (six losses)"),
    Fact("model.num_parts", 6, f"{PR} reid/models/resnet.py:129-131"),
    Fact("model.part_dim", 256, f"{PR} train_PCB.sh:1 --feature 256"),
    Fact("model.pcb_dropout", 0.5, f"{PR} PCB.py:181 --dropout; resnet.py:136-137"),
    Fact("model.pcb_shared_reduction", True, f"{PR} reid/models/resnet.py:46-51, 137-140"),
    Fact("model.stem_relu", True, f"{PR} reid/models/resnet.py:118-121 (torchvision's stem)"),
    Fact("eval.feature", "stripe_descriptor", f"{PR} reid/models/resnet.py:134-135, 156 "
         "(each 2048-d stripe L2-normalised)"),
    Fact("eval.metric", "euclidean", f"{PR} reid/evaluators.py:52-59 (squared Euclidean: "
         "the same ranking)"),
    Behaviour("classifier rows", "hard-coded 751 (Market-1501) in resnet.py:43", "the "
              "dataset's identities", f"{PR} reid/models/resnet.py:43",
              "any dataset; 751 on Market-1501, as there"),
    WEIGHTS,
)

PCB = Card(
    "experiments/pcb.py:market1501", "PCB (Sun et al., ECCV 2018)", PR,
    "Market-1501 92.3 / 77.4, DukeMTMC 81.7 / 66.1 (paper); README.md:24 93.0 / 78.0",
    _PCB_ROWS + (
        Fact("optim.lr", 0.1, f"{PR} PCB.py:183 --lr"),
        Fact("optim.backbone_lr_mult", 0.1, f"{PR} PCB.py:118-124 lr_mult 0.1 for the base"),
        Fact("optim.milestones", (40,), f"{PR} train_PCB.sh:1 --step-size 40"),
        Fact("optim.schedule_unit", "epoch", f"{PR} PCB.py:136-145 (lr set per epoch)"),
        Fact("optim.warmup_epochs", 0.0, f"{PR} PCB.py:136-140"),
        Fact("train.num_epochs", 60, f"{PR} train_PCB.sh:1 --epochs 60"),
    ),
)

RPP = Card(
    "experiments/pcb.py:rpp-market1501", "RPP (Sun et al., ECCV 2018), from a PCB run", PR,
    "Market-1501 93.8 / 81.6, DukeMTMC 83.3 / 69.2 (paper); README.md:31 93.5 / 81.5",
    tuple(r for r in _PCB_ROWS) + (
        Fact("model.rpp", True, f"{PR} train_RPP.sh:4 -a resnet50_rpp"),
        Fact("model.init_from_run_classifier", True, f"{PR} RPP.py:96-108 (every matching "
             "key of the PCB checkpoint)"),
        Fact("optim.rpp_classifier_only_epochs", 0, f"{PR} RPP.py:123-135 (all parameters "
             "in one optimizer: a joint fine-tune)"),
        Fact("optim.lr", 0.01, f"{PR} RPP.py:141-145 (0.1 x 0.1^(epoch // 20) from epoch 20)"),
        Fact("optim.backbone_lr_mult", 1.0, f"{PR} RPP.py:199 --lr_mult 1"),
        Fact("optim.milestones", (20,), f"{PR} train_RPP.sh:4 --step_size 20 (epochs 40-49 "
             "at 0.001)"),
        Fact("train.num_epochs", 30, f"{PR} train_RPP.sh:4 --epochs 50 from epoch 20"),
        Behaviour("PCB run before RPP", "train_RPP.sh trains PCB for 20 epochs first",
                  "any PCB run, named by --config.model.init_from_run",
                  f"{PR} train_RPP.sh:1", "the user picks the PCB run (20 epochs as the "
                  "official script: --config.train.num_epochs=20 on pcb.py)"),
        Behaviour("part classifier", "dropout, channel-group average pooling 2048 -> 256, "
                  "spatial mean subtracted, 1x1 conv, softmax", "a linear layer + softmax on "
                  "each position's feature (models/rpp.py), as the paper's Eq. 4",
                  f"{PR} reid/models/resnet_rpp.py:80-82, 127-134",
                  "the paper's formulation; the official preprocessing is not reproduced"),
    ),
)

CARDS = (BOT, BOT_IBN, AGW, IANET, PCB, RPP)
