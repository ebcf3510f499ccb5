"""``portable-nn evaluate`` and ``portable-nn predict``: use a saved model.

Both check the model before running it: 784 inputs and 10 outputs, and its
work per image within :data:`portable_nn._base.limits.ACTIVATIONS` and
:data:`portable_nn._base.limits.FLOPS` (a small file can describe a network that
would run for hours).  ``evaluate`` reads only the two test files (and
downloads only those when they are missing); ``predict`` reads each image the
MNIST way (:mod:`portable_nn._data.digits`).
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import numpy as np

from .._base import limits
from .._data.digits import DigitImageError, read_digit_image
from .._data.download import DownloadError, download_file
from .._data.forms import Dataset
from .._data.idx import IDXFormatError, read_idx
from .._data.mnist import DATA_ENV, FILES, existing_file, resolve_data_dir
from ..loading import load
from ..network3 import Network as Network3
from .common import CommandError, data_directory, say, warn


def load_for_mnist(path: Path, backend: str, dtype: str | None) -> Any:
    """The model in ``path``, checked to fit MNIST (784 in, 10 out) and the work limits."""
    if path.suffix.lower() not in (".npz", ".json"):
        raise CommandError(f"--model must end in .npz or .json; got {str(path)!r}", 2)
    net = load(path, backend, dtype=dtype)
    if isinstance(net, Network3):
        n_in, n_out, work = net.n_in, net.n_out, limits.network_work(net.layers)
    else:
        n_in, n_out, work = net.sizes[0], net.sizes[-1], limits.network_work(list(net.sizes))
    if n_in != 784 or n_out != 10:
        raise CommandError(
            f"{path}: the model has {n_in} inputs and {n_out} outputs; MNIST needs 784 inputs and 10 outputs"
        )
    try:
        limits.check_work(work, str(path))
    except ValueError as exc:
        raise CommandError(str(exc)) from exc
    return net


def load_test_set(data_dir: Path | None, download: bool) -> Dataset:
    """The MNIST test set only (the training files are never read nor downloaded)."""
    directory = resolve_data_dir(data_dir)
    if directory.exists() and not directory.is_dir():
        raise NotADirectoryError(f"{directory} is not a directory: --data-dir / ${DATA_ENV} must name one")
    stems = (FILES["test_images"], FILES["test_labels"])
    for stem in stems:
        if existing_file(directory, stem) is not None:
            continue
        if not download:
            raise FileNotFoundError(
                f"MNIST test file missing from {directory}: {stem} (.gz or raw); download is off, so put it "
                "there or choose another --data-dir"
            )
        try:
            download_file(stem + ".gz", directory)
        except DownloadError as exc:
            raise DownloadError(f"{exc}\nWithout internet access, put {stem}.gz into {directory}.") from exc
    images_path, labels_path = (existing_file(directory, stem) for stem in stems)
    assert images_path is not None and labels_path is not None
    images, labels = read_idx(images_path, ndim=3), read_idx(labels_path, ndim=1)
    if images.shape[1:] != (28, 28):
        raise IDXFormatError(f"{images_path}: expected 28x28 images, the header says {images.shape[1:]}")
    if labels.size and labels.max() > 9:
        raise IDXFormatError(f"{labels_path}: labels must be digits 0-9, found {int(labels.max())}")
    if len(images) != len(labels):
        raise IDXFormatError(f"{directory}: test set has {len(images)} images but {len(labels)} labels")
    if len(labels) == 0:
        raise CommandError(f"{directory}: the MNIST test set is empty")
    return Dataset(images.reshape(len(images), 784), labels.astype(np.int64), divisor=255.0)


def cmd_evaluate(args: argparse.Namespace) -> int:
    """``portable-nn evaluate``: the model's accuracy on the MNIST test set."""
    net = load_for_mnist(args.model, args.backend, args.dtype)
    with data_directory(args.data_dir, download=not args.no_download, create=args.create_data_dir):
        test = load_test_set(args.data_dir, not args.no_download)
    count = getattr(net, "accuracy", None) or net.evaluate  # network2/network3, or network.Network
    correct = count(test)
    say(f"{correct} / {test.n} ({100 * correct / test.n:.2f}%) {args.model} on {net.backend.describe()}")
    return 0


def class_scores(outputs: np.ndarray) -> np.ndarray:
    """Output activations ``(n, 10)`` as shares that sum to 1 per row (softmax outputs stay as they are)."""
    totals = np.sum(outputs, axis=1, keepdims=True)
    return np.where(totals > 0, outputs / np.where(totals > 0, totals, 1.0), 0.1)


def cmd_predict(args: argparse.Namespace) -> int:
    """``portable-nn predict``: the top three classes of each image, with a warning when unsure."""
    from .._backend.backends import to_numpy

    net = load_for_mnist(args.model, args.backend, args.dtype)
    try:
        images = np.stack([read_digit_image(path, raw=args.raw) for path in args.images])
    except DigitImageError as exc:
        raise CommandError(str(exc)) from exc
    # network3 takes and gives rows (n, 784) -> (n, 10); the book's network/network2 columns.
    chapter6 = isinstance(net, Network3)
    outputs = to_numpy(net.feedforward(images)) if chapter6 else to_numpy(net.feedforward(images.T)).T
    scores = class_scores(np.asarray(outputs, dtype=np.float64))
    for path, row, out in zip(args.images, scores, outputs):
        top = np.argsort(-row, kind="stable")[:3]
        ranked = ", ".join(f"{int(k)} {row[k]:.2f}" for k in top[1:])
        say(f"{path}: {int(top[0])} (score {row[top[0]]:.2f}, activation {float(out[top[0]]):.3f}; then {ranked})")
        if row[top[0]] < args.min_confidence:
            warn(
                f"portable-nn predict: warning: {path}: unsure, the top class has only {100 * row[top[0]]:.0f}% "
                f"of the outputs (below --min-confidence {args.min_confidence:g})"
            )
    return 0
