"""One process per row, driven in strictly alternating rounds; per-row peak RSS and load.

Each row (see :func:`benchmarks.impls.make_row`) lives in its own worker
process, so one library's idle threads (OpenMP/XLA pools spinning after their
work) never steal a core from another row's epoch, and peak memory is per row.
The parent talks to a worker with one JSON object per line: ``prepare``,
``epoch``, ``quit``.  Workers run without the OpenBLAS overrides
(:func:`benchmarks.machine.worker_env`) and report the BLAS pools they loaded.

    python -m benchmarks.workers SPEC --data-dir DIR --train-size N   # a worker (internal)
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import IO, Any

from .machine import ROOT, load1, worker_env


def peak_rss_mb() -> float:
    """This process's peak resident set size in MB: ``VmHWM`` from ``/proc/self/status``.

    (``ru_maxrss`` would do on other systems, but on Linux it keeps the parent's
    RSS at ``fork`` across ``exec``, so it can't go below the parent's size.)
    """
    try:
        for line in open("/proc/self/status").read().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024  # kB
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux, bytes on macOS


def protocol_stream() -> IO[str]:
    """A private copy of stdout for replies; fd 1 then points at stderr, so stray prints can't corrupt them."""
    stream = os.fdopen(os.dup(1), "w", buffering=1)
    os.dup2(2, 1)
    return stream


def serve(spec: str, data_dir: str, train_size: int, torch_threads: int = 0) -> int:
    """Worker main loop: build the row, load the data once, answer the parent's requests."""
    from .data import training_arrays
    from .impls import make_row
    from .machine import blas_info

    out = protocol_stream()

    def send(**reply: Any) -> None:
        out.write(json.dumps(reply) + "\n")

    if "torch" in spec and torch_threads:  # torch rows only: the other rows never import torch
        import torch

        torch.set_num_threads(torch_threads)
    impl = make_row(spec)
    dtype = "float32" if impl.dtype == "float32" else "float64"
    try:
        images, labels = training_arrays(data_dir, train_size, dtype)
    except Exception as exc:
        send(error=f"loading data: {type(exc).__name__}: {exc}", name=impl.name, dtype=impl.dtype)
        return 1
    send(name=impl.name, dtype=impl.dtype, pid=os.getpid())
    for line in sys.stdin:
        request = json.loads(line)
        try:
            if request["cmd"] == "prepare":
                n = request["n"]
                impl.prepare([784, request["hidden"], 10], images[:n], labels[:n], request["seed"])
                send(ok=True, blas=blas_info(), torch_threads=_torch_threads())
            elif request["cmd"] == "epoch":
                timing = impl.epoch(request["batch"], request["eta"])
                send(seconds=timing.seconds, wall=timing.wall, source=timing.source, rss_mb=peak_rss_mb())
            else:
                return 0
        except Exception as exc:  # report, keep serving: the package is a moving target
            send(error=f"{type(exc).__name__}: {exc}")
    return 0


def _torch_threads() -> int | None:
    """torch's intra-op thread count, where this process has imported torch."""
    torch = sys.modules.get("torch")
    return None if torch is None else int(torch.get_num_threads())


@dataclass
class Result:
    """One row of one table: its epochs' seconds and the load around each."""

    spec: str
    name: str
    dtype: str
    hidden: int
    batch: int
    n: int  # images trained per measured epoch
    scale: float  # n -> per-epoch (50,000-image) seconds
    seconds: list[float] = field(default_factory=list)
    walls: list[float] = field(default_factory=list)
    loads: list[tuple[float, float]] = field(default_factory=list)  # 1-min load before/after each epoch
    source: str = ""
    rss_mb: float = float("nan")
    error: str | None = None
    cut: str = ""  # why the row sat out some rounds, if it did

    @property
    def ok(self) -> bool:
        return self.error is None and bool(self.seconds)

    @property
    def min(self) -> float:
        return min(self.seconds) * self.scale

    @property
    def median(self) -> float:
        return statistics.median(self.seconds) * self.scale

    @property
    def wall_min(self) -> float:
        return min(self.walls) * self.scale

    @property
    def wall_median(self) -> float:
        return statistics.median(self.walls) * self.scale

    @property
    def short_dtype(self) -> str:
        return "f32" if self.dtype == "float32" else "f64"


class Worker:
    """The parent's handle on one row's process."""

    def __init__(
        self, spec: str, data_dir: str, train_size: int, torch_threads: int = 0, root: str | os.PathLike[str] = ROOT
    ) -> None:
        """``root``: the checkout whose ``benchmarks`` and ``portable_nn`` the worker runs (this one by default)."""
        self.spec = spec
        cmd = [sys.executable, "-m", "benchmarks.workers", spec, "--data-dir", data_dir]
        cmd += ["--train-size", str(train_size), "--torch-threads", str(torch_threads)]
        self.proc = subprocess.Popen(
            cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, cwd=root, env=worker_env(root)
        )
        self.name, self.dtype, self.error = spec, "", None
        self.blas: list[dict[str, str]] = []
        self.torch_threads: int | None = None

    def ready(self) -> None:
        """Wait for the worker's greeting (it has imported its libraries and loaded the data)."""
        hello = self._ask(None)
        self.name, self.dtype = hello.get("name", self.spec), hello.get("dtype", "")
        self.error = hello.get("error")

    def _ask(self, request: dict[str, Any] | None) -> dict[str, Any]:
        try:
            if request is not None:
                assert self.proc.stdin is not None
                self.proc.stdin.write(json.dumps(request) + "\n")
                self.proc.stdin.flush()
            assert self.proc.stdout is not None
            line = self.proc.stdout.readline()
        except OSError as exc:
            return {"error": f"worker unreachable: {exc}"}
        if not line:
            return {"error": f"worker died (exit status {self.proc.poll()})"}
        return json.loads(line)

    def prepare(self, hidden: int, n: int, seed: int) -> None:
        if self.error is None:
            reply = self._ask({"cmd": "prepare", "hidden": hidden, "n": n, "seed": seed})
            self.error = reply.get("error")
            self.blas = reply.get("blas", self.blas)
            self.torch_threads = reply.get("torch_threads", self.torch_threads)

    def epoch(self, batch: int, eta: float) -> dict[str, Any]:
        if self.error is not None:
            return {"error": self.error}
        reply = self._ask({"cmd": "epoch", "batch": batch, "eta": eta})
        self.error = reply.get("error")
        return reply

    def close(self) -> None:
        try:
            assert self.proc.stdin is not None
            self.proc.stdin.write(json.dumps({"cmd": "quit"}) + "\n")
            self.proc.stdin.close()
        except OSError:
            pass
        try:
            self.proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


def start_workers(
    specs: Sequence[str], data_dir: str, train_size: int, torch_threads: int = 0, at_once: int = 3
) -> dict[str, Worker]:
    """One worker per spec, at most ``at_once`` starting at a time (reading MNIST briefly takes
    about twice the data's memory); nothing is timed yet."""
    workers: dict[str, Worker] = {}
    waiting: list[Worker] = []
    for spec in specs:
        if len(waiting) >= at_once:
            waiting.pop(0).ready()
        workers[spec] = Worker(spec, data_dir, train_size, torch_threads)
        waiting.append(workers[spec])
    for w in waiting:
        w.ready()
    return workers


def measure(
    workers: Sequence[Worker],
    *,
    hidden: int,
    batch: int,
    n: int,
    rounds: int,
    eta: float,
    seed: int,
    per_epoch: int,
    budget: float = float("inf"),
) -> list[Result]:
    """Prepare every row on its first ``n`` images and warm it up with one untimed epoch,
    then ``rounds`` rounds in which every row trains one epoch, in the same order each round.

    A row whose epochs (warm-up included) have taken more than ``budget`` seconds
    sits out the remaining rounds once it has one timed epoch, so a row that a
    loaded machine slows down a hundredfold can't hold the whole run up.
    """
    results = []
    spent = []
    for w in workers:
        w.prepare(hidden, n, seed)
        start = time.perf_counter()
        w.epoch(batch, eta)  # warm-up: compilation, caches, allocator
        spent.append(time.perf_counter() - start)
        results.append(Result(w.spec, w.name, w.dtype, hidden, batch, n, per_epoch / n))
    for round_ in range(rounds):
        for i, (w, result) in enumerate(zip(workers, results)):
            if w.error is not None:
                continue
            if result.seconds and spent[i] > budget:
                result.cut = f"stopped after {round_} of {rounds} rounds: over its {budget:.0f} s budget"
                continue
            before = load1()
            start = time.perf_counter()
            reply = w.epoch(batch, eta)
            spent[i] += time.perf_counter() - start
            if reply.get("error"):
                continue
            result.loads.append((before, load1()))
            result.seconds.append(reply["seconds"])
            result.walls.append(reply["wall"])
            result.source, result.rss_mb = reply["source"], reply["rss_mb"]
    for w, result in zip(workers, results):
        result.error = w.error
    return results


def run_job(args: Sequence[str], timeout: float = 1800) -> dict[str, Any]:
    """Run ``python -m benchmarks.oneoff ARGS`` in its own process; return its JSON reply."""
    started = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, "-m", "benchmarks.oneoff", *args],
        stdout=subprocess.PIPE,
        text=True,
        cwd=ROOT,
        env=worker_env(),
        timeout=timeout,
        check=False,
    )
    lines = proc.stdout.strip().splitlines()
    if proc.returncode != 0 or not lines:
        return {"error": f"job {' '.join(args)} failed (exit status {proc.returncode})"}
    reply = json.loads(lines[-1])
    reply["job_seconds"] = time.perf_counter() - started
    return reply


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="benchmark worker (started by bench_epoch)")
    parser.add_argument("spec")
    parser.add_argument("--data-dir", required=True)
    parser.add_argument("--train-size", type=int, required=True)
    parser.add_argument("--torch-threads", type=int, default=0, help="0: torch's default")
    args = parser.parse_args(argv)
    return serve(args.spec, args.data_dir, args.train_size, args.torch_threads)


if __name__ == "__main__":
    sys.exit(main())
