"""One array from outside into a network's backend: kinds, host copies, conversion, refusals naming the argument.

Dtype kinds are read with the standard's ``isdtype`` (any backend);
float16/bfloat16 are widened in their own namespace before any host copy;
negative strides are made contiguous; a torch tensor is detached from autograd.
Used for single arrays (``feedforward`` inputs, assigned ``weights``/``biases``/``w``/``b``)
and, by :mod:`portable_nn._data.forms`, for the arrays of data sets.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import array_api_compat
import numpy as np

from .._backend.backends import Backend, to_numpy


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


def check_kind(array: Any, name: str, what: str = "real numbers (int or float)") -> str:
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


def from_host(host: np.ndarray, backend: Backend, dtype: str) -> Any:
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
    return from_host(host_array(array), backend, dtype)


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
    check_kind(value, name)
    if finite and not all_finite(value):
        raise ValueError(f"{name} holds NaN or infinite values")
    return resident(value, backend, dtype)


def namespace_of_all(arrays: Sequence[Any]) -> Any:
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
