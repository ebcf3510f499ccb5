"""Nielsen's list-of-pairs form and the stacked form train identically."""

from __future__ import annotations

import numpy as np
from helpers import assert_close, nielsen_pairs, synthetic_problem

from portable_nn import Network, to_numpy

SIZES = [6, 5, 3]


def test_pairs_zip_and_stacked_forms_give_identical_training(backend):
    inputs, labels = synthetic_problem(45, n_in=6, n_out=3)
    onehot = np.eye(3)[labels]
    forms = {
        "pairs": nielsen_pairs(inputs, labels, 3),
        "zip": zip(list(inputs.reshape(45, 6, 1)), list(onehot.reshape(45, 3, 1))),
        "stacked labels": (inputs, labels),
        "stacked one-hot": (inputs, onehot),
        "stacked on backend": (backend.asarray(inputs), backend.asarray(labels)),
    }
    results = {}
    for name, data in forms.items():
        net = Network(SIZES, backend, seed=9)
        net.SGD(data, 2, 10, 3.0, quiet=True)
        results[name] = [to_numpy(w) for w in net.weights]
    reference = results.pop("pairs")
    for name, weights in results.items():
        for got, want in zip(weights, reference):
            np.testing.assert_array_equal(got, want, err_msg=name)


def test_evaluate_accepts_label_pairs_one_hot_and_stacked(backend):
    inputs, labels = synthetic_problem(25, n_in=6, n_out=3)
    net = Network(SIZES, backend, seed=1)
    counts = {
        net.evaluate(nielsen_pairs(inputs, labels, 3, one_hot=False)),
        net.evaluate(nielsen_pairs(inputs, labels, 3, one_hot=True)),
        net.evaluate((inputs, labels)),
        net.evaluate((inputs, np.eye(3)[labels])),
    }
    assert len(counts) == 1
    count = counts.pop()
    assert isinstance(count, int)
    out = to_numpy(net.feedforward(inputs.T))
    assert count == int(np.sum(np.argmax(out, axis=0) == labels))


def test_feedforward_of_one_column_matches_batch(backend):
    inputs, _ = synthetic_problem(5, n_in=6, n_out=3)
    net = Network(SIZES, backend, seed=4)
    batch = net.feedforward(inputs.T)
    single = net.feedforward(inputs[2].reshape(6, 1))
    assert_close(single, to_numpy(batch)[:, 2:3], net.backend, "float64", tol=1e-14)
