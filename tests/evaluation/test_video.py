"""Tests for reid_jax.evaluation.video."""

import numpy as np

from reid_jax.evaluation import video


def test_pool_tracklets():
    frames = np.array([[1.0, 0.0], [3.0, 2.0], [5.0, -1.0]])
    np.testing.assert_allclose(video.pool_tracklets(frames, [0, 0, 1]), [[2.0, 1.0], [5.0, -1.0]])
    np.testing.assert_allclose(video.pool_tracklets(frames, [0, 0, 1], 'max'), [[3.0, 2.0], [5.0, -1.0]])


def test_query_in_gallery_gives_ground_truth():
    # Query pid 1 cam 0; the gallery's only pid-1 tracklet is in cam 0 -> no match
    # under the torchreid convention. A second pid-1 query in cam 1 becomes its match
    # once the queries join the gallery (TKP); each query's own tracklet is removed.
    qf = np.array([[0.0, 0.0], [0.1, 0.0]], np.float32)
    gf = np.array([[0.0, 0.05], [5.0, 5.0]], np.float32)
    q_pids, q_cams = np.array([1, 1]), np.array([0, 1])
    g_pids, g_cams = np.array([1, 2]), np.array([0, 1])
    plain = video.evaluate_video(qf, gf, q_pids, g_pids, q_cams, g_cams, max_rank=2)
    assert plain['num_valid_queries'] == 1  # only the cam-1 query has a match
    tkp = video.evaluate_video(qf, gf, q_pids, g_pids, q_cams, g_cams,
                               include_query_in_gallery=True, max_rank=3)
    assert tkp['num_valid_queries'] == 2
    assert tkp['rank1'] == 1.0
