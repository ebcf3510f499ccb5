"""The ``portable-nn`` argument parser: argument types (their errors are usage errors, exit 2) and subcommands.

Defaults come from :data:`portable_nn.cli.config.DEFAULTS`; ``--debug`` is
accepted before or after the subcommand.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from pathlib import Path

from .. import __version__
from .._backend.backends import KNOWN_BACKENDS
from .._base import limits
from .._base.runconfig import ACTIVATIONS, INITS, RENAMED_VALUES, renamed_note
from .._base.validation import check_sizes, int_at_least
from .._data.mnist import DATA_ENV
from .._math.costs import COST_ALIASES
from ..network3 import PRESETS
from .common import DEBUG_ENV, warn
from .config import DEFAULTS, MONITORS

#: The top-level help, written for a terminal.
DESCRIPTION = (
    "Train Nielsen's networks on MNIST and use them: train (the book's chapter-1 run by default; chapter 3's "
    "options and chapter 6's networks by flag), evaluate and predict with a saved model, plot a history file "
    "or a sweep, sweep hyperparameters."
)


# -- argument types -------------------------------------------------------------------------------------
def _sizes(text: str) -> list[int]:
    try:
        sizes = [int(part) for part in text.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated ints like 784,30,10; got {text!r}") from None
    if len(sizes) < 2 or min(sizes) < 1:
        raise argparse.ArgumentTypeError(f"expected at least 2 positive ints like 784,30,10; got {text!r}")
    if len(sizes) > limits.MAX_LAYERS:
        raise argparse.ArgumentTypeError(f"{len(sizes)} layer sizes; at most {limits.MAX_LAYERS} are allowed")
    if sizes[0] != 784 or sizes[-1] != 10:
        raise argparse.ArgumentTypeError(f"MNIST needs 784 inputs and 10 outputs (784,...,10); got {text!r}")
    try:
        return check_sizes(sizes)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


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


def _renamed(option: str) -> Callable[[str], str]:
    """Today's spelling of a value of ``--OPTION`` (an old one is translated with a one-line note on stderr)."""

    def parse(text: str) -> str:
        note = renamed_note(option, text)
        if note is None:
            return text
        warn(f"portable-nn: note: --{option} {text} is now spelled --{option} {RENAMED_VALUES[option][text]}")
        return RENAMED_VALUES[option][text]

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


# -- option groups ----------------------------------------------------------------------------------------
def _add_common(parser: argparse.ArgumentParser) -> None:
    """``--debug`` on a subcommand too (SUPPRESS: an absent one never overrides the top-level one)."""
    parser.add_argument("--debug", action="store_true", default=argparse.SUPPRESS, help="show tracebacks of errors")


def _add_data_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--data-dir",
        type=Path,
        default=None,
        help=f"directory of the MNIST IDX files (default: ${DATA_ENV}, then ~/.cache/portable_nn/mnist); "
        "a missing one is an error unless --download",
    )
    fetch = parser.add_mutually_exclusive_group()
    fetch.add_argument("--no-download", action="store_true", help="fail instead of downloading missing files")
    fetch.add_argument(
        "--download", dest="create_data_dir", action="store_true",
        help="create a missing --data-dir / $PORTABLE_NN_DATA and download MNIST into it",
    )  # fmt: skip


def _add_backend_options(parser: argparse.ArgumentParser, dtype_default: str) -> None:
    """``--backend`` and ``--dtype`` (default ``None``; ``dtype_default`` says what that means)."""
    parser.add_argument(
        "--backend", default=DEFAULTS.backend, choices=KNOWN_BACKENDS, help="array library (default: numpy)"
    )
    parser.add_argument(
        "--dtype", default=None, choices=("float32", "float64"), help=f"floating-point type (default: {dtype_default})"
    )


def _add_chapter3_options(train: argparse.ArgumentParser) -> None:
    d = DEFAULTS
    ch3 = train.add_argument_group("chapter 3 (network2)")
    ch3.add_argument("--cost", choices=tuple(COST_ALIASES), default=d.cost, help=f"cost (default: {d.cost})")
    ch3.add_argument(
        "--output", choices=("sigmoid", "softmax"), default=d.output,
        help=f"output layer; softmax uses the log-likelihood cost (default: {d.output})",
    )  # fmt: skip
    ch3.add_argument(
        "--activation", choices=ACTIVATIONS, default=d.activation,
        help=f"hidden neurons (default: {d.activation})",
    )  # fmt: skip
    ch3.add_argument(
        "--init", type=_renamed("init"), choices=INITS, default=d.init,
        help=f"weights N(0,1) as in chapter 1 (large) or N(0,1/n_in) (scaled) (default: {d.init})",
    )  # fmt: skip
    ch3.add_argument(
        "--lmbda", type=_float_in(0.0, float("inf"), low_open=False, what="a finite number >= 0"), default=None,
        help=f"regularisation parameter (default: {d.lmbda:g}, or the preset's)",
    )  # fmt: skip
    ch3.add_argument("--regularization", choices=("l2", "l1"), default=d.regularization, help="L2 or L1 (default: l2)")
    ch3.add_argument(
        "--momentum", type=_float_in(0.0, 1.0, low_open=False, what="a number in [0, 1)"), default=d.momentum,
        help="momentum coefficient mu (default: 0, plain SGD)",
    )  # fmt: skip
    ch3.add_argument(
        "--early-stopping", type=int_at_least(0), default=d.early_stopping, metavar="N",
        help="stop after N epochs without a better evaluation accuracy (default: 0, off)",
    )  # fmt: skip
    ch3.add_argument(
        "--schedule", type=int_at_least(0), default=d.schedule, metavar="N",
        help="halve eta after N epochs without a better accuracy; stop at eta/128 (default: 0, off)",
    )  # fmt: skip
    ch3.add_argument(
        "--monitor", type=_monitors, default=list(d.monitor), metavar="LIST",
        help=f"also record {', '.join(MONITORS)} (comma-separated, or 'all')",
    )  # fmt: skip


def _add_train_options(train: argparse.ArgumentParser) -> None:
    d = DEFAULTS
    _add_backend_options(train, "float64; float32 for --preset")
    train.add_argument(
        "--sizes", type=_sizes, default=list(d.sizes), help="layer sizes (default: 784,30,10)"
    )  # fmt: skip
    train.add_argument(
        "--epochs", type=int_at_least(0), default=None, help=f"epochs (default: {d.epochs}, or the preset's)"
    )
    train.add_argument(
        "--batch-size", type=int_at_least(1), default=d.batch_size, help=f"mini-batch size (default: {d.batch_size})"
    )
    train.add_argument(
        "--eta", type=_float_in(0.0, float("inf"), low_open=True, what="a finite number > 0"), default=None,
        help=f"learning rate (default: {d.eta:g}, or the preset's)",
    )  # fmt: skip
    train.add_argument("--seed", type=int_at_least(0), default=None, help="random seed, >= 0 (default: fresh)")
    train.add_argument(
        "--train-size", type=int_at_least(1), default=None,
        help="train on the first N training images; more than the data has is an error "
        "(default: 50000, the book's split; 250000 for expanded presets)",
    )  # fmt: skip
    train.add_argument(
        "--test-size", type=int_at_least(1), default=None,
        help=f"evaluate on the first N images; more than the data has is an error (default: {d.test_size})",
    )  # fmt: skip
    train.add_argument(
        "--eval-data", choices=("test", "validation"), default=d.eval_data,
        help="evaluate on the test set, or on the validation set (the last 10,000 training images)",
    )  # fmt: skip
    _add_chapter3_options(train)
    ch6 = train.add_argument_group("chapter 6 (network3)")
    ch6.add_argument(
        "--preset", choices=tuple(PRESETS), default=None,
        help="train one of the book's chapter-6 networks with its eta, lambda and epochs (float32 unless --dtype); "
        "evaluates on the validation set, reports the test accuracy of the best epoch",
    )  # fmt: skip
    _add_data_options(train)
    out = train.add_argument_group("outputs (checked before training starts, links resolved)")
    out.add_argument("--save", type=Path, default=None, help="save the model to PATH (.npz or .json)")
    out.add_argument("--history", type=Path, default=None, help="write per-epoch history to PATH (.json or .csv)")
    out.add_argument("--plot", type=Path, default=None, help="draw the accuracy/cost curves to PATH (.png)")
    out.add_argument(
        "--checkpoint", type=Path, default=None, metavar="DIR",
        help="after every epoch, keep in DIR/checkpoint.npz everything needed to continue the run",
    )  # fmt: skip
    out.add_argument(
        "--resume", dest="resume_dir", type=Path, default=None, metavar="DIR",
        help="continue the run checkpointed in DIR (same options; keeps checkpointing there); "
        "the result is bit for bit that of an uninterrupted run",
    )  # fmt: skip
    train.add_argument("--quiet", action="store_true", help="print only the final summary")


def _add_predict_options(predict: argparse.ArgumentParser) -> None:
    predict.add_argument("--model", type=Path, required=True, help="model file (.npz or .json)")
    predict.add_argument(
        "images", type=Path, nargs="+", metavar="IMAGE",
        help="image files (any size; greyscaled, cropped to the digit and centred as MNIST's digits are)",
    )  # fmt: skip
    predict.add_argument(
        "--raw", action="store_true", help="only greyscale and resize to 28x28 (no cropping or centring)"
    )
    predict.add_argument(
        "--min-confidence", type=_float_in(0.0, 1.0, low_open=False, what="a number in [0, 1)"), default=0.5,
        metavar="P", help="warn when the top class's share of the outputs is below P (default: 0.5)",
    )  # fmt: skip
    _add_backend_options(predict, "the model file's")


def build_parser() -> argparse.ArgumentParser:
    """The ``portable-nn`` argument parser."""
    parser = argparse.ArgumentParser(prog="portable-nn", description=DESCRIPTION)
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
    _add_predict_options(predict)
    plot = commands.add_parser(
        "plot", help="draw a history file's accuracy and cost curves, or a sweep directory's results, to a PNG"
    )
    plot.add_argument(
        "history", type=Path, help="history file from train --history (.json or .csv), or a sweep --out directory"
    )
    plot.add_argument("-o", "--output", type=Path, required=True, help="PNG to write")

    from ..sweep_cli import add_sweep_parser  # imports neither Dask nor Optuna

    add_sweep_parser(commands)
    for sub in commands.choices.values():
        _add_common(sub)
    return parser
