"""The GPU benchmark rows of docs/gpu.md, as JSON: seconds per epoch, float32, with per-row and total time caps.

    python benchmarks/gpu_bench.py --data-dir .gpu-data/mnist --out OUT/bench.json
    python benchmarks/gpu_bench.py --synthetic --tiny --out /tmp/bench.json     # smoke test (CI, no GPU)

Rows (each where its library imports and, for GPU rows, sees a GPU; otherwise
the row is recorded as skipped with the reason):

* ``portable_nn`` on CuPy, PyTorch ``cuda`` and JAX's GPU (``Network(...).SGD``,
  the epoch time ``SGD`` reports, which synchronises the device);
* references: the seed's matrix version on CuPy (a hand-written CuPy loop) and
  a hand-written ``jax.jit`` epoch on the GPU (:class:`benchmarks.impls.JaxEpoch`);
* CPU rows on the same machine, for the crossover: ``portable_nn`` NumPy and
  JAX on the CPU;

for ``[784,30,10]`` and ``[784,100,10]`` at batch 1, 10, 100, 1000, and chapter
6's ``ch6-conv1`` at batch 10 and 100 on each GPU backend and NumPy.  Each row:
one warm-up epoch (kernels compiled, data on the device; excluded), then timed
epochs over ``n = min(50,000, steps x batch)`` images, the fastest scaled to a
50,000-image epoch (as ``benchmarks/bench_epoch.py``'s sweep does).  A row whose
warm-up exceeds ``--row-cap`` seconds is cut; rows after ``--budget`` seconds
are not run.  The crossover is the smallest batch at which the fastest GPU
row beats the fastest CPU row, per network.
"""

from __future__ import annotations

import argparse
import datetime
import importlib
import importlib.util
import json
import platform
import random
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run as a script: make ``benchmarks`` importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np

from benchmarks.data import N_IN, N_OUT, training_arrays, write_synthetic_mnist
from benchmarks.impls import Impl, JaxEpoch, Portable, SeedMatrix, Timing

PER_EPOCH = 50_000


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


# -- where each row runs ---------------------------------------------------------------------------
def gpu_status() -> dict[str, str | None]:
    """Per GPU library, ``None`` when it imports and sees a GPU, else the reason it does not."""
    reasons: dict[str, str | None] = {}
    try:
        from portable_nn import resolve_backend

        resolve_backend("cupy")
        reasons["cupy"] = None
    except Exception as exc:  # BackendUnavailableError, or a broken install
        reasons["cupy"] = f"{type(exc).__name__}: {exc}"
    try:
        torch = importlib.import_module("torch")
        reasons["torch"] = None if torch.cuda.is_available() else f"torch {torch.__version__} sees no CUDA device"
    except Exception as exc:
        reasons["torch"] = f"torch does not import: {exc}"
    try:
        jax = importlib.import_module("jax")
        gpus = [d for d in jax.devices() if d.platform == "gpu"]
        reasons["jax"] = None if gpus else f"jax {jax.__version__} has no GPU device ({jax.devices()})"
    except Exception as exc:
        reasons["jax"] = f"jax does not import: {exc}"
    return reasons


def _torch_cuda() -> Any:
    return importlib.import_module("torch").empty(0, device="cuda").device  # cuda:0


def _jax_device(platform_name: str) -> Any:
    return importlib.import_module("jax").devices(platform_name)[0]


class CupySeed(SeedMatrix):
    """The seed's matrix version on CuPy: ``hstack`` the pairs of each mini-batch, one backprop, by hand.

    The same arithmetic as :class:`benchmarks.impls.SeedMatrix`, with ``cupy``
    in place of ``numpy`` (arrays on the GPU), the device synchronised at the
    end of each epoch.
    """

    name = "seed matrix version on CuPy (hand-written)"

    def __init__(self, dtype: str = "float32") -> None:
        super().__init__(dtype)
        self.cp = importlib.import_module("cupy")

    def prepare(self, sizes, images, labels, seed):
        cp = self.cp
        rng = np.random.default_rng(seed)
        self.biases = [cp.asarray(rng.standard_normal((y, 1)).astype(self.dtype)) for y in sizes[1:]]
        self.weights = [
            cp.asarray(rng.standard_normal((y, x)).astype(self.dtype)) for x, y in zip(sizes[:-1], sizes[1:])
        ]
        xs = cp.asarray(images.astype(self.dtype, copy=False))
        eye = cp.eye(N_OUT, dtype=self.dtype)
        ys = eye[cp.asarray(labels)]
        self.data = [(xs[i].reshape(N_IN, 1), ys[i].reshape(N_OUT, 1)) for i in range(xs.shape[0])]
        self.random = random.Random(seed)

    def update_mini_batch(self, mini_batch, eta):
        cp = self.cp

        def sigmoid(z: Any) -> Any:
            return 1.0 / (1.0 + cp.exp(-z))

        x = cp.hstack([x for x, _ in mini_batch])
        y = cp.hstack([y for _, y in mini_batch])
        activations, zs = [x], []
        for b, w in zip(self.biases, self.weights):
            zs.append(w @ activations[-1] + b)
            activations.append(sigmoid(zs[-1]))
        delta = (activations[-1] - y) * sigmoid(zs[-1]) * (1 - sigmoid(zs[-1]))
        nabla_b = [cp.sum(delta, axis=1, keepdims=True)]
        nabla_w = [delta @ activations[-2].T]
        for layer in range(2, len(self.biases) + 1):
            sp = sigmoid(zs[-layer]) * (1 - sigmoid(zs[-layer]))
            delta = (self.weights[-layer + 1].T @ delta) * sp
            nabla_b.insert(0, cp.sum(delta, axis=1, keepdims=True))
            nabla_w.insert(0, delta @ activations[-layer - 1].T)
        scale = eta / len(mini_batch)
        self.weights = [w - scale * nw for w, nw in zip(self.weights, nabla_w)]
        self.biases = [b - scale * nb for b, nb in zip(self.biases, nabla_b)]

    def epoch(self, batch_size, eta):
        timing = super().epoch(batch_size, eta)  # the loop's time; the device may still be working
        start = time.perf_counter()
        self.cp.cuda.Device().synchronize()
        seconds = timing.seconds + (time.perf_counter() - start)
        return Timing(seconds, seconds)


class JaxEpochOn(JaxEpoch):
    """:class:`benchmarks.impls.JaxEpoch` with its data and parameters committed to one JAX device."""

    def __init__(self, platform_name: str, dtype: str = "float32") -> None:
        super().__init__(dtype)
        self.platform_name = platform_name
        self.name = f"JAX hand-written jit epoch ({platform_name})"

    def prepare(self, sizes, images, labels, seed):
        jax = importlib.import_module("jax")
        with jax.default_device(_jax_device(self.platform_name)):
            super().prepare(sizes, images, labels, seed)

    def epoch(self, batch_size, eta):
        jax = importlib.import_module("jax")
        with jax.default_device(_jax_device(self.platform_name)):
            return super().epoch(batch_size, eta)


class PortableOn(Portable):
    """:class:`benchmarks.impls.Portable` with a device object resolved when the row is built."""

    def __init__(self, backend: str, dtype: str, where: str | None, device: Callable[[], Any] | None) -> None:
        super().__init__(backend, dtype, None)
        self.name = f"portable_nn {backend}" + (f" ({where})" if where else "")
        self.make_device = device

    def prepare(self, sizes, images, labels, seed):
        from portable_nn import Network

        device = self.make_device() if self.make_device else None
        self.net = Network(sizes, self.backend, dtype=self.dtype, seed=seed, device=device)
        self.data = (images.astype(self.dtype, copy=False), labels)


@dataclass
class RowSpec:
    """One row: its label, whether it is a GPU row, the library it needs, and how to build it."""

    label: str
    gpu: bool
    needs: str
    build: Callable[[], Impl]


def dense_rows() -> list[RowSpec]:
    """The rows of the dense-network table, GPU first."""
    return [
        RowSpec("portable_nn cupy", True, "cupy", lambda: PortableOn("cupy", "float32", None, None)),
        RowSpec("portable_nn torch (cuda)", True, "torch", lambda: PortableOn("torch", "float32", "cuda", _torch_cuda)),
        RowSpec(
            "portable_nn jax (gpu)",
            True,
            "jax",
            lambda: PortableOn("jax", "float32", "gpu", lambda: _jax_device("gpu")),
        ),
        RowSpec("seed matrix version on CuPy (hand-written)", True, "cupy", lambda: CupySeed("float32")),
        RowSpec("JAX hand-written jit epoch (gpu)", True, "jax", lambda: JaxEpochOn("gpu")),
        RowSpec("portable_nn numpy (cpu)", False, "numpy", lambda: PortableOn("numpy", "float32", None, None)),
        RowSpec(
            "portable_nn jax (cpu)",
            False,
            "jax",
            lambda: PortableOn("jax", "float32", "cpu", lambda: _jax_device("cpu")),
        ),
    ]


# -- measuring ----------------------------------------------------------------------------------------
@dataclass
class Row:
    """One measured (or skipped) cell: seconds per 50,000-image epoch, extrapolated from ``n`` images."""

    table: str
    label: str
    gpu: bool
    hidden: int | None
    batch: int
    n: int
    seconds_per_epoch: float | None = None
    rounds: list[float] = field(default_factory=list)
    warmup_seconds: float | None = None
    skipped: str | None = None


class Clock:
    """The bench's total budget."""

    def __init__(self, budget: float) -> None:
        self.deadline = time.perf_counter() + budget

    def left(self) -> float:
        return self.deadline - time.perf_counter()


def measure(row: Row, make: Callable[[], Callable[[], float]], rounds: int, cap: float, clock: Clock) -> Row:
    """Warm up once (excluded), then up to ``rounds`` timed epochs within ``cap`` seconds; the fastest, scaled."""
    if clock.left() <= 0:
        row.skipped = "not run: the benchmark's time budget was spent"
        return row
    try:
        epoch = make()
        start = time.perf_counter()
        epoch()
        row.warmup_seconds = time.perf_counter() - start
        if row.warmup_seconds > cap:
            row.skipped = f"cut: the warm-up epoch of {row.n} images took {row.warmup_seconds:.1f} s > {cap:.0f} s"
            return row
        spent = 0.0
        for _ in range(rounds):
            if spent > cap or clock.left() <= 0:
                break
            seconds = epoch()
            spent += seconds
            row.rounds.append(seconds * PER_EPOCH / row.n)
    except Exception as exc:  # a failing row is recorded, the others still run
        row.skipped = f"failed: {type(exc).__name__}: {exc}"
        return row
    if row.rounds:
        row.seconds_per_epoch = min(row.rounds)
    return row


def dense_epoch(spec: RowSpec, images: np.ndarray, labels: np.ndarray, hidden: int, batch: int):
    def make() -> Callable[[], float]:
        impl = spec.build()
        impl.prepare([N_IN, hidden, N_OUT], images, labels, 0)
        return lambda: impl.epoch(batch, 3.0).seconds

    return make


def conv_epoch(backend: str, device: Callable[[], Any] | None, images: np.ndarray, labels: np.ndarray, batch: int):
    def make() -> Callable[[], float]:
        from portable_nn import Dataset, network3

        net = network3.preset_network("ch6-conv1", batch, xp=backend, seed=0, device=device() if device else None)
        data = Dataset(images, labels, divisor=255.0)
        return lambda: net.SGD(data, 1, batch, 0.1, None, None, quiet=True)[0].seconds

    return make


def crossover(rows: list[Row]) -> dict[str, Any]:
    """Per network: the smallest batch at which the fastest GPU row beats the fastest CPU row."""
    result: dict[str, Any] = {}
    for hidden in sorted({r.hidden for r in rows if r.hidden is not None}):
        cells = []
        for batch in sorted({r.batch for r in rows if r.hidden == hidden}):

            def best(gpu: bool, batch: int = batch, hidden: int | None = hidden) -> Row | None:
                done = [r for r in rows if r.hidden == hidden and r.batch == batch and r.gpu == gpu]
                done = [r for r in done if r.seconds_per_epoch is not None]
                return min(done, key=lambda r: r.seconds_per_epoch or 0.0, default=None)

            g, c = best(True), best(False)
            if g is not None and c is not None:
                cells.append(
                    {
                        "batch": batch,
                        "gpu": g.label,
                        "gpu_s": g.seconds_per_epoch,
                        "cpu": c.label,
                        "cpu_s": c.seconds_per_epoch,
                        "gpu_wins": (g.seconds_per_epoch or 0) < (c.seconds_per_epoch or 0),
                    }
                )
        wins = [c["batch"] for c in cells if c["gpu_wins"]]
        result[f"[784,{hidden},10]"] = {
            "cells": cells,
            "crossover_batch": min(wins) if wins else None,
            "note": "no GPU row measured" if not cells else ("the GPU never wins here" if not wins else ""),
        }
    return result


def versions() -> dict[str, str | None]:
    found: dict[str, str | None] = {"python": platform.python_version()}
    for name in ("numpy", "cupy", "torch", "jax", "jaxlib", "array_api_compat", "portable_nn"):
        try:
            found[name] = str(importlib.import_module(name).__version__)
        except Exception:
            found[name] = None
    return found


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data-dir", default=None, help="MNIST directory (IDX files)")
    parser.add_argument("--synthetic", action="store_true", help="random IDX files instead of MNIST (smoke tests)")
    parser.add_argument("--tiny", action="store_true", help="smoke-test sizes: 200 images, 1 round, hidden 30")
    parser.add_argument("--out", type=Path, required=True, help="the JSON file to write")
    parser.add_argument("--batches", default="1,10,100,1000")
    parser.add_argument("--hiddens", default=None, help="default 30,100 (tiny: 30)")
    parser.add_argument("--steps", type=int, default=None, help="mini-batches per timed epoch (default 500)")
    parser.add_argument("--rounds", type=int, default=None, help="timed epochs per row (default 3)")
    parser.add_argument("--row-cap", type=float, default=20.0, help="seconds a row may spend (warm-up, then rounds)")
    parser.add_argument("--budget", type=float, default=200.0, help="seconds for the whole benchmark")
    parser.add_argument("--no-conv", action="store_true", help="leave out the ch6-conv1 rows")
    args = parser.parse_args(argv)
    if not args.synthetic and args.data_dir is None:
        parser.error("--data-dir is required (or --synthetic)")
    if args.data_dir is not None and not Path(args.data_dir).is_dir():
        parser.error(f"--data-dir {args.data_dir}: no such directory")
    if not args.out.parent.is_dir():
        parser.error(f"--out {args.out}: directory {args.out.parent} does not exist")
    args.hiddens = args.hiddens or ("30" if args.tiny else "30,100")
    args.steps = args.steps or (20 if args.tiny else 500)
    args.rounds = args.rounds or (1 if args.tiny else 3)
    return args


def run(args: argparse.Namespace, data_dir: str) -> dict[str, Any]:
    clock = Clock(args.budget)
    reasons = gpu_status()
    for name, reason in reasons.items():
        log(f"{name}: " + ("GPU rows run" if reason is None else f"GPU rows skipped: {reason}"))
    batches = [int(b) for b in args.batches.split(",")]
    n_max = 200 if args.tiny else PER_EPOCH
    images, labels = training_arrays(data_dir, n_max, "float32")
    uint8_images = (images * 255.0).round().astype(np.uint8)
    rows: list[Row] = []

    def skip_reason(spec_gpu: bool, needs: str) -> str | None:
        if spec_gpu:
            reason = reasons.get(needs)
            return None if reason is None else f"skipped: {reason}"
        if needs != "numpy" and importlib.util.find_spec(needs) is None:
            return f"skipped: {needs} is not installed"
        return None

    for hidden in [int(h) for h in args.hiddens.split(",")]:
        for batch in batches:
            n = min(n_max, args.steps * batch)
            for spec in dense_rows():
                row = Row("dense", spec.label, spec.gpu, hidden, batch, n)
                row.skipped = skip_reason(spec.gpu, spec.needs)
                if row.skipped is None:
                    measure(
                        row, dense_epoch(spec, images[:n], labels[:n], hidden, batch), args.rounds, args.row_cap, clock
                    )
                log(f"[784,{hidden},10] batch {batch:4d} {spec.label:45s} " + _cell(row))
                rows.append(row)
    if not args.no_conv:
        conv = [
            ("portable_nn cupy", True, "cupy", "cupy", None),
            ("portable_nn torch (cuda)", True, "torch", "torch", _torch_cuda),
            ("portable_nn jax (gpu)", True, "jax", "jax", lambda: _jax_device("gpu")),
            ("portable_nn numpy (cpu)", False, "numpy", "numpy", None),
        ]
        for batch in (10, 100):
            n = min(n_max, (10 if args.tiny else 200) * batch)
            for label, gpu, needs, backend, device in conv:
                row = Row("ch6-conv1", label, gpu, None, batch, n)
                row.skipped = skip_reason(gpu, needs)
                if row.skipped is None:
                    make = conv_epoch(backend, device, uint8_images[:n], labels[:n], batch)
                    measure(row, make, args.rounds, args.row_cap, clock)
                log(f"ch6-conv1 batch {batch:4d} {label:45s} " + _cell(row))
                rows.append(row)
    return {
        "date": datetime.datetime.now().astimezone().isoformat(timespec="seconds"),
        "command": "python benchmarks/gpu_bench.py " + " ".join(sys.argv[1:]),
        "synthetic": args.synthetic,
        "dtype": "float32",
        "per_epoch_images": PER_EPOCH,
        "method": "fastest timed epoch after one warm-up epoch, over n images, scaled to 50,000",
        "gpu": {k: ("available" if v is None else v) for k, v in reasons.items()},
        "versions": versions(),
        "machine": {"platform": platform.platform(), "processor": platform.processor() or platform.machine()},
        "rows": [asdict(r) for r in rows],
        "crossover": crossover([r for r in rows if r.table == "dense"]),
        "budget_left_s": round(clock.left(), 1),
    }


def _cell(row: Row) -> str:
    if row.seconds_per_epoch is not None:
        return f"{row.seconds_per_epoch:9.3f} s/epoch (n={row.n})"
    return row.skipped or "no timed round"


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="gpu-bench-") as tmp:
        data_dir = args.data_dir
        if args.synthetic:
            data_dir = str(write_synthetic_mnist(Path(tmp) / "mnist", 200 if args.tiny else PER_EPOCH, 50, 0))
        report = run(args, str(data_dir))
    args.out.write_text(json.dumps(report, indent=1) + "\n")
    gpu_rows = [r for r in report["rows"] if r["gpu"] and r["seconds_per_epoch"] is not None]
    log(f"wrote {args.out}: {len(report['rows'])} rows, {len(gpu_rows)} GPU rows measured")
    if not gpu_rows:
        log("no GPU row was measured on this machine: the GPU parts were skipped (reasons above)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
