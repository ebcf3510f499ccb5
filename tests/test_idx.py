"""The IDX parser and MNIST directory reader on small files the tests generate."""

from __future__ import annotations

import gzip
import os
import re
import struct
import tracemalloc
import zlib

import numpy as np
import pytest
from helpers import error_reading_fifo

from portable_nn._base import limits
from portable_nn._data.idx import IDXFormatError, read_idx, write_idx
from portable_nn._data.mnist import FILES, load_data_wrapper, load_mnist, read_mnist_dir


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


def _peak_bytes_while(func, *args, **kwargs):
    """Run ``func`` and return ``(exception or None, peak bytes allocated while it ran)``."""
    tracemalloc.start()
    try:
        func(*args, **kwargs)
        error = None
    except Exception as exc:  # the caller checks which
        error = exc
    finally:
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
    return error, peak


def _gzip_stream(header: bytes, zeros: int) -> bytes:
    """A gzip file of ``header`` and ``zeros`` zero bytes, built without holding the zeros in memory."""
    packer = zlib.compressobj(9, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
    parts = [packer.compress(header)]
    block = bytes(1 << 20)
    for start in range(0, zeros, len(block)):
        parts.append(packer.compress(block[: min(len(block), zeros - start)]))
    parts.append(packer.flush())
    return b"".join(parts)


def test_gzip_bomb_stops_at_the_declared_size(tmp_path):
    # a ~100 kB file that claims 1000 data bytes but expands to 64 MB
    path = _raw(tmp_path, _gzip_stream(b"\x00\x00\x08\x01" + struct.pack(">I", 1000), 64 << 20), "bomb.idx.gz")
    assert path.stat().st_size < 200_000
    error, peak = _peak_bytes_while(read_idx, path)
    assert isinstance(error, IDXFormatError)
    assert re.search(r"bomb\.idx\.gz: header shape \(1000,\) needs 1000 data bytes, file has more", str(error))
    assert peak < 4 << 20  # one decompression chunk, not the 64 MB


def test_small_gzip_claiming_a_huge_array_is_refused_before_allocating(tmp_path):
    header = b"\x00\x00\x08\x03" + struct.pack(">3I", 60_000, 280, 28)  # 470 MB declared
    path = _raw(tmp_path, gzip.compress(header + bytes(100)), "claims.idx.gz")
    error, peak = _peak_bytes_while(read_idx, path)
    assert isinstance(error, IDXFormatError)
    assert re.search(r"claims\.idx\.gz: header shape .* needs 470400000 data bytes, more than a gzip file of \d+ "
                     r"bytes can hold", str(error))  # fmt: skip
    assert peak < 4 << 20


def test_raw_header_is_checked_against_the_file_size_before_allocating(tmp_path):
    path = _raw(tmp_path, b"\x00\x00\x08\x02" + struct.pack(">2I", 40_000, 10_000) + bytes(10))
    error, peak = _peak_bytes_while(read_idx, path)
    assert isinstance(error, IDXFormatError)
    assert "needs 400000000 data bytes, file has 10 (truncated)" in str(error)
    assert peak < 1 << 20


def test_declared_size_over_the_limit_is_refused_without_overflow(tmp_path, monkeypatch):
    huge = _raw(tmp_path, b"\x00\x00\x08\x04" + struct.pack(">4I", *[2**32 - 1] * 4), "huge.idx")
    with pytest.raises(IDXFormatError, match=rf"huge\.idx: .* needs {(2**32 - 1) ** 4} data bytes, more than the limit "
                                             rf"of 2147483648 \(set \$PORTABLE_NN_MAX_IDX_BYTES"):  # fmt: skip
        read_idx(huge)
    path = tmp_path / "small.idx"
    write_idx(path, np.ones((10, 11), dtype=np.uint8))
    monkeypatch.setenv("PORTABLE_NN_MAX_IDX_BYTES", "100")
    with pytest.raises(IDXFormatError, match=r"needs 110 data bytes, more than the limit of 100"):
        read_idx(path)
    assert read_idx(path, max_bytes=110).shape == (10, 11)  # the argument wins over the environment
    monkeypatch.setenv("PORTABLE_NN_MAX_IDX_BYTES", "lots")
    with pytest.raises(ValueError, match=r"\$PORTABLE_NN_MAX_IDX_BYTES: expected a positive number of bytes"):
        read_idx(path)


def test_concatenated_gzip_members_are_read(tmp_path):
    data = np.arange(300, dtype=np.uint8).reshape(3, 100)
    payload = b"\x00\x00\x08\x02" + struct.pack(">2I", 3, 100) + data.tobytes()
    path = _raw(tmp_path, gzip.compress(payload[:150]) + gzip.compress(payload[150:]), "two.idx.gz")
    np.testing.assert_array_equal(read_idx(path), data)


@pytest.mark.parametrize(
    ("mutate", "pattern"),
    [
        (lambda gz: gz + b"junk", r"unexpected bytes after the end of the gzip data"),
        (lambda gz: gz[:-8] + bytes(4) + gz[-4:], r"corrupt or truncated gzip data \(.*incorrect data check"),
        (lambda gz: gz[:-8], r"corrupt or truncated gzip data \(the file ends inside"),
        (lambda gz: gz[:10] + b"\xff" * 20, r"corrupt or truncated gzip data \(Error -3"),
    ],
    ids=["trailing junk", "bad CRC", "no trailer", "garbage deflate"],
)
def test_damaged_gzip_is_rejected_naming_the_file(tmp_path, mutate, pattern):
    good = gzip.compress(b"\x00\x00\x08\x01" + struct.pack(">I", 20) + bytes(range(20)))
    with pytest.raises(IDXFormatError, match=r"damaged\.idx\.gz: " + pattern):
        read_idx(_raw(tmp_path, mutate(good), "damaged.idx.gz"))


def test_a_directory_is_an_os_error_naming_it(tmp_path):
    (tmp_path / "adir").mkdir()
    with pytest.raises(IsADirectoryError, match=r"is a directory, expected an IDX file: .*adir"):
        read_idx(tmp_path / "adir")
    with pytest.raises(FileNotFoundError, match=r"missing\.idx"):
        read_idx(tmp_path / "missing.idx")


def test_a_fifo_is_refused_without_blocking(tmp_path):
    fifo = tmp_path / "pipe.idx"
    os.mkfifo(fifo)
    error = error_reading_fifo(read_idx, fifo)
    assert error is not None, "read_idx blocked on a FIFO"
    assert isinstance(error, IDXFormatError) and "pipe.idx: not a regular file" in str(error)


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


@pytest.mark.parametrize(
    ("text", "value"),
    [("123", 123), ("1_000", 1000), ("64M", 64 << 20), ("2GiB", 2 << 30), (" 4 kb ", 4096), ("10B", 10)],
)
def test_limit_sizes_parse(text, value, monkeypatch):
    monkeypatch.setenv(limits.IDX_BYTES.env, text)
    assert limits.IDX_BYTES.value() == value
    assert limits.IDX_BYTES.value(7) == 7  # an argument wins


@pytest.mark.parametrize("text", ["0", "-5", "1.5G", "lots", "1__0", "10Q", "_1"])
def test_bad_limit_values_are_refused_naming_the_variable(text, monkeypatch):
    monkeypatch.setenv(limits.HISTORY_BYTES.env, text)
    with pytest.raises(ValueError, match=r"^\$PORTABLE_NN_MAX_HISTORY_BYTES: expected a positive number of bytes"):
        limits.HISTORY_BYTES.value()
    for bad in (0, -1, True, 1.5):
        with pytest.raises(ValueError, match=r"^max_history_bytes: expected a positive integer number of bytes"):
            limits.HISTORY_BYTES.value(bad)


def test_limit_defaults_without_the_environment(monkeypatch):
    for limit in limits.ALL:
        monkeypatch.delenv(limit.env, raising=False)
    assert [lim.value() for lim in limits.ALL] == [2**31, 2**28, 2**26, 2**31]


# -- where data is looked for: missing directories are not created ------------------------------------------------
@pytest.fixture
def offline(monkeypatch):
    """Every download fails as without internet; the calls are recorded."""
    from portable_nn._data import download

    calls = []

    def fail(name, dest_dir, **kwargs):
        calls.append((name, dest_dir))
        os.makedirs(dest_dir, exist_ok=True)  # what the real download_file does first
        raise download.DownloadError(f"could not download {name}: offline")

    monkeypatch.setattr(download, "download_file", fail)
    return calls


def test_a_missing_data_dir_is_not_created_nor_downloaded_into(tmp_path, offline):
    target = tmp_path / "nothere" / "x"
    with pytest.raises(FileNotFoundError, match=r"data directory .*nothere/x does not exist"):
        load_mnist(target)
    assert offline == [] and list(tmp_path.iterdir()) == []


def test_a_missing_data_env_dir_is_not_created(tmp_path, monkeypatch, offline):
    monkeypatch.setenv("PORTABLE_NN_DATA", str(tmp_path / "env"))
    with pytest.raises(FileNotFoundError, match="does not exist"):
        load_data_wrapper()
    assert offline == [] and list(tmp_path.iterdir()) == []


def test_offline_the_default_cache_leaves_nothing_behind(tmp_path, monkeypatch, offline):
    from portable_nn._data.download import DownloadError

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.delenv("PORTABLE_NN_DATA", raising=False)
    with pytest.raises(DownloadError, match="offline"):
        load_mnist()
    assert len(offline) == 1  # it did try: an explicit download into the cache
    assert list(tmp_path.iterdir()) == []


def test_an_existing_cache_parent_is_kept_when_offline(tmp_path, monkeypatch, offline):
    from portable_nn._data.download import DownloadError

    (tmp_path / "cache" / "portable_nn").mkdir(parents=True)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.delenv("PORTABLE_NN_DATA", raising=False)
    with pytest.raises(DownloadError):
        load_mnist()
    assert [p.name for p in (tmp_path / "cache").iterdir()] == ["portable_nn"]
    assert list((tmp_path / "cache" / "portable_nn").iterdir()) == []


def test_a_data_dir_that_is_a_pickle_name_is_not_made_a_directory(tmp_path, offline):
    with pytest.raises(FileNotFoundError, match="never downloaded"):
        load_mnist(tmp_path / "mnist_expanded.pkl.gz")
    assert offline == [] and list(tmp_path.iterdir()) == []


def test_an_empty_shape_that_numpy_cannot_form_is_an_idx_error(tmp_path):
    """Found by the header fuzzer: (0, 1158, 1922, 91355, 45362342) holds no bytes but overflows NumPy's shapes."""
    path = tmp_path / "empty.idx"
    path.write_bytes(struct.pack(">HBB", 0, 8, 5) + struct.pack(">5I", 0, 1158, 1922, 91355, 45362342))
    with pytest.raises(IDXFormatError, match="empty but its other dimensions exceed the limit"):
        read_idx(path)
