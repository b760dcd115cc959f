"""Recipe cards of the unsupervised methods: cluster contrast, PPLR, CAP, MMT."""

from __future__ import annotations

from reid_jax.recipes import Behaviour, Card, Fact
from reid_jax.recipes.supervised import WEIGHTS

CC = "alibaba/cluster-contrast-reid@57b62e9"
CCS = f"{CC} examples/cluster_contrast_train_usl.py"
PP = "yoonkicho/PPLR@5337193"
PPS = f"{PP} examples/train_pplr.py"
CAP = "Terminator8758/CAP-master@4a04fef"
CAPS = f"{CAP} train_cap.py"
MMT = "yxgeee/MMT@057e1ea"
MMTS = f"{MMT} examples/mmt_train_kmeans.py"

SELECT_BEST = "a test-set-selected number is marked as such: --config.eval.select_best=True " \
              "reports the best periodic evaluation beside the last"


def _erasing(source: str, max_area: float = 0.4) -> tuple[Fact, ...]:
    return (
        Fact("aug.erasing", 0.5, source),
        Fact("aug.erasing_max_area", max_area, source),
        Fact("aug.erasing_aspect", "uniform", source),
        Fact("aug.erasing_tries", 100, source),
        Fact("aug.erasing_fill", "imagenet_mean_values", f"{source} (mean written after "
             "Normalize)"),
    )


def _round_behaviours(ref: str, sampler_src: str, cross_camera: bool = True) -> tuple:
    return (
        Behaviour("pseudo labels every epoch", "eval-mode L2-normalised features of every "
                  "training picture, no flip; Jaccard + DBSCAN; outliers left out of the epoch",
                  "rounds.embed / rounds.cluster (clustering/pseudo_labels.py)", ref),
        Behaviour("sampler", "every pseudo identity once per pass in random order; "
                  + ("an anchor then K-1 pictures from other cameras (with replacement below "
                     "K candidates)" if cross_camera else "K of the proxy's pictures, "
                     "repeated below K") + "; passes repeat until the epoch's iterations",
                  "samplers.cluster_uniform_batches (tests/data/test_samplers.py)", sampler_src),
    )


CLUSTER_CONTRAST = Card(
    "experiments/cluster_contrast.py:market1501",
    "Cluster contrast (Dai et al., ACCV 2022), DBSCAN", CC,
    "Market-1501 92.3 / 82.1, DukeMTMC 84.9 / 72.6, MSMT17 56.0 / 27.6 (README, "
    "figs/resultsv2.png)",
    (
        Fact("optim.name", "adam", f"{CCS}:139-140"),
        Fact("optim.lr", 3.5e-4, f"{CCS}:267 --lr"),
        Fact("optim.weight_decay", 5e-4, f"{CCS}:269 --weight-decay"),
        Fact("optim.milestones", (20, 40), f"{CCS}:141, 272 StepLR(step_size=20)"),
        Fact("optim.gamma", 0.1, f"{CCS}:141"),
        Fact("optim.warmup_epochs", 0.0, f"{CCS} (no warmup)"),
        Fact("optim.schedule_unit", "epoch", f"{CCS}:224 lr_scheduler.step() per epoch"),
        Fact("train.num_epochs", 50, f"{CCS}:270 --epochs"),
        Fact("data.steps_per_epoch", 200, f"{CC} README.md:78 --iters 200 (MSMT17: 400)"),
        Fact("data.p", 16, f"{CC} README.md:78 -b 256 --num-instances 16"),
        Fact("data.k", 16, f"{CC} README.md:78 --num-instances 16"),
        Fact("data.sampler", "cluster_uniform", f"{CC} clustercontrast/utils/data/sampler.py:69-104"),
        Fact("data.height", 256, f"{CCS}:242"),
        Fact("data.resize", "bicubic", f"{CCS}:48"),
        Fact("aug.pad", 10, f"{CCS}:48-56"),
        *_erasing(f"{CC} clustercontrast/utils/data/transforms.py:64, 72-93"),
        Fact("cluster.k1", 30, f"{CCS}:254 --k1"),
        Fact("cluster.k2", 6, f"{CCS}:256 --k2"),
        Fact("cluster.eps", 0.6, f"{CC} README.md:78 --eps 0.6"),
        Fact("cluster.min_samples", 4, f"{CCS}:160"),
        Fact("contrast.momentum", 0.1, f"{CC} README.md:78 --momentum 0.1"),
        Fact("contrast.temperature", 0.05, f"{CCS}:277 --temp"),
        Fact("contrast.use_hard", False, f"{CCS}:286 --use-hard (off in the README)"),
        Fact("model.pooling", "gem", f"{CCS}:285 --pooling-type gem"),
        Fact("model.gem_learnable", True, f"{CC} clustercontrast/models/pooling.py:97-103"),
        Fact("model.stem_relu", True, f"{CC} clustercontrast/models/resnet.py:35-37"),
        Fact("model.last_stride", 1, f"{CC} clustercontrast/models/resnet.py:33-34"),
        Fact("train.bn_group_size", 64, f"{CC} README.md:70 (4 GPUs, nn.DataParallel, batch 256)"),
        Fact("eval.select_best", True, f"{CCS}:212-229 (model_best.pth.tar by test mAP)",
             SELECT_BEST),
        *_round_behaviours(f"{CCS}:146-164", f"{CC} clustercontrast/utils/data/sampler.py:69-104"),
        Behaviour("memory update", "each sample of the batch updates its centroid in turn, "
                  "m 0.1, renormalised", "clustering/memory.momentum_update (tests)",
                  f"{CC} clustercontrast/models/cm.py:27-30"),
        WEIGHTS,
    ),
)

PPLR = Card(
    "experiments/pplr.py:market1501", "PPLR (Cho et al., CVPR 2022)", PP,
    "Market-1501 92.8 / 81.5, MSMT17 61.1 / 31.4 (paper; the README has no table)",
    (
        Fact("optim.lr", 3.5e-4, f"{PPS}:288"),
        Fact("optim.weight_decay", 5e-4, f"{PPS}:289"),
        Fact("optim.milestones", (20, 40), f"{PPS}:169, 292 StepLR(step_size=20)"),
        Fact("optim.schedule_unit", "epoch", f"{PPS}:234"),
        Fact("train.num_epochs", 50, f"{PPS}:290"),
        Fact("data.steps_per_epoch", 400, f"{PPS}:291 --iters"),
        Fact("data.p", 16, f"{PPS}:257 -b 64 / -n 4"),
        Fact("data.k", 4, f"{PPS}:259 -n"),
        Fact("data.height", 384, f"{PPS}:264"),
        Fact("data.sampler", "cluster_uniform", f"{PP} pplr/utils/data/sampler.py:46-103"),
        Fact("data.resize", "bicubic", f"{PPS}:42-50"),
        *_erasing(f"{PP} pplr/utils/data/transforms.py:64"),
        Fact("cluster.eps", 0.5, f"{PPS}:299 --eps"),
        Fact("cluster.k1", 30, f"{PPS}:295"),
        Fact("cluster.k2", 6, f"{PPS}:87-88 (hard-coded)"),
        Fact("cluster.min_samples", 4, f"{PPS}:178"),
        Fact("cluster.max_clusters", 3000, f"{PPS}:155 num_classes=3000"),
        Fact("pplr.k", 20, f"{PPS}:280 --k"),
        Fact("pplr.beta", 0.5, f"{PPS}:282 --beta"),
        Fact("pplr.aals_epoch", 5, f"{PPS}:284 --aals-epoch"),
        Fact("model.name", "part_net", f"{PP} pplr/models/resnet_part.py"),
        Fact("model.num_parts", 3, f"{PPS}:279 --part"),
        Fact("model.stem_relu", True, f"{PP} pplr/models/resnet_part.py:38-40"),
        Fact("train.bn_group_size", 16, f"{PP} README.md:36 (4 GPUs, batch 64)"),
        Fact("eval.select_best", True, f"{PPS}:238-250 (best.pth reloaded and reported)",
             SELECT_BEST),
        *_round_behaviours(f"{PPS}:173-212", f"{PP} pplr/utils/data/sampler.py:46-103"),
        Behaviour("cross agreement", "Jaccard overlap of the global and each part's top-k "
                  "neighbour lists (self excluded), once per epoch",
                  "clustering/cross_agreement.py (tests)", f"{PPS}:104-121"),
        WEIGHTS,
    ),
)

CAP_CARD = Card(
    "experiments/cap.py:market1501", "CAP (Wang, Lai, Huang, Gong & Hua, AAAI 2021)", CAP,
    "Market-1501 91.4 / 79.2, DukeMTMC 81.1 / 67.3, MSMT17 67.4 / 36.9 (README, "
    "figs/experiment.png)",
    (
        Fact("optim.lr", 3.5e-4, f"{CAPS}:304 --base_lr"),
        Fact("optim.weight_decay", 5e-4, f"{CAPS}:303"),
        Fact("optim.milestones", (20, 40), f"{CAPS}:305 --milestones"),
        Fact("optim.warmup_epochs", 10.0, f"{CAPS}:247 WarmupMultiStepLR(warmup_iters=10)"),
        Fact("optim.warmup_factor", 0.01, f"{CAPS}:247"),
        Fact("optim.schedule_unit", "epoch", f"{CAPS}:254 lr_scheduler.step(epoch)"),
        Fact("train.num_epochs", 50, f"{CAPS}:309"),
        Fact("data.steps_per_epoch", 0, f"{CAPS}:262-264 (clustered pictures // 32, every "
             "epoch)"),
        Fact("data.p", 8, f"{CAPS}:289 --batch_size 32 / k 4"),
        Fact("data.k", 4, f"{CAPS}:109 k=4"),
        Fact("data.sampler", "cluster_uniform", f"{CAP} reid/utils/data/preprocessor.py:145-161"),
        Fact("data.resize", "bicubic", f"{CAPS}:67-75"),
        *_erasing(f"{CAP} reid/utils/data/transforms.py:52-76", max_area=0.2),
        Fact("cluster.k1", 20, f"{CAPS}:258-259"),
        Fact("cluster.k2", 6, f"{CAPS}:258-259"),
        Fact("cluster.eps", 0.5, f"{CAPS}:319 --thresh"),
        Fact("cluster.min_samples", 4, f"{CAP} reid/img_grouping.py:60"),
        Fact("cap.temperature", 0.07, f"{CAPS}:318 --inv_beta"),
        Fact("cap.momentum", 0.2, f"{CAPS}:317 --inv_alpha"),
        Fact("cap.hard_negatives", 50, f"{CAP} reid/loss/CamAwareMemory.py:35 bg_knn"),
        Fact("cap.crosscam_epoch", 5, f"{CAP} reid/loss/CamAwareMemory.py:35"),
        Fact("cap.inter_weight", 0.5, f"{CAP} reid/loss/CamAwareMemory.py:113"),
        Fact("model.stem_relu", False, f"{CAP} reid/models/stb_net.py:79-81"),
        Fact("model.pooling", "avg", f"{CAP} reid/models/stb_net.py:70"),
        Fact("model.last_stride", 1, f"{CAP} reid/models/stb_net.py:75-76"),
        Fact("train.bn_group_size", 0, f"{CAP} README.md:25 (one GPU: the whole batch of 32)"),
        Fact("eval.select_best", False, f"{CAPS}:278-281 (the last epoch)"),
        *_round_behaviours(f"{CAPS}:253-264", f"{CAP} reid/utils/data/preprocessor.py:145-161",
                           cross_camera=False),
        Behaviour("inter-camera positives", "every proxy of the sample's cluster, its own "
                  "camera's included, target 1/#positives", "camera_proxies.cap_losses",
                  f"{CAP} reid/loss/CamAwareMemory.py:80-83, 101-112"),
        WEIGHTS,
    ),
)

MMT_CARD = Card(
    "experiments/mmt.py:dukemtmc->market1501",
    "MMT (Ge, Chen & Li, ICLR 2020), DukeMTMC -> Market-1501, k-means 500", MMT,
    "DukeMTMC -> Market-1501 mAP 71.2 / rank-1 87.7 (source model alone 31.8 / 61.9); "
    "Market-1501 -> DukeMTMC 65.1 / 78.0 with 700 clusters (README figs/results.png)",
    (
        Fact("data.source", "dukemtmc_reid/standard:train", f"{MMT} scripts/"
             "train_mmt_kmeans.sh:14-18 (-ds dukemtmc -dt market1501, --init-1/--init-2)"),
        Fact("optim.name", "adam", f"{MMTS}:177-187"),
        Fact("optim.lr", 3.5e-4, f"{MMT} scripts/train_mmt_kmeans.sh:15 --lr"),
        Fact("optim.weight_decay", 5e-4, f"{MMTS}:245"),
        Fact("optim.schedule", "constant", f"{MMTS} (no scheduler)"),
        Fact("mmt.reset_optimizer", True, f"{MMTS}:151, 177-187 (Adam built inside the "
             "epoch loop)"),
        Fact("train.num_epochs", 40, f"{MMT} scripts/train_mmt_kmeans.sh:15 --epochs"),
        Fact("data.steps_per_epoch", 400, f"{MMT} scripts/train_mmt_kmeans.sh:15 --iters"),
        Fact("data.p", 16, f"{MMT} scripts/train_mmt_kmeans.sh:15 -b 64 --num-instances 4"),
        Fact("data.sampler", "cluster_uniform", f"{MMT} mmt/utils/data/sampler.py:46-70"),
        Fact("data.resize", "bicubic", f"{MMTS}:40-48"),
        *_erasing(f"{MMT} mmt/utils/data/transforms.py:64-96"),
        Fact("cluster.method", "kmeans", f"{MMTS}:159"),
        Fact("cluster.num_clusters", 500, f"{MMTS}:229 --num-clusters"),
        Fact("cluster.kmeans_n_init", 10, f"{MMTS}:159 (scikit-learn's default then)"),
        Fact("mmt.soft_ce_weight", 0.5, f"{MMT} scripts/train_mmt_kmeans.sh:16"),
        Fact("mmt.soft_tri_weight", 0.8, f"{MMT} scripts/train_mmt_kmeans.sh:16"),
        Fact("mmt.ema_alpha", 0.999, f"{MMTS}:249 --alpha"),
        Fact("mmt.label_smoothing", 0.1, f"{MMT} mmt/loss/crossentropy.py:19"),
        Fact("model.stem_relu", False, f"{MMT} mmt/models/resnet.py:35-37 (\"no relu\")"),
        Fact("model.pooling", "avg", f"{MMT} mmt/models/resnet.py:38"),
        Fact("train.bn_group_size", 16, f"{MMT} README.md:67-71 (4 GPUs x 16)"),
        Behaviour("students' initialisation", "two source models pre-trained with seeds 1 "
                  "and 2, every matching weight (BNNeck included, the classifier dropped)",
                  "--config.model.init_from_run=runA,runB: two runs of "
                  "bot.py:dukemtmc->market1501, seeds 1 and 2 (train/init.py; classifiers "
                  "not copied)", f"{MMTS}:100-108; {MMT} scripts/pretrain.sh:5,14"),
        Behaviour("k-means features", "the mean of the two teachers' L2-normalised features, "
                  "not normalised again", "mmt.round_fn + pseudo_labels.kmeans",
                  f"{MMTS}:152-159"),
        Behaviour("evaluated model", "the better of the two mean teachers on the target test "
                  "set", "mean teacher 1 (--config.eval.select_best adds the best epoch)",
                  f"{MMT} README.md; {MMTS} evaluation", "no test-set selection by default"),
        WEIGHTS,
    ),
)

MP = f"{MMT} examples/source_pretrain.py"
MMT_SOURCE = Card(
    "experiments/bot.py:dukemtmc->market1501",
    "MMT's source pre-training (supervised on DukeMTMC, evaluated on Market-1501)", MMT,
    "the source model alone on Market-1501: mAP 31.8 / rank-1 61.9 (README figs/results.png, "
    "'Pre-trained R50')",
    (
        Fact("optim.name", "adam", f"{MP}:136-137"),
        Fact("optim.lr", 3.5e-4, f"{MMT} scripts/pretrain.sh:15 --lr"),
        Fact("optim.weight_decay", 5e-4, f"{MP}:193, 196"),
        Fact("optim.warmup_epochs", 10.0, f"{MMT} mmt/utils/lr_scheduler.py:44-56 (per epoch)"),
        Fact("optim.warmup_factor", 0.01, f"{MMT} mmt/utils/lr_scheduler.py:44-56"),
        Fact("optim.milestones", (40, 70), f"{MP}:138, 145"),
        Fact("train.num_epochs", 80, f"{MMT} scripts/pretrain.sh:15 --epochs"),
        Fact("data.steps_per_epoch", 100, f"{MMT} scripts/pretrain.sh:15 --iters"),
        Fact("data.p", 16, f"{MMT} scripts/pretrain.sh:15 -b 64 --num-instances 4"),
        Fact("data.k", 4, f"{MMT} scripts/pretrain.sh:15 --num-instances 4"),
        Fact("data.height", 256, f"{MP}:180-181"),
        Fact("data.width", 128, f"{MP}:180-181"),
        Fact("aug.erasing", 0.0, f"{MP}:39-46 (flip, pad 10, crop; no erasing)"),
        Fact("aug.pad", 10, f"{MP}:39-46"),
        Fact("loss.label_smoothing", 0.1, f"{MMT} mmt/loss/crossentropy.py:19, 33"),
        Fact("loss.soft_margin", True, f"{MMT} mmt/trainers.py:17-18 SoftTripletLoss(margin="
             "0.0), mmt/loss/triplet.py:85-89: log(1 + exp(d_ap - d_an))"),
        Fact("loss.center_weight", 0.0, f"{MMT} mmt/trainers.py:77-86 (CE + triplet only)"),
        Fact("model.stem_relu", False, f"{MMT} mmt/models/resnet.py:36 (\"no relu\")"),
        Fact("data.bn_target", "market1501/standard:train", f"{MMT} mmt/trainers.py:37-40 "
             "(\"target samples: only forward\")"),
        Fact("data.bn_target_per_batch", 64, f"{MP}:105-107 (the target loader's batch)"),
        Behaviour("kept checkpoint", "the best source-domain mAP of the evaluations at "
                  "epochs 40 and 80", "the last epoch's weights", f"{MP}:152-162",
                  "the evaluators of a source->target run read the target, so no source-mAP "
                  "selection is made; the last epoch's weights are used"),
        WEIGHTS,
    ),
)

CARDS = (CLUSTER_CONTRAST, PPLR, CAP_CARD, MMT_CARD, MMT_SOURCE)
