"""``portable-nn sweep``: the subcommand's arguments, the run, the report and the exit status.

``add_sweep_parser(subparsers)`` adds the ``sweep`` subcommand to the
``portable-nn`` parser and ``cmd_sweep(args)`` runs it.  Nothing from Dask or
Optuna is imported until a sweep runs.

Exit status: 0 when the sweep ran and at least one trial completed; 2 for a
specification, a setting or an output that cannot work (one line, before any
trial); 1 for a runtime failure, a sweep in which no trial completed, or
trials lost with their workers; 128 + the signal number when stopped by
SIGINT (130), SIGTERM (143) or SIGHUP (129), the finished trials kept.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.util
import io
import os
import signal
import sys
import warnings
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from types import FrameType
from typing import Any

from .._base.signals import STOP_SIGNALS, handling
from .._base.validation import int_at_least

__all__ = ["add_sweep_parser", "cmd_sweep", "main"]

_PROG = "portable-nn sweep"


_positive_int = int_at_least(1, "a positive int")
_non_negative_int = int_at_least(0)


def add_sweep_parser(subparsers: Any) -> None:
    """Add the ``sweep`` subcommand to ``subparsers`` (the result of ``parser.add_subparsers()``)."""
    from .space import DEFAULTS, METRICS, SEARCHES

    defaults = ", ".join(f"{k}={v}" for k, v in DEFAULTS.items())
    sweep = subparsers.add_parser(
        "sweep",
        help="hyperparameter sweep on Dask (local cluster or --scheduler) with Optuna search and pruning",
        description=(
            "Train one network per setting of the --param options, on Dask workers, choosing settings by "
            "grid, random or TPE search (Optuna) on validation accuracy; report the chosen setting's test "
            f"accuracy once.  Options not swept take chapter 3's values (not train's chapter-1 defaults): {defaults}.  "
            "Names and values are train's (momentum=mu, batch-size=batch, init=large|scaled).  "
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
    _say(f"{_PROG}: error: {message}")
    return SystemExit(2)


def _say(line: str, stream: Any = None) -> None:
    """Print a line; a closed or broken stream never turns a finished sweep into a traceback."""
    try:
        print(line, file=stream or sys.stderr, flush=True)
    except (OSError, ValueError):
        pass


class _Stopped:
    """SIGINT, SIGTERM and SIGHUP (the finished trials are on disk already) silence Dask's loggers and raise
    ``KeyboardInterrupt`` in the driver, as Ctrl-C does; ``signum`` remembers which."""

    def __init__(self) -> None:
        self.signum = int(signal.SIGINT)
        self.requested = False
        self._silence: Callable[[], None] = lambda: None

    def _handler(self, signum: int, frame: FrameType | None) -> None:
        self.signum = signum
        self.requested = True
        self._silence()  # before the interrupt unwinds through Dask: the scheduler's thread logs as it goes
        raise KeyboardInterrupt

    def _unraisable(self, previous: Callable[[Any], object]) -> Callable[[Any], object]:
        """A ``sys.unraisablehook`` that drops what Dask's finalizers raise once a stop was asked for.

        The interrupt can land inside a Dask constructor (a ``Future`` half
        built); its ``__del__`` then fails and Python would print that traceback
        after the sweep's one line.  Anything else goes to ``previous``.
        """

        def hook(unraisable: Any) -> object:
            culprit = getattr(unraisable, "object", None)  # e.g. the function Future.__del__
            origin = str(getattr(culprit, "__module__", None) or type(culprit).__module__)
            if self.requested and origin.split(".")[0] == "distributed":
                return None
            return previous(unraisable)

        return hook

    @contextlib.contextmanager
    def installed(self) -> Iterator[_Stopped]:
        from .engine import silence_dask_logs  # imports no Dask: bound now, not inside a signal handler

        self._silence = silence_dask_logs
        previous = sys.unraisablehook
        sys.unraisablehook = self._unraisable(previous)
        try:
            with handling(STOP_SIGNALS, self._handler):
                yield self
        except KeyboardInterrupt:
            self.requested = True  # Ctrl-C: Python's own KeyboardInterrupt
            raise
        finally:
            if not self.requested:  # after a stop, Dask's objects are collected later still: keep the filter
                sys.unraisablehook = previous

    def report(self, results: Path) -> int:
        name = signal.Signals(self.signum).name
        what = "interrupted" if self.signum == signal.SIGINT else f"stopped by {name}"
        _say(f"{_PROG}: {what}; finished trials are in {results}")
        return 128 + self.signum


def _check_plot(plot: Path | None) -> None:
    """``--plot``: its real target ends in .png, is writable, and is none of the sweep's own files."""
    if plot is None:
        return
    from .._base.atomic import OutputPathError, check_writable

    target = Path(os.path.realpath(plot))
    if plot.suffix.lower() != ".png" or target.suffix.lower() != ".png":
        shown = str(plot) if target == plot.absolute() else f"{plot} (-> {target})"
        raise _usage_error(f"--plot must end in .png; got {shown!r}")
    try:
        check_writable(plot, "--plot file")
    except OutputPathError as exc:
        raise _usage_error(str(exc)) from None
    if importlib.util.find_spec("matplotlib") is None:
        raise _usage_error('--plot needs matplotlib: pip install "portable-nn[plot]" (or leave out --plot)')


def _options(args: argparse.Namespace) -> dict[str, Any]:
    return {
        "search": args.search,
        "trials": args.trials,
        "prune": args.prune,
        "prune_startup_trials": args.prune_startup,
        "prune_warmup_epochs": args.prune_warmup,
        "metric": args.metric,
        "seed": args.seed,
        "data_dir": args.data_dir,
        "download": not args.no_download,
        "train_size": args.train_size,
        "validation_size": args.validation_size,
        "test_size": args.test_size,
        "workers": args.workers,
        "threads_per_worker": args.threads_per_worker,
        "scheduler": args.scheduler,
        "send_data": None if args.data_on_workers is None else args.data_on_workers == "send",
        "evaluate_test": not args.no_test,
        "progress": not args.quiet,
    }


def _prepare(args: argparse.Namespace) -> Any:
    """The sweep's driver, with the space, every setting, ``--out`` and ``--plot`` checked (usage errors, exit 2)."""
    from .driver import SweepDriver
    from .files import SweepFileError, prepare_out
    from .options import SweepOptions
    from .space import SweepSpecError

    if args.scheduler is not None and args.workers is not None:
        raise _usage_error("--workers starts a local cluster; with --scheduler the cluster's workers are used")
    try:
        with warnings.catch_warnings(record=True) as renamed:  # an old spelling of a value: one note line each
            warnings.simplefilter("always", FutureWarning)
            driver = SweepDriver(args.param, args.out, SweepOptions(**_options(args)))
        for note in {str(w.message) for w in renamed if issubclass(w.category, FutureWarning)}:
            _say(f"{_PROG}: note: {note}")
    except SweepSpecError as exc:
        raise _usage_error(str(exc)) from None
    _check_plot(args.plot)
    try:
        prepare_out(args.out)
    except SweepFileError as exc:
        raise _usage_error(str(exc)) from None
    return driver


def cmd_sweep(args: argparse.Namespace) -> int:
    """Run ``portable-nn sweep``; the exit status (see the module docstring).

    A bad search specification prints one line ``portable-nn sweep: error:
    ...`` and raises ``SystemExit(2)`` before any work is done.
    """
    missing = [name for name in ("distributed", "optuna", "optuna_integration", "filelock") if not _importable(name)]
    if missing:
        _say(f'{_PROG}: error: needs {", ".join(missing)}: pip install "portable-nn[sweep]"')
        return 1
    from .files import RESULTS_FILE
    from .space import SweepSpecError

    stopped = _Stopped()
    results = args.out / RESULTS_FILE
    try:
        with stopped.installed():
            driver = _prepare(args)
            result = driver.run()
    except SweepSpecError as exc:
        raise _usage_error(str(exc)) from None
    except KeyboardInterrupt:
        return stopped.report(results)
    except (OSError, RuntimeError, ImportError, ValueError, MemoryError) as exc:
        _say(f"{_PROG}: error: {_one_line(exc)}")
        return 1
    for note in result.damaged:
        _say(f"{_PROG}: warning: {note}")
    _say(_report(result, args.top), sys.stdout)
    return _finish(args, result, stopped)


def _finish(args: argparse.Namespace, result: Any, stopped: _Stopped) -> int:
    from .files import RESULTS_FILE
    from .plot import plot_sweep

    if args.plot is not None and result.records:
        try:
            written = plot_sweep(args.out, args.plot, warn=io.StringIO())  # damage was reported above already
            _say(f"wrote plot to {written}", sys.stdout)
        except (OSError, ImportError, ValueError) as exc:
            _say(f"{_PROG}: error: plot: {_one_line(exc)}")
            return 1
    if result.interrupted:
        return stopped.report(result.out / RESULTS_FILE)
    if result.lost:
        _say(f"{_PROG}: error: {len(result.lost)} trial(s) lost; run again to retry them: {result.lost[0]}")
        return 1
    counts = result.counts()
    if result.records and not counts["complete"]:
        first = next((r.get("error") for r in result.records if r.get("error")), "no error recorded")
        _say(
            f"{_PROG}: error: no trial completed ({counts['failed']} failed, {counts['pruned']} pruned); first: {first}"
        )
        return 1
    return 0


def _importable(name: str) -> bool:
    if name in sys.modules:  # optuna_integration's lazy module has no __spec__ once imported
        return True
    try:
        return importlib.util.find_spec(name) is not None
    except ValueError:
        return True


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    shown = text[0] if text else ""
    from .._base.atomic import OutputPathError
    from .engine import SchedulerError
    from .files import SweepFileError

    if isinstance(exc, (SweepFileError, OutputPathError, SchedulerError)):  # their messages say it all
        return shown
    return f"{type(exc).__name__}: {shown}".rstrip(": ")


def _report(result: Any, top: int) -> str:
    from .report import format_percent, format_setting

    counts = result.counts()
    retried = f", {result.retries} restarted after a lost worker" if result.retries else ""
    lines = [
        f"{len(result.records)} trials in {result.out} ({counts['complete']} complete, {counts['pruned']} pruned, "
        f"{counts['failed']} failed; {result.skipped} found from an earlier run{retried}), "
        f"{result.wall_seconds:.1f} s on {result.engine}",
        "",
        result.table(top),
    ]
    if result.best is not None:
        lines += ["", f"chosen on {result.metric}: {format_setting(result.best['params'])}"]
        test = result.test
        if test and "test_accuracy" in test:
            lines.append(
                f"test accuracy of the chosen setting: {test['test_correct']} / {test['n_test']} "
                f"({format_percent(test['test_accuracy'])})"
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


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m portable_nn.sweep_cli ...``: the sweep command on its own (``portable-nn sweep`` once wired)."""
    parser = argparse.ArgumentParser(prog="portable-nn")
    commands = parser.add_subparsers(dest="command", required=True)
    add_sweep_parser(commands)
    args = parser.parse_args(argv)
    return cmd_sweep(args)
