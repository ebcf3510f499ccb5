"""The book's exercises: your own costs and activations are used as written, on every backend.

* cost arguments as the book passes them (the class or an instance), ours or the reader's;
* a reader's cost (``fn``/``delta``) and a subclass overriding them: the step calls the ``delta``,
  ``total_cost`` the ``fn``; ours keep their fused paths;
* a reader's activation for network2 (function + derivative) and network3 (``activation_fn=``);
* a function that fails on a backend names itself and the backend;
* the book's ``sigmoid(0.5)`` on plain numbers.
"""

from __future__ import annotations

import array_api_compat
import numpy as np
import pytest
from helpers import PARITY_TOL, assert_close, assert_on_backend, synthetic_problem, x64_scope

from portable_nn import ModelFileError, load, network2, network3, to_numpy
from portable_nn._math.activations import SIGMOID, UserActivation, UserFunctionError
from portable_nn._math.costs import Cost, CrossEntropyCost, LogLikelihoodCost, QuadraticCost, UserCost, get_cost
from portable_nn.network3 import ConvPoolLayer, FullyConnectedLayer, ReLU, SoftmaxLayer

SIZES = [6, 8, 3]
INPUTS, LABELS = synthetic_problem(53, n_in=SIZES[0], n_out=SIZES[-1], seed=3)
DATA = (INPUTS, LABELS)


def _host(arrays) -> list[np.ndarray]:
    return [to_numpy(a).astype(np.float64) for a in arrays]


def _train(net, epochs: int = 2, eta: float = 0.5, lmbda: float = 0.0):
    return net.SGD(DATA, epochs, 10, eta, lmbda, DATA, True, True, quiet=True)


# -- the reader's functions, written once for every backend ----------------------------------------
def softsign(z):
    """``z / (1 + |z|)``: not one of the package's activations."""
    xp = array_api_compat.array_namespace(z)
    return z / (1.0 + xp.abs(z))


def softsign_prime(z):
    xp = array_api_compat.array_namespace(z)
    d = 1.0 + xp.abs(z)
    return 1.0 / (d * d)


class ZeroDelta:
    """The book's cost interface with a δ of zero: training must not move anything."""

    @staticmethod
    def fn(a, y):
        xp = array_api_compat.array_namespace(a, y)
        return 0.5 * xp.sum((a - y) ** 2)

    @staticmethod
    def delta(z, a, y):
        return array_api_compat.array_namespace(a).zeros_like(a)


class ZeroDeltaQuadratic(QuadraticCost):
    """The issue's case: a subclass whose ``delta`` override used to be silently ignored."""

    @staticmethod
    def delta(z, a, y):
        return array_api_compat.array_namespace(a).zeros_like(a)


class HalvedCrossEntropy(CrossEntropyCost):
    """δ = (a − y)/2: training must equal cross-entropy at half the learning rate."""

    @staticmethod
    def delta(z, a, y):
        return 0.5 * (a - y)


class DoubledQuadratic(QuadraticCost):
    """Only ``fn`` overridden: training keeps QuadraticCost's fused δ, ``total_cost`` doubles."""

    @staticmethod
    def fn(a, y):
        return 2.0 * QuadraticCost.fn(a, y)


class BookQuadraticCost:
    """The book's network2.QuadraticCost, typed in with ``np.`` (the exercise as a reader writes it)."""

    @staticmethod
    def fn(a, y):
        return 0.5 * np.linalg.norm(a - y) ** 2

    @staticmethod
    def delta(z, a, y):
        return np.nan_to_num((a - y) * network2.sigmoid_prime(z))


class Boom:
    @staticmethod
    def fn(a, y):
        raise ArithmeticError("fn went wrong")

    @staticmethod
    def delta(z, a, y):
        raise ArithmeticError("delta went wrong")


# -- cost arguments as the book passes them ----------------------------------------------------------
@pytest.mark.parametrize("cost", [QuadraticCost, CrossEntropyCost, LogLikelihoodCost], ids=lambda c: c.name)
@pytest.mark.parametrize("form", ["class", "instance", "file name"])
def test_cost_as_class_instance_or_name_trains_like_the_class(backend, cost, form):
    given = {"class": cost, "instance": cost(), "file name": cost.name}[form]
    net = network2.Network(SIZES, cost=given, xp=backend, seed=4)
    assert net.spec.cost is cost, "our own cost, however given, keeps its fused path"
    assert net.cost is (cost if form == "file name" else given), "net.cost is what was passed (the book's)"
    lists = _train(net)
    ref = network2.Network(SIZES, cost=cost, seed=4)
    ref_lists = _train(ref)
    assert lists[1] == ref_lists[1]
    for got, want in zip(net.weights + net.biases, _host(ref.weights + ref.biases)):
        assert_close(got, want, net.backend, "float64")


def test_an_instance_is_saved_under_its_class_name_and_loads_back(tmp_path):
    net = network2.Network(SIZES, cost=CrossEntropyCost(), seed=1)
    for suffix in (".npz", ".json"):
        loaded = network2.load(net.save(tmp_path / f"m{suffix}"))
        assert loaded.spec.cost is CrossEntropyCost


def test_a_user_cost_is_recorded_by_its_own_name_and_never_loads_as_ours(tmp_path):
    net = network2.Network(SIZES, cost=HalvedCrossEntropy, seed=1)
    assert net.spec.cost.name == f"{__name__}.HalvedCrossEntropy"
    path = net.save(tmp_path / "m.npz")
    with pytest.raises(ModelFileError, match="HalvedCrossEntropy"):
        load(path)


def test_get_cost_refuses_what_is_not_a_cost():
    for bad in (object(), 3, Cost, Cost(), type("NoDelta", (), {"fn": staticmethod(lambda a, y: 0.0)})):
        with pytest.raises(TypeError, match=r"cost must be one of .*fn\(a, y\) and delta\(z, a, y\)"):
            get_cost(bad)
    with pytest.raises(ValueError, match="cost must be one of"):
        get_cost("hinge")

    class Unbound:  # methods without @staticmethod: fine on an instance, not on the class
        def fn(self, a, y):
            return QuadraticCost.fn(a, y)

        def delta(self, z, a, y):
            return a - y

    with pytest.raises(TypeError, match=r"Unbound: fn is a plain method; make fn and delta @staticmethod"):
        get_cost(Unbound)
    assert get_cost(Unbound()).source.__class__ is Unbound


def test_what_counts_as_ours():
    """Ours: the exact class, or an instance/subclass overriding nothing; otherwise a UserCost."""
    assert get_cost(QuadraticCost()) is QuadraticCost
    plain_subclass = type("Plain", (CrossEntropyCost,), {})
    assert get_cost(plain_subclass) is plain_subclass
    patched = CrossEntropyCost()
    patched.delta = lambda z, a, y: a - y  # an instance attribute overrides too
    assert isinstance(get_cost(patched), UserCost) and get_cost(patched).own_delta
    doubled = get_cost(DoubledQuadratic)
    assert isinstance(doubled, UserCost) and doubled.own_fn and not doubled.own_delta
    assert get_cost(ZeroDelta).base is None and get_cost(ZeroDelta).output is None
    assert get_cost(type("LL", (LogLikelihoodCost,), {"fn": staticmethod(LogLikelihoodCost.fn)})).output == "softmax"


# -- the user's delta is used ----------------------------------------------------------------------------
@pytest.mark.parametrize("cost", [ZeroDelta, ZeroDelta(), ZeroDeltaQuadratic], ids=["class", "instance", "subclass"])
def test_a_zero_delta_leaves_the_weights_unchanged(backend, cost):
    net = network2.Network(SIZES, cost=cost, xp=backend, seed=2)
    start = _host(net.weights + net.biases)
    _train(net)
    net.update_mini_batch(DATA, 0.5, 0.0, len(LABELS))
    for got, want in zip(_host(net.weights + net.biases), start):
        np.testing.assert_array_equal(got, want)


def test_the_books_backprop_method_uses_the_users_delta(backend):
    """``net.backprop(x, y)``: the output layer's gradient is the user's δ, and a zero δ gives zero gradients."""
    x, y = INPUTS[:5].T, np.eye(SIZES[-1])[LABELS[:5]].T
    nabla_b, nabla_w = network2.Network(SIZES, cost=ZeroDelta, xp=backend, seed=2).backprop(x, y)
    for g in nabla_b + nabla_w:
        np.testing.assert_array_equal(to_numpy(g), 0.0)
    halved = network2.Network(SIZES, cost=HalvedCrossEntropy, xp=backend, seed=2).backprop(x, y)
    full = network2.Network(SIZES, cost=CrossEntropyCost, seed=2).backprop(x, y)
    for got, want in zip(halved[0] + halved[1], full[0] + full[1]):
        assert_close(got, 0.5 * to_numpy(want), backend, "float64")


def test_a_subclass_override_changes_training(backend):
    """δ halved is cross-entropy at eta/2, and not cross-entropy at eta."""
    net = network2.Network(SIZES, cost=HalvedCrossEntropy, xp=backend, seed=6)
    _train(net, eta=0.5)
    half = network2.Network(SIZES, cost=CrossEntropyCost, seed=6)
    _train(half, eta=0.25)
    full = network2.Network(SIZES, cost=CrossEntropyCost, seed=6)
    _train(full, eta=0.5)
    for got, want in zip(net.weights + net.biases, _host(half.weights + half.biases)):
        assert_close(got, want, net.backend, "float64")
    assert max(float(np.max(np.abs(a - b))) for a, b in zip(_host(net.weights), _host(full.weights))) > 1e-2


def test_the_users_fn_is_what_total_cost_reports(backend):
    net = network2.Network(SIZES, cost=DoubledQuadratic, xp=backend, seed=6)
    ref = network2.Network(SIZES, cost=QuadraticCost, seed=6)
    lists, ref_lists = _train(net), _train(ref)
    for got, want in zip(net.weights, _host(ref.weights)):  # fn only: the fused δ trains exactly as ours
        assert_close(got, want, net.backend, "float64")
    np.testing.assert_allclose(lists[0], [2 * c for c in ref_lists[0]], rtol=PARITY_TOL["float64"])
    # the regulariser is added once, after the user's fn
    penalty = ref.total_cost(DATA, 3.0) - ref.total_cost(DATA, 0.0)
    assert net.total_cost(DATA, 3.0) == pytest.approx(2 * ref.total_cost(DATA, 0.0) + penalty)


def test_jax_traces_the_users_delta_into_the_compiled_epoch():
    """On JAX the user's δ runs while tracing (a few calls), not once per mini-batch; results match NumPy."""
    calls = {"n": 0}

    class Counting(CrossEntropyCost):
        @staticmethod
        def delta(z, a, y):
            calls["n"] += 1
            return 0.5 * (a - y)

    with x64_scope("jax", "float64"):  # a float64 JAX network needs the user's opt-in
        net = network2.Network(SIZES, cost=Counting, xp="jax", seed=6)
        _train(net, epochs=3)
        traced = calls["n"]
        ref = network2.Network(SIZES, cost=Counting, seed=6)
        _train(ref, epochs=3)
        batches = 3 * -(-len(LABELS) // 10)
        assert calls["n"] - traced == batches, "NumPy calls the delta once per mini-batch"
        assert traced <= 4, f"JAX called the delta {traced} times: it was not traced into the compiled epoch"
        for got, want in zip(net.weights, _host(ref.weights)):
            assert_close(got, want, net.backend, "float64")


# -- the book's np. code, and failures ------------------------------------------------------------------
def test_a_cost_written_with_np_works_on_numpy_and_names_itself_elsewhere(backend):
    net = network2.Network(SIZES, cost=BookQuadraticCost, xp=backend, seed=8)
    start = _host(net.weights + net.biases)
    if backend.name == "numpy":
        lists = _train(net)
        ref = network2.Network(SIZES, cost=QuadraticCost, seed=8)
        ref_lists = _train(ref)
        for got, want in zip(net.weights + net.biases, _host(ref.weights + ref.biases)):
            assert_close(got, want, net.backend, "float64")
        np.testing.assert_allclose(lists[0], ref_lists[0], rtol=PARITY_TOL["float64"])
        return
    with pytest.raises(UserFunctionError, match=rf"BookQuadraticCost\.delta .*{backend.name} backend") as info:
        _train(net)
    assert "array_api_compat.array_namespace" in str(info.value)
    assert isinstance(info.value, TypeError) and isinstance(info.value, ValueError)
    for got, want in zip(_host(net.weights + net.biases), start):  # nothing half-trained
        np.testing.assert_array_equal(got, want)


def test_a_failing_user_function_is_named_with_the_backend_and_chained(backend):
    net = network2.Network(SIZES, cost=Boom, xp=backend, seed=8)
    with pytest.raises(UserFunctionError, match=rf"Boom\.delta failed on the {backend.name} backend") as info:
        net.update_mini_batch(DATA, 0.5, 0.0, 10)
    assert isinstance(info.value.__cause__, ArithmeticError)
    with pytest.raises(UserFunctionError, match=rf"Boom\.fn failed on the {backend.name} backend"):
        net.total_cost(DATA, 0.0)

    def wrong_shape(z):
        return z[:1, ...]

    bad = network2.Network(SIZES, xp=backend, activation=wrong_shape, activation_prime=softsign_prime, seed=1)
    with pytest.raises(UserFunctionError, match=rf"wrong_shape returned an array of shape .*{backend.name}"):
        bad.feedforward(INPUTS.T)


# -- activations ------------------------------------------------------------------------------------------
def _numpy_softsign_network2(biases, weights, epochs_batches, eta):
    """Reference: the book's network2 update with softsign hidden neurons, cross-entropy, column batches."""
    biases, weights = [b.copy() for b in biases], [w.copy() for w in weights]
    for rows in epochs_batches:
        x, y = INPUTS[rows].T, np.eye(SIZES[-1])[LABELS[rows]].T
        zs, acts, a = [], [x], x
        for i, (b, w) in enumerate(zip(biases, weights)):
            z = w @ a + b
            zs.append(z)
            a = 1 / (1 + np.exp(-z)) if i == len(weights) - 1 else z / (1 + np.abs(z))
            acts.append(a)
        delta = a - y
        grads = []
        for i in range(len(weights) - 1, -1, -1):
            if i < len(weights) - 1:
                delta = (weights[i + 1].T @ delta) / (1 + np.abs(zs[i])) ** 2
            grads.append((i, delta.sum(axis=1, keepdims=True), delta @ acts[i].T))
        for i, gb, gw in grads:
            biases[i] = biases[i] - eta / len(rows) * gb
            weights[i] = weights[i] - eta / len(rows) * gw
    return biases, weights


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_network2_with_a_user_activation_matches_numpy(backend, dtype):
    net = network2.Network(SIZES, xp=backend, dtype=dtype, activation=softsign, activation_prime=softsign_prime, seed=9)
    assert isinstance(net.spec.hidden, UserActivation)
    start_b, start_w = _host(net.biases), _host(net.weights)
    batches = [np.arange(k, min(k + 10, 40)) for k in range(0, 40, 10)]
    for rows in batches:
        net.update_mini_batch((INPUTS[rows], LABELS[rows]), 0.5, 0.0, 40)
    biases, weights = _numpy_softsign_network2(start_b, start_w, batches, 0.5)
    tol = 10 * PARITY_TOL[dtype]
    for got, want in zip(net.biases + net.weights, biases + weights):
        assert_close(got, want, net.backend, dtype, tol=tol)
    assert max(float(np.max(np.abs(w - w0))) for w, w0 in zip(weights, start_w)) > 1e-2
    _train(net)  # the epoch loop (jitted on JAX) runs it too


def test_network2_activation_arguments():
    assert network2.Network(SIZES, activation=network2.sigmoid).spec.hidden is SIGMOID
    pair = network2.Network(SIZES, activation=network2.sigmoid, activation_prime=network2.sigmoid_prime)
    assert pair.spec.hidden is SIGMOID
    with pytest.raises(ValueError, match=r"activation=.*softsign is your own function.*activation_prime="):
        network2.Network(SIZES, activation=softsign)
    with pytest.raises(TypeError, match="activation_prime must be a function"):
        network2.Network(SIZES, activation=softsign, activation_prime=3)
    with pytest.raises(ValueError, match="activation_prime goes with your own activation"):
        network2.Network(SIZES, activation="tanh", activation_prime=softsign_prime)


def _relu_again(z):
    return array_api_compat.array_namespace(z).maximum(z, 0.0)


def _relu_again_prime(z):
    xp = array_api_compat.array_namespace(z)
    return xp.astype(z > 0.0, z.dtype)


def _numpy_softsign_network3(w, b, x, labels, eta, batches):
    """Reference: FullyConnectedLayer(softsign) + SoftmaxLayer, the book's network3 step (rows), in NumPy."""
    w, b = [a.copy() for a in w], [a.copy() for a in b]
    for rows in batches:
        xb, y = x[rows], np.eye(3)[labels[rows]]
        z1 = xb @ w[0] + b[0]
        h = z1 / (1 + np.abs(z1))
        z2 = h @ w[1] + b[1]
        e = np.exp(z2 - z2.max(axis=1, keepdims=True))
        delta2 = e / e.sum(axis=1, keepdims=True) - y
        delta1 = (delta2 @ w[1].T) / (1 + np.abs(z1)) ** 2
        m = len(rows)
        w = [w[0] - eta / m * xb.T @ delta1, w[1] - eta / m * h.T @ delta2]
        b = [b[0] - eta / m * delta1.sum(axis=0), b[1] - eta / m * delta2.sum(axis=0)]
    return w, b


def test_network3_with_a_user_activation_matches_numpy(backend):
    x = np.random.default_rng(1).random((20, 7))
    labels = np.random.default_rng(2).integers(0, 3, size=20)
    layers = [FullyConnectedLayer(7, 5, activation_fn=softsign, activation_prime=softsign_prime), SoftmaxLayer(5, 3)]
    np.random.seed(3)  # noqa: NPY002 - seed=None: the global state, whose next permutation is the epoch's order
    net = network3.Network(layers, 5, xp=backend, dtype="float64")
    w0, b0 = [to_numpy(p) for p in net.params[0::2]], [to_numpy(p) for p in net.params[1::2]]
    state = np.random.get_state()  # noqa: NPY002
    order = np.random.permutation(20)  # noqa: NPY002
    np.random.set_state(state)  # noqa: NPY002
    net.SGD((x, labels), 1, 5, 0.3, quiet=True)
    w, b = _numpy_softsign_network3(w0, b0, x, labels, 0.3, [order[k : k + 5] for k in range(0, 20, 5)])
    for got, want in zip(net.params, [w[0], b[0], w[1], b[1]]):
        assert_close(got, want, net.backend, "float64", tol=10 * PARITY_TOL["float64"])
    assert float(np.max(np.abs(w[0] - w0[0]))) > 1e-3


def test_network3_user_activation_in_a_conv_layer_trains_as_the_builtin(backend):
    """A user's ReLU (with its derivative) through ConvPoolLayer and FullyConnectedLayer trains exactly as ReLU."""
    x = np.random.default_rng(4).random((12, 36))
    labels = np.random.default_rng(5).integers(0, 3, size=12)

    def layers(act, prime):
        extra = {} if prime is None else {"activation_prime": prime}
        return [
            ConvPoolLayer((2, 1, 3, 3), (4, 1, 6, 6), (2, 2), act, **extra),
            FullyConnectedLayer(8, 5, act, **extra),
            SoftmaxLayer(5, 3),
        ]

    mine = network3.Network(layers(_relu_again, _relu_again_prime), 4, xp=backend, dtype="float64", seed=2)
    assert isinstance(mine.layers[0].activation, UserActivation)
    ours = network3.Network(layers(ReLU, None), 4, dtype="float64", seed=2)
    for net in (mine, ours):
        net.SGD((x, labels), 2, 4, 0.3, quiet=True)
    for got, want in zip(mine.params, ours.params):
        assert_close(got, to_numpy(want), mine.backend, "float64")


def test_jax_traces_a_network3_user_activation_into_the_compiled_epoch():
    calls = {"n": 0}

    def counted(z):
        calls["n"] += 1
        return softsign(z)

    x = np.random.default_rng(1).random((40, 7))
    labels = np.random.default_rng(2).integers(0, 3, size=40)
    layers = [FullyConnectedLayer(7, 5, activation_fn=counted, activation_prime=softsign_prime), SoftmaxLayer(5, 3)]
    with x64_scope("jax", "float64"):  # a float64 JAX network needs the user's opt-in
        net = network3.Network(layers, 5, xp="jax", dtype="float64", seed=3)
        net.SGD((x, labels), 3, 5, 0.3, quiet=True)
    assert 0 < calls["n"] <= 4, f"{calls['n']} calls for 24 mini-batches: not traced into the compiled epoch"


def test_network3_refuses_a_user_function_without_its_derivative():
    with pytest.raises(ValueError, match=r"activation_fn=.*softsign is your own function.*activation_prime="):
        FullyConnectedLayer(4, 3, activation_fn=softsign)


# -- the book's sigmoid on plain numbers -------------------------------------------------------------------
def test_sigmoid_and_its_derivative_on_a_python_float():
    s = 1 / (1 + np.exp(-0.5))
    for function, want in ((network2.sigmoid, s), (network2.sigmoid_prime, s * (1 - s)), (network3.sigmoid, s)):
        got = function(0.5)
        assert type(got) is float and got == pytest.approx(want, rel=1e-15)
    assert network2.sigmoid(0) == 0.5 and type(network2.sigmoid_prime(-1)) is float
    assert type(network3.tanh(0.5)) is float and network3.ReLU(-2.0) == 0.0


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_sigmoid_keeps_backend_arrays(backend, dtype):
    z = np.linspace(-3, 3, 7).reshape(7, 1)
    array = backend.asarray(z.astype(dtype), dtype=getattr(backend.xp, dtype))
    s = 1 / (1 + np.exp(-z))
    got = network2.sigmoid(array)
    assert_on_backend(got, backend, (7, 1), dtype)
    assert_close(got, s, backend, dtype)
    assert_close(network2.sigmoid_prime(array), s * (1 - s), backend, dtype)
