"""Saving and loading networks: ``.npz`` and Nielsen's ``network2`` JSON.

Files hold host (NumPy) arrays, so a model trained on one backend loads onto
any other.  Writes go to a temporary file in the target directory and are
renamed into place, so a crash or Ctrl-C never leaves a half-written model.
Loading checks keys, shapes and finiteness and names the file on failure.

``.npz`` layout: ``sizes`` (int64), ``weights_0..L-1``, ``biases_0..L-1``
(float64 or float32), all written and read with ``allow_pickle=False``.
``.json`` layout: ``{"sizes", "weights", "biases", "cost"}`` exactly as the
book's ``network2.Network.save`` writes it.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from .atomic import atomic_write
from .backends import to_numpy

if TYPE_CHECKING:
    from .network import Network

FORMATS = (".npz", ".json")
#: Costs named in network2 JSON files; the weights are a sigmoid network either way.
KNOWN_COSTS = ("QuadraticCost", "CrossEntropyCost")


class ModelFileError(ValueError):
    """A model file is malformed: wrong keys, shapes or non-finite values."""


def _format_of(path: Path) -> str:
    if path.suffix.lower() not in FORMATS:
        raise ValueError(f"path must end in .npz or .json; got {str(path)!r}")
    return path.suffix.lower()


def save(net: Network, path: str | os.PathLike[str]) -> Path:
    """Write ``net``'s sizes, weights and biases to ``path`` (``.npz`` or ``.json``)."""
    path = Path(path)
    fmt = _format_of(path)
    weights = [to_numpy(w) for w in net.weights]
    biases = [to_numpy(b) for b in net.biases]
    if fmt == ".npz":
        arrays = {"sizes": np.asarray(net.sizes, dtype=np.int64)}
        arrays.update({f"weights_{i}": w for i, w in enumerate(weights)})
        arrays.update({f"biases_{i}": b for i, b in enumerate(biases)})
        with atomic_write(path, "wb") as handle:
            np.savez(handle, allow_pickle=False, **arrays)
    else:
        data = {
            "sizes": list(net.sizes),
            "weights": [w.tolist() for w in weights],
            "biases": [b.tolist() for b in biases],
            "cost": "QuadraticCost",
        }
        with atomic_write(path, "w") as handle:
            json.dump(data, handle)
    return path


def _read_npz(path: Path) -> tuple[Any, list, list]:
    try:
        with np.load(path, allow_pickle=False) as archive:
            contents = {key: archive[key] for key in archive.files}
    except (OSError, ValueError) as exc:
        raise ModelFileError(f"{path}: not a readable .npz model ({exc})") from exc
    if "sizes" not in contents:
        raise ModelFileError(f"{path}: missing key 'sizes'")
    n = len(np.atleast_1d(contents["sizes"])) - 1
    expected = {"sizes"} | {f"{kind}_{i}" for kind in ("weights", "biases") for i in range(max(n, 0))}
    if set(contents) != expected:
        raise ModelFileError(f"{path}: keys {sorted(contents)} do not match a {n + 1}-layer model {sorted(expected)}")
    weights = [contents[f"weights_{i}"] for i in range(n)]
    biases = [contents[f"biases_{i}"] for i in range(n)]
    return contents["sizes"].tolist(), weights, biases


def _read_json(path: Path) -> tuple[Any, list, list]:
    try:
        data = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ModelFileError(f"{path}: not a readable JSON model ({exc})") from exc
    if not isinstance(data, dict) or not {"sizes", "weights", "biases"} <= set(data):
        raise ModelFileError(f"{path}: a network2 JSON model needs keys 'sizes', 'weights', 'biases'")
    cost = data.get("cost", "QuadraticCost")
    if cost not in KNOWN_COSTS:
        raise ModelFileError(f"{path}: unknown cost {cost!r}; expected one of {KNOWN_COSTS}")
    try:
        weights = [np.asarray(w, dtype=np.float64) for w in data["weights"]]
        biases = [np.asarray(b, dtype=np.float64) for b in data["biases"]]
    except (TypeError, ValueError) as exc:
        raise ModelFileError(f"{path}: weights and biases must be nested lists of numbers ({exc})") from exc
    return data["sizes"], weights, biases


def read_model(path: str | os.PathLike[str]) -> tuple[list[int], list[np.ndarray], list[np.ndarray]]:
    """Read and check a model file; returns ``(sizes, weights, biases)`` as NumPy data."""
    from .validation import check_sizes

    path = Path(path)
    fmt = _format_of(path)
    if not path.is_file():
        raise FileNotFoundError(f"model file not found: {path}")
    sizes, weights, biases = _read_npz(path) if fmt == ".npz" else _read_json(path)
    try:
        sizes = check_sizes(sizes)
    except (TypeError, ValueError) as exc:
        raise ModelFileError(f"{path}: {exc}") from exc
    if len(weights) != len(sizes) - 1 or len(biases) != len(sizes) - 1:
        raise ModelFileError(
            f"{path}: {len(sizes)} layers need {len(sizes) - 1} weight and bias arrays; "
            f"got {len(weights)} and {len(biases)}"
        )
    for i, (w, b) in enumerate(zip(weights, biases)):
        if w.shape != (sizes[i + 1], sizes[i]):
            raise ModelFileError(f"{path}: weights[{i}] has shape {w.shape}, expected {(sizes[i + 1], sizes[i])}")
        if b.shape != (sizes[i + 1], 1):
            raise ModelFileError(f"{path}: biases[{i}] has shape {b.shape}, expected {(sizes[i + 1], 1)}")
        if w.dtype.kind != "f" or b.dtype.kind != "f":
            raise ModelFileError(f"{path}: layer {i} holds {w.dtype}/{b.dtype}, expected floats")
        if not (np.all(np.isfinite(w)) and np.all(np.isfinite(b))):
            raise ModelFileError(f"{path}: layer {i} holds NaN or infinite values")
    return sizes, weights, biases


def load(
    path: str | os.PathLike[str],
    xp: Any = "numpy",
    *,
    dtype: str | None = None,
    device: Any = None,
) -> Network:
    """Load a model saved by :func:`save` (or the book's ``network2``) onto any backend.

    ``dtype`` defaults to the file's (float64 for JSON).
    """
    from .network import Network

    sizes, weights, biases = read_model(path)
    net = Network(sizes, xp, dtype=dtype or str(weights[0].dtype), device=device)
    net.weights = [net._from_host(w) for w in weights]
    net.biases = [net._from_host(b) for b in biases]
    return net
