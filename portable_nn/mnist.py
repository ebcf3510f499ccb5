"""MNIST as NumPy arrays, from a directory of the four IDX files.

``load_mnist(data_dir)`` returns images ``(n, 784)`` scaled to [0, 1] and
integer labels; :func:`load_data_wrapper` gives Nielsen's split and forms.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .idx import IDXFormatError, read_idx

FILES = {
    "train_images": "train-images-idx3-ubyte",
    "train_labels": "train-labels-idx1-ubyte",
    "test_images": "t10k-images-idx3-ubyte",
    "test_labels": "t10k-labels-idx1-ubyte",
}


@dataclass(frozen=True)
class MNIST:
    """The MNIST arrays: images ``(n, 784)`` of ``dtype`` in [0, 1], labels ``(n,)`` int64."""

    train_images: np.ndarray
    train_labels: np.ndarray
    test_images: np.ndarray
    test_labels: np.ndarray


def find_file(data_dir: Path, stem: str) -> Path:
    """``stem.gz`` or ``stem`` in ``data_dir`` (``FileNotFoundError`` naming both)."""
    for name in (stem + ".gz", stem):
        if (data_dir / name).is_file():
            return data_dir / name
    raise FileNotFoundError(f"{data_dir}: neither {stem}.gz nor {stem} found")


def _images(path: Path, dtype: str) -> np.ndarray:
    raw = read_idx(path, ndim=3)
    if raw.shape[1:] != (28, 28):
        raise IDXFormatError(f"{path}: expected 28x28 images, the header says {raw.shape[1:]}")
    return (raw.reshape(raw.shape[0], 784).astype(dtype)) / np.asarray(255.0, dtype=dtype)


def _labels(path: Path) -> np.ndarray:
    raw = read_idx(path, ndim=1)
    if raw.size and raw.max() > 9:
        raise IDXFormatError(f"{path}: labels must be digits 0-9, found {int(raw.max())}")
    return raw.astype(np.int64)


def read_mnist_dir(data_dir: str | os.PathLike[str], dtype: str = "float64") -> MNIST:
    """Read the four MNIST IDX files from ``data_dir`` and check they belong together."""
    data_dir = Path(data_dir)
    arrays = {}
    for key, stem in FILES.items():
        path = find_file(data_dir, stem)
        arrays[key] = _images(path, dtype) if key.endswith("images") else _labels(path)
    for split in ("train", "test"):
        n_img, n_lab = arrays[f"{split}_images"].shape[0], arrays[f"{split}_labels"].shape[0]
        if n_img != n_lab:
            raise IDXFormatError(
                f"{data_dir}: {split} set has {n_img} images but {n_lab} labels"
            )
    return MNIST(**arrays)
