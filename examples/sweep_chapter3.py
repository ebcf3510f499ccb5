"""Chapter 3's eta x lambda grid as a Dask sweep, against the same trials one after another: sweeps.md.

    python examples/sweep_chapter3.py --data-dir ../shared/data/mnist          # -> ./portable-nn-runs/sweep_chapter3/
    python examples/sweep_chapter3.py --data-dir ../shared/data/mnist --doc    # update the committed docs/sweeps.md

Runs ``[784, 30, 10]`` cross-entropy networks on the book's split (50,000
training, 10,000 validation images) for every eta in {0.1, 0.5, 3} and lambda
in {0, 5}:

1. as a sweep on a 2-worker Dask ``LocalCluster`` (``portable_nn.sweep.run_sweep``),
   choosing on validation accuracy and reporting the chosen setting's test accuracy;
2. the same trainings one after another in this process (NumPy with every
   core's BLAS threads), then the chosen setting's test accuracy, timed the same way;
3. a second sweep of 1-epoch trials, to measure the scheduling overhead per
   trial (Dask task + Optuna bookkeeping) against one epoch of training.

It checks that every trial's per-epoch validation counts are identical in
(1) and (2), then writes ``sweeps.md`` and ``sweeps.png`` into ``--out DIR``
(default ``./portable-nn-runs/sweep_chapter3/``; ``--doc``: ``docs/``).  The
sweeps' own files go to a temporary directory, removed at the end, unless
``--sweep-dir DIR`` keeps them.
"""

from __future__ import annotations

import argparse
import os
import platform
import shlex
import sys
import tempfile
import time
from pathlib import Path

from _outputs import add_output_options, check_data_dir, fail, output_dir

ROOT = Path(__file__).resolve().parents[1]
SPACE = {"eta": [0.1, 0.5, 3.0], "lmbda": [0.0, 5.0]}


def sequential(args: argparse.Namespace, chosen_metric: str) -> tuple[float, list[dict], dict]:
    """The same trials in this process, one after another; (wall seconds, records, test of the chosen one)."""
    from portable_nn.sweep import (
        DataSource,
        grid_points,
        load_arrays,
        metric_value,
        parse_space,
        summarize,
        train_trial,
        trial_config,
        trial_data,
    )

    start = time.perf_counter()
    source = DataSource(50_000, 10_000, 10_000, str(args.data_dir), False)
    data = trial_data(load_arrays(source))
    records = []
    for params in grid_points(parse_space({**SPACE, "hidden": 30, "epochs": args.epochs})):
        config = trial_config(params, seed=0, train_size=50_000, validation_size=10_000)
        t0 = time.perf_counter()
        outcome = train_trial(config, data)
        records.append({"params": params, "config": config, **outcome, **summarize(outcome["history"])})
        records[-1]["seconds"] = time.perf_counter() - t0
        print(f"  sequential {params}: {records[-1]['final_accuracy']:.4f} in {records[-1]['seconds']:.1f} s")
    best = max(records, key=lambda r: metric_value(r, chosen_metric))
    test = train_trial(best["config"], data, test=True)
    return time.perf_counter() - start, records, test


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data-dir", type=Path, default=ROOT.parent / "shared" / "data" / "mnist")
    parser.add_argument("--epochs", type=int, default=5, help="epochs per trial (default 5)")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument(
        "--sweep-dir", type=Path, default=None, help="keep the sweeps' files here (default: a temporary directory)"
    )
    add_output_options(parser, "sweep_chapter3")
    args = parser.parse_args()
    check_data_dir(args.data_dir)
    if args.sweep_dir is not None and not args.sweep_dir.parent.is_dir():
        fail(f"--sweep-dir {args.sweep_dir}: its directory {args.sweep_dir.parent} does not exist")
    args.page = output_dir(args, "sweep_chapter3") / "sweeps.md"
    if args.sweep_dir is not None:
        return run(args, args.sweep_dir)
    with tempfile.TemporaryDirectory(prefix="sweep-chapter3-") as tmp:
        return run(args, Path(tmp))


def run(args: argparse.Namespace, out: Path) -> int:
    """The sweep into ``out``, the sequential run, the overhead sweep; writes ``args.page``; exit status."""
    from portable_nn.sweep import run_sweep
    from portable_nn.sweep_cli import plot_sweep

    space = [f"eta={','.join(str(v) for v in SPACE['eta'])}", f"lmbda={','.join(str(v) for v in SPACE['lmbda'])}"]
    space += ["hidden=30", f"epochs={args.epochs}"]
    print(f"sweep on {args.workers} workers into {out}")
    args.load_before = os.getloadavg()
    t0 = time.perf_counter()
    result = run_sweep(
        space, out=out, data_dir=args.data_dir, download=False, workers=args.workers, progress=True, seed=0
    )
    sweep_wall = time.perf_counter() - t0
    print(result.table())
    print("one after another in this process")
    seq_wall, seq_records, seq_test = sequential(args, result.metric)

    # identical results: every trial's per-epoch validation counts, and the chosen setting's test count
    by_params = {tuple(sorted(r["params"].items())): r for r in result.records}
    mismatches = [
        r["params"]
        for r in seq_records
        if [h["correct"] for h in r["history"]]
        != [h["correct"] for h in by_params[tuple(sorted(r["params"].items()))]["history"]]
    ]
    same_test = seq_test["test_correct"] == result.test["test_correct"]
    print(f"identical per-epoch results: {not mismatches}; identical test count: {same_test}")

    print("1-epoch trials for the overhead measurement")
    one = run_sweep(
        [*space[:3], "epochs=1"],
        out=out / "one-epoch",
        data_dir=args.data_dir,
        download=False,
        workers=args.workers,
        progress=False,
        evaluate_test=False,
    )
    args.load_after = os.getloadavg()
    png = plot_sweep(out, args.page.with_suffix(".png"))
    write_doc(args, result, sweep_wall, seq_wall, seq_records, seq_test, mismatches, same_test, one, png)
    print(f"wrote {args.page} and {png}")
    return 0 if not mismatches and same_test else 1


def _overhead_rows(label: str, records: list[dict]) -> str:
    new = [r for r in records if "roundtrip_seconds" in r]
    dask_ms = [1000 * max(r["roundtrip_seconds"] - r["seconds"], 0.0) for r in new]
    optuna_ms = [1000 * (r["optuna_seconds"] + r["driver_optuna_seconds"]) for r in new]
    train_s = [r["seconds"] - r["optuna_seconds"] - r["data_seconds"] for r in new]
    total = sum(dask_ms) / 1000 + sum(optuna_ms) / 1000
    return (
        f"| {label} | {len(new)} | {sum(train_s) / len(new):.2f} | {sum(dask_ms) / len(new):.0f} | "
        f"{sum(optuna_ms) / len(new):.0f} | {100 * total / sum(train_s):.2f}% |"
    )


def write_doc(args, result, sweep_wall, seq_wall, seq_records, seq_test, mismatches, same_test, one, png) -> None:
    command = "python examples/sweep_chapter3.py " + shlex.join(sys.argv[1:])
    seq_trials = sum(r["seconds"] for r in seq_records)
    best = result.best
    lines = [
        "# Hyperparameter sweeps: `portable-nn sweep`",
        "",
        "`portable-nn sweep` trains one network per setting of the options you sweep, as Dask tasks on a",
        "Dask cluster (a `LocalCluster` of worker processes on this machine by default, or an existing cluster",
        "with `--scheduler ADDRESS`), with Optuna choosing the settings (`--search grid|random|tpe`) and,",
        "with `--prune`, stopping trials whose validation accuracy after an epoch is below the median of the",
        "finished trials' after that epoch.  It chooses on validation data and reports the chosen setting's",
        'test accuracy once, as chapter 3 recommends.  Install with `pip install "portable-nn[sweep]"`.',
        "",
        "```bash",
        "portable-nn sweep --param eta=0.1,0.5,3 --param lmbda=0,5 --param hidden=30 --param epochs=5 \\",
        "    --workers 2 --data-dir ../shared/data/mnist --out sweeps/ch3 --plot ch3.png",
        "portable-nn sweep --search tpe --trials 40 --prune --param eta=0.01..10:log --param lmbda=0..10 \\",
        "    --param hidden=30,100 --param batch=10,32 --out sweeps/tpe",
        "portable-nn plot sweeps/ch3 -o ch3.png        # accuracy against each parameter, heat map for two",
        "```",
        "",
        "## The search space",
        "",
        "`--param NAME=v1,v2,...` lists values (every search); `--param NAME=LOW..HIGH` or `LOW..HIGH:log` is",
        "a range (random and TPE).  One value fixes an option.  Names and the chapter-3 defaults used when an",
        "option is not given: `model=network2` (`network` is chapter 1's quadratic-cost network),",
        "`hidden=30` (`100x30` for two hidden layers), `cost=cross-entropy|quadratic|log-likelihood`,",
        "`init=scaled|large` (`default` is the old name of `scaled`), `activation=sigmoid|tanh|relu`,",
        "`eta=0.5`, `lmbda=5.0`, `mu=0` (momentum),",
        "`batch=10`, `epochs=30`, `backend=numpy|torch|jax|array_api_strict|cupy`, `dtype=float64|float32`.",
        "Other options: `--metric validation-accuracy` (after the last epoch, the default) or",
        "`best-validation-accuracy` (best epoch; the chosen setting is then tested at that epoch), `--seed N`",
        "(every trial's network is seeded with it: common random numbers), `--trials N`, `--prune-startup N`",
        "(finished trials before pruning starts, default 5), `--prune-warmup E`, and the data options",
        "`--data-dir`, `--no-download`, `--train-size`, `--validation-size` (from image 50,000, the book's",
        "split), `--test-size`.  A bad specification stops with one line, e.g.",
        "`portable-nn sweep: error: grid search needs lists of values; eta is a range (use random or tpe)`.",
        "",
        "## The engine",
        "",
        "* **Local (default):** a Dask `LocalCluster` with `--workers N` processes (default one per core),",
        "  one training at a time per worker, and each worker's BLAS/OpenMP threads limited to",
        "  `--threads-per-worker` (default cores // workers) through `distributed.nanny.pre-spawn-environ`,",
        "  which Dask sets before the worker's interpreter starts (the tests check it with threadpoolctl).",
        "  MNIST is read once here and broadcast to the workers once (`client.scatter(..., broadcast=True)`).",
        "* **An existing cluster:** `--scheduler tcp://HOST:8786` with workers started the usual way",
        "  (`dask scheduler`, then `dask worker tcp://HOST:8786 --nthreads 1` on each machine, with",
        "  `OMP_NUM_THREADS` set as you like).  Each worker then reads `--data-dir` itself, once per process,",
        "  so it must be a path every worker sees (or use `--data-on-workers send`).  The workers need the",
        "  same environment (portable-nn with the `sweep` extra).",
        "* **GPUs:** on a machine with CUDA GPUs, start one worker per GPU, e.g. with dask-cuda's",
        "  `dask cuda worker tcp://HOST:8786` (or `LocalCUDACluster` in Python, passed by its scheduler",
        "  address), and sweep with `--param backend=cupy` (and `dtype=float32`).  This has **not been",
        "  tested**: the machine that produced this page has no GPU.",
        "",
        "## What survives faults",
        "",
        "* Every finished trial is appended to `OUT/trials.jsonl` the moment its result arrives: one JSON",
        "  line (parameters, full configuration, per-epoch validation history, best/final accuracy, seconds,",
        "  backend, worker, attempts, timings) written with a single `os.write` on an `O_APPEND` descriptor",
        "  and fsynced.  Appending costs O(1) per trial (rewriting the file atomically would cost O(trials));",
        "  a crash can at worst tear the last line, which readers skip.  Only the driver writes the file.",
        "* A sweep restarted with the same `--out` skips every setting already recorded (complete, pruned or",
        "  failed) and gives those trials to the new Optuna study, so TPE and the pruner learn from them.",
        "  The chosen setting's test result is cached in `OUT/chosen.json`.",
        "* A worker killed mid-trial: the scheduler reschedules the task on another worker (up to",
        "  `distributed.scheduler.allowed-failures`, default 3) and the trial reruns from epoch 0 with the",
        "  same seed, so its result is unchanged; `attempts` in its record counts the starts.",
        "* A trial that raises, or diverges (non-finite weights), is recorded as `failed` with its error;",
        "  the sweep goes on.  Ctrl-C cancels the running trials, keeps every finished one, and exits 130.",
        "* The Optuna study lives in the Dask scheduler (`optuna_integration.DaskStorage`): the driver asks",
        "  and tells, trials report one validation accuracy per epoch and ask whether to stop.  The results",
        "  file, not the study, is the durable record.",
        "",
        f"## Example: chapter 3's eta x lambda grid on {result.workers} workers",
        "",
        f"Generated by `{command}` on {platform.node() or 'this machine'}"
        f" ({os.cpu_count()} cores, no GPU), Python {platform.python_version()}.",
        f"`[784, 30, 10]` cross-entropy, mini-batches of 10, {args.epochs} epochs, seed 0, trained on the",
        "first 50,000 training images, chosen on the 10,000 validation images:",
        "",
        "```",
        result.table(),
        "```",
        "",
        f"Chosen on validation accuracy: eta={best['params']['eta']}, lmbda={best['params']['lmbda']} "
        f"({100 * best['final_accuracy']:.2f}% validation); its test accuracy, computed once: "
        f"**{result.test['test_correct']} / {result.test['n_test']} ({100 * result.test['test_accuracy']:.2f}%)**.",
        "",
        f"![accuracy against eta and lambda]({png.name})",
        "",
        "| run | wall time | trial seconds (sum) |",
        "| --- | ---: | ---: |",
        f"| sweep, {result.engine} (cluster start, data, {len(result.records)} trials, test retrain) "
        f"| {sweep_wall:.1f} s | {sum(r['seconds'] for r in result.records):.1f} |",
        f"| the same trials one after another in one process ({os.cpu_count()} BLAS threads), then the test "
        f"retrain | {seq_wall:.1f} s | {seq_trials:.1f} |",
        "",
        f"Speed-up of the sweep: **{seq_wall / sweep_wall:.2f}x** in wall time on {result.workers} workers "
        f"({os.cpu_count()} cores).  Every trial's per-epoch validation counts are "
        f"{'identical' if not mismatches else 'NOT identical'} in the two runs, and so is the chosen "
        f"setting's test count ({'yes' if same_test else 'NO'}).",
        "",
        f"The machine was shared while this ran: load average {args.load_before[0]:.1f} before and "
        f"{args.load_after[0]:.1f} after (1-minute, {os.cpu_count()} cores), from other jobs, so the wall times, "
        "the speed-up and the overhead below are noisy; the sweep and the sequential run did not run at the "
        "same moment, so they may have seen different loads.  Rerun the command on a quiet machine for clean figures.",
        "",
        "### Scheduling overhead per trial",
        "",
        "Dask: the driver's round trip from submitting a trial to holding its result, less the task's own",
        "time.  Optuna: `ask`/`tell` in the driver plus loading the study, `report` and `should_prune` in the",
        "task (remote calls to the scheduler).  Training: the task's time less those and the one-off data load.",
        "",
        "| trials | n | training s/trial | Dask ms/trial | Optuna ms/trial | overhead / training |",
        "| --- | ---: | ---: | ---: | ---: | ---: |",
        _overhead_rows(f"{args.epochs} epochs", result.records),
        _overhead_rows("1 epoch", one.records),
        "",
        "The goal was under 2% for trials of one epoch or longer; it is **not met** here: about 0.1 s of",
        "fixed cost per trial (Dask round trip, and Optuna calls to the scheduler) is small only against",
        "trials of tens of seconds (the book's 30-epoch runs), not against this machine's sub-second MNIST",
        "epochs.  Cluster start-up (about 2 s) is not in these figures but is in the wall times above.",
        "",
        "Worker processes started by a Dask nanny get `MALLOC_TRIM_THRESHOLD_=65536` from Dask's",
        "`distributed.nanny.pre-spawn-environ`, which turns off glibc's dynamic mmap threshold and made",
        "every trial about 6x slower here (each step's weight-sized temporaries were mapped and unmapped).",
        "The local cluster drops it; on a cluster you start yourself, start workers with",
        "`DASK_DISTRIBUTED__NANNY__PRE_SPAWN_ENVIRON='{\"MALLOC_TRIM_THRESHOLD_\": null}'`-style",
        "configuration or `--no-nanny`.",
        "",
    ]
    args.page.write_text("\n".join(lines))


if __name__ == "__main__":
    sys.exit(main())
