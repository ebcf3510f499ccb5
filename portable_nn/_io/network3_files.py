"""network3's model files as plain data: ``.npz`` of ``layer{i}_w``/``layer{i}_b`` host arrays and a ``meta`` JSON.

Writing takes the layers (their specs and parameters); reading returns the
metadata, fresh layer objects of the specified shapes and the checked host
arrays, and every size is checked before it is allocated.  The network is
built from that by :func:`portable_nn.network3.load`; this module knows no
network class.
"""

from __future__ import annotations

import json
import os
import re
import zipfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from .._backend.backends import host_view
from .._base.atomic import atomic_write
from .._base.limits import parameter_count
from .._base.types import Array
from .._base.validation import check_dtype, check_int, max_parameters
from .._math.chain import softmax_chain
from .._math.layers import Layer, layer_from_spec
from .npz import ZIP_ERRORS, ModelFileError, check_file_size, check_format, check_meta_header, npz_headers, read_members

FORMAT = "portable_nn.network3"
FORMAT_VERSION = 1
_MEMBER = re.compile(r"layer(0|[1-9][0-9]{0,3})_([wb])")
_MAX_META_BYTES = 1 << 20


def write_network3_file(
    path: Path,
    specs: list[dict[str, Any]],
    weights: Sequence[Array],
    biases: Sequence[Array],
    mini_batch_size: int,
    dtype: str,
) -> None:
    """Write the layer ``specs`` (:func:`portable_nn._math.layers.layer_spec` dicts) and their ``weights``/``biases``
    (arrays of any backend) to the ``.npz`` ``path``, atomically.

    Refuses (``ValueError``) a path not ending in ``.npz`` and non-finite parameters."""
    if path.suffix.lower() != ".npz":
        raise ValueError(f"network3 models are saved as .npz; got {str(path)!r}")
    arrays: dict[str, np.ndarray] = {}
    for i, (w, b) in enumerate(zip(weights, biases, strict=True)):
        for name, value in (("w", w), ("b", b)):
            host = host_view(value)  # read only: no copy
            if not np.all(np.isfinite(host)):
                raise ValueError(f"not saving {path}: layer {i} {name} holds NaN or infinite values")
            arrays[f"layer{i}_{name}"] = host
    meta = {
        "format": FORMAT,
        "version": FORMAT_VERSION,
        "mini_batch_size": mini_batch_size,
        "dtype": dtype,
        "layers": specs,
    }
    arrays["meta"] = np.asarray(json.dumps(meta))
    with atomic_write(path, "wb") as handle:
        np.savez(handle, allow_pickle=False, **arrays)


def read_network3_file(path: str | os.PathLike[str]) -> tuple[dict[str, Any], list[Layer], dict[str, np.ndarray]]:
    """``(meta, layers, arrays)`` of a network3 ``.npz``: sizes checked before reading, then dtypes and finiteness.

    ``layers`` are the rows-layout math layers (:mod:`portable_nn._math.layers`) the specs describe;
    ``arrays`` the host ``layer{i}_w``/``layer{i}_b``.  The network builds itself from them.

    Raises ``FileNotFoundError`` for a missing file and :class:`portable_nn.ModelFileError` naming the file for
    anything malformed.
    """
    path = Path(path)
    if path.suffix.lower() != ".npz":
        raise ModelFileError(f"network3 models are .npz files; got {str(path)!r}")
    if not path.exists():
        raise FileNotFoundError(f"model file not found: {path}")
    if not path.is_file():
        raise ModelFileError(f"{path}: not a regular file")
    check_file_size(path)
    meta, arrays = _read_members(path)
    return meta, meta.pop("_layers"), arrays


# -- loading -----------------------------------------------------------------------------------------
def _read_members(path: Path) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """``(meta, arrays)`` of a network3 ``.npz``: every header checked against the layer spec before reading."""
    try:
        with zipfile.ZipFile(path) as archive:
            headers = npz_headers(
                path, archive, lambda name: name == "meta" or _MEMBER.fullmatch(name) is not None, "network3 model"
            )
            check_meta_header(path, headers, _MAX_META_BYTES, "network3 model")
            with archive.open("meta.npy") as member:
                meta_text = str(np.lib.format.read_array(member, allow_pickle=False))
            meta, layers = _parse_meta(path, meta_text)
            expected = {f"layer{i}_w": layer.w_shape for i, layer in enumerate(layers)}
            expected.update({f"layer{i}_b": layer.b_shape for i, layer in enumerate(layers)})
            present = set(headers) - {"meta"}
            if present != set(expected):
                raise ModelFileError(
                    f"{path}: members {sorted(present)} do not match the {len(layers)} layers in 'meta'"
                )
            for name, shape in expected.items():
                got_shape, got_dtype = headers[name]
                if got_shape != tuple(shape):
                    raise ModelFileError(f"{path}: {name} has shape {got_shape}, expected {tuple(shape)}")
                if got_dtype not in (np.dtype(np.float32), np.dtype(np.float64)):
                    raise ModelFileError(f"{path}: {name} is {got_dtype}; expected float32 or float64")
            arrays = read_members(archive, expected)
    except ModelFileError:
        raise
    except ZIP_ERRORS as exc:
        raise ModelFileError(f"{path}: not a readable network3 .npz model ({type(exc).__name__}: {exc})") from exc
    for name, array in arrays.items():
        if not np.all(np.isfinite(array)):
            raise ModelFileError(f"{path}: {name} holds NaN or infinite values")
    meta["_layers"] = layers
    return meta, arrays


def _parse_meta(path: Path, text: str) -> tuple[dict[str, Any], list[Layer]]:
    try:
        meta = json.loads(text)
    except (ValueError, RecursionError) as exc:
        raise ModelFileError(f"{path}: 'meta' is not JSON ({exc})") from exc
    if not isinstance(meta, dict):
        raise ModelFileError(f"{path}: 'meta' must be a JSON object")
    check_format(path, meta, name=FORMAT, version=FORMAT_VERSION, required=True)
    specs = meta.get("layers")
    if not isinstance(specs, list) or not specs:
        raise ModelFileError(f"{path}: 'meta' has no list of layers")
    try:
        layers = [layer_from_spec(spec) for spec in specs]
        softmax_chain(layers)  # the last, and only the last, a softmax; consecutive layers fit
        check_int(meta.get("mini_batch_size"), "mini_batch_size", 1)
        check_dtype(meta.get("dtype"))
    except (TypeError, ValueError) as exc:
        raise ModelFileError(f"{path}: {exc}") from exc
    count = parameter_count(layers)
    if count > max_parameters():
        raise ModelFileError(f"{path}: {count:,} parameters is more than the limit of {max_parameters():,}")
    return meta, layers
