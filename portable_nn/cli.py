"""The ``portable-nn`` command: ``train``, ``evaluate``, ``predict``, ``plot``.

``portable-nn train`` with no options reproduces the book's chapter-1 run:
``[784, 30, 10]``, 30 epochs, mini-batches of 10, eta 3.0, on the first 50,000
MNIST training images, evaluated on the 10,000 test images after each epoch.
Chapter 3's options (``--cost``, ``--lmbda``, ``--init``, ...) train the
book's ``network2`` on the same core.

Errors: every expected failure (a bad flag, a missing or malformed file, a
permission, a full disk, a model that does not fit the data) is one line on
stderr naming the file or flag, exit status 2 for usage errors and 1 for the
rest; ``--debug`` (or ``PORTABLE_NN_DEBUG=1``) shows the traceback instead.
Ctrl-C or SIGTERM stop training at the next mini-batch: what is saved is the
network at the end of the last completed epoch, and nothing at all when no
epoch completed (exit status 128 + the signal number: 130 for Ctrl-C, 143 for
SIGTERM).
"""

from __future__ import annotations

import argparse
import errno
import importlib.util
import math
import os
import shutil
import signal
import sys
import time
import warnings
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from types import FrameType
from typing import Any

from . import __version__, limits
from .atomic import OutputPathError, check_writable, fallback_path
from .backends import KNOWN_BACKENDS, BackendUnavailableError, enable_jax_x64
from .costs import COST_ALIASES
from .dataforms import Dataset
from .download import DownloadError
from .errors import OptionalDependencyError
from .history import HistoryFileError, history_rows, plot_history, read_history, write_history
from .idx import IDXFormatError
from .mnist import DATA_ENV, FILES, load_mnist, resolve_data_dir
from .network2 import Network
from .network3 import PRESETS, NetworkSpec, load_expanded_training_data
from .network3 import Network as Network3
from .serialization import ModelFileError, load
from .training import EpochResult
from .validation import check_sizes, max_parameters

#: Exceptions that mean "the user's input or environment is wrong", not "the program is wrong":
#: each ends a command with one line on stderr and exit status 1.
EXPECTED_ERRORS: tuple[type[BaseException], ...] = (
    BackendUnavailableError,
    OptionalDependencyError,
    DownloadError,
    IDXFormatError,
    ModelFileError,
    HistoryFileError,
    OSError,
    MemoryError,
)
#: Set to 1 to see tracebacks of expected errors too (same as ``--debug``).
DEBUG_ENV = "PORTABLE_NN_DEBUG"
#: The monitored series ``--monitor`` accepts.
MONITORS = ("evaluation-cost", "training-cost", "training-accuracy")


class CommandError(Exception):
    """An expected failure found by the command itself; ``status`` 2 for usage errors, 1 otherwise."""

    def __init__(self, message: str, status: int = 1) -> None:
        super().__init__(message)
        self.status = status


# -- argument types (argparse turns their errors into usage errors, exit 2) ------------------------------
def _sizes(text: str) -> list[int]:
    try:
        sizes = [int(part) for part in text.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated ints like 784,30,10; got {text!r}") from None
    if len(sizes) < 2 or min(sizes) < 1:
        raise argparse.ArgumentTypeError(f"expected at least 2 positive ints like 784,30,10; got {text!r}")
    if sizes[0] != 784 or sizes[-1] != 10:
        raise argparse.ArgumentTypeError(f"MNIST needs 784 inputs and 10 outputs (784,...,10); got {text!r}")
    try:
        return check_sizes(sizes)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _int_at_least(minimum: int) -> Callable[[str], int]:
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected an int >= {minimum}; got {text!r}") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"expected an int >= {minimum}; got {text!r}")
        return value

    return parse


def _float_in(low: float, high: float, *, low_open: bool, what: str) -> Callable[[str], float]:
    def parse(text: str) -> float:
        try:
            value = float(text)
        except (ValueError, OverflowError):
            raise argparse.ArgumentTypeError(f"expected {what}; got {text!r}") from None
        if not (low < value if low_open else low <= value) or not value < high:
            raise argparse.ArgumentTypeError(f"expected {what}; got {text!r}")
        return value

    return parse


def _monitors(text: str) -> list[str]:
    names = [part.strip() for part in text.split(",") if part.strip()]
    if names == ["all"]:
        return list(MONITORS)
    unknown = [n for n in names if n not in MONITORS]
    if unknown or not names:
        raise argparse.ArgumentTypeError(
            f"expected a comma-separated list of {', '.join(MONITORS)} or 'all'; got {text!r}"
        )
    return names


def _add_data_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--data-dir",
        type=Path,
        default=None,
        help=f"directory of the four MNIST IDX files (default: ${DATA_ENV}, then ~/.cache/portable_nn/mnist)",
    )
    parser.add_argument("--no-download", action="store_true", help="fail instead of downloading missing files")


def _add_backend_options(parser: argparse.ArgumentParser, dtype_default: str) -> None:
    """``--backend`` and ``--dtype`` (default ``None``; ``dtype_default`` says what that means)."""
    parser.add_argument("--backend", default="numpy", choices=KNOWN_BACKENDS, help="array library (default: numpy)")
    parser.add_argument(
        "--dtype", default=None, choices=("float32", "float64"), help=f"floating-point type (default: {dtype_default})"
    )


def _add_train_options(train: argparse.ArgumentParser) -> None:
    _add_backend_options(train, "float64; float32 for --preset")
    train.add_argument("--sizes", type=_sizes, default=[784, 30, 10], help="layer sizes (default: 784,30,10)")
    train.add_argument("--epochs", type=_int_at_least(0), default=None, help="epochs (default: 30, or the preset's)")
    train.add_argument("--batch-size", type=_int_at_least(1), default=10, help="mini-batch size (default: 10)")
    train.add_argument(
        "--eta", type=_float_in(0.0, float("inf"), low_open=True, what="a finite number > 0"), default=None,
        help="learning rate (default: 3.0, or the preset's)",
    )  # fmt: skip
    train.add_argument("--seed", type=_int_at_least(0), default=None, help="random seed, >= 0 (default: fresh)")
    train.add_argument(
        "--train-size", type=_int_at_least(1), default=None,
        help="train on the first N training images (default: 50000, the book's split; 250000 for expanded presets)",
    )  # fmt: skip
    train.add_argument(
        "--test-size", type=_int_at_least(1), default=10_000, help="evaluate on the first N images (default: 10000)"
    )
    train.add_argument(
        "--eval-data", choices=("test", "validation"), default="test",
        help="evaluate on the test set, or on the validation set (the last 10,000 training images)",
    )  # fmt: skip
    ch3 = train.add_argument_group("chapter 3 (network2)")
    ch3.add_argument("--cost", choices=tuple(COST_ALIASES), default="quadratic", help="cost (default: quadratic)")
    ch3.add_argument(
        "--output", choices=("sigmoid", "softmax"), default="sigmoid",
        help="output layer; softmax uses the log-likelihood cost (default: sigmoid)",
    )  # fmt: skip
    ch3.add_argument(
        "--activation", choices=("sigmoid", "tanh", "relu"), default="sigmoid", help="hidden neurons (default: sigmoid)"
    )
    ch3.add_argument(
        "--init", choices=("large", "scaled"), default="large",
        help="weights N(0,1) as in chapter 1 (large) or N(0,1/n_in) (scaled) (default: large)",
    )  # fmt: skip
    ch3.add_argument(
        "--lmbda", type=_float_in(0.0, float("inf"), low_open=False, what="a finite number >= 0"), default=None,
        help="regularisation parameter (default: 0, or the preset's)",
    )  # fmt: skip
    ch3.add_argument("--regularization", choices=("l2", "l1"), default="l2", help="L2 or L1 (default: l2)")
    ch3.add_argument(
        "--momentum", type=_float_in(0.0, 1.0, low_open=False, what="a number in [0, 1)"), default=0.0,
        help="momentum coefficient mu (default: 0, plain SGD)",
    )  # fmt: skip
    ch3.add_argument(
        "--early-stopping", type=_int_at_least(0), default=0, metavar="N",
        help="stop after N epochs without a better evaluation accuracy (default: 0, off)",
    )  # fmt: skip
    ch3.add_argument(
        "--schedule", type=_int_at_least(0), default=0, metavar="N",
        help="halve eta after N epochs without a better accuracy; stop at eta/128 (default: 0, off)",
    )  # fmt: skip
    ch3.add_argument(
        "--monitor", type=_monitors, default=[], metavar="LIST",
        help=f"also record {', '.join(MONITORS)} (comma-separated, or 'all')",
    )  # fmt: skip
    ch6 = train.add_argument_group("chapter 6 (network3)")
    ch6.add_argument(
        "--preset", choices=tuple(PRESETS), default=None,
        help="train one of the book's chapter-6 networks with its eta, lambda and epochs (float32 unless --dtype); "
        "evaluates on the validation set, reports the test accuracy of the best epoch",
    )  # fmt: skip
    _add_data_options(train)
    out = train.add_argument_group("outputs (checked before training starts)")
    out.add_argument("--save", type=Path, default=None, help="save the model to PATH (.npz or .json)")
    out.add_argument("--history", type=Path, default=None, help="write per-epoch history to PATH (.json or .csv)")
    out.add_argument("--plot", type=Path, default=None, help="draw the accuracy/cost curves to PATH (.png)")
    train.add_argument("--quiet", action="store_true", help="print only the final summary")


def build_parser() -> argparse.ArgumentParser:
    """The ``portable-nn`` argument parser."""
    parser = argparse.ArgumentParser(prog="portable-nn", description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    parser.add_argument("--debug", action="store_true", help=f"show tracebacks of errors (also ${DEBUG_ENV}=1)")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    train = commands.add_parser("train", help="train on MNIST (the book's chapter-1 run by default)")
    _add_train_options(train)

    evaluate = commands.add_parser("evaluate", help="accuracy of a saved model on the MNIST test set")
    evaluate.add_argument("--model", type=Path, required=True, help="model file (.npz or .json)")
    _add_backend_options(evaluate, "the model file's")
    _add_data_options(evaluate)

    predict = commands.add_parser("predict", help="classify digit images with a saved model (needs Pillow)")
    predict.add_argument("--model", type=Path, required=True, help="model file (.npz or .json)")
    predict.add_argument("images", type=Path, nargs="+", metavar="IMAGE", help="image files (any size; greyscaled)")
    _add_backend_options(predict, "the model file's")

    plot = commands.add_parser(
        "plot", help="draw a history file's accuracy and cost curves, or a sweep directory's results, to a PNG"
    )
    plot.add_argument(
        "history", type=Path, help="history file from train --history (.json or .csv), or a sweep --out directory"
    )
    plot.add_argument("-o", "--output", type=Path, required=True, help="PNG to write")

    from .sweep_cli import add_sweep_parser  # imports neither Dask nor Optuna

    add_sweep_parser(commands)
    return parser


# -- training -----------------------------------------------------------------------------------------
class _EpochPrinter:
    """Per-epoch lines, an optional tqdm bar within each epoch, and the final summary."""

    def __init__(self, net: Network, epochs: int, n_train: int, quiet: bool) -> None:
        self.net, self.epochs, self.n_train, self.quiet = net, epochs, n_train, quiet
        self.history: list[EpochResult] = []
        #: The last completed epoch and the parameters it ended with, assigned in one statement so a
        #: second Ctrl-C (which raises anywhere) can never leave them out of step with each other.
        self.committed: tuple[EpochResult, Any] | None = None  # (result, the network's State then)
        self.bar: Any = None
        self.use_bar = not quiet and sys.stderr.isatty() and _tqdm() is not None

    def start_epoch(self) -> None:
        if self.use_bar:
            self.bar = _tqdm()(
                total=self.n_train,
                desc=f"epoch {len(self.history) + 1}/{self.epochs}",
                unit="img",
                leave=False,
                file=sys.stderr,
            )

    def on_batch(self, m: int) -> None:
        if self.bar is not None:
            self.bar.update(m)

    def on_epoch(self, result: EpochResult) -> None:
        # Arrays are never updated in place (every step rebinds), so keeping references is a snapshot.
        self.committed = (result, self.net._get_state(False))
        self.close()
        self.history.append(result)
        if not self.quiet:
            extras = ""
            if result.training_cost is not None:
                extras += f"; training cost {result.training_cost:.4f}"
            if result.training_correct is not None:
                extras += f"; training {result.training_correct} / {result.n_train}"
            if result.evaluation_cost is not None:
                extras += f"; evaluation cost {result.evaluation_cost:.4f}"
            print(
                f"epoch {result.epoch + 1}/{self.epochs}: {result.correct} / {result.n_test} "
                f"({100 * (result.accuracy or 0.0):.2f}%) {result.seconds:.2f} s {self.net.backend.describe()}"
                + extras,
                flush=True,
            )
        if len(self.history) < self.epochs:
            self.start_epoch()

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None

    def restore_committed(self) -> None:
        """Put the network and the history back to the end of the last completed epoch.

        An interrupt can land between the training core committing an epoch's
        parameters and ``on_epoch`` being called (or inside it); the network may
        then hold parameters that no printed line or history row describes.
        """
        if self.committed is None:
            self.history.clear()
            return
        result, state = self.committed
        self.net._set_state(state)
        if result not in self.history:
            self.history.append(result)
        del self.history[self.history.index(result) + 1 :]

    def summary(self) -> str:
        if not self.history:
            return "no epoch completed"
        best = max(self.history, key=lambda r: r.correct or 0)
        last = self.history[-1]
        total = sum(r.seconds for r in self.history)
        final = f"{last.correct} / {last.n_test} ({100 * (last.accuracy or 0.0):.2f}%)"
        top = f"{best.correct} / {best.n_test} ({100 * (best.accuracy or 0.0):.2f}%)"
        return (
            f"final: {final} after epoch {last.epoch + 1}; best: epoch {best.epoch + 1}, {top}; "
            f"{len(self.history)} epoch(s) in {total:.1f} s on {self.net.backend.describe()}"
        )


def _tqdm() -> Any:
    try:
        from tqdm import tqdm
    except ModuleNotFoundError as exc:
        if exc.name is None or exc.name.split(".")[0] != "tqdm":
            raise  # tqdm is there but broken: a bug to show, not a missing extra
        return None
    return tqdm


class _StopRequest:
    """SIGINT and SIGTERM ask training to stop at the next mini-batch; a second one stops at once."""

    def __init__(self) -> None:
        self.signal_name: str | None = None
        self.signum = 0

    @property
    def status(self) -> int:
        """The exit status for the signal received: 128 + its number (130 for SIGINT, 143 for SIGTERM)."""
        return 128 + (self.signum or signal.SIGINT)

    def _handler(self, signum: int, frame: FrameType | None) -> None:
        if self.signal_name is not None:
            raise KeyboardInterrupt
        self.signum = signum
        self.signal_name = signal.Signals(signum).name
        print(f"\n{self.signal_name}: stopping at the next mini-batch (again to stop at once)", file=sys.stderr)

    @contextmanager
    def installed(self) -> Iterator[_StopRequest]:
        previous = {sig: signal.signal(sig, self._handler) for sig in (signal.SIGINT, signal.SIGTERM)}
        try:
            yield self
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)

    def check(self) -> None:
        if self.signal_name is not None:
            raise KeyboardInterrupt


_OUTPUT_SUFFIXES = {"--save": (".npz", ".json"), "--history": (".json", ".csv"), "--plot": (".png",)}


def _check_outputs(args: argparse.Namespace, inputs: Sequence[Path]) -> dict[str, Path]:
    """Every output path resolved and usable before training starts (``CommandError`` with status 2 if not)."""
    outputs: dict[str, Path] = {}
    for option, suffixes in _OUTPUT_SUFFIXES.items():
        path = getattr(args, option[2:])
        if path is None:
            continue
        if path.suffix.lower() not in suffixes:
            raise CommandError(f"{option} must end in {' or '.join(suffixes)}; got {str(path)!r}", 2)
        try:
            outputs[option] = check_writable(path, f"{option} file")
        except OutputPathError as exc:
            raise CommandError(str(exc), 2) from exc
    if "--plot" in outputs and importlib.util.find_spec("matplotlib") is None:
        raise CommandError('--plot needs matplotlib: pip install "portable-nn[plot]" (or leave out --plot)')
    seen: dict[Path, str] = {}
    for option, path in outputs.items():
        if path in seen:
            raise CommandError(f"{seen[path]} and {option} name the same file {path}; give each its own", 2)
        seen[path] = option
        for source in inputs:
            if source.exists() and path.exists() and os.path.samefile(source, path):
                raise CommandError(f"{option} {path} is the input file {source}; choose another name", 2)
    return outputs


def _parameter_count(sizes: list[int]) -> int:
    return sum(n_out * (n_in + 1) for n_in, n_out in zip(sizes[:-1], sizes[1:]))


def _model_bytes(count: int, dtype: str, fmt: str) -> int:
    return count * (25 if fmt == ".json" else (8 if dtype == "float64" else 4)) + 4096


def _check_space(outputs: dict[str, Path], count: int, dtype: str) -> str:
    """``"model file about N MB"``; ``CommandError`` if its directory has not even that much room."""
    path = outputs.get("--save")
    if path is None:
        return ""
    needed = _model_bytes(count, dtype, path.suffix.lower())
    free = shutil.disk_usage(path.parent).free
    if free < needed:
        raise CommandError(f"--save {path}: the model needs about {needed:,} bytes but {path.parent} has {free:,} free")
    return f"; model file about {needed / 1e6:.1f} MB"


def _mnist_inputs(args: argparse.Namespace) -> list[Path]:
    directory = resolve_data_dir(args.data_dir)
    return [directory / (stem + suffix) for stem in FILES.values() for suffix in (".gz", "")]


def _training_data(args: argparse.Namespace) -> tuple[Dataset, Dataset]:
    (train_x, train_y), (test_x, test_y) = load_mnist(args.data_dir, download=not args.no_download, dtype="uint8")
    if args.eval_data == "validation":
        if args.train_size > 50_000:
            raise CommandError(
                "--train-size must be <= 50000 with --eval-data validation (the last 10,000 are validation)", 2
            )
        evaluation = Dataset(train_x[50_000:][: args.test_size], train_y[50_000:][: args.test_size], divisor=255.0)
    else:
        evaluation = Dataset(test_x[: args.test_size], test_y[: args.test_size], divisor=255.0)
    train = Dataset(train_x[: args.train_size], train_y[: args.train_size], divisor=255.0)
    for name, data in (("training", train), ("evaluation", evaluation)):
        if data.n == 0:
            raise CommandError(f"{resolve_data_dir(args.data_dir)}: the MNIST {name} set is empty")
    return train, evaluation


_CH3_FLAGS = (
    ("--sizes", lambda a: a.sizes != [784, 30, 10]),
    ("--cost", lambda a: a.cost != "quadratic"),
    ("--output", lambda a: a.output != "sigmoid"),
    ("--activation", lambda a: a.activation != "sigmoid"),
    ("--init", lambda a: a.init != "large"),
    ("--regularization", lambda a: a.regularization != "l2"),
    ("--momentum", lambda a: a.momentum != 0.0),
    ("--early-stopping", lambda a: a.early_stopping != 0),
    ("--schedule", lambda a: a.schedule != 0),
    ("--monitor", lambda a: bool(a.monitor)),
    ("--eval-data", lambda a: a.eval_data != "test"),
)


def _resolve_defaults(args: argparse.Namespace) -> NetworkSpec | None:
    """Fill in what depends on ``--preset`` (epochs, eta, lmbda, dtype, train size); refuse flags it fixes."""
    spec = None if args.preset is None else PRESETS[args.preset](args.batch_size)
    if spec is not None:
        fixed = [flag for flag, given in _CH3_FLAGS if given(args)]
        if fixed:
            raise CommandError(f"--preset {args.preset} fixes the network and its data; drop {', '.join(fixed)}", 2)
        if args.save is not None and args.save.suffix.lower() != ".npz":
            raise CommandError(f"--preset networks are saved as .npz; got --save {str(args.save)!r}", 2)
    args.epochs = (spec.epochs if spec else 30) if args.epochs is None else args.epochs
    args.eta = (spec.eta if spec else 3.0) if args.eta is None else args.eta
    args.lmbda = (spec.lmbda if spec else 0.0) if args.lmbda is None else args.lmbda
    args.dtype = args.dtype or ("float32" if spec else "float64")
    if args.train_size is None:
        args.train_size = 250_000 if spec is not None and spec.expanded else 50_000
    return spec


def _preset_data(args: argparse.Namespace, spec: NetworkSpec) -> tuple[Dataset, Dataset, Dataset]:
    """Training (the book's 50,000, or the 250,000 expanded), validation (the last 10,000) and test data."""
    (train_x, train_y), (test_x, test_y) = load_mnist(args.data_dir, download=not args.no_download, dtype="uint8")
    if spec.expanded:
        train = load_expanded_training_data(args.data_dir).subset(slice(0, args.train_size))
    else:
        train = Dataset(train_x[: min(args.train_size, 50_000)], train_y[: min(args.train_size, 50_000)], divisor=255.0)
    validation = Dataset(train_x[50_000:][: args.test_size], train_y[50_000:][: args.test_size], divisor=255.0)
    test = Dataset(test_x[: args.test_size], test_y[: args.test_size], divisor=255.0)
    for name, data in (("training", train), ("validation", validation), ("test", test)):
        if data.n == 0:
            raise CommandError(f"{resolve_data_dir(args.data_dir)}: the MNIST {name} set is empty")
    return train, validation, test


def _build_network(args: argparse.Namespace) -> Network:
    cost = "log-likelihood" if args.output == "softmax" else args.cost
    if args.output == "softmax" and args.cost not in ("quadratic", "log-likelihood"):
        raise CommandError(f"--output softmax uses the log-likelihood cost; drop --cost {args.cost}", 2)
    if args.output == "sigmoid" and args.cost == "log-likelihood":
        raise CommandError("--cost log-likelihood needs --output softmax", 2)
    net = Network(args.sizes, cost, xp=args.backend, dtype=args.dtype, seed=args.seed, activation=args.activation)
    if args.init == "large":
        net.large_weight_initializer()
    return net


def _write_outputs(outputs: dict[str, Path], net: Network, history: list[EpochResult]) -> int:
    """Write what was asked; a write that fails goes to a fallback location (exit status 1)."""
    status = 0
    writers: dict[str, tuple[str, Callable[[Path], Any]]] = {
        "--save": ("model", net.save),
        "--history": ("history", lambda p: write_history(history, p)),
        "--plot": ("plot", lambda p: plot_history(history_rows(history), p, str(net))),
    }
    for option, path in outputs.items():
        kind, write = writers[option]
        try:
            print(f"saved {kind} to {write(path)}")
        except ValueError as exc:  # save() refuses non-finite weights; the old file stays
            status = 1
            print(f"portable-nn train: error: {option}: {exc}; {path} was left as it was", file=sys.stderr)
        except OSError as exc:
            status = 1
            reason = exc.strerror or str(exc)
            try:
                rescue = fallback_path(path, f"{option} file")
                write(rescue)
            except OSError as again:
                print(
                    f"portable-nn train: error: could not write {option} {path} ({reason}), "
                    f"nor a fallback ({_describe(again)})",
                    file=sys.stderr,
                )
                continue
            print(
                f"portable-nn train: error: could not write {option} {path} ({reason}); "
                f"saved the {kind} to {rescue} instead",
                file=sys.stderr,
            )
    return status


def cmd_train(args: argparse.Namespace) -> int:
    stop = _StopRequest()
    with stop.installed():  # from the start: a signal during the checks or loading also ends cleanly
        spec = _resolve_defaults(args)
        outputs = _check_outputs(args, _mnist_inputs(args))
        net: Any
        if spec is None:
            space = _check_space(outputs, _parameter_count(args.sizes), args.dtype)
            net = _build_network(args)
            train, evaluation = _training_data(args)
            test = None
            what = f"{net.sizes}"
        else:
            net = spec.build(args.batch_size, xp=args.backend, dtype=args.dtype, seed=args.seed)
            space = _check_space(outputs, sum(math.prod(p.shape) for p in net.params), args.dtype)
            train, evaluation, test = _preset_data(args, spec)
            what = f"{spec.name} ({spec.description})"
        if not args.quiet:
            print(
                f"training {what} on {net.backend.describe()}, {net.dtype}: {train.n} images, "
                f"{args.epochs} epochs, batch {args.batch_size}, eta {args.eta}; testing on {evaluation.n}"
                f"{' validation images' if args.eval_data == 'validation' or spec else ''}{space}",
                flush=True,
            )
        printer = _EpochPrinter(net, args.epochs, train.n, args.quiet)

        def on_batch(m: int) -> None:
            printer.on_batch(m)
            stop.check()

        start = time.perf_counter()
        interrupted = False
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", RuntimeWarning)
            try:
                stop.check()
                if args.epochs:
                    printer.start_epoch()
                if spec is not None:
                    net.SGD(
                        train, args.epochs, args.batch_size, args.eta, evaluation, test, args.lmbda,
                        quiet=True, on_batch=on_batch, on_epoch=printer.on_epoch,
                    )  # fmt: skip
                else:
                    net.SGD(
                        train, args.epochs, args.batch_size, args.eta, args.lmbda, evaluation,
                        "evaluation-cost" in args.monitor, True, "training-cost" in args.monitor,
                        "training-accuracy" in args.monitor, args.early_stopping,
                        mu=args.momentum, regularization=args.regularization, schedule_n=args.schedule,
                        quiet=True, on_batch=on_batch, on_epoch=printer.on_epoch,
                    )  # fmt: skip
            except KeyboardInterrupt:
                interrupted = True
            finally:
                printer.close()
        printer.restore_committed()
        for warning in caught:
            print(f"portable-nn train: warning: {warning.message} (--eta)", file=sys.stderr)
        if interrupted:
            print(
                f"\ninterrupted ({stop.signal_name or 'SIGINT'}) after {len(printer.history)} complete epoch(s), "
                f"{time.perf_counter() - start:.1f} s",
                file=sys.stderr,
            )
        print(printer.summary(), flush=True)
        best_test = getattr(printer.history[-1], "test_correct", None) if printer.history else None
        if best_test is not None and test is not None:
            print(
                f"test accuracy at the best validation epoch: {best_test} / {test.n} ({100 * best_test / test.n:.2f}%)"
            )
        if not printer.history:
            if outputs:
                print("nothing written: no epoch completed (existing files are untouched)")
            return stop.status if interrupted else 0
        if interrupted and outputs:
            print(f"the files hold the network as it was after epoch {printer.history[-1].epoch + 1}, as summarised")
        status = _write_outputs(outputs, net, printer.history)
    return stop.status if interrupted or stop.signal_name else status


# -- the other commands ----------------------------------------------------------------------------------
def _load_for_mnist(args: argparse.Namespace) -> Any:
    if args.model.suffix.lower() not in (".npz", ".json"):
        raise CommandError(f"--model must end in .npz or .json; got {str(args.model)!r}", 2)
    net = load(args.model, args.backend, dtype=args.dtype)
    n_in, n_out = (net.n_in, net.n_out) if isinstance(net, Network3) else (net.sizes[0], net.sizes[-1])
    if n_in != 784 or n_out != 10:
        raise CommandError(
            f"{args.model}: the model has {n_in} inputs and {n_out} outputs; MNIST needs 784 inputs and 10 outputs"
        )
    return net


def cmd_evaluate(args: argparse.Namespace) -> int:
    net = _load_for_mnist(args)
    _, (test_x, test_y) = load_mnist(args.data_dir, download=not args.no_download, dtype="uint8")
    if len(test_y) == 0:
        raise CommandError(f"{resolve_data_dir(args.data_dir)}: the MNIST test set is empty")
    count = getattr(net, "accuracy", None) or net.evaluate  # network2/network3, or network.Network
    correct = count(Dataset(test_x, test_y, divisor=255.0))
    print(f"{correct} / {len(test_y)} ({100 * correct / len(test_y):.2f}%) {args.model} on {net.backend.describe()}")
    return 0


def read_digit_image(path: Path) -> Any:
    """An image file as a ``(784,)`` float64 vector in MNIST's style (white digit on black)."""
    import numpy as np

    try:
        from PIL import Image
    except ModuleNotFoundError as exc:
        if exc.name is None or exc.name.split(".")[0] != "PIL":
            raise  # Pillow is there but broken: a bug to show, not a missing extra
        raise OptionalDependencyError('predict needs Pillow: pip install "portable-nn[images]"') from exc
    try:
        with warnings.catch_warnings():
            # Pillow only warns between MAX_IMAGE_PIXELS and twice that; refuse those too.
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(path) as image:
                grey = np.asarray(image.convert("L").resize((28, 28)), dtype=np.float64) / 255.0
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise CommandError(
            f"{path}: refused, the image is too large ({exc}); a digit image needs only 28x28 pixels"
        ) from exc
    except (OSError, ValueError) as exc:  # UnidentifiedImageError is an OSError
        raise CommandError(f"{path}: cannot read the image ({exc})") from exc
    if grey.mean() > 0.5:  # dark digit on a light background: invert to MNIST's convention
        grey = 1.0 - grey
    return grey.reshape(784)


def cmd_predict(args: argparse.Namespace) -> int:
    import numpy as np

    from .backends import to_numpy

    net = _load_for_mnist(args)
    images = np.stack([read_digit_image(path) for path in args.images])
    # network3 takes and gives rows (n, 784) -> (n, 10); the book's network/network2 columns.
    outputs = to_numpy(net.feedforward(images)).T if isinstance(net, Network3) else to_numpy(net.feedforward(images.T))
    for path, column in zip(args.images, outputs.T):
        print(f"{path}: {int(np.argmax(column))} (activation {float(np.max(column)):.3f})")
    return 0


def cmd_plot(args: argparse.Namespace) -> int:
    if args.output.suffix.lower() != ".png":
        raise CommandError(f"-o/--output must end in .png; got {str(args.output)!r}", 2)
    try:
        output = check_writable(args.output, "-o/--output file")
    except OutputPathError as exc:
        raise CommandError(str(exc), 2) from exc
    if args.history.is_dir():  # a sweep's --out directory
        from .sweep_cli import plot_sweep

        print(f"wrote plot to {plot_sweep(args.history, output)}")
        return 0
    if args.history.exists() and output.exists() and os.path.samefile(args.history, output):
        raise CommandError(f"-o/--output {output} is the input file; choose another name", 2)
    rows = read_history(args.history)
    try:
        path = plot_history(rows, output, args.history.name)
    except ValueError as exc:
        raise CommandError(f"{args.history}: {exc}") from exc
    print(f"wrote plot to {path}")
    return 0


#: What to do about an operating-system error, by errno.
_ERRNO_HINTS = {
    errno.EACCES: "check its permissions or choose another path",
    errno.EPERM: "check its permissions or choose another path",
    errno.ENOENT: "check the path",
    errno.ENOTDIR: "check the path",
    errno.EISDIR: "give the path of a file, not a directory",
    errno.ENOSPC: "free some disk space or choose another location",
    errno.EDQUOT: "free some disk space or choose another location",
    errno.EROFS: "the filesystem is read-only; choose a writable location",
    errno.EIO: "the file cannot be read (damaged disk or special file); choose another",
}


def _describe(exc: BaseException) -> str:
    """One line for an expected error: what went wrong, naming the file, and what to do."""
    if isinstance(exc, MemoryError):
        return "out of memory (a network or data set too large for this machine?)"
    text = str(exc)
    if isinstance(exc, OSError) and not isinstance(exc, OutputPathError):
        if exc.filename is not None and not text.startswith(str(exc.filename)):
            text = f"{exc.filename}: {exc.strerror or exc}"
        hint = _ERRNO_HINTS.get(exc.errno or 0)
        if hint is not None and hint not in text:
            text = f"{text} ({hint})"
    return " ".join(line.strip() for line in text.splitlines() if line.strip())


def _check_environment() -> None:
    """The limits set in the environment parse (a typo is a usage error, not a silent default)."""
    try:
        for limit in limits.ALL:
            limit.value()
        max_parameters()
    except ValueError as exc:
        raise CommandError(str(exc), 2) from exc


def _cmd_sweep(args: argparse.Namespace) -> int:
    from .sweep_cli import cmd_sweep  # Dask and Optuna are imported only here

    return cmd_sweep(args)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    debug = args.debug or os.environ.get(DEBUG_ENV, "") not in ("", "0")
    commands: dict[str, Callable[[argparse.Namespace], int]] = {
        "train": cmd_train,
        "evaluate": cmd_evaluate,
        "predict": cmd_predict,
        "plot": cmd_plot,
        "sweep": _cmd_sweep,
    }
    try:
        _check_environment()
        if getattr(args, "backend", None) == "jax":  # the command owns its process: --dtype float64 means float64
            enable_jax_x64()
        return commands[args.command](args)
    except CommandError as exc:
        if debug:
            raise
        message = _describe(exc)
        if exc.status == 2:  # a usage error, reported the way argparse reports its own
            parser.print_usage(sys.stderr)
            print(f"portable-nn {args.command}: error: {message}", file=sys.stderr)
            raise SystemExit(2) from None
        print(f"portable-nn {args.command}: error: {message}", file=sys.stderr)
        return exc.status
    except EXPECTED_ERRORS as exc:
        if debug:
            raise
        print(f"portable-nn {args.command}: error: {_describe(exc)}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"portable-nn {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
