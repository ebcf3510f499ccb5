"""Saving and loading: any backend to any other, both formats, atomic, checked."""

from __future__ import annotations

import io
import json
import re
import stat
import tracemalloc
import zipfile

import numpy as np
import pytest
from helpers import assert_close, synthetic_problem

from portable_nn import ModelFileError, Network, load, to_numpy
from portable_nn._math import initializers

SIZES = [6, 5, 3]


@pytest.mark.parametrize("suffix", [".npz", ".json"])
def test_model_saved_on_one_backend_loads_identically_on_another(backend, tmp_path, suffix):
    inputs, labels = synthetic_problem(60, n_in=6, n_out=3)
    trained = Network(SIZES, "numpy", seed=1)
    trained.SGD((inputs, labels), 3, 10, 3.0, quiet=True)
    path = trained.save(tmp_path / f"model{suffix}")
    loaded = load(path, backend, device=backend.device)
    assert loaded.sizes == SIZES and loaded.dtype == "float64"
    for got, want in zip(loaded.weights + loaded.biases, trained.weights + trained.biases):
        assert_close(got, to_numpy(want), loaded.backend, "float64", tol=0)
    assert loaded.evaluate((inputs, labels)) == trained.evaluate((inputs, labels))
    # and back: saved from this backend, loaded on NumPy
    again = load(loaded.save(tmp_path / f"again{suffix}"))
    for got, want in zip(again.weights, trained.weights):
        np.testing.assert_array_equal(to_numpy(got), to_numpy(want))


def test_float32_npz_keeps_its_dtype(tmp_path):
    net = Network(SIZES, dtype="float32", seed=0)
    loaded = load(net.save(tmp_path / "m.npz"))
    assert loaded.dtype == "float32"
    assert load(tmp_path / "m.npz", dtype="float64").dtype == "float64"


def test_json_is_nielsens_network2_format(tmp_path):
    net = Network(SIZES, seed=0)
    data = json.loads(net.save(tmp_path / "m.json").read_text())
    # The book's four keys, plus ours (which the book's network2.load ignores).
    assert set(data) == {"sizes", "weights", "biases", "cost", "format", "version", "activation"}
    assert data["sizes"] == SIZES and data["cost"] == "QuadraticCost" and data["activation"] == "sigmoid"
    assert np.asarray(data["weights"][0]).shape == (5, 6) and np.asarray(data["biases"][1]).shape == (3, 1)


def test_npz_has_no_pickled_objects(tmp_path):
    path = Network(SIZES, seed=0).save(tmp_path / "m.npz")
    with np.load(path, allow_pickle=False) as archive:
        assert sorted(archive.files) == ["biases_0", "biases_1", "meta", "sizes", "weights_0", "weights_1"]
        assert json.loads(str(archive["meta"]))["cost"] == "QuadraticCost"


def _write_json(path, **overrides):
    net = Network(SIZES, seed=0)
    data = {
        "sizes": SIZES,
        "weights": [to_numpy(w).tolist() for w in net.weights],
        "biases": [to_numpy(b).tolist() for b in net.biases],
        "cost": "QuadraticCost",
    }
    data.update(overrides)
    path.write_text(json.dumps(data))
    return path


@pytest.mark.parametrize(
    ("override", "pattern"),
    [
        ({"sizes": [6, 4, 3]}, r"weights\[0\] has shape \(5, 6\), expected \(4, 6\)"),
        ({"sizes": [6]}, r"sizes must be a list of at least 2"),
        ({"biases": [[[0.0]] * 5]}, r"need 2 weight and bias arrays; got 2 and 1"),
        ({"cost": "HingeCost"}, r"unknown cost 'HingeCost'"),
        ({"weights": "nonsense"}, r"weights\[0\]|nested lists"),
    ],
)
def test_bad_json_models(tmp_path, override, pattern):
    with pytest.raises(ModelFileError, match=pattern):
        load(_write_json(tmp_path / "bad.json", **override))


def test_non_finite_and_missing_keys(tmp_path):
    net = Network(SIZES, seed=0)
    weights = [to_numpy(w).tolist() for w in net.weights]
    weights[1][0][0] = float("nan")
    with pytest.raises(ModelFileError, match=r"layer 1 holds NaN or infinite values"):
        load(_write_json(tmp_path / "nan.json", weights=weights))
    (tmp_path / "keys.json").write_text(json.dumps({"sizes": SIZES}))
    with pytest.raises(ModelFileError, match=r"needs keys 'sizes', 'weights', 'biases'"):
        load(tmp_path / "keys.json")
    np.savez(tmp_path / "keys.npz", sizes=np.asarray(SIZES), weights_0=np.zeros((5, 6)))
    with pytest.raises(ModelFileError, match=r"keys .* do not match a 3-layer model"):
        load(tmp_path / "keys.npz")
    (tmp_path / "junk.npz").write_bytes(b"not a zip file")
    with pytest.raises(ModelFileError, match=r"junk\.npz: not a readable \.npz model"):
        load(tmp_path / "junk.npz")


def test_bad_path_suffix_and_missing_file(tmp_path):
    net = Network(SIZES, seed=0)
    with pytest.raises(ValueError, match=r"path must end in .npz or .json"):
        net.save(tmp_path / "model.pkl")
    assert list(tmp_path.iterdir()) == []
    with pytest.raises(FileNotFoundError, match=r"model file not found"):
        load(tmp_path / "absent.npz")


def test_failed_write_leaves_the_old_file(tmp_path, monkeypatch):
    path = Network(SIZES, seed=0).save(tmp_path / "m.npz")
    before = path.read_bytes()

    def boom(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(np, "savez", boom)
    with pytest.raises(KeyboardInterrupt):
        Network(SIZES, seed=1).save(path)
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["m.npz"]


# -- strict types, declared sizes, memory (issue 9, classes 4 and 6) ----------------------------------------
def _npz_bytes(**arrays) -> bytes:
    buffer = io.BytesIO()
    np.savez(buffer, allow_pickle=False, **arrays)
    return buffer.getvalue()


def _model_arrays(sizes=SIZES, dtype=np.float64):
    net = Network(sizes, seed=0)
    arrays = {"sizes": np.asarray(sizes, dtype=np.int64)}
    arrays.update({f"weights_{i}": to_numpy(w).astype(dtype) for i, w in enumerate(net.weights)})
    arrays.update({f"biases_{i}": to_numpy(b).astype(dtype) for i, b in enumerate(net.biases)})
    return arrays


def _with_npy_header(content: bytes, member: str, shape: tuple[int, ...]) -> bytes:
    """``content`` (an npz) with ``member``'s npy header rewritten to declare ``shape`` (data unchanged)."""
    source = zipfile.ZipFile(io.BytesIO(content))
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as target:
        for info in source.infolist():
            data = source.read(info)
            if info.filename == member:
                header = {"descr": "<f8", "fortran_order": False, "shape": shape}
                buffer = io.BytesIO()
                np.lib.format.write_array_header_1_0(buffer, header)
                data = buffer.getvalue() + data[128:]  # np.savez's headers are 128 bytes
            target.writestr(info.filename, data)
    return out.getvalue()


@pytest.mark.parametrize(
    ("member", "shape", "pattern"),
    [
        ("weights_0.npy", (10**6, 10**6), r"declare more than \d+ bytes|declares \d+ bytes of data"),
        ("weights_0.npy", (2**40, 2**20), r"declare more than \d+ bytes|declares \d+ bytes of data"),
        ("biases_1.npy", (5, 7), r"declares \d+ bytes of data but its zip entry holds"),
    ],
)
def test_npz_header_claiming_terabytes_is_refused_before_allocating(tmp_path, member, shape, pattern):
    path = tmp_path / "claims.npz"
    path.write_bytes(_with_npy_header(_npz_bytes(**_model_arrays()), member, shape))
    tracemalloc.start()
    try:
        with pytest.raises(ModelFileError, match=pattern):
            load(path)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 4 << 20, f"{peak} bytes traced while refusing a {path.stat().st_size}-byte file"


def test_compressed_model_over_the_parameter_limit_is_refused_before_reading(tmp_path, monkeypatch):
    # A [784, 200, 10] model of zeros compresses to a few kB but declares 159,010 parameters; with the
    # limit at 100,000 (as 5e7 is for a 200,000-unit layer) it is refused from its sizes alone.
    sizes = [784, 200, 10]
    arrays = {"sizes": np.asarray(sizes)}
    arrays.update({f"weights_{i}": np.zeros((o, n)) for i, (n, o) in enumerate(zip(sizes[:-1], sizes[1:]))})
    arrays.update({f"biases_{i}": np.zeros((o, 1)) for i, o in enumerate(sizes[1:])})
    path = tmp_path / "wide.npz"
    np.savez_compressed(path, **arrays)
    assert path.stat().st_size < 20_000
    monkeypatch.setenv("PORTABLE_NN_MAX_PARAMETERS", "100000")
    tracemalloc.start()
    try:
        with pytest.raises(
            ModelFileError, match=r"wide\.npz: .*159,010 weights and biases.*PORTABLE_NN_MAX_PARAMETERS"
        ):
            load(path)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 1 << 20, "nothing of the declared 1.3 MB may be allocated"
    monkeypatch.setenv("PORTABLE_NN_MAX_PARAMETERS", "200000")
    assert load(path).sizes == sizes


def test_load_builds_no_random_weights(tmp_path, monkeypatch):
    path = Network(SIZES, seed=0).save(tmp_path / "m.npz")

    def forbidden(*args, **kwargs):
        raise AssertionError("load() must not draw random weights")

    monkeypatch.setattr(initializers, "gaussian_layers", forbidden)
    monkeypatch.setattr(initializers, "scaled_gaussian_layers", forbidden)
    assert load(path).sizes == SIZES


@pytest.mark.parametrize(
    ("mutate", "pattern"),
    [
        (
            lambda d: d["weights"][0][0].__setitem__(0, "0.5"),
            r"weights\[0\]\[0\]\[0\] is str '0\.5'; expected a number",
        ),
        (lambda d: d["weights"][1][2].__setitem__(1, True), r"weights\[1\]\[2\]\[1\] is bool True"),
        (lambda d: d["biases"][0][0].__setitem__(0, False), r"biases\[0\]\[0\]\[0\] is bool False"),
        (lambda d: d["biases"][1][0].__setitem__(0, None), r"biases\[1\]\[0\]\[0\] is NoneType"),
        (lambda d: d["weights"][0][1].append(0.0), r"weights\[0\] row 1 has 7 numbers, row 0 has 6"),
        (lambda d: d["weights"][0][0].__setitem__(0, [0.5]), r"weights\[0\]\[0\]\[0\] is list"),
        (lambda d: d["weights"][0][0].__setitem__(0, 10**400), r"weights\[0\] holds an integer too large"),
        (lambda d: d.__setitem__("sizes", {"6": 5}), r"'sizes' must be a list of ints"),
        (lambda d: d.__setitem__("sizes", [6.0, 5, 3]), r"'sizes' must be a list of ints"),
        (lambda d: d.__setitem__("sizes", [True, 5, 3]), r"'sizes' must be a list of ints"),
        (lambda d: d.__setitem__("activation", {"a": 1}), r"unknown activation \{'a': 1\}"),
        (lambda d: d.__setitem__("cost", ["QuadraticCost"]), r"unknown cost \['QuadraticCost'\]"),
        (lambda d: d.__setitem__("sizes", [784, 200_000, 10]), r"more than the limit.*PORTABLE_NN_MAX_PARAMETERS"),
    ],
)
def test_json_models_hold_only_json_numbers(tmp_path, mutate, pattern):
    path = _write_json(tmp_path / "good.json")
    data = json.loads(path.read_text())
    mutate(data)
    path.write_text(json.dumps(data))
    with pytest.raises(ModelFileError, match=pattern):
        load(path)


def test_json_text_errors_name_the_file(tmp_path):
    cases = {
        "deep.json": "[" * 5000 + "]" * 5000,
        "deep_objects.json": '{"a":' * 5000 + "1" + "}" * 5000,
        "digits.json": '{"sizes": [' + "9" * 5000 + "]}",
        "binary.json": b"\xff\xfe\x00garbage",
        "empty.json": b"",
    }
    for name, content in cases.items():
        path = tmp_path / name
        path.write_bytes(content.encode() if isinstance(content, str) else content)
        with pytest.raises(ModelFileError, match=re.escape(str(path))):
            load(path)


@pytest.mark.parametrize(
    ("arrays", "pattern"),
    [
        ({"weights_0": np.full((5, 6), "0.5")}, r"weights\[0\] holds <U3, expected real numbers"),
        ({"biases_1": np.ones((3, 1), dtype=bool)}, r"biases\[1\] holds bool"),
        ({"weights_1": np.ones((3, 5), dtype=np.complex128)}, r"weights\[1\] holds complex128"),
        ({"weights_0": np.ones((5, 6), dtype=np.float16)}, r"weights\[0\] is float16; expected float32 or float64"),
        ({"sizes": np.asarray([6.0, 5.0, 3.0])}, r"'sizes' must be a 1-D integer array"),
        ({"sizes": np.asarray([6, 0, 3])}, r"sizes must be a list of at least 2 positive ints"),
        ({"extra": np.zeros(3)}, r"unexpected member 'extra\.npy'"),
        ({"meta": np.asarray(json.dumps({"cost": "QuadraticCost", "activation": ["sigmoid"]}))}, r"unknown activation"),
        ({"meta": np.zeros(10)}, r"'meta' must be one short JSON string"),
    ],
)
def test_npz_models_hold_only_real_numbers(tmp_path, arrays, pattern):
    path = tmp_path / "bad.npz"
    path.write_bytes(_npz_bytes(**{**_model_arrays(), **arrays}))
    with pytest.raises(ModelFileError, match=pattern):
        load(path)


def test_truncated_empty_and_renamed_files(tmp_path):
    good = _npz_bytes(**_model_arrays())
    npy = io.BytesIO()
    np.save(npy, np.zeros((5, 6)))
    for name, content, pattern in [
        ("empty.npz", b"", r"the file is empty"),
        ("half.npz", good[: len(good) // 2], r"not a readable \.npz model"),
        ("array.npz", npy.getvalue(), r"not a readable \.npz model"),
        ("zip.npz", _zip_with(("notes.txt", b"hello")), r"unexpected member 'notes\.txt'"),
    ]:
        path = tmp_path / name
        path.write_bytes(content)
        with pytest.raises(ModelFileError, match=re.escape(str(path)) + ": " + pattern):
            load(path)
    directory = tmp_path / "dir.npz"
    directory.mkdir()
    with pytest.raises(ModelFileError, match=r"not a regular file"):
        load(directory)


def _zip_with(*members: tuple[str, bytes]) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as archive:
        for name, data in members:
            archive.writestr(name, data)
    return out.getvalue()


def test_save_refuses_non_finite_weights_and_writes_nothing(tmp_path):
    net = Network(SIZES, seed=0)
    old = Network(SIZES, seed=1).save(tmp_path / "m.npz")
    before = old.read_bytes()
    # as a diverged step leaves it (an assignment refuses NaN)
    list.__setitem__(net.weights, 1, net.weights[1] * float("nan"))
    for name in ("m.npz", "new.json"):
        with pytest.raises(ValueError, match=r"not saving .*layer 1 holds NaN or infinite values.*lower eta"):
            net.save(tmp_path / name)
    assert old.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.npz"]


def test_saving_over_a_private_model_keeps_its_mode(tmp_path):
    path = Network(SIZES, seed=0).save(tmp_path / "m.npz")
    path.chmod(0o600)
    Network(SIZES, seed=1).save(path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


# -- JSON only for what the book's network2.load reads as the same network; one format check for every chapter ----
@pytest.mark.parametrize(
    "options",
    [{"activation": "tanh"}, {"activation": "relu"}, {"cost": "LogLikelihoodCost"}],
    ids=["tanh", "relu", "softmax-log-likelihood"],
)
def test_json_of_a_network_the_book_would_misread_is_refused_before_writing(tmp_path, options):
    from portable_nn import network2

    net = network2.Network([4, 3, 2], seed=0, **options)
    target = tmp_path / "net.json"
    target.write_text("old")
    with pytest.raises(ValueError, match=r"network2\.load reads only sigmoid networks .* save it as \.npz instead"):
        net.save(target)
    assert target.read_text() == "old" and sorted(p.name for p in tmp_path.iterdir()) == ["net.json"]
    loaded = load(net.save(tmp_path / "net.npz"))  # .npz keeps it
    assert loaded.spec.hidden.name == net.spec.hidden.name and loaded.cost is net.cost


@pytest.mark.parametrize("cost", ["QuadraticCost", "CrossEntropyCost"])
def test_json_of_book_networks_is_still_written(tmp_path, cost):
    from portable_nn import network2

    data = json.loads(network2.Network([4, 3, 2], cost=cost, seed=0).save(tmp_path / "net.json").read_text())
    assert data["cost"] == cost and data["activation"] == "sigmoid"


def test_cli_refuses_a_json_save_of_a_tanh_network_before_training(tmp_path, capsys):
    from portable_nn.cli import main

    args = ["train", "--activation", "tanh", "--data-dir", str(tmp_path / "none"), "--save", str(tmp_path / "m.json")]
    with pytest.raises(SystemExit) as info:
        main(args)
    assert info.value.code == 2
    err = capsys.readouterr().err
    assert "--save" in err and "save it as .npz instead" in err and "Traceback" not in err
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("suffix", [".npz", ".json"])
@pytest.mark.parametrize(
    "meta, pattern",
    [
        ({"format": "portable_nn", "version": 99}, r"unsupported portable_nn format version 99"),
        ({"format": "portable_nn", "version": "1"}, r"unsupported portable_nn format version '1'"),
        ({"format": "portable_nn"}, r"unsupported portable_nn format version None"),
        ({"version": 2}, r"unsupported portable_nn format version 2"),
        ({"format": "keras", "version": 1}, r"a 'keras' file \(written by another program\?\)"),
    ],
)
def test_unknown_versions_and_other_programs_files_are_refused(tmp_path, suffix, meta, pattern):
    net = Network(SIZES, seed=0)
    path = net.save(tmp_path / f"m{suffix}")
    if suffix == ".json":
        data = json.loads(path.read_text())
        data.pop("format"), data.pop("version")
        path.write_text(json.dumps({**data, **meta}))
    else:
        with np.load(path) as archive:
            arrays = {k: archive[k] for k in archive.files}
        old = json.loads(str(arrays["meta"]))
        old.pop("format"), old.pop("version")
        arrays["meta"] = np.asarray(json.dumps({**old, **meta}))
        np.savez(path, **arrays)
    with pytest.raises(ModelFileError, match=pattern):
        load(path)


def test_network3_files_use_the_same_format_check(tmp_path):
    from portable_nn import network3

    net = network3.Network([network3.FullyConnectedLayer(4, 3), network3.SoftmaxLayer(3, 2)], 2, seed=0)
    path = net.save(tmp_path / "conv.npz")
    with np.load(path) as archive:
        arrays = {k: archive[k] for k in archive.files}
    meta = json.loads(str(arrays["meta"]))
    for change, pattern in (
        ({"version": 7}, "unsupported portable_nn.network3 format version 7"),
        ({"format": "portable_nn"}, "a 'portable_nn' file"),
    ):
        arrays["meta"] = np.asarray(json.dumps({**meta, **change}))
        np.savez(path, **arrays)
        with pytest.raises(ModelFileError, match=pattern):
            network3.load(path)
