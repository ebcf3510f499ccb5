"""The data-set containers: :class:`Dataset` (stacked arrays of any backend), :class:`BookPairs` (the book's
list of pairs with a :class:`Dataset` behind it) and :class:`DeviceData` (a data set resident on a backend).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, SupportsIndex, TypeVar

import array_api_compat
import numpy as np

from .._base.validation import check_divisor
from .arrays import check_kind, host_array, is_array


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


# -- the stacked form ------------------------------------------------------------------------------
def check_stacked(inputs: Any, labels: Any, name: str) -> None:
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
    check_kind(inputs, f"{name}: inputs")
    check_kind(labels, f"{name}: labels", "int labels or real target rows")


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
        check_stacked(inputs, labels, "Dataset")
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
        scaled: np.ndarray = host.astype(dtype) / np.asarray(self.divisor, dtype=dtype)
        return scaled


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
