"""Identity-level attribute annotations for Market-1501 and DukeMTMC-reID (Lin et al.).

Lin, Zheng, Zheng, Wu, Hu, Yan and Yang, "Improving Person Re-identification by Attribute
and Identity Learning", Pattern Recognition 2019 (arXiv:1703.07220), annotated every
identity of the two datasets and released the labels as MATLAB files:
``market_attribute.mat`` (github.com/vana77/Market-1501_Attribute, 27 attributes) and
``duke_attribute.mat`` (github.com/vana77/DukeMTMC-attribute, 23 attributes).

Layout, as ``scipy.io.loadmat`` reads the released files: a 1x1 struct named after the
file (``market_attribute`` / ``duke_attribute``) with two 1x1 structs ``train`` and
``test``; each holds one 1xN uint8 row per attribute and ``image_index``, a 1xN cell of
4-digit identity strings ('0002'). The field order differs between ``train`` and
``test``, so fields are read by name. A binary attribute is 1 (no, or the first option)
or 2 (yes, or the second option); Market's ``age`` is 1..4 (young, teenager, adult,
old; the meanings follow the repository's ``attributes.py`` and READMEs). The released
Duke ``train.top`` holds a few 0 entries, read as unknown.

Each identity becomes an int8 vector: a binary attribute is 1 for value 2, 0 for value 1
and -1 (unknown) otherwise; ``age`` is one-hot over 4 entries (all -1 when not 1..4),
so Market gives 26 + 4 = 30 entries and Duke 23. ``ATTRIBUTE_NAMES`` name the entries:
each binary one after the meaning of its value 2 (``female``, ``long_hair``, ...).
Training images take the ``train`` table, query and gallery images the ``test`` table
(Market's 750 test identities: distractors ``0000`` get -1; Duke's 1110 cover its
gallery distractors). Without the file every entry is -1.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Iterator, Mapping, Sequence

import numpy as np
import scipy.io

from data_builders import common

AGE_CLASSES = ("young", "teenager", "adult", "old")


@dataclasses.dataclass(frozen=True)
class AttributeFile:
    """Where a dataset's annotation file comes from and what it holds.

    Attributes:
      file_name: the released file's name.
      mat_key: the top-level struct inside it.
      source: where to download it (for messages).
      repo_folder: the folder a ``git clone`` of the source creates, also searched.
      binary: (field, name of the attribute that value 2 means), in output order.
      categorical: (field, names of values 1..K), one-hot after the binary ones.
    """

    file_name: str
    mat_key: str
    source: str
    repo_folder: str
    binary: tuple[tuple[str, str], ...]
    categorical: tuple[tuple[str, tuple[str, ...]], ...] = ()

    @property
    def names(self) -> tuple[str, ...]:
        """The attribute names, in the order of the ``attributes`` feature."""
        cat = tuple(f"{field}_{v}" for field, values in self.categorical for v in values)
        return tuple(name for _, name in self.binary) + cat

    @property
    def fields(self) -> tuple[str, ...]:
        """The struct fields read (``image_index`` besides)."""
        return tuple(f for f, _ in self.binary) + tuple(f for f, _ in self.categorical)


_UP = ("black", "white", "red", "purple", "yellow", "gray", "blue", "green")
_DOWN = ("black", "white", "pink", "purple", "yellow", "gray", "blue", "green", "brown")
MARKET = AttributeFile(
    file_name="market_attribute.mat",
    mat_key="market_attribute",
    source="https://github.com/vana77/Market-1501_Attribute",
    repo_folder="Market-1501_Attribute",
    binary=(
        ("gender", "female"),
        ("hair", "long_hair"),
        ("up", "short_sleeve"),
        ("down", "short_lower_body"),
        ("clothes", "pants"),
        ("hat", "hat"),
        ("backpack", "backpack"),
        ("bag", "bag"),
        ("handbag", "handbag"),
        *((f"up{c}", f"up_{c}") for c in _UP),
        *((f"down{c}", f"down_{c}") for c in _DOWN),
    ),
    categorical=(("age", AGE_CLASSES),),
)

_DUKE_UP = ("black", "white", "red", "purple", "gray", "blue", "green", "brown")
_DUKE_DOWN = ("black", "white", "red", "gray", "blue", "green", "brown")
DUKE = AttributeFile(
    file_name="duke_attribute.mat",
    mat_key="duke_attribute",
    source="https://github.com/vana77/DukeMTMC-attribute",
    repo_folder="DukeMTMC-attribute",
    binary=(
        ("gender", "female"),
        ("top", "long_top"),
        ("boots", "boots"),
        ("hat", "hat"),
        ("backpack", "backpack"),
        ("bag", "bag"),
        ("handbag", "handbag"),
        ("shoes", "light_shoes"),
        *((f"up{c}", f"up_{c}") for c in _DUKE_UP),
        *((f"down{c}", f"down_{c}") for c in _DUKE_DOWN),
    ),
)

SPLITS = ("train", "test")


def find(spec: AttributeFile, folders: Sequence[str]) -> str | None:
    """The first ``folder/file`` or ``folder/<repo_folder>/file`` that exists, else None."""
    for folder in folders:
        for path in (
            os.path.join(folder, spec.file_name),
            os.path.join(folder, spec.repo_folder, spec.file_name),
        ):
            if os.path.isfile(path):
                return path
    return None


def _bad(dataset: str, path: str, spec: AttributeFile, problem: str) -> common.DatasetError:
    return common.DatasetError(
        f"{dataset}: {path} {problem}; expected {spec.file_name} of Lin et al. as released at "
        f"{spec.source}: re-download it, or remove it to build without attributes."
    )


def _identity(entry: object) -> int:
    # A cell of one string ('0002'); numbers are accepted too.
    value = np.asarray(entry).ravel()
    return int(str(value[0]).strip())


def _table(split: np.ndarray, spec: AttributeFile, where: str, dataset: str, path: str) -> dict:
    names = split.dtype.names or ()
    for field in (*spec.fields, "image_index"):
        if field not in names:
            raise _bad(dataset, path, spec, f"has no field {field!r} in {where}")
    record = split[0, 0] if split.ndim == 2 else split
    try:
        ids = [_identity(e) for e in np.asarray(record["image_index"]).ravel()]
    except (ValueError, IndexError):
        raise _bad(dataset, path, spec, f"has an image_index in {where} that is not identity numbers") from None
    columns = []
    for field in spec.fields:
        try:
            v = np.asarray(record[field]).ravel().astype(np.int64)
        except (ValueError, TypeError):
            raise _bad(dataset, path, spec, f"has non-numeric values of {field!r} in {where}") from None
        values = dict(spec.categorical).get(field)
        if values is None:  # binary: 2 yes, 1 no, anything else unknown
            columns.append(np.where(v == 2, 1, np.where(v == 1, 0, -1))[:, None])
        else:  # one-hot over values 1..K
            known = (v >= 1) & (v <= len(values))
            one_hot = (v[:, None] == np.arange(1, len(values) + 1)[None, :]).astype(np.int64)
            columns.append(np.where(known[:, None], one_hot, -1))
    for field, col in zip(spec.fields, columns):
        if len(col) != len(ids):
            raise _bad(dataset, path, spec, f"has {len(col)} values of {field!r} in {where} "
                       f"for {len(ids)} identities")
    if len(set(ids)) != len(ids):
        raise _bad(dataset, path, spec, f"lists an identity twice in {where}.image_index")
    matrix = np.concatenate(columns, axis=1).astype(np.int8) if columns else np.zeros((len(ids), 0), np.int8)
    return {pid: matrix[i] for i, pid in enumerate(ids)}


def read(path: str, spec: AttributeFile, dataset: str) -> dict[str, dict[int, np.ndarray]]:
    """Reads an annotation file into {'train' | 'test': {person id: int8 [M]}}.

    Raises:
      common.DatasetError: one line naming the file and what is wrong (unreadable, a
        missing struct or field, lengths that disagree).
    """
    try:
        mat = scipy.io.loadmat(path)
    except (OSError, ValueError, TypeError, NotImplementedError) as e:
        raise _bad(dataset, path, spec, f"cannot be read ({str(e).splitlines()[0]})") from None
    if spec.mat_key not in mat:
        raise _bad(dataset, path, spec, f"has no struct {spec.mat_key!r}")
    top = mat[spec.mat_key]
    out = {}
    for split in SPLITS:
        if top.dtype.names is None or split not in top.dtype.names:
            raise _bad(dataset, path, spec, f"has no {spec.mat_key}.{split} struct")
        out[split] = _table(top[0, 0][split], spec, f"{spec.mat_key}.{split}", dataset, path)
    return out


def load(spec: AttributeFile, folders: Sequence[str], dataset: str) -> dict[str, dict[int, np.ndarray]] | None:
    """:func:`read` of the file :func:`find` finds in ``folders``, or None when absent."""
    path = find(spec, folders)
    return None if path is None else read(path, spec, dataset)


def attach(
    examples: Iterator[tuple[str, dict]],
    table: Mapping[int, np.ndarray] | None,
    num_attributes: int,
) -> Iterator[tuple[str, dict]]:
    """Adds ``attributes`` (the person's row of ``table``, else all -1) to each example."""
    unknown = np.full((num_attributes,), -1, np.int8)
    table = table or {}
    for key, ex in examples:
        ex["attributes"] = table.get(int(ex["person_id"]), unknown)
        yield key, ex


def split_tables(
    tables: Mapping[str, Mapping[int, np.ndarray]] | None, split: str
) -> Mapping[int, np.ndarray] | None:
    """The table a split's images take: 'train' for the train split, else 'test'."""
    if tables is None:
        return None
    return tables["train" if split == "train" else "test"]
