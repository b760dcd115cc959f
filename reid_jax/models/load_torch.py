"""PyTorch ResNet state_dict -> Flax variables of `reid_jax.models.resnet.ResNet`.

Our ResNet keeps torchvision's layout and names (`reid_jax/models/resnet.py`), so the
mapping is mechanical:

    conv1.weight                  -> params/conv1/kernel      (O,I,kh,kw -> kh,kw,I,O)
    bn1.weight / bias             -> params/bn1/scale / bias
    bn1.running_mean / _var       -> batch_stats/bn1/mean / var
    layer3.5.conv2.weight         -> params/layer3_5/conv2/kernel
    layer2.0.downsample.0/.1.*    -> params/layer2_0/downsample_conv, downsample_bn
    layer1.0.bn1.IN/BN.*          -> .../bn1/IN, bn1/BN  (IBN-a, XingangPan/IBN-Net names)
    layer1.2.IN.*                 -> .../layer1_2/IN     (IBN-b)
    NL_2.0.{g,theta,phi}, W.0/W.1 -> NL_2_0/{g,theta,phi}, W_conv/W_bn  (AGW non-local)

`num_batches_tracked` and the ImageNet classifier `fc.*` are dropped. Every other
tensor must land on a leaf of the target tree with the same shape, and every leaf must
be filled; anything else is refused with a one-line `ReidError`.

Converted weights are stored as `<dir>/variables.npz` (flat keys such as
`params/layer1_0/conv1/kernel`) plus `<dir>/meta.json`; `load_into` puts them under the
'backbone' of a `ReIDNet`. Only `read_torch_file` needs PyTorch (the optional `torch`
extra).
"""

from __future__ import annotations

import json
import os
import pickle
import re
from collections.abc import Mapping
from typing import Any

import flax
import jax
import jax.numpy as jnp
import numpy as np

from reid_jax import errors
from reid_jax.models import bin as bin_lib
from reid_jax.models import resnet

SKIPPED_PREFIXES = ("fc.",)
VARIABLES_FILE = "variables.npz"
META_FILE = "meta.json"
# Flax leaves a converted ImageNet model cannot provide: blocks AGW adds on top of it
# (initialised fresh, as the official code's `load_param` leaves them).
NEW_MODULES = re.compile(r"^NL_\d+_\d+$")

_PAIRED = re.compile(r"^(layer\d+|NL_\d+)$")
_INDEXED = {"downsample": ("downsample_conv", "downsample_bn"), "W": ("W_conv", "W_bn")}
_STATS = {"running_mean": "mean", "running_var": "var"}


def flax_path(name: str, ndim: int) -> tuple[str, ...] | None:
    """Maps a PyTorch state_dict key to a Flax variable path.

    Args:
        name: state_dict key such as 'layer1.0.downsample.0.weight'.
        ndim: rank of the tensor (a 'weight' is a kernel for rank 2 or 4, else a scale).

    Returns:
        ('params' or 'batch_stats', module, ..., leaf), or None for dropped tensors.
    """
    if name.endswith("num_batches_tracked") or name.startswith(SKIPPED_PREFIXES):
        return None
    parts = name.split(".")
    modules: list[str] = []
    i = 0
    while i < len(parts) - 1:
        part = parts[i]
        if _PAIRED.match(part) and i + 1 < len(parts) - 1:
            modules.append(f"{part}_{parts[i + 1]}")
            i += 2
        elif part in _INDEXED and parts[i + 1] in ("0", "1"):
            modules.append(_INDEXED[part][int(parts[i + 1])])
            i += 2
        else:
            modules.append(part)
            i += 1
    leaf = parts[-1]
    if leaf in _STATS:
        return ("batch_stats", *modules, _STATS[leaf])
    if leaf == "weight":
        return ("params", *modules, "kernel" if ndim in (2, 4) else "scale")
    return ("params", *modules, leaf)


def torch_name(path: tuple[str, ...]) -> str:
    """Inverse of `flax_path` (for messages).

    Args:
        path: ('params' or 'batch_stats', module, ..., leaf).

    Returns:
        The PyTorch state_dict key.
    """
    names = []
    for module in path[1:-1]:
        if module in ("downsample_conv", "downsample_bn", "W_conv", "W_bn"):
            stem, kind = module.rsplit("_", 1)
            names.append(f"{stem}.{0 if kind == 'conv' else 1}")
        elif re.match(r"^(layer\d+|NL_\d+)_\d+$", module):
            stem, index = module.rsplit("_", 1)
            names.append(f"{stem}.{index}")
        else:
            names.append(module)
    leaf = {"kernel": "weight", "scale": "weight", "mean": "running_mean", "var": "running_var"}
    return ".".join([*names, leaf.get(path[-1], path[-1])])


def _to_flax_layout(value: np.ndarray) -> np.ndarray:
    if value.ndim == 4:  # conv: O, I, kh, kw -> kh, kw, I, O
        return value.transpose(2, 3, 1, 0)
    if value.ndim == 2:  # linear: O, I -> I, O
        return value.T
    return value


def _fmt(path: tuple[str, ...]) -> str:
    return "/".join(path)


def convert(state_dict: Mapping[str, Any], target: Mapping[str, Any]) -> dict[str, Any]:
    """Converts a state_dict onto the structure of `target`, checking names and shapes.

    Args:
        state_dict: PyTorch key -> array (numpy or anything `np.asarray` takes).
        target: Flax variables (arrays or `jax.ShapeDtypeStruct`s) with 'params' and
            optionally 'batch_stats'; only their structure and shapes are used.

    Returns:
        {'params': ..., 'batch_stats': ...} nested dicts of float32 numpy arrays.

    Raises:
        errors.ReidError: on a tensor with no place in `target`, a shape mismatch, or a
            leaf of `target` that no tensor fills.
    """
    expected = flax.traverse_util.flatten_dict(flax.core.unfreeze(dict(target)))
    filled: dict[tuple[str, ...], np.ndarray] = {}
    for name, tensor in state_dict.items():
        value = np.asarray(tensor)
        path = flax_path(name, value.ndim)
        if path is None:
            continue
        if path not in expected:
            raise errors.ReidError(
                f"torch tensor {name!r} {tuple(value.shape)} has no place in the Flax model "
                f"(looked for {_fmt(path)}); is the architecture (backbone, norm) right?"
            )
        value = _to_flax_layout(value).astype(np.float32)
        want = tuple(expected[path].shape)
        if value.shape != want:
            raise errors.ReidError(
                f"torch tensor {name!r} maps to {_fmt(path)} with shape {value.shape}, "
                f"but the Flax model expects {want}"
            )
        filled[path] = value
    missing = [path for path in expected if path not in filled]
    if missing:
        path = missing[0]
        raise errors.ReidError(
            f"{len(missing)} Flax variables have no torch tensor, first {_fmt(path)} "
            f"(torch name {torch_name(path)!r}); is the architecture (backbone, norm) right?"
        )
    return flax.traverse_util.unflatten_dict(filled)


def resnet_shapes(backbone: str = "resnet50", **kwargs: Any) -> Any:
    """Variable shapes of a named ResNet, without computing anything.

    Args:
        backbone: a key of `resnet.BACKBONES`.
        **kwargs: other `ResNet` fields (`norm`, `width`, `stage_sizes`, ...).

    Returns:
        A pytree of `jax.ShapeDtypeStruct` with 'params' and 'batch_stats'.
    """
    model = resnet.resnet(backbone, **kwargs)
    x = jax.ShapeDtypeStruct((1, 64, 32, 3), jnp.float32)
    return jax.eval_shape(lambda x: model.init(jax.random.key(0), x, train=False), x)


def read_torch_file(path: str) -> dict[str, np.ndarray]:
    """Reads a PyTorch checkpoint into numpy arrays (needs the `torch` extra).

    Accepts a bare state_dict or one nested under 'state_dict' or 'model', with or
    without DataParallel's 'module.' prefix. Loads with `weights_only=True`.

    Args:
        path: a .pth / .pt file.

    Returns:
        state_dict key -> float numpy array.
    """
    try:
        import torch  # optional dependency, imported only here
    except ImportError as e:
        raise errors.ReidError("reading .pth files needs PyTorch: pip install -e '.[torch]'") from e
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except (OSError, RuntimeError, EOFError, pickle.UnpicklingError) as e:
        # weights_only=True: a file holding code or arbitrary objects is refused here.
        first = str(e).splitlines()[0] if str(e) else type(e).__name__
        raise errors.ReidError(f"cannot read {path} as PyTorch weights: {first}") from None
    for key in ("state_dict", "model"):
        if isinstance(obj, Mapping) and isinstance(obj.get(key), Mapping):
            obj = obj[key]
    if not isinstance(obj, Mapping):
        raise errors.ReidError(f"{path} holds a {type(obj).__name__}, not a state_dict")
    out = {}
    for name, tensor in obj.items():
        name = name.removeprefix("module.")
        out[name] = tensor.detach().cpu().float().numpy()
    return out


def save(variables: Mapping[str, Any], out_dir: str, meta: Mapping[str, Any]) -> str:
    """Writes converted variables to `out_dir/variables.npz` and `out_dir/meta.json`.

    Args:
        variables: {'params': ..., 'batch_stats': ...}.
        out_dir: directory, created if needed.
        meta: JSON-serialisable description (source file, backbone, norm).

    Returns:
        The path of the .npz file.
    """
    os.makedirs(out_dir, exist_ok=True)
    flat = flax.traverse_util.flatten_dict(dict(variables), sep="/")
    path = os.path.join(out_dir, VARIABLES_FILE)
    np.savez(path, **{k: np.asarray(v) for k, v in flat.items()})
    with open(os.path.join(out_dir, META_FILE), "w") as f:
        json.dump(dict(meta), f, indent=2, sort_keys=True)
    return path


def load(path: str) -> dict[str, Any]:
    """Reads variables written by `save`.

    Args:
        path: the output directory of `save` (or its variables.npz).

    Returns:
        {'params': ..., 'batch_stats': ...} nested dicts of numpy arrays.
    """
    file = os.path.join(path, VARIABLES_FILE) if os.path.isdir(path) else path
    if not os.path.exists(file):
        raise errors.ReidError(
            f"no converted weights at {path}; create them with "
            "python -m reid_jax.tools.import_torch --in MODEL.pth --out DIR"
        )
    with np.load(file) as data:
        flat = {tuple(k.split("/")): data[k] for k in data.files}
    return flax.traverse_util.unflatten_dict(flat)


def backbone_prefixes(params: Mapping[str, Any]) -> list[tuple[str, ...]]:
    """The paths of the submodules named 'backbone' in a parameter tree, shallowest first
    (not looking inside a backbone).

    ``ReIDNet`` / ``PartNet``: [('backbone',)]; M3L's ``M3LNet``: [('trunk', 'backbone')];
    TKP's two networks: [('image_net', 'backbone'), ('video_net', 'backbone')].
    """
    found = []
    queue: list[tuple[tuple[str, ...], Mapping[str, Any]]] = [((), params)]
    while queue:
        path, node = queue.pop(0)
        for key, child in node.items():
            if key == "backbone":
                found.append((*path, key))
            elif isinstance(child, Mapping):
                queue.append(((*path, key), child))
    if not found:
        raise errors.ReidError("the model has no 'backbone' submodule to load weights into.")
    return found


def backbone_prefix(params: Mapping[str, Any]) -> tuple[str, ...]:
    """The path of the first submodule named 'backbone' (``backbone_prefixes``)."""
    return backbone_prefixes(params)[0]


def source_key(collection: str, rel: tuple[str, ...], loaded: Mapping) -> tuple[str, ...] | None:
    """The tensor of ``loaded`` a backbone leaf takes, or None for a leaf that starts fresh.

    Args:
      collection: 'params' or 'batch_stats'.
      rel: the leaf's path below the backbone.
      loaded: available tensors, keyed (collection, *path below the backbone).

    Same name first. A BIN layer (MetaBIN) in place of a BatchNorm takes that
    BatchNorm's weights and running statistics into its BN half; its IN affine and its
    gate keep their initial values (IN identity, gate 1: the network starts as the
    BatchNorm network, as MetaBIN starts from ImageNet weights). AGW's non-local blocks
    (``NEW_MODULES``) start fresh.

    Raises:
      KeyError: the leaf has no tensor and is not one that may start fresh.
    """
    source = (collection, *rel)
    if source in loaded:
        return source
    if len(rel) >= 2 and rel[-2] == "BN" and (collection, *rel[:-2], rel[-1]) in loaded:
        return (collection, *rel[:-2], rel[-1])
    if rel[-1] == bin_lib.GATE_NAME or (len(rel) >= 2 and rel[-2] == "IN" and (
            "params", *rel[:-2], "scale") in loaded):
        return None
    if len(rel) > 1 and NEW_MODULES.match(rel[0]):
        return None
    raise KeyError(source)


def load_into(
    path: str, params: Mapping[str, Any], batch_stats: Mapping[str, Any],
    prefix: tuple[str, ...] | None = None,
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Replaces the backbone of initialised model variables by converted weights.

    Args:
        path: directory written by `save` / `import_torch`.
        params: the model's params (e.g. of a `ReIDNet`); not modified.
        batch_stats: the model's batch_stats; not modified.
        prefix: the backbone's path in the tree; None: every backbone of the model
            (`backbone_prefixes`; TKP's image and video networks both start from it).

    Returns:
        (params, batch_stats) with every backbone leaf taken from the file, except
        modules the file cannot hold, which keep their initial values: AGW's non-local
        blocks (`NEW_MODULES`) and, where the model has BIN layers and the file plain
        BatchNorms, BIN's IN affine and gates (`_source`); heads are untouched.

    Raises:
        errors.ReidError: on a leaf missing from the file, a shape mismatch, or a
            converted tensor the model has no place for.
    """
    loaded = flax.traverse_util.flatten_dict(load(path))
    prefixes = [tuple(prefix)] if prefix is not None else backbone_prefixes(params)
    out = {
        "params": flax.traverse_util.flatten_dict(flax.core.unfreeze(dict(params))),
        "batch_stats": flax.traverse_util.flatten_dict(flax.core.unfreeze(dict(batch_stats))),
    }
    used = set()
    for collection, flat in out.items():
        for key, value in flat.items():
            prefix = next((p for p in prefixes if key[:len(p)] == p), None)
            if prefix is None:
                continue
            rel = key[len(prefix):]
            try:
                source = source_key(collection, rel, loaded)
            except KeyError:
                raise errors.ReidError(
                    f"{path} has no {_fmt((collection, *rel))} for the model's "
                    f"{collection}/{_fmt(key)}; was it converted for the same backbone and norm?"
                ) from None
            if source is None:
                continue
            if tuple(loaded[source].shape) != tuple(value.shape):
                raise errors.ReidError(
                    f"{path}: {_fmt(source)} has shape {tuple(loaded[source].shape)}, the "
                    f"model expects {tuple(value.shape)} (backbone, width or norm differ?)"
                )
            flat[key] = jnp.asarray(loaded[source], value.dtype)
            used.add(source)
    extra = sorted(set(loaded) - used)
    if extra:
        raise errors.ReidError(
            f"{path} holds {len(extra)} tensors the model has no place for, first "
            f"{_fmt(extra[0])}; was it converted for the same backbone and norm?"
        )
    return (
        flax.traverse_util.unflatten_dict(out["params"]),
        flax.traverse_util.unflatten_dict(out["batch_stats"]),
    )
