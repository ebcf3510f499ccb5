"""Training learns: a synthetic problem on every backend, real MNIST when the data is present."""

from __future__ import annotations

import importlib.util
import re
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest
from helpers import synthetic_problem

from portable_nn import Network, network, network2, network3, to_numpy
from portable_nn._backend import compiled
from portable_nn._data.mnist import read_mnist_dir
from portable_nn._train import loop as training


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


# -- the compiled epoch in chunks (JAX) -------------------------------------------------------------
def _bench_jax_chunks():
    """``benchmarks/bench_jax_chunks.py`` loaded from its file (``benchmarks`` need not be importable)."""
    path = Path(__file__).resolve().parents[1] / "benchmarks" / "bench_jax_chunks.py"
    spec = importlib.util.spec_from_file_location("bench_jax_chunks", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules.setdefault("bench_jax_chunks", module)  # dataclasses look their module up there
    spec.loader.exec_module(sys.modules["bench_jax_chunks"])
    return sys.modules["bench_jax_chunks"]


def test_jax_chunks_are_bit_for_bit_one_compiled_epoch_and_compile_once(monkeypatch):
    """Chunks of 7 mini-batches (the last of 2, then a 3-row tail) give exactly the whole-epoch loop's state."""
    pytest.importorskip("jax")
    monkeypatch.setattr(training, "chunk_size", lambda n_batches, pace=None: 7)
    inputs, labels = synthetic_problem(1003, n_in=6, n_out=3)
    net = network2.Network([6, 8, 3], xp="jax", dtype="float32", seed=0)
    data = net._device_data((inputs, labels), "training_data", training=True)
    step, chunk = net.training_step(net.update_rule(0.1, data.n, 0.5, "l2"), None)
    runner = training._Runner(net, data, 10, (step, chunk))
    whole = _bench_jax_chunks().whole_epoch(step)
    xp, rng = net.xp, np.random.default_rng(1)
    chunked = reference = net.training_state(True)
    for _ in range(3):
        calls: list[int] = []
        order = net.backend.asarray(rng.permutation(1003), dtype=net.backend.index_dtype)
        chunked = runner.run(chunked, order, 0.5, calls.append)
        rows = xp.reshape(order[:1000], (100, 10))
        reference = whole(reference, data.inputs, data.targets, rows, net.ones_column(10), 0.5)
        reference = step(reference, data.inputs, data.targets, order[1000:], net.ones_column(3), 0.5)
        assert calls == [70] * 14 + [20, 3]
    for got, want in zip(jax_tree_leaves(chunked), jax_tree_leaves(reference)):
        np.testing.assert_array_equal(to_numpy(got), to_numpy(want))
    assert chunk._cache_size() == 1, "every chunk, the short last one included, must reuse one compilation"


def jax_tree_leaves(state):
    return [*state.weights, *state.biases, *state.velocities_w, *state.velocities_b]


def test_chunk_size_follows_the_pace():
    """50 chunks while the pace is unknown, then chunks of ~CHUNK_SECONDS, never more than the epoch."""
    assert compiled.chunk_size(5000) == 100 and compiled.chunk_size(30) == 1
    assert compiled.chunk_size(5000, compiled.CHUNK_SECONDS / 400) == 400
    assert compiled.chunk_size(5000, 10.0) == 1 and compiled.chunk_size(5000, 1e-9) == 5000


def test_jax_sgd_reports_progress_and_stops_between_chunks(monkeypatch):
    """``on_batch`` comes once per chunk of a JAX epoch; Ctrl-C in epoch 2 leaves the network as after epoch 1."""
    pytest.importorskip("jax")
    inputs, labels = synthetic_problem(1000, n_in=6, n_out=3)
    after_one = Network([6, 8, 3], xp="jax", dtype="float32", seed=0)
    after_one.SGD((inputs, labels), 1, 10, 3.0, quiet=True)
    net = Network([6, 8, 3], xp="jax", dtype="float32", seed=0)
    calls: list[int] = []
    net.SGD((inputs, labels), 1, 10, 3.0, quiet=True, on_batch=calls.append)
    assert len(calls) >= 2 and sum(calls) == 1000 and all(m % 10 == 0 for m in calls), calls

    monkeypatch.setattr(training, "chunk_size", lambda n_batches, pace=None: 5)

    def interrupt(m):
        calls.append(m)
        if sum(calls) > 1000 + 100:
            raise KeyboardInterrupt

    net = Network([6, 8, 3], xp="jax", dtype="float32", seed=0)
    calls.clear()
    with pytest.raises(KeyboardInterrupt):
        net.SGD((inputs, labels), 3, 10, 3.0, quiet=True, on_batch=interrupt)
    assert calls == [50] * 23, "the interrupt must land between chunks of the second epoch"
    for got, want in zip(net.weights + net.biases, after_one.weights + after_one.biases):
        np.testing.assert_array_equal(to_numpy(got), to_numpy(want))


# -- divergence -----------------------------------------------------------------------------------------
def _chapter6(dtype="float64", activation="sigmoid"):
    layers = [network3.FullyConnectedLayer(20, 16, activation_fn=activation), network3.SoftmaxLayer(16, 4)]
    return network3.Network(layers, 10, dtype=dtype, seed=0)


def test_chapter6_divergence_is_reported_naming_eta():
    """eta = 1e6 trains a chapter-6 net to chance: the saturation check must say so, once."""
    rng = np.random.default_rng(0)
    data = (rng.random((200, 20)), rng.integers(0, 4, 200))
    with pytest.warns(RuntimeWarning, match=r"diverged in epoch \d: .*saturated.*lower eta \(now 1e\+06\)") as got:
        _chapter6().SGD(data, 3, 10, 1e6, validation_data=data, quiet=True)
    assert len(got) == 1
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        _chapter6().SGD(data, 3, 10, 0.1, validation_data=data, quiet=True)  # a sane eta: no warning


@pytest.mark.parametrize("chapter", [1, 3, 6])
def test_numpy_overflow_warnings_become_one_divergence_warning(chapter):
    """eta = 1e38 in float32 overflows NumPy's matmuls: the user sees one warning, at their own line."""
    rng = np.random.default_rng(0)
    data = (rng.random((200, 20)), rng.integers(0, 4, 200))
    if chapter == 6:
        net, kwargs = _chapter6("float32", "ReLU"), {"validation_data": data}
    elif chapter == 3:
        net = network2.Network([20, 16, 4], dtype="float32", seed=0)
        kwargs = {"evaluation_data": data, "monitor_evaluation_accuracy": True}
    else:
        net, kwargs = network.Network([20, 16, 4], dtype="float32", seed=0), {"test_data": data}
    with warnings.catch_warnings(record=True) as got:
        warnings.simplefilter("always")
        net.SGD(data, 2, 10, 1e38, quiet=True, **kwargs)
    messages = [(w.category.__name__, str(w.message), w.filename) for w in got]
    assert len(got) == 1, messages
    assert got[0].category is RuntimeWarning and str(got[0].message).startswith("training diverged in epoch 1")
    assert "lower eta (now 1e+38)" in str(got[0].message) and got[0].filename == __file__, messages


def test_bench_jax_chunks_writes_its_section_and_leaves_the_rest(tmp_path):
    """The benchmark runs end to end (random data, one round) and replaces only its own section."""
    pytest.importorskip("jax")
    bench = _bench_jax_chunks()
    doc = tmp_path / "benchmarks.md"
    doc.write_text("# Benchmarks\n\nkept\n")
    for _ in range(2):
        assert bench.main(["--synthetic", "--n", "600", "--rounds", "1", "--write", str(doc)]) == 0
    text = doc.read_text()
    assert text.startswith("# Benchmarks\n\nkept\n") and text.count(bench.BEGIN) == 1 and text.count(bench.END) == 1
    assert len(re.findall(r"^\| `\[784, \d+, 10\]` \| \d+ \|", text, re.M)) == len(bench.CASES)
    assert re.search(r"the 5% target is (met|missed)", text)
