"""Saving and loading: any backend to any other, both formats, atomic, checked."""

from __future__ import annotations

import json

import numpy as np
import pytest
from helpers import assert_close, synthetic_problem

from portable_nn import ModelFileError, Network, load, to_numpy

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
