"""Saving and loading networks: ``.npz`` and the book's ``network2`` JSON.

Files hold host (NumPy) arrays, so a model trained on one backend loads onto
any other.  Writes go through :func:`portable_nn.atomic.atomic_write`, so a
crash or Ctrl-C never leaves a half-written model.  Reading checks sizes
before allocating (file size, npz member headers, JSON nesting), then keys,
shapes, dtypes and finiteness, and names the file on failure; the network is
then built from the arrays (:meth:`DenseNetwork.from_arrays`), never from
random weights of a declared shape.

``.json``: ``{"sizes", "weights", "biases", "cost"}`` exactly as the book's
``network2.Network.save`` writes it, plus ``"format": "portable_nn"``,
``"version"`` and ``"activation"``, which the book's ``network2.load``
ignores (so it reads our files when only book features are used).
``.npz``: ``sizes`` (int64), ``weights_0..L-1``, ``biases_0..L-1`` (float64 or
float32) and ``meta``, a JSON string with ``format``, ``version``, ``cost``
and ``activation``; files without ``meta`` (version 0) are chapter-1
networks.  Everything is written and read with ``allow_pickle=False``.
"""

from __future__ import annotations

import json
import os
import zipfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from . import limits
from .atomic import atomic_write
from .backends import to_numpy
from .costs import COSTS, QuadraticCost
from .validation import check_layer_arrays, check_sizes

if TYPE_CHECKING:
    from .model import DenseNetwork

FORMATS = (".npz", ".json")
#: Version of the files written now (1: cost and activation recorded).
FORMAT_VERSION = 1
#: Costs a model file may name.
KNOWN_COSTS = tuple(COSTS)
#: Deepest JSON nesting a model needs is 3 (list of matrices of rows); anything deeper is refused.
_MAX_JSON_DEPTH = 8


class ModelFileError(ValueError):
    """A model file is malformed: unreadable, wrong keys, shapes, dtypes or non-finite values."""


def _format_of(path: Path) -> str:
    if path.suffix.lower() not in FORMATS:
        raise ModelFileError(f"path must end in .npz or .json; got {str(path)!r}")
    return path.suffix.lower()


def _meta(net: DenseNetwork) -> dict[str, Any]:
    return {
        "format": "portable_nn",
        "version": FORMAT_VERSION,
        "cost": net.spec.cost.name,
        "activation": net.spec.hidden.name,
    }


def save(net: DenseNetwork, path: str | os.PathLike[str]) -> Path:
    """Write ``net``'s sizes, parameters, cost and activation to ``path`` (``.npz`` or ``.json``).

    Refuses (``ValueError``) to write non-finite parameters: such a network has
    diverged and the file could not be loaded again.
    """
    path = Path(path)
    fmt = _format_of(path)
    weights = [to_numpy(w) for w in net.weights]
    biases = [to_numpy(b) for b in net.biases]
    for i, (w, b) in enumerate(zip(weights, biases)):
        if not (np.all(np.isfinite(w)) and np.all(np.isfinite(b))):
            raise ValueError(
                f"not saving {path}: layer {i} holds NaN or infinite values (training diverged; lower eta)"
            )
    if fmt == ".npz":
        arrays: dict[str, np.ndarray] = {"sizes": np.asarray(net.sizes, dtype=np.int64)}
        arrays.update({f"weights_{i}": w for i, w in enumerate(weights)})
        arrays.update({f"biases_{i}": b for i, b in enumerate(biases)})
        arrays["meta"] = np.asarray(json.dumps(_meta(net)))
        with atomic_write(path, "wb") as handle:
            np.savez(handle, allow_pickle=False, **arrays)
    else:
        data = {
            "sizes": list(net.sizes),
            "weights": [w.tolist() for w in weights],
            "biases": [b.tolist() for b in biases],
            **_meta(net),
        }
        with atomic_write(path, "w") as handle:
            json.dump(data, handle)
    return path


def _check_size(path: Path) -> None:
    size = path.stat().st_size
    limit = limits.MODEL_BYTES.value()
    if size > limit:
        raise ModelFileError(
            f"{path}: {size} bytes is larger than the model size limit {limit}; {limits.MODEL_BYTES.hint()}"
        )
    if size == 0:
        raise ModelFileError(f"{path}: the file is empty")


def _npz_members(path: Path) -> dict[str, np.ndarray]:
    """Read every member of an npz after checking its npy header (shape and dtype) against the limits."""
    limit = limits.MODEL_BYTES.value()
    arrays = {}
    try:
        with zipfile.ZipFile(path) as archive:
            total = 0
            for info in archive.infolist():
                if not info.filename.endswith(".npy"):
                    raise ModelFileError(f"{path}: unexpected member {info.filename!r} (not an .npy array)")
                with archive.open(info) as member:
                    version = np.lib.format.read_magic(member)
                    read_header = (
                        np.lib.format.read_array_header_1_0
                        if version == (1, 0)
                        else np.lib.format.read_array_header_2_0
                    )
                    shape, _, dtype = read_header(member)
                    if dtype.hasobject:
                        raise ModelFileError(f"{path}: member {info.filename!r} holds Python objects")
                    count = 1
                    for dim in shape:
                        count *= int(dim)
                    total += count * dtype.itemsize
                    if total > limit:
                        raise ModelFileError(
                            f"{path}: its arrays declare more than {limit} bytes; {limits.MODEL_BYTES.hint()}"
                        )
            for info in archive.infolist():
                with archive.open(info) as member:
                    arrays[info.filename[: -len(".npy")]] = np.lib.format.read_array(member, allow_pickle=False)
    except ModelFileError:
        raise
    except (OSError, ValueError, zipfile.BadZipFile, EOFError, KeyError) as exc:
        raise ModelFileError(f"{path}: not a readable .npz model ({exc})") from exc
    return arrays


def _read_npz(path: Path) -> tuple[list[np.ndarray], list[np.ndarray], dict[str, Any]]:
    contents = _npz_members(path)
    if "sizes" not in contents:
        raise ModelFileError(f"{path}: missing key 'sizes'")
    sizes = contents["sizes"]
    if sizes.ndim != 1 or sizes.dtype.kind not in "iu":
        raise ModelFileError(f"{path}: 'sizes' must be a 1-D integer array; got {sizes.dtype} {sizes.shape}")
    n = len(sizes) - 1
    expected = {"sizes"} | {f"{kind}_{i}" for kind in ("weights", "biases") for i in range(max(n, 0))}
    meta: dict[str, Any] = {}
    if "meta" in contents:
        try:
            meta = json.loads(str(contents.pop("meta")))
        except (TypeError, ValueError) as exc:
            raise ModelFileError(f"{path}: 'meta' is not JSON ({exc})") from exc
        if not isinstance(meta, dict):
            raise ModelFileError(f"{path}: 'meta' must be a JSON object")
    if set(contents) != expected:
        raise ModelFileError(f"{path}: keys {sorted(contents)} do not match a {n + 1}-layer model {sorted(expected)}")
    weights = [contents[f"weights_{i}"] for i in range(n)]
    biases = [contents[f"biases_{i}"] for i in range(n)]
    _check_declared_sizes(path, [int(s) for s in sizes], weights)
    return weights, biases, meta


def _depth(value: Any, limit: int) -> int:
    """Nesting depth of lists/dicts, stopping once it exceeds ``limit``."""
    stack = [(value, 1)]
    deepest = 0
    while stack:
        item, depth = stack.pop()
        if depth > limit:
            return depth
        if isinstance(item, (list, dict)):
            deepest = max(deepest, depth)
            stack.extend((child, depth + 1) for child in (item.values() if isinstance(item, dict) else item))
    return deepest


def _numbers(value: Any, path: Path, what: str) -> np.ndarray:
    """A nested list of JSON numbers (never bools or strings) as a float64 array."""
    array = np.asarray(value)
    if array.dtype.kind not in "iuf":
        raise ModelFileError(f"{path}: {what} must be nested lists of numbers; found {array.dtype} values")
    return array.astype(np.float64)


def _read_json(path: Path) -> tuple[list[np.ndarray], list[np.ndarray], dict[str, Any]]:
    try:
        text = path.read_text(encoding="utf-8")
        if text.count("[") > 0 and _bracket_depth(text) > _MAX_JSON_DEPTH:
            raise ModelFileError(f"{path}: JSON nested deeper than a model ever is ({_MAX_JSON_DEPTH} levels)")
        data = json.loads(text)
    except ModelFileError:
        raise
    except (OSError, UnicodeDecodeError, json.JSONDecodeError, RecursionError) as exc:
        raise ModelFileError(f"{path}: not a readable JSON model ({exc})") from exc
    if not isinstance(data, dict) or not {"sizes", "weights", "biases"} <= set(data):
        raise ModelFileError(f"{path}: a network2 JSON model needs keys 'sizes', 'weights', 'biases'")
    sizes = data["sizes"]
    if not isinstance(sizes, list) or not all(isinstance(s, int) and not isinstance(s, bool) for s in sizes):
        raise ModelFileError(f"{path}: 'sizes' must be a list of ints; got {sizes!r}")
    for key in ("weights", "biases"):
        if not isinstance(data[key], list):
            raise ModelFileError(f"{path}: '{key}' must be nested lists of numbers (one matrix per layer)")
    try:
        weights = [_numbers(w, path, "weights") for w in data["weights"]]
        biases = [_numbers(b, path, "biases") for b in data["biases"]]
    except (TypeError, ValueError) as exc:
        if isinstance(exc, ModelFileError):
            raise
        raise ModelFileError(f"{path}: weights and biases must be nested lists of numbers ({exc})") from exc
    _check_declared_sizes(path, sizes, weights)
    meta = {k: data[k] for k in ("format", "version", "cost", "activation") if k in data}
    return weights, biases, meta


def _bracket_depth(text: str) -> int:
    """Deepest ``[``/``{`` nesting of a JSON text, found without parsing it (strings skipped)."""
    depth = deepest = 0
    in_string = escaped = False
    for ch in text:
        if in_string:
            if escaped:
                escaped = False
            elif ch == "\\":
                escaped = True
            elif ch == '"':
                in_string = False
        elif ch == '"':
            in_string = True
        elif ch in "[{":
            depth += 1
            if depth > deepest:
                deepest = depth
                if deepest > _MAX_JSON_DEPTH:
                    return deepest
        elif ch in "]}":
            depth -= 1
    return deepest


def _check_declared_sizes(path: Path, sizes: list[int], weights: list[np.ndarray]) -> None:
    try:
        check_sizes(sizes)
    except (TypeError, ValueError) as exc:
        raise ModelFileError(f"{path}: {exc}") from exc
    if len(weights) != len(sizes) - 1:
        raise ModelFileError(f"{path}: {len(sizes)} layers need {len(sizes) - 1} weight arrays; got {len(weights)}")
    for i, w in enumerate(weights):
        expected = (sizes[i + 1], sizes[i])
        if w.shape != expected:
            raise ModelFileError(f"{path}: weights[{i}] has shape {w.shape}, expected {expected}")


def read_model(path: str | os.PathLike[str]) -> tuple[list[int], list[np.ndarray], list[np.ndarray], dict[str, Any]]:
    """Read and check a model file: ``(sizes, weights, biases, meta)`` as host data.

    ``meta`` holds ``cost`` (a name in :data:`KNOWN_COSTS`) and ``activation``.
    Raises :class:`ModelFileError` (naming the file) for anything malformed,
    ``FileNotFoundError`` when there is no such file.
    """
    path = Path(path)
    fmt = _format_of(path)
    if not path.exists():
        raise FileNotFoundError(f"model file not found: {path}")
    if not path.is_file():
        raise ModelFileError(f"{path}: not a regular file")
    _check_size(path)
    weights, biases, meta = _read_npz(path) if fmt == ".npz" else _read_json(path)
    for i, array in enumerate([*weights, *biases]):
        if array.dtype.kind == "f" and array.dtype.itemsize < 4:
            name = f"weights[{i}]" if i < len(weights) else f"biases[{i - len(weights)}]"
            raise ModelFileError(f"{path}: {name} is {array.dtype}; expected float32 or float64")
    if len(biases) != len(weights):
        raise ModelFileError(
            f"{path}: {len(weights) + 1} layers need {len(weights)} weight and bias arrays; "
            f"got {len(weights)} and {len(biases)}"
        )
    try:
        sizes = check_layer_arrays(weights, biases)
    except (TypeError, ValueError) as exc:
        raise ModelFileError(f"{path}: {exc}") from exc
    cost = meta.get("cost", QuadraticCost.name)
    if cost not in KNOWN_COSTS:
        raise ModelFileError(f"{path}: unknown cost {cost!r}; expected one of {KNOWN_COSTS}")
    activation = meta.get("activation", "sigmoid")
    from .activations import ACTIVATIONS

    if activation not in ACTIVATIONS:
        raise ModelFileError(f"{path}: unknown activation {activation!r}; expected one of {tuple(ACTIVATIONS)}")
    return sizes, weights, biases, {"cost": cost, "activation": activation}


def load(
    path: str | os.PathLike[str],
    xp: Any = "numpy",
    *,
    dtype: str | None = None,
    device: Any = None,
    network_class: type[DenseNetwork] | None = None,
) -> Any:
    """Load a model saved by :func:`save` (or by the book's ``network2``) onto any backend.

    Returns a chapter-1 :class:`portable_nn.network.Network` for a sigmoid
    network with the quadratic cost, and a :class:`portable_nn.network2.Network`
    (keeping its cost and activation) otherwise; ``network_class`` forces one.
    ``dtype`` defaults to the file's (float64 for JSON).
    """
    from . import network, network2

    _, weights, biases, meta = read_model(path)
    chapter1 = meta["cost"] == QuadraticCost.name and meta["activation"] == "sigmoid"
    cls = network_class or (network.Network if chapter1 else network2.Network)
    options = {} if cls is network.Network else {"cost": meta["cost"], "activation": meta["activation"]}
    if cls is network.Network and not chapter1:
        raise ModelFileError(f"{path}: a {meta['cost']}/{meta['activation']} model needs network2.load")
    return cls.from_arrays(weights, biases, xp, dtype=dtype, device=device, **options)
