"""Training data for the benchmark workers, and a tiny synthetic MNIST for smoke runs.

Workers read MNIST through the package's public loader (:func:`portable_nn.load_mnist`).
In ``--synthetic`` mode the parent first writes a small set of random IDX files
with MNIST's names, so every code path -- the loaders, ``load_data_wrapper``,
the ``portable-nn train`` console script -- runs exactly as on real data.
"""

from __future__ import annotations

import gzip
import struct
from pathlib import Path

import numpy as np

N_IN, N_OUT = 784, 10

#: MNIST's four file stems, as :mod:`portable_nn._data.mnist` looks for them.
STEMS = {
    "train_images": "train-images-idx3-ubyte",
    "train_labels": "train-labels-idx1-ubyte",
    "test_images": "t10k-images-idx3-ubyte",
    "test_labels": "t10k-labels-idx1-ubyte",
}


def _idx_bytes(array: np.ndarray) -> bytes:
    """An unsigned-byte IDX file: magic ``0x0000 08 ndim``, big-endian dims, data."""
    header = struct.pack(">BBBB", 0, 0, 0x08, array.ndim) + struct.pack(f">{array.ndim}I", *array.shape)
    return header + np.ascontiguousarray(array, dtype=np.uint8).tobytes()


def write_synthetic_mnist(directory: Path, n_train: int, n_test: int, seed: int = 0) -> Path:
    """Write random ``.gz`` IDX files named like MNIST's into ``directory``; return it."""
    rng = np.random.default_rng(seed)
    directory.mkdir(parents=True, exist_ok=True)
    arrays = {
        "train_images": rng.integers(0, 256, (n_train, 28, 28)),
        "train_labels": rng.integers(0, N_OUT, n_train),
        "test_images": rng.integers(0, 256, (n_test, 28, 28)),
        "test_labels": rng.integers(0, N_OUT, n_test),
    }
    for key, stem in STEMS.items():
        (directory / f"{stem}.gz").write_bytes(gzip.compress(_idx_bytes(arrays[key]), compresslevel=1))
    return directory


def training_arrays(data_dir: str, n: int, dtype: str = "float64") -> tuple[np.ndarray, np.ndarray]:
    """The first ``n`` training images ``(n, 784)`` of ``dtype`` and their labels ``(n,)`` int64."""
    from portable_nn import load_mnist

    (images, labels), _ = load_mnist(data_dir, download=False, dtype=dtype)
    if images.shape[0] < n:
        raise ValueError(f"{data_dir} has {images.shape[0]} training images; {n} asked for")
    return images[:n], labels[:n]  # row slices of C-contiguous arrays: contiguous views, no copy
