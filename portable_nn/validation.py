"""Argument checks shared by the network and the command line.

Every error names the argument and says what was expected, and every check
runs before anything is changed, so bad input never leaves a network
half-updated.
"""

from __future__ import annotations

import math
import numbers
from typing import Any

FLOAT_DTYPES = ("float32", "float64")


def check_sizes(sizes: Any) -> list[int]:
    """``sizes`` must be a sequence of at least two positive ints."""
    if isinstance(sizes, (str, bytes)) or not hasattr(sizes, "__len__"):
        raise TypeError(f"sizes must be a list of at least 2 positive ints; got {sizes!r}")
    sizes = list(sizes)
    if len(sizes) < 2:
        raise ValueError(f"sizes must be a list of at least 2 positive ints; got {sizes!r}")
    for s in sizes:
        if isinstance(s, bool) or not isinstance(s, numbers.Integral):
            raise TypeError(f"sizes must be a list of at least 2 positive ints; got {sizes!r}")
        if s < 1:
            raise ValueError(f"sizes must be a list of at least 2 positive ints; got {sizes!r}")
    return [int(s) for s in sizes]


def check_int(value: Any, name: str, minimum: int) -> int:
    """``value`` must be an int (not a bool) and ``>= minimum``."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be an int >= {minimum}; got {value!r}")
    if value < minimum:
        raise ValueError(f"{name} must be an int >= {minimum}; got {value}")
    return int(value)


def check_eta(eta: Any) -> float:
    """The learning rate must be a finite real number > 0."""
    if isinstance(eta, bool) or not isinstance(eta, numbers.Real):
        raise TypeError(f"eta must be a finite number > 0; got {eta!r}")
    eta = float(eta)
    if not math.isfinite(eta) or eta <= 0.0:
        raise ValueError(f"eta must be a finite number > 0; got {eta}")
    return eta


def check_dtype(dtype: Any) -> str:
    """``dtype`` must name a float dtype: ``"float32"`` or ``"float64"``."""
    name = getattr(dtype, "__name__", None) or str(dtype)
    name = name.rsplit(".", 1)[-1]
    if name not in FLOAT_DTYPES:
        raise ValueError(f"dtype must be 'float32' or 'float64'; got {dtype!r}")
    return name
