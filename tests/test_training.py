"""Training learns: a synthetic problem on every backend, real MNIST when the data is present."""

from __future__ import annotations

import numpy as np
import pytest
from helpers import synthetic_problem

from portable_nn import Network
from portable_nn.mnist import read_mnist_dir


def test_sgd_learns_a_synthetic_problem(backend):
    """3 classes (chance ≈ 33%): 20 epochs must lift test accuracy from < 60% to ≥ 85%."""
    inputs, labels = synthetic_problem(1200, n_in=6, n_out=3, seed=1)
    train, test = (inputs[:1000], labels[:1000]), (inputs[1000:], labels[1000:])
    net = Network([6, 16, 3], backend, seed=0)
    before = net.evaluate(test)
    history = net.SGD(train, 20, 10, 3.0, test_data=test, quiet=True)
    assert before < 120, f"untrained net already at {before}/200: the problem is too easy to prove anything"
    assert history[-1].correct >= 170, [h.correct for h in history]
    assert history[-1].accuracy == history[-1].correct / 200
    assert net.evaluate(test) == history[-1].correct
    assert all(h.seconds > 0 for h in history)


def test_sgd_prints_nielsens_epoch_lines(capsys):
    inputs, labels = synthetic_problem(40, n_in=6, n_out=3)
    net = Network([6, 4, 3], seed=0)
    net.SGD((inputs, labels), 2, 10, 3.0, test_data=(inputs, labels))
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 2 and lines[0].startswith("Epoch 0: ") and lines[1].endswith(" / 40")
    net.SGD((inputs, labels), 1, 10, 3.0)
    assert capsys.readouterr().out.strip() == "Epoch 0 complete"
    net.SGD((inputs, labels), 1, 10, 3.0, quiet=True)
    assert capsys.readouterr().out == ""


@pytest.fixture(scope="session")
def mnist(mnist_dir):
    return read_mnist_dir(mnist_dir)


@pytest.mark.slow
def test_one_mnist_epoch_reaches_90_percent(backend, mnist):
    """The book's chapter-1 run, one epoch on the first 50,000 images: ≥ 90% of the 10,000 test images."""
    net = Network([784, 30, 10], backend, seed=0)
    train = (mnist.train_images[:50_000], mnist.train_labels[:50_000])
    test = (mnist.test_images, mnist.test_labels)
    history = net.SGD(train, 1, 10, 3.0, test_data=test, quiet=True)
    assert history[0].n_test == 10_000
    assert history[0].correct >= 9_000, f"{history[0].correct} / 10000 after one epoch"
    assert np.isfinite(history[0].seconds)
