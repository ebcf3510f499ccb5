"""The book's ``mnist_loader`` module, for its scripts: ``import mnist_loader`` becomes
``from portable_nn import mnist_loader``.

``load_data()`` and ``load_data_wrapper()`` take no argument, as the book's,
and read ``$PORTABLE_NN_DATA`` -- the book's ``../data/mnist.pkl.gz`` (read
safely, :mod:`portable_nn._data.bookpickle`) or a directory of IDX files -- else
the per-user cache (downloading the IDX files there); either also takes a
path.  ``vectorized_result(j)`` is the book's one-hot column.
"""

from __future__ import annotations

from ._data.mnist import load_data, load_data_wrapper
from .network2 import vectorized_result

__all__ = ["load_data", "load_data_wrapper", "vectorized_result"]
