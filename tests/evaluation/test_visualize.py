"""Tests for reid_jax.evaluation.visualize."""

import numpy as np
from PIL import Image

from reid_jax.evaluation import visualize

H, W, B, GAP = 6, 4, 2, 3


def test_ranked_list_png_layout_and_colours(tmp_path):
    # Gallery image j is filled with the value 10 * (j + 1) so a cell tells which
    # gallery image it shows.
    g_pids = np.array([1, -1, 2, 1, 0, 1])
    g_cams = np.array([0, 1, 1, 1, 2, 2])
    gallery = np.stack([np.full((H, W, 3), 10 * (j + 1), np.uint8) for j in range(6)])
    queries = np.stack([np.full((H, W, 3), 200, np.uint8), np.full((H, W, 3), 250, np.uint8)])
    q_pids, q_cams = np.array([1, 2]), np.array([0, 0])
    distmat = np.array(
        [
            # q0: g0 same id + cam and g1 junk removed -> g2 (red), g3 (green), g4 (red)
            [0.1, 0.2, 0.3, 0.4, 0.5, 0.6],
            # q1 (pid 2): ranked g5, g4, g3 (g1 junk removed) -> red, red, red; g2 green
            [0.5, 0.0, 0.4, 0.3, 0.2, 0.1],
        ]
    )
    path = visualize.save_ranked_list(
        tmp_path / 'sub' / 'ranks.png', queries, gallery, distmat, q_pids, g_pids,
        q_cams, g_cams, query_indices=[0, 1], topk=3, border=B, gap=GAP,
    )
    img = np.asarray(Image.open(path).convert('RGB'))
    cell_h, cell_w = H + 2 * B, W + 2 * B
    assert img.shape == (2 * cell_h, cell_w + GAP + 3 * cell_w, 3)

    def cell(row, col):
        x = cell_w + GAP + col * cell_w
        return img[row * cell_h:(row + 1) * cell_h, x:x + cell_w]

    expected = {
        0: [(2, visualize.RED), (3, visualize.GREEN), (4, visualize.RED)],
        1: [(5, visualize.RED), (4, visualize.RED), (3, visualize.RED)],
    }
    for row, entries in expected.items():
        for col, (g_index, colour) in enumerate(entries):
            c = cell(row, col)
            np.testing.assert_array_equal(c[0, 0], colour)
            np.testing.assert_array_equal(c[-1, -1], colour)
            np.testing.assert_array_equal(c[B, B], [10 * (g_index + 1)] * 3)
    # Query column: grey border around the query picture; gap is white.
    np.testing.assert_array_equal(img[0, 0], visualize.GREY)
    np.testing.assert_array_equal(img[cell_h + B, B], [250] * 3)
    np.testing.assert_array_equal(img[B, cell_w + 1], visualize.WHITE)


def test_missing_entries_stay_white(tmp_path):
    gallery = np.zeros((2, H, W), np.uint8)  # grayscale input
    path = visualize.save_ranked_list(
        tmp_path / 'r.png', np.zeros((1, H, W), np.uint8), gallery, np.array([[0.2, 0.1]]),
        [1], [1, 2], [0], [1, 1], [0], topk=4, border=B, gap=GAP,
    )
    img = np.asarray(Image.open(path).convert('RGB'))
    cell_w = W + 2 * B
    x_last = cell_w + GAP + 3 * cell_w
    np.testing.assert_array_equal(img[:, x_last:], 255)
    np.testing.assert_array_equal(img[0, cell_w + GAP], visualize.RED)  # g1 (pid 2) first
    np.testing.assert_array_equal(img[0, cell_w + GAP + cell_w], visualize.GREEN)
