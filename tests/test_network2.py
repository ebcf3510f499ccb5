"""Chapter 3's ``network2``: the book's update rule, gradients of every option, parity, stop rules, files."""

from __future__ import annotations

import json
import math
from pathlib import Path

import array_api_compat
import numpy as np
import pytest
from helpers import PARITY_TOL, assert_close, nielsen_pairs, synthetic_problem

from portable_nn import network2, to_numpy
from portable_nn._math.costs import CrossEntropyCost, LogLikelihoodCost, QuadraticCost

SIZES = [6, 8, 3]
DATA = Path(__file__).parent / "data"


# -- an independent NumPy reference: the book's network2, one sample at a time ------------
def _act(name, z):
    if name == "sigmoid":
        return 1.0 / (1.0 + np.exp(-z))
    if name == "tanh":
        return np.tanh(z)
    if name == "softsign":
        return z / (1.0 + np.abs(z))
    return np.maximum(z, 0.0)


def _act_prime(name, z):
    if name == "sigmoid":
        s = 1.0 / (1.0 + np.exp(-z))
        return s * (1 - s)
    if name == "tanh":
        return 1.0 - np.tanh(z) ** 2
    if name == "softsign":
        return 1.0 / (1.0 + np.abs(z)) ** 2
    return (z > 0).astype(float)


def _softsign(z):
    """A reader's own activation, written for every backend (``abs`` and arithmetic only)."""
    return z / (1.0 + abs(z))


def _softsign_prime(z):
    return 1.0 / (1.0 + abs(z)) ** 2


class _ReadersQuadraticCost:
    """The book's QuadraticCost as a reader writes it for every backend: a cost of the user's, not ours."""

    @staticmethod
    def fn(a, y):
        xp = array_api_compat.array_namespace(a, y)
        return 0.5 * xp.sum((a - y) ** 2)

    @staticmethod
    def delta(z, a, y):
        return (a - y) * network2.sigmoid_prime(z)


def _activation_options(name):
    """``activation=`` for a name; a reader's own function plus its derivative for ``"softsign"``."""
    if name == "softsign":
        return {"activation": _softsign, "activation_prime": _softsign_prime}
    return {"activation": name}


def _output(cost, z):
    if cost is LogLikelihoodCost:
        e = np.exp(z - z.max(axis=0))
        return e / e.sum(axis=0)
    return 1.0 / (1.0 + np.exp(-z))


def _book_backprop(biases, weights, x, y, cost, activation="sigmoid"):
    """The book's network2.backprop for one column (generalised to its chapter-3 options)."""
    activations, zs, a = [x], [], x
    for layer, (b, w) in enumerate(zip(biases, weights)):
        z = w @ a + b
        zs.append(z)
        a = _output(cost, z) if layer == len(weights) - 1 else _act(activation, z)
        activations.append(a)
    if cost in (QuadraticCost, _ReadersQuadraticCost):
        s = 1.0 / (1.0 + np.exp(-zs[-1]))
        delta = (a - y) * s * (1 - s)
    else:
        delta = a - y
    nabla_b, nabla_w = [None] * len(weights), [None] * len(weights)
    nabla_b[-1], nabla_w[-1] = delta, delta @ activations[-2].T
    for layer in range(2, len(weights) + 1):
        delta = (weights[-layer + 1].T @ delta) * _act_prime(activation, zs[-layer])
        nabla_b[-layer], nabla_w[-layer] = delta, delta @ activations[-layer - 1].T
    return nabla_b, nabla_w


def _book_update(biases, weights, mini_batch, eta, lmbda, n, cost):
    """network2.update_mini_batch exactly as the book writes it."""
    nabla_b = [np.zeros(b.shape) for b in biases]
    nabla_w = [np.zeros(w.shape) for w in weights]
    for x, y in mini_batch:
        dnb, dnw = _book_backprop(biases, weights, x, y, cost)
        nabla_b = [nb + d for nb, d in zip(nabla_b, dnb)]
        nabla_w = [nw + d for nw, d in zip(nabla_w, dnw)]
    weights = [(1 - eta * (lmbda / n)) * w - (eta / len(mini_batch)) * nw for w, nw in zip(weights, nabla_w)]
    biases = [b - (eta / len(mini_batch)) * nb for b, nb in zip(biases, nabla_b)]
    return biases, weights


def _objective(biases, weights, x, y, cost, activation, lmbda, n, regularization):
    """Mean cost over the columns of x plus the regulariser, in plain NumPy float64."""
    a = x
    for layer, (b, w) in enumerate(zip(biases, weights)):
        z = w @ a + b
        a = _output(cost, z) if layer == len(weights) - 1 else _act(activation, z)
    if cost in (QuadraticCost, _ReadersQuadraticCost):
        c = 0.5 * np.sum((a - y) ** 2)
    elif cost is CrossEntropyCost:
        c = -np.sum(y * np.log(a) + (1 - y) * np.log(1 - a))
    else:
        c = -np.sum(y * np.log(a))
    c /= x.shape[1]
    if regularization == "l2":
        c += 0.5 * (lmbda / n) * sum(np.sum(w * w) for w in weights)
    else:
        c += (lmbda / n) * sum(np.sum(np.abs(w)) for w in weights)
    return c


def _host(arrays):
    return [to_numpy(a).astype(np.float64) for a in arrays]


# -- the book's update rule ---------------------------------------------------------------------
@pytest.mark.parametrize("cost", [CrossEntropyCost, QuadraticCost])
def test_update_mini_batch_equals_the_books_per_sample_loop(cost):
    inputs, labels = synthetic_problem(60, n_in=SIZES[0], n_out=SIZES[-1])
    pairs = nielsen_pairs(inputs, labels, SIZES[-1])
    net = network2.Network(SIZES, cost=cost, seed=3)
    biases, weights = _host(net.biases), _host(net.weights)
    for k in range(0, 60, 10):
        net.update_mini_batch(pairs[k : k + 10], 0.5, 5.0, 60)
        biases, weights = _book_update(biases, weights, pairs[k : k + 10], 0.5, 5.0, 60, cost)
    moved = max(float(np.max(np.abs(w - w0))) for w, w0 in zip(weights, _host(network2.Network(SIZES, seed=3).weights)))
    assert moved > 1e-2, "the steps barely moved the weights: the comparison would prove little"
    for got, want in zip(net.biases + net.weights, biases + weights):
        assert_close(got, want, net.backend, "float64", tol=1e-12)


# -- gradients of every option, by finite differences ----------------------------------------------
GRADIENT_CASES = [
    # (cost, hidden activation, lmbda, regularization)
    (QuadraticCost, "sigmoid", 0.0, "l2"),
    (CrossEntropyCost, "sigmoid", 0.0, "l2"),
    (LogLikelihoodCost, "sigmoid", 0.0, "l2"),
    (CrossEntropyCost, "tanh", 0.0, "l2"),
    (CrossEntropyCost, "relu", 0.0, "l2"),
    (CrossEntropyCost, "sigmoid", 3.0, "l2"),
    (LogLikelihoodCost, "relu", 3.0, "l1"),
    (QuadraticCost, "tanh", 2.0, "l1"),
    (CrossEntropyCost, "softsign", 3.0, "l2"),  # a reader's own activation
    (_ReadersQuadraticCost, "tanh", 2.0, "l2"),  # a reader's own cost: its delta is what trains
]


@pytest.mark.parametrize(
    ("cost", "activation", "lmbda", "regularization"),
    GRADIENT_CASES,
    ids=[f"{c.__name__}-{a}-{r}{lm}" for c, a, lm, r in GRADIENT_CASES],
)
def test_step_follows_the_finite_difference_gradient(backend, cost, activation, lmbda, regularization):
    """(w − w')/eta of one update equals the numerical gradient of mean cost + regulariser."""
    inputs, labels = synthetic_problem(7, n_in=SIZES[0], n_out=SIZES[-1], seed=4)
    y = np.eye(SIZES[-1])[labels].T
    n = 50
    net = network2.Network(SIZES, cost=cost, xp=backend, seed=5, **_activation_options(activation))
    biases, weights = _host(net.biases), _host(net.weights)
    eta = 1e-3
    net.update_mini_batch((inputs, labels), eta, lmbda, n, regularization=regularization)
    steps = [(p0 - p1) / eta for p0, p1 in zip(biases + weights, _host(net.biases + net.weights))]
    h = 1e-6
    params = biases + weights
    for index, (param, step) in enumerate(zip(params, steps)):
        rows, cols = param.shape
        for i, j in {(0, 0), (rows - 1, cols - 1), (rows // 2, cols // 2)}:
            saved = param[i, j]
            param[i, j] = saved + h
            plus = _objective(params[:2], params[2:], inputs.T, y, cost, activation, lmbda, n, regularization)
            param[i, j] = saved - h
            minus = _objective(params[:2], params[2:], inputs.T, y, cost, activation, lmbda, n, regularization)
            param[i, j] = saved
            numeric = (plus - minus) / (2 * h)
            assert step[i, j] == pytest.approx(numeric, rel=1e-5, abs=1e-7), (index, i, j)


# -- parity with NumPy on every backend --------------------------------------------------------------
PARITY_CASES = [
    {"cost": CrossEntropyCost, "lmbda": 5.0},
    {"cost": LogLikelihoodCost, "lmbda": 1.0, "activation": "relu", "mu": 0.5},
    {"cost": QuadraticCost, "lmbda": 2.0, "activation": "tanh", "regularization": "l1"},
]


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("case", PARITY_CASES, ids=["xent-l2", "softmax-relu-momentum", "quadratic-tanh-l1"])
def test_sgd_matches_numpy(backend, dtype, case):
    inputs, labels = synthetic_problem(205, n_in=SIZES[0], n_out=SIZES[-1])
    case = dict(case)
    cost, activation = case.pop("cost"), case.pop("activation", "sigmoid")
    lmbda = case.pop("lmbda")

    def trained(xp):
        net = network2.Network(SIZES, cost, xp=xp, dtype=dtype, seed=3, activation=activation)
        lists = net.SGD(
            (inputs, labels), 3, 10, 0.5, lmbda, (inputs, labels), True, True, True, True, quiet=True, **case
        )
        return net, lists

    net, lists = trained(backend)
    ref, ref_lists = trained("numpy")
    for got, want in zip(net.biases + net.weights, ref.biases + ref.weights):
        assert_close(got, to_numpy(want), net.backend, dtype)
    assert lists[1] == ref_lists[1] and lists[3] == ref_lists[3]
    np.testing.assert_allclose(lists[0], ref_lists[0], rtol=100 * PARITY_TOL[dtype])
    np.testing.assert_allclose(lists[2], ref_lists[2], rtol=100 * PARITY_TOL[dtype])


def test_momentum_and_l1_change_the_trajectory():
    """The options are really applied: each gives different weights from plain L2 SGD."""
    inputs, labels = synthetic_problem(100, n_in=SIZES[0], n_out=SIZES[-1])
    results = {}
    for name, kwargs in {"plain": {}, "momentum": {"mu": 0.9}, "l1": {"regularization": "l1"}}.items():
        net = network2.Network(SIZES, seed=1)
        net.SGD((inputs, labels), 2, 10, 0.5, 5.0, quiet=True, **kwargs)
        results[name] = to_numpy(net.weights[0])
    assert not np.allclose(results["plain"], results["momentum"])
    assert not np.allclose(results["plain"], results["l1"])


# -- the stable cross-entropy ---------------------------------------------------------------------------
@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_cross_entropy_is_finite_at_saturation(backend, dtype):
    xp = backend.xp
    z = backend.asarray(np.array([[50.0, -50.0, 50.0, -50.0]]), dtype=getattr(xp, dtype))
    y = backend.asarray(np.array([[1.0, 0.0, 0.0, 1.0]]), dtype=getattr(xp, dtype))
    # Exact values: softplus(50) − 50 ≈ 2e-22, softplus(−50) ≈ 2e-22, and 50 for each wrong saturated output.
    total = float(to_numpy(CrossEntropyCost.from_z(xp, z, y, "sigmoid")))
    assert total == pytest.approx(100.0, rel=1e-6)
    a = 0.5 * xp.tanh(0.5 * z) + 0.5  # saturates to exactly 0 and 1
    clipped = float(to_numpy(CrossEntropyCost.fn(a, y)))
    assert math.isfinite(clipped) and clipped == pytest.approx(-2 * math.log(np.finfo(dtype).eps), rel=1e-3)


def test_total_cost_of_a_saturated_network_is_finite():
    inputs, labels = synthetic_problem(20, n_in=SIZES[0], n_out=SIZES[-1])
    net = network2.Network(SIZES, seed=0)
    net.weights = [w * 1e4 for w in net.weights]  # every output neuron saturates
    cost = net.total_cost((inputs, labels), 0.0)
    assert math.isfinite(cost) and cost > 10.0


# -- stop rules ---------------------------------------------------------------------------------------------
def test_early_stopping_stops_after_n_epochs_without_improvement():
    inputs, labels = synthetic_problem(50, n_in=SIZES[0], n_out=SIZES[-1])
    net = network2.Network(SIZES, seed=0)
    seen = []
    # eta so small that accuracy cannot change: epoch 0 sets the best, epochs 1..3 fail to beat it.
    net.SGD((inputs, labels), 20, 10, 1e-12, evaluation_data=(inputs, labels), early_stopping_n=3,
            quiet=True, on_epoch=seen.append)  # fmt: skip
    assert [r.epoch for r in seen] == [0, 1, 2, 3]


def test_early_stopping_does_not_stop_an_improving_run():
    inputs, labels = synthetic_problem(400, n_in=SIZES[0], n_out=SIZES[-1], seed=1)
    net = network2.Network(SIZES, seed=0)
    seen = []
    net.SGD((inputs, labels), 3, 10, 0.5, evaluation_data=(inputs, labels), early_stopping_n=3, quiet=True,
            on_epoch=seen.append)  # fmt: skip
    assert len(seen) == 3


def test_schedule_halves_eta_and_stops_at_one_128th():
    inputs, labels = synthetic_problem(50, n_in=SIZES[0], n_out=SIZES[-1])
    net = network2.Network(SIZES, seed=0)
    seen = []
    net.SGD((inputs, labels), 100, 10, 1e-12, evaluation_data=(inputs, labels), schedule_n=1, quiet=True,
            on_epoch=seen.append)  # fmt: skip
    assert [r.eta for r in seen] == [1e-12 / 2**k for k in (0, 0, 1, 2, 3, 4, 5, 6)]


def test_stop_rules_need_evaluation_data():
    inputs, labels = synthetic_problem(20, n_in=SIZES[0], n_out=SIZES[-1])
    with pytest.raises(ValueError, match="evaluation_data"):
        network2.Network(SIZES).SGD((inputs, labels), 1, 10, 0.5, early_stopping_n=2, quiet=True)


# -- the book's API: lists, printed lines, helpers ------------------------------------------------------
def test_sgd_returns_and_prints_the_books_monitoring(capsys):
    inputs, labels = synthetic_problem(40, n_in=SIZES[0], n_out=SIZES[-1])
    pairs = nielsen_pairs(inputs, labels, SIZES[-1])
    net = network2.Network(SIZES, seed=0)
    ev_cost, ev_acc, tr_cost, tr_acc = net.SGD(
        pairs, 2, 10, 0.5, lmbda=0.1, evaluation_data=(inputs, labels), monitor_evaluation_cost=True,
        monitor_evaluation_accuracy=True, monitor_training_cost=True, monitor_training_accuracy=True,
    )  # fmt: skip
    assert len(ev_cost) == len(ev_acc) == len(tr_cost) == len(tr_acc) == 2
    assert all(isinstance(c, int) for c in ev_acc + tr_acc) and ev_acc == tr_acc
    assert ev_cost[-1] == pytest.approx(net.total_cost((inputs, labels), 0.1, convert=True))
    assert tr_cost[-1] == pytest.approx(net.total_cost(pairs, 0.1))
    assert ev_acc[-1] == net.accuracy((inputs, labels)) == net.accuracy(pairs, convert=True)
    out = capsys.readouterr().out.splitlines()
    assert out[:6] == [
        "Epoch 0 training complete",
        f"Cost on training data: {tr_cost[0]}",
        f"Accuracy on training data: {tr_acc[0]} / 40",
        f"Cost on evaluation data: {ev_cost[0]}",
        f"Accuracy on evaluation data: {ev_acc[0]} / 40",
        "",
    ]
    assert net.SGD(pairs, 1, 10, 0.5, quiet=True) == ([], [], [], [])


def test_initializers_scale_by_fan_in():
    net = network2.Network([400, 300, 10], seed=0)
    assert float(np.std(to_numpy(net.weights[0]))) == pytest.approx(1 / math.sqrt(400), rel=0.02)
    assert float(np.std(to_numpy(net.biases[0]))) == pytest.approx(1.0, rel=0.1)
    net.large_weight_initializer()
    assert float(np.std(to_numpy(net.weights[0]))) == pytest.approx(1.0, rel=0.02)


def test_vectorized_result():
    e = network2.vectorized_result(3)
    assert e.shape == (10, 1) and e[3, 0] == 1.0 and e.sum() == 1.0
    with pytest.raises(ValueError, match="j must be a digit"):
        network2.vectorized_result(10)


# -- files -------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("suffix", [".npz"])  # .json holds only the book's networks (test_serialization.py)
def test_round_trip_keeps_cost_and_activation(backend, tmp_path, suffix):
    net = network2.Network(SIZES, cost=LogLikelihoodCost, activation="tanh", seed=2)
    loaded = network2.load(net.save(tmp_path / f"m{suffix}"), backend, device=backend.device)
    assert loaded.cost is LogLikelihoodCost and loaded.spec.hidden.name == "tanh"
    for got, want in zip(loaded.weights + loaded.biases, net.weights + net.biases):
        assert_close(got, to_numpy(want), loaded.backend, "float64", tol=0)
    inputs, labels = synthetic_problem(30, n_in=SIZES[0], n_out=SIZES[-1])
    assert loaded.accuracy((inputs, labels)) == net.accuracy((inputs, labels))


def test_loads_a_file_written_by_the_books_network2_save():
    """tests/data/book_network2_cross_entropy.json was written by the book's save code (json.dump of 4 keys)."""
    path = DATA / "book_network2_cross_entropy.json"
    data = json.loads(path.read_text())
    assert set(data) == {"sizes", "weights", "biases", "cost"}
    net = network2.load(path)
    assert net.sizes == [4, 3, 2] and net.cost is CrossEntropyCost
    np.testing.assert_array_equal(to_numpy(net.weights[1]), np.asarray(data["weights"][1]))
    x = np.linspace(0, 1, 4).reshape(4, 1)
    a = x
    for w, b in zip(data["weights"], data["biases"]):
        a = 1 / (1 + np.exp(-(np.asarray(w) @ a + np.asarray(b))))
    np.testing.assert_allclose(to_numpy(net.feedforward(x)), a, rtol=1e-14)


def test_our_json_is_readable_by_the_books_load_logic(tmp_path):
    """The book's load: getattr(module, data['cost']), then np.array of each list; extra keys ignored."""
    net = network2.Network(SIZES, seed=0)
    data = json.loads(net.save(tmp_path / "m.json").read_text())
    cost = getattr(network2, data["cost"])
    assert cost is CrossEntropyCost
    weights = [np.array(w) for w in data["weights"]]
    assert [w.shape for w in weights] == [(8, 6), (3, 8)]


def test_portable_load_keeps_the_cost(tmp_path):
    """portable_nn.load gives a network2 network for a cross-entropy file (it used to drop the cost)."""
    import portable_nn

    path = network2.Network(SIZES, seed=0).save(tmp_path / "m.json")
    loaded = portable_nn.load(path)
    assert isinstance(loaded, network2.Network) and loaded.cost is CrossEntropyCost
    again = json.loads(loaded.save(tmp_path / "again.json").read_text())
    assert again["cost"] == "CrossEntropyCost"
