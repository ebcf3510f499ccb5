"""The IDX parser and MNIST directory reader on small files the tests generate."""

from __future__ import annotations

import gzip
import struct

import numpy as np
import pytest

from portable_nn.idx import IDXFormatError, read_idx, write_idx
from portable_nn.mnist import FILES, load_data_wrapper, load_mnist, read_mnist_dir


def make_mnist_dir(directory, n_train=12, n_test=5, seed=0, compress=True):
    """Write four small, valid MNIST-format files; return the arrays written."""
    rng = np.random.default_rng(seed)
    arrays = {
        "train_images": rng.integers(0, 256, (n_train, 28, 28), dtype=np.uint8),
        "train_labels": rng.integers(0, 10, n_train, dtype=np.uint8),
        "test_images": rng.integers(0, 256, (n_test, 28, 28), dtype=np.uint8),
        "test_labels": rng.integers(0, 10, n_test, dtype=np.uint8),
    }
    for key, stem in FILES.items():
        write_idx(directory / (stem + (".gz" if compress else "")), arrays[key])
    return arrays


@pytest.mark.parametrize("compress", [True, False])
def test_round_trip(tmp_path, compress):
    data = np.arange(2 * 3 * 4, dtype=np.uint8).reshape(2, 3, 4)
    path = tmp_path / ("a.idx" + (".gz" if compress else ""))
    write_idx(path, data)
    assert (path.read_bytes()[:2] == b"\x1f\x8b") == compress
    np.testing.assert_array_equal(read_idx(path, ndim=3), data)


def _raw(tmp_path, payload: bytes, name="bad.idx"):
    path = tmp_path / name
    path.write_bytes(payload)
    return path


MALFORMED = [
    ("wrong magic", b"\x01\x00\x08\x01" + struct.pack(">I", 3) + b"abc", r"bad\.idx: bad magic number"),
    ("type code", b"\x00\x00\x0d\x01" + struct.pack(">I", 1) + b"abcd", r"type code 0x0d is not supported"),
    ("truncated data", b"\x00\x00\x08\x01" + struct.pack(">I", 10) + b"abc",
     r"needs 10 data bytes, file has 3 \(truncated\)"),
    ("trailing bytes", b"\x00\x00\x08\x01" + struct.pack(">I", 2) + b"abc", r"trailing bytes"),
]  # fmt: skip


@pytest.mark.parametrize(("payload", "pattern"), [c[1:] for c in MALFORMED], ids=[c[0] for c in MALFORMED])
def test_malformed_file_is_rejected_naming_it(tmp_path, payload, pattern):
    with pytest.raises(IDXFormatError, match=pattern):
        read_idx(_raw(tmp_path, payload))


def test_truncated_header_and_empty(tmp_path):
    with pytest.raises(IDXFormatError, match=r"truncated header"):
        read_idx(_raw(tmp_path, b"\x00\x00\x08\x03\x00\x00\x00\x01"))
    with pytest.raises(IDXFormatError, match=r"too short"):
        read_idx(_raw(tmp_path, b"", "empty.idx"))


def test_wrong_number_of_dimensions(tmp_path):
    path = tmp_path / "labels.idx"
    write_idx(path, np.zeros((2, 2), dtype=np.uint8))
    with pytest.raises(IDXFormatError, match=r"expected 1 dimension\(s\), the header says 2"):
        read_idx(path, ndim=1)


def test_truncated_gzip(tmp_path):
    full = gzip.compress(b"\x00\x00\x08\x01" + struct.pack(">I", 1000) + bytes(1000))
    path = _raw(tmp_path, full[: len(full) // 2], "cut.idx.gz")
    with pytest.raises(IDXFormatError, match=r"cut\.idx\.gz: corrupt or truncated gzip"):
        read_idx(path)


def test_read_mnist_dir_scales_and_checks(tmp_path):
    arrays = make_mnist_dir(tmp_path, compress=False)
    data = read_mnist_dir(tmp_path, dtype="float32")
    assert data.train_images.shape == (12, 784) and data.train_images.dtype == np.float32
    np.testing.assert_allclose(data.train_images, arrays["train_images"].reshape(12, 784) / 255.0, rtol=1e-6)
    assert data.test_labels.dtype == np.int64
    np.testing.assert_array_equal(data.test_labels, arrays["test_labels"])
    assert 0.0 <= data.train_images.min() and data.train_images.max() <= 1.0


def test_mislabelled_files_are_rejected(tmp_path):
    make_mnist_dir(tmp_path)
    write_idx(tmp_path / "t10k-labels-idx1-ubyte.gz", np.zeros(4, dtype=np.uint8))
    with pytest.raises(IDXFormatError, match=r"test set has 5 images but 4 labels"):
        read_mnist_dir(tmp_path)
    write_idx(tmp_path / "t10k-labels-idx1-ubyte.gz", np.full(5, 11, dtype=np.uint8))
    with pytest.raises(IDXFormatError, match=r"labels must be digits 0-9, found 11"):
        read_mnist_dir(tmp_path)
    write_idx(tmp_path / "t10k-images-idx3-ubyte.gz", np.zeros((5, 20, 20), dtype=np.uint8))
    with pytest.raises(IDXFormatError, match=r"expected 28x28 images"):
        read_mnist_dir(tmp_path)


def test_load_mnist_uses_argument_then_env(tmp_path, monkeypatch):
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    make_mnist_dir(tmp_path / "a", n_train=3)
    make_mnist_dir(tmp_path / "b", n_train=4)
    monkeypatch.setenv("PORTABLE_NN_DATA", str(tmp_path / "b"))
    assert load_mnist(tmp_path / "a", download=False)[0][0].shape == (3, 784)
    assert load_mnist(download=False)[0][0].shape == (4, 784)
    monkeypatch.delenv("PORTABLE_NN_DATA")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    with pytest.raises(FileNotFoundError, match=r"cache/portable_nn/mnist.*download is off"):
        load_mnist(download=False)


def test_load_data_wrapper_gives_nielsens_forms(tmp_path):
    make_mnist_dir(tmp_path, n_train=50_003, n_test=7)
    training, validation, test = load_data_wrapper(tmp_path, download=False)
    assert (len(training), len(validation), len(test)) == (50_000, 3, 7)
    x, y = training[0]
    assert x.shape == (784, 1) and y.shape == (10, 1) and y.sum() == 1.0
    assert isinstance(validation[0][1], int) and isinstance(test[0][1], int)
    assert training[10:12][1][0].shape == (784, 1)  # lists, not zips: slicing works


@pytest.mark.slow
def test_shared_mnist_copy_reads(mnist_dir):
    (train_x, _train_y), (test_x, test_y) = load_mnist(mnist_dir, download=False)
    assert train_x.shape == (60_000, 784) and test_x.shape == (10_000, 784)
    np.testing.assert_array_equal(np.bincount(test_y), [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009])
    assert abs(train_x.mean() - 0.1307) < 1e-3
