"""Seconds per MNIST epoch, side by side, in one run on one machine.

    python benchmarks/bench_epoch.py --data-dir ../shared/data/mnist

Measures, alternating implementations round by round on the same data and
seed, the training time of an epoch (shuffle included, evaluation excluded):

* the book's per-example ``network.py`` loop and the seed's matrix version
  (``np.hstack`` per mini-batch), re-implemented here as baselines;
* ``portable_nn`` on every backend available here;
* PyTorch eager (``nn.Linear``, index gather) and JAX (jitted step) peers of
  the same network, when those libraries are installed;
* the arithmetic floor: the two ``hidden x 784`` matmuls of each step, timed
  with NumPy's BLAS at the same shapes.

Then sweeps batch size (1, 10, 100, 1000) and hidden size (30, 100, 1000),
profiles one batch-10 step op by op, and writes ``docs/benchmarks.md`` and
``docs/benchmarks.png``.  Every number in those files comes from this run.
"""

from __future__ import annotations

import argparse
import datetime
import importlib
import importlib.util
import os
import platform
import random
import statistics
import subprocess
import sys
import time
import timeit
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

import portable_nn
from portable_nn import Network, load_mnist

ROOT = Path(__file__).resolve().parents[1]
N_IN, N_OUT = 784, 10


# -- data ------------------------------------------------------------------------
def mnist_train(data_dir: str | None, n: int, synthetic: bool) -> tuple[np.ndarray, np.ndarray]:
    """``(images (n, 784) float64, labels (n,) int64)``; synthetic noise when asked."""
    if synthetic:
        rng = np.random.default_rng(0)
        return rng.random((n, N_IN)), rng.integers(0, N_OUT, n)
    (images, labels), _ = load_mnist(data_dir, download=False)
    return images[:n], labels[:n]


# -- implementations -------------------------------------------------------------
class Impl:
    """One row of the benchmark: ``prepare`` once per shape, ``epoch`` per round."""

    name = ""
    dtype = "float64"

    def prepare(self, sizes: list[int], images: np.ndarray, labels: np.ndarray, seed: int) -> None:
        raise NotImplementedError

    def epoch(self, batch_size: int, eta: float) -> float:
        """Train one epoch; return its seconds (device synchronised)."""
        raise NotImplementedError


def _sigmoid(z):
    return 1.0 / (1.0 + np.exp(-z))


def _nielsen_pairs(images, labels):
    eye = np.eye(N_OUT)
    return [(x.reshape(N_IN, 1), eye[y].reshape(N_OUT, 1)) for x, y in zip(images, labels)]


class BookLoop(Impl):
    """``network.py`` as in the book: a Python loop over the samples of each mini-batch."""

    name = "book network.py (per-example loop)"

    def prepare(self, sizes, images, labels, seed):
        rng = np.random.default_rng(seed)
        self.biases = [rng.standard_normal((y, 1)) for y in sizes[1:]]
        self.weights = [rng.standard_normal((y, x)) for x, y in zip(sizes[:-1], sizes[1:])]
        self.data = _nielsen_pairs(images, labels)
        self.random = random.Random(seed)

    def backprop(self, x, y):
        nabla_b = [np.zeros(b.shape) for b in self.biases]
        nabla_w = [np.zeros(w.shape) for w in self.weights]
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

    def update_mini_batch(self, mini_batch, eta):
        nabla_b = [np.zeros(b.shape) for b in self.biases]
        nabla_w = [np.zeros(w.shape) for w in self.weights]
        for x, y in mini_batch:
            dnb, dnw = self.backprop(x, y)
            nabla_b = [nb + d for nb, d in zip(nabla_b, dnb)]
            nabla_w = [nw + d for nw, d in zip(nabla_w, dnw)]
        self.weights = [w - (eta / len(mini_batch)) * nw for w, nw in zip(self.weights, nabla_w)]
        self.biases = [b - (eta / len(mini_batch)) * nb for b, nb in zip(self.biases, nabla_b)]

    def epoch(self, batch_size, eta):
        start = time.perf_counter()
        self.random.shuffle(self.data)
        for k in range(0, len(self.data), batch_size):
            self.update_mini_batch(self.data[k : k + batch_size], eta)
        return time.perf_counter() - start


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


class Portable(Impl):
    """``portable_nn.Network.SGD`` on one backend; the epoch time is SGD's own."""

    def __init__(self, backend: str, dtype: str, device=None, label: str | None = None):
        self.backend, self.dtype, self.device_arg = backend, dtype, device
        self.name = label or f"portable_nn {backend}"

    def prepare(self, sizes, images, labels, seed):
        self.net = Network(sizes, self.backend, dtype=self.dtype, seed=seed, device=self.device_arg)
        self.data = (images.astype(self.dtype), labels)

    def epoch(self, batch_size, eta):
        return self.net.SGD(self.data, 1, batch_size, eta, quiet=True)[0].seconds


class TorchEager(Impl):
    """PyTorch eager peer: ``nn.Linear`` + sigmoid, quadratic cost, ``optim.SGD``, index gather."""

    def __init__(self, dtype: str = "float32", device: str = "cpu"):
        self.dtype, self.device = dtype, device
        self.name = "PyTorch eager (nn.Linear)" + (" CUDA" if device != "cpu" else "")

    def prepare(self, sizes, images, labels, seed):
        torch = self.torch = importlib.import_module("torch")
        torch.manual_seed(seed)
        dt = getattr(torch, self.dtype)
        layers = []
        for x, y in zip(sizes[:-1], sizes[1:]):
            layers += [torch.nn.Linear(x, y), torch.nn.Sigmoid()]
        self.model = torch.nn.Sequential(*layers).to(device=self.device, dtype=dt)
        self.x = torch.as_tensor(images, dtype=dt, device=self.device)
        self.y = torch.nn.functional.one_hot(torch.as_tensor(labels, device=self.device), N_OUT).to(dt)
        self.generator = torch.Generator(device="cpu").manual_seed(seed)

    def epoch(self, batch_size, eta):
        torch, n = self.torch, self.x.shape[0]
        optimizer = torch.optim.SGD(self.model.parameters(), lr=eta)
        self._sync()
        start = time.perf_counter()
        order = torch.randperm(n, generator=self.generator).to(self.device)
        for k in range(0, n, batch_size):
            idx = order[k : k + batch_size]
            out = self.model(self.x[idx])
            loss = 0.5 * ((out - self.y[idx]) ** 2).sum() / idx.shape[0]
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
        self._sync()
        return time.perf_counter() - start

    def _sync(self):
        if self.device != "cpu":
            self.torch.cuda.synchronize()


class JaxJit(Impl):
    """JAX peer: one jitted SGD step taking the shuffled data and an offset."""

    name = "JAX jit step"

    def __init__(self, dtype: str = "float32"):
        self.dtype = dtype

    def prepare(self, sizes, images, labels, seed):
        jax = self.jax = importlib.import_module("jax")
        jnp = self.jnp = jax.numpy
        if self.dtype == "float64":
            jax.config.update("jax_enable_x64", True)
        rng = np.random.default_rng(seed)
        self.params = [
            (
                jnp.asarray(rng.standard_normal((y, x)), dtype=self.dtype),
                jnp.asarray(rng.standard_normal((y, 1)), dtype=self.dtype),
            )
            for x, y in zip(sizes[:-1], sizes[1:])
        ]
        self.x = jnp.asarray(images, dtype=self.dtype)
        self.y = jnp.asarray(np.eye(N_OUT)[labels], dtype=self.dtype)
        self.rng = rng
        self.steps: dict[int, Callable] = {}

    def _step(self, m: int):
        if m not in self.steps:
            jax, jnp = self.jax, self.jnp

            def cost(params, x, y):
                a = x.T
                for w, b in params:
                    a = jax.nn.sigmoid(w @ a + b)
                return 0.5 * jnp.sum((a - y.T) ** 2)

            def step(params, xs, ys, k, eta):
                x = jax.lax.dynamic_slice_in_dim(xs, k, m)
                y = jax.lax.dynamic_slice_in_dim(ys, k, m)
                grads = jax.grad(cost)(params, x, y)
                return [(w - eta / m * gw, b - eta / m * gb) for (w, b), (gw, gb) in zip(params, grads)]

            self.steps[m] = jax.jit(step)
        return self.steps[m]

    def epoch(self, batch_size, eta):
        n = self.x.shape[0]
        step = self._step(batch_size)
        if n % batch_size:
            self._step(n % batch_size)
        start = time.perf_counter()
        order = self.jnp.asarray(self.rng.permutation(n))
        xs, ys = self.x[order], self.y[order]
        params = self.params
        for k in range(0, n, batch_size):
            m = min(batch_size, n - k)
            params = (step if m == batch_size else self._step(m))(params, xs, ys, k, eta)
        self.jax.block_until_ready(params)
        self.params = params
        return time.perf_counter() - start


# -- one process per row ----------------------------------------------------------
# Each row runs in its own worker process, driven round by round from here, so
# one library's idle threads (OpenMP/XLA pools spinning after their work)
# never steal a core from another's timed epoch, and peak memory is per row.
def make_row(spec: str) -> Impl:
    """A row from its spec: ``BookLoop``, ``SeedMatrix``, ``Portable:numpy:float64``,
    ``Portable:torch:float32[:cuda]``, ``TorchEager:float32[:cuda]``, ``JaxJit:float32``."""
    kind, *params = spec.split(":")
    if kind == "Portable" and len(params) == 3:
        return Portable(params[0], params[1], device=params[2], label=f"portable_nn torch ({params[2]})")
    if kind == "Portable" and params[0] == "torch":
        return Portable(params[0], params[1], label="portable_nn torch (CPU)")
    return {
        "BookLoop": BookLoop,
        "SeedMatrix": SeedMatrix,
        "Portable": Portable,
        "TorchEager": TorchEager,
        "JaxJit": JaxJit,
    }[kind](*params)


def peak_rss_mb() -> float:
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def worker(spec: str, data_dir: str | None, train_size: int, synthetic: bool) -> int:
    """Serve ``prepare HIDDEN N SEED`` / ``epoch BATCH ETA`` / ``quit`` on stdin, answering on stdout."""
    if "torch" in spec.lower():  # import a library only in the rows that use it
        importlib.import_module("torch").set_num_threads(os.cpu_count() or 1)
    impl = make_row(spec)
    images, labels = mnist_train(data_dir, train_size, synthetic)
    print(f"ready {impl.name}|{row_dtype(impl)}", flush=True)
    for line in sys.stdin:
        command, *values = line.split()
        if command == "prepare":
            hidden, n, seed = (int(v) for v in values)
            impl.prepare([N_IN, hidden, N_OUT], images[:n], labels[:n], seed)
            print("ok", flush=True)
        elif command == "epoch":
            seconds = impl.epoch(int(values[0]), float(values[1]))
            print(f"{seconds!r} {peak_rss_mb()!r}", flush=True)
        else:
            return 0
    return 0


class Worker:
    """The parent's handle on one row's process."""

    def __init__(self, spec: str, args) -> None:
        cmd = [sys.executable, str(Path(__file__).resolve()), "--worker", spec, "--train-size", str(args.train_size)]
        if args.data_dir:
            cmd += ["--data-dir", str(args.data_dir)]
        if args.synthetic:
            cmd.append("--synthetic")
        self.proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        self.name, self.dtype = self._ask(None).removeprefix("ready ").split("|")

    def _ask(self, line: str | None) -> str:
        if line is not None:
            self.proc.stdin.write(line + "\n")
            self.proc.stdin.flush()
        reply = self.proc.stdout.readline().strip()
        if not reply:
            raise RuntimeError(f"benchmark worker for {self.name if hasattr(self, 'name') else '?'} died")
        return reply

    def prepare(self, hidden: int, n: int, seed: int) -> None:
        self._ask(f"prepare {hidden} {n} {seed}")

    def epoch(self, batch: int, eta: float) -> tuple[float, float]:
        seconds, rss = self._ask(f"epoch {batch} {eta}").split()
        return float(seconds), float(rss)

    def close(self) -> None:
        try:
            self.proc.stdin.write("quit\n")
            self.proc.stdin.close()
        except OSError:
            pass
        self.proc.wait(timeout=60)


# -- which rows exist here ---------------------------------------------------------
def has(module: str) -> bool:
    return importlib.util.find_spec(module) is not None


def cuda_available() -> bool:
    if not has("cupy"):
        return False
    try:
        portable_nn.resolve_backend("cupy")
    except portable_nn.BackendUnavailableError:
        return False
    return True


def torch_cuda() -> bool:
    return has("torch") and importlib.import_module("torch").cuda.is_available()


def main_rows(notes: list[str]) -> list[str]:
    """Row specs for :func:`make_row`, for the libraries installed here."""
    rows = ["BookLoop", "SeedMatrix", "Portable:numpy:float64", "Portable:numpy:float32"]
    if has("array_api_strict"):
        rows.append("Portable:array_api_strict:float64")
    else:
        notes.append("array_api_strict not installed: its sanity row is missing.")
    if has("torch"):
        rows += ["Portable:torch:float32", "TorchEager:float32"]
    else:
        notes.append("PyTorch not installed: its rows are missing.")
    if has("jax"):
        rows.append("JaxJit:float32")
    else:
        notes.append("JAX not installed: the JAX-jit row is missing (`pip install jax`).")
    if cuda_available():
        rows += ["Portable:cupy:float32", "Portable:cupy:float64"]
        if torch_cuda():
            rows += ["Portable:torch:float32:cuda", "TorchEager:float32:cuda"]
    else:
        notes.append("No CUDA device here: the GPU rows are pending a run on a GPU machine.")
    return rows


def row_dtype(impl: Impl) -> str:
    return "f32" if impl.dtype == "float32" else "f64"


# -- measuring ---------------------------------------------------------------------
@dataclass
class Result:
    name: str
    dtype: str
    batch: int
    hidden: int
    seconds: list[float] = field(default_factory=list)
    rss_mb: float = float("nan")  # peak RSS of the row's process
    scale: float = 1.0  # measured samples -> per-50,000-image epoch

    @property
    def median(self) -> float:
        return statistics.median(self.seconds) * self.scale


def measure(
    workers: list[Worker], n: int, hidden: int, batch: int, reps: int, eta: float, seed: int, per_epoch: int
) -> list[Result]:
    """Prepare every row on its first ``n`` images, warm up, then ``reps`` rounds timing every row once."""
    results = []
    for w in workers:
        w.prepare(hidden, n, seed)
        w.epoch(batch, eta)  # warm-up: JIT compilation, caches, allocator
        results.append(Result(w.name, w.dtype, batch, hidden, scale=per_epoch / n))
    for _ in range(reps):
        for w, result in zip(workers, results):
            seconds, result.rss_mb = w.epoch(batch, eta)
            result.seconds.append(seconds)
    return results


def sweep_samples(samples: int, batch: int) -> int:
    """Images per sweep cell: a fifth of ``samples`` at batch 1 (50,000 Python-level steps are slow)."""
    return samples // 5 if batch == 1 else samples


def matmul_floor(hidden: int, batch: int, dtype: str, n: int, repeat: int = 7) -> float:
    """Seconds per ``n``-sample epoch for the two ``hidden x 784`` matmuls of each step (NumPy BLAS)."""
    rng = np.random.default_rng(0)
    w = rng.standard_normal((hidden, N_IN)).astype(dtype)
    x = rng.standard_normal((N_IN, batch)).astype(dtype)
    d = rng.standard_normal((hidden, batch)).astype(dtype)
    xt = np.ascontiguousarray(x.T)
    number = max(1, int(2000 / max(1, hidden * batch / 300)))
    forward = min(timeit.repeat(lambda: w @ x, number=number, repeat=repeat)) / number
    weight_grad = min(timeit.repeat(lambda: d @ xt, number=number, repeat=repeat)) / number
    return (n / batch) * (forward + weight_grad)


def step_anatomy(
    dtype: str = "float64", batch: int = 10, hidden: int = 30
) -> tuple[list[tuple[str, int, float]], float]:
    """Time each array call of one portable_nn step at these shapes (NumPy backend).

    Returns ``[(operation, calls per step, microseconds per call)]`` and the
    measured time of a whole ``Network._step`` in microseconds.
    """
    net = Network([N_IN, hidden, N_OUT], "numpy", dtype=dtype, seed=0)
    xp = net.xp
    rng = np.random.default_rng(0)
    rows = xp.asarray(rng.random((1000, N_IN)).astype(dtype))
    targets = xp.asarray(np.eye(N_OUT, dtype=dtype)[rng.integers(0, N_OUT, 1000)])
    x = rows[0:batch, :].T
    w1, w2, b1, b2 = net.weights[0], net.weights[1], net.biases[0], net.biases[1]
    z1 = w1 @ x + b1
    a1 = net._sigmoid(z1)
    a2 = net._sigmoid(w2 @ a1 + b2)
    y = targets[0:batch, :].T
    d2 = (a2 - y) * (a2 * (1.0 - a2))
    d1 = (w2.T @ d2) * (a1 * (1.0 - a1))
    ones = net._ones_column(batch)
    ops = [
        ("row slice + .T (x, y)", 4, lambda: rows[0:batch, :].T),
        (f"matmul W1 @ x  ({hidden}x784 @ 784x{batch})", 1, lambda: w1 @ x),
        (f"matmul W2 @ a1 ({N_OUT}x{hidden} @ {hidden}x{batch})", 1, lambda: w2 @ a1),
        ("add bias (broadcast)", 2, lambda: z1 + b1),
        ("sigmoid = 0.5*tanh(0.5*z)+0.5 (4 calls)", 2, lambda: net._sigmoid(z1)),
        ("elementwise on (n_out|hidden, m): a-y, 1-a, a*(..), *, *scale", 10, lambda: a1 * (1.0 - a1)),
        ("bias gradient delta @ ones(m, 1)", 2, lambda: d1 @ ones),
        (f"matmul delta @ x.T ({hidden}x{batch} @ {batch}x784)", 1, lambda: d1 @ rows[0:batch, :]),
        ("matmul W2.T @ delta, delta @ a1.T (small)", 2, lambda: w2.T @ d2),
        ("update w - nabla_w (784x30 and 30x10)", 1, lambda: w1 - w1),
        ("update b - nabla_b, w2 - nabla_w2 (small)", 3, lambda: b1 - b1),
    ]
    table = []
    for label, calls, fn in ops:
        per_call = min(timeit.repeat(fn, number=2000, repeat=5)) / 2000 * 1e6
        table.append((label, calls, per_call))
    whole = min(timeit.repeat(lambda: net._step(rows[0:batch, :], targets[0:batch, :], 0.0), number=2000, repeat=5))
    return table, whole / 2000 * 1e6


def shuffle_seconds(dtype: str, n: int = 50_000) -> float:
    """One epoch's shuffle: ``xp.take`` of an ``(n, 784)`` dataset on the NumPy backend (best of 3)."""
    net = Network([N_IN, 30, N_OUT], "numpy", dtype=dtype, seed=0)
    data = net.xp.asarray(np.random.default_rng(0).random((n, N_IN)).astype(dtype))
    order = net.xp.asarray(np.random.default_rng(1).permutation(n))
    return min(timeit.repeat(lambda: net.xp.take(data, order, axis=0), number=1, repeat=3))


# -- machine description ---------------------------------------------------------
def machine() -> list[tuple[str, str]]:
    cpu = platform.processor() or "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    blas = "unknown"
    try:
        config = np.show_config(mode="dicts")
        info = config["Build Dependencies"]["blas"]
        blas = f"{info.get('name')} {info.get('version', '')}".strip()
    except Exception:
        pass
    versions = [
        f"python {platform.python_version()}",
        f"numpy {np.__version__}",
        f"array-api-compat {importlib.import_module('array_api_compat').__version__}",
        f"portable_nn {portable_nn.__version__}",
    ]
    for module in ("array_api_strict", "torch", "jax", "cupy"):
        if has(module):
            versions.append(f"{module} {importlib.import_module(module).__version__}")
    items = [
        ("CPU", f"{cpu}, {os.cpu_count()} logical cores"),
        ("memory", _memory()),
        ("BLAS (NumPy)", blas),
        ("OS", f"{platform.system()} {platform.release()}"),
        ("libraries", ", ".join(versions)),
    ]
    if has("torch"):
        torch = importlib.import_module("torch")
        items.append(("torch threads", str(torch.get_num_threads())))
    items.append(("GPU", _gpu()))
    return items


def _memory() -> str:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal"):
                return f"{int(line.split()[1]) / 1024**2:.1f} GiB"
    except OSError:
        pass
    return "unknown"


def _gpu() -> str:
    try:
        out = subprocess.run(
            ["nvidia-smi", "--query-gpu=name,memory.total,driver_version", "--format=csv,noheader"],
            capture_output=True,
            text=True,
            timeout=30,
            check=True,
        ).stdout.strip()
        return out or "none"
    except (OSError, subprocess.SubprocessError):
        return "none (no nvidia-smi)"


# -- report ----------------------------------------------------------------------
def fmt(x: float) -> str:
    return f"{x:.3f}" if x < 10 else f"{x:.1f}"


def find(results: list[Result], name: str, dtype: str) -> Result | None:
    return next((r for r in results if r.name == name and r.dtype == dtype), None)


def targets(main: list[Result], large: list[Result], floors: dict) -> list[tuple[str, str, float | None, str]]:
    """``(target, limit, measured ratio, verdict)`` rows."""

    def ratio(a: Result | None, b: Result | float | None) -> float | None:
        if a is None or b is None:
            return None
        return a.median / (b if isinstance(b, float) else b.median)

    np64 = find(main, "portable_nn numpy", "f64")
    np32 = find(main, "portable_nn numpy", "f32")
    rows = [
        ("numpy f64 batch 10 / seed matrix version", 0.5, ratio(np64, find(main, SeedMatrix.name, "f64"))),
        ("numpy f64 batch 10 / book loop", 0.15, ratio(np64, find(main, BookLoop.name, "f64"))),
        ("numpy f32 batch 10 / JAX jit", 1.0, ratio(np32, find(main, JaxJit.name, "f32"))),
        (
            "numpy f32 batch 1000 / arithmetic floor",
            1.3,
            ratio(find(large, "portable_nn numpy", "f32"), floors.get(("float32", 1000))),
        ),
        ("numpy f32 batch 10 / PyTorch eager", 0.5, ratio(np32, find(main, TorchEager().name, "f32"))),
    ]
    out = []
    for label, limit, value in rows:
        if value is None:
            out.append((label, f"<= {limit}", None, "not measured (row missing)"))
        else:
            out.append((label, f"<= {limit}", value, "met" if value <= limit else f"missed by {value / limit:.2f}x"))
    return out


def write_plot(sweep: list[Result], path: Path) -> bool:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return False
    fig, ax = plt.subplots(figsize=(7.5, 5))
    names = sorted({(r.name, r.dtype) for r in sweep if r.hidden == 30}, key=str)
    for name, dtype in names:
        points = sorted((r.batch, r.median) for r in sweep if r.name == name and r.dtype == dtype and r.hidden == 30)
        ax.plot([p[0] for p in points], [p[1] for p in points], marker="o", label=f"{name} {dtype}")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("mini-batch size")
    ax.set_ylabel("seconds per 50,000-image epoch")
    ax.set_title("[784, 30, 10], training time per epoch")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return True


def report(args, notes, main, sweep, floors, anatomy, step_us, shuffles, machine_items, elapsed) -> str:
    lines = [
        "# Benchmarks",
        "",
        f"Generated by `{' '.join(['python', 'benchmarks/bench_epoch.py', *sys.argv[1:]])}` on "
        f"{datetime.date.today().isoformat()} in {elapsed / 60:.1f} minutes.  Every figure below was "
        "measured in that one run; nothing is typed in.",
        "",
        "## Machine",
        "",
        "| | |",
        "| --- | --- |",
        *[f"| {k} | {v} |" for k, v in machine_items],
        "",
        "## Seconds per epoch, `[784, 30, 10]`, batch 10, eta 3.0",
        "",
        f"{args.train_size:,} MNIST training images; training only (shuffle included, evaluation excluded), "
        f"median of {args.reps} epochs per row after one warm-up epoch, rows alternating round by round. "
        "Each row runs in its own process (so no library's idle threads compete with another's timing); "
        "peak RSS is that process's, interpreter and libraries included.",
        "",
        "| implementation | dtype | s/epoch (median) | min | max | vs book loop | peak RSS (MB) |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    book = find(main, BookLoop.name, "f64")
    for r in main:
        rel = f"{r.median / book.median:.3f}" if book else ""
        lines.append(
            f"| {r.name} | {r.dtype} | {fmt(r.median)} | {fmt(min(r.seconds) * r.scale)} | "
            f"{fmt(max(r.seconds) * r.scale)} | {rel} | {r.rss_mb:.0f} |"
        )
    for dtype in ("float64", "float32"):
        if (dtype, 10) in floors:
            lines.append(
                f"| arithmetic floor (two 30x784 matmuls per step, NumPy BLAS) | "
                f"{'f64' if dtype == 'float64' else 'f32'} | {fmt(floors[(dtype, 10)])} | | | | |"
            )
    lines += ["", "## Targets", "", "| target | limit | measured ratio | verdict |", "| --- | --- | --- | --- |"]
    large = [r for r in sweep if r.batch == 1000 and r.hidden == 30]
    for label, limit, value, verdict in targets(main, large, floors):
        lines.append(f"| {label} | {limit} | {'' if value is None else f'{value:.2f}'} | {verdict} |")
    lines += [
        "",
        "## Sweep: batch size and hidden size",
        "",
        f"Each cell: median of {args.sweep_reps} runs (after a warm-up) over the first {args.sweep_samples:,} "
        f"images ({sweep_samples(args.sweep_samples, 1):,} at batch 1), scaled to a {args.train_size:,}-image epoch.",
        "",
    ]
    batches = sorted({r.batch for r in sweep})
    for hidden in sorted({r.hidden for r in sweep}):
        lines += [
            f"### hidden = {hidden}",
            "",
            "| implementation | dtype | " + " | ".join(f"batch {b}" for b in batches) + " |",
            "| --- | --- |" + " --- |" * len(batches),
        ]
        names = []
        for r in sweep:
            if r.hidden == hidden and (r.name, r.dtype) not in names:
                names.append((r.name, r.dtype))
        for name, dtype in names:
            cells = []
            for b in batches:
                match = [
                    r for r in sweep if r.name == name and r.dtype == dtype and r.batch == b and r.hidden == hidden
                ]
                cells.append(fmt(match[0].median) if match else "")
            lines.append(f"| {name} | {dtype} | " + " | ".join(cells) + " |")
        floor_cells = [fmt(floors[("float32", b, hidden)]) if ("float32", b, hidden) in floors else "" for b in batches]
        lines.append("| arithmetic floor (NumPy BLAS) | f32 | " + " | ".join(floor_cells) + " |")
        lines.append("")
    if args.plot_written:
        lines += ["![seconds per epoch against batch size](benchmarks.png)", ""]
    total = sum(calls * us for _, calls, us in anatomy)
    matmul_us = sum(calls * us for label, calls, us in anatomy if label.startswith("matmul") and "784" in label)
    lines += [
        "## Where a batch-10 step spends its time (portable_nn, NumPy f64, hidden 30)",
        "",
        "Each array call of `Network._step` timed alone at its real shapes (best of 5 x 2000).",
        "",
        "| operation | calls per step | µs per call | µs per step |",
        "| --- | --- | --- | --- |",
        *[f"| {label} | {calls} | {us:.2f} | {calls * us:.2f} |" for label, calls, us in anatomy],
        f"| **sum of array calls** | {sum(c for _, c, _ in anatomy)} | | **{total:.1f}** |",
        f"| **whole `_step`, measured** | | | **{step_us:.1f}** |",
        "",
        f"Timed one by one the array calls add up to {total:.0f} µs and the whole step takes {step_us:.0f} µs, "
        f"so a step is bound by its array calls, not by Python around them.  The two large matmuls "
        f"(`W1 @ x`, `delta @ x_rows`) are {matmul_us:.0f} µs of it: the arithmetic floor.  The other "
        "calls work on `(30, 10)` or smaller arrays and cost ~1.5-9 µs each, almost all of it "
        "NumPy's fixed per-call overhead; 5,000 steps an epoch turn that into "
        f"{5000 * (step_us - matmul_us) / 1e6:.2f} s.  Cutting it further means fewer calls per step "
        "(fusing, which a jit compiler does: compare the JAX row), not faster arithmetic.",
        "",
        f"Per epoch, on top of the steps: the shuffle (`xp.take` of the 50,000 x 784 inputs) takes "
        f"{shuffles['float64']:.3f} s in f64 and {shuffles['float32']:.3f} s in f32.  At batch 1000 there are only "
        "50 steps, so this gather, the elementwise work on `(30, 1000)` arrays and the output-layer matmuls "
        "are what separates the NumPy f32 row from the two-matmul floor.",
        "",
    ]
    if notes:
        lines += ["## Notes", "", *[f"- {n}" for n in notes], ""]
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data-dir", default=None, help="MNIST directory (default: as load_mnist)")
    parser.add_argument("--synthetic", action="store_true", help="random data instead of MNIST (smoke tests)")
    parser.add_argument("--train-size", type=int, default=50_000)
    parser.add_argument("--reps", type=int, default=5, help="timed epochs per row in the main table")
    parser.add_argument("--sweep-samples", type=int, default=10_000, help="images per sweep measurement")
    parser.add_argument("--sweep-reps", type=int, default=3)
    parser.add_argument("--batches", default="1,10,100,1000")
    parser.add_argument("--hiddens", default="30,100,1000")
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "benchmarks.md")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--worker", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    started = time.perf_counter()
    if args.worker:
        return worker(args.worker, args.data_dir, args.train_size, args.synthetic)

    notes: list[str] = []
    specs = main_rows(notes)
    workers = {spec: Worker(spec, args) for spec in specs}
    print(f"main table: {len(specs)} rows x {args.reps} epochs", file=sys.stderr)
    main_results = measure(list(workers.values()), args.train_size, 30, 10, args.reps, 3.0, args.seed, args.train_size)
    for r in main_results:
        print(f"  {r.name:45s} {r.dtype} {r.median:.3f} s/epoch", file=sys.stderr)

    floors = {}
    for dtype in ("float64", "float32"):
        floors[(dtype, 10)] = matmul_floor(30, 10, dtype, args.train_size)
    sweep_workers = [
        w for spec, w in workers.items() if not spec.startswith(("BookLoop", "SeedMatrix")) and "strict" not in spec
    ]
    sweep: list[Result] = []
    for hidden in [int(h) for h in args.hiddens.split(",")]:
        for batch in [int(b) for b in args.batches.split(",")]:
            print(f"sweep hidden {hidden} batch {batch}", file=sys.stderr)
            n = sweep_samples(args.sweep_samples, batch)
            sweep += measure(sweep_workers, n, hidden, batch, args.sweep_reps, 3.0, args.seed, args.train_size)
            floors[("float32", batch, hidden)] = matmul_floor(hidden, batch, "float32", args.train_size)
    floors[("float32", 1000)] = floors.get(("float32", 1000, 30), matmul_floor(30, 1000, "float32", args.train_size))

    for w in workers.values():
        w.close()
    anatomy, step_us = step_anatomy()
    shuffles = {dtype: shuffle_seconds(dtype) for dtype in ("float64", "float32")}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.plot_written = write_plot(sweep, args.out.with_suffix(".png"))
    text = report(
        args, notes, main_results, sweep, floors, anatomy, step_us, shuffles, machine(), time.perf_counter() - started
    )
    args.out.write_text(text)
    print(f"wrote {args.out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
