"""``portable-nn sweep`` (hyperparameter sweeps on Dask with Optuna) and the plot of a sweep directory.

``add_sweep_parser(subparsers)`` adds the ``sweep`` subcommand to the
``portable-nn`` parser and ``cmd_sweep(args)`` runs it;
``plot_sweep(directory, output_png)`` draws a sweep's accuracy against each
parameter (and a heat map for two parameters), for ``portable-nn plot DIR``.

Nothing from Dask or Optuna is imported until a sweep runs.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

__all__ = ["add_sweep_parser", "cmd_sweep", "plot_sweep"]

_PROG = "portable-nn sweep"


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive int; got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive int; got {text!r}")
    return value


def _non_negative_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an int >= 0; got {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected an int >= 0; got {text!r}")
    return value


def add_sweep_parser(subparsers: Any) -> None:
    """Add the ``sweep`` subcommand to ``subparsers`` (the result of ``parser.add_subparsers()``)."""
    from .sweep import DEFAULTS, METRICS, SEARCHES

    defaults = ", ".join(f"{k}={v}" for k, v in DEFAULTS.items())
    sweep = subparsers.add_parser(
        "sweep",
        help="hyperparameter sweep on Dask (local cluster or --scheduler) with Optuna search and pruning",
        description=(
            "Train one network per setting of the --param options, on Dask workers, choosing settings by "
            "grid, random or TPE search (Optuna) on validation accuracy; report the chosen setting's test "
            f"accuracy once.  Options not swept take chapter 3's values: {defaults}.  "
            'Needs the sweep extra: pip install "portable-nn[sweep]".'
        ),
    )
    space = sweep.add_argument_group("search")
    space.add_argument(
        "--param",
        action="append",
        required=True,
        metavar="NAME=VALUES",
        help=(
            "a dimension of the search space: NAME=v1,v2,... (any search) or NAME=LOW..HIGH[:log] (random/tpe); "
            "one value fixes an option.  NAME: " + ", ".join(DEFAULTS) + " (hidden=100x30 for two layers)"
        ),
    )
    space.add_argument("--search", choices=SEARCHES, default="grid", help="how settings are chosen (default: grid)")
    space.add_argument(
        "--trials", type=_positive_int, default=None, help="number of settings (random/tpe: required; grid: at most)"
    )
    space.add_argument("--prune", action="store_true", help="stop trials below the median after an epoch")
    space.add_argument(
        "--prune-startup",
        type=_non_negative_int,
        default=5,
        metavar="N",
        help="finished trials before pruning starts (default 5)",
    )
    space.add_argument(
        "--prune-warmup", type=_non_negative_int, default=0, metavar="E", help="epochs before a trial can be pruned"
    )
    space.add_argument(
        "--metric",
        choices=METRICS,
        default="validation-accuracy",
        help="what is maximised: validation accuracy after the last epoch (default) or at the best epoch",
    )
    space.add_argument("--seed", type=int, default=0, help="seed of every trial's network (default 0)")
    space.add_argument("--top", type=_positive_int, default=10, help="rows of the final table (default 10)")
    space.add_argument("--no-test", action="store_true", help="do not evaluate the chosen setting on the test set")

    data = sweep.add_argument_group("data")
    data.add_argument(
        "--data-dir", type=Path, default=None, help="MNIST IDX files (with --scheduler: a path every worker sees)"
    )
    data.add_argument("--no-download", action="store_true", help="fail instead of downloading missing files")
    data.add_argument("--train-size", type=_positive_int, default=50_000, help="training images (default 50000)")
    data.add_argument(
        "--validation-size", type=_positive_int, default=10_000, help="validation images from 50000 (default 10000)"
    )
    data.add_argument("--test-size", type=_positive_int, default=10_000, help="test images (default 10000)")
    data.add_argument(
        "--data-on-workers",
        choices=("send", "read"),
        default=None,
        help="send: load here once and broadcast to the workers (default for a local cluster); "
        "read: every worker reads --data-dir once (default with --scheduler)",
    )

    engine = sweep.add_argument_group("engine")
    engine.add_argument(
        "--workers", type=_positive_int, default=None, help="local cluster worker processes (default: one per core)"
    )
    engine.add_argument(
        "--threads-per-worker",
        type=_positive_int,
        default=None,
        help="BLAS threads per local worker (default: cores // workers)",
    )
    engine.add_argument(
        "--scheduler", default=None, metavar="ADDRESS", help="use this Dask scheduler (tcp://host:8786) instead"
    )

    output = sweep.add_argument_group("output")
    output.add_argument(
        "--out", type=Path, required=True, help="results directory; a restart with the same --out skips finished trials"
    )
    output.add_argument("--plot", type=Path, default=None, metavar="PNG", help="also draw the sweep to PNG")
    output.add_argument("--quiet", action="store_true", help="no progress display")


def _usage_error(message: str) -> SystemExit:
    print(f"{_PROG}: error: {message}", file=sys.stderr)
    return SystemExit(2)


def cmd_sweep(args: argparse.Namespace) -> int:
    """Run ``portable-nn sweep``; 0 on success, 1 for runtime failures, 130 on Ctrl-C.

    A bad search specification prints one line ``portable-nn sweep: error:
    ...`` and raises ``SystemExit(2)`` before any work is done.
    """
    try:
        from . import sweep
    except ModuleNotFoundError as exc:  # pragma: no cover - numpy is a dependency
        print(f"{_PROG}: error: {exc}", file=sys.stderr)
        return 1
    missing = [name for name in ("distributed", "optuna", "optuna_integration") if not _importable(name)]
    if missing:
        print(f'{_PROG}: error: needs {", ".join(missing)}: pip install "portable-nn[sweep]"', file=sys.stderr)
        return 1
    try:
        specs = sweep.parse_space(args.param)
        sweep.check_options(args.search, args.trials, args.metric, specs)
        if args.search == "grid":
            sweep.grid_points(specs)
    except sweep.SweepSpecError as exc:
        raise _usage_error(str(exc)) from None
    if args.plot is not None and args.plot.suffix.lower() != ".png":
        raise _usage_error(f"--plot must end in .png; got {str(args.plot)!r}")
    if args.out.exists() and not args.out.is_dir():
        raise _usage_error(f"--out {args.out} exists and is not a directory")
    if args.scheduler is not None and args.workers is not None:
        raise _usage_error("--workers starts a local cluster; with --scheduler the cluster's workers are used")
    send = None if args.data_on_workers is None else args.data_on_workers == "send"
    try:
        result = sweep.run_sweep(
            args.param,
            out=args.out,
            search=args.search,
            trials=args.trials,
            prune=args.prune,
            prune_startup_trials=args.prune_startup,
            prune_warmup_epochs=args.prune_warmup,
            metric=args.metric,
            seed=args.seed,
            data_dir=args.data_dir,
            download=not args.no_download,
            train_size=args.train_size,
            validation_size=args.validation_size,
            test_size=args.test_size,
            workers=args.workers,
            threads_per_worker=args.threads_per_worker,
            scheduler=args.scheduler,
            send_data=send,
            evaluate_test=not args.no_test,
            progress=not args.quiet,
        )
    except sweep.SweepSpecError as exc:
        raise _usage_error(str(exc)) from None
    except KeyboardInterrupt:
        print(f"{_PROG}: interrupted; finished trials are in {args.out / sweep.RESULTS_FILE}", file=sys.stderr)
        return 130
    except (OSError, RuntimeError, ImportError, ValueError) as exc:
        print(f"{_PROG}: error: {_one_line(exc)}", file=sys.stderr)
        return 1
    print(_report(result, args.top))
    if args.plot is not None and result.records:
        try:
            print(f"wrote plot to {plot_sweep(args.out, args.plot)}")
        except (OSError, ImportError, ValueError) as exc:
            print(f"{_PROG}: error: plot: {_one_line(exc)}", file=sys.stderr)
            return 1
    if result.interrupted:
        print(f"{_PROG}: interrupted; finished trials are in {result.out / sweep.RESULTS_FILE}", file=sys.stderr)
        return 130
    if result.lost:
        print(f"{_PROG}: error: {len(result.lost)} trial(s) lost; run again to retry them: {result.lost[0]}")
        return 1
    return 0


def _importable(name: str) -> bool:
    import importlib.util

    if name in sys.modules:  # optuna_integration's lazy module has no __spec__ once imported
        return True
    try:
        return importlib.util.find_spec(name) is not None
    except ValueError:
        return True


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0] if text else ''}".rstrip(": ")


def _report(result: Any, top: int) -> str:
    counts = result.counts()
    lines = [
        f"{len(result.records)} trials in {result.out} ({counts['complete']} complete, {counts['pruned']} pruned, "
        f"{counts['failed']} failed; {result.skipped} found from an earlier run), {result.wall_seconds:.1f} s "
        f"on {result.engine}",
        "",
        result.table(top),
    ]
    if result.best is not None:
        params = " ".join(f"{k}={v}" for k, v in result.best["params"].items())
        lines += ["", f"chosen on {result.metric}: {params}"]
        test = result.test
        if test and "test_accuracy" in test:
            lines.append(
                f"test accuracy of the chosen setting: {test['test_correct']} / {test['n_test']} "
                f"({100 * test['test_accuracy']:.2f}%)"
            )
        elif test and "error" in test:
            lines.append(f"test evaluation failed: {test['error']}")
    overhead = result.overhead()
    if overhead["trials"]:
        lines.append(
            f"scheduling overhead: {overhead['per_trial_seconds'] * 1000:.0f} ms per trial "
            f"({100 * overhead['fraction']:.2f}% of training time)"
        )
    return "\n".join(lines)


# -- plot ------------------------------------------------------------------------------------------


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def plot_sweep(directory: str | os.PathLike[str], output_png: str | os.PathLike[str]) -> Path:
    """Draw a sweep directory's results to ``output_png``; return its path.

    One panel per swept parameter: the metric of each finished trial against
    the parameter's value (log axis for positive numbers spanning a factor
    of 10 or more; pruned trials hollow, at their last accuracy), with a
    line through the best value per setting.  With exactly two swept
    parameters, a heat map of the best metric over their grid is added.
    Written atomically.  Needs matplotlib.

    Raises ``FileNotFoundError`` when ``directory`` holds no results file
    and ``ValueError`` when no trial has an accuracy.
    """
    from .atomic import atomic_write
    from .errors import OptionalDependencyError
    from .sweep import MANIFEST_FILE, RESULTS_FILE, metric_value, read_records

    directory = Path(directory)
    results = directory / RESULTS_FILE
    if not results.is_file():
        raise FileNotFoundError(f"{directory} is not a sweep directory: it has no {RESULTS_FILE}")
    records = [r for r in read_records(results) if r.get("final_accuracy") is not None]
    if not records:
        raise ValueError(f"{results} has no trial with an accuracy to plot")
    try:
        manifest = json.loads((directory / MANIFEST_FILE).read_text())
    except (OSError, ValueError):
        manifest = {}
    metric = manifest.get("metric", "validation-accuracy")
    names = [n for n in manifest.get("names", []) if len({json.dumps(r["config"].get(n)) for r in records}) > 1]
    if not names:
        keys = sorted({k for r in records for k in r["config"]})
        names = [k for k in keys if len({json.dumps(r["config"].get(k)) for r in records}) > 1]
    if not names:
        names = list(manifest.get("names", [])) or ["eta"]
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ModuleNotFoundError as exc:
        raise OptionalDependencyError('plotting needs matplotlib: pip install "portable-nn[plot]"') from exc

    def value_of(r: Mapping[str, Any]) -> float:
        v = metric_value(r, metric) if r["state"] == "complete" else r.get("best_accuracy")
        return 100.0 * float(v if v is not None else math.nan)

    heat = len(names) == 2
    panels = len(names) + heat
    fig, axes = plt.subplots(1, panels, figsize=(4.8 * panels, 4), squeeze=False)
    for ax, name in zip(axes[0], names):
        values = [r["config"].get(name) for r in records]
        numeric = all(_is_number(v) for v in values)
        if numeric:
            xs = [float(v) for v in values]
            positions: dict[Any, float] = {v: float(v) for v in values}
        else:
            labels = sorted({str(v) for v in values})
            positions = {label: float(i) for i, label in enumerate(labels)}
            xs = [positions[str(v)] for v in values]
        for state, marker, face in (("complete", "o", None), ("pruned", "o", "none"), ("failed", "x", None)):
            pts = [(x, value_of(r)) for x, r in zip(xs, records) if r["state"] == state]
            if pts:
                ax.scatter(*zip(*pts), marker=marker, facecolors=face, label=state, alpha=0.8)
        best: dict[float, float] = {}
        for x, r in zip(xs, records):
            if r["state"] == "complete":
                best[x] = max(best.get(x, -math.inf), value_of(r))
        if best:
            ax.plot(sorted(best), [best[x] for x in sorted(best)], "-", color="grey", alpha=0.6)
        if numeric and min(xs) > 0 and max(xs) >= 10 * min(xs):
            ax.set_xscale("log")
        if not numeric:
            ax.set_xticks(list(positions.values()), list(positions.keys()))
        ax.set_xlabel(name)
        ax.set_ylabel(f"{metric} (%)")
        ax.grid(alpha=0.3)
    axes[0][0].legend(fontsize="small")
    if heat:
        ax = axes[0][-1]
        a_name, b_name = names
        a_vals = sorted({json.dumps(r["config"].get(a_name)) for r in records}, key=_sort_key)
        b_vals = sorted({json.dumps(r["config"].get(b_name)) for r in records}, key=_sort_key)
        grid = [[math.nan] * len(a_vals) for _ in b_vals]
        for r in records:
            if r["state"] != "complete":
                continue
            i = b_vals.index(json.dumps(r["config"].get(b_name)))
            j = a_vals.index(json.dumps(r["config"].get(a_name)))
            grid[i][j] = value_of(r) if math.isnan(grid[i][j]) else max(grid[i][j], value_of(r))
        image = ax.imshow(grid, origin="lower", aspect="auto", cmap="viridis")
        ax.set_xticks(range(len(a_vals)), [json.loads(v) for v in a_vals])
        ax.set_yticks(range(len(b_vals)), [json.loads(v) for v in b_vals])
        ax.set_xlabel(a_name)
        ax.set_ylabel(b_name)
        for i, row in enumerate(grid):
            for j, v in enumerate(row):
                if not math.isnan(v):
                    ax.text(j, i, f"{v:.2f}", ha="center", va="center", color="white", fontsize="small")
        fig.colorbar(image, ax=ax, label=f"{metric} (%)")
    fig.suptitle(f"{directory.name}: {len(records)} trials")
    fig.tight_layout()
    output = Path(output_png)
    try:
        with atomic_write(output, "wb") as handle:
            fig.savefig(handle, format="png", dpi=100)
    finally:
        plt.close(fig)
    return output


def _sort_key(text: str) -> tuple[int, Any]:
    value = json.loads(text)
    return (0, float(value)) if _is_number(value) else (1, str(value))


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m portable_nn.sweep_cli ...``: the sweep command on its own (``portable-nn sweep`` once wired)."""
    parser = argparse.ArgumentParser(prog="portable-nn")
    commands = parser.add_subparsers(dest="command", required=True)
    add_sweep_parser(commands)
    args = parser.parse_args(argv)
    return cmd_sweep(args)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
