"""Fuzzing the file readers with Hypothesis: bad input raises the documented error, memory stays bounded.

For ``read_idx`` (raw and gzip, arbitrary bytes and mutated valid files) and
``read_history`` (arbitrary bytes, arbitrary JSON): the only exceptions are
:class:`IDXFormatError` / :class:`HistoryFileError`; whatever is returned is
consistent; the peak memory traced while reading stays under a bound set by
the file's size, never by what its header claims; no file is left behind.
Every test is bounded (``max_examples``), the whole file runs in seconds.
"""

from __future__ import annotations

import gzip
import json
import math
import struct
import tempfile
import zlib
from pathlib import Path

import numpy as np
from helpers import mutate_bytes, read_in_tmp
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from portable_nn._base.limits import parse_size
from portable_nn._data.idx import IDXFormatError, read_idx
from portable_nn.history import HistoryFileError, read_history

FUZZ = settings(max_examples=150, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])
#: Deflate's largest expansion (1032:1) plus header slack: the most a gzip file of n bytes may claim.
GZIP_RATIO, GZIP_SLACK = 1032, 1 << 12
#: Allocation overhead allowed on top of the array: file and decompression buffers, exception objects.
OVERHEAD = 2 << 20


def _check_idx(content: bytes, name: str) -> np.ndarray | None:
    result, error, peak = read_in_tmp(read_idx, name, content)
    is_gzip = content[:2] == b"\x1f\x8b"
    most = GZIP_RATIO * len(content) + GZIP_SLACK if is_gzip else len(content)
    assert peak <= most + OVERHEAD, f"peak {peak} bytes for a {len(content)}-byte file"
    if error is not None:
        assert isinstance(error, IDXFormatError), f"unexpected {type(error).__name__}: {error}"
        assert str(error).startswith(str(Path(tempfile.gettempdir()))) and name in str(error)
        return None
    assert isinstance(result, np.ndarray) and result.dtype == np.uint8
    assert result.nbytes == math.prod(result.shape) <= most
    return result


def _idx_bytes(array: np.ndarray) -> bytes:
    return struct.pack(f">HBB{array.ndim}I", 0, 8, array.ndim, *array.shape) + array.tobytes()


small_arrays = st.lists(st.integers(0, 5), min_size=0, max_size=4).flatmap(
    lambda shape: st.binary(min_size=math.prod(shape), max_size=math.prod(shape)).map(
        lambda data: np.frombuffer(data, dtype=np.uint8).reshape(shape)
    )
)


@FUZZ
@given(st.binary(max_size=600))
def test_read_idx_on_arbitrary_bytes(content):
    _check_idx(content, "any.idx")


@FUZZ
@given(st.binary(max_size=600))
def test_read_idx_on_arbitrary_gzip_content(content):
    _check_idx(gzip.compress(content), "any.idx.gz")


@FUZZ
@given(
    st.integers(0, 255).flatmap(
        lambda dims: st.tuples(st.just(dims), st.lists(st.integers(0, 2**32 - 1), max_size=dims))
    ),
    st.binary(max_size=64),
    st.booleans(),
)
def test_read_idx_on_arbitrary_headers(dims_and_shape, tail, compress):
    dims, shape = dims_and_shape
    content = struct.pack(f">HBB{len(shape)}I", 0, 8, dims, *shape) + tail
    _check_idx(gzip.compress(content) if compress else content, "header.idx.gz" if compress else "header.idx")


@settings(max_examples=25, deadline=None, database=None)
@given(st.integers(0, 2**31), st.integers(4 << 20, 16 << 20))
def test_read_idx_on_gzip_bombs(declared, expands_to):
    packer = zlib.compressobj(9, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
    parts = [packer.compress(b"\x00\x00\x08\x01" + struct.pack(">I", declared))]
    parts += [packer.compress(bytes(1 << 20)) for _ in range(expands_to >> 20)]
    content = b"".join([*parts, packer.flush()])
    result, error, peak = read_in_tmp(read_idx, "bomb.idx.gz", content)
    assert isinstance(error, IDXFormatError) or result.nbytes == declared == expands_to
    assert peak <= min(declared, GZIP_RATIO * len(content) + GZIP_SLACK) + OVERHEAD


@FUZZ
@given(small_arrays, st.booleans(), st.data())
def test_read_idx_on_mutated_valid_files(array, compress, data):
    valid = _idx_bytes(array)
    content = gzip.compress(valid, mtime=0) if compress else valid
    # unchanged, the file reads back exactly
    np.testing.assert_array_equal(_check_idx(content, "valid.idx"), array)
    _check_idx(mutate_bytes(data, content), "mutated.idx")


@FUZZ
@given(st.binary(max_size=400), st.sampled_from(["h.json", "h.csv"]))
def test_read_history_on_arbitrary_bytes(content, name):
    _check_history(content, name)


json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**70), 2**70)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=8),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4),
    max_leaves=20,
)
history_like = st.lists(
    st.dictionaries(
        st.sampled_from(
            ["epoch", "seconds", "correct", "n_test", "accuracy", "training_correct", "n_train", "training_cost", "eta"]
        ),
        json_values,
        max_size=6,
    ),
    max_size=4,
)


@FUZZ
@given(json_values | history_like)
def test_read_history_on_arbitrary_json(value):
    _check_history(json.dumps(value).encode(), "h.json")


def _check_history(content: bytes, name: str) -> None:
    result, error, peak = read_in_tmp(read_history, name, content)
    assert peak <= 64 * len(content) + OVERHEAD
    if error is not None:
        assert isinstance(error, HistoryFileError), f"unexpected {type(error).__name__}: {error}"
        assert name in str(error)
        return
    assert isinstance(result, list)
    for row in result:
        assert isinstance(row, dict)
        assert isinstance(row["epoch"], int) and not isinstance(row["epoch"], bool) and row["epoch"] >= 0
        for fraction in ("accuracy", "training_accuracy"):
            assert row.get(fraction) is None or 0 <= row[fraction] <= 1
        for part, whole in (("correct", "n_test"), ("training_correct", "n_train")):
            if row.get(part) is not None and row.get(whole) is not None:
                assert row[part] <= row[whole]
        for value in row.values():
            assert not isinstance(value, (str, dict, bool))


@settings(max_examples=300, deadline=None, database=None)
@given(st.text(max_size=20))
def test_parse_size_returns_a_positive_int_or_raises_value_error(text):
    try:
        value = parse_size(text, "$X")
    except ValueError as exc:
        assert str(exc).startswith("$X: expected a positive number of bytes")
    else:
        assert isinstance(value, int) and value > 0
