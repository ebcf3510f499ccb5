"""portable_nn._data.expand: the book's one-pixel-shift expansion of MNIST and its cache."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time

import numpy as np
import pytest

import portable_nn._data.expand as expand_module
from portable_nn._base.atomic import STALE_AFTER_S, temporary_name
from portable_nn._data.expand import CACHE_NAME, SHIFT_ORDER, expand_mnist, expanded_mnist
from portable_nn._data.idx import write_idx
from portable_nn._data.mnist import FILES, load_mnist


def book_expand(images, labels):
    """The loop of the book's expand_mnist.py (without its final shuffle), for 28x28 images."""
    pairs = []
    for x, y in zip(images, labels):
        pairs.append((x, y))
        image = np.reshape(x, (-1, 28))
        for d, axis, index_position, index in [
            (1, 0, "first", 0),
            (-1, 0, "first", 27),
            (1, 1, "last", 0),
            (-1, 1, "last", 27),
        ]:
            new_img = np.roll(image, d, axis)
            if index_position == "first":
                new_img[index, :] = np.zeros(28)
            else:
                new_img[:, index] = np.zeros(28)
            pairs.append((np.reshape(new_img, 784), y))
    return np.array([p[0] for p in pairs]), np.array([p[1] for p in pairs])


def make_mnist_dir(directory, n_train=12, n_test=3, seed=0):
    """Four small valid MNIST IDX files; returns the raw uint8 training images and labels."""
    rng = np.random.default_rng(seed)
    train_x = rng.integers(0, 256, (n_train, 28, 28), dtype=np.uint8)
    train_y = rng.integers(0, 10, n_train, dtype=np.uint8)
    arrays = {
        "train_images": train_x,
        "train_labels": train_y,
        "test_images": rng.integers(0, 256, (n_test, 28, 28), dtype=np.uint8),
        "test_labels": rng.integers(0, 10, n_test, dtype=np.uint8),
    }
    directory.mkdir(parents=True, exist_ok=True)
    for key, stem in FILES.items():
        write_idx(directory / (stem + ".gz"), arrays[key])
    return train_x.reshape(n_train, 784), train_y.astype(np.int64)


# -- the expansion ----------------------------------------------------------------------------
@pytest.mark.parametrize("dtype", ["uint8", "float32", "float64"])
def test_expand_equals_the_books_script(dtype):
    rng = np.random.default_rng(1)
    images = rng.integers(1, 256, (4, 784)).astype(dtype)
    if dtype != "uint8":
        images /= 255.0
    labels = np.array([3, 1, 4, 1])
    got_x, got_y = expand_mnist(images, labels)
    want_x, want_y = book_expand(images, labels)
    assert got_x.shape == (20, 784) and got_x.dtype == np.dtype(dtype)
    np.testing.assert_array_equal(got_x, want_x)
    np.testing.assert_array_equal(got_y, want_y)
    assert got_y.dtype == labels.dtype


def test_shift_directions_and_order_on_a_small_nonsquare_image():
    """Original, down, up, right, left; the pixels shifted in are zero, the rest move by one."""
    image = np.arange(1, 13, dtype=np.uint8).reshape(3, 4)
    expanded, labels = expand_mnist(image.reshape(1, 12), np.array([7]), image_shape=(3, 4))
    got = expanded.reshape(5, 3, 4)
    down = np.array([[0, 0, 0, 0], [1, 2, 3, 4], [5, 6, 7, 8]])
    up = np.array([[5, 6, 7, 8], [9, 10, 11, 12], [0, 0, 0, 0]])
    right = np.array([[0, 1, 2, 3], [0, 5, 6, 7], [0, 9, 10, 11]])
    left = np.array([[2, 3, 4, 0], [6, 7, 8, 0], [10, 11, 12, 0]])
    for k, want in enumerate([image, down, up, right, left]):
        np.testing.assert_array_equal(got[k], want)
    assert [name for name, _, _ in SHIFT_ORDER] == ["down", "up", "right", "left"]
    np.testing.assert_array_equal(labels, [7] * 5)


def test_count_grouping_and_labels():
    """n images give 5n rows; rows 5i..5i+4 all come from image i and carry its label."""
    n = 6
    images = np.zeros((n, 784), dtype=np.uint8)
    images[:, 14 * 28 + 14] = np.arange(1, n + 1)  # one bright centre pixel that identifies the image
    labels = np.arange(n) % 10
    expanded, expanded_labels = expand_mnist(images, labels)
    assert expanded.shape == (5 * n, 784)
    np.testing.assert_array_equal(expanded.max(axis=1), np.repeat(np.arange(1, n + 1), 5))
    np.testing.assert_array_equal(expanded_labels, np.repeat(labels, 5))
    # the bright pixel sits at the centre, one row below, above, one column right, left
    positions = np.argmax(expanded, axis=1)[:5]
    centre = 14 * 28 + 14
    np.testing.assert_array_equal(positions, [centre, centre + 28, centre - 28, centre + 1, centre - 1])


def test_expand_rejects_bad_shapes():
    with pytest.raises(ValueError, match=r"\(n, 784\)"):
        expand_mnist(np.zeros((2, 783)), np.zeros(2))
    with pytest.raises(ValueError, match="labels"):
        expand_mnist(np.zeros((2, 784)), np.zeros(3))
    with pytest.raises(ValueError, match="2x2"):
        expand_mnist(np.zeros((2, 3)), np.zeros(2), image_shape=(1, 3))


# -- the cache --------------------------------------------------------------------------------
def test_cache_round_trip_and_reuse(tmp_path, monkeypatch):
    raw_x, raw_y = make_mnist_dir(tmp_path / "mnist")
    cache = tmp_path / "cache"
    images, labels = expanded_mnist(tmp_path / "mnist", cache, n_train=10)
    want_x, want_y = book_expand(raw_x[:10], raw_y[:10])
    assert images.dtype == np.uint8 and labels.dtype == np.int64
    np.testing.assert_array_equal(images, want_x)
    np.testing.assert_array_equal(labels, want_y)
    assert (cache / CACHE_NAME).is_file()
    assert sorted(p.name for p in cache.iterdir()) == [CACHE_NAME]  # no temporary files left behind

    def no_loading(*args, **kwargs):
        raise AssertionError("the cache should have been used")

    monkeypatch.setattr(expand_module, "load_mnist", no_loading)
    again_x, again_y = expanded_mnist(tmp_path / "mnist", cache, n_train=10)
    np.testing.assert_array_equal(again_x, want_x)
    np.testing.assert_array_equal(again_y, want_y)


def test_float_dtypes_match_load_mnist_scaling_and_shuffle_keeps_pairs(tmp_path):
    make_mnist_dir(tmp_path / "mnist")
    cache = tmp_path / "cache"
    for dtype in ("float32", "float64"):
        images, labels = expanded_mnist(tmp_path / "mnist", cache, n_train=12, dtype=dtype)
        (train_x, train_y), _ = load_mnist(tmp_path / "mnist", download=False, dtype=dtype)
        assert images.dtype == np.dtype(dtype)
        np.testing.assert_array_equal(images[::5], train_x)  # bit-identical to load_mnist's scaling
        np.testing.assert_array_equal(labels[::5], train_y)
    plain_x, plain_y = expanded_mnist(tmp_path / "mnist", cache, n_train=12)
    shuffled_x, shuffled_y = expanded_mnist(tmp_path / "mnist", cache, n_train=12, shuffle_seed=5)
    order = np.random.default_rng(5).permutation(60)
    np.testing.assert_array_equal(shuffled_x, plain_x[order])
    np.testing.assert_array_equal(shuffled_y, plain_y[order])
    assert not np.array_equal(shuffled_y, plain_y)


def _write_npz(path, **arrays):
    with open(path, "wb") as handle:
        np.savez(handle, **arrays)


@pytest.mark.parametrize(
    "damage",
    ["garbage bytes", "truncated", "wrong dtype", "wrong shape", "missing key", "bad labels", "other source"],
)
def test_invalid_cache_is_regenerated(tmp_path, damage):
    raw_x, raw_y = make_mnist_dir(tmp_path / "mnist")
    cache = tmp_path / "cache"
    expanded_mnist(tmp_path / "mnist", cache, n_train=4)
    path = cache / CACHE_NAME
    with np.load(path) as archive:
        good = {key: archive[key] for key in archive.files}
    if damage == "garbage bytes":
        path.write_bytes(b"not a zip file")
    elif damage == "truncated":
        path.write_bytes(path.read_bytes()[:1000])
    elif damage == "wrong dtype":
        _write_npz(path, images=good["images"].astype(np.float32), labels=good["labels"], source=good["source"])
    elif damage == "wrong shape":
        _write_npz(path, images=good["images"][:-1], labels=good["labels"][:-1], source=good["source"])
    elif damage == "missing key":
        _write_npz(path, images=good["images"], labels=good["labels"])
    elif damage == "bad labels":
        labels = good["labels"].copy()
        labels[1] = (labels[0] + 1) % 10  # the five copies of an image disagree
        _write_npz(path, images=good["images"], labels=labels, source=good["source"])
    else:  # a cache built from other MNIST files
        _write_npz(path, images=np.zeros_like(good["images"]), labels=good["labels"], source=np.asarray("0" * 64))
    images, labels = expanded_mnist(tmp_path / "mnist", cache, n_train=4)
    want_x, want_y = book_expand(raw_x[:4], raw_y[:4])
    np.testing.assert_array_equal(images, want_x)
    np.testing.assert_array_equal(labels, want_y)
    assert images.dtype == np.uint8 and labels.dtype == np.int64
    with np.load(path) as archive:
        assert archive["images"].dtype == np.uint8
        np.testing.assert_array_equal(archive["images"], want_x)


def test_changed_source_or_n_train_rebuilds_and_missing_source_uses_cache(tmp_path):
    make_mnist_dir(tmp_path / "mnist", seed=1)
    cache = tmp_path / "cache"
    expanded_mnist(tmp_path / "mnist", cache, n_train=5)
    new_x, new_y = make_mnist_dir(tmp_path / "mnist", seed=2)
    images, _ = expanded_mnist(tmp_path / "mnist", cache, n_train=5)
    np.testing.assert_array_equal(images, book_expand(new_x[:5], new_y[:5])[0])
    images, _ = expanded_mnist(tmp_path / "mnist", cache, n_train=3)
    assert images.shape == (15, 784)
    for path in (tmp_path / "mnist").iterdir():
        path.unlink()
    cached_x, _ = expanded_mnist(tmp_path / "mnist", cache, n_train=3)
    np.testing.assert_array_equal(cached_x, images)
    with pytest.raises(FileNotFoundError):
        expanded_mnist(tmp_path / "mnist", cache, n_train=4)


def test_argument_errors(tmp_path):
    with pytest.raises(ValueError, match="dtype"):
        expanded_mnist(tmp_path, tmp_path, dtype="int32")
    with pytest.raises(ValueError, match="n_train"):
        expanded_mnist(tmp_path, tmp_path, n_train=60_001)
    make_mnist_dir(tmp_path / "mnist", n_train=3)
    with pytest.raises(ValueError, match="only 3 training images"):
        expanded_mnist(tmp_path / "mnist", tmp_path / "cache", n_train=4)


def test_real_mnist_expansion(mnist_dir, tmp_path):
    """On the real files: originals equal load_mnist's pixels, labels repeat, shifts are the book's."""
    images, labels = expanded_mnist(mnist_dir, tmp_path, n_train=200, dtype="float64")
    (train_x, train_y), _ = load_mnist(mnist_dir, download=False)
    np.testing.assert_array_equal(images[::5], train_x[:200])
    np.testing.assert_array_equal(labels, np.repeat(train_y[:200], 5))
    np.testing.assert_array_equal(images, book_expand(train_x[:200], train_y[:200])[0])


def test_a_killed_builds_temporary_is_removed_while_the_cache_is_valid(tmp_path):
    make_mnist_dir(tmp_path / "mnist")
    cache = tmp_path / "cache"
    expanded_mnist(tmp_path / "mnist", cache, n_train=10)
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()  # a writer that has died
    name = temporary_name(cache / CACHE_NAME).name
    stale = cache / re.sub(r"\.\d+-", f".{proc.pid}-", name)
    stale.write_bytes(b"half a cache")
    then = time.time() - STALE_AFTER_S - 60
    os.utime(stale, (then, then))
    live = cache / name  # this process's: never touched
    live.write_bytes(b"in progress")
    os.utime(live, (then, then))
    expanded_mnist(tmp_path / "mnist", cache, n_train=10)  # valid cache: nothing is written
    assert sorted(p.name for p in cache.iterdir()) == sorted([CACHE_NAME, live.name])
