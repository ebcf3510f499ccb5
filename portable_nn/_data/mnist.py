"""MNIST as NumPy arrays, from a directory of the four IDX files or the book's pickle files.

``load_mnist(data_dir)`` returns images ``(n, 784)`` scaled to [0, 1] and
integer labels from IDX files; :func:`load_data` and :func:`load_data_wrapper`
give Nielsen's split and forms, from IDX files or the book's ``mnist.pkl.gz``
(read by :mod:`portable_nn._data.bookpickle`, never by ``pickle.load``).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .forms import BookPairs, Dataset
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


def existing_file(data_dir: Path, stem: str) -> Path | None:
    """``stem.gz`` or ``stem`` in ``data_dir``, or ``None`` when neither exists."""
    for name in (stem + ".gz", stem):
        if (data_dir / name).is_file():
            return data_dir / name
    return None


def find_file(data_dir: Path, stem: str) -> Path:
    """``stem.gz`` or ``stem`` in ``data_dir`` (``FileNotFoundError`` naming both)."""
    path = existing_file(data_dir, stem)
    if path is None:
        raise FileNotFoundError(f"{data_dir}: neither {stem}.gz nor {stem} found")
    return path


def _images(path: Path, dtype: str) -> np.ndarray:
    raw = read_idx(path, ndim=3)
    if raw.shape[1:] != (28, 28):
        raise IDXFormatError(f"{path}: expected 28x28 images, the header says {raw.shape[1:]}")
    flat = raw.reshape(raw.shape[0], 784)
    if dtype == "uint8":
        return flat
    scaled: np.ndarray = flat.astype(dtype) / np.asarray(255.0, dtype=dtype)
    return scaled


def _labels(path: Path) -> np.ndarray:
    raw = read_idx(path, ndim=1)
    if raw.size and raw.max() > 9:
        raise IDXFormatError(f"{path}: labels must be digits 0-9, found {int(raw.max())}")
    return raw.astype(np.int64)


def read_mnist_dir(data_dir: str | os.PathLike[str], dtype: str = "float64") -> MNIST:
    """Read the four MNIST IDX files from ``data_dir`` and check they belong together.

    ``dtype="uint8"`` keeps the raw pixel bytes 0..255 (a quarter of float32's memory).
    """
    data_dir = Path(data_dir)
    arrays = {}
    for key, stem in FILES.items():
        path = find_file(data_dir, stem)
        arrays[key] = _images(path, dtype) if key.endswith("images") else _labels(path)
    for split in ("train", "test"):
        n_img, n_lab = arrays[f"{split}_images"].shape[0], arrays[f"{split}_labels"].shape[0]
        if n_img != n_lab:
            raise IDXFormatError(f"{data_dir}: {split} set has {n_img} images but {n_lab} labels")
    return MNIST(**arrays)


#: Environment variable naming a directory of MNIST files.
DATA_ENV = "PORTABLE_NN_DATA"


def default_cache_dir() -> Path:
    """Per-user cache: ``$XDG_CACHE_HOME/portable_nn/mnist`` or ``~/.cache/portable_nn/mnist``."""
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "portable_nn" / "mnist"


def resolve_data_dir(data_dir: str | os.PathLike[str] | None = None) -> Path:
    """Where MNIST is read from: ``data_dir``, else ``$PORTABLE_NN_DATA``, else the user cache."""
    if data_dir is not None:
        return Path(data_dir).expanduser()
    if os.environ.get(DATA_ENV):
        return Path(os.environ[DATA_ENV]).expanduser()
    return default_cache_dir()


def _missing(data_dir: Path) -> list[str]:
    return [stem for stem in FILES.values() if existing_file(data_dir, stem) is None]


def is_pickle_source(path: Path) -> bool:
    """Whether ``path`` means one of the book's pickle files: an existing regular file, or a pickle's name."""
    from .bookpickle import is_book_pickle

    return path.is_file() or (not path.is_dir() and is_book_pickle(path))


def _missing_pickle(path: Path) -> FileNotFoundError:
    return FileNotFoundError(
        f"{path}: no such file (a file name is read as the book's pickle, never downloaded; the book's "
        "repository has data/mnist.pkl.gz, its src/expand_mnist.py writes data/mnist_expanded.pkl.gz; "
        "or pass a directory of the four MNIST IDX files)"
    )


def _created_directories(directory: Path) -> list[Path]:
    """Create ``directory`` and its missing parents; return those created, deepest first."""
    created = []
    for candidate in (directory, *directory.parents):
        if candidate.exists():
            break
        created.append(candidate)
    directory.mkdir(parents=True, exist_ok=True)
    return created


def _download_missing(directory: Path, missing: list[str], mirrors: tuple[str, ...] | None) -> None:
    """Download ``missing`` files into ``directory``; an offline failure leaves no directory it created."""
    from . import download as downloader

    if not directory.is_dir() and directory != default_cache_dir():
        raise FileNotFoundError(
            f"data directory {directory} does not exist: create it to download MNIST into it, point "
            f"--data-dir / ${DATA_ENV} at a directory holding the four files, or leave both out to "
            f"download into the cache {default_cache_dir()}"
        )
    created = _created_directories(directory)
    try:
        for stem in missing:
            downloader.download_file(stem + ".gz", directory, mirrors=mirrors or downloader.MIRRORS)
    except downloader.DownloadError as exc:
        for path in created:  # deepest first; only empty ones: a file that did arrive is kept
            try:
                path.rmdir()
            except OSError:
                break
        raise downloader.DownloadError(
            f"{exc}\nWithout internet access, put the four MNIST files "
            f"({', '.join(s + '.gz' for s in FILES.values())}) into {directory}, "
            f"or point --data-dir / ${DATA_ENV} at a directory that has them."
        ) from exc


def load_mnist(
    data_dir: str | os.PathLike[str] | None = None,
    *,
    download: bool = True,
    dtype: str = "float64",
    mirrors: tuple[str, ...] | None = None,
) -> tuple[tuple[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]:
    """MNIST as ``(train_images, train_labels), (test_images, test_labels)`` from a directory of IDX files.

    Images are ``(n, 784)`` arrays of ``dtype`` scaled to [0, 1] (``dtype="uint8"``:
    the raw bytes 0..255, unscaled; wrap them in ``Dataset(images, labels,
    divisor=255.0)`` to train on them without a float copy); labels are
    ``(n,)`` int64.  Files are looked for in ``data_dir``, then
    ``$PORTABLE_NN_DATA``, then the per-user cache; missing ones are downloaded
    there when ``download`` is true (verified against pinned SHA-256 digests).
    Files already present are format-checked but not digest-checked, so a
    local copy of the data may differ from the canonical bytes.

    A missing directory is created only for the per-user cache (and removed
    again when nothing could be downloaded); one given by ``data_dir`` or
    ``$PORTABLE_NN_DATA`` must exist (``FileNotFoundError``).  A path naming a
    file (or a missing ``*.pkl.gz``) is never made a directory: the book's
    pickle files are read by :func:`load_data` / :func:`load_data_wrapper`.
    """
    directory = resolve_data_dir(data_dir)
    if directory.exists() and not directory.is_dir():
        raise NotADirectoryError(
            f"{directory} is not a directory: --data-dir / ${DATA_ENV} must name a directory of MNIST files "
            "(the book's .pkl.gz files are read by load_data, load_data_wrapper and network3.load_data_shared)"
        )
    if is_pickle_source(directory):
        raise _missing_pickle(directory)
    missing = _missing(directory)
    if missing and download:
        _download_missing(directory, missing, mirrors)
    elif missing:
        raise FileNotFoundError(
            f"MNIST files missing from {directory}: {', '.join(missing)} (.gz or raw); "
            "download is off, so put them there or choose another --data-dir"
        )
    data = read_mnist_dir(directory, dtype)
    return (data.train_images, data.train_labels), (data.test_images, data.test_labels)


#: One split: ``(images (n, 784), labels (n,) int64)``.
Split = tuple[np.ndarray, np.ndarray]


def load_splits(
    data: str | os.PathLike[str] | None = None, *, download: bool = True, dtype: str = "float32"
) -> tuple[Split, Split, Split]:
    """``(training, validation, test)`` = 50,000/10,000/10,000 ``(images, labels)`` from either source.

    ``data`` is one of the book's pickle files (``mnist.pkl.gz``,
    ``mnist_expanded.pkl.gz``: an existing file, or a name ending in
    ``.pkl.gz``/``.pkl``), read by :func:`portable_nn._data.bookpickle.load_book_mnist`
    -- a missing one is ``FileNotFoundError``, never a download -- or a
    directory of IDX files as for :func:`load_mnist` (whose last 10,000
    training images are the validation set, as in the book).  Images are
    ``dtype`` (``"float32"`` or ``"float64"``) in [0, 1]: the pickle's values
    as stored (no copy for float32), IDX pixels / 255.
    """
    if dtype not in ("float32", "float64"):
        raise ValueError(f"dtype must be 'float32' or 'float64'; got {dtype!r}")
    source = resolve_data_dir(data)
    if is_pickle_source(source):
        from .bookpickle import load_book_mnist

        if not source.is_file():
            raise _missing_pickle(source)
        splits = load_book_mnist(source)
        training, validation, test = ((x.astype(dtype, copy=False), y) for x, y in splits)
        return training, validation, test
    (train_x, train_y), (test_x, test_y) = load_mnist(source, download=download, dtype=dtype)
    return (train_x[:50_000], train_y[:50_000]), (train_x[50_000:], train_y[50_000:]), (test_x, test_y)


def load_data(data: str | os.PathLike[str] | None = None, *, download: bool = True) -> tuple[Split, Split, Split]:
    """Nielsen's ``mnist_loader.load_data()``: ``(training_data, validation_data, test_data)``.

    Each is a pair ``(images (n, 784) float32 in [0, 1], labels (n,) int64)``,
    50,000/10,000/10,000 samples (250,000 training ones from
    ``mnist_expanded.pkl.gz``).  ``data``: the book's ``mnist.pkl.gz`` (or
    any of its pickle files), or a directory of IDX files; see
    :func:`load_splits`.
    """
    return load_splits(data, download=download, dtype="float32")


def load_data_wrapper(
    data_dir: str | os.PathLike[str] | None = None, *, download: bool = True, dtype: str = "float64"
) -> tuple[BookPairs, BookPairs, BookPairs]:
    """Nielsen's ``mnist_loader.load_data_wrapper()``.

    Returns ``(training_data, validation_data, test_data)``: 50,000 pairs
    ``(x (784, 1), y one-hot (10, 1))``, then 10,000 and 10,000 pairs
    ``(x (784, 1), int label)``.  The validation set is the last 10,000
    training images, as in the book.  ``data_dir``: a directory of IDX files
    or one of the book's pickle files (``mnist.pkl.gz``), as for :func:`load_splits`.

    Each is a :class:`portable_nn._data.forms.BookPairs`: a list that behaves
    like the book's (index, slice, iterate, ``zip``), whose ``x`` are views
    into one stacked ``(n, 784)`` array that the list also carries, so a
    network takes it without converting 50,000 pairs.
    """
    (train_x, train_y), (valid_x, valid_y), (test_x, test_y) = load_splits(data_dir, download=download, dtype=dtype)
    eye = np.eye(10, dtype=dtype)
    onehots = eye[train_y].reshape(-1, 10, 1)
    training = BookPairs(zip(train_x.reshape(-1, 784, 1), onehots), Dataset(train_x, onehots[:, :, 0]))
    validation = BookPairs(zip(valid_x.reshape(-1, 784, 1), valid_y.tolist()), Dataset(valid_x, valid_y))
    test = BookPairs(zip(test_x.reshape(-1, 784, 1), test_y.tolist()), Dataset(test_x, test_y))
    return training, validation, test
