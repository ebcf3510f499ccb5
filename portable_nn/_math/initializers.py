"""Random numbers for the networks, drawn on the host with NumPy.

The Array API standard has no random number generation, and libraries that do
have one disagree on streams.  Every draw the package makes is a NumPy draw on
the host, moved to the backend afterwards, so the same seed gives the same
initial weights, the same mini-batch order and the same dropout masks on every
backend.  Where the draws come from is decided by the network's ``seed``:

* ``seed=None`` (the book's way): NumPy's global state, the legacy
  ``RandomState`` behind ``np.random.seed`` and ``np.random.randn``, through
  :class:`GlobalNumPyRandom`.  A script that calls ``np.random.seed(k)``
  first repeats exactly, and the initial weights are the book's own draws
  (``np.random.randn`` for network.py/network2.py, ``np.random.normal`` for
  network3.py).  The draws happen when they are needed (the weights when the
  network is built, each shuffle at the start of its epoch), so they
  interleave with the script's own ``np.random`` calls as in the book.
* ``seed=k`` (an int): ``numpy.random.default_rng(k)``, a generator the
  network owns; the global state is neither read nor advanced.
* a ``numpy.random.Generator``: used as given.

Both sources have the methods of :class:`RandomSource`, the only ones the
package draws with.
"""

from __future__ import annotations

from typing import Any, Protocol

import numpy as np


class RandomSource(Protocol):
    """What the package draws with (a ``numpy.random.Generator`` has all of it)."""

    def standard_normal(self, size: Any) -> Any:
        """N(0, 1) float64 samples of shape ``size``."""
        ...

    def normal(self, loc: float, scale: float, size: Any) -> Any:
        """N(loc, scale²) float64 samples of shape ``size``."""
        ...

    def permutation(self, x: int) -> Any:
        """A random ordering of ``range(x)``."""
        ...

    def integers(self, low: int, high: int, size: Any, dtype: Any) -> Any:
        """Uniform integers in ``[low, high)`` of ``dtype``."""
        ...

    def random(self, size: Any, dtype: Any) -> Any:
        """Uniform floats in ``[0, 1)`` (compared against a probability, so the width does not matter)."""
        ...


class GlobalNumPyRandom:
    """:class:`RandomSource` on NumPy's global state (``np.random.seed``), through public module functions only.

    ``standard_normal`` and ``normal`` are ``np.random.standard_normal`` and
    ``np.random.normal`` (the values of the book's ``np.random.randn`` and
    ``np.random.normal``), ``permutation`` is ``np.random.permutation``,
    ``integers`` ``np.random.randint``, ``random`` ``np.random.random_sample``
    (float64, cast to ``dtype``).
    """

    def standard_normal(self, size: Any) -> Any:
        return np.random.standard_normal(size)  # noqa: NPY002 - the global state, on purpose

    def normal(self, loc: float, scale: float, size: Any) -> Any:
        return np.random.normal(loc, scale, size)  # noqa: NPY002 - the global state, on purpose

    def permutation(self, x: int) -> Any:
        return np.random.permutation(x)  # noqa: NPY002 - the global state, on purpose

    def integers(self, low: int, high: int, size: Any, dtype: Any) -> Any:
        return np.random.randint(low, high, size=size, dtype=dtype)  # noqa: NPY002 - the global state, on purpose

    def random(self, size: Any, dtype: Any = np.float64) -> Any:
        return np.random.random_sample(size).astype(dtype, copy=False)  # noqa: NPY002 - the global state, on purpose

    def __repr__(self) -> str:
        return "GlobalNumPyRandom()"


#: The one source for every network built with ``seed=None`` (it holds no state of its own).
GLOBAL = GlobalNumPyRandom()


def make_rng(seed: int | RandomSource | None) -> RandomSource:
    """The network's source of random numbers (see the module docstring).

    ``None``: :data:`GLOBAL` (NumPy's global state); an int ``>= 0``:
    ``numpy.random.default_rng(seed)``; a source already made (a ``Generator``,
    or :data:`GLOBAL`): itself, so its stream continues.
    """
    if seed is None:
        return GLOBAL
    if isinstance(seed, (np.random.Generator, GlobalNumPyRandom)):
        return seed
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)):
        raise TypeError(f"seed must be an int, a numpy.random.Generator or None; got {seed!r}")
    if seed < 0:
        raise ValueError(f"seed must be a non-negative int; got {seed}")
    return np.random.default_rng(seed)


def gaussian_layers(sizes: list[int], rng: RandomSource) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Nielsen's initialisation: every bias and weight drawn from N(0, 1).

    Returns ``(biases, weights)`` as float64 NumPy arrays: ``biases[l]`` has
    shape ``(sizes[l+1], 1)`` and ``weights[l]`` shape ``(sizes[l+1], sizes[l])``.
    Biases are drawn first, then weights, layer by layer, as in ``network.py``
    (from the global state, the values of its ``np.random.randn(y, 1)`` and
    ``np.random.randn(y, x)``).
    """
    biases = [rng.standard_normal((y, 1)) for y in sizes[1:]]
    weights = [rng.standard_normal((y, x)) for x, y in zip(sizes[:-1], sizes[1:])]
    return biases, weights


def scaled_gaussian_layers(sizes: list[int], rng: RandomSource) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """The book's ``default_weight_initializer``: biases N(0, 1), weights N(0, 1/n_in).

    Same draws and order as :func:`gaussian_layers`, each weight matrix divided by ``sqrt(n_in)``.
    """
    biases, weights = gaussian_layers(sizes, rng)
    return biases, [w / np.sqrt(w.shape[1]) for w in weights]


def permutation(rng: RandomSource, n: int) -> np.ndarray:
    """A random ordering of ``range(n)`` as an ``int64`` array (one epoch's shuffle)."""
    return np.asarray(rng.permutation(n)).astype(np.int64)
