"""JAX: the epoch in compiled chunks (what ``SGD`` runs) against one compiled whole-epoch loop.

    python benchmarks/bench_jax_chunks.py --data-dir /work/shared/data/mnist            # ~3 min, 2 cores
    python benchmarks/bench_jax_chunks.py --data-dir DIR --write docs/benchmarks.md      # also (re)write its section
    python benchmarks/bench_jax_chunks.py --synthetic --n 2000 --rounds 1                # smoke run, random data

Both sides run the same compiled step over the same order from the same
state, on the network's resident device data: *chunked* is
:meth:`portable_nn._train.loop._Runner.run` (compiled calls of ~``CHUNK_SECONDS``
each, each waited for while the next is queued, ``on_batch`` between them);
*whole* is :func:`whole_epoch`, the loop ``SGD`` ran before chunks: one
``jax.jit`` call of ``lax.fori_loop`` over every mini-batch.  Rounds alternate
(whole, chunked, chunked, whole, ...) in one process after a warm-up epoch of
each; the table gives the min and median seconds per epoch and their ratios,
and the load average before and after.
"""

from __future__ import annotations

import argparse
import importlib
import os
import platform
import re
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run as a script: make ``benchmarks`` and ``portable_nn`` importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np

from portable_nn import network
from portable_nn._backend.compiled import CHUNK_SECONDS, CHUNKS_PER_EPOCH
from portable_nn._base.atomic import atomic_write
from portable_nn._math import initializers
from portable_nn._math.updates import State
from portable_nn._train import loop as training
from portable_nn._train.loop import _Runner

#: The section of ``docs/benchmarks.md`` this script owns, between these two lines.
BEGIN = "<!-- bench_jax_chunks: begin -->"
END = "<!-- bench_jax_chunks: end -->"
#: whole: one compiled loop per epoch (before issue 14); chunked: what ``SGD`` runs; fifty: always
#: ``CHUNKS_PER_EPOCH`` chunks (what the first epoch of an ``SGD`` call runs, before the pace is known).
MODES = ("whole", "chunked", "fifty")
CASES = (((784, 30, 10), 10), ((784, 30, 10), 100), ((784, 100, 10), 10), ((784, 100, 10), 100))


def whole_epoch(step: Callable[..., State]) -> Callable[..., State]:
    """``epoch(state, inputs, targets, rows, ones, eta) -> state``: ``step`` per row of ``rows``
    (``(n_batches, m)`` indices), as one ``jax.jit`` call of ``lax.fori_loop`` (the pre-chunk epoch)."""
    jax = importlib.import_module("jax")

    def epoch(state: State, inputs: Any, targets: Any, rows: Any, ones: Any, eta: Any) -> State:
        def body(i: Any, carry: State) -> State:
            return step(carry, inputs, targets, rows[i], ones, eta)

        return jax.lax.fori_loop(0, rows.shape[0], body, state)

    return jax.jit(epoch)


@dataclass
class Case:
    """One network and batch size, ready to time both epoch loops on the same data and order."""

    net: network.Network
    runner: _Runner
    whole: Callable[..., State]
    batch: int
    calls: int = 0  # compiled chunks in the last chunked epoch

    @classmethod
    def build(cls, sizes: tuple[int, ...], batch: int, images: np.ndarray, labels: np.ndarray) -> Case:
        net = network.Network(list(sizes), xp="jax", dtype="float32", seed=0)
        data = net._device_data((images, labels), "training_data", training=True)
        step, chunk = net.training_step(net.update_rule(0.0, data.n), data.divisor)
        return cls(net, _Runner(net, data, batch, (step, chunk)), whole_epoch(step), batch)

    def order(self) -> Any:
        backend = self.net.backend
        return backend.asarray(
            initializers.permutation(self.net.random_source, self.runner.train.n), dtype=backend.index_dtype
        )

    def run(self, mode: str, state: State, order: Any, eta: float = 3.0) -> State:
        """One epoch from ``state`` over ``order`` (``n`` a multiple of the batch); ``mode`` one of :data:`MODES`."""
        if mode == "whole":
            data, m = self.runner.train, self.batch
            rows = self.net.xp.reshape(order, (data.n // m, m))
            return self.whole(state, data.inputs, data.targets, rows, self.net.ones_column(m), eta)
        self.calls = 0
        if mode == "chunked":
            return self.runner.run(state, order, eta, self._count)
        real = training.chunk_size
        training.chunk_size = lambda n_batches, pace=None: real(n_batches)  # the first epoch's 50 chunks
        try:
            return self.runner.run(state, order, eta, self._count)
        finally:
            training.chunk_size = real

    def _count(self, examples: int) -> None:
        self.calls += 1

    def timed(self, mode: str) -> float:
        jax = importlib.import_module("jax")
        state, order = self.net.training_state(False), self.order()
        jax.block_until_ready(order)
        start = time.perf_counter()
        jax.block_until_ready(self.run(mode, state, order))
        return time.perf_counter() - start


def load_data(args: argparse.Namespace) -> tuple[np.ndarray, np.ndarray, str]:
    """``(images (n, 784) float32, labels (n,) int64, description)``."""
    if args.synthetic:
        rng = np.random.default_rng(0)
        return rng.random((args.n, 784), dtype=np.float32), rng.integers(0, 10, args.n), "random images"
    from benchmarks.data import training_arrays

    images, labels = training_arrays(args.data_dir, args.n, "float32")
    return images, labels, f"the first {args.n:,} MNIST training images"


def measure(args: argparse.Namespace, images: np.ndarray, labels: np.ndarray) -> list[dict[str, Any]]:
    rows = []
    for sizes, batch in CASES:
        case = Case.build(sizes, batch, images, labels)
        for mode in MODES:
            case.timed(mode)  # warm-up: compilation, and the pace for "chunked"
        times: dict[str, list[float]] = {mode: [] for mode in MODES}
        calls = {}
        for r in range(args.rounds):
            for mode in MODES if r % 2 == 0 else MODES[::-1]:
                times[mode].append(case.timed(mode))
                calls[mode] = case.calls
        rows.append({"sizes": sizes, "batch": batch, "calls": calls["chunked"], **times})
        print(f"{list(sizes)} batch {batch}: " + ", ".join(f"{k} {min(v):.3f}s" for k, v in times.items()), flush=True)
    return rows


def render(rows: list[dict[str, Any]], args: argparse.Namespace, what: str, loads: tuple[str, str]) -> str:
    lines = [
        BEGIN,
        "## JAX: epoch in compiled chunks against one compiled epoch (issue 14)",
        "",
        f"Seconds per epoch of {what}, float32, `python benchmarks/bench_jax_chunks.py "
        f"--n {args.n} --rounds {args.rounds}`: {args.rounds} alternating rounds per case in one process after a "
        f"warm-up epoch of each.  *chunked* is what `SGD` runs on JAX (compiled calls of ~{CHUNK_SECONDS} s each, "
        "progress and Ctrl-C between them; *calls*: compiled calls per epoch, from the pace measured); "
        f"*{CHUNKS_PER_EPOCH} chunks* cuts every epoch into {CHUNKS_PER_EPOCH} calls (the size `SGD` uses until the "
        "pace is measured, i.e. for the first two chunks of a call): the cost of progress every 2% of an epoch; "
        "*whole* is the loop they replaced (one `jax.jit` call of `lax.fori_loop` over the epoch).  "
        "Ratios against *whole*: of the mins, of the medians, and *paired*: the median over rounds of "
        "this round's epoch / the same round's *whole* epoch (run next to it, so a change in load cancels).  "
        "The target is at most 1.05.",
        "",
        "| sizes | batch | whole: min / median | chunked: calls, min / median, ratios: of mins / of medians / "
        f"paired | {CHUNKS_PER_EPOCH} chunks: min / median, ratios: of mins / of medians / paired |",
        "| --- | --- | --- | --- | --- |",
    ]
    for row in rows:
        w = row["whole"]
        cells = [f"`{list(row['sizes'])}`", str(row["batch"]), f"{min(w):.3f} / {statistics.median(w):.3f}"]
        for mode in ("chunked", "fifty"):
            t = row[mode]
            calls = f"{row['calls']}, " if mode == "chunked" else ""
            paired = statistics.median(a / b for a, b in zip(t, w))
            cells.append(
                f"{calls}{min(t):.3f} / {statistics.median(t):.3f}, "
                f"**{min(t) / min(w):.3f}** / **{statistics.median(t) / statistics.median(w):.3f}** / **{paired:.3f}**"
            )
        lines.append("| " + " | ".join(cells) + " |")
    worst_min = max(min(row["chunked"]) / min(row["whole"]) for row in rows)
    worst_paired = max(statistics.median(a / b for a, b in zip(row["chunked"], row["whole"])) for row in rows)
    verdict = "met" if max(worst_min, worst_paired) <= 1.05 else "missed"
    jax = importlib.import_module("jax")
    lines += [
        "",
        f"*chunked* against *whole*: largest ratio of mins {worst_min:.3f}, largest paired ratio {worst_paired:.3f}: "
        f"the 5% target is {verdict}.  (Ratios of medians mix rounds run under different load.)",
        "",
        f"Machine: {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, Python "
        f"{platform.python_version()}, JAX {jax.__version__} on {jax.devices()[0].platform}.  "
        f"Load (`uptime`) before: {loads[0]}; after: {loads[1]}.",
        END,
    ]
    return "\n".join(lines) + "\n"


def write_section(path: Path, section: str) -> None:
    """Replace this script's section of ``path`` (or append it), leaving the rest as it was."""
    text = path.read_text() if path.exists() else ""
    pattern = re.compile(re.escape(BEGIN) + r".*?" + re.escape(END) + r"\n?", re.S)
    text = pattern.sub(lambda _: section, text) if pattern.search(text) else text.rstrip("\n") + "\n\n" + section
    with atomic_write(path, "w") as handle:
        handle.write(text)


def uptime() -> str:
    loads = os.getloadavg()
    return "load average " + ", ".join(f"{x:.2f}" for x in loads)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data-dir", default="../shared/data/mnist", help="directory of the MNIST IDX files")
    parser.add_argument("--synthetic", action="store_true", help="random images instead of MNIST")
    parser.add_argument("--n", type=int, default=20_000, help="images per epoch (a multiple of 100)")
    parser.add_argument("--rounds", type=int, default=4, help="timed epochs per loop and case")
    parser.add_argument("--write", type=Path, help="(re)write this script's section of this markdown file")
    args = parser.parse_args(argv)
    if args.n % 100:
        parser.error("--n must be a multiple of 100 (no partial last mini-batch)")
    images, labels, what = load_data(args)
    before = uptime()
    rows = measure(args, images, labels)
    section = render(rows, args, what, (before, uptime()))
    print(section)
    if args.write:
        write_section(args.write, section)
    return 0


if __name__ == "__main__":
    sys.exit(main())
