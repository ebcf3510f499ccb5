"""The book's pickled MNIST files, read by a restricted unpickler (portable_nn._data.bookpickle).

The test pickles are written here, opcode by opcode, the way Python 2's
``cPickle`` wrote the book's files (protocol 0, the default of the book's
``expand_mnist.py``, and protocol 2), plus Python 3's own protocols 0-5.
"""

from __future__ import annotations

import gzip
import pickle
import struct
import tracemalloc

import numpy as np
import pytest
from helpers import mutate_bytes, read_in_tmp
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from portable_nn import load_data, load_data_wrapper, network3
from portable_nn._data import bookpickle
from portable_nn._data.bookpickle import BookPickleError, load_book_mnist, read_book_pickle


# -- writing Python-2 pickles ---------------------------------------------------------------------------------
def _py2_repr(data: bytes) -> bytes:
    """Python 2's ``repr`` of a ``str``, as protocol 0's STRING opcode holds it."""
    out = bytearray(b"'")
    for byte in data:
        ch = bytes([byte])
        if ch in b"\\'":
            out += b"\\" + ch
        elif ch in b"\t\n\r":
            out += {b"\t": b"\\t", b"\n": b"\\n", b"\r": b"\\r"}[ch]
        elif 32 <= byte < 127:
            out += ch
        else:
            out += b"\\x%02x" % byte
    return bytes(out + b"'")


class Py2Pickler:
    """Emits what Python 2's cPickle wrote for tuples, lists, ints and NumPy arrays/scalars.

    Like cPickle, every global and dtype is memoized (PUT) and a dtype seen
    before is fetched from the memo (GET), so one dtype object serves many arrays.
    """

    def __init__(self, protocol: int, module: str = "numpy.core.multiarray") -> None:
        self.protocol = protocol
        self.module = module.encode()
        self.memo: dict[object, int] = {}

    def _put(self, key) -> bytes:
        index = self.memo.setdefault(key, len(self.memo))
        if self.protocol == 0:
            return b"p%d\n" % index
        return b"r" + struct.pack("<I", index)

    def _get(self, key) -> bytes | None:
        if key not in self.memo:
            return None
        index = self.memo[key]
        return b"g%d\n" % index if self.protocol == 0 else b"j" + struct.pack("<I", index)

    def dumps(self, obj) -> bytes:
        return (b"\x80\x02" if self.protocol == 2 else b"") + self._save(obj) + b"."

    def _global(self, module: bytes, name: bytes) -> bytes:
        key = ("global", module, name)
        return self._get(key) or b"c" + module + b"\n" + name + b"\n" + self._put(key)

    def _str(self, data: bytes) -> bytes:
        if self.protocol == 0:
            return b"S" + _py2_repr(data) + b"\n"
        return b"T" + struct.pack("<i", len(data)) + data

    def _int(self, value: int) -> bytes:
        return b"I%d\n" % value if self.protocol == 0 else b"J" + struct.pack("<i", value)

    def _tuple(self, items) -> bytes:
        return b"(" + b"".join(items) + b"t"

    def _dtype(self, dtype: np.dtype) -> bytes:
        key = ("dtype", dtype.str)
        seen = self._get(key)
        if seen is not None:
            return seen
        code = dtype.str[1:].encode()
        none = b"N"
        args = self._tuple([self._str(code), self._int(0), self._int(1)])
        state = self._tuple(
            [self._int(3), self._str(b"<"), none, none, none, self._int(-1), self._int(-1), self._int(0)]
        )
        return self._global(b"numpy", b"dtype") + args + b"R" + self._put(key) + state + b"b"

    def _save(self, obj) -> bytes:
        if isinstance(obj, tuple):
            return self._tuple([self._save(item) for item in obj])
        if isinstance(obj, list):
            return b"(" + b"".join(self._save(item) for item in obj) + b"l"
        if isinstance(obj, np.generic):
            args = self._tuple([self._dtype(obj.dtype), self._str(obj.tobytes())])
            return self._global(self.module, b"scalar") + args + b"R"
        if isinstance(obj, np.ndarray):
            zero = self._tuple([self._int(0)])
            args = self._tuple([self._global(b"numpy", b"ndarray"), zero, self._str(b"b")])
            shape = self._tuple([self._int(d) for d in obj.shape])
            false = b"I00\n" if self.protocol == 0 else b"\x89"
            state = self._tuple([self._int(1), shape, self._dtype(obj.dtype), false, self._str(obj.tobytes())])
            return self._global(self.module, b"_reconstruct") + args + b"R" + state + b"b"
        if isinstance(obj, int):
            return self._int(obj)
        raise TypeError(type(obj))


def _splits(n=(20, 6, 4), seed=0):
    rng = np.random.default_rng(seed)
    return tuple(
        ((rng.integers(0, 256, (k, 784)) / np.float32(256)).astype(np.float32), rng.integers(0, 10, k).astype(np.int64))
        for k in n
    )


def _expanded(splits):
    """The layout the book's expand_mnist.py writes: the training pair as two lists (arrays, numpy ints)."""
    (x, y), validation, test = splits
    return [list(x), list(y)], validation, test


def _write(path, payload: bytes, compress: bool = True):
    path.write_bytes(gzip.compress(payload, mtime=0) if compress else payload)
    return path


def _assert_splits(got, want):
    assert len(got) == 3
    for (gx, gy), (wx, wy) in zip(got, want):
        assert gx.dtype == np.float32 and gx.shape == (len(wx), 784)
        assert gy.dtype == np.int64 and gy.shape == (len(wy),)
        np.testing.assert_array_equal(gx, wx)
        np.testing.assert_array_equal(gy, wy)


# -- what loads ----------------------------------------------------------------------------------------------
@pytest.mark.parametrize("module", ["numpy.core.multiarray", "numpy._core.multiarray"])
@pytest.mark.parametrize("protocol", [0, 2])
@pytest.mark.parametrize("layout", ["mnist", "expanded"])
def test_python2_pickles_of_the_books_layouts_load(tmp_path, protocol, module, layout):
    splits = _splits()
    obj = splits if layout == "mnist" else _expanded(splits)
    path = _write(tmp_path / "mnist.pkl.gz", Py2Pickler(protocol, module).dumps(obj))
    _assert_splits(load_book_mnist(path), splits)


@pytest.mark.parametrize("protocol", range(pickle.HIGHEST_PROTOCOL + 1))
@pytest.mark.parametrize("compress", [True, False])
def test_python3_pickles_load(tmp_path, protocol, compress):
    splits = _splits()
    path = _write(tmp_path / "mnist.pkl", pickle.dumps(splits, protocol=protocol), compress)
    _assert_splits(load_book_mnist(path), splits)
    expanded = _write(tmp_path / "expanded.pkl", pickle.dumps(_expanded(splits), protocol=protocol), compress)
    _assert_splits(load_book_mnist(expanded), splits)


def test_big_endian_and_fortran_arrays_come_back_native(tmp_path):
    x = np.asfortranarray(np.linspace(0, 1, 4 * 784, dtype=">f4").reshape(4, 784))
    y = np.arange(4, dtype=">i8")
    path = _write(tmp_path / "m.pkl.gz", pickle.dumps(((x, y), (x, y), (x, y)), protocol=2))
    (gx, gy), _, _ = load_book_mnist(path)
    assert gx.dtype == np.float32 and gx.dtype.isnative and gy.dtype == np.int64
    np.testing.assert_array_equal(gx, x)
    np.testing.assert_array_equal(gy, y)


# -- what is refused, without running it ----------------------------------------------------------------------
def _system_pickle(marker) -> bytes:
    return b"cos\nsystem\n(S'touch " + str(marker).encode() + b"'\ntR."


@pytest.mark.parametrize(
    "payload",
    [
        lambda m: _system_pickle(m),
        lambda m: (
            b"\x80\x02"
            + b"cposix\nsystem\n"
            + b"X"
            + struct.pack("<I", len(f"touch {m}"))
            + f"touch {m}".encode()
            + b"\x85R."
        ),
        lambda m: pickle.dumps(_Evil(m), protocol=4),
        lambda m: b"(" + _system_pickle(m)[:-1] + b"I1\ntp0\n.",  # inside a tuple
        lambda m: b'cbuiltins\neval\n(S\'__import__("os").system("touch ' + str(m).encode() + b"\")'\ntR.",
        lambda m: b"cnumpy\nload\n(S'" + str(m).encode() + b"'\ntR.",
        lambda m: b"cnumpy.core.multiarray\nfromstring\n(S'x'\ntR.",
        lambda m: b"ccopyreg\n_reconstructor\n(cos\nsystem\nS'x'\ntR.",
    ],
    ids=[
        "os.system",
        "posix.system-proto2",
        "reduce-proto4",
        "nested",
        "builtins.eval",
        "numpy.load",
        "fromstring",
        "copyreg",
    ],
)
def test_any_other_global_is_refused_and_never_runs(tmp_path, payload):
    marker = tmp_path / "MARKER"
    path = _write(tmp_path / "evil.pkl.gz", payload(marker))
    with pytest.raises(BookPickleError, match=r"refused global") as info:
        read_book_pickle(path)
    assert str(path) in str(info.value) and "\n" not in str(info.value)
    assert not marker.exists()


class _Evil:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        import os

        return os.system, (f"touch {self.marker}",)


def test_loaders_refuse_a_malicious_file_without_running_it(tmp_path):
    marker = tmp_path / "MARKER"
    path = _write(tmp_path / "mnist.pkl.gz", _system_pickle(marker))
    for loader in (load_data, load_data_wrapper, network3.load_data_shared, network3.load_expanded_training_data):
        with pytest.raises(BookPickleError, match=r"refused global os\.system"):
            loader(path)
    assert not marker.exists()


@pytest.mark.parametrize(
    "payload, message",
    [
        (b"cnumpy\nndarray\n(I1000000000\ntR.", "not callable|readable"),  # ndarray(shape) would allocate
        (b"cnumpy.core.multiarray\n_reconstruct\n(cnumpy\nndarray\n(I1000000000\ntS'b'\ntR.", "other arguments"),
        (b"cnumpy\ndtype\n(S'O'\nI0\nI1\ntR.", "not a boolean, integer or float"),
        (b"cnumpy\ndtype\n(S'(100000000,)f8'\nI0\nI1\ntR.", "not a boolean, integer or float"),
        (b"cnumpy\ndtype\n(S'f4'\nI0\nI1\ntR(I3\nS'<'\nNN(S'a'\ntNI-1\nI-1\nI1\ntb.", "not a plain number type"),
        (b"cnumpy\ndtype\n(S'f4'\nI0\nI1\ntR.", "bare dtype"),
        (b"c_codecs\nencode\n(Vx\nS'zlib'\ntR.", "only latin1"),
        (b"(S'text'\nI1\nt.", "a str where arrays"),
        (b"(dp0\n.", "a dict where arrays"),
    ],
)
def test_arrays_are_rebuilt_only_from_checked_arguments(tmp_path, payload, message):
    path = _write(tmp_path / "bad.pkl.gz", payload)
    with pytest.raises(BookPickleError, match=message) as info:
        read_book_pickle(path)
    assert str(path) in str(info.value) and "\n" not in str(info.value)


def test_array_data_must_match_its_shape(tmp_path):
    good = Py2Pickler(2).dumps(np.zeros((2, 784), np.float32))
    data = b"T" + struct.pack("<i", 6272) + bytes(6272)
    assert good.count(data) == 1
    cut = good.replace(data, b"T" + struct.pack("<i", 6268) + bytes(6268))
    path = _write(tmp_path / "short.pkl.gz", cut)
    with pytest.raises(BookPickleError, match=r"needs 6272 bytes, the file has 6268"):
        read_book_pickle(path)


# -- truncated, bombed, wrong files: one line naming the file ----------------------------------------------------
def _one_line(path, match, **kw):
    with pytest.raises(BookPickleError, match=match) as info:
        read_book_pickle(path, **kw)
    assert str(info.value).startswith(str(path)) and "\n" not in str(info.value)


@pytest.mark.parametrize("keep", [0.1, 0.5, 0.99])
def test_truncated_files_are_one_line_errors(tmp_path, keep):
    payload = pickle.dumps(_splits(), protocol=2)
    raw = _write(tmp_path / "raw.pkl", payload[: int(len(payload) * keep)], compress=False)
    _one_line(raw, "truncated|not a readable pickle|needs")
    packed = gzip.compress(payload, mtime=0)
    gz = tmp_path / "cut.pkl.gz"
    gz.write_bytes(packed[: int(len(packed) * keep)])
    _one_line(gz, "truncated|corrupt")


def test_empty_garbage_and_trailing_bytes_are_one_line_errors(tmp_path):
    _one_line(_write(tmp_path / "empty.pkl", b"", compress=False), "not a readable pickle")
    _one_line(_write(tmp_path / "noise.pkl", bytes(range(256)) * 4, compress=False), "not a readable pickle|refused")
    _one_line(_write(tmp_path / "tail.pkl.gz", pickle.dumps(_splits(), protocol=2) + b"extra"), "trailing bytes")


def test_a_gzip_bomb_stops_at_the_limit_without_decompressing_it(tmp_path):
    bomb = tmp_path / "bomb.pkl.gz"
    # A valid pickle opening a 512 MiB string, then zeros: ~0.5 MB compressed.
    header = b"\x80\x04B" + struct.pack("<I", 2**29)
    with gzip.open(bomb, "wb") as out:
        out.write(header)
        block = bytes(1 << 20)
        for _ in range(512):
            out.write(block)
        out.write(b".")
    assert bomb.stat().st_size < 1 << 21
    tracemalloc.start()
    try:
        _one_line(bomb, r"more than 4 times the limit of 16777216 bytes", max_bytes=1 << 24)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 1 << 23


def test_a_declared_length_beyond_what_the_file_can_hold_is_refused_before_allocating(tmp_path):
    path = _write(tmp_path / "liar.pkl", b"\x80\x04\x8e" + struct.pack("<Q", 2**30) + b"xx.", compress=False)
    tracemalloc.start()
    try:
        _one_line(path, "more than a file of its size can hold")
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 1 << 20
    array8 = _write(tmp_path / "array8.pkl.gz", b"\x80\x05\x96" + struct.pack("<Q", 2**31) + b".")
    _one_line(array8, "more than a file of its size can hold")


def test_a_flood_of_tiny_opcodes_is_bounded(tmp_path):
    path = _write(tmp_path / "lists.pkl.gz", b"]" * 300_000 + b".")
    _one_line(path, "more than 65536 pickle operations", max_bytes=1 << 20)


def test_the_environment_limit_applies(tmp_path, monkeypatch):
    payload = pickle.dumps(_splits(), protocol=4)  # 30 images: 94,320 bytes of arrays, ~94 KB of stream
    path = _write(tmp_path / "m.pkl.gz", payload)
    monkeypatch.setenv("PORTABLE_NN_MAX_IDX_BYTES", "16K")  # the stream may be 64K: refused while reading
    _one_line(path, r"more than 4 times the limit of 16384 bytes \(set \$PORTABLE_NN_MAX_IDX_BYTES")
    monkeypatch.setenv("PORTABLE_NN_MAX_IDX_BYTES", "64K")  # the stream fits in 256K, the arrays not in 64K
    _one_line(path, r"its arrays hold more than the limit of 65536 bytes \(set \$PORTABLE_NN_MAX_IDX_BYTES")
    monkeypatch.setenv("PORTABLE_NN_MAX_IDX_BYTES", "94320")
    _assert_splits(load_book_mnist(path), _splits())


@pytest.mark.parametrize(
    "obj, message",
    [
        ("just text", "str where arrays"),
        ((1, 2), "expected \\(training, validation, test\\)"),
        (((np.zeros((2, 784), np.float32),), (0, 0), (0, 0)), "must be an \\(images, labels\\) pair"),
        (((np.zeros((2, 783), np.float32), np.zeros(2, np.int64)),) * 3, "float \\(n, 784\\) array"),
        (((np.zeros((2, 784), np.int64), np.zeros(2, np.int64)),) * 3, "float \\(n, 784\\) array"),
        (((np.full((2, 784), 2.0, np.float32), np.zeros(2, np.int64)),) * 3, "in \\[0, 1\\]"),
        (((np.zeros((2, 784), np.float32), np.zeros(3, np.int64)),) * 3, "must be 2 integers"),
        (((np.zeros((2, 784), np.float32), np.array([0, 10])),) * 3, "digits 0-9"),
        (((np.zeros((2, 784), np.float32), np.array([0.5, 1.0])),) * 3, "must be 2 integers"),
        (([[np.zeros(784, np.float32), np.zeros(783, np.float32)], [0, 1]],) * 3, "image 1 must be a float \\(784,\\)"),
    ],
)
def test_wrong_layouts_are_refused_naming_the_file(tmp_path, obj, message):
    path = _write(tmp_path / "wrong.pkl.gz", pickle.dumps(obj, protocol=2))
    with pytest.raises(BookPickleError, match=message) as info:
        load_book_mnist(path)
    assert str(path) in str(info.value) and "\n" not in str(info.value)


def test_a_directory_or_fifo_is_not_read_as_a_pickle(tmp_path):
    with pytest.raises(IsADirectoryError):
        read_book_pickle(tmp_path)
    fifo = tmp_path / "fifo.pkl"
    import os

    os.mkfifo(fifo)
    with pytest.raises(BookPickleError, match="not a regular file"):
        read_book_pickle(fifo)


def test_is_book_pickle_goes_by_the_name():
    assert bookpickle.is_book_pickle("../data/mnist_expanded.pkl.gz")
    assert bookpickle.is_book_pickle("MNIST.PKL")
    assert not bookpickle.is_book_pickle("../data/mnist")


# -- the loaders take the book's files ---------------------------------------------------------------------------
def _book_file(tmp_path, name="mnist.pkl.gz", n=(60, 10, 10), layout="mnist"):
    splits = _splits(n)
    obj = splits if layout == "mnist" else _expanded(splits)
    return _write(tmp_path / name, Py2Pickler(2).dumps(obj)), splits


@pytest.fixture
def no_download(monkeypatch):
    """Any download attempt fails the test."""
    from portable_nn._data import download

    def refuse(*args, **kwargs):
        raise AssertionError(f"a download was attempted: {args}")

    monkeypatch.setattr(download, "download_file", refuse)


def test_load_data_is_the_books_layout(tmp_path, no_download):
    path, splits = _book_file(tmp_path)
    got = load_data(path)
    _assert_splits(got, splits)


def test_load_data_wrapper_reads_the_pickle(tmp_path, no_download):
    path, ((tx, ty), _, (_, sy)) = _book_file(tmp_path)
    training, validation, test = load_data_wrapper(str(path))
    assert (len(training), len(validation), len(test)) == (60, 10, 10)
    x, y = training[7]
    assert x.shape == (784, 1) and y.shape == (10, 1) and int(np.argmax(y)) == ty[7]
    np.testing.assert_allclose(x[:, 0], tx[7])
    x, label = test[3]
    assert label == sy[3] and isinstance(label, int)
    np.testing.assert_allclose(training.dataset.inputs, tx)


@pytest.mark.parametrize("layout", ["mnist", "expanded"])
def test_load_data_shared_reads_the_pickle_as_the_books_pairs(tmp_path, no_download, layout):
    name = "mnist.pkl.gz" if layout == "mnist" else "mnist_expanded.pkl.gz"
    path, splits = _book_file(tmp_path, name, layout=layout)
    training, validation, test = network3.load_data_shared(path)
    for pair, (x, y) in zip((training, validation, test), splits):
        got_x, _ = pair
        np.testing.assert_array_equal(got_x.eval(), x)
        np.testing.assert_array_equal(pair[1].get_value(), y)
        assert pair.dataset.inputs.dtype == np.float32 and np.shares_memory(pair.dataset.inputs, got_x)
    expanded = network3.load_expanded_training_data(path)
    np.testing.assert_array_equal(expanded.inputs, splits[0][0])


@pytest.mark.parametrize(
    "loader",
    [load_data, load_data_wrapper, network3.load_data_shared, network3.load_expanded_training_data],
    ids=["load_data", "load_data_wrapper", "load_data_shared", "load_expanded_training_data"],
)
@pytest.mark.parametrize("name", ["mnist.pkl.gz", "data/mnist_expanded.pkl.gz", "x.pkl"])
def test_a_missing_pickle_is_never_a_directory_nor_a_download(tmp_path, monkeypatch, no_download, loader, name):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(FileNotFoundError, match=r"no such file .*never downloaded"):
        loader(name)
    assert sorted(p.name for p in tmp_path.rglob("*")) == []


def test_a_file_that_is_not_a_pickle_is_refused_not_made_a_directory(tmp_path, no_download):
    path = tmp_path / "mnist"
    path.write_bytes(b"not a pickle at all")
    for loader in (load_data, load_data_wrapper, network3.load_data_shared):
        with pytest.raises(BookPickleError, match=r"mnist: not a readable pickle|mnist: not one of"):
            loader(path)
    assert path.read_bytes() == b"not a pickle at all"


# -- fuzzing: any bytes give the arrays or one BookPickleError line, within bounded memory -------------------------
_SMALL = _splits((3, 2, 2))
_VALID = [
    Py2Pickler(0).dumps(_SMALL),
    Py2Pickler(2).dumps(_expanded(_SMALL)),
    pickle.dumps(_SMALL, protocol=2),
    pickle.dumps(_expanded(_SMALL), protocol=4),
    pickle.dumps(_SMALL, protocol=5),
]
FUZZ = settings(max_examples=150, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])


def _check_fuzzed(content: bytes, name: str) -> None:
    result, error, peak = read_in_tmp(load_book_mnist, name, content)
    if error is None:
        assert len(result) == 3 and all(x.shape[1:] == (784,) and x.dtype == np.float32 for x, _ in result)
    else:
        assert isinstance(error, (BookPickleError, OSError)), repr(error)
        assert "\n" not in str(error) and name in str(error)
    assert peak < 16 * len(content) + (4 << 20), f"{peak} bytes traced for a {len(content)}-byte file"


@FUZZ
@given(st.sampled_from(range(len(_VALID))), st.booleans(), st.data())
def test_fuzzed_pickles_are_read_or_refused_in_one_line(which, compress, data):
    content = gzip.compress(_VALID[which], mtime=0) if compress else _VALID[which]
    _check_fuzzed(mutate_bytes(data, content), "fuzzed.pkl.gz" if compress else "fuzzed.pkl")


@FUZZ
@given(st.binary(max_size=600))
def test_arbitrary_bytes_are_refused_in_one_line(content):
    _check_fuzzed(content, "noise.pkl")
