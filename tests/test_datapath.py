"""The data path: one conversion per data set, compact inputs, device copies reused."""

from __future__ import annotations

import math

import numpy as np
import pytest
from helpers import synthetic_problem, x64_scope

from portable_nn import Network, network2, to_numpy
from portable_nn._data.forms import BookPairs, Dataset

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


# -- issue 14: the backend's own arrays stay on the device; other backends' are converted once ------------
class _Transfers:
    """Records every host copy (``to_numpy`` of more than the first row: the sync) and every host-to-device upload."""

    def __init__(self, monkeypatch):
        from portable_nn._data import arrays, forms

        self.host_copies: list[tuple[int, ...]] = []
        self.uploads: list[tuple[int, ...]] = []
        real_to_numpy, real_from_host = arrays.to_numpy, arrays.from_host

        def to_numpy_spy(array):
            if array.ndim and array.shape[0] > 1:
                self.host_copies.append(tuple(array.shape))
            return real_to_numpy(array)

        def from_host_spy(host, backend, dtype):
            self.uploads.append(tuple(host.shape))
            return real_from_host(host, backend, dtype)

        for module in (arrays, forms):  # the one-array helpers and the data-set boundary
            monkeypatch.setattr(module, "to_numpy", to_numpy_spy)
            if hasattr(module, "from_host"):
                monkeypatch.setattr(module, "from_host", from_host_spy)


def test_dataset_of_backend_arrays_is_used_where_it_is(backend, monkeypatch):
    """Issue 14, class 2: a Dataset of the network's own arrays makes no host round trip (CuPy stays on the GPU)."""
    inputs, labels = synthetic_problem(30, n_in=6, n_out=3)
    data = Dataset(backend.asarray(inputs), backend.asarray(labels))
    transfers = _Transfers(monkeypatch)
    net = Network(SIZES, backend, seed=0)
    device = net._device_data(data, "test_data", training=False)
    assert device.inputs is data.inputs  # resident as given: no copy at all
    assert net.evaluate(data) == Network(SIZES, seed=0).evaluate((inputs, labels))
    net.SGD(data, 1, 10, 3.0, test_data=data, quiet=True)
    assert transfers.host_copies == [] and transfers.uploads == []


def test_pairs_of_backend_arrays_are_stacked_on_the_device(backend, monkeypatch):
    """Issue 14, class 1: the book's pairs made of backend arrays (one-hot or 0-d labels) are stacked there."""
    inputs, labels = synthetic_problem(30, n_in=6, n_out=3)
    columns = [backend.asarray(row.reshape(6, 1).copy()) for row in inputs]
    one_hot = [backend.asarray(column.reshape(3, 1).copy()) for column in np.eye(3)[labels]]
    zero_d = [backend.asarray(np.asarray(label)) for label in labels]
    reference = Network(SIZES, seed=0)
    reference.SGD(nielsen_pairs_of(inputs, labels), 1, 10, 3.0, quiet=True)
    transfers = _Transfers(monkeypatch)
    net = Network(SIZES, backend, seed=0)
    net.SGD(list(zip(columns, one_hot)), 1, 10, 3.0, quiet=True)
    assert net.evaluate(list(zip(columns, zero_d))) == reference.evaluate((inputs, labels))
    assert transfers.host_copies == [] and transfers.uploads == []
    for got, want in zip(net.weights, reference.weights):
        np.testing.assert_allclose(to_numpy(got), to_numpy(want), rtol=1e-12, atol=1e-12)


def nielsen_pairs_of(inputs, labels):
    return [(row.reshape(6, 1), np.eye(3)[label].reshape(3, 1)) for row, label in zip(inputs, labels)]


def test_dataset_of_another_backends_arrays_is_converted_once(monkeypatch):
    torch = pytest.importorskip("torch")
    inputs, labels = synthetic_problem(30, n_in=6, n_out=3)
    data = Dataset(torch.asarray(inputs), torch.asarray(labels))
    transfers = _Transfers(monkeypatch)
    net = Network(SIZES, seed=0)  # NumPy: torch tensors are another backend's
    first = net._device_data(data, "test_data", training=False)
    assert isinstance(first.inputs, np.ndarray) and len(transfers.uploads) == 2
    assert net._device_data(data, "test_data", training=False) is first and len(transfers.uploads) == 2
    assert net.evaluate(data) == net.evaluate((inputs, labels))


def test_an_object_carrying_a_dataset_converts_through_it():
    """What network3's ``load_data_shared`` returns (issue 16): a tuple ``(x, y)`` with a ``.dataset``."""
    from portable_nn._data.forms import as_dataset

    inputs, labels = synthetic_problem(30, n_in=6, n_out=3)

    class Shared(tuple):
        pass

    shared = Shared((inputs, labels))
    shared.dataset = Dataset(inputs, labels)
    assert as_dataset(shared, "data", 6, "float64") is shared.dataset
    net = Network(SIZES, seed=0)
    assert net._device_data(shared, "test_data", training=False) is net._device_data(shared, "d", training=False)


# -- issue 17 (class 19) and 18 (point 9): Dataset checks its arguments, and slices like the book's lists ----
@pytest.mark.parametrize(
    ("args", "kwargs", "error", "pattern"),
    [
        (([[0.0] * 6], [0]), {}, TypeError, r"Dataset: inputs must be an array .*got list"),
        ((np.zeros((2, 6)), [0, 1]), {}, TypeError, r"Dataset: labels must be an array .*got list"),
        ((np.zeros((2, 6), dtype=complex), np.zeros(2)), {}, TypeError, r"Dataset: inputs must be real numbers"),
        ((np.zeros((2, 6)), np.zeros(2, dtype=bool)), {}, TypeError, r"Dataset: labels must be int labels"),
        ((np.zeros(6), np.zeros(1)), {}, ValueError, r"Dataset: inputs must have shape \(n, n_in\)"),
        ((np.zeros((2, 6)), np.zeros(3)), {}, ValueError, r"Dataset: labels must have shape \(2,\)"),
        ((np.zeros((2, 6), np.uint8), np.zeros(2)), {"divisor": 0}, ValueError, r"divisor must be None or a finite"),
        ((np.zeros((2, 6), np.uint8), np.zeros(2)), {"divisor": -255}, ValueError, r"divisor must be None or a fin"),
        ((np.zeros((2, 6), np.uint8), np.zeros(2)), {"divisor": math.nan}, ValueError, r"divisor must be None or a"),
        ((np.zeros((2, 6), np.uint8), np.zeros(2)), {"divisor": "255"}, TypeError, r"divisor must be None or a"),
    ],
    ids=["inputs list", "labels list", "complex", "bool labels", "1-d", "lengths", "div 0", "div -255", "div nan",
         "div str"],
)  # fmt: skip
def test_dataset_checks_its_arguments(args, kwargs, error, pattern):
    with pytest.raises(error, match=pattern):
        Dataset(*args, **kwargs)


def test_dataset_slices_like_the_books_lists(backend):
    raw = np.arange(40 * 6, dtype=np.uint8).reshape(40, 6)
    labels = np.arange(40) % 3
    data = Dataset(backend.asarray(raw), backend.asarray(labels), divisor=255.0)
    mask = labels == 1
    cases = {
        "[:5]": (data[:5], slice(None, 5)),
        "[-3:]": (data[-3:], slice(-3, None)),
        "[30:100]": (data[30:100], slice(30, 100)),
        "[::3]": (data[::3], slice(None, None, 3)),
        "[::-1]": (data[::-1], slice(None, None, -1)),
        "[idx]": (data[np.array([4, 0, 4, 39])], np.array([4, 0, 4, 39])),
        "[list]": (data[[1, 2]], np.array([1, 2])),
        "[mask]": (data[mask], mask),
        "[backend idx]": (data[backend.asarray(np.array([7, 8]))], np.array([7, 8])),
    }
    for name, (part, rows) in cases.items():
        assert isinstance(part, Dataset) and part.divisor == 255.0, name
        np.testing.assert_array_equal(to_numpy(part.inputs), raw[rows], err_msg=name)
        np.testing.assert_array_equal(to_numpy(part.labels), labels[rows], err_msg=name)
        assert len(part) == raw[rows].shape[0], name
    assert len(data) == 40
    host = Dataset(raw, labels)
    assert np.shares_memory(host[:5000].inputs, raw) and np.shares_memory(host[::2].inputs, raw)
    with pytest.raises(TypeError, match=r"indexed by a slice, an int index array or a boolean mask"):
        data[3]
    with pytest.raises(IndexError, match=r"out of range for 40 rows"):
        data[np.array([40])]
    with pytest.raises(IndexError, match=r"boolean mask over a Dataset of 40 rows must have shape \(40,\)"):
        data[np.ones(3, dtype=bool)]
    net = Network(SIZES, backend, seed=0)
    assert net.evaluate(data[:20]) == net.evaluate((raw[:20] / 255.0, labels[:20]))
