"""From the data forms users pass to arrays resident on the backend, once per data set.

Forms accepted wherever a network takes data:

* Nielsen's: a sequence (or ``zip``) of ``(x, y)`` pairs, ``x`` of shape
  ``(n_in, 1)``, ``y`` either a one-hot column ``(n_out, 1)`` or an int label.
  Converted with one preallocated copy straight into the network's dtype.
* :class:`BookPairs`, the list that :func:`portable_nn.load_data_wrapper`
  returns: it behaves exactly like the book's list of pairs but also carries
  the stacked, already validated arrays its pairs are views of, so it converts
  in O(1).
* Stacked: a 2-tuple ``(inputs, labels)`` with ``inputs`` ``(n, n_in)`` (one
  sample per row) and ``labels`` ``(n,)`` ints or ``(n, n_out)`` target rows,
  from any backend.
* :class:`Dataset`: stacked arrays checked once, possibly in a compact form
  (MNIST's ``uint8`` pixels with ``divisor=255``, scaled on the device one
  mini-batch at a time, bit for bit what scaling up front gives).

A :class:`BookPairs` or :class:`Dataset` keeps its device copies, so calling
``SGD``/``evaluate`` again on the same object moves nothing.  Samples are
*rows* on the device; a mini-batch is ``xp.take(inputs, idx, axis=0)`` and its
transpose ``(n_in, m)`` is the column matrix of the book's chapter 2.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, SupportsIndex, TypeVar

import numpy as np

from .backends import Backend, to_numpy
from .compiled import compiles


@dataclass(frozen=True)
class DeviceData:
    """A data set resident on a backend.

    Attributes
    ----------
    inputs:
        ``(n, n_in)`` array: the network's float dtype, or ``uint8`` when
        ``divisor`` is set (then a row means ``row / divisor``).
    targets:
        ``(n, n_out)`` float targets (training) or ``(n,)`` int64 labels (evaluation).
    n:
        Number of samples.
    divisor:
        ``None``, or the number the stored inputs are divided by (255.0 for MNIST bytes).
    """

    inputs: Any
    targets: Any
    n: int
    divisor: float | None = None


class Dataset:
    """Stacked host data, validated once: what every other form is converted to.

    Parameters
    ----------
    inputs:
        ``(n, n_in)`` NumPy array of real numbers (float32/float64), or of
        ``uint8`` together with ``divisor``.
    labels:
        ``(n,)`` int64 labels or ``(n, n_out)`` float target rows.
    divisor:
        For compact inputs: the value each stored input is divided by before
        use (``255.0`` for MNIST pixels).  Scaling happens on the device per
        mini-batch, in the network's dtype, so it is bit for bit
        ``inputs.astype(dtype) / divisor``.

    The constructor does not copy; treat the arrays as read-only afterwards
    (device copies are cached on the object).
    """

    def __init__(self, inputs: np.ndarray, labels: np.ndarray, *, divisor: float | None = None) -> None:
        if inputs.ndim != 2:
            raise ValueError(f"inputs must have shape (n, n_in); got {inputs.shape}")
        if labels.shape[:1] != inputs.shape[:1] or labels.ndim not in (1, 2):
            raise ValueError(f"labels must have shape ({inputs.shape[0]},) or ({inputs.shape[0]}, n_out)")
        self.inputs = inputs
        self.labels = labels
        self.divisor = None if divisor is None else float(divisor)
        self._device: dict[tuple[Any, ...], DeviceData] = {}
        self._checked: set[tuple[str, int, int]] = set()

    @property
    def n(self) -> int:
        """Number of samples."""
        return int(self.inputs.shape[0])

    def __len__(self) -> int:
        return self.n

    def __repr__(self) -> str:
        scale = "" if self.divisor is None else f" / {self.divisor:g}"
        return f"Dataset(inputs {self.inputs.shape} {self.inputs.dtype}{scale}, labels {self.labels.shape})"

    def subset(self, rows: slice) -> Dataset:
        """The rows ``rows`` as a new :class:`Dataset` (views, no copy)."""
        return Dataset(self.inputs[rows], self.labels[rows], divisor=self.divisor)

    def float_inputs(self, dtype: str) -> np.ndarray:
        """``(n, n_in)`` inputs of ``dtype`` on the host (scaled when compact)."""
        if self.divisor is None:
            return self.inputs.astype(dtype, copy=False)
        return self.inputs.astype(dtype) / np.asarray(self.divisor, dtype=dtype)


_Pairs = TypeVar("_Pairs", bound="BookPairs")


class BookPairs(list[Any]):
    """A list of ``(x, y)`` pairs that also carries its stacked :class:`Dataset`.

    It is a ``list`` in every way the book uses one (indexing, slicing, ``len``,
    iteration, ``zip``); a slice is again a :class:`BookPairs`.  Any change to
    the list in place drops the stacked arrays, so the pairs themselves are
    then converted as any other list would be.
    """

    def __init__(self, pairs: Iterable[Any], dataset: Dataset | None = None) -> None:
        super().__init__(pairs)
        self.dataset = dataset

    def __getitem__(self, index: Any) -> Any:
        item = super().__getitem__(index)
        if isinstance(index, slice):
            step = index.step if index.step is not None else 1
            data = self.dataset.subset(index) if self.dataset is not None and step == 1 else None
            return BookPairs(item, data)
        return item

    def _changed(self) -> None:
        self.dataset = None

    def __setitem__(self, index: Any, value: Any) -> None:
        self._changed()
        super().__setitem__(index, value)

    def __delitem__(self, index: Any) -> None:
        self._changed()
        super().__delitem__(index)

    def __iadd__(self: _Pairs, other: Iterable[Any]) -> _Pairs:  # type: ignore[misc]  # list.__add__ returns list
        self._changed()
        return super().__iadd__(other)

    def __imul__(self: _Pairs, other: SupportsIndex) -> _Pairs:
        self._changed()
        return super().__imul__(other)

    def append(self, value: Any) -> None:
        self._changed()
        super().append(value)

    def extend(self, values: Iterable[Any]) -> None:
        self._changed()
        super().extend(values)

    def insert(self, index: SupportsIndex, value: Any) -> None:
        self._changed()
        super().insert(index, value)

    def pop(self, index: SupportsIndex = -1) -> Any:
        self._changed()
        return super().pop(index)

    def remove(self, value: Any) -> None:
        self._changed()
        super().remove(value)

    def clear(self) -> None:
        self._changed()
        super().clear()

    def sort(self, *args: Any, **kwargs: Any) -> None:
        self._changed()
        super().sort(*args, **kwargs)

    def reverse(self) -> None:
        self._changed()
        super().reverse()


def _is_stacked(data: Any) -> bool:
    return (
        isinstance(data, (tuple, list))
        and not isinstance(data, BookPairs)
        and len(data) == 2
        and hasattr(data[0], "shape")
        and hasattr(data[1], "shape")
    )


def _check_real(array: np.ndarray, name: str, what: str) -> None:
    if array.dtype.kind not in "iuf":
        raise TypeError(f"{name}: {what} must be real numbers (int or float); got dtype {array.dtype}")


def _all_finite(array: np.ndarray) -> bool:
    """``True`` when every element is finite; one cheap sum first, the exact test only if it overflows."""
    if array.dtype.kind != "f" or array.size == 0:
        return True
    if math.isfinite(float(np.sum(array, dtype=np.float64))):
        return True  # any NaN or inf would have made the sum non-finite
    return bool(np.all(np.isfinite(array)))


def _stacked(data: tuple[Any, Any], name: str, n_in: int, dtype: str) -> Dataset:
    inputs, labels = to_numpy(data[0]), to_numpy(data[1])
    if inputs.ndim != 2 or inputs.shape[1] != n_in:
        raise ValueError(f"{name}: inputs must have shape (n, {n_in}) (one sample per row); got {inputs.shape}")
    if labels.ndim not in (1, 2) or labels.shape[0] != inputs.shape[0]:
        raise ValueError(
            f"{name}: labels must have shape ({inputs.shape[0]},) or "
            f"({inputs.shape[0]}, n_out) to match {inputs.shape[0]} inputs; got {labels.shape}"
        )
    _check_real(inputs, name, "inputs")
    if labels.ndim == 2 and labels.shape[1] == 1:
        labels = labels[:, 0]
    return Dataset(inputs.astype(dtype, copy=False), labels)


def _pairs(data: Any, name: str, n_in: int, dtype: str) -> Dataset:
    """Nielsen's pairs with one preallocated ``(n, n_in)`` copy in ``dtype``.

    The common case -- every ``x`` a real NumPy ``(n_in, 1)`` column -- is
    copied by one ``np.concatenate`` straight into the transposed view of the
    result; anything else goes through a per-pair loop that names the first
    bad pair.
    """
    try:
        pairs = data if isinstance(data, list) else list(data)
    except TypeError:
        raise TypeError(
            f"{name} must be a list of (x, y) pairs or a tuple (inputs, labels); got {type(data).__name__}"
        ) from None
    if not pairs:
        raise ValueError(f"{name} is empty: it must hold at least one (x, y) pair")
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
    """Copy each ``x`` into a row of ``inputs``, checking every pair; returns the ``y``s."""
    ys = []
    column, flat = (n_in, 1), (n_in,)
    for i, pair in enumerate(pairs):
        try:
            x, y = pair
        except (TypeError, ValueError):
            raise ValueError(f"{name}[{i}] must be an (x, y) pair; got {type(pair).__name__}") from None
        if not isinstance(x, np.ndarray):
            x = to_numpy(x)
        if x.shape != column and x.shape != flat:
            raise ValueError(f"{name}[{i}]: x must have shape ({n_in}, 1); got {x.shape}")
        if x.dtype.kind not in "iuf":
            raise TypeError(f"{name}[{i}]: x must hold real numbers (int or float); got dtype {x.dtype}")
        inputs[i] = x.reshape(n_in)
        ys.append(y)
    return ys


def _stack_ys(ys: list[Any], name: str) -> np.ndarray:
    first = ys[0]
    if isinstance(first, (bool, np.bool_)) or (hasattr(first, "dtype") and first.dtype.kind == "b"):
        raise TypeError(f"{name}: y must be an int label or an (n_out, 1) column; got a bool")
    if isinstance(first, (int, np.integer)):
        try:
            return np.fromiter((int(y) for y in ys), dtype=np.int64, count=len(ys))
        except (TypeError, ValueError):
            raise ValueError(f"{name}: every y must be an int label, as the first one is") from None
    arrays = [y if isinstance(y, np.ndarray) else to_numpy(y) for y in ys]
    shape = arrays[0].shape
    if any(a.shape != shape for a in arrays):
        shapes = sorted({a.shape for a in arrays})
        raise ValueError(f"{name}: every y must have the same shape; got {shapes}")
    if len(shape) == 2 and shape[1] == 1:
        out = np.empty((len(arrays), shape[0]), dtype=np.float64)
        for i, a in enumerate(arrays):
            out[i] = a[:, 0]
        if arrays[0].dtype.kind not in "iuf":
            raise TypeError(f"{name}: y must hold real numbers; got dtype {arrays[0].dtype}")
        return out
    if shape == ():
        return np.stack(arrays)
    raise ValueError(f"{name}: y must be an int label or an (n_out, 1) column; got {shape}")


def as_dataset(data: Any, name: str, n_in: int, dtype: str) -> Dataset:
    """Any accepted form as a :class:`Dataset` (validated shapes and kinds; no label checks yet)."""
    if data is None:
        raise TypeError(f"{name} must be a list of (x, y) pairs or a tuple (inputs, labels); got None")
    if isinstance(data, Dataset):
        dataset = data
    elif isinstance(data, BookPairs) and data.dataset is not None:
        dataset = data.dataset
    elif isinstance(getattr(data, "dataset", None), Dataset):  # network3's SharedPair (and any such carrier)
        dataset = data.dataset
    elif _is_stacked(data):
        dataset = _stacked(data, name, n_in, dtype)
    else:
        dataset = _pairs(data, name, n_in, dtype)
    if dataset.inputs.shape[1] != n_in:
        raise ValueError(f"{name}: inputs must have shape (n, {n_in}) (one sample per row); got {dataset.inputs.shape}")
    if dataset.n == 0:
        raise ValueError(f"{name} is empty: it must hold at least one sample")
    return dataset


def _int_labels(labels: np.ndarray, name: str, n_out: int) -> np.ndarray:
    """Check 1-D labels are integers in ``[0, n_out)`` and return them as int64."""
    if labels.dtype.kind not in "iuf":
        raise ValueError(f"{name}: labels must be integers in [0, {n_out}); got dtype {labels.dtype}")
    if labels.dtype.kind == "f" and not np.all(np.isfinite(labels) & (labels == np.round(labels))):
        raise ValueError(f"{name}: labels must be integers in [0, {n_out}); got non-integer values")
    if labels.size and (labels.min() < 0 or labels.max() >= n_out):
        bad = labels[(labels < 0) | (labels >= n_out)][0]
        raise ValueError(f"{name}: labels must be integers in [0, {n_out}); got {bad}")
    return labels.astype(np.int64, copy=False)


def _check_target_rows(targets: np.ndarray, name: str, n_out: int) -> None:
    if targets.shape[1] != n_out:
        raise ValueError(
            f"{name}: targets must have {n_out} columns (one per output neuron); got shape {targets.shape}"
        )
    _check_real(targets, name, "targets")
    if not _all_finite(targets):
        raise ValueError(f"{name}: targets must be finite numbers (found NaN or inf)")


def _validate(dataset: Dataset, name: str, n_out: int) -> None:
    """Label range and finiteness, checked once per data set and output width."""
    key = (name, dataset.inputs.shape[1], n_out)
    if key in dataset._checked:
        return
    if dataset.divisor is None and not _all_finite(dataset.inputs):
        raise ValueError(f"{name}: inputs must be finite numbers (found NaN or inf)")
    if dataset.labels.ndim == 1:
        _int_labels(dataset.labels, name, n_out)
    else:
        _check_target_rows(dataset.labels, name, n_out)
    dataset._checked.add(key)


def to_device(
    data: Any, name: str, n_in: int, n_out: int, backend: Backend, dtype: str, *, training: bool
) -> DeviceData:
    """Validate ``data`` and move it to ``backend`` (cached on :class:`Dataset`/:class:`BookPairs`).

    Training data gets ``(n, n_out)`` float targets (int labels one-hot
    encoded on the device with ``array_api_extra.one_hot``); evaluation data
    gets ``(n,)`` int64 labels (one-hot rows become labels by ``argmax``, as
    the book's ``accuracy(convert=True)`` does).
    """
    dataset = as_dataset(data, name, n_in, dtype)
    _validate(dataset, name, n_out)
    key = (backend.name, repr(backend.device), dtype, training, n_out)
    cached = dataset._device.get(key)
    if cached is not None:
        return cached
    xp = backend.xp
    labels = dataset.labels
    divisor = dataset.divisor
    if divisor is not None and (compiles(backend) or not training):
        # Evaluation data is read whole every epoch: scaled once, up front, it costs one float copy
        # instead of a conversion per chunk per epoch.  And XLA may rewrite x / 255 as x * (1/255),
        # which is not bit for bit the same, so compiled backends scale up front too.
        inputs = backend.asarray(dataset.float_inputs(dtype), dtype=backend.dtype(dtype))
        divisor = None
    elif divisor is None:
        inputs = backend.asarray(dataset.inputs.astype(dtype, copy=False), dtype=backend.dtype(dtype))
    else:
        inputs = backend.asarray(dataset.inputs, dtype=xp.uint8)
    if training and labels.ndim == 1:
        import array_api_extra as xpx

        # labels checked by _validate
        device_labels = backend.asarray(labels.astype(np.int64, copy=False), dtype=backend.index_dtype)
        targets = xpx.one_hot(device_labels, n_out, dtype=backend.dtype(dtype), xp=xp)
    elif training:
        targets = backend.asarray(labels.astype(dtype, copy=False), dtype=backend.dtype(dtype))
    else:
        host = np.argmax(labels, axis=1) if labels.ndim == 2 else labels  # range checked by _validate
        targets = backend.asarray(host.astype(np.int64, copy=False), dtype=backend.index_dtype)
    device = DeviceData(inputs=inputs, targets=targets, n=dataset.n, divisor=divisor)
    # Transfers may be asynchronous (JAX): wait for them here, so the copy is paid (and timed) as
    # ingestion, not inside the first epoch.  One tiny host copy of each array.
    to_numpy(inputs[0:1, 0:1])
    to_numpy(targets[0:1, ...])
    if isinstance(data, (Dataset, BookPairs)) or dataset is getattr(data, "dataset", None):  # SharedPair too
        dataset._device[key] = device
    return device
