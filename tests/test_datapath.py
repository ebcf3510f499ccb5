"""The data path: one conversion per data set, compact inputs, device copies reused."""

from __future__ import annotations

import numpy as np
import pytest
from helpers import synthetic_problem, x64_scope

from portable_nn import Network, network2, to_numpy
from portable_nn.dataforms import BookPairs, Dataset

SIZES = [6, 5, 3]


def _book_pairs(n=40):
    inputs, labels = synthetic_problem(n, n_in=6, n_out=3)
    onehot = np.eye(3)[labels]
    columns = inputs.reshape(n, 6, 1)
    return BookPairs(zip(columns, onehot.reshape(n, 3, 1)), Dataset(inputs, onehot)), inputs, labels


def test_book_pairs_behave_like_the_books_list():
    pairs, inputs, _ = _book_pairs()
    assert isinstance(pairs, list) and len(pairs) == 40
    x, y = pairs[3]
    assert x.shape == (6, 1) and y.shape == (3, 1)
    np.testing.assert_array_equal(x[:, 0], inputs[3])
    head = pairs[:10]
    assert isinstance(head, BookPairs) and head.dataset is not None and head.dataset.n == 10
    np.testing.assert_array_equal(head.dataset.inputs, inputs[:10])
    assert pairs[::2].dataset is None  # a strided slice converts as a plain list would
    assert [p[0].shape for p in zip(*pairs)][:1] == [(6, 1)]


@pytest.mark.parametrize(
    "mutate",
    [
        lambda p: p.append(p[0]),
        lambda p: p.reverse(),
        lambda p: p.sort(key=lambda pair: float(pair[0][0, 0])),
        lambda p: p.__setitem__(0, p[1]),
        lambda p: p.pop(),
        lambda p: p.__delitem__(slice(0, 2)),
    ],
    ids=["append", "reverse", "sort", "setitem", "pop", "delitem"],
)
def test_changing_book_pairs_drops_the_stacked_arrays_and_trains_on_the_pairs(mutate):
    """After any in-place change the list trains exactly as a plain list of the same pairs."""
    pairs, _, _ = _book_pairs()
    mutate(pairs)
    assert pairs.dataset is None
    a, b = Network(SIZES, seed=1), Network(SIZES, seed=1)
    a.SGD(pairs, 1, 10, 3.0, quiet=True)
    b.SGD(list(pairs), 1, 10, 3.0, quiet=True)
    for got, want in zip(a.weights, b.weights):
        np.testing.assert_array_equal(to_numpy(got), to_numpy(want))


def test_device_copies_are_reused_across_calls(backend):
    pairs, _, labels = _book_pairs()
    net = Network(SIZES, backend, seed=0)
    first = net._device_data(pairs, "training_data", training=True)
    again = net._device_data(pairs, "training_data", training=True)
    assert again is first
    test = net._device_data(pairs, "test_data", training=False)
    assert test is not first and tuple(test.targets.shape) == (40,)
    np.testing.assert_array_equal(to_numpy(test.targets), labels)


def test_pairs_that_are_views_of_one_array_are_not_copied():
    inputs, labels = synthetic_problem(30, n_in=6, n_out=3)
    plain = [(row.reshape(6, 1), int(label)) for row, label in zip(inputs, labels)]
    net = Network(SIZES, seed=0)
    data = net._device_data(plain, "test_data", training=False)
    assert np.shares_memory(data.inputs, inputs)
    separate = [(row.reshape(6, 1).copy(), int(label)) for row, label in zip(inputs, labels)]
    copied = net._device_data(separate, "test_data", training=False)
    assert not np.shares_memory(copied.inputs, inputs)
    np.testing.assert_array_equal(copied.inputs, data.inputs)
    shuffled = plain[::-1]  # views, but not consecutive rows: must be copied, in the list's order
    np.testing.assert_array_equal(net._device_data(shuffled, "test_data", training=False).inputs, inputs[::-1])


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_compact_uint8_inputs_train_bit_for_bit_like_scaled_floats(backend, dtype):
    """MNIST bytes scaled on the device per batch == scaling the whole set up front."""
    rng = np.random.default_rng(0)
    raw = rng.integers(0, 256, size=(57, 6), dtype=np.uint8)
    labels = rng.integers(0, 3, size=57)
    scaled = raw.astype(dtype) / np.asarray(255.0, dtype=dtype)
    compact = Network(SIZES, backend, dtype=dtype, seed=4)
    floats = Network(SIZES, backend, dtype=dtype, seed=4)
    h1 = compact.SGD(Dataset(raw, labels, divisor=255.0), 2, 10, 3.0, test_data=Dataset(raw, labels, divisor=255.0),
                     quiet=True)  # fmt: skip
    h2 = floats.SGD((scaled, labels), 2, 10, 3.0, test_data=(scaled, labels), quiet=True)
    for got, want in zip(compact.weights + compact.biases, floats.weights + floats.biases):
        np.testing.assert_array_equal(to_numpy(got), to_numpy(want))
    assert [h.correct for h in h1] == [h.correct for h in h2]


def test_interrupt_mid_epoch_leaves_the_last_completed_epoch():
    inputs, labels = synthetic_problem(100, n_in=6, n_out=3)
    net = Network(SIZES, seed=0)
    net.SGD((inputs, labels), 1, 10, 3.0, quiet=True)
    after_one = [to_numpy(w).copy() for w in net.weights]
    calls = []

    def interrupt(m):
        calls.append(m)
        if len(calls) == 5:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        net.SGD((inputs, labels), 3, 10, 3.0, quiet=True, on_batch=interrupt)
    for got, want in zip(net.weights, after_one):
        np.testing.assert_array_equal(to_numpy(got), want)


def test_jax_float64_is_really_float64():
    jnp = pytest.importorskip("jax.numpy")
    with x64_scope("jax", "float64"):  # a float64 JAX network needs 64-bit mode on
        _jax_float64_is_really_float64(jnp)


def _jax_float64_is_really_float64(jnp):
    net = network2.Network(SIZES, xp="jax", dtype="float64", seed=0)
    assert net.weights[0].dtype == jnp.float64
    inputs, labels = synthetic_problem(30, n_in=6, n_out=3)
    net.SGD((inputs, labels), 1, 10, 0.5, quiet=True)
    assert net.weights[0].dtype == jnp.float64 and net.biases[-1].dtype == jnp.float64
    ref = network2.Network(SIZES, dtype="float64", seed=0)
    ref.SGD((inputs, labels), 1, 10, 0.5, quiet=True)
    np.testing.assert_allclose(to_numpy(net.weights[0]), to_numpy(ref.weights[0]), rtol=1e-12, atol=1e-12)
