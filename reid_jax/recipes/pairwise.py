"""Recipe cards of the pair networks: IDLA and the gated siamese CNN.

Neither paper released code. IDLA's values were read in the paper itself (Ahmed, Jones
and Marks, CVPR 2015; the CVF open-access PDF, as stored in the repository
wyg1997/PersonReID-paper, documents/CVPR2015/Ahmed_An_Improved_Deep_2015_CVPR_paper.pdf);
the gated siamese CNN's paper (Varior, Haloi and Wang, ECCV 2016) was not available to
us beyond its abstract and later papers' descriptions, so most of its recipe is ours and
marked as such.
"""

from __future__ import annotations

from reid_jax.recipes import Behaviour, Card, Fact

AH = "Ahmed et al., CVPR 2015"
VA = "Varior et al., ECCV 2016"

IDLA = Card(
    config="experiments/idla.py:cuhk03_labeled",
    method="IDLA (Ahmed, Jones and Marks, CVPR 2015)",
    reference=f"{AH} (no official code; the paper's Sec. 3, 6 and 7)",
    published="CUHK03 labeled rank-1 54.74, detected 44.96; CUHK01 100 ids 65.00, 486 ids "
              "47.53; VIPeR 34.81 (single-shot CMC, Fig. 5-6)",
    rows=(
        Fact("model.name", "idla", f"{AH} Sec. 3 (2,308,147 parameters: tested)"),
        Fact("data.height", 160, f"{AH} Sec. 3.1: 60 x 160 RGB input"),
        Fact("data.width", 60, f"{AH} Sec. 3.1"),
        Fact("optim.name", "sgd", f"{AH} Sec. 6: stochastic gradient descent"),
        Fact("optim.lr", 0.01, f"{AH} Sec. 6: base learning rate 0.01"),
        Fact("optim.momentum", 0.9, f"{AH} Sec. 6"),
        Fact("optim.weight_decay", 5e-4, f"{AH} Sec. 6"),
        Fact("optim.schedule", "inv", f"{AH} Sec. 6: lr_i = lr_0 (1 + gamma i)^-p"),
        Fact("optim.inv_gamma", 1e-4, f"{AH} Sec. 6: gamma = 10^-4"),
        Fact("optim.inv_power", 0.75, f"{AH} Sec. 6: p = 0.75"),
        Fact("aug.translate", 0.05, f"{AH} Sec. 6.1: translations in [-0.05H, 0.05H] x "
             "[-0.05W, 0.05W]"),
        Fact("aug.flip", 0.0, f"{AH} Sec. 6.1: horizontal reflections only for VIPeR"),
        Fact("pairs.negatives_per_positive", 2, f"{AH} Sec. 6.2: negatives down-sampled to "
             "twice the positives"),
        Fact("data.p", 25, f"{AH} Sec. 7.1: mini-batches of 150 pairs = 25 identities x 2 "
             "pictures, each with 1 positive + 2 negatives"),
        Fact("data.k", 2, f"{AH} Sec. 7.1 (as data.p)"),
        Fact("train.num_epochs", 420, f"{AH} Sec. 7.1: 210,000 iterations (epochs of 1,000), "
             "then the hard-negative phase"),
        Fact("pairs.hard_negative_epochs", 210, f"{AH} Sec. 7.2: the hard-negative phase "
             "of CUHK01 ran another 210K iterations (CUHK03's length is not stated)"),
        Behaviour("hard negatives", "after training to convergence, the network classifies "
                  "every negative pair of the training set; the hardest are kept and only the "
                  "top layer is retrained, hard negatives 1:1 with positives",
                  "in the last pairs.hard_negative_epochs: each picture's hardest of 8 random "
                  "negatives of its batch, scored by the current network, 1:1 with its "
                  "positive; only fc2 trains (reid_jax/train/pairwise.py, "
                  "tests/train/test_pairwise.py)", f"{AH} Sec. 6.2",
                  "scoring every negative pair of the training set is ~10^6 pair forwards per "
                  "pass; batch candidates cost 8 per picture"),
        Behaviour("augmentation", "5 translated copies of each picture, drawn once",
                  "a new random translation at every step (reid_jax/data/augment.py)",
                  f"{AH} Sec. 6.1", "the same translations, drawn online"),
        Behaviour("unstated details", "nonlinearity after the tied and across-patch "
                  "convolutions, border of the 5 x 5 neighbourhood, initialisation: not stated",
                  "ReLU (both public reimplementations), zeros outside the map, Flax's "
                  "default initialisers (reid_jax/models/pairwise.py)", f"{AH} Sec. 3",
                  "the paper leaves them open"),
        Behaviour("test protocol", "single-shot CMC on CUHK03's classic split (1,160 train / "
                  "100 test ids), 5 random splits", "eval.evaluators=('cuhk03_classic',) on "
                  "the built CUHK03 config (the 767/700 split of data_builders/cuhk03)",
                  f"{AH} Sec. 7.1", "our CUHK03 builder provides the new protocol's split"),
    ),
)

GATED = Card(
    config="experiments/gated_scnn.py:market1501",
    method="Gated siamese CNN (Varior, Haloi and Wang, ECCV 2016)",
    reference=f"{VA} (no official code; the paper beyond its abstract was not available)",
    published="Market-1501 single query rank-1 65.88 / mAP 39.55 (S-CNN baseline rank-1 "
              "62.32), CUHK03 61.8, VIPeR 37.8 (as quoted by later work)",
    rows=(
        Fact("model.name", "gated_scnn", f"{VA}: siamese CNN with matching gates"),
        Fact("data.height", 128, f"{VA} as described by later notes: 128 x 64 input"),
        Fact("data.width", 64, f"{VA} (as data.height)"),
        Fact("pairs.loss", "contrastive", f"{VA}: contrastive loss on the Euclidean distance "
             "of L2-normalised features"),
        Behaviour("matching gate", "rows summarised by a learned 1 x W convolution, Gaussian "
                  "similarity exp(-(y1 - y2)^2 / p^2) with a learned p per channel, "
                  "a = x + x * g on both branches, L2-normalised across channels",
                  "reid_jax/models/pairwise.py MatchingGate (tested by hand in "
                  "tests/models/test_pairwise.py)", f"{VA} Sec. 3 as described by later notes"),
        Behaviour("layers, gate positions, optimiser, margin, batch, iterations",
                  "not available to us", "widths 32-64, gates after layers 3-5, Adam 1e-3 "
                  "cosine, margin 1, P 25 x K 2 with 2 negatives per picture "
                  "(experiments/gated_scnn.py)", f"{VA} Sec. 3-4",
                  "the paper's tables could not be read; stated as our choices"),
    ),
)

CARDS = (IDLA, GATED)
