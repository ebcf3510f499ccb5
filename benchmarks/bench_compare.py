"""Two checkouts of the package, timed side by side in one run: a refactor's before/after, row by row.

    git worktree add /tmp/before <commit>      # the checkout before the change
    python benchmarks/bench_compare.py --before /tmp/before --after . --data-dir ../shared/data/mnist \\
        --rounds 7 --out docs/refactor_benchmarks.md

Rows are the package's own rows of :mod:`benchmarks.bench_epoch` (``portable:<backend>:<dtype>`` and
``network2:float64``: one MNIST epoch of ``[784, hidden, 10]``) and of :mod:`benchmarks.bench_conv`
(``ch6-conv1``, float32, NumPy and PyTorch).  Every row runs in two worker processes, one per
checkout (its ``benchmarks`` and its ``portable_nn``, nothing else differs); each round times one
epoch of each, alternating which goes first, so drift in the machine's load falls on both alike.
The table gives min and median seconds per 50,000 images for both, and the ratios after/before of
the mins and of the medians (above 1: the change is slower), with the 1-minute load around the run.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

if __package__ in (None, ""):  # run as a script: make ``benchmarks`` importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks import machine
from benchmarks.workers import Worker

#: The epoch rows compared (those whose libraries are installed).
EPOCH_ROWS = (
    "portable:numpy:float64",
    "portable:numpy:float32",
    "portable:array_api_strict:float64",
    "portable:torch:float32",
    "portable:jax:float32",
    "network2:float64",
)
#: The conv rows compared: ``bench_conv.ROWS`` keys.
CONV_ROWS = ("portable_nn numpy", "portable_nn torch")

#: A conv worker: loads MNIST once, then answers ``{"row", "batch"}`` with one epoch's seconds.
CONV_WORKER = r"""
import json, os, sys
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1"); os.environ.setdefault("OMP_NUM_THREADS", "1")
sys.argv = ["bench_conv", "--threads", "1"]
sys.path.insert(0, os.getcwd())
from benchmarks import bench_conv
import numpy as np
data_dir, n = os.environ["BENCH_DATA_DIR"], int(os.environ["BENCH_N"])
(images, labels), _ = bench_conv.load_mnist(data_dir, download=False, dtype="uint8")
images, labels = np.ascontiguousarray(images[:n]), np.ascontiguousarray(labels[:n])
try:
    import torch
    torch.set_num_threads(1)
except ImportError:
    pass
out = os.fdopen(os.dup(1), "w", buffering=1); os.dup2(2, 1)
epochs = {}
out.write(json.dumps({"ready": True}) + "\n")
for line in sys.stdin:
    request = json.loads(line)
    key = (request["row"], request["batch"])
    if key not in epochs:
        epochs[key] = bench_conv.ROWS[key[0]](images, labels, key[1], 0)
        epochs[key]()  # warm-up
    out.write(json.dumps({"seconds": epochs[key]()}) + "\n")
"""


@dataclass
class Pair:
    """One row in both checkouts: seconds per epoch (scaled to 50,000 images) for each."""

    name: str
    detail: str
    before: list[float] = field(default_factory=list)
    after: list[float] = field(default_factory=list)
    error: str = ""

    def stats(self, side: str) -> tuple[float, float]:
        values = getattr(self, side)
        return min(values), statistics.median(values)


class ConvWorker:
    """One checkout's conv process (see :data:`CONV_WORKER`)."""

    def __init__(self, root: Path, data_dir: str, n: int) -> None:
        env = {**machine.worker_env(root), "BENCH_DATA_DIR": data_dir, "BENCH_N": str(n)}
        self.proc = subprocess.Popen(
            [sys.executable, "-c", CONV_WORKER], cwd=root, env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
            text=True,
        )  # fmt: skip
        self.ask(None)

    def ask(self, request: dict[str, Any] | None) -> dict[str, Any]:
        stdin, stdout = self.proc.stdin, self.proc.stdout
        assert stdin is not None and stdout is not None
        if request is not None:
            stdin.write(json.dumps(request) + "\n")
            stdin.flush()
        line = stdout.readline()
        if not line:
            raise RuntimeError(f"conv worker in {self.proc.args} died (exit status {self.proc.poll()})")
        return dict(json.loads(line))

    def close(self) -> None:
        stdin: IO[str] | None = self.proc.stdin
        if stdin is not None:
            stdin.close()
        self.proc.wait(timeout=60)


def compare_epochs(args: argparse.Namespace, loads: list[float]) -> list[Pair]:
    """The epoch rows: one worker per row and checkout, alternating rounds."""
    pairs = []
    rows = [r for r in EPOCH_ROWS if r.split(":")[1] in ("numpy", "float64") or machine.has(r.split(":")[1])]
    rows = [r for r in rows if not args.rows or r in args.rows]
    for spec in rows:
        for batch in args.batches:
            workers = [Worker(spec, args.data_dir, args.n, root=root) for root in (args.before, args.after)]
            for w in workers:
                w.ready()
                w.prepare(args.hidden, args.n, 0)
                w.epoch(batch, 3.0)  # warm-up: compilation, caches
            pair = Pair(spec, f"[784, {args.hidden}, 10], batch {batch}")
            for r in range(args.rounds):
                order = (0, 1) if r % 2 == 0 else (1, 0)
                for side in order:
                    reply = workers[side].epoch(batch, 3.0)
                    if reply.get("error"):
                        pair.error = str(reply["error"])
                        break
                    (pair.before if side == 0 else pair.after).append(reply["seconds"] * 50_000 / args.n)
                loads.append(machine.load1())
            for w in workers:
                w.close()
            pairs.append(pair)
            print(_line(pair), flush=True)
    return pairs


def compare_conv(args: argparse.Namespace, loads: list[float]) -> list[Pair]:
    """The ch6-conv1 rows: one process per checkout, alternating rounds."""
    workers = [ConvWorker(root, args.data_dir, args.conv_n) for root in (args.before, args.after)]
    pairs = []
    try:
        for row in CONV_ROWS:
            if row.endswith("torch") and not machine.has("torch"):
                continue
            for batch in args.conv_batches:
                pair = Pair(row, f"ch6-conv1 float32, batch {batch}")
                for r in range(args.rounds):
                    for side in (0, 1) if r % 2 == 0 else (1, 0):
                        seconds = workers[side].ask({"row": row, "batch": batch})["seconds"]
                        (pair.before if side == 0 else pair.after).append(seconds * 50_000 / args.conv_n)
                    loads.append(machine.load1())
                pairs.append(pair)
                print(_line(pair), flush=True)
    finally:
        for w in workers:
            w.close()
    return pairs


def _line(pair: Pair) -> str:
    if pair.error or not pair.before or not pair.after:
        return f"| {pair.name} | {pair.detail} | error: {pair.error or 'no rounds'} |"
    (b_min, b_med), (a_min, a_med) = pair.stats("before"), pair.stats("after")
    return (
        f"| {pair.name} | {pair.detail} | {b_min:.3f} | {b_med:.3f} | {a_min:.3f} | {a_med:.3f} "
        f"| {a_min / b_min:.3f} | {a_med / b_med:.3f} |"
    )


def _commit(root: Path) -> str:
    try:
        out = subprocess.run(["git", "-C", str(root), "rev-parse", "--short", "HEAD"], capture_output=True, text=True)
        dirty = subprocess.run(["git", "-C", str(root), "status", "--porcelain"], capture_output=True, text=True)
    except OSError:
        return "?"
    return out.stdout.strip() + (" + uncommitted changes" if dirty.stdout.strip() else "")


def render(args: argparse.Namespace, pairs: Sequence[Pair], loads: Sequence[float], seconds: float) -> str:
    """The markdown page."""
    lines = [
        "# Before and after a refactor, in one run",
        "",
        f"Generated {datetime.date.today().isoformat()} by `python benchmarks/bench_compare.py "
        f"--before BEFORE --after AFTER --rounds {args.rounds} --n {args.n} --conv-n {args.conv_n}` "
        f"{''.join(f' --env {e}' for e in args.env)} in {seconds / 60:.1f} min.",
        f"Before: `{_commit(args.before)}`; after: `{_commit(args.after)}`.",
        "",
        "Each row ran in two worker processes (one per checkout); every round timed one epoch of each, "
        "alternating which went first.  Seconds per 50,000 images; ratio = after / before (above 1: slower).",
        f"1-minute load during the run: min {min(loads):.2f}, median {statistics.median(loads):.2f}, "
        f"max {max(loads):.2f}.",
        "",
        "| row | network | before min | before median | after min | after median | ratio of mins | ratio of medians |",
        "|---|---|---|---|---|---|---|---|",
        *(_line(p) for p in pairs),
        "",
        "## Machine",
        "",
        *(f"- {item}: {value}" for item, value in machine.describe()),
        "",
    ]
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--before", type=Path, required=True, help="checkout before the change")
    parser.add_argument("--after", type=Path, default=Path(__file__).resolve().parents[1], help="(default: this one)")
    parser.add_argument("--data-dir", required=True, help="MNIST directory (IDX files)")
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--n", type=int, default=10_000, help="images per timed epoch row (scaled to 50,000)")
    parser.add_argument("--hidden", type=int, default=30)
    parser.add_argument("--batches", type=lambda s: [int(b) for b in s.split(",")], default=[10, 100])
    parser.add_argument("--conv-n", type=int, default=2_000, help="images per timed conv epoch")
    parser.add_argument("--conv-batches", type=lambda s: [int(b) for b in s.split(",")], default=[10, 100])
    parser.add_argument("--rows", type=lambda s: s.split(","), default=None, help="only these epoch rows")
    parser.add_argument("--skip", choices=("epoch", "conv"), action="append", default=[])
    parser.add_argument(
        "--env", action="append", default=[], metavar="KEY=VALUE",
        help="set in every worker of both checkouts (e.g. MALLOC_TOP_PAD_=67108864, see conv_allocator.py)",
    )  # fmt: skip
    parser.add_argument("--out", type=Path, default=None, help="also write the markdown page here")
    args = parser.parse_args(argv)
    for item in args.env:
        key, _, value = item.partition("=")
        os.environ[key] = value  # the workers' environment is a copy of this one
    args.before, args.after = args.before.resolve(), args.after.resolve()
    start, loads = time.perf_counter(), [machine.load1()]
    pairs: list[Pair] = []
    if "epoch" not in args.skip:
        pairs += compare_epochs(args, loads)
    if "conv" not in args.skip:
        pairs += compare_conv(args, loads)
    page = render(args, pairs, loads, time.perf_counter() - start)
    print(page)
    if args.out is not None:
        args.out.write_text(page)
    return 0


if __name__ == "__main__":
    os.environ.setdefault("PYTHONHASHSEED", "0")
    raise SystemExit(main())
