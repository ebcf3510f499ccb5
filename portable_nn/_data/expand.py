"""The book's expanded MNIST training set: every image plus four one-pixel shifts.

Chapter 6 trains its best networks on ``mnist_expanded.pkl.gz``, made by the
book's ``expand_mnist.py``: each of the 50,000 training images is kept and
followed by copies displaced by one pixel, in this order (``np.roll`` then
zeroing the row or column that wrapped around)::

    original
    down   np.roll(img,  1, axis=0), row 0 zeroed
    up     np.roll(img, -1, axis=0), row 27 zeroed
    right  np.roll(img,  1, axis=1), column 0 zeroed
    left   np.roll(img, -1, axis=1), column 27 zeroed

giving 250,000 images.  This is host-side data preparation, so it is plain
NumPy.  :func:`expand_mnist` does it without a per-image loop;
:func:`expanded_mnist` builds the set once from the IDX files and caches it as
an uncompressed ``.npz`` of ``uint8`` pixels (196 MB).

The book's script finally shuffles the 250,000 pairs with an unseeded
``random.shuffle`` (``network3.SGD`` does not reshuffle between epochs).  Here
the cache keeps the deterministic order; pass ``shuffle_seed`` to
:func:`expanded_mnist` for a reproducible shuffle.
"""

from __future__ import annotations

import hashlib
import os
import zipfile
from pathlib import Path

import numpy as np

from .._base.atomic import atomic_write, remove_stale_temporaries
from .mnist import FILES, default_cache_dir, existing_file, load_mnist, resolve_data_dir

__all__ = ["CACHE_NAME", "SHIFT_ORDER", "expand_mnist", "expanded_mnist"]

#: The four shifts after the original, in the book's order: ``(name, roll amount, roll axis)``.
SHIFT_ORDER: tuple[tuple[str, int, int], ...] = (
    ("down", 1, 0),
    ("up", -1, 0),
    ("right", 1, 1),
    ("left", -1, 1),
)

#: File name of the cache in ``cache_dir``.
CACHE_NAME = "mnist_expanded.npz"

#: Copies per original image: itself and its four shifts.
COPIES = 1 + len(SHIFT_ORDER)


def expand_mnist(
    images: np.ndarray, labels: np.ndarray, image_shape: tuple[int, int] = (28, 28)
) -> tuple[np.ndarray, np.ndarray]:
    """Each image followed by its copies shifted one pixel down, up, right and left.

    Parameters
    ----------
    images:
        ``(n, rows*cols)`` flattened images (row-major), any dtype (``uint8``
        pixels or floats in [0, 1]).
    labels:
        ``(n,)`` labels, any dtype.
    image_shape:
        ``(rows, cols)`` of one image; MNIST's ``(28, 28)`` by default.

    Returns
    -------
    ``(expanded_images (5n, rows*cols), expanded_labels (5n,))`` with the
    dtypes of the inputs.  Rows ``5i .. 5i+4`` are image ``i``: original,
    down, up, right, left (:data:`SHIFT_ORDER`), the pixels shifted in from
    outside being 0 -- exactly the book's ``expand_mnist.py`` before its
    final shuffle.
    """
    images = np.asarray(images)
    labels = np.asarray(labels)
    rows, cols = image_shape
    if images.ndim != 2 or images.shape[1] != rows * cols:
        raise ValueError(f"images must have shape (n, {rows * cols}) for {rows}x{cols} images; got {images.shape}")
    if labels.shape != (images.shape[0],):
        raise ValueError(f"labels must have shape ({images.shape[0]},); got {labels.shape}")
    if rows < 2 or cols < 2:
        raise ValueError(f"images must be at least 2x2 to shift; got {rows}x{cols}")
    n = images.shape[0]
    src = images.reshape(n, rows, cols)
    out = np.zeros((n, COPIES, rows, cols), dtype=images.dtype)
    out[:, 0] = src
    out[:, 1, 1:, :] = src[:, :-1, :]  # down: row 0 stays zero
    out[:, 2, :-1, :] = src[:, 1:, :]  # up: last row stays zero
    out[:, 3, :, 1:] = src[:, :, :-1]  # right: column 0 stays zero
    out[:, 4, :, :-1] = src[:, :, 1:]  # left: last column stays zero
    return out.reshape(n * COPIES, rows * cols), np.repeat(labels, COPIES)


def _source_fingerprint(data_dir: Path, n_train: int) -> str | None:
    """SHA-256 of the training IDX files and ``n_train``; ``None`` when the files are missing."""
    digest = hashlib.sha256(f"n_train={n_train};".encode())
    for key in ("train_images", "train_labels"):
        path = existing_file(data_dir, FILES[key])
        if path is None:
            return None
        digest.update(path.name.encode())
        with open(path, "rb") as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                digest.update(block)
    return digest.hexdigest()


def _read_cache(path: Path, n_train: int, fingerprint: str | None) -> tuple[np.ndarray, np.ndarray] | None:
    """The cached arrays if ``path`` holds a valid expansion of this source, else ``None``."""
    if not path.is_file():
        return None
    total = COPIES * n_train
    try:
        # Our own handle: np.load leaks its file when the zip directory is unreadable.
        with open(path, "rb") as handle, np.load(handle, allow_pickle=False) as archive:
            if set(archive.files) != {"images", "labels", "source"}:
                return None
            source = str(archive["source"])
            images = archive["images"]
            labels = archive["labels"]
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile):
        return None
    if images.dtype != np.uint8 or images.shape != (total, 784):
        return None
    if labels.dtype != np.int64 or labels.shape != (total,):
        return None
    if total and (
        labels.min() < 0 or labels.max() > 9 or np.any(labels.reshape(n_train, COPIES) != labels[::COPIES, None])
    ):
        return None
    if fingerprint is not None and source != fingerprint:
        return None
    return images, labels


def expanded_mnist(
    data_dir: str | os.PathLike[str] | None = None,
    cache_dir: str | os.PathLike[str] | None = None,
    *,
    n_train: int = 50_000,
    dtype: str = "uint8",
    shuffle_seed: int | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """The expanded training set, built once from the MNIST IDX files and cached.

    Parameters
    ----------
    data_dir:
        Directory of the MNIST IDX files, as for
        :func:`portable_nn._data.mnist.load_mnist` (nothing is downloaded).
    cache_dir:
        Where ``mnist_expanded.npz`` is kept; default the per-user cache
        (``$XDG_CACHE_HOME/portable_nn/mnist``).
    n_train:
        How many training images to expand: the book uses the first 50,000
        (the last 10,000 are its validation set).
    dtype:
        ``"uint8"`` (pixels 0-255, 196 MB for the full set), or ``"float32"``
        / ``"float64"`` scaled to [0, 1] as :func:`load_mnist` does (784 MB /
        1.6 GB).
    shuffle_seed:
        ``None`` keeps the book's order before its shuffle (original, down,
        up, right, left per image); an int applies
        ``numpy.random.default_rng(shuffle_seed).permutation`` to the pairs.

    Returns
    -------
    ``(images (5*n_train, 784) of dtype, labels (5*n_train,) int64)``.

    The cache (an uncompressed ``.npz`` with ``images`` uint8, ``labels``
    int64 and ``source``, a SHA-256 of the training IDX files and
    ``n_train``) is written atomically; every call first removes the
    temporaries of builds that were killed (:func:`portable_nn._base.atomic.remove_stale_temporaries`:
    dead writer, untouched for 10 minutes), whether or not the cache is rebuilt.  It is reused when its keys, shapes,
    dtypes, labels and source digest check out -- the digest is only
    compared when the IDX files are present -- and rebuilt otherwise.
    """
    if dtype not in ("uint8", "float32", "float64"):
        raise ValueError(f"dtype must be 'uint8', 'float32' or 'float64'; got {dtype!r}")
    if not isinstance(n_train, int) or isinstance(n_train, bool) or not 0 <= n_train <= 60_000:
        raise ValueError(f"n_train must be an int in [0, 60000]; got {n_train!r}")
    source_dir = resolve_data_dir(data_dir)
    cache_dir = default_cache_dir() if cache_dir is None else Path(cache_dir).expanduser()
    cache_path = cache_dir / CACHE_NAME
    fingerprint = _source_fingerprint(source_dir, n_train)

    remove_stale_temporaries(cache_path)  # a killed build's 196 MB .part, also when the cache is valid
    cached = _read_cache(cache_path, n_train, fingerprint)
    if cached is None:
        (train_x, train_y), _ = load_mnist(source_dir, download=False, dtype="float32")
        if train_x.shape[0] < n_train:
            raise ValueError(f"{source_dir} has only {train_x.shape[0]} training images; n_train={n_train}")
        pixels = np.rint(train_x[:n_train] * np.float32(255.0)).astype(np.uint8)
        del train_x
        images, labels = expand_mnist(pixels, train_y[:n_train].astype(np.int64))
        del pixels
        cache_dir.mkdir(parents=True, exist_ok=True)
        with atomic_write(cache_path) as handle:
            np.savez(handle, images=images, labels=labels, source=np.asarray(fingerprint or ""), allow_pickle=False)
    else:
        images, labels = cached

    if shuffle_seed is not None:
        order = np.random.default_rng(shuffle_seed).permutation(labels.shape[0])
        images, labels = images[order], labels[order]
    if dtype != "uint8":
        scaled = images.astype(dtype)
        scaled /= np.asarray(255.0, dtype=dtype)
        images = scaled
    return images, labels
