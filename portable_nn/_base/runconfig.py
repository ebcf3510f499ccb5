"""The one vocabulary of a training run: option names, their values and defaults, for ``train``, ``sweep`` and the API.

Both ``portable-nn train`` (:class:`portable_nn.cli.config.RunConfig`) and
``portable-nn sweep`` (:data:`portable_nn.sweep.space.DEFAULTS`) draw their
values and defaults from here:

* :data:`CHAPTER1` is the book's chapter-1 run, the default of ``train``
  (quadratic cost, ``large`` N(0, 1) weights, eta 3.0, lambda 0).
* :data:`CHAPTER3` is chapter 3's run, what a sweep's unswept options take
  (cross-entropy cost, ``scaled`` N(0, 1/n_in) weights, eta 0.5, lambda 5.0);
  the sweep's help says so.

Weight initialisations are named ``large`` (N(0, 1), chapter 1's and
``network2.Network.large_weight_initializer``) and ``scaled`` (N(0, 1/n_in),
``network2.Network.default_weight_initializer``).  The old sweep spelling
``init=default`` is still accepted, with a one-line :class:`FutureWarning`
(:func:`canonical_value`).
"""

from __future__ import annotations

import warnings
from typing import Any

__all__ = ["ACTIVATIONS", "CHAPTER1", "CHAPTER3", "INITS", "RENAMED_VALUES", "canonical_value", "renamed_note"]

#: Weight initialisations: N(0, 1) (chapter 1) and N(0, 1/n_in) (chapter 3's default).
INITS = ("large", "scaled")
#: Hidden-neuron activations.
ACTIVATIONS = ("sigmoid", "tanh", "relu")
#: Old spellings still accepted: {option: {old value: new value}}.
RENAMED_VALUES: dict[str, dict[str, str]] = {"init": {"default": "scaled"}}

#: The book's chapter-1 run (``portable-nn train``'s defaults).
CHAPTER1: dict[str, Any] = {
    "sizes": (784, 30, 10),
    "epochs": 30,
    "batch_size": 10,
    "eta": 3.0,
    "lmbda": 0.0,
    "momentum": 0.0,
    "cost": "quadratic",
    "init": "large",
    "activation": "sigmoid",
    "backend": "numpy",
    "dtype": "float64",
}
#: Chapter 3's run (the values of a sweep's unswept options).
CHAPTER3: dict[str, Any] = {**CHAPTER1, "cost": "cross-entropy", "init": "scaled", "eta": 0.5, "lmbda": 5.0}


def renamed_note(option: str, value: str) -> str | None:
    """The one-line deprecation note for an old spelling of ``option``'s value (``None`` if it is not one)."""
    new = RENAMED_VALUES.get(option, {}).get(value)
    return None if new is None else f"{option}={value} is now spelled {option}={new} (the old name still works)"


def canonical_value(option: str, value: str) -> str:
    """``value`` in today's spelling; an old spelling warns once (:class:`FutureWarning`) and is translated."""
    note = renamed_note(option, value)
    if note is None:
        return value
    warnings.warn(note, FutureWarning, stacklevel=2)
    return RENAMED_VALUES[option][value]
