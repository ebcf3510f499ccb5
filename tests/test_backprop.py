"""backprop: gradients are right (finite differences) and the matrix form equals Nielsen's loop."""

from __future__ import annotations

import numpy as np
import pytest
from helpers import (
    assert_close,
    nielsen_backprop,
    one_hot_columns,
    quadratic_cost,
    synthetic_problem,
)

from portable_nn import Network, to_numpy

SIZES = [6, 5, 4, 3]


def _host_params(net):
    return [to_numpy(b).copy() for b in net.biases], [to_numpy(w).copy() for w in net.weights]


def _batch(m: int = 7):
    inputs, labels = synthetic_problem(m, n_in=SIZES[0], n_out=SIZES[-1], seed=3)
    return inputs.T.copy(), one_hot_columns(labels, SIZES[-1])


def test_gradient_matches_central_finite_differences(backend):
    """Every entry of nabla_b/nabla_w equals dC/dparam of C = ½Σ‖a−y‖², to 1e-6 relative."""
    net = Network(SIZES, backend, seed=11)
    x, y = _batch()
    nabla_b, nabla_w = net.backprop(x, y)
    biases, weights = _host_params(net)
    h = 1e-6
    for params, nabla in ((biases, nabla_b), (weights, nabla_w)):
        for layer, param in enumerate(params):
            numeric = np.zeros_like(param)
            for idx in np.ndindex(param.shape):
                saved = param[idx]
                param[idx] = saved + h
                plus = quadratic_cost(biases, weights, x, y)
                param[idx] = saved - h
                minus = quadratic_cost(biases, weights, x, y)
                param[idx] = saved
                numeric[idx] = (plus - minus) / (2 * h)
            assert_close(nabla[layer], numeric, net.backend, "float64", tol=1e-6)


def test_matrix_backprop_equals_sum_of_per_sample_backprops(backend):
    """One (n_in, m) backprop == Σ over columns of Nielsen's per-example backprop, to 1e-12."""
    net = Network(SIZES, backend, seed=5)
    x, y = _batch(9)
    biases, weights = _host_params(net)
    sum_b = [np.zeros_like(b) for b in biases]
    sum_w = [np.zeros_like(w) for w in weights]
    for j in range(x.shape[1]):
        nb, nw = nielsen_backprop(biases, weights, x[:, j : j + 1], y[:, j : j + 1])
        sum_b = [s + d for s, d in zip(sum_b, nb)]
        sum_w = [s + d for s, d in zip(sum_w, nw)]
    nabla_b, nabla_w = net.backprop(x, y)
    for got, want in zip(nabla_b + nabla_w, sum_b + sum_w):
        assert_close(got, want, net.backend, "float64", tol=1e-12)


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_backprop_returns_backend_arrays_of_the_network_dtype(backend, dtype):
    net = Network(SIZES, backend, dtype=dtype, seed=0)
    x, y = _batch(4)
    nabla_b, nabla_w = net.backprop(x, y)
    out = net.feedforward(x)
    tol = 1e-12 if dtype == "float64" else 1e-5
    biases, weights = _host_params(net)
    ref_out = x
    for b, w in zip(biases, weights):
        ref_out = 1.0 / (1.0 + np.exp(-(w.astype(np.float64) @ ref_out + b)))
    assert_close(out, ref_out.astype(dtype), net.backend, dtype, tol=tol)
    for nb, b in zip(nabla_b, net.biases):
        assert tuple(nb.shape) == tuple(b.shape) and nb.dtype == b.dtype
    for nw, w in zip(nabla_w, net.weights):
        assert tuple(nw.shape) == tuple(w.shape) and nw.dtype == w.dtype


def test_cost_derivative_is_output_minus_target(backend):
    net = Network([2, 3], backend, seed=0)
    a = net.backend.asarray(np.array([[0.25], [0.5], [1.0]]))
    y = net.backend.asarray(np.array([[0.0], [1.0], [1.0]]))
    assert_close(net.cost_derivative(a, y), np.array([[0.25], [-0.5], [0.0]]), net.backend, "float64", tol=0)
