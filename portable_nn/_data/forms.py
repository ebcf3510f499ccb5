"""The one boundary: from the data and parameters users pass to arrays of the network's backend.

Forms accepted wherever a network takes data (the README's table "Data and
parameters you can pass" lists them per entry point):

* Nielsen's: a sequence (or ``zip``) of ``(x, y)`` pairs, ``x`` of shape
  ``(n_in, 1)``, ``y`` a one-hot column ``(n_out, 1)``, an int label or a 0-d
  array.  The ``x`` (and array ``y``) may be NumPy arrays or the arrays of any
  backend: pairs of one namespace and device are stacked *in that namespace*
  (one ``stack``, no host copy per pair); NumPy columns are copied once,
  straight into the network's dtype (or not at all when they are consecutive
  rows of one array).
* :class:`BookPairs`, the list that :func:`portable_nn.load_data_wrapper`
  returns, and any other object whose ``dataset`` attribute is a
  :class:`Dataset`: converted in O(1) through it.
* Stacked: a 2-tuple ``(inputs, labels)`` with ``inputs`` ``(n, n_in)`` (one
  sample per row) and ``labels`` ``(n,)`` ints or ``(n, n_out)`` target rows,
  from any backend.
* :class:`Dataset`: stacked arrays of any backend, checked once, possibly in a
  compact form (MNIST's ``uint8`` pixels with ``divisor=255``, scaled on the
  device one mini-batch at a time, bit for bit what scaling up front gives).

Arrays already on the network's namespace and device never leave it (no host
round trip; CuPy data stays on the GPU).  Arrays of another backend or device
are converted once, through the host, into the network's dtype; for a
:class:`Dataset`/:class:`BookPairs` the converted copy is cached on the object,
so calling ``SGD``/``evaluate`` again on the same object moves nothing.
Samples are *rows* on the device; a mini-batch is ``xp.take(inputs, idx,
axis=0)`` and its transpose ``(n_in, m)`` is the column matrix of the book's
chapter 2.

Single arrays (``feedforward`` inputs, assigned ``weights``/``biases``) pass
through :func:`as_network_array`: the same dtype rules, refusals naming the
argument.  Dtype kinds are read with the standard's ``isdtype`` (any backend);
float16/bfloat16 are widened in their own namespace before any host copy.
"""

from __future__ import annotations

import operator
from collections.abc import Sequence
from typing import Any

import array_api_compat
import numpy as np

from .._backend.backends import Backend, to_numpy
from .._backend.compiled import compiles
from .arrays import (
    all_finite,
    as_network_array,
    check_kind,
    dtype_kind,
    from_host,
    host_array,
    index_dtype,
    is_array,
    namespace_of_all,
    resident,
)
from .datasets import BookPairs, Dataset, DeviceData, check_stacked

__all__ = [
    "BookPairs",
    "Dataset",
    "DeviceData",
    "as_dataset",
    "as_network_array",
    "host_array",
    "is_array",
    "to_device",
]


def _is_stacked(data: Any) -> bool:
    return (
        isinstance(data, (tuple, list))
        and not isinstance(data, BookPairs)
        and len(data) == 2
        and hasattr(data[0], "shape")
        and hasattr(data[1], "shape")
    )


def _stacked(data: tuple[Any, Any], name: str) -> Dataset:
    inputs, labels = data
    check_stacked(inputs, labels, name)
    if labels.ndim == 2 and labels.shape[1] == 1:
        labels = labels[:, 0]
    return Dataset(inputs, labels)


def _pairs(data: Any, name: str, n_in: int, dtype: str) -> Dataset:
    """Nielsen's pairs as one stacked :class:`Dataset`.

    Pairs whose ``x`` all share one non-NumPy namespace, device, shape and
    dtype are stacked in that namespace (one ``stack``, nothing to the host).
    NumPy columns ``(n_in, 1)`` are copied by one ``np.concatenate`` straight
    into a preallocated ``(n, n_in)`` array of ``dtype`` (or viewed, when they
    are consecutive rows of one array); anything else goes through a per-pair
    loop that names the first bad pair.
    """
    try:
        pairs = data if isinstance(data, list) else list(data)
    except TypeError:
        raise TypeError(
            f"{name} must be a list of (x, y) pairs or a tuple (inputs, labels); got {type(data).__name__}"
        ) from None
    if not pairs:
        raise ValueError(f"{name} is empty: it must hold at least one (x, y) pair")
    xs: tuple[Any, ...]
    ys: tuple[Any, ...]
    try:
        xs, ys = zip(*pairs)
    except (TypeError, ValueError):
        xs = ys = ()
    if len(xs) == len(pairs) and all(
        type(x) is np.ndarray and x.shape == (n_in, 1) and x.dtype.kind in "iuf" for x in xs
    ):
        view = _rows_of_one_array(xs, n_in, dtype)
        if view is not None:
            return Dataset(view, _stack_ys(list(ys), name))
        inputs = np.empty((len(pairs), n_in), dtype=dtype)
        np.concatenate(xs, axis=1, out=inputs.T, casting="same_kind")
        return Dataset(inputs, _stack_ys(list(ys), name))
    if (
        len(xs) == len(pairs)
        and not isinstance(xs[0], np.ndarray)
        and tuple(getattr(xs[0], "shape", ()))
        in (
            (n_in, 1),
            (n_in,),
        )
    ):
        xp = namespace_of_all(xs)
        if xp is not None:
            check_kind(xs[0], f"{name}[0]: x")
            stacked = xp.reshape(xp.stack(xs, axis=0), (len(xs), n_in))
            return Dataset(stacked, _stack_ys(list(ys), name))
    inputs = np.empty((len(pairs), n_in), dtype=dtype)
    return Dataset(inputs, _stack_ys(_copy_pairs(pairs, inputs, name, n_in), name))


def _rows_of_one_array(xs: tuple[np.ndarray, ...], n_in: int, dtype: str) -> np.ndarray | None:
    """The ``(n, n_in)`` array the columns ``xs`` are consecutive rows of, as a view; else ``None``.

    Lists of pairs are usually views into one stacked array (the book's
    loader reshapes the rows of one array; so does ours): then no copy is
    needed.  Every column must be a contiguous view of the same base array,
    of ``dtype``, starting exactly one row after the previous one.
    """
    first = xs[0]
    base = first.base
    itemsize = first.itemsize
    if base is None or first.dtype != np.dtype(dtype) or first.strides[0] != itemsize:
        return None
    start = first.__array_interface__["data"][0]
    row = n_in * itemsize
    for i, x in enumerate(xs):
        if x.base is not base or x.strides[0] != itemsize or x.__array_interface__["data"][0] != start + i * row:
            return None
    return np.lib.stride_tricks.as_strided(
        first, shape=(len(xs), n_in), strides=(row, itemsize), writeable=bool(first.flags.writeable)
    )


def _copy_pairs(pairs: list[Any], inputs: np.ndarray, name: str, n_in: int) -> list[Any]:
    """Copy each ``x`` (any backend) into a row of ``inputs``, checking every pair; returns the ``y``s."""
    ys = []
    column, flat = (n_in, 1), (n_in,)
    for i, pair in enumerate(pairs):
        try:
            x, y = pair
        except (TypeError, ValueError):
            raise ValueError(f"{name}[{i}] must be an (x, y) pair; got {type(pair).__name__}") from None
        if not is_array(x):
            raise TypeError(f"{name}[{i}]: x must be an array of shape ({n_in}, 1); got {type(x).__name__}")
        if tuple(x.shape) != column and tuple(x.shape) != flat:
            raise ValueError(f"{name}[{i}]: x must have shape ({n_in}, 1); got {tuple(x.shape)}")
        check_kind(x, f"{name}[{i}]: x")
        inputs[i] = host_array(x).reshape(n_in)
        ys.append(y)
    return ys


def _stack_ys(ys: list[Any], name: str) -> Any:
    """The ``y`` of the pairs as ``(n,)`` labels or ``(n, n_out)`` target rows.

    Python/NumPy ints become a host int64 array; array ``y`` (0-d labels or
    ``(n_out, 1)`` columns) of one namespace and device are stacked there,
    mixed ones through the host.
    """
    first = ys[0]
    if isinstance(first, (bool, np.bool_)) or (is_array(first) and dtype_kind(first) == "b"):
        raise TypeError(f"{name}: y must be an int label or an (n_out, 1) column; got a bool")
    if isinstance(first, (int, np.integer)):
        try:
            return np.fromiter((operator.index(y) for y in ys), dtype=np.int64, count=len(ys))
        except (TypeError, ValueError):
            raise ValueError(f"{name}: every y must be an int label, as the first one is") from None
    if not all(is_array(y) for y in ys):
        raise TypeError(f"{name}: every y must be an int label or an (n_out, 1) array; got {type(first).__name__}")
    shapes = {tuple(y.shape) for y in ys}
    if len(shapes) > 1:
        raise ValueError(f"{name}: every y must have the same shape; got {sorted(shapes)}")
    shape: tuple[int, ...] = shapes.pop()
    if shape != () and (len(shape) != 2 or shape[1] != 1):
        raise ValueError(f"{name}: y must be an int label, a 0-d array or an (n_out, 1) column; got {shape}")
    check_kind(first, f"{name}: y")
    xp = namespace_of_all(ys)
    if xp is None:  # mixed namespaces, devices or dtypes: one host copy each (NumPy promotes the dtypes)
        arrays: Sequence[Any] = [host_array(y) for y in ys]
        xp = np
    else:
        arrays = ys
    stacked = xp.stack(list(arrays), axis=0)
    return xp.reshape(stacked, (len(arrays), *shape[:1]))  # (n,) labels or (n, n_out) rows


def as_dataset(data: Any, name: str, n_in: int, dtype: str) -> Dataset:
    """Any accepted form as a :class:`Dataset` (validated shapes and kinds; no label checks yet).

    O(1) for a :class:`Dataset` and for any object whose ``dataset``
    attribute is one (:class:`BookPairs`, network3's ``load_data_shared`` tuples).
    """
    if data is None:
        raise TypeError(f"{name} must be a list of (x, y) pairs or a tuple (inputs, labels); got None")
    carried = getattr(data, "dataset", None)
    if isinstance(data, Dataset):
        dataset = data
    elif isinstance(carried, Dataset):
        dataset = carried
    elif _is_stacked(data):
        dataset = _stacked(data, name)
    else:
        dataset = _pairs(data, name, n_in, dtype)
    if dataset.inputs.shape[1] != n_in:
        raise ValueError(
            f"{name}: inputs must have shape (n, {n_in}) (one sample per row); got {tuple(dataset.inputs.shape)}"
        )
    if dataset.n == 0:
        raise ValueError(f"{name} is empty: it must hold at least one sample")
    return dataset


def _check_labels(labels: Any, name: str, n_out: int) -> None:
    """1-D labels must be integers in ``[0, n_out)`` (checked in their own namespace: two host syncs)."""
    expected = f"{name}: labels must be integers in [0, {n_out})"
    kind = dtype_kind(labels)
    if kind not in "if":
        raise ValueError(f"{expected}; got dtype {labels.dtype}")
    if labels.shape[0] == 0:
        return
    xp = array_api_compat.array_namespace(labels)
    if kind == "f" and not bool(xp.all(xp.isfinite(labels) & (labels == xp.round(labels)))):
        raise ValueError(f"{expected}; got non-integer values")
    if float(xp.min(labels)) < 0 or float(xp.max(labels)) >= n_out:
        host = host_array(labels)
        bad = host[(host < 0) | (host >= n_out)][0]
        raise ValueError(f"{expected}; got {bad}")


def _check_target_rows(targets: Any, name: str, n_out: int) -> None:
    if targets.shape[1] != n_out:
        raise ValueError(
            f"{name}: targets must have {n_out} columns (one per output neuron); got shape {tuple(targets.shape)}"
        )
    check_kind(targets, f"{name}: targets")
    if not all_finite(targets):
        raise ValueError(f"{name}: targets must be finite numbers (found NaN or inf)")


def _validate(dataset: Dataset, name: str, n_out: int) -> None:
    """Label range and finiteness, checked once per data set and output width."""
    key = (name, dataset.inputs.shape[1], n_out)
    if key in dataset._checked:
        return
    if dataset.divisor is None and not all_finite(dataset.inputs):
        raise ValueError(f"{name}: inputs must be finite numbers (found NaN or inf)")
    if dataset.labels.ndim == 1:
        _check_labels(dataset.labels, name, n_out)
    else:
        _check_target_rows(dataset.labels, name, n_out)
    dataset._checked.add(key)


def _device_inputs(dataset: Dataset, backend: Backend, dtype: str, *, scale: bool) -> Any:
    """The inputs on ``backend``: floats of ``dtype``, or ``uint8`` kept compact unless ``scale``."""
    inputs = dataset.inputs
    if dataset.divisor is None:
        return resident(inputs, backend, dtype)
    if not scale:
        return resident(inputs, backend, "uint8")
    if backend.owns(inputs):  # scaled on the device: no host round trip
        return backend.xp.astype(inputs, backend.dtype(dtype)) / dataset.divisor
    return from_host(dataset.float_inputs(dtype), backend, dtype)


def _device_targets(labels: Any, backend: Backend, dtype: str, n_out: int, *, training: bool) -> Any:
    """``(n, n_out)`` float targets (training) or ``(n,)`` int labels (:func:`index_dtype`), on ``backend``."""
    xp = backend.xp
    if training and labels.ndim == 1:
        import array_api_extra as xpx

        return xpx.one_hot(resident(labels, backend, index_dtype(backend)), n_out, dtype=backend.dtype(dtype), xp=xp)
    if training:
        return resident(labels, backend, dtype)
    if labels.ndim == 2:  # one-hot rows become labels, as the book's accuracy(convert=True) does
        labels = array_api_compat.array_namespace(labels).argmax(labels, axis=1)
    return resident(labels, backend, index_dtype(backend))


def to_device(
    data: Any, name: str, n_in: int, n_out: int, backend: Backend, dtype: str, *, training: bool
) -> DeviceData:
    """Validate ``data`` and move it to ``backend`` (cached on :class:`Dataset`/:class:`BookPairs`).

    Training data gets ``(n, n_out)`` float targets (int labels one-hot
    encoded on the device with ``array_api_extra.one_hot``); evaluation data
    gets ``(n,)`` int64 labels (one-hot rows become labels by ``argmax``, as
    the book's ``accuracy(convert=True)`` does).  Arrays already on
    ``backend`` stay there.
    """
    dataset = as_dataset(data, name, n_in, dtype)
    _validate(dataset, name, n_out)
    key = (backend.name, repr(backend.device), dtype, training, n_out)
    cached = dataset._device.get(key)
    if cached is not None:
        return cached
    # Evaluation data is read whole every epoch: scaled once, up front, it costs one float copy
    # instead of a conversion per chunk per epoch.  And XLA may rewrite x / 255 as x * (1/255),
    # which is not bit for bit the same, so compiled backends scale up front too.
    scale = dataset.divisor is not None and (compiles(backend) or not training)
    inputs = _device_inputs(dataset, backend, dtype, scale=scale)
    targets = _device_targets(dataset.labels, backend, dtype, n_out, training=training)
    device = DeviceData(inputs=inputs, targets=targets, n=dataset.n, divisor=None if scale else dataset.divisor)
    # Transfers may be asynchronous (JAX): wait for them here, so the copy is paid (and timed) as
    # ingestion, not inside the first epoch.  One tiny host copy of each array.
    to_numpy(inputs[0:1, 0:1])
    to_numpy(targets[0:1, ...])
    if dataset is data or getattr(data, "dataset", None) is dataset:
        dataset._device[key] = device
    return device
