"""Seconds per MNIST epoch, side by side, plus the one-off costs, in one run: writes ``docs/benchmarks.md``.

    python -m benchmarks.bench_epoch --data-dir ../shared/data/mnist            # full: ~6 min idle, <12 loaded
    python -m benchmarks.bench_epoch --data-dir ../shared/data/mnist --quick    # ~3 min idle, <5 loaded
    python benchmarks/bench_epoch.py --synthetic --tiny --out /tmp/b.md         # smoke test, random data

Modules: :mod:`~benchmarks.impls` (timed rows), :mod:`~benchmarks.floors`
(the floor), :mod:`~benchmarks.workers` (process per row, alternating
rounds), :mod:`~benchmarks.oneoff` (ingestion, README job),
:mod:`~benchmarks.machine` (machine, BLAS, load), :mod:`~benchmarks.report`
(markdown and plot).  This module only decides what to run, in which order.
"""

from __future__ import annotations

import argparse
import datetime
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

if __package__ in (None, ""):  # run as a script: make ``benchmarks`` importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks import machine
from benchmarks.data import write_synthetic_mnist
from benchmarks.report import Run, keep_owned_sections, render, write_plot
from benchmarks.workers import Result, Worker, measure, run_job, start_workers
from portable_nn._base.atomic import atomic_write

ROOT = Path(__file__).resolve().parents[1]


def floor_specs(dtypes: Sequence[str]) -> list[str]:
    """The floor rows: each dtype at 1 and 2 BLAS threads."""
    return [f"floor:{d}:{t}" for d in dtypes for t in (1, 2)]


def main_specs(notes: list[str], gpu: bool) -> list[str]:
    """Rows of the batch-10 table, for the libraries installed here."""
    rows = ["book:float64", "seed:float64", "seed:float32", "portable:numpy:float64", "portable:numpy:float32"]
    if machine.has("array_api_strict"):
        rows.append("portable:array_api_strict:float64")
    else:
        notes.append("array_api_strict not installed: its row is missing.")
    if machine.has("torch"):
        rows += ["portable:torch:float32", "torch_eager:float32"]
    else:
        notes.append("PyTorch not installed: its rows are missing.")
    if machine.has("jax"):
        rows += ["portable:jax:float32", "jax_epoch:float32"]
    else:
        notes.append("JAX not installed: its rows (and the JAX targets) are missing.")
    if network2_available():
        rows.append("network2:float64")
    if gpu:
        rows += ["portable:cupy:float32", "portable:cupy:float64"]
    return rows + floor_specs(["float64", "float32"])


def sweep_specs(gpu: bool) -> list[str]:
    """Rows of the batch-size sweep."""
    rows = ["portable:numpy:float64", "portable:numpy:float32"]
    if machine.has("torch"):
        rows.append("portable:torch:float32")
    if machine.has("jax"):
        rows += ["portable:jax:float32", "jax_epoch:float32"]
    if gpu:
        rows.append("portable:cupy:float32")
    return rows + floor_specs(["float32"])


def network2_available() -> bool:
    """Whether ``import portable_nn.network2`` works (it is being written)."""
    try:
        import portable_nn.network2  # noqa: F401
    except ImportError:
        return False
    return True


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def _note_failures(results: list[Result], notes: list[str], table: str) -> None:
    for r in results:
        note = ""
        if r.error:
            note = f"{table}: row {r.name} ({r.spec}) failed: {r.error}"
        elif r.cut:
            note = f"{table}: row {r.name} {r.short_dtype}, batch {r.batch}, hidden {r.hidden}: {r.cut}"
        if note and note not in notes:
            notes.append(note)


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data-dir", default=None, help="MNIST directory (IDX files)")
    parser.add_argument("--synthetic", action="store_true", help="random IDX files instead of MNIST (smoke tests)")
    parser.add_argument("--quick", action="store_true", help="fewer rounds, hidden 30 only, 3-epoch README job")
    parser.add_argument("--tiny", action="store_true", help="smoke-test sizes: 300 images, 2 rounds")
    parser.add_argument("--train-size", type=int, default=None, help="images per epoch (default 50,000)")
    parser.add_argument("--rounds", type=int, default=None, help="timed rounds, main table (default 5; quick 3)")
    parser.add_argument("--sweep-rounds", type=int, default=None, help="timed rounds per sweep cell (5; quick 3)")
    parser.add_argument("--sweep-steps", type=int, default=None, help="steps per sweep cell (2000; quick 1000)")
    parser.add_argument("--batches", default="1,10,100,1000")
    parser.add_argument("--hiddens", default=None, help="hidden sizes swept (default 30,100; quick 30)")
    parser.add_argument("--ingestion-rounds", type=int, default=None, help="(default 3; quick 1)")
    parser.add_argument("--readme-epochs", type=int, default=None, help="epochs of the README job (default: its 30)")
    parser.add_argument(
        "--torch-threads", type=int, default=None, help="torch intra-op threads (default 1; 0: torch's own)"
    )
    parser.add_argument(
        "--row-budget", type=float, default=None, help="seconds a row may spend per table (45; tiny 5), then it rests"
    )
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "benchmarks.md")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    if not args.synthetic and args.data_dir is None:
        parser.error("--data-dir is required (or --synthetic)")
    quick, tiny = args.quick or args.tiny, args.tiny
    defaults = {
        "train_size": 300 if tiny else 50_000,
        "rounds": 2 if tiny else 3 if quick else 5,
        "sweep_rounds": 2 if tiny else 3 if quick else 5,
        "sweep_steps": 30 if tiny else 1000 if quick else 2000,
        "hiddens": "30" if quick else "30,100",
        "ingestion_rounds": 1 if quick else 3,
        "readme_epochs": 1 if tiny else 3 if quick else None,
        "torch_threads": 1,
        "row_budget": 5.0 if tiny else 45.0,
    }
    for key, value in defaults.items():
        if getattr(args, key) is None:
            setattr(args, key, value)
    args.mode = "tiny" if tiny else "quick" if quick else "full"
    return args


def run_tables(args: argparse.Namespace, run: Run, data_dir: str, gpu: bool) -> None:
    """The batch-10 table, then the sweep; each row in its own worker, alternating rounds."""
    specs = main_specs(run.notes, gpu)
    log(f"starting {len(specs)} workers")
    workers: dict[str, Worker] = start_workers(specs, data_dir, args.train_size, args.torch_threads)
    log(f"batch-10 table: {len(specs)} rows x {args.rounds} rounds (+1 warm-up)")
    run.main = measure(
        list(workers.values()),
        hidden=30,
        batch=10,
        n=args.train_size,
        rounds=args.rounds,
        eta=3.0,
        seed=args.seed,
        per_epoch=args.train_size,
        budget=args.row_budget,
    )
    _note_failures(run.main, run.notes, "batch-10 table")
    for r in run.main:
        log(f"  {r.name:55s} {r.short_dtype} " + (f"{r.median:.3f} s" if r.ok else f"FAILED {r.error}"))
    keep = sweep_specs(gpu)
    for spec, w in list(workers.items()):
        run.blas[w.name + (f" {w.dtype}" if w.dtype else "")] = w.blas
        if w.torch_threads is not None:
            run.torch_threads[w.name] = w.torch_threads
        if spec not in keep:
            w.close()
            del workers[spec]
    sweep_workers = [workers[s] for s in keep if s in workers]
    for hidden in [int(h) for h in args.hiddens.split(",")]:
        for batch in [int(b) for b in args.batches.split(",")]:
            n = min(args.train_size, args.sweep_steps * batch)
            log(f"sweep hidden {hidden} batch {batch}: {n} images x {args.sweep_rounds} rounds")
            run.sweep += measure(
                sweep_workers,
                hidden=hidden,
                batch=batch,
                n=n,
                rounds=args.sweep_rounds,
                eta=3.0,
                seed=args.seed,
                per_epoch=args.train_size,
                budget=args.row_budget / 3,
            )
    _note_failures(run.sweep, run.notes, "sweep")
    for w in sweep_workers:
        w.close()


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    started = time.perf_counter()
    command = "python -m benchmarks.bench_epoch " + " ".join(sys.argv[1:] if argv is None else argv)
    log("sampling the machine's load")
    run = Run(
        command=command.strip(),
        date=datetime.datetime.now().astimezone().strftime("%Y-%m-%d %H:%M %Z"),
        mode=args.mode + (", synthetic data" if args.synthetic else ""),
        train_size=args.train_size,
        rounds=args.rounds,
        sweep_rounds=args.sweep_rounds,
        sweep_steps=args.sweep_steps,
        machine=machine.describe(),
        busy=machine.busy_processes(),
        load_start=machine.load1(),
        network2_available=network2_available(),
    )
    gpu = machine.cupy_works()
    if not gpu:
        run.gpu = "no GPU" if not machine.has("cupy") else "CuPy is installed but no usable CUDA device"
    if not run.network2_available:
        run.notes.append("`portable_nn.network2` is not available here: its row and target are not measured.")
    with tempfile.TemporaryDirectory() as tmp:
        data_dir = args.data_dir
        if args.synthetic:
            data_dir = str(write_synthetic_mnist(Path(tmp) / "mnist", max(args.train_size, 60), 50, args.seed))
            run.notes.append("Synthetic random IDX files (not MNIST): smoke-test numbers, not benchmarks.")
        data_dir = str(Path(data_dir).resolve())
        run_tables(args, run, data_dir, gpu)
        log(f"ingestion: {args.ingestion_rounds} round(s)")
        run.ingestion = run_job(["ingestion", "--data-dir", data_dir, "--rounds", str(args.ingestion_rounds)])
        log("README main job")
        epochs = [] if args.readme_epochs is None else ["--epochs", str(args.readme_epochs)]
        run.readme = run_job(["readme", "--data-dir", data_dir, *epochs])
        if args.readme_epochs is not None:
            run.notes.append(f"README job run with `--epochs {args.readme_epochs}` ({args.mode} mode), not 30.")
    for job in (run.ingestion, run.readme):
        if "error" in job:
            run.notes.append(f"one-off job failed: {job['error']}")
    run.load_end = machine.load1()
    run.elapsed = time.perf_counter() - started
    args.out.parent.mkdir(parents=True, exist_ok=True)
    plotted = write_plot(run, args.out.with_suffix(".png"))
    old = args.out.read_text() if args.out.exists() else ""
    with atomic_write(args.out, "w") as handle:
        handle.write(keep_owned_sections(old, render(run, plotted)))
    log(f"wrote {args.out} in {run.elapsed / 60:.1f} min")
    return 0


if __name__ == "__main__":
    sys.exit(main())
