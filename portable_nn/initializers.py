"""Random numbers for the network, drawn on the host with NumPy.

The Array API standard has no random number generation, and libraries that do
have one disagree on streams.  Drawing with ``numpy.random.default_rng(seed)``
and then moving the result to the backend means the same seed gives the same
initial weights and the same mini-batch order on every backend.
"""

from __future__ import annotations

import numpy as np


def make_rng(seed: int | np.random.Generator | None) -> np.random.Generator:
    """A NumPy ``Generator`` from a seed (``None`` draws fresh OS entropy)."""
    if isinstance(seed, np.random.Generator):
        return seed
    if seed is not None and (isinstance(seed, bool) or not isinstance(seed, (int, np.integer))):
        raise TypeError(f"seed must be an int, a numpy.random.Generator or None; got {seed!r}")
    if seed is not None and seed < 0:
        raise ValueError(f"seed must be a non-negative int; got {seed}")
    return np.random.default_rng(seed)


def gaussian_layers(sizes: list[int], rng: np.random.Generator) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Nielsen's initialisation: every bias and weight drawn from N(0, 1).

    Returns ``(biases, weights)`` as float64 NumPy arrays: ``biases[l]`` has
    shape ``(sizes[l+1], 1)`` and ``weights[l]`` shape ``(sizes[l+1], sizes[l])``.
    Biases are drawn first, then weights, layer by layer, as in ``network.py``.
    """
    biases = [rng.standard_normal((y, 1)) for y in sizes[1:]]
    weights = [rng.standard_normal((y, x)) for x, y in zip(sizes[:-1], sizes[1:])]
    return biases, weights


def scaled_gaussian_layers(sizes: list[int], rng: np.random.Generator) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """The book's ``default_weight_initializer``: biases N(0, 1), weights N(0, 1/n_in).

    Same draws and order as :func:`gaussian_layers`, each weight matrix divided by ``sqrt(n_in)``.
    """
    biases, weights = gaussian_layers(sizes, rng)
    return biases, [w / np.sqrt(w.shape[1]) for w in weights]


def permutation(rng: np.random.Generator, n: int) -> np.ndarray:
    """A random ordering of ``range(n)`` as an ``int64`` array (one epoch's shuffle)."""
    return rng.permutation(n).astype(np.int64)
