"""Turning the data forms users pass into arrays that live on the backend.

Two forms are accepted wherever a network takes data:

* Nielsen's: a sequence (or ``zip``) of ``(x, y)`` pairs, ``x`` of shape
  ``(n_in, 1)``, ``y`` either a one-hot column ``(n_out, 1)`` or an int label.
* Stacked: a 2-tuple ``(inputs, labels)`` with ``inputs`` of shape
  ``(n, n_in)`` (one sample per row) and ``labels`` of shape ``(n,)`` (ints) or
  ``(n, n_out)`` (one-hot / target rows).  Arrays may come from any backend.

The conversion happens on the host with NumPy, once per call, and the result
is moved to the backend device in one transfer.  Samples are kept as *rows*
on the device, so a mini-batch is a contiguous row slice whose transpose
``(n_in, m)`` is the column matrix that backprop works with.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from .backends import Backend, to_numpy


@dataclass(frozen=True)
class DeviceData:
    """A data set resident on a backend.

    ``inputs``: ``(n, n_in)`` array of the network's float dtype.
    ``targets``: ``(n, n_out)`` float targets (training) or ``(n,)`` int64 labels
    (evaluation).  ``n``: number of samples.
    """

    inputs: Any
    targets: Any
    n: int


def _is_stacked(data: Any) -> bool:
    return (
        isinstance(data, (tuple, list)) and len(data) == 2 and hasattr(data[0], "shape") and hasattr(data[1], "shape")
    )


def _host_arrays(data: Any, name: str, n_in: int) -> tuple[np.ndarray, np.ndarray]:
    """``(inputs (n, n_in) float64, y)`` on the host; ``y`` is ``(n,)`` or ``(n, k)``."""
    if data is None:
        raise TypeError(f"{name} must be a list of (x, y) pairs or a tuple (inputs, labels); got None")
    if _is_stacked(data):
        inputs = to_numpy(data[0])
        labels = to_numpy(data[1])
        if inputs.ndim != 2 or inputs.shape[1] != n_in:
            raise ValueError(f"{name}: inputs must have shape (n, {n_in}) (one sample per row); got {inputs.shape}")
        if labels.ndim not in (1, 2) or labels.shape[0] != inputs.shape[0]:
            raise ValueError(
                f"{name}: labels must have shape ({inputs.shape[0]},) or "
                f"({inputs.shape[0]}, n_out) to match {inputs.shape[0]} inputs; got {labels.shape}"
            )
        if labels.ndim == 2 and labels.shape[1] == 1:
            labels = labels[:, 0]
        return inputs.astype(np.float64, copy=False), labels

    try:
        pairs = list(data)
    except TypeError:
        raise TypeError(
            f"{name} must be a list of (x, y) pairs or a tuple (inputs, labels); got {type(data).__name__}"
        ) from None
    xs, ys = [], []
    for i, pair in enumerate(pairs):
        try:
            x, y = pair
        except (TypeError, ValueError):
            raise ValueError(f"{name}[{i}] must be an (x, y) pair; got {type(pair).__name__}") from None
        x = to_numpy(x)
        if x.size != n_in or (x.ndim == 2 and x.shape[1] != 1) or x.ndim > 2:
            raise ValueError(f"{name}[{i}]: x must have shape ({n_in}, 1); got {x.shape}")
        xs.append(x.reshape(n_in))
        ys.append(to_numpy(y))
    if not xs:
        raise ValueError(f"{name} is empty: it must hold at least one (x, y) pair")
    shapes = {y.shape for y in ys}
    if len(shapes) != 1:
        raise ValueError(f"{name}: every y must have the same shape; got {sorted(shapes)}")
    labels = np.stack(ys)
    if labels.ndim == 3 and labels.shape[2] == 1:  # one-hot columns (n_out, 1)
        labels = labels[:, :, 0]
    if labels.ndim > 2:
        raise ValueError(f"{name}: y must be an int label or an (n_out, 1) column; got {ys[0].shape}")
    return np.stack(xs).astype(np.float64, copy=False), labels


def _check_finite_inputs(inputs: np.ndarray, name: str) -> None:
    if inputs.shape[0] == 0:
        raise ValueError(f"{name} is empty: it must hold at least one sample")
    if not np.all(np.isfinite(inputs)):
        raise ValueError(f"{name}: inputs must be finite numbers (found NaN or inf)")


def _int_labels(labels: np.ndarray, name: str, n_out: int) -> np.ndarray:
    """Check 1-D labels are integers in ``[0, n_out)`` and return them as int64."""
    if labels.dtype.kind == "b" or labels.dtype.kind not in "iuf":
        raise ValueError(f"{name}: labels must be integers in [0, {n_out}); got dtype {labels.dtype}")
    if labels.dtype.kind == "f" and not np.all(np.isfinite(labels) & (labels == np.round(labels))):
        raise ValueError(f"{name}: labels must be integers in [0, {n_out}); got non-integer values")
    if labels.size and (labels.min() < 0 or labels.max() >= n_out):
        bad = labels[(labels < 0) | (labels >= n_out)][0]
        raise ValueError(f"{name}: labels must be integers in [0, {n_out}); got {bad}")
    return labels.astype(np.int64)


def _check_target_rows(targets: np.ndarray, name: str, n_out: int) -> None:
    if targets.shape[1] != n_out:
        raise ValueError(
            f"{name}: targets must have {n_out} columns (one per output neuron); got shape {targets.shape}"
        )
    if not np.all(np.isfinite(targets)):
        raise ValueError(f"{name}: targets must be finite numbers (found NaN or inf)")


def one_hot(labels: np.ndarray, n_out: int) -> np.ndarray:
    """``(n,)`` int labels to ``(n, n_out)`` float64 one-hot rows."""
    out = np.zeros((labels.shape[0], n_out))
    out[np.arange(labels.shape[0]), labels] = 1.0
    return out


def training_arrays(data: Any, name: str, n_in: int, n_out: int) -> tuple[np.ndarray, np.ndarray]:
    """Validated host arrays ``(inputs (n, n_in), targets (n, n_out))``, float64."""
    inputs, labels = _host_arrays(data, name, n_in)
    _check_finite_inputs(inputs, name)
    if labels.ndim == 1:
        return inputs, one_hot(_int_labels(labels, name, n_out), n_out)
    _check_target_rows(labels, name, n_out)
    return inputs, labels.astype(np.float64, copy=False)


def evaluation_arrays(data: Any, name: str, n_in: int, n_out: int) -> tuple[np.ndarray, np.ndarray]:
    """Validated host arrays ``(inputs (n, n_in) float64, labels (n,) int64)``.

    One-hot target rows are turned into labels with ``argmax``, as Nielsen's
    ``network2.accuracy(convert=True)`` does.
    """
    inputs, labels = _host_arrays(data, name, n_in)
    _check_finite_inputs(inputs, name)
    if labels.ndim == 2:
        _check_target_rows(labels, name, n_out)
        labels = np.argmax(labels, axis=1)
    return inputs, _int_labels(labels, name, n_out)


def to_device(inputs: np.ndarray, targets: np.ndarray, backend: Backend, dtype: str) -> DeviceData:
    """Move validated host arrays to the backend in one transfer each."""
    target_dtype = "int64" if targets.dtype == np.int64 else dtype
    return DeviceData(
        inputs=backend.asarray(inputs.astype(dtype), dtype=backend.dtype(dtype)),
        targets=backend.asarray(targets.astype(target_dtype), dtype=backend.dtype(target_dtype)),
        n=int(inputs.shape[0]),
    )
