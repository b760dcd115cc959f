"""Several (dataset, split) sources behind one ReidData; cross-dataset split specs."""

import numpy as np
import pytest

from data_builders import registry
from reid_jax.data import samplers, sources

DATASET = "synthetic_persons/multidomain_tiny"


@pytest.fixture(scope="module")
def multi_dir(tmp_path_factory):
    path = str(tmp_path_factory.mktemp("tfds_multi"))
    registry.prepare(DATASET, data_dir=path)
    return path


def test_two_domains_get_disjoint_contiguous_labels(multi_dir):
    data = sources.open_data([(DATASET, "train_d0"), (DATASET, "train_d1")], multi_dir)
    alone = [sources.open_data([(DATASET, s)], multi_dir) for s in ("train_d0", "train_d1")]
    n0, n1 = len(alone[0]), len(alone[1])
    assert len(data) == n0 + n1
    assert data.name == f"{DATASET}:train_d0+{DATASET}:train_d1"
    # Domains recorded per example, in spec order.
    np.testing.assert_array_equal(data.domains, np.repeat([0, 1], [n0, n1]))
    # The first source keeps its labels, the second is shifted past them.
    np.testing.assert_array_equal(data.labels[:n0], alone[0].labels)
    np.testing.assert_array_equal(data.labels[n0:], alone[1].labels + alone[0].num_classes)
    first, second = set(data.labels[:n0]), set(data.labels[n0:])
    assert not first & second
    assert sorted(first | second) == list(range(data.num_classes))
    assert data.num_classes == alone[0].num_classes + alone[1].num_classes
    # Own identity numbers and cameras are kept; images resolve to the right source.
    np.testing.assert_array_equal(data.person_ids[n0:], alone[1].person_ids)
    np.testing.assert_array_equal(data.camera_ids[n0:], alone[1].camera_ids)
    np.testing.assert_array_equal(data.image(n0 + 2), alone[1].image(2))
    assert data.file_names[n0:] == alone[1].file_names


def test_domain_sampler_on_opened_sources(multi_dir):
    data = sources.open_data([(DATASET, "train_d0"), (DATASET, "train_d1")], multi_dir)
    b = samplers.domain_pk_batches(data.labels, data.camera_ids, data.domains, p=2, k=2,
                                   seed=0, epoch=0, num_batches=3)
    assert (data.domains[b[:, :4]] == 0).all() and (data.domains[b[:, 4:]] == 1).all()


def test_parse_specs_cross_dataset():
    assert sources.parse_specs("a/b:train,c:query", "x") == [("a/b", "train"), ("c", "query")]
    assert sources.parse_specs("train, c:query", "x") == [("x", "train"), ("c", "query")]
    assert sources.parse_specs(["a/b:train_d0", "gallery"], "x") == [
        ("a/b", "train_d0"), ("x", "gallery")]


def test_the_all_split_labels_every_person_of_every_split(tfds_dir):
    """'dataset:all' (MetaBIN's sources): train, query and gallery in one domain, the
    same person the same label everywhere, junk and distractor markers unlabelled."""
    from reid_jax.data import sources

    data = sources.open_data([("synthetic_persons/tiny", "all")], tfds_dir)
    parts = [sources.open_data([("synthetic_persons/tiny", s)], tfds_dir, relabel=False)
             for s in ("gallery", "query", "train")]
    assert len(data) == sum(len(p) for p in parts)
    assert (data.domains == 0).all()
    valid = data.person_ids >= 0
    if not (parts[2].person_ids == 0).any():  # 0 marks test-time distractors
        valid &= data.person_ids != 0
    assert (data.labels[valid] >= 0).all() and (data.labels[~valid] == -1).all()
    for pid in np.unique(data.person_ids[valid]):
        assert len(np.unique(data.labels[data.person_ids == pid])) == 1
    assert data.num_classes == len(np.unique(data.person_ids[valid]))
