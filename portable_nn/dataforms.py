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

import math
import operator
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, SupportsIndex, TypeVar

import array_api_compat
import numpy as np

from .backends import Backend, to_numpy
from .compiled import compiles
from .validation import check_divisor


@dataclass(frozen=True)
class DeviceData:
    """A data set resident on a backend.

    Attributes
    ----------
    inputs:
        ``(n, n_in)`` array: the network's float dtype, or ``uint8`` when
        ``divisor`` is set (then a row means ``row / divisor``).
    targets:
        ``(n, n_out)`` float targets (training) or ``(n,)`` int labels (evaluation; int64, or
        :func:`index_dtype` where the backend indexes with int32).
    n:
        Number of samples.
    divisor:
        ``None``, or the number the stored inputs are divided by (255.0 for MNIST bytes).
    """

    inputs: Any
    targets: Any
    n: int
    divisor: float | None = None


# -- one array: kinds, host copies, conversion ------------------------------------------------
def is_array(value: Any) -> bool:
    """``True`` for an array of any backend the standard's ``array_namespace`` knows."""
    return bool(array_api_compat.is_array_api_obj(value)) and not isinstance(value, (int, float, complex, bool))


def dtype_kind(array: Any) -> str:
    """``"b"`` (bool), ``"i"`` (any integer), ``"f"`` (real floating) or ``"?"`` (anything else).

    NumPy arrays are read from ``dtype.kind`` (fast, for per-pair loops); every
    other backend through its namespace's ``isdtype``.
    """
    if isinstance(array, np.ndarray):
        return {"b": "b", "i": "i", "u": "i", "f": "f"}.get(array.dtype.kind, "?")
    xp = array_api_compat.array_namespace(array)
    for kind, name in (("b", "bool"), ("i", "integral"), ("f", "real floating")):
        if xp.isdtype(array.dtype, name):
            return kind
    return "?"


def _check_kind(array: Any, name: str, what: str = "real numbers (int or float)") -> str:
    kind = dtype_kind(array)
    if kind not in "if":
        raise TypeError(f"{name} must be {what}; got dtype {array.dtype}")
    return kind


def _detached(array: Any) -> Any:
    """A torch tensor without its autograd graph (anything else unchanged)."""
    if getattr(array, "requires_grad", False) and array_api_compat.is_torch_array(array):
        return array.detach()
    return array


def host_array(array: Any) -> np.ndarray:
    """``array`` (any backend) as a NumPy array; float16/bfloat16 widened to float32 in its own namespace first."""
    if isinstance(array, np.ndarray):
        return array
    array = _detached(array)
    if not isinstance(array, np.ndarray) and is_array(array) and dtype_kind(array) == "f":
        xp = array_api_compat.array_namespace(array)
        if array.dtype not in (xp.float32, xp.float64):
            array = xp.astype(array, xp.float32)  # exact for float16 and bfloat16; NumPy has no bfloat16
    return to_numpy(array)


def index_dtype(backend: Backend) -> str:
    """The name (``"int64"``, or ``"int32"`` on JAX without 64-bit mode) of :attr:`Backend.index_dtype`,
    the namespace's default indexing dtype, which labels and indices use."""
    return "int32" if backend.index_dtype == backend.xp.int32 else "int64"


def _from_host(host: np.ndarray, backend: Backend, dtype: str) -> Any:
    """A NumPy array onto ``backend`` in ``dtype`` (negative strides made contiguous first: torch refuses them)."""
    host = host.astype(dtype, copy=False)
    if any(stride < 0 for stride in host.strides):
        host = np.ascontiguousarray(host)
    return backend.asarray(host, dtype=backend.dtype(dtype))


def resident(array: Any, backend: Backend, dtype: str) -> Any:
    """``array`` on ``backend``'s namespace and device in ``dtype``.

    Already there: no host round trip (``astype`` on the device when the dtype
    differs; a torch tensor is detached from autograd).  Another backend or
    device: one host copy, converted.
    """
    target = backend.dtype(dtype)
    if backend.owns(array):
        array = _detached(array)
        return array if array.dtype == target else backend.xp.astype(array, target)
    return _from_host(host_array(array), backend, dtype)


def all_finite(array: Any) -> bool:
    """``True`` when every element is finite (integers always are); one host sync off NumPy."""
    if dtype_kind(array) != "f" or math.prod(array.shape) == 0:
        return True
    if isinstance(array, np.ndarray):
        if math.isfinite(float(np.sum(array, dtype=np.float64))):
            return True  # any NaN or inf would have made the sum non-finite
        return bool(np.all(np.isfinite(array)))
    xp = array_api_compat.array_namespace(array)
    return bool(xp.all(xp.isfinite(array)))


def as_network_array(value: Any, name: str, backend: Backend, dtype: str, *, finite: bool = False) -> Any:
    """One array from outside (an input, an assigned parameter) as the network's own.

    ``value`` must be an array of any backend holding real numbers (any int
    or float dtype, float16/bfloat16 included); it comes back on ``backend``'s
    device in ``dtype``, detached from torch's autograd.  With ``finite``,
    NaN/inf are refused.  Errors name ``name``.
    """
    if not is_array(value):
        raise TypeError(f"{name} must be an array (NumPy or the network's backend); got {type(value).__name__}")
    _check_kind(value, name)
    if finite and not all_finite(value):
        raise ValueError(f"{name} holds NaN or infinite values")
    return resident(value, backend, dtype)


def _namespace_of_all(arrays: Sequence[Any]) -> Any:
    """The namespace every element of ``arrays`` shares, with one device, shape and dtype; else ``None``."""
    first = arrays[0]
    if not is_array(first):
        return None
    xp = array_api_compat.array_namespace(first)
    device, shape, dtype = array_api_compat.device(first), tuple(first.shape), first.dtype
    for a in arrays:
        if not is_array(a) or tuple(a.shape) != shape or a.dtype != dtype:
            return None
        if array_api_compat.array_namespace(a) is not xp or array_api_compat.device(a) != device:
            return None
    return xp


# -- the stacked form ------------------------------------------------------------------------------
def _check_stacked(inputs: Any, labels: Any, name: str) -> None:
    """``inputs (n, n_in)`` and ``labels (n,)``/``(n, n_out)`` arrays of real numbers (errors name ``name``)."""
    for what, array in (("inputs", inputs), ("labels", labels)):
        if not is_array(array):
            raise TypeError(f"{name}: {what} must be an array (NumPy or any backend's); got {type(array).__name__}")
    if inputs.ndim != 2:
        raise ValueError(f"{name}: inputs must have shape (n, n_in) (one sample per row); got {tuple(inputs.shape)}")
    n = inputs.shape[0]
    if labels.ndim not in (1, 2) or labels.shape[0] != n:
        raise ValueError(
            f"{name}: labels must have shape ({n},) or ({n}, n_out) to match {n} inputs; got {tuple(labels.shape)}"
        )
    _check_kind(inputs, f"{name}: inputs")
    _check_kind(labels, f"{name}: labels", "int labels or real target rows")


class Dataset:
    """Stacked data, checked once: what every other form is converted to.

    Parameters
    ----------
    inputs:
        ``(n, n_in)`` array of real numbers (any int or float dtype) of any
        backend (NumPy, CuPy, torch, JAX, array-api-strict), or of ``uint8``
        together with ``divisor``.
    labels:
        ``(n,)`` int labels or ``(n, n_out)`` float target rows, of any backend.
    divisor:
        For compact inputs: the finite number > 0 each stored input is divided
        by before use (``255.0`` for MNIST pixels).  Scaling happens on the
        device per mini-batch, in the network's dtype, so it is bit for bit
        ``inputs.astype(dtype) / divisor``.

    Arrays of the network's own backend and device are used where they are
    (no host round trip); arrays of another backend or device are converted
    once, on first use, and the copy is cached here per (backend, device,
    dtype).  The constructor does not copy; treat the arrays as read-only
    afterwards.  ``data[a:b]``, ``data[idx]`` (int index array or boolean
    mask) and ``len(data)`` behave as for the book's lists: a slice is a new
    :class:`Dataset` (views where the backend allows).
    """

    def __init__(self, inputs: Any, labels: Any, *, divisor: float | None = None) -> None:
        _check_stacked(inputs, labels, "Dataset")
        self.inputs = inputs
        self.labels = labels
        self.divisor = check_divisor(divisor)
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
        return (
            f"Dataset(inputs {tuple(self.inputs.shape)} {self.inputs.dtype}{scale}, labels {tuple(self.labels.shape)})"
        )

    def __getitem__(self, index: Any) -> Dataset:
        """The rows ``index`` (a slice, an int index array or list, a boolean mask) as a new :class:`Dataset`."""
        if isinstance(index, slice):
            start, stop, step = index.indices(self.n)
            if step == 1:  # normalised bounds: out-of-range slice stops are not in the standard
                rows = slice(start, max(start, stop))
                return Dataset(self.inputs[rows, ...], self.labels[rows, ...], divisor=self.divisor)
            rows_idx = np.arange(start, stop, step)
        else:
            rows_idx = _row_indices(index, self.n)
        return Dataset(_take_rows(self.inputs, rows_idx), _take_rows(self.labels, rows_idx), divisor=self.divisor)

    def subset(self, rows: slice) -> Dataset:
        """``self[rows]`` (kept for existing code)."""
        return self[rows]

    def float_inputs(self, dtype: str) -> np.ndarray:
        """``(n, n_in)`` inputs of ``dtype`` on the host (scaled when compact)."""
        host = host_array(self.inputs)
        if self.divisor is None:
            return host.astype(dtype, copy=False)
        return host.astype(dtype) / np.asarray(self.divisor, dtype=dtype)


def _row_indices(index: Any, n: int) -> np.ndarray:
    """An int index array/list or a boolean mask of ``n`` rows as host int64 row numbers."""
    if isinstance(index, (bool, np.bool_)) or isinstance(index, (int, np.integer)):
        raise TypeError(
            "a Dataset is indexed by a slice, an int index array or a boolean mask (data[i:i+1] for one row); "
            f"got {type(index).__name__}"
        )
    try:
        rows = host_array(index) if is_array(index) else np.asarray(index)
    except (TypeError, ValueError):
        rows = np.asarray(None)
    if rows.dtype.kind == "b":
        if rows.shape != (n,):
            raise IndexError(f"a boolean mask over a Dataset of {n} rows must have shape ({n},); got {rows.shape}")
        return np.flatnonzero(rows)
    if rows.ndim != 1 or (rows.dtype.kind not in "iu" and rows.size):
        raise TypeError(f"Dataset index must be a slice, a 1-D int index array or a boolean mask; got {index!r:.80}")
    rows = rows.astype(np.int64)
    if rows.size and (rows.min() < -n or rows.max() >= n):
        raise IndexError(f"Dataset index out of range for {n} rows")
    return np.where(rows < 0, rows + n, rows)


def _take_rows(array: Any, rows: np.ndarray) -> Any:
    """``array[rows]`` along the first axis, in ``array``'s own namespace and device (NumPy: a view for steps)."""
    if isinstance(array, np.ndarray):
        step = int(rows[1] - rows[0]) if rows.size > 1 else 1
        if rows.size > 1 and step != 0 and np.all(np.diff(rows) == step):  # an arithmetic progression: a strided view
            stop = int(rows[-1]) + step
            return array[int(rows[0]) : (stop if stop >= 0 else None) : step]
        return array[rows]
    xp = array_api_compat.array_namespace(array)
    return xp.take(array, xp.asarray(rows, device=array_api_compat.device(array)), axis=0)


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


def _stacked(data: tuple[Any, Any], name: str) -> Dataset:
    inputs, labels = data
    _check_stacked(inputs, labels, name)
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
        xp = _namespace_of_all(xs)
        if xp is not None:
            _check_kind(xs[0], f"{name}[0]: x")
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
        _check_kind(x, f"{name}[{i}]: x")
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
    _check_kind(first, f"{name}: y")
    xp = _namespace_of_all(ys)
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
    _check_kind(targets, f"{name}: targets")
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
    return _from_host(dataset.float_inputs(dtype), backend, dtype)


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
