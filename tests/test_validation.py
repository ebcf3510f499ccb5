"""Bad input: a clear error that names the argument, and the network left untouched."""

from __future__ import annotations

import math

import numpy as np
import pytest
from helpers import nielsen_pairs, synthetic_problem

from portable_nn import Network, to_numpy

SIZES = [6, 5, 3]


@pytest.mark.parametrize(
    ("sizes", "error"),
    [
        ([784], ValueError),
        ([], ValueError),
        ([784, 0, 10], ValueError),
        ([784, -3, 10], ValueError),
        ([784, 30.0, 10], TypeError),
        ([784, True, 10], TypeError),
        ("784,30,10", TypeError),
        (784, TypeError),
    ],
)
def test_bad_sizes(sizes, error):
    with pytest.raises(error, match=r"sizes must be a list of at least 2 positive ints"):
        Network(sizes)


@pytest.mark.parametrize("dtype", ["float16", "int32", "double"])
def test_bad_dtype(dtype):
    with pytest.raises(ValueError, match=r"dtype must be 'float32' or 'float64'"):
        Network(SIZES, dtype=dtype)


def test_unknown_backend_name():
    with pytest.raises(ValueError, match=r"xp must be one of 'numpy', 'cupy'"):
        Network(SIZES, xp="tensorflow")


def test_bad_seed():
    with pytest.raises(TypeError, match=r"seed must be an int"):
        Network(SIZES, seed=1.5)


def _snapshot(net):
    return [to_numpy(a).copy() for a in net.biases + net.weights]


def _assert_unchanged(net, before):
    for arr, old in zip(net.biases + net.weights, before):
        np.testing.assert_array_equal(to_numpy(arr), old)


def _data(n=30):
    return synthetic_problem(n, n_in=SIZES[0], n_out=SIZES[-1])


BAD_SGD_CALLS = [
    # (description, kwargs overrides, error type, message pattern)
    ("mini_batch_size 0", {"mini_batch_size": 0}, ValueError, r"mini_batch_size must be an int >= 1; got 0"),
    ("mini_batch_size -5", {"mini_batch_size": -5}, ValueError, r"mini_batch_size must be an int >= 1"),
    ("mini_batch_size 2.5", {"mini_batch_size": 2.5}, TypeError, r"mini_batch_size must be an int >= 1"),
    ("eta nan", {"eta": math.nan}, ValueError, r"eta must be a finite number > 0; got nan"),
    ("eta inf", {"eta": math.inf}, ValueError, r"eta must be a finite number > 0"),
    ("eta negative", {"eta": -1.0}, ValueError, r"eta must be a finite number > 0"),
    ("eta string", {"eta": "3.0"}, TypeError, r"eta must be a finite number > 0"),
    ("epochs -1", {"epochs": -1}, ValueError, r"epochs must be an int >= 0; got -1"),
    (
        "inputs too wide",
        {"training_data": (np.zeros((30, 7)), np.zeros(30, dtype=int))},
        ValueError,
        r"training_data: inputs must have shape \(n, 6\)",
    ),
    (
        "labels out of range",
        {"training_data": (np.zeros((30, 6)), np.full(30, 3))},
        ValueError,
        r"training_data: labels must be integers in \[0, 3\); got 3",
    ),
    (
        "negative label",
        {"training_data": (np.zeros((30, 6)), np.full(30, -1))},
        ValueError,
        r"training_data: labels must be integers in \[0, 3\); got -1",
    ),
    (
        "label count mismatch",
        {"training_data": (np.zeros((30, 6)), np.zeros(29, dtype=int))},
        ValueError,
        r"training_data: labels must have shape \(30,\)",
    ),
    (
        "one-hot width",
        {"training_data": (np.zeros((30, 6)), np.zeros((30, 4)))},
        ValueError,
        r"training_data: targets must have 3 columns",
    ),
    (
        "nan inputs",
        {"training_data": (np.full((30, 6), np.nan), np.zeros(30, dtype=int))},
        ValueError,
        r"training_data: inputs must be finite",
    ),
    ("empty", {"training_data": []}, ValueError, r"training_data is empty"),
    ("not data", {"training_data": 5}, TypeError, r"training_data must be a list of \(x, y\) pairs"),
    (
        "bad pair x",
        {"training_data": [(np.zeros((5, 1)), 0)]},
        ValueError,
        r"training_data\[0\]: x must have shape \(6, 1\); got \(5, 1\)",
    ),
    (
        "test labels",
        {"test_data": (np.zeros((4, 6)), np.array([0, 1, 2, 9]))},
        ValueError,
        r"test_data: labels must be integers in \[0, 3\); got 9",
    ),
    (
        "test shape",
        {"test_data": (np.zeros((4, 5)), np.zeros(4, dtype=int))},
        ValueError,
        r"test_data: inputs must have shape \(n, 6\)",
    ),
]


@pytest.mark.parametrize(("what", "override", "error", "pattern"), BAD_SGD_CALLS, ids=[c[0] for c in BAD_SGD_CALLS])
def test_bad_sgd_arguments_leave_weights_unchanged(backend, what, override, error, pattern):
    net = Network(SIZES, backend, seed=0)
    kwargs = {"training_data": _data(), "epochs": 1, "mini_batch_size": 10, "eta": 3.0, "test_data": _data(4)}
    kwargs.update(override)
    before = _snapshot(net)
    with pytest.raises(error, match=pattern):
        net.SGD(**kwargs, quiet=True)
    _assert_unchanged(net, before)


def test_bad_update_mini_batch_leaves_weights_unchanged(backend):
    net = Network(SIZES, backend, seed=0)
    inputs, labels = _data(10)
    before = _snapshot(net)
    with pytest.raises(ValueError, match=r"eta must be a finite number > 0; got nan"):
        net.update_mini_batch(nielsen_pairs(inputs, labels, 3), math.nan)
    bad = nielsen_pairs(inputs, labels, 3)
    bad[4] = (np.zeros((6, 1)), np.zeros((4, 1)))
    with pytest.raises(ValueError, match=r"mini_batch: every y must have the same shape"):
        net.update_mini_batch(bad, 3.0)
    _assert_unchanged(net, before)


def test_bad_backprop_shapes(backend):
    net = Network(SIZES, backend, seed=0)
    with pytest.raises(ValueError, match=r"x must have shape \(6, m\)"):
        net.backprop(np.zeros((7, 2)), np.zeros((3, 2)))
    with pytest.raises(ValueError, match=r"y must have shape \(3, m\)"):
        net.backprop(np.zeros((6, 2)), np.zeros((2, 2)))
    with pytest.raises(ValueError, match=r"x and y must have the same number of columns"):
        net.backprop(np.zeros((6, 2)), np.zeros((3, 5)))
    with pytest.raises(ValueError, match=r"a must have shape \(6, m\)"):
        net.feedforward(np.zeros(6))


def test_bad_evaluate_data(backend):
    net = Network(SIZES, backend, seed=0)
    with pytest.raises(ValueError, match=r"test_data: labels must be integers in \[0, 3\); got non-integer"):
        net.evaluate((np.zeros((2, 6)), np.array([0.5, 1.0])))


# -- issue 14, class 3: replaced parameters are checked and become the network's own -------------------------
def test_assigned_parameters_become_the_networks_own(backend):
    """A float64 NumPy array in a float32 network of any backend: converted, and stays converted after training."""
    from helpers import assert_on_backend

    net = Network(SIZES, backend, dtype="float32", seed=0)
    new = np.random.default_rng(1).standard_normal((5, 6))
    net.weights[0] = new
    net.biases = [np.zeros((5, 1)), np.ones((3, 1), dtype=np.int64)]
    for array, shape in zip([*net.weights, *net.biases], [(5, 6), (3, 5), (5, 1), (3, 1)]):
        assert_on_backend(array, net.backend, shape, "float32")
    np.testing.assert_array_equal(to_numpy(net.weights[0]), new.astype(np.float32))
    net.SGD(_data(), 1, 10, 3.0, quiet=True)
    for array, shape in zip([*net.weights, *net.biases], [(5, 6), (3, 5), (5, 1), (3, 1)]):
        assert_on_backend(array, net.backend, shape, "float32")


def test_a_tensor_that_requires_grad_is_detached():
    torch = pytest.importorskip("torch")
    net = Network(SIZES, "torch", seed=0)
    net.weights[1] = torch.zeros((3, 5), dtype=torch.float64, requires_grad=True)
    assert not net.weights[1].requires_grad
    net.SGD(_data(), 1, 10, 3.0, quiet=True)
    assert not any(p.requires_grad or p.grad_fn is not None for p in [*net.weights, *net.biases])


@pytest.mark.parametrize(
    ("assign", "error", "pattern"),
    [
        (lambda net: net.weights.__setitem__(0, np.zeros((6, 5))), ValueError, r"weights\[0\] must have shape \(5, 6"),
        (lambda net: net.biases.__setitem__(-1, np.full((3, 1), np.inf)), ValueError, r"biases\[1\] holds NaN or inf"),
        (lambda net: net.weights.__setitem__(1, np.zeros((3, 5), dtype=bool)), TypeError, r"weights\[1\] must be real"),
        (lambda net: net.weights.__setitem__(1, np.zeros((3, 5), dtype=complex)), TypeError, r"weights\[1\] must b"),
        (lambda net: setattr(net, "weights", [np.zeros((5, 6))]), ValueError, r"weights must be a list of 2 arrays"),
        (lambda net: setattr(net, "biases", np.zeros((5, 1))), TypeError, r"biases must be a list of 2 arrays"),
        (lambda net: net.biases.append(np.zeros((3, 1))), TypeError, r"biases holds one array per layer"),
    ],
    ids=["shape", "inf", "bool", "complex", "list length", "not a list", "append"],
)  # fmt: skip
def test_bad_parameters_are_refused_and_change_nothing(backend, assign, error, pattern):
    net = Network(SIZES, backend, seed=0)
    before = _snapshot(net)
    with pytest.raises(error, match=pattern):
        assign(net)
    _assert_unchanged(net, before)


# -- issue 14, class 4 (the input side): other dtypes and strides are converted, the rest refused by name -------
def test_half_precision_and_negative_stride_inputs_are_converted():
    torch = pytest.importorskip("torch")
    inputs = np.random.default_rng(0).integers(0, 256, size=(6, 9)) / 256.0  # exact in bfloat16
    reference = Network(SIZES, dtype="float32", seed=0).feedforward(inputs)
    net = Network(SIZES, "torch", dtype="float32", seed=0)
    for given in (torch.asarray(inputs, dtype=torch.bfloat16), torch.asarray(inputs, dtype=torch.float16)):
        np.testing.assert_allclose(to_numpy(net.feedforward(given)), reference, rtol=1e-6)
    flipped = inputs[:, ::-1].copy()[:, ::-1]  # equal to inputs, negative column stride
    np.testing.assert_allclose(to_numpy(net.feedforward(flipped)), reference, rtol=1e-6)
    assert net.evaluate((flipped.T[::-1][::-1], np.zeros(9, dtype=np.int64))) >= 0


@pytest.mark.parametrize("dtype", [bool, complex, object, "<U3"])
def test_inputs_of_unsupported_dtypes_are_refused_by_name(backend, dtype):
    net = Network(SIZES, backend, seed=0)
    with pytest.raises(TypeError, match=r"^a must be real numbers \(int or float\); got dtype"):
        net.feedforward(np.zeros((6, 2)).astype(dtype))
    with pytest.raises(TypeError, match=r"^x must be real numbers \(int or float\); got dtype"):
        net.backprop(np.zeros((6, 2)).astype(dtype), np.zeros((3, 2)))
