"""Attribute labels travel from the dataset's 'attributes' feature into ReidData and batches."""

import numpy as np

from data_builders.synthetic_persons import synthetic_persons_dataset_builder as sp
from reid_jax.data import pipeline, samplers, sources

TINY = "synthetic_persons/tiny"


def test_reid_data_and_batches_carry_attributes(tfds_dir):
    data = sources.open_data([(TINY, "train")], tfds_dir)
    assert data.attributes.shape == (len(data), len(sp.ATTRIBUTE_NAMES))
    assert data.attributes.dtype == np.int8
    cfg = next(c for c in sp.Builder.BUILDER_CONFIGS if c.name == "tiny")
    for i in (0, len(data) // 2, len(data) - 1):
        person = sp.identity(cfg, 0, sp.Item(int(data.person_ids[i]), 0, 0, -1))
        np.testing.assert_array_equal(data.attributes[i], sp.attributes(person))
    rows = samplers.pk_batches(data.labels, data.camera_ids, 4, 2, 0, 0, 2)
    for row, batch in zip(rows, pipeline.train_loader(data, rows, 32, 16, 1)):
        np.testing.assert_array_equal(batch["attributes"], data.attributes[np.asarray(row)])
        assert batch["attributes"].dtype == np.int8


def test_merge_attributes_across_sources():
    a = np.ones((2, 3), np.int8)
    merged = sources._merge_attributes([a, None], [2, 4])
    np.testing.assert_array_equal(merged[:2], 1)
    np.testing.assert_array_equal(merged[2:], -1)  # a source without the feature: unknown
    assert merged.shape == (6, 3)
    assert sources._merge_attributes([None, None], [2, 4]) is None
    # Different attribute sets (e.g. Market's 30 and Duke's 23) cannot share one array.
    assert sources._merge_attributes([a, np.zeros((4, 5), np.int8)], [2, 4]) is None


def test_batches_without_attributes_have_no_key(tfds_dir):
    data = sources.open_data([(TINY, "query")], tfds_dir)
    bare = sources.ReidData(
        data.name, data.parts, data.offsets, data.person_ids, data.labels, data.camera_ids,
        data.domains, data.file_names,
    )
    assert bare.attributes is None
    _, loader = pipeline.eval_loader(bare, 4, 32, 16, 1)
    assert "attributes" not in next(loader)
