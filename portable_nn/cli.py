"""The ``portable-nn`` command: ``train``, ``evaluate``, ``predict``, ``plot``.

``portable-nn train`` with no options reproduces the book's chapter-1 run:
``[784, 30, 10]``, 30 epochs, mini-batches of 10, eta 3.0, on the first 50,000
MNIST training images, evaluated on the 10,000 test images after each epoch.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from . import __version__
from .backends import KNOWN_BACKENDS, BackendUnavailableError
from .download import DownloadError
from .history import history_rows, plot_history, read_history, write_history
from .idx import IDXFormatError
from .mnist import DATA_ENV, load_mnist
from .network import EpochResult, Network
from .serialization import ModelFileError, load

#: Errors that end a command with a one-line message and exit status 1.
USER_ERRORS = (BackendUnavailableError, DownloadError, IDXFormatError, ModelFileError, FileNotFoundError, ImportError)


def _sizes(text: str) -> list[int]:
    try:
        sizes = [int(part) for part in text.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated ints like 784,30,10; got {text!r}") from None
    if len(sizes) < 2 or min(sizes) < 1:
        raise argparse.ArgumentTypeError(f"expected at least 2 positive ints like 784,30,10; got {text!r}")
    if sizes[0] != 784 or sizes[-1] != 10:
        raise argparse.ArgumentTypeError(f"MNIST needs 784 inputs and 10 outputs (784,...,10); got {text!r}")
    return sizes


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive int; got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive int; got {text!r}")
    return value


def _non_negative_int(text: str) -> int:
    return 0 if text.strip() == "0" else _positive_int(text)


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a finite number > 0; got {text!r}") from None
    if not (0.0 < value < float("inf")):
        raise argparse.ArgumentTypeError(f"expected a finite number > 0; got {text!r}")
    return value


def _add_data_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--data-dir",
        type=Path,
        default=None,
        help=f"directory of the four MNIST IDX files (default: ${DATA_ENV}, then ~/.cache/portable_nn/mnist)",
    )
    parser.add_argument("--no-download", action="store_true", help="fail instead of downloading missing files")


def _add_backend_options(parser: argparse.ArgumentParser, dtype_default: str | None) -> None:
    parser.add_argument("--backend", default="numpy", choices=KNOWN_BACKENDS, help="array library (default: numpy)")
    parser.add_argument(
        "--dtype",
        default=dtype_default,
        choices=("float32", "float64"),
        help=f"floating-point type (default: {dtype_default or 'the model file'})",
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="portable-nn", description=__doc__.split("\n\n")[0])
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    train = commands.add_parser("train", help="train on MNIST (the book's chapter-1 run by default)")
    _add_backend_options(train, "float64")
    train.add_argument("--sizes", type=_sizes, default=[784, 30, 10], help="layer sizes (default: 784,30,10)")
    train.add_argument("--epochs", type=_non_negative_int, default=30, help="epochs (default: 30)")
    train.add_argument("--batch-size", type=_positive_int, default=10, help="mini-batch size (default: 10)")
    train.add_argument("--eta", type=_positive_float, default=3.0, help="learning rate (default: 3.0)")
    train.add_argument("--seed", type=int, default=None, help="random seed (default: fresh entropy)")
    train.add_argument(
        "--train-size",
        type=_positive_int,
        default=50_000,
        help="train on the first N training images (default: 50000, the book's split)",
    )
    train.add_argument(
        "--test-size", type=_positive_int, default=10_000, help="evaluate on the first N test images (default: 10000)"
    )
    _add_data_options(train)
    train.add_argument("--save", type=Path, default=None, help="save the model to PATH (.npz or .json)")
    train.add_argument("--history", type=Path, default=None, help="write per-epoch history to PATH (.json or .csv)")
    train.add_argument("--plot", type=Path, default=None, help="draw the accuracy curve to PATH (.png)")
    train.add_argument("--quiet", action="store_true", help="print only the final summary")

    evaluate = commands.add_parser("evaluate", help="accuracy of a saved model on the MNIST test set")
    evaluate.add_argument("--model", type=Path, required=True, help="model file (.npz or .json)")
    _add_backend_options(evaluate, None)
    _add_data_options(evaluate)

    predict = commands.add_parser("predict", help="classify digit images with a saved model (needs Pillow)")
    predict.add_argument("--model", type=Path, required=True, help="model file (.npz or .json)")
    predict.add_argument("images", type=Path, nargs="+", metavar="IMAGE", help="image files (any size; greyscaled)")
    _add_backend_options(predict, None)

    plot = commands.add_parser("plot", help="draw a history file's accuracy curve to a PNG")
    plot.add_argument("history", type=Path, help="history file from train --history (.json or .csv)")
    plot.add_argument("-o", "--output", type=Path, required=True, help="PNG to write")
    return parser


class _EpochPrinter:
    """Per-epoch lines, an optional tqdm bar within each epoch, and the final summary."""

    def __init__(self, net: Network, epochs: int, n_train: int, quiet: bool) -> None:
        self.net, self.epochs, self.n_train, self.quiet = net, epochs, n_train, quiet
        self.history: list[EpochResult] = []
        self.bar = None
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
        if self.bar is not None:
            self.bar.close()
            self.bar = None
        self.history.append(result)
        if not self.quiet:
            print(
                f"epoch {result.epoch + 1}/{self.epochs}: {result.correct} / {result.n_test} "
                f"({100 * result.accuracy:.2f}%) {result.seconds:.2f} s {self.net.backend.describe()}",
                flush=True,
            )
        if len(self.history) < self.epochs:
            self.start_epoch()

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()

    def summary(self) -> str:
        if not self.history:
            return "no epoch completed"
        best = max(self.history, key=lambda r: r.correct)
        last = self.history[-1]
        total = sum(r.seconds for r in self.history)
        return (
            f"final: {last.correct} / {last.n_test} ({100 * last.accuracy:.2f}%) after epoch {last.epoch + 1}; "
            f"best: epoch {best.epoch + 1}, {best.correct} / {best.n_test} ({100 * best.accuracy:.2f}%); "
            f"{len(self.history)} epoch(s) in {total:.1f} s on {self.net.backend.describe()}"
        )


def _tqdm():
    try:
        from tqdm import tqdm
    except ImportError:
        return None
    return tqdm


def _save_outputs(args: argparse.Namespace, net: Network, history: list[EpochResult]) -> None:
    if args.save is not None:
        print(f"saved model to {net.save(args.save)}")
    if args.history is not None:
        print(f"wrote history to {write_history(history, args.history)}")
    if args.plot is not None and history:
        print(f"wrote plot to {plot_history(history_rows(history), args.plot, str(net))}")


def _check_output_paths(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    """Reject bad output paths before hours of training, not after."""
    for option, path, suffixes in (
        ("--save", args.save, (".npz", ".json")),
        ("--history", args.history, (".json", ".csv")),
        ("--plot", args.plot, (".png",)),
    ):
        if path is None:
            continue
        if path.suffix.lower() not in suffixes:
            parser.error(f"{option} must end in {' or '.join(suffixes)}; got {str(path)!r}")
        if not path.parent.is_dir():
            parser.error(f"{option}: directory {str(path.parent)!r} does not exist")


def cmd_train(parser: argparse.ArgumentParser, args: argparse.Namespace) -> int:
    _check_output_paths(parser, args)
    net = Network(args.sizes, args.backend, dtype=args.dtype, seed=args.seed)
    (train_x, train_y), (test_x, test_y) = load_mnist(args.data_dir, download=not args.no_download, dtype=args.dtype)
    train = (train_x[: args.train_size], train_y[: args.train_size])
    test = (test_x[: args.test_size], test_y[: args.test_size])
    if not args.quiet:
        print(
            f"training {net.sizes} on {net.backend.describe()}, {net.dtype}: {len(train[1])} images, "
            f"{args.epochs} epochs, batch {args.batch_size}, eta {args.eta}; testing on {len(test[1])}",
            flush=True,
        )
    printer = _EpochPrinter(net, args.epochs, len(train[1]), args.quiet)
    start = time.perf_counter()
    try:
        if args.epochs:
            printer.start_epoch()
        net.SGD(
            train,
            args.epochs,
            args.batch_size,
            args.eta,
            test_data=test,
            quiet=True,
            on_batch=printer.on_batch,
            on_epoch=printer.on_epoch,
        )
    except KeyboardInterrupt:
        printer.close()
        print(
            f"\ninterrupted after {len(printer.history)} complete epoch(s), {time.perf_counter() - start:.1f} s",
            file=sys.stderr,
        )
        print(printer.summary())
        _save_outputs(args, net, printer.history)
        return 130
    print(printer.summary())
    _save_outputs(args, net, printer.history)
    return 0


def cmd_evaluate(args: argparse.Namespace) -> int:
    net = load(args.model, args.backend, dtype=args.dtype)
    _, (test_x, test_y) = load_mnist(args.data_dir, download=not args.no_download, dtype=net.dtype)
    correct = net.evaluate((test_x, test_y))
    print(f"{correct} / {len(test_y)} ({100 * correct / len(test_y):.2f}%) {args.model} on {net.backend.describe()}")
    return 0


def read_digit_image(path: Path):
    """An image file as a ``(784,)`` float64 vector in MNIST's style (white digit on black)."""
    import numpy as np

    try:
        from PIL import Image
    except ImportError as exc:
        raise ImportError('predict needs Pillow: pip install "portable-nn[images]"') from exc
    with Image.open(path) as image:
        grey = np.asarray(image.convert("L").resize((28, 28)), dtype=np.float64) / 255.0
    if grey.mean() > 0.5:  # dark digit on a light background: invert to MNIST's convention
        grey = 1.0 - grey
    return grey.reshape(784)


def cmd_predict(args: argparse.Namespace) -> int:
    import numpy as np

    from .backends import to_numpy

    net = load(args.model, args.backend, dtype=args.dtype)
    if net.sizes[0] != 784:
        raise ModelFileError(f"{args.model}: predict needs a model with 784 inputs; it has {net.sizes[0]}")
    try:
        images = np.stack([read_digit_image(path) for path in args.images])
    except OSError as exc:
        raise FileNotFoundError(f"cannot read image: {exc}") from exc
    outputs = to_numpy(net.feedforward(images.T))
    for path, column in zip(args.images, outputs.T):
        print(f"{path}: {int(np.argmax(column))} (activation {float(np.max(column)):.3f})")
    return 0


def cmd_plot(args: argparse.Namespace) -> int:
    print(f"wrote plot to {plot_history(read_history(args.history), args.output, args.history.name)}")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        if args.command == "train":
            return cmd_train(parser, args)
        if args.command == "evaluate":
            return cmd_evaluate(args)
        if args.command == "predict":
            return cmd_predict(args)
        return cmd_plot(args)
    except USER_ERRORS as exc:
        print(f"portable-nn {args.command}: error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"portable-nn {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
