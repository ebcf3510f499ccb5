"""Every backend matches the NumPy reference, and NumPy matches Nielsen's loop code."""

from __future__ import annotations

import numpy as np
import pytest
from helpers import (
    PARITY_TOL,
    assert_close,
    nielsen_pairs,
    nielsen_update_mini_batch,
    synthetic_problem,
)

from portable_nn import Network, to_numpy

SIZES = [6, 8, 3]


def _host(arrays):
    return [to_numpy(a).astype(np.float64) for a in arrays]


def test_numpy_update_mini_batch_equals_nielsens_loop():
    """The matrix update on NumPy == network.py's per-sample loop update, step after step."""
    inputs, labels = synthetic_problem(60, n_in=SIZES[0], n_out=SIZES[-1])
    pairs = nielsen_pairs(inputs, labels, SIZES[-1])
    net = Network(SIZES, "numpy", seed=2)
    biases, weights = _host(net.biases), _host(net.weights)
    for k in range(0, 60, 10):
        net.update_mini_batch(pairs[k : k + 10], 3.0)
        biases, weights = nielsen_update_mini_batch(biases, weights, pairs[k : k + 10], 3.0)
    for got, want in zip(net.biases + net.weights, biases + weights):
        assert_close(got, want, net.backend, "float64", tol=1e-12)


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_update_mini_batch_steps_match_numpy(backend, dtype):
    """Same seed and mini-batches: weights after 5 steps match NumPy within PARITY_TOL[dtype]."""
    inputs, labels = synthetic_problem(50, n_in=SIZES[0], n_out=SIZES[-1])
    pairs = nielsen_pairs(inputs, labels, SIZES[-1])
    net = Network(SIZES, backend, dtype=dtype, seed=7)
    ref = Network(SIZES, "numpy", dtype=dtype, seed=7)
    for k in range(0, 50, 10):
        net.update_mini_batch(pairs[k : k + 10], 3.0)
        ref.update_mini_batch(pairs[k : k + 10], 3.0)
    moved = max(
        float(np.max(np.abs(to_numpy(w) - to_numpy(w0))))
        for w, w0 in zip(ref.weights, Network(SIZES, "numpy", dtype=dtype, seed=7).weights)
    )
    assert moved > 1e-3, "the steps did not change the weights: the comparison would prove nothing"
    for got, want in zip(net.biases + net.weights, ref.biases + ref.weights):
        assert_close(got, to_numpy(want), net.backend, dtype)


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_sgd_epoch_matches_numpy(backend, dtype):
    """A full SGD epoch (shuffle, partial last batch, evaluation) matches NumPy."""
    inputs, labels = synthetic_problem(205, n_in=SIZES[0], n_out=SIZES[-1])
    net = Network(SIZES, backend, dtype=dtype, seed=3)
    ref = Network(SIZES, "numpy", dtype=dtype, seed=3)
    history = net.SGD((inputs, labels), 2, 10, 3.0, test_data=(inputs, labels), quiet=True)
    ref_history = ref.SGD((inputs, labels), 2, 10, 3.0, test_data=(inputs, labels), quiet=True)
    deviations = [
        assert_close(got, to_numpy(want), net.backend, dtype)
        for got, want in zip(net.biases + net.weights, ref.biases + ref.weights)
    ]
    assert max(deviations) <= PARITY_TOL[dtype]
    assert [h.correct for h in history] == [h.correct for h in ref_history]
    assert all(h.n_test == 205 for h in history)


def test_same_seed_same_start_and_order_on_every_backend(backend):
    """Initial weights come from NumPy's generator, so they agree bit for bit."""
    net = Network([4, 3, 2], backend, seed=42)
    ref = Network([4, 3, 2], "numpy", seed=42)
    for got, want in zip(net.biases + net.weights, ref.biases + ref.weights):
        assert_close(got, to_numpy(want), net.backend, "float64", tol=0)
    other = Network([4, 3, 2], "numpy", seed=43)
    assert not np.array_equal(to_numpy(other.weights[0]), to_numpy(ref.weights[0]))
