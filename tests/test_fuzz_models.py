"""Fuzzing the model loader with Hypothesis: only ModelFileError, bounded memory, no leftovers.

``portable_nn.load`` on ``.npz`` and ``.json`` files made of arbitrary bytes,
arbitrary JSON, arbitrary npy headers inside a zip, and mutations of valid
files (stored and deflated).  For each: the only exception is
:class:`ModelFileError` naming the file; a model that loads has finite
parameters of the shapes its sizes say; the peak memory traced while loading
stays under a bound set by the file's size (a deflated member may expand
1032:1), never by what its headers claim; the directory holds only the file
afterwards.  Every test is bounded (``max_examples``); the file runs in
seconds.
"""

from __future__ import annotations

import io
import json
import struct
import tempfile
import warnings
import zipfile
from pathlib import Path

import numpy as np
from helpers import mutate_bytes, read_in_tmp
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from portable_nn import ModelFileError, Network, load, to_numpy

FUZZ = settings(max_examples=120, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])
#: Deflate's largest expansion: the most a deflated member of n bytes may hold.
DEFLATE_RATIO = 1032
#: Allocation overhead allowed on top of the arrays: zip and parser state, the network object, exceptions.
OVERHEAD = 3 << 20
SIZES = [4, 3, 2]


def _check(name: str, content: bytes, *, deflated: bool = True):
    result, error, peak = read_in_tmp(load, name, content)
    ratio = DEFLATE_RATIO if deflated and name.endswith(".npz") else 64
    assert peak <= ratio * len(content) + OVERHEAD, f"peak {peak} bytes for a {len(content)}-byte file"
    if error is not None:
        assert isinstance(error, ModelFileError), f"unexpected {type(error).__name__}: {error}"
        assert name in str(error), f"the message does not name the file: {error}"
        return None
    sizes = result.sizes
    assert len(sizes) >= 2 and all(isinstance(s, int) and s >= 1 for s in sizes)
    for i, (w, b) in enumerate(zip(result.weights, result.biases)):
        w, b = to_numpy(w), to_numpy(b)
        assert w.shape == (sizes[i + 1], sizes[i]) and b.shape == (sizes[i + 1], 1)
        assert np.all(np.isfinite(w)) and np.all(np.isfinite(b))
    return result


def _valid(suffix: str, compressed: bool = False) -> bytes:
    with tempfile.TemporaryDirectory() as directory:
        path = Network(SIZES, seed=0).save(Path(directory) / f"m{suffix}")
        if compressed:
            with np.load(path, allow_pickle=False) as archive:
                arrays = {key: archive[key] for key in archive.files}
            buffer = io.BytesIO()
            np.savez_compressed(buffer, **arrays)
            return buffer.getvalue()
        return path.read_bytes()


VALID = {"npz": _valid(".npz"), "npz-deflated": _valid(".npz", compressed=True), "json": _valid(".json")}


def test_the_valid_files_load():
    for kind, content in VALID.items():
        net = _check("model.json" if kind == "json" else "model.npz", content)
        assert net is not None and net.sizes == SIZES, kind


@FUZZ
@given(st.binary(max_size=600), st.sampled_from(["any.npz", "any.json"]))
def test_load_on_arbitrary_bytes(content, name):
    _check(name, content)


@FUZZ
@given(st.sampled_from(sorted(VALID)), st.data())
def test_load_on_mutated_valid_files(kind, data):
    name = "mutated.json" if kind == "json" else "mutated.npz"
    _check(name, mutate_bytes(data, VALID[kind]), deflated=kind != "npz")


json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**70), 2**70)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=8),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4),
    max_leaves=20,
)
numbers = st.integers(-3, 3) | st.floats(-10, 10) | st.booleans() | st.none() | st.text(max_size=2)
model_like = st.fixed_dictionaries(
    {
        "sizes": st.lists(st.integers(-1, 4), max_size=4) | json_values,
        "weights": st.lists(st.lists(st.lists(numbers, max_size=4), max_size=4), max_size=3) | json_values,
        "biases": st.lists(st.lists(st.lists(numbers, max_size=1), max_size=4), max_size=3) | json_values,
    },
    optional={"cost": json_values | st.just("CrossEntropyCost"), "activation": json_values | st.just("tanh")},
)


@FUZZ
@given(json_values | model_like)
def test_load_on_arbitrary_json(value):
    _check("any.json", json.dumps(value).encode())


def _npy(shape, descr: str, data: bytes, version: int) -> bytes:
    header = repr({"descr": descr, "fortran_order": False, "shape": tuple(shape)}).encode("latin1")
    header += b" " * (-(len(header) + 11) % 64) + b"\n"
    length = struct.pack("<H", len(header)) if version == 1 else struct.pack("<I", len(header))
    return b"\x93NUMPY" + bytes([version, 0]) + length + header + data


members = st.tuples(
    st.sampled_from(["sizes.npy", "meta.npy", "weights_0.npy", "biases_0.npy", "weights_1.npy", "x.npy"]),
    st.lists(st.integers(0, 2**40) | st.integers(0, 5), max_size=3),
    st.sampled_from(["<f8", "<f4", "<f2", "<i8", "<U5", "|b1", "<c16", "|V8", "|O", ">f8"]),
    st.binary(max_size=64),
    st.sampled_from([1, 2]),
)


@FUZZ
@given(st.lists(members, max_size=5), st.sampled_from([zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED]))
def test_load_on_arbitrary_npy_headers(entries, compression):
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", compression=compression) as archive, warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # zipfile warns about duplicate names: fuzz them too
        for name, shape, descr, data, version in entries:
            archive.writestr(name, _npy(shape, descr, data, version))
    _check("headers.npz", out.getvalue(), deflated=compression == zipfile.ZIP_DEFLATED)


@settings(max_examples=20, deadline=None, database=None)
@given(st.integers(1, 2**20), st.integers(1, 2**20))
def test_load_never_allocates_what_a_deflated_member_claims(rows, cols):
    # A consistent zip entry (declared size = header + data) of zeros whose header claims rows x cols.
    data = bytes(min(rows * cols * 8, 1 << 22))
    content = io.BytesIO()
    with zipfile.ZipFile(content, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("sizes.npy", _npy((3,), "<i8", np.asarray([cols, rows, 2]).astype("<i8").tobytes(), 1))
        archive.writestr("weights_0.npy", _npy((rows, cols), "<f8", data, 1))
    raw = content.getvalue()
    _, error, peak = read_in_tmp(load, "claims.npz", raw)
    assert isinstance(error, ModelFileError), error
    assert peak <= min(rows * cols * 8, DEFLATE_RATIO * len(raw)) + OVERHEAD
