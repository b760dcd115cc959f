"""Evaluation: embeddings -> distances (chunked, on device) -> protocol -> optional re-ranking.

Modules: ``distance`` (query x gallery distances), ``protocols`` (Market-1501 CMC / mAP /
mINP), ``evaluate`` (streamed evaluation from features, the trainer's entry point),
``neighbors`` (blocked exact k-NN), ``kreciprocal`` and ``rerank`` (k-reciprocal
re-ranking and Jaccard distances in bounded memory), ``query_expansion`` (alpha-QE),
``cuhk03`` (single-gallery-shot), ``splits`` (mean/std over splits), ``video``
(tracklet protocols), ``visualize`` (ranked-list pictures). ``embed`` and
``retrieval`` belong to the training side.
"""
