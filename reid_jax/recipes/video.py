"""Recipe cards of the video methods: the temporal-pooling baselines and TKP.

Read from jiyanggao/Video-Person-ReID @dfe9a02 (Gao and Nevatia, "Revisiting Temporal
Modeling for Video-based Person ReID", 2018) and guxinqian/TKP @320ce80 (Gu et al.,
"Temporal Knowledge Propagation for Image-to-Video Person Re-identification", ICCV 2019).
"""

from __future__ import annotations

from reid_jax.recipes import Behaviour, Card, Fact
from reid_jax.recipes.supervised import WEIGHTS

GAO = "jiyanggao/Video-Person-ReID@dfe9a02"
GM = f"{GAO} main_video_person_reid.py"
TKP = "guxinqian/TKP@320ce80"
TT = f"{TKP} train.py"

TAP = Card(
    config="experiments/video.py:mars",
    method="Temporal average pooling (TAP) / temporal attention video baseline (Gao and "
           "Nevatia, 2018)",
    reference=GAO,
    published="MARS rank-1 / mAP: TAP 83.1 / 75.8, temporal attention 83.3 / 76.7 "
              "(README.md:46-52)",
    rows=(
        Fact("model.name", "video_net", f"{GAO} models/ResNet.py:12-42 (ResNet50TP)"),
        Fact("model.temporal", "avg", f"{GAO} models/ResNet.py:26-30: avg_pool1d over time"),
        Fact("model.backbone", "resnet50", f"{GAO} models/ResNet.py:16"),
        Fact("model.last_stride", 2, f"{GAO} models/ResNet.py:16-17: torchvision ResNet-50 "
             "as is (7 x 4 map at 224 x 112)"),
        Fact("model.neck", "none", f"{GAO} models/ResNet.py:33, 38: the pooled feature goes "
             "to the triplet loss and the classifier"),
        Fact("data.height", 224, f"{GM}:33-36"),
        Fact("data.width", 112, f"{GM}:33-36"),
        Fact("data.clip_len", 4, f"{GM}:37 --seq-len 4"),
        Fact("data.clip_sampling", "consecutive", f"{GAO} video_loader.py:42-58 "
             "sample='random': T consecutive frames"),
        Fact("data.p", 8, f"{GM}:43, 55-56: train batch 32 with 4 instances"),
        Fact("data.k", 4, f"{GM}:55-56 --num-instances 4"),
        Fact("data.steps_per_epoch", 78, f"{GAO} samplers.py:27-39: every identity once per "
             "epoch (625 MARS identities / 8)"),
        Fact("optim.name", "adam", f"{GM}:152"),
        Fact("optim.lr", 3e-4, f"{GM}:46 --lr 0.0003"),
        Fact("optim.weight_decay", 5e-4, f"{GM}:52"),
        Fact("optim.warmup_epochs", 0.0, f"{GM}: no warmup"),
        Fact("optim.schedule_unit", "epoch", f"{GM}:154, 174: StepLR stepped after each epoch"),
        Fact("optim.milestones", (200, 400, 600), f"{GM}:48-50 --stepsize 200, gamma 0.1"),
        Fact("optim.gamma", 0.1, f"{GM}:50"),
        Fact("train.num_epochs", 800, f"{GM}:39 --max-epoch 800"),
        Fact("loss.label_smoothing", 0.1, f"{GM}:149; losses.py:26 CrossEntropyLabelSmooth"),
        Fact("loss.triplet_margin", 0.3, f"{GM}:150 --margin 0.3 (batch-hard, losses.py:63-86)"),
        Fact("loss.center_weight", 0.0, f"{GM}:210-212: cross-entropy + triplet only"),
        Fact("aug.erasing", 0.0, f"{GAO} transforms.py:8-40: no erasing"),
        Fact("aug.flip", 0.5, f"{GM}:98-103: RandomHorizontalFlip"),
        Fact("eval.clip_sampling", "dense", f"{GAO} video_loader.py:73-105 sample='dense'"),
        Fact("eval.metric", "euclidean", f"{GM}:271-274: squared Euclidean (the same ranking)"),
        Behaviour("test clips", "every frame in clips of 4; the last clip padded by repeating "
                  "its own frames; clip features averaged", "tracklets.test_clips 'dense', "
                  "mean_by_owner (tests/data/test_tracklets.py)",
                  f"{GAO} video_loader.py:85-89; {GM}:235, 256"),
        Behaviour("spatial augmentation", "Random2DTranslation (p 0.5: resize 1.125x, random "
                  "crop) and flip, drawn per frame", "flip drawn once per clip, no translation "
                  "(augment.augment_batch clip_len)", f"{GAO} transforms.py:8-40; "
                  "video_loader.py:63-66", "per-clip draws keep a clip one motion; the "
                  "translation is not implemented"),
        Behaviour("classifier", "nn.Linear(2048, ids) with a bias, PyTorch's default init",
                  "BoT's bias-free linear layer, N(0, 0.001^2) (models/heads.py)",
                  f"{GAO} models/ResNet.py:22", "the BoT head every other config uses"),
        Behaviour("MARS gallery", "query tracklets excluded", "mars/standard (queries "
                  "excluded)", f"{GAO} data_manager.py:51-52"),
        WEIGHTS,
    ),
)

TKP_CARD = Card(
    config="experiments/tkp.py:mars",
    method="TKP: temporal knowledge propagation, image-to-video (Gu et al., ICCV 2019)",
    reference=TKP,
    published="MARS I2V rank-1 75.6 / mAP 65.1; iLIDS-VID I2V rank-1 54.6 (the project's "
              "material, ../shared/REFERENCE.md; the repository states none)",
    rows=(
        Fact("model.name", "tkp", f"{TT}:54-55, 153-155: img_resnet50 + vid_nonlocalresnet50, "
             "one shared classifier"),
        Fact("model.backbone", "resnet50", f"{TKP} models/ResNet.py:87-159"),
        Fact("model.last_stride", 1, f"{TKP} models/ResNet.py:93-94, 149-150"),
        Fact("model.neck", "none", f"{TKP} models/ResNet.py:156-173: GAP feature, linear "
             "classifier, no BatchNorm neck"),
        Fact("data.height", 256, f"{TT}:37-38"),
        Fact("data.width", 128, f"{TT}:37-38"),
        Fact("data.resize", "bicubic", f"{TT}:91 interpolation=3"),
        Fact("data.clip_len", 4, f"{TT}:40 --seq_len 4"),
        Fact("data.clip_sampling", "stride", f"{TT}:96; transforms/temporal_transforms.py:"
             "72-109 TemporalRandomCrop"),
        Fact("data.clip_stride", 8, f"{TT}:41 --sample_stride 8"),
        Fact("data.p", 4, f"{TT}:45, 52: train batch 16 clips, 4 instances"),
        Fact("data.k", 4, f"{TT}:52 --num_instances 4"),
        Fact("aug.flip", 0.5, f"{TT}:90-95: RandomHorizontalFlip"),
        Fact("aug.pad", 0, f"{TT}:90-95: no crop"),
        Fact("aug.erasing", 0.0, f"{TT}:90-95: no erasing"),
        Fact("optim.name", "adam", f"{TT}:163-167"),
        Fact("optim.lr", 3e-4, f"{TT}:48"),
        Fact("optim.weight_decay", 5e-4, f"{TT}:51"),
        Fact("optim.warmup_epochs", 0.0, f"{TT}: no warmup"),
        Fact("optim.milestones", (60, 120), f"{TT}:49 --stepsize 60 120"),
        Fact("optim.gamma", 0.1, f"{TT}:50"),
        Fact("optim.schedule_unit", "epoch", f"{TT}:168 MultiStepLR"),
        Fact("optim.schedule_epoch_offset", 1, f"{TT}:197: scheduler.step() at each epoch's "
             "start"),
        Fact("train.num_epochs", 150, f"{TT}:43 --max_epoch 150"),
        Fact("tkp.label_smoothing", 0.0, f"{TT}:159 nn.CrossEntropyLoss()"),
        Fact("tkp.id_weight", 1.0, f"{TT}:286"),
        Fact("tkp.triplet_weight", 1.0, f"{TT}:286"),
        Fact("tkp.triplet_margin", 0.3, f"{TT}:162 HeterogeneousTripletLoss(margin=0.3)"),
        Fact("tkp.feature_weight", 1.0, f"{TT}:286"),
        Fact("tkp.distance_weight", 1.0, f"{TT}:286"),
        Fact("tkp.teacher_gradient", False, f"{TT}:57 --bp_to_vid store_true (off)"),
        Fact("eval.metric", "cosine", f"{TKP} test.py:221-234: normalised features, -q.g"),
        Fact("eval.evaluators", ("image_to_video", "video"), f"{TKP} test.py:241-255 (I2I, "
             "V2I too)"),
        Behaviour("video network", "C2D ResNet-50 with 5 spatio-temporal non-local blocks "
                  "(after blocks 1, 3 of layer2 and 1, 3, 5 of layer3)", "a per-frame "
                  "ResNet-50 with temporal average pooling (models/video.py VideoNet)",
                  f"{TKP} models/ResNet.py:102-114; models/non_local.py",
                  "spatio-temporal non-local blocks across a clip are not implemented"),
        Behaviour("propagation losses", "L_F: mean over frames of the squared distance of "
                  "image and video frame features; L_D: mean squared difference of their "
                  "Euclidean distance matrices; video side detached",
                  "losses/tkp.py (tests/losses/test_tkp.py against NumPy)",
                  f"{TKP} utils/losses.py:72-124"),
        Behaviour("integrated triplet", "batch-hard across sets, margin 0.3: I2V, V2I, I2I, "
                  "V2V", "losses/tkp.integrated_triplet", f"{TKP} utils/losses.py:11-69; "
                  f"{TT}:282-285"),
        Behaviour("I2V queries", "the first frame of each query tracklet", "the "
                  "image_to_video evaluator (evaluation/video.embed_first_frames)",
                  f"{TKP} utils/data_manager.py:72-76"),
        Behaviour("gallery tracklets", "all frames in chunks of 32, the last unpadded; the "
                  "mean of every frame's feature", "every frame in clips of 4, the last "
                  "padded by repeating its frames; the mean of the clip features",
                  f"{TKP} test.py:123-138", "fixed clip shapes compile once; equal to TKP's "
                  "mean when 4 divides the tracklet's length"),
        Behaviour("MARS gallery", "query tracklets prepended to the gallery", "mars/tkp "
                  "(query tracklets in the gallery)", f"{TKP} test.py:172-176"),
        Behaviour("average precision", "trapezoid rule", "non-interpolated AP (torchreid / "
                  "fast-reid)", f"{TKP} utils/eval_metrics.py:28", "one AP across the "
                  "project; slightly different numbers"),
        Behaviour("clip augmentation", "flip drawn once per clip", "the same "
                  "(augment.augment_batch clip_len)", f"{TKP} utils/video_loader.py:95; "
                  "spatial_transforms.py:291-303"),
        WEIGHTS,
    ),
)

CARDS = (TAP, TKP_CARD)
