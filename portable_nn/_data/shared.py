"""network3's data as the book's ``load_data_shared`` gives it: ``(x, y)`` pairs of host arrays.

:class:`SharedPair` unpacks and indexes like the book's pair of Theano shared
variables and carries the :class:`portable_nn.Dataset` the networks take in
O(1); :func:`get_value` is the book's ``w.eval()``.
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np

from .._backend.backends import to_numpy
from . import forms as dataforms


class SharedArray(np.ndarray):
    """A host NumPy array that also answers Theano's ``eval()`` and ``get_value()``, as the book's data does.

    A view: creating one copies nothing.  ``eval()`` / ``get_value()``
    return a plain NumPy copy (``get_value(borrow=True)``: a plain view).
    """

    def eval(self) -> np.ndarray:
        """A plain NumPy copy (Theano's ``shared.eval()``)."""
        return np.array(self, copy=True, subok=False)

    def get_value(self, borrow: bool = False) -> np.ndarray:
        """A plain NumPy copy, or a view when ``borrow`` (Theano's ``shared.get_value(borrow=...)``)."""
        return self.view(np.ndarray) if borrow else self.eval()


class SharedPair(tuple[SharedArray, SharedArray]):
    """One data set as the book's ``load_data_shared`` gives it: ``(x, y)``.

    ``x``: ``(n, 784)`` float32 images, ``y``: ``(n,)`` int64 labels, both
    :class:`SharedArray` views (so ``test_x, test_y = test_data``,
    ``test_data[0].eval()`` and ``test_y.eval()`` work as in the book's
    ``conv.py``).  ``dataset`` is the :class:`portable_nn.Dataset` over the
    same memory, which ``SGD``, ``accuracy`` and ``predictions`` take in O(1)
    (its device copies are kept on it).
    """

    dataset: dataforms.Dataset

    def __new__(cls, inputs: np.ndarray, labels: np.ndarray) -> SharedPair:
        pair = super().__new__(cls, (inputs.view(SharedArray), labels.view(SharedArray)))
        pair.dataset = dataforms.Dataset(inputs.view(np.ndarray), labels.view(np.ndarray))
        return pair

    def __repr__(self) -> str:
        return f"SharedPair(x {self[0].shape} {self[0].dtype}, y {self[1].shape} {self[1].dtype})"

    @property
    def n(self) -> int:
        """Number of samples (``len(pair)`` is 2, as for the book's pair)."""
        return self.dataset.n

    @property
    def inputs(self) -> np.ndarray:
        """The ``(n, 784)`` images as a plain NumPy array (the :class:`Dataset`'s)."""
        inputs: np.ndarray = self.dataset.inputs
        return inputs

    @property
    def labels(self) -> np.ndarray:
        """The ``(n,)`` int64 labels as a plain NumPy array."""
        labels: np.ndarray = self.dataset.labels
        return labels

    def subset(self, rows: slice) -> SharedPair:
        """The rows ``rows`` as a new pair (views, no copy), as :meth:`portable_nn.Dataset.subset`."""
        return SharedPair(self.inputs[rows], self.labels[rows])


def get_value(array: Any) -> np.ndarray:
    """A NumPy copy of ``array`` from any backend: the book's ``w.eval()`` / ``w.get_value()``.

    ``network3.get_value(net.layers[0].w)`` gives the first layer's filters
    ``(20, 1, 5, 5)`` on the host whatever the backend (``to_numpy`` plus a
    copy, so changing it never changes the network).
    """
    return np.array(to_numpy(array), copy=True)


def size(data: Any) -> int:
    """The book's ``size(data)``: the number of samples of a data set (``data[0].get_value(borrow=True).shape[0]``)."""
    if isinstance(data, (SharedPair, dataforms.Dataset)):
        return data.n
    return int(data[0].shape[0])


def load_data_shared(
    filename: str | os.PathLike[str] | None = None, *, download: bool = True
) -> tuple[SharedPair, SharedPair, SharedPair]:
    """The book's ``load_data_shared(filename)``: ``(training, validation, test)`` as :class:`SharedPair`.

    ``filename``: one of the book's pickle files (``mnist.pkl.gz``;
    ``mnist_expanded.pkl.gz`` gives 250,000 training images), read without
    running pickle code (:mod:`portable_nn._data.bookpickle`) and never downloaded;
    or a directory of MNIST IDX files (default: ``$PORTABLE_NN_DATA``, else the
    per-user cache, downloading when ``download``), split 50,000/10,000/10,000.
    Images are float32 ``(n, 784)`` in [0, 1], labels int64 -- the book's
    shared variables hold the same float32 arrays; nothing else is copied.
    """
    from .mnist import load_splits

    training, validation, test = load_splits(filename, download=download, dtype="float32")
    return SharedPair(*training), SharedPair(*validation), SharedPair(*test)


def load_expanded_training_data(
    data_dir: str | os.PathLike[str] | None = None, cache_dir: str | os.PathLike[str] | None = None
) -> dataforms.Dataset:
    """The book's ``mnist_expanded`` training set (250,000 images: each one and its four 1-pixel shifts).

    ``data_dir`` a directory of IDX files: built from them and cached
    atomically by :func:`portable_nn._data.expand.expanded_mnist` (``uint8``
    pixels / 255).  ``data_dir`` the book's ``mnist_expanded.pkl.gz`` (made
    by its ``expand_mnist.py``): its training images, float32, read safely
    (:mod:`portable_nn._data.bookpickle`); a missing file is ``FileNotFoundError``.
    """
    from .expand import expanded_mnist
    from .mnist import is_pickle_source, load_splits, resolve_data_dir

    if is_pickle_source(resolve_data_dir(data_dir)):
        (images, labels), _, _ = load_splits(data_dir, download=False)
        return dataforms.Dataset(images, labels)
    images, labels = expanded_mnist(data_dir, cache_dir)
    return dataforms.Dataset(images, labels, divisor=255.0)
