"""portable_nn.network3: the book's chapter-6 networks on every backend.

* finite-difference gradients of the book's cost (log-likelihood + L2 over
  num_training_batches, dropout masks held fixed) for each layer type and
  activation, against the gradients one SGD step applies;
* parity with NumPy (float64 and float32) after two epochs of SGD with two
  conv-pool layers, dropout and L2 (JAX through its compiled epoch);
* the conv-pool forward pass against plain NumPy loops (kernel flipped, Theano's conv2d);
* a small MNIST subset learns on every backend;
* files, the book's printed lines, Ctrl-C, presets, layer parameters.
"""

from __future__ import annotations

import json
import math
import zipfile

import numpy as np
import pytest
from helpers import PARITY_TOL, assert_close

from portable_nn import ModelFileError, network2, network3, to_numpy
from portable_nn._backend.compiled import compile_function
from portable_nn._math.chain import make_step, training_loss
from portable_nn._math.costs import LogLikelihoodCost
from portable_nn._math.updates import State, UpdateRule
from portable_nn._nets.chapter6_layers import chain_of
from portable_nn.network3 import ConvPoolLayer, FullyConnectedLayer, Network, ReLU, SoftmaxLayer, linear, sigmoid, tanh

ACTIVATIONS = {"sigmoid": sigmoid, "tanh": tanh, "ReLU": ReLU, "linear": linear}


def _tiny_layers(act=sigmoid, *, two_conv: bool = False, p: float = 0.0, m: int = 4) -> list:
    """6x6 (or 8x8) single-channel images, one or two conv-pool layers, FC with dropout, softmax with dropout."""
    if two_conv:
        convs = [
            ConvPoolLayer((2, 1, 3, 3), (m, 1, 8, 8), (2, 2), act),  # 6x6 -> 3x3
            ConvPoolLayer((3, 2, 2, 2), (m, 2, 3, 3), (1, 1), act),  # 2x2, pool 1x1
        ]
        n = 3 * 2 * 2
    else:
        convs = [ConvPoolLayer((2, 1, 3, 3), (m, 1, 6, 6), (2, 2), act)]  # 4x4 -> 2x2
        n = 2 * 2 * 2
    return [*convs, FullyConnectedLayer(n, 5, act, p_dropout=p), SoftmaxLayer(5, 3, p_dropout=p)]


def _host_data(n: int, n_in: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    return rng.random((n, n_in)), rng.integers(0, 3, size=n)


def _masks(layers: list, m: int, rng: np.random.Generator) -> tuple[list, list]:
    """Fixed masks: packed rows for the step and 0/1 float arrays for the reference cost."""
    packed, dense = [], []
    for layer in layers:
        if layer.p_dropout > 0:
            keep = rng.random((m, layer.n_in)) >= layer.p_dropout
            packed.append(np.packbits(keep, axis=1))
            dense.append(keep.astype(np.float64))
        else:
            dense.append(None)
    return packed, dense


@pytest.mark.parametrize(
    ("act", "two_conv"),
    [*((act, False) for act in ACTIVATIONS), ("ReLU", True)],
    ids=[*(f"conv-{act}" for act in ACTIVATIONS), "conv-conv-ReLU"],
)
def test_gradients_match_finite_differences(backend, act, two_conv):
    """The step's update, read back as a gradient, equals central differences of the book's cost.

    Every activation in a conv-pool layer (and the fully connected layer after it); two stacked
    conv-pool layers exercise the convolution's input gradient.  Dropout masks fixed, lmbda > 0.
    """
    xp = backend.xp
    m, lmbda_b = 4, 0.3
    layers = _tiny_layers(ACTIVATIONS[act], two_conv=two_conv, p=0.5, m=m)
    rng = np.random.default_rng(3)
    host_w = [rng.normal(0, 0.5, layer.w_shape) for layer in layers]
    host_b = [rng.normal(0, 0.5, layer.b_shape) for layer in layers]
    x, labels = _host_data(m, layers[0].n_in, seed=5)
    y = np.eye(3)[labels]
    packed, dense = _masks(layers, m, rng)

    chain = chain_of(layers)
    shifts = backend.asarray(np.arange(7, -1, -1, dtype=np.uint8), dtype=xp.uint8)
    rule = UpdateRule(decay=lmbda_b)
    step = compile_function(backend, make_step(xp, chain, LogLikelihoodCost, rule, dtype=xp.float64, shifts=shifts))
    on = backend.asarray
    state = State(tuple(on(w) for w in host_w), tuple(on(b) for b in host_b))
    targets = (on(y), tuple(backend.asarray(p, dtype=xp.uint8) for p in packed))
    idx = backend.asarray(np.arange(m), dtype=xp.int64)
    new = step(state, on(x), targets, idx, None, 1.0)

    def cost(ws: list, bs: list) -> float:
        """The book's training cost: mean log-likelihood with the masks, plus 0.5·lmbda_b·Σ‖w‖²."""
        mean = training_loss(np, chain, ws, bs, x, y, dense, LogLikelihoodCost) / m
        return float(mean + 0.5 * lmbda_b * sum(np.sum(w * w) for w in ws))

    eps = 1e-6
    for kind, params, updated in (("w", host_w, new.weights), ("b", host_b, new.biases)):
        for i, p in enumerate(params):
            numeric = np.empty_like(p)
            for k in np.ndindex(p.shape):
                saved = p[k]
                p[k] = saved + eps
                plus = cost(host_w, host_b)
                p[k] = saved - eps
                minus = cost(host_w, host_b)
                p[k] = saved
                numeric[k] = (plus - minus) / (2 * eps)
            analytic = p - to_numpy(updated[i])  # eta = 1: w - w_new is the gradient
            np.testing.assert_allclose(analytic, numeric, rtol=1e-5, atol=1e-7, err_msg=f"layer {i} {kind} ({act})")


def _loop_conv_pool(x, w, b, pool, act):
    """Plain NumPy loops: valid true convolution (kernel flipped), max over ph x pw windows, bias, activation."""
    n, c, h, wd = x.shape
    f, _, kh, kw = w.shape
    oh, ow = h - kh + 1, wd - kw + 1
    conv = np.zeros((n, f, oh, ow))
    for s in range(n):
        for g in range(f):
            for i in range(oh):
                for j in range(ow):
                    total = 0.0
                    for ch in range(c):
                        for a in range(kh):
                            for bb in range(kw):
                                total += x[s, ch, i + a, j + bb] * w[g, ch, kh - 1 - a, kw - 1 - bb]
                    conv[s, g, i, j] = total
    ph, pw = pool
    out = np.zeros((n, f, oh // ph, ow // pw))
    for s in range(n):
        for g in range(f):
            for i in range(oh // ph):
                for j in range(ow // pw):
                    out[s, g, i, j] = conv[s, g, i * ph : i * ph + ph, j * pw : j * pw + pw].max()
    return act(out + b[None, :, None, None])


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_conv_pool_forward_equals_loops(backend, dtype):
    """Conv-pool output (odd sizes, so pooling drops a border) equals the loop reference."""
    layer = ConvPoolLayer((3, 2, 3, 2), (2, 2, 7, 8), (2, 3), tanh)
    rng = np.random.default_rng(1)
    x = rng.normal(size=(2, 2, 7, 8))
    w, b = rng.normal(size=layer.w_shape), rng.normal(size=layer.b_shape)
    dt = getattr(backend.xp, dtype)
    out = layer.core.forward(backend.xp, training=False, keep=False)(
        backend.asarray(w, dtype=dt),
        backend.asarray(b, dtype=dt),
        backend.asarray(x.reshape(2, -1), dtype=dt),
        None,
    )[0]
    desired = _loop_conv_pool(x, w, b, (2, 3), np.tanh).reshape(2, -1)
    assert_close(out, desired.astype(dtype), backend, dtype, tol=10 * PARITY_TOL[dtype])


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_parity_with_numpy_after_sgd(backend, dtype):
    """Two epochs (45 samples, batch 10: a last batch of 5) with two conv layers, dropout and L2."""
    x, labels = _host_data(45, 64, seed=2)
    val = _host_data(17, 64, seed=4)

    def trained(xp):
        net = Network(_tiny_layers(ReLU, two_conv=True, p=0.3), 10, xp=xp, dtype=dtype, seed=7, device=None)
        return net

    ref = trained("numpy")
    ref.SGD((x, labels), 2, 10, 0.05, val, None, lmbda=0.1, quiet=True)
    net = Network(_tiny_layers(ReLU, two_conv=True, p=0.3), 10, xp=backend, dtype=dtype, seed=7)
    history = net.SGD((x, labels), 2, 10, 0.05, val, None, lmbda=0.1, quiet=True)
    assert len(history) == 2 and all(r.correct is not None for r in history)
    for layer, ref_layer in zip(net.layers, ref.layers):
        assert_close(layer.w, to_numpy(ref_layer.w), backend, dtype)
        assert_close(layer.b, to_numpy(ref_layer.b), backend, dtype)
    changed = [not np.array_equal(to_numpy(r.w), w0) for r, w0 in zip(ref.layers, _initial_w(dtype))]
    assert all(changed), "every layer's weights must have been trained"


def _initial_w(dtype):
    return [
        to_numpy(layer.w) for layer in Network(_tiny_layers(ReLU, two_conv=True, p=0.3), 10, dtype=dtype, seed=7).layers
    ]


def test_small_mnist_subset_learns(backend, mnist_dir):
    """2,000 training images, 2 epochs of a conv-pool + softmax network: far above chance (10%)."""
    training, validation, test = network3.load_data_shared(mnist_dir, download=False)
    net = Network(
        [ConvPoolLayer((8, 1, 5, 5), (10, 1, 28, 28), (2, 2), ReLU), SoftmaxLayer(8 * 12 * 12, 10)],
        10,
        xp=backend,
        seed=0,
    )
    history = net.SGD(training.subset(slice(0, 2000)), 2, 10, 0.05, validation.subset(slice(0, 500)), None, quiet=True)
    assert history[-1].correct / 500 > 0.8
    assert net.accuracy(test.subset(slice(0, 500))) > 400


# -- the book's L2 formula ----------------------------------------------------------------------------
def test_l2_decay_is_lmbda_over_num_training_batches():
    """SGD(lmbda) equals steps built with decay = lmbda / (n // m), not lmbda / n."""
    x, labels = _host_data(30, 36, seed=9)
    net = Network(_tiny_layers(sigmoid), 10, dtype="float64", seed=3)
    ref = Network(_tiny_layers(sigmoid), 10, dtype="float64", seed=3)
    net.SGD((x, labels), 1, 10, 0.5, None, None, lmbda=2.0, quiet=True)
    order = ref._rng.permutation(30)
    step = make_step(np, chain_of(ref.layers), LogLikelihoodCost, UpdateRule(decay=2.0 / 3))
    state = ref.training_state(False)
    for k in range(0, 30, 10):
        state = step(state, x, np.eye(3)[labels], order[k : k + 10], None, 0.5)
    for layer, w in zip(net.layers, state.weights):
        np.testing.assert_allclose(to_numpy(layer.w), w, rtol=1e-12)


# -- API -------------------------------------------------------------------------------------------------
def test_book_shapes_and_initialisation():
    m = 10
    net = network3.preset_network("ch6-conv2", m, seed=0)
    conv1, conv2, fc, soft = net.layers
    assert conv1.w.shape == (20, 1, 5, 5) and conv1.b.shape == (20,)
    assert conv2.w.shape == (40, 20, 5, 5) and conv2.b.shape == (40,)
    assert fc.w.shape == (640, 100) and fc.b.shape == (100,)
    assert soft.w.shape == (100, 10) and not np.any(soft.w) and not np.any(soft.b)
    assert net.layers[0].w.dtype == np.float32
    assert np.std(conv2.w) == pytest.approx(math.sqrt(1 / (40 * 25 / 4)), rel=0.05)
    assert np.std(fc.w) == pytest.approx(math.sqrt(1 / 100), rel=0.05)
    assert np.std(fc.b) == pytest.approx(1.0, rel=0.2)
    assert set(network3.PRESETS) >= {
        "ch6-fc",
        "ch6-conv1",
        "ch6-conv2",
        "ch6-relu",
        "ch6-expanded",
        "ch6-fc2",
        "ch6-dropout",
    }
    spec = network3.PRESETS["ch6-dropout"](m)
    assert (spec.eta, spec.lmbda, spec.epochs, spec.expanded) == (0.03, 0.1, 40, True)


def test_parameters_are_replaceable(backend):
    net = Network(_tiny_layers(tanh), 4, xp=backend, seed=1)
    layer = net.layers[1]
    layer.w = np.ones(layer.w_shape)
    assert_close(layer.w, np.ones(layer.w_shape, dtype="float32"), backend, "float32", tol=0)
    with pytest.raises(ValueError, match="shape"):
        layer.b = np.ones((layer.n_out + 1,))
    with pytest.raises(ValueError, match="NaN"):
        layer.w = np.full(layer.w_shape, np.nan)


def test_feedforward_any_n_and_accuracy(backend):
    net = Network(_tiny_layers(sigmoid, p=0.5), 4, xp=backend, seed=2)
    net.SGD(_host_data(20, 36), 1, 4, 0.1, None, None, quiet=True)
    x, labels = _host_data(23, 36, seed=8)
    a = net.feedforward(x)
    assert tuple(a.shape) == (23, 3)
    host = to_numpy(a)
    np.testing.assert_allclose(host.sum(axis=1), 1.0, rtol=1e-5)
    correct = net.accuracy((x, labels))
    assert isinstance(correct, int) and correct == int(np.sum(host.argmax(axis=1) == labels))


def test_printed_lines_and_results(capsys):
    x, labels = _host_data(2000, 36, seed=1)
    net = Network(_tiny_layers(ReLU), 2, seed=0)
    history = net.SGD((x, labels), 2, 2, 0.01, (x[:100], labels[:100]), (x[100:300], labels[100:300]))
    out = capsys.readouterr().out.splitlines()
    assert out[0] == "Training mini-batch number 0"
    assert "Training mini-batch number 1000" in out and "Training mini-batch number 2000" not in out  # 2,000 batches
    epoch0 = out.index(next(line for line in out if line.startswith("Epoch 0: validation accuracy ")))
    assert out[epoch0 + 1] == "This is the best validation accuracy to date."
    assert out[epoch0 + 2].startswith("The corresponding test accuracy is ") and out[epoch0 + 2].endswith("%")
    assert out[-3] == "Finished training network."
    assert out[-2].startswith("Best validation accuracy of ") and " obtained at iteration " in out[-2]
    assert out[-1].startswith("Corresponding test accuracy of ")
    assert [r.epoch for r in history] == [0, 1] and history[0].n_test == 100 and history[0].n_test_data == 200
    assert f"{history[-1].test_accuracy:.2%}" in out[-1]
    capsys.readouterr()
    net.SGD((x, labels), 1, 2, 0.01, (x[:100], labels[:100]), None, quiet=True)
    assert capsys.readouterr().out == ""


def test_interrupt_keeps_last_completed_epoch():
    x, labels = _host_data(40, 36, seed=1)
    net = Network(_tiny_layers(sigmoid, p=0.5), 10, seed=0)
    net.SGD((x, labels), 1, 10, 0.5, None, None, quiet=True)
    after_one = [to_numpy(layer.w).copy() for layer in net.layers]
    seen = []

    def stop(m):
        seen.append(m)
        if len(seen) == 2:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        net.SGD((x, labels), 3, 10, 0.5, None, None, quiet=True, on_batch=stop)
    for layer, w in zip(net.layers, after_one):
        np.testing.assert_array_equal(to_numpy(layer.w), w)


def test_dropout_masks_rate_and_seed():
    layers = [FullyConnectedLayer(36, 40, p_dropout=0.25), SoftmaxLayer(40, 3, p_dropout=0.5)]
    net = Network(layers, 10, seed=4)
    a, b = net._draw_masks(3000)
    bits_a = np.unpackbits(to_numpy(a), axis=1)[:, :36]
    assert bits_a.mean() == pytest.approx(0.75, abs=0.01)
    assert np.unpackbits(to_numpy(b), axis=1)[:, :40].mean() == pytest.approx(0.5, abs=0.01)
    again = Network([FullyConnectedLayer(36, 40, p_dropout=0.25), SoftmaxLayer(40, 3, p_dropout=0.5)], 10, seed=4)
    np.testing.assert_array_equal(to_numpy(again._draw_masks(3000)[0]), to_numpy(a))


def test_bad_stacks_rejected():
    with pytest.raises(ValueError, match="SoftmaxLayer"):
        Network([FullyConnectedLayer(4, 3)], 2)
    with pytest.raises(ValueError, match="gives 8 values"):
        Network([ConvPoolLayer((2, 1, 3, 3), (1, 1, 6, 6)), SoftmaxLayer(9, 3)], 2)
    with pytest.raises(ValueError, match="activation_fn"):
        FullyConnectedLayer(4, 3, activation_fn=print)
    layer = SoftmaxLayer(4, 3)
    Network([layer], 2)
    with pytest.raises(ValueError, match="already belongs"):
        Network([layer], 2)


# -- files -------------------------------------------------------------------------------------------------
def test_save_load_round_trip(backend, tmp_path):
    net = Network(_tiny_layers(ReLU, two_conv=True, p=0.5), 4, dtype="float64", seed=5)
    path = net.save(tmp_path / "conv.npz")
    with np.load(path, allow_pickle=False) as archive:
        meta = json.loads(str(archive["meta"]))
        assert set(archive.files) == {"meta", *(f"layer{i}_{k}" for i in range(4) for k in "wb")}
    assert [s["type"] for s in meta["layers"]] == [
        "ConvPoolLayer",
        "ConvPoolLayer",
        "FullyConnectedLayer",
        "SoftmaxLayer",
    ]
    loaded = network3.load(path, xp=backend.name, device=backend.device)
    assert loaded.dtype == "float64" and loaded.layers[2].p_dropout == 0.5
    assert loaded.layers[0].activation.name == "relu"
    x = _host_data(6, 64)[0]
    assert_close(loaded.feedforward(x), to_numpy(net.feedforward(x)), backend, "float64")


def _rewrite(path, out, **changes):
    with np.load(path, allow_pickle=False) as archive:
        arrays = {k: archive[k] for k in archive.files}
    arrays.update(changes)
    arrays = {k: v for k, v in arrays.items() if v is not None}
    np.savez(out, allow_pickle=False, **arrays)
    return out


def test_load_rejects_malformed_files(tmp_path):
    net = Network(_tiny_layers(sigmoid), 4, seed=5)
    good = net.save(tmp_path / "good.npz")
    meta = json.loads(str(np.load(good)["meta"]))
    bad_shape = _rewrite(good, tmp_path / "shape.npz", layer1_w=np.zeros((3, 3), dtype=np.float32))
    with pytest.raises(ModelFileError, match="layer1_w has shape"):
        network3.load(bad_shape)
    extra = _rewrite(good, tmp_path / "extra.npz", junk=np.zeros(3))
    with pytest.raises(ModelFileError, match="unexpected member"):
        network3.load(extra)
    nan = _rewrite(good, tmp_path / "nan.npz", layer0_b=np.full((2,), np.nan, dtype=np.float32))
    with pytest.raises(ModelFileError, match="NaN"):
        network3.load(nan)
    meta["layers"][1]["n_in"] = 9
    mismatch = _rewrite(good, tmp_path / "meta.npz", meta=np.asarray(json.dumps(meta)))
    with pytest.raises(ModelFileError, match="gives 8 values"):
        network3.load(mismatch)
    with pytest.raises(ModelFileError, match="missing 'meta'"):
        network3.load(_rewrite(good, tmp_path / "nometa.npz", meta=None))
    (tmp_path / "junk.npz").write_bytes(b"PK\x03\x04 not a zip")
    with pytest.raises(ModelFileError):
        network3.load(tmp_path / "junk.npz")
    with zipfile.ZipFile(good) as z:
        assert all(i.filename.endswith(".npy") for i in z.infolist())
    with pytest.raises(ValueError, match="NaN"):
        net.layers[0]._w = net.xp.full(net.layers[0].w_shape, np.nan, dtype=net.xp.float32)
        net.save(tmp_path / "diverged.npz")
    assert not (tmp_path / "diverged.npz").exists()


# -- the update and stop rules every network shares ---------------------------------------------------------
@pytest.mark.parametrize(
    ("mu", "regularization", "lmbda"),
    [(0.0, "l2", 0.0), (0.5, "l2", 0.3), (0.0, "l1", 0.3), (0.7, "l1", 0.2)],
    ids=["plain", "momentum-l2", "l1", "momentum-l1"],
)
def test_chapter6_trains_as_network2_with_the_same_rule(backend, mu, regularization, lmbda):
    """A fully connected chapter-6 network and network2 with the same weights, order and rule end equal.

    network3's decay is lmbda/num_training_batches, network2's lmbda/n: the same decay is asked of both.
    Momentum and L1 run through the one UpdateRule, so chapter 6 has them as chapter 3 does.
    """
    n, m, epochs = 45, 10, 2
    x, labels = _host_data(n, 12, seed=11)
    rng = np.random.default_rng(12)
    w1, b1 = rng.normal(0, 0.5, (12, 7)), rng.normal(0, 0.5, (7,))
    w2, b2 = rng.normal(0, 0.5, (7, 3)), rng.normal(0, 0.5, (3,))
    conv = Network.from_parameters(
        [FullyConnectedLayer(12, 7), SoftmaxLayer(7, 3)], m, [w1, w2], [b1, b2], xp=backend, dtype="float64", seed=5
    )
    dense = network2.Network.from_arrays(
        [w1.T, w2.T], [b1[:, None], b2[:, None]], "numpy", dtype="float64", seed=5, cost=LogLikelihoodCost
    )
    lmbda2 = lmbda * n / (n // m)  # network2's lmbda/n equal to network3's lmbda/(n // m)
    conv.SGD((x, labels), epochs, m, 0.5, lmbda=lmbda, mu=mu, regularization=regularization, quiet=True)
    dense.SGD([(xi[:, None], int(y)) for xi, y in zip(x, labels)], epochs, m, 0.5, lmbda2, mu=mu,
              regularization=regularization, quiet=True)  # fmt: skip
    for layer, w, b in zip(conv.layers, dense.weights, dense.biases):
        assert_close(layer.w, to_numpy(w).T, backend, "float64", tol=1e-10)
        assert_close(layer.b, to_numpy(b)[:, 0], backend, "float64", tol=1e-10)
    if mu:  # the velocities are kept for the next SGD call, as network2's
        assert conv.training_state(True).velocities_w[0].shape == (12, 7)


def test_chapter6_schedule_halves_eta_and_early_stopping_stops():
    """schedule_n and early_stopping_n watch the validation accuracy, as in network2 (eta 0: it never improves)."""
    x, labels = _host_data(30, 36, seed=9)
    val = _host_data(20, 36, seed=10)
    net = Network(_tiny_layers(sigmoid), 10, dtype="float64", seed=3)
    history = net.SGD((x, labels), 12, 10, 1e-12, val, None, schedule_n=1, quiet=True)
    etas = [r.eta for r in history]
    # epoch 1 is the first best; each epoch after it brings none: eta halves, and the run stops at eta/128
    assert etas == [1e-12 / 2**k for k in (0, 0, 1, 2, 3, 4, 5, 6)], etas
    stopped = Network(_tiny_layers(sigmoid), 10, dtype="float64", seed=3).SGD(
        (x, labels), 12, 10, 1e-12, val, None, early_stopping_n=2, quiet=True
    )
    assert len(stopped) == 3
    with pytest.raises(ValueError, match="validation_data"):
        net.SGD((x, labels), 1, 10, 0.1, None, None, schedule_n=1, quiet=True)
    with pytest.raises(ValueError, match="regularization"):
        net.SGD((x, labels), 1, 10, 0.1, val, None, regularization="l3", quiet=True)
