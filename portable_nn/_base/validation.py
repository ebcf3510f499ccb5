"""Argument checks shared by the network and the command line.

Every error names the argument and says what was expected, and every check
runs before anything is changed, so bad input never leaves a network
half-updated.
"""

from __future__ import annotations

import argparse
import math
import numbers
import os
from collections.abc import Callable, Mapping, Set
from typing import Any

from .limits import parameter_count

FLOAT_DTYPES = ("float32", "float64")

#: Most weights and biases a network may have (float64: 8 bytes each), checked before anything is
#: allocated; ``$PORTABLE_NN_MAX_PARAMETERS`` raises it (the default is 400 MB of float64; the book's
#: largest network has about 2·10**6).
MAX_PARAMETERS_ENV = "PORTABLE_NN_MAX_PARAMETERS"
MAX_PARAMETERS_DEFAULT = 5 * 10**7


def max_parameters() -> int:
    """The parameter-count limit in force (``$PORTABLE_NN_MAX_PARAMETERS`` or the default)."""
    text = os.environ.get(MAX_PARAMETERS_ENV, "").strip().replace("_", "")
    if not text:
        return MAX_PARAMETERS_DEFAULT
    if not text.isdigit() or int(text) < 1:
        raise ValueError(f"${MAX_PARAMETERS_ENV} must be a positive integer; got {text!r}")
    return int(text)


def check_sizes(sizes: Any) -> list[int]:
    """``sizes`` must be a sequence (list, tuple, 1-D int array) of at least two positive ints.

    Sets and mappings are refused (their order is not the layer order), and so
    is a network with more than :func:`max_parameters` weights and biases.
    """
    if isinstance(sizes, (str, bytes, Set, Mapping)) or not hasattr(sizes, "__len__") or getattr(sizes, "ndim", 1) != 1:
        raise TypeError(f"sizes must be a list of at least 2 positive ints; got {sizes!r}")
    sizes = list(sizes)
    if len(sizes) < 2:
        raise ValueError(f"sizes must be a list of at least 2 positive ints; got {sizes!r}")
    for s in sizes:
        if isinstance(s, bool) or not isinstance(s, numbers.Integral):
            raise TypeError(f"sizes must be a list of at least 2 positive ints; got {sizes!r}")
        if s < 1:
            raise ValueError(f"sizes must be a list of at least 2 positive ints; got {sizes!r}")
    sizes = [int(s) for s in sizes]
    count = parameter_count(sizes)
    limit = max_parameters()
    if count > limit:
        raise ValueError(
            f"sizes {sizes} mean {count:,} weights and biases, more than the limit of {limit:,}; "
            f"set ${MAX_PARAMETERS_ENV} to allow more"
        )
    checked: list[int] = sizes
    return checked


def check_int(value: Any, name: str, minimum: int) -> int:
    """``value`` must be an int (not a bool) and ``>= minimum``."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be an int >= {minimum}; got {value!r}")
    if value < minimum:
        raise ValueError(f"{name} must be an int >= {minimum}; got {value}")
    return int(value)


def check_eta(eta: Any) -> float:
    """The learning rate must be a finite real number > 0."""
    value = _finite_real(eta, "eta", "a finite number > 0")
    if value <= 0.0:
        raise ValueError(f"eta must be a finite number > 0; got {value}")
    return value


def check_dtype(dtype: Any) -> str:
    """``dtype`` must name a float dtype: ``"float32"`` or ``"float64"``."""
    name = getattr(dtype, "__name__", None) or str(dtype)
    name = name.rsplit(".", 1)[-1]
    if name not in FLOAT_DTYPES:
        raise ValueError(f"dtype must be 'float32' or 'float64'; got {dtype!r}")
    return name


def check_layer_arrays(weights: Any, biases: Any) -> list[int]:
    """Check host parameter lists and return the ``sizes`` they describe.

    ``weights[l]`` must be ``(sizes[l+1], sizes[l])`` and ``biases[l]``
    ``(sizes[l+1], 1)``, real floating-point (or integer) NumPy arrays with
    finite values, with as many biases as weights (at least one layer).
    """
    import numpy as np

    if len(weights) != len(biases) or len(weights) < 1:
        raise ValueError(f"weights and biases must be lists of equal length >= 1; got {len(weights)} and {len(biases)}")
    sizes = [int(weights[0].shape[1])] if getattr(weights[0], "ndim", 0) == 2 else []
    for i, (w, b) in enumerate(zip(weights, biases)):
        if not isinstance(w, np.ndarray) or not isinstance(b, np.ndarray):
            raise TypeError(f"weights[{i}] and biases[{i}] must be arrays")
        if w.ndim != 2 or not sizes or w.shape[1] != sizes[-1]:
            expected = f"(n, {sizes[-1]})" if sizes else "(n_out, n_in)"
            raise ValueError(f"weights[{i}] has shape {w.shape}, expected {expected}")
        if b.shape != (w.shape[0], 1):
            raise ValueError(f"biases[{i}] has shape {b.shape}, expected {(w.shape[0], 1)}")
        for name, a in ((f"weights[{i}]", w), (f"biases[{i}]", b)):
            if a.dtype.kind not in "iuf":
                raise TypeError(f"{name} holds {a.dtype}, expected real numbers")
            if a.dtype.kind == "f" and not np.all(np.isfinite(a)):
                raise ValueError(f"layer {i} holds NaN or infinite values ({name})")
        sizes.append(int(w.shape[0]))
    return check_sizes(sizes)


def _finite_real(value: Any, name: str, what: str) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be {what}; got {value!r}")
    try:
        number = float(value)
    except OverflowError:
        raise ValueError(f"{name} must be {what}; got a number too large for a float") from None
    if not math.isfinite(number):
        raise ValueError(f"{name} must be {what}; got {number}")
    return number


def check_stop_rules(early_stopping_n: Any, schedule_n: Any, watched: object, name: str) -> tuple[int, int]:
    """``(early_stopping_n, schedule_n)`` as ints >= 0; both watch the accuracy on ``watched`` (the data
    argument called ``name``), so either needs it: ``ValueError`` otherwise."""
    early, schedule = check_int(early_stopping_n, "early_stopping_n", 0), check_int(schedule_n, "schedule_n", 0)
    if (early or schedule) and watched is None:
        raise ValueError(f"early_stopping_n and schedule_n watch the accuracy on {name}: pass it")
    return early, schedule


def check_divisor(divisor: Any) -> float | None:
    """A :class:`~portable_nn.Dataset`'s ``divisor``: ``None`` or a finite real number > 0."""
    if divisor is None:
        return None
    value = _finite_real(divisor, "divisor", "None or a finite number > 0 (255.0 for MNIST bytes)")
    if value <= 0.0:
        raise ValueError(f"divisor must be None or a finite number > 0 (255.0 for MNIST bytes); got {value}")
    return value


def check_lmbda(lmbda: Any) -> float:
    """The regularisation parameter must be a finite real number >= 0."""
    value = _finite_real(lmbda, "lmbda", "a finite number >= 0")
    if value < 0.0:
        raise ValueError(f"lmbda must be a finite number >= 0; got {value}")
    return value


def check_mu(mu: Any) -> float:
    """The momentum coefficient must be a real number in [0, 1)."""
    value = _finite_real(mu, "mu", "a number in [0, 1)")
    if not 0.0 <= value < 1.0:
        raise ValueError(f"mu must be a number in [0, 1); got {value}")
    return value


def int_at_least(low: int, what: str | None = None) -> Callable[[str], int]:
    """An argparse ``type=`` for the command lines: an int ``>= low``, refused as ``expected WHAT; got '...'``
    (``WHAT``: ``an int >= LOW`` unless given)."""
    expected = what or f"an int >= {low}"

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {expected}; got {text!r}") from None
        if value < low:
            raise argparse.ArgumentTypeError(f"expected {expected}; got {text!r}")
        return value

    return parse
