"""Where the random numbers come from: NumPy's global state with ``seed=None``, as the book; the network's own
generator with ``seed=``.  Either way they are host NumPy draws, so every backend gives the same run."""

# ruff: noqa: NPY002 - the legacy global state (np.random.seed) is what these tests are about

from __future__ import annotations

import numpy as np
import pytest
from helpers import PARITY_TOL, assert_close, synthetic_problem

import portable_nn
from portable_nn import network2, network3, to_numpy
from portable_nn.network3 import ConvPoolLayer, FullyConnectedLayer, ReLU, SoftmaxLayer

SIZES = [6, 8, 3]
INPUTS, LABELS = synthetic_problem(57, n_in=SIZES[0], n_out=SIZES[-1], seed=2)
DATA = (INPUTS, LABELS)


def _network2_run(xp, dtype: str) -> tuple[list[np.ndarray], list[int], object]:
    """Build with ``seed=None`` and train 3 epochs (batch 10); host parameters, accuracies, the network."""
    net = network2.Network(SIZES, xp=xp, dtype=dtype)
    lists = net.SGD((INPUTS, LABELS), 3, 10, 0.5, 1.0, (INPUTS, LABELS), monitor_evaluation_accuracy=True, quiet=True)
    return [to_numpy(p) for p in net.weights + net.biases], lists[1], net


def _network3_layers() -> list:
    """Conv-pool, two dropout layers (p = 0.5: random bytes; p = 0.3: uniform floats), softmax."""
    return [
        ConvPoolLayer((2, 1, 3, 3), (4, 1, 6, 6), (2, 2), ReLU),
        FullyConnectedLayer(8, 6, ReLU, p_dropout=0.5),
        FullyConnectedLayer(6, 5, p_dropout=0.3),
        SoftmaxLayer(5, 3),
    ]


def _network3_run(xp, dtype: str) -> tuple[list[np.ndarray], list[int | None]]:
    x = np.random.default_rng(1).random((23, 36))
    labels = np.random.default_rng(2).integers(0, 3, size=23)
    net = network3.Network(_network3_layers(), 4, xp=xp, dtype=dtype)
    history = net.SGD((x, labels), 2, 4, 0.2, (x, labels), quiet=True)
    return [to_numpy(p) for p in net.params], [r.correct for r in history]


def _differ(a: list[np.ndarray], b: list[np.ndarray]) -> bool:
    return max(float(np.max(np.abs(x - y))) for x, y in zip(a, b)) > 1e-3


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_np_random_seed_repeats_network2_on_every_backend(backend, dtype):
    np.random.seed(12345678)
    first, accuracies, net = _network2_run(backend, dtype)
    np.random.seed(12345678)
    second, again, _ = _network2_run(backend, dtype)
    assert accuracies == again
    for a, b in zip(first, second):
        np.testing.assert_array_equal(a, b)
    np.random.seed(12345678)
    reference, ref_accuracies, _ = _network2_run("numpy", dtype)
    assert accuracies == ref_accuracies
    for got, want in zip(net.weights + net.biases, reference):
        assert_close(got, want.astype(np.float64), net.backend, dtype)
    np.random.seed(87654321)
    other, _, _ = _network2_run(backend, dtype)
    assert _differ(first, other), "another global seed gave the same network"


def test_np_random_seed_repeats_network3_with_dropout_on_every_backend(backend):
    np.random.seed(12345678)
    first, accuracies = _network3_run(backend, "float64")
    np.random.seed(12345678)
    second, again = _network3_run(backend, "float64")
    assert accuracies == again
    for a, b in zip(first, second):
        np.testing.assert_array_equal(a, b)
    np.random.seed(12345678)
    reference, ref_accuracies = _network3_run("numpy", "float64")
    assert accuracies == ref_accuracies
    for a, b in zip(first, reference):
        np.testing.assert_allclose(a, b, rtol=PARITY_TOL["float64"], atol=PARITY_TOL["float64"])
    np.random.seed(7)
    other, _ = _network3_run(backend, "float64")
    assert _differ(first, other)


def test_the_initial_weights_are_the_books_np_random_draws():
    """After ``np.random.seed(k)``: network.py's and network2.py's ``np.random.randn``, network3.py's ``normal``."""
    sizes = [5, 4, 3]
    np.random.seed(3)
    biases = [np.random.randn(y, 1) for y in sizes[1:]]
    weights = [np.random.randn(y, x) for x, y in zip(sizes[:-1], sizes[1:])]
    np.random.seed(3)
    chapter1 = portable_nn.Network(sizes)
    np.random.seed(3)
    chapter3 = network2.Network(sizes)
    for got, want in zip(chapter1.biases + chapter1.weights, biases + weights):
        np.testing.assert_array_equal(to_numpy(got), want)
    scaled = [w / np.sqrt(w.shape[1]) for w in weights]
    for got, want in zip(chapter3.biases + chapter3.weights, biases + scaled):
        np.testing.assert_array_equal(to_numpy(got), want)

    layers = [FullyConnectedLayer(5, 4), SoftmaxLayer(4, 3)]
    np.random.seed(3)
    w = np.random.normal(loc=0.0, scale=np.sqrt(1.0 / 4), size=(5, 4))
    b = np.random.normal(loc=0.0, scale=1.0, size=(4,))
    np.random.seed(3)
    net = network3.Network(layers, 2, dtype="float64")
    np.testing.assert_array_equal(to_numpy(net.layers[0].w), w)
    np.testing.assert_array_equal(to_numpy(net.layers[0].b), b)


def test_each_epochs_shuffle_is_drawn_from_the_global_state_when_the_epoch_starts():
    """The book's order of draws: weights at construction, then one permutation per epoch, when it begins
    (so ``np.random`` calls of the script in between shift it, as they shift the book's)."""
    np.random.seed(11)
    net = network2.Network(SIZES, cost=network2.QuadraticCost)
    start = [to_numpy(p).copy() for p in net.biases + net.weights]
    np.random.random(5)  # the script draws something between building and training
    state = np.random.get_state()
    order = np.random.permutation(len(LABELS))
    np.random.set_state(state)
    net.SGD((INPUTS, LABELS), 1, 10, 0.5, quiet=True)
    next_draw = np.random.random()

    ref = network2.Network.from_arrays(start[2:], start[:2], cost=network2.QuadraticCost)
    for k in range(0, len(order), 10):
        rows = order[k : k + 10]
        ref.update_mini_batch((INPUTS[rows], LABELS[rows]), 0.5, 0.0, len(LABELS))
    for got, want in zip(net.biases + net.weights, ref.biases + ref.weights):
        np.testing.assert_allclose(to_numpy(got), to_numpy(want), rtol=1e-12, atol=1e-12)
    # and the epoch drew exactly that one permutation from the global state
    np.random.set_state(state)
    np.random.permutation(len(LABELS))
    assert np.random.random() == next_draw


def test_seed_ignores_and_keeps_the_global_state(backend):
    """``seed=k``: the network's own ``default_rng(k)``; the global state is neither read nor advanced."""
    runs = []
    for global_seed in (1, 2):
        np.random.seed(global_seed)
        before = np.random.get_state()[1].copy(), np.random.get_state()[2]
        net = network2.Network(SIZES, xp=backend, seed=5)
        lists = net.SGD(DATA, 2, 10, 0.5, 0.0, DATA, monitor_evaluation_accuracy=True, quiet=True)
        after = np.random.get_state()[1], np.random.get_state()[2]
        np.testing.assert_array_equal(before[0], after[0])
        assert before[1] == after[1]
        runs.append(([to_numpy(p) for p in net.weights + net.biases], lists[1]))
    assert runs[0][1] == runs[1][1]
    for a, b in zip(runs[0][0], runs[1][0]):
        np.testing.assert_array_equal(a, b)
