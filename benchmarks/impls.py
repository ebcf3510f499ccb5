"""Timed implementations: one class per benchmark row, ``prepare`` once, ``epoch`` per round.

Every row trains the same sigmoid network with the quadratic cost on the same
images and seed.  ``epoch`` trains one epoch -- shuffle included, evaluation
excluded -- and returns a :class:`Timing`.  Rows built on ``portable_nn`` use
only its public API (``Network``, ``SGD``, ``EpochResult``) and report the
epoch time ``SGD`` itself measures, plus the wall time of the whole ``SGD``
call (which adds the call's one-off data ingestion).

Rows are named by a spec string (``kind:arg:arg``); :func:`make_row` builds one.
The floors live in :mod:`benchmarks.floors`.
"""

from __future__ import annotations

import importlib
import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from .data import N_IN, N_OUT


@dataclass(frozen=True)
class Timing:
    """One timed epoch: ``seconds`` (the epoch) and ``wall`` (the whole call that ran it)."""

    seconds: float
    wall: float
    source: str = "timer"  # "EpochResult": seconds is SGD's own; "wall": seconds is the call's wall time


class Impl:
    """One benchmark row."""

    name = ""
    dtype = "float64"

    def prepare(self, sizes: list[int], images: np.ndarray, labels: np.ndarray, seed: int) -> None:
        """Build the network and move ``images`` ``(n, 784)``/``labels`` ``(n,)`` where they train."""
        raise NotImplementedError

    def epoch(self, batch_size: int, eta: float) -> Timing:
        """Train one epoch (device synchronised) and time it."""
        raise NotImplementedError


def _timed(fn: Callable[[], None]) -> Timing:
    start = time.perf_counter()
    fn()
    seconds = time.perf_counter() - start
    return Timing(seconds, seconds)


# -- the book and the seed --------------------------------------------------------
def _sigmoid(z: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-z))


class BookLoop(Impl):
    """``network.py`` as in the book: a Python loop over the samples of each mini-batch."""

    name = "book network.py (per-example loop)"

    def __init__(self, dtype: str = "float64") -> None:
        self.dtype = dtype

    def prepare(self, sizes, images, labels, seed):
        rng = np.random.default_rng(seed)
        self.biases = [rng.standard_normal((y, 1)).astype(self.dtype) for y in sizes[1:]]
        self.weights = [rng.standard_normal((y, x)).astype(self.dtype) for x, y in zip(sizes[:-1], sizes[1:])]
        eye = np.eye(N_OUT, dtype=self.dtype)
        images = images.astype(self.dtype, copy=False)
        self.data = [(x.reshape(N_IN, 1), eye[y].reshape(N_OUT, 1)) for x, y in zip(images, labels)]
        self.random = random.Random(seed)

    def backprop(self, x: np.ndarray, y: np.ndarray) -> tuple[list[np.ndarray], list[np.ndarray]]:
        nabla_b = [np.zeros(b.shape, self.dtype) for b in self.biases]
        nabla_w = [np.zeros(w.shape, self.dtype) for w in self.weights]
        activation, activations, zs = x, [x], []
        for b, w in zip(self.biases, self.weights):
            z = np.dot(w, activation) + b
            zs.append(z)
            activation = _sigmoid(z)
            activations.append(activation)
        delta = (activations[-1] - y) * _sigmoid(zs[-1]) * (1 - _sigmoid(zs[-1]))
        nabla_b[-1] = delta
        nabla_w[-1] = np.dot(delta, activations[-2].transpose())
        for layer in range(2, len(self.biases) + 1):
            sp = _sigmoid(zs[-layer]) * (1 - _sigmoid(zs[-layer]))
            delta = np.dot(self.weights[-layer + 1].transpose(), delta) * sp
            nabla_b[-layer] = delta
            nabla_w[-layer] = np.dot(delta, activations[-layer - 1].transpose())
        return nabla_b, nabla_w

    def update_mini_batch(self, mini_batch: list[tuple[np.ndarray, np.ndarray]], eta: float) -> None:
        nabla_b = [np.zeros(b.shape, self.dtype) for b in self.biases]
        nabla_w = [np.zeros(w.shape, self.dtype) for w in self.weights]
        for x, y in mini_batch:
            dnb, dnw = self.backprop(x, y)
            nabla_b = [nb + d for nb, d in zip(nabla_b, dnb)]
            nabla_w = [nw + d for nw, d in zip(nabla_w, dnw)]
        self.weights = [w - (eta / len(mini_batch)) * nw for w, nw in zip(self.weights, nabla_w)]
        self.biases = [b - (eta / len(mini_batch)) * nb for b, nb in zip(self.biases, nabla_b)]

    def epoch(self, batch_size, eta):
        def run() -> None:
            self.random.shuffle(self.data)
            for k in range(0, len(self.data), batch_size):
                self.update_mini_batch(self.data[k : k + batch_size], eta)

        return _timed(run)


class SeedMatrix(BookLoop):
    """The seed's matrix version: ``np.hstack`` the pairs of each mini-batch, one backprop."""

    name = "seed matrix version (hstack per batch)"

    def update_mini_batch(self, mini_batch, eta):
        x = np.hstack([x for x, _ in mini_batch])
        y = np.hstack([y for _, y in mini_batch])
        activations, zs = [x], []
        for b, w in zip(self.biases, self.weights):
            zs.append(np.dot(w, activations[-1]) + b)
            activations.append(_sigmoid(zs[-1]))
        delta = (activations[-1] - y) * _sigmoid(zs[-1]) * (1 - _sigmoid(zs[-1]))
        nabla_b = [np.sum(delta, axis=1, keepdims=True)]
        nabla_w = [np.dot(delta, activations[-2].T)]
        for layer in range(2, len(self.biases) + 1):
            sp = _sigmoid(zs[-layer]) * (1 - _sigmoid(zs[-layer]))
            delta = np.dot(self.weights[-layer + 1].T, delta) * sp
            nabla_b.insert(0, np.sum(delta, axis=1, keepdims=True))
            nabla_w.insert(0, np.dot(delta, activations[-layer - 1].T))
        scale = eta / len(mini_batch)
        self.weights = [w - scale * nw for w, nw in zip(self.weights, nabla_w)]
        self.biases = [b - scale * nb for b, nb in zip(self.biases, nabla_b)]


# -- portable_nn --------------------------------------------------------------------
class Portable(Impl):
    """``portable_nn.Network(...).SGD(data, 1, batch, eta, quiet=True)`` on one backend.

    ``seconds`` is the epoch's ``EpochResult.seconds``; ``wall`` the whole call.
    """

    def __init__(self, backend: str, dtype: str, device: str | None = None) -> None:
        self.backend, self.dtype, self.device = backend, dtype, device
        where = f" ({device})" if device else ""
        self.name = f"portable_nn {backend}{where}"

    def prepare(self, sizes, images, labels, seed):
        from portable_nn import Network

        self.net = Network(sizes, self.backend, dtype=self.dtype, seed=seed, device=self.device)
        self.data = (images.astype(self.dtype, copy=False), labels)

    def epoch(self, batch_size, eta):
        start = time.perf_counter()
        history = self.net.SGD(self.data, 1, batch_size, eta, quiet=True)
        wall = time.perf_counter() - start
        return Timing(history[0].seconds, wall, "EpochResult")


class Network2(Impl):
    """``portable_nn.network2.Network`` (the book's chapter-3 API): cross-entropy cost, L2 (lmbda 5.0), eta 0.5.

    Times ``SGD(data, 1, batch, 0.5, lmbda=5.0, quiet=True, on_epoch=...)``: the
    epoch's seconds come from the ``EpochResult`` handed to ``on_epoch``; should
    that not be there, the row's ``seconds`` is the call's wall time (source ``"wall"``).
    """

    name = "portable_nn network2 numpy (cross-entropy, L2)"
    eta, lmbda = 0.5, 5.0

    def prepare(self, sizes, images, labels, seed):
        network2 = importlib.import_module("portable_nn.network2")
        self.net = network2.Network(sizes, cost=network2.CrossEntropyCost, xp="numpy", seed=seed)
        self.data = (images.astype(self.dtype, copy=False), labels)

    def epoch(self, batch_size, eta):
        records: list[Any] = []
        start = time.perf_counter()
        self.net.SGD(self.data, 1, batch_size, self.eta, lmbda=self.lmbda, quiet=True, on_epoch=records.append)
        wall = time.perf_counter() - start
        if records and isinstance(getattr(records[-1], "seconds", None), float):
            return Timing(records[-1].seconds, wall, "EpochResult")
        return Timing(wall, wall, "wall")


# -- peers written directly in other libraries ------------------------------------------
class TorchEager(Impl):
    """PyTorch eager peer: ``nn.Linear`` + sigmoid, quadratic cost, ``optim.SGD``, index gather per batch."""

    def __init__(self, dtype: str = "float32", device: str = "cpu") -> None:
        self.dtype, self.device = dtype, device
        self.name = "PyTorch eager (nn.Linear)" + (f" ({device})" if device != "cpu" else "")

    def prepare(self, sizes, images, labels, seed):
        torch = self.torch = importlib.import_module("torch")
        torch.manual_seed(seed)
        dt = getattr(torch, self.dtype)
        layers: list[Any] = []
        for x, y in zip(sizes[:-1], sizes[1:]):
            layers += [torch.nn.Linear(x, y), torch.nn.Sigmoid()]
        self.model = torch.nn.Sequential(*layers).to(device=self.device, dtype=dt)
        self.x = torch.as_tensor(images, dtype=dt, device=self.device)
        self.y = torch.nn.functional.one_hot(torch.as_tensor(labels, device=self.device), N_OUT).to(dt)
        self.generator = torch.Generator(device="cpu").manual_seed(seed)
        self.optimizer = torch.optim.SGD(self.model.parameters(), lr=1.0)

    def epoch(self, batch_size, eta):
        torch, n = self.torch, self.x.shape[0]
        for group in self.optimizer.param_groups:
            group["lr"] = eta

        def run() -> None:
            order = torch.randperm(n, generator=self.generator).to(self.device)
            for k in range(0, n, batch_size):
                idx = order[k : k + batch_size]
                out = self.model(self.x[idx])
                loss = 0.5 * ((out - self.y[idx]) ** 2).sum() / idx.shape[0]
                self.optimizer.zero_grad(set_to_none=True)
                loss.backward()
                self.optimizer.step()
            if self.device != "cpu":
                torch.cuda.synchronize()

        return _timed(run)


class JaxEpoch(Impl):
    """Hand-written JAX: the whole epoch is one ``jax.jit`` call.

    ``lax.fori_loop`` over the mini-batches; each step gathers its rows by
    index (``jnp.take``) from the data set resident on the device and applies
    the same math as ``portable_nn`` (sigmoid as ``0.5*tanh(0.5 z)+0.5``,
    quadratic cost, backprop by hand, ``w -= eta/m * grad``).  The host draws
    the permutation with NumPy, as ``portable_nn`` does; a final partial batch
    is one more jitted step.
    """

    name = "JAX hand-written (jit whole epoch, fori_loop)"

    def __init__(self, dtype: str = "float32") -> None:
        self.dtype = dtype

    def prepare(self, sizes, images, labels, seed):
        jax = self.jax = importlib.import_module("jax")
        if self.dtype == "float64":
            jax.config.update("jax_enable_x64", True)
        jnp = self.jnp = jax.numpy
        rng = np.random.default_rng(seed)
        self.params = [
            (
                jnp.asarray(rng.standard_normal((y, x)), dtype=self.dtype),
                jnp.asarray(rng.standard_normal((y, 1)), dtype=self.dtype),
            )
            for x, y in zip(sizes[:-1], sizes[1:])
        ]
        self.x = jax.device_put(jnp.asarray(images, dtype=self.dtype))
        self.y = jax.device_put(jnp.asarray(np.eye(N_OUT)[labels], dtype=self.dtype))
        self.rng = rng
        self.compiled: dict[tuple[int, int], tuple[Callable, Callable]] = {}

    def _functions(self, m: int, n: int) -> tuple[Callable, Callable]:
        if (m, n) in self.compiled:
            return self.compiled[(m, n)]
        jax, jnp = self.jax, self.jnp

        def sigmoid(z):
            return 0.5 * jnp.tanh(0.5 * z) + 0.5

        def step(params, x, y, scale):  # x (m, 784), y (m, 10) rows
            activations = [x.T]
            for w, b in params:
                activations.append(sigmoid(w @ activations[-1] + b))
            a = activations[-1]
            delta = (a - y.T) * (a * (1.0 - a)) * scale
            new = []
            for layer in range(len(params) - 1, -1, -1):
                w, b = params[layer]
                grad_w = delta @ activations[layer].T
                grad_b = jnp.sum(delta, axis=1, keepdims=True)
                if layer:
                    a = activations[layer]
                    delta = (w.T @ delta) * (a * (1.0 - a))
                new.insert(0, (w - grad_w, b - grad_b))
            return new

        def epoch(params, xs, ys, order, scale):
            def body(i, params):
                idx = jax.lax.dynamic_slice_in_dim(order, i * m, m)
                return step(params, jnp.take(xs, idx, axis=0), jnp.take(ys, idx, axis=0), scale)

            return jax.lax.fori_loop(0, n // m, body, params)

        def tail(params, xs, ys, idx, scale):
            return step(params, jnp.take(xs, idx, axis=0), jnp.take(ys, idx, axis=0), scale)

        self.compiled[(m, n)] = (jax.jit(epoch), jax.jit(tail))
        return self.compiled[(m, n)]

    def epoch(self, batch_size, eta):
        jnp, n = self.jnp, self.x.shape[0]
        m = min(batch_size, n)
        full, tail = self._functions(m, n)

        def run() -> None:
            order = jnp.asarray(self.rng.permutation(n).astype(np.int32))
            params = full(self.params, self.x, self.y, order, jnp.asarray(eta / m, dtype=self.dtype))
            if n % m:
                rest = n % m
                params = tail(params, self.x, self.y, order[n - rest :], jnp.asarray(eta / rest, dtype=self.dtype))
            self.params = self.jax.block_until_ready(params)

        return _timed(run)


# -- rows by name ----------------------------------------------------------------
def make_row(spec: str) -> Impl:
    """Build a row from its spec.

    ``book:DTYPE``, ``seed:DTYPE``, ``portable:BACKEND:DTYPE[:DEVICE]``,
    ``network2:float64``, ``torch_eager:DTYPE[:DEVICE]``, ``jax_epoch:DTYPE``,
    ``floor:DTYPE:THREADS``.
    """
    from .floors import StepFloor

    kind, *args = spec.split(":")
    if kind == "book":
        return BookLoop(*args)
    if kind == "seed":
        return SeedMatrix(*args)
    if kind == "portable":
        return Portable(*args)
    if kind == "network2":
        return Network2()
    if kind == "torch_eager":
        return TorchEager(*args)
    if kind == "jax_epoch":
        return JaxEpoch(*args)
    if kind == "floor":
        return StepFloor(args[0], int(args[1]))
    raise ValueError(f"unknown benchmark row {spec!r}")
