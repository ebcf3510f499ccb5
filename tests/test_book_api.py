"""What the book's conv.py does with Theano objects, through network3's counterparts, on every backend.

``ensemble``, ``plot_errors`` and ``plot_filters`` below are the book's
(``src/conv.py``) with only the Theano lines replaced by what the README
names next to them (``net.predictions(test_x)`` for the Theano function of
``net.layers[-1].y_out``, ``network3.get_value(w)`` for ``w.eval()``) and the
Python-3 fixes (``range``, ``//``, ``add_subplot`` counting from 1); the data
set unpacks and ``.eval()``s as the book's shared pair.
"""

from __future__ import annotations

from collections import Counter

import matplotlib
import numpy as np
import pytest

from portable_nn import Dataset, network3, to_numpy
from portable_nn._data.forms import as_dataset
from portable_nn.network3 import ConvPoolLayer, Network, ReLU, SharedArray, SharedPair, SoftmaxLayer

matplotlib.use("Agg")
import matplotlib.pyplot as plt

N_TEST = 60


def _data(seed=0):
    """Pairs of 28x28 "images" in [0, 1] whose label is a function of the pixels (learnable a little)."""
    rng = np.random.default_rng(seed)
    x = rng.random((200 + N_TEST, 784), dtype=np.float32)
    y = (x[:, :392].sum(axis=1) > x[:, 392:].sum(axis=1)).astype(np.int64) * 3 + rng.integers(0, 2, len(x))
    return SharedPair(x[:200], y[:200]), SharedPair(x[200:], y[200:])


def _net(backend, seed):
    layers = [ConvPoolLayer((4, 1, 5, 5), (10, 1, 28, 28), (2, 2), ReLU), SoftmaxLayer(4 * 12 * 12, 10)]
    return Network(layers, 10, xp=backend, dtype="float64", seed=seed)


# -- the data set is the book's pair --------------------------------------------------------------------------------
def test_a_shared_pair_unpacks_indexes_and_evals_like_the_books():
    training, test_data = _data()
    test_x, test_y = test_data
    assert isinstance(test_data, tuple) and len(test_data) == 2 and test_data.n == N_TEST
    assert isinstance(test_x, SharedArray) and test_x.shape == (N_TEST, 784) and test_x.dtype == np.float32
    assert test_y.dtype == np.int64 and test_y.shape == (N_TEST,)
    images, labels = test_data[0].eval(), test_data[1].eval()
    assert type(images) is np.ndarray and type(labels) is np.ndarray
    images[0, 0] = 7.0  # a copy, as Theano's eval
    assert test_x[0, 0] != 7.0
    assert np.shares_memory(test_x.get_value(borrow=True), test_data.dataset.inputs)
    assert np.array(test_x[3]).reshape(28, -1).shape == (28, 28)
    head = training.subset(slice(0, 50))
    assert isinstance(head, SharedPair) and head.n == 50 and np.shares_memory(head.inputs, training.inputs)


def test_networks_take_the_pair_in_constant_time(backend):
    _, test_data = _data()
    assert as_dataset(test_data, "test_data", 784, "float64") is test_data.dataset
    net = _net(backend, 0)
    first = net._device_data(test_data, "test_data", training=False)
    assert net._device_data(test_data, "test_data", training=False) is first  # device copy kept
    assert net.accuracy(test_data) == net.accuracy(Dataset(test_data.inputs, test_data.labels))


def test_sgd_on_the_pair_equals_sgd_on_its_dataset(backend):
    training, _ = _data()
    a, b = _net(backend, 3), _net(backend, 3)
    a.SGD(training, 1, 10, 0.1, quiet=True)
    b.SGD(Dataset(training.inputs, training.labels), 1, 10, 0.1, quiet=True)
    for la, lb in zip(a.layers, b.layers):
        np.testing.assert_array_equal(network3.get_value(la.w), network3.get_value(lb.w))


# -- predictions and parameters as host arrays on every backend -------------------------------------------------------
def test_predictions_are_host_int_labels_equal_to_numpys_argmax(backend):
    _, test_data = _data()
    test_x, _ = test_data
    net, reference = _net(backend, 5), _net("numpy", 5)
    got = net.predictions(test_x)
    assert type(got) is np.ndarray and got.dtype == np.int64 and got.shape == (N_TEST,)
    want = np.argmax(to_numpy(reference.feedforward(test_x.eval())), axis=1)
    np.testing.assert_array_equal(got, want)
    np.testing.assert_array_equal(net.predictions(test_data), want)
    np.testing.assert_array_equal(net.predictions(net.backend.asarray(test_x.eval())), want)
    assert int(np.sum(got == test_data[1].eval())) == net.accuracy(test_data)


def test_get_value_is_a_host_copy_of_a_layers_parameters(backend):
    net = _net(backend, 1)
    filters = network3.get_value(net.layers[0].w)
    assert type(filters) is np.ndarray and filters.shape == (4, 1, 5, 5) and filters.dtype == np.float64
    np.testing.assert_array_equal(filters, to_numpy(net.layers[0].w))
    filters[...] = 0.0
    assert np.any(to_numpy(net.layers[0].w) != 0.0)  # the network is untouched
    assert network3.get_value(net.layers[1].b).shape == (10,)


# -- the book's functions, rewritten with only the counterparts ---------------------------------------------
def ensemble(nets, test_data):
    """conv.py's ensemble: the Theano function over net.x / y_out becomes net.predictions(test_x)."""
    test_x, test_y = test_data
    for net in nets:
        net.test_predictions = list(net.predictions(test_x))
    all_test_predictions = list(zip(*[net.test_predictions for net in nets]))

    def plurality(p):
        return Counter(p).most_common(1)[0][0]

    plurality_test_predictions = [plurality(p) for p in all_test_predictions]
    test_y_eval = test_y.eval()
    error_locations = [j for j in range(len(test_y_eval)) if plurality_test_predictions[j] != test_y_eval[j]]
    erroneous_predictions = [plurality(all_test_predictions[j]) for j in error_locations]
    print(f"Accuracy is {1 - len(error_locations) / len(test_y_eval):.2%}")
    return error_locations, erroneous_predictions


def plot_errors(test_data, error_locations, erroneous_predictions=None):
    test_x, test_y = test_data[0].eval(), test_data[1].eval()
    plt.figure()
    error_images = [np.array(test_x[i]).reshape(28, -1) for i in error_locations]
    n = min(40, len(error_locations))
    for j in range(n):
        ax = plt.subplot2grid((5, 8), (j // 8, j % 8))
        ax.matshow(error_images[j], cmap=matplotlib.cm.binary)
        ax.text(24, 5, test_y[error_locations[j]])
        if erroneous_predictions:
            ax.text(24, 24, erroneous_predictions[j])
        plt.xticks(np.array([]))
        plt.yticks(np.array([]))
    return plt


def plot_filters(net, layer, x, y):
    filters = network3.get_value(net.layers[layer].w)
    fig = plt.figure()
    for j in range(len(filters)):
        ax = fig.add_subplot(y, x, j + 1)
        ax.matshow(filters[j][0], cmap=matplotlib.cm.binary)
        plt.xticks(np.array([]))
        plt.yticks(np.array([]))
    return plt


def test_the_books_ensemble_and_plots_run_on_the_counterparts(backend, tmp_path, capsys):
    training, test_data = _data()
    nets = []
    for seed in (0, 1, 2):
        net = _net(backend, seed)
        net.SGD(training, 1, 10, 0.1, quiet=True)
        nets.append(net)
    error_locations, erroneous_predictions = ensemble(nets, test_data)

    # The same vote computed independently from each network's host outputs.
    votes = np.stack([np.argmax(to_numpy(net.feedforward(test_data.inputs)), axis=1) for net in nets])
    labels = test_data.labels
    want = [j for j in range(N_TEST) if Counter(votes[:, j].tolist()).most_common(1)[0][0] != labels[j]]
    assert error_locations == want
    assert all(int(p) != int(labels[j]) for p, j in zip(erroneous_predictions, error_locations))
    assert f"Accuracy is {1 - len(want) / N_TEST:.2%}" in capsys.readouterr().out

    plot_errors(test_data, error_locations, erroneous_predictions).savefig(tmp_path / "ensemble_errors.png")
    plot_filters(nets[0], 0, 2, 2).savefig(tmp_path / "net_full_layer_0.png")
    plt.close("all")
    assert (tmp_path / "ensemble_errors.png").stat().st_size > 1000
    assert (tmp_path / "net_full_layer_0.png").stat().st_size > 1000


@pytest.mark.parametrize("bad", [np.zeros((3, 783)), np.zeros(784)])
def test_predictions_refuse_inputs_of_the_wrong_shape(bad):
    with pytest.raises(ValueError, match=r"inputs must have shape \(n, 784\)"):
        _net("numpy", 0).predictions(bad)


def test_size_is_the_books():
    training, test_data = _data()
    assert network3.size(training) == 200 == training[0].get_value(borrow=True).shape[0]
    assert network3.size(test_data.dataset) == N_TEST
