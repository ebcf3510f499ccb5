"""``portable-nn train``: check everything, load the data, train, write the outputs, then say what happened.

The order is what keeps a trained model safe: every output is checked (links
resolved) and the network's size and work are checked before any data is
read; after training, the files are written *before* the final lines are
printed (a closed stdout or stderr only silences the printing); the final
message says what the files hold only after they are written.
"""

from __future__ import annotations

import argparse
import time
import warnings
from pathlib import Path
from typing import Any

from .._base.atomic import OutputPathError, check_writable
from .._data.forms import Dataset
from .._data.mnist import FILES, load_mnist, resolve_data_dir
from .._io.serialization import json_problem
from .._math import initializers
from .._train import checkpoint
from .._train.loop import EpochResult
from ..history import history_rows, plot_history, write_history
from ..network2 import Network
from ..network3 import Network3EpochResult, NetworkSpec, load_expanded_training_data
from .common import CommandError, data_directory, say, warn
from .config import BOOK_TRAIN, EXPANDED_TRAIN, RunConfig, check_network_size, config_from_args
from .outputs import WriteReport, Writers, check_outputs, check_space, write_outputs
from .printer import EpochPrinter
from .signals import StopRequest


# -- data -------------------------------------------------------------------------------------------------
def _mnist_inputs(config: RunConfig) -> list[Path]:
    directory = resolve_data_dir(config.data_dir)
    return [directory / (stem + suffix) for stem in FILES.values() for suffix in (".gz", "")]


def _take(x: Any, y: Any, n: int | None, what: str, option: str, given: bool, config: RunConfig) -> Dataset:
    """The first ``n`` of ``(x, y)``; more than there are is an error when ``option`` was given."""
    if n is not None and n > len(y) and given:
        raise CommandError(
            f"{option} {n}: the {what} has only {len(y):,} images in {resolve_data_dir(config.data_dir)}", 2
        )
    data = Dataset(x[:n], y[:n], divisor=255.0)
    if data.n == 0:
        raise CommandError(f"{resolve_data_dir(config.data_dir)}: the MNIST {what} is empty")
    return data


def _load_mnist(config: RunConfig) -> tuple[tuple[Any, Any], tuple[Any, Any]]:
    """MNIST as uint8; a missing ``--data-dir`` is created only with ``--download`` (and removed if loading fails)."""
    with data_directory(config.data_dir, download=config.download, create=config.create_data_dir):
        return load_mnist(config.data_dir, download=config.download, dtype="uint8")


def training_data(config: RunConfig) -> tuple[Dataset, Dataset]:
    """Training data (the first ``train_size`` of the book's 50,000) and the evaluation set (test or validation)."""
    (train_x, train_y), (test_x, test_y) = _load_mnist(config)
    given = config.train_size is not None
    size = config.train_size if given else BOOK_TRAIN
    validation = config.eval_data == "validation"
    pool_x, pool_y = (train_x[:BOOK_TRAIN], train_y[:BOOK_TRAIN]) if validation else (train_x, train_y)
    train = _take(pool_x, pool_y, size, "training set", "--train-size", given, config)
    if validation:
        evaluation = _take(
            train_x[BOOK_TRAIN:], train_y[BOOK_TRAIN:], config.test_size, "validation set", "--test-size",
            config.test_size_given, config,
        )  # fmt: skip
    else:
        evaluation = _take(test_x, test_y, config.test_size, "test set", "--test-size", config.test_size_given, config)
    return train, evaluation


def preset_data(config: RunConfig, spec: NetworkSpec) -> tuple[Dataset, Dataset, Dataset]:
    """Training (the book's 50,000, or the 250,000 expanded), validation (the last 10,000) and test data."""
    (train_x, train_y), (test_x, test_y) = _load_mnist(config)
    given = config.train_size is not None
    if spec.expanded:
        if len(train_y) < BOOK_TRAIN:
            raise CommandError(
                f"--preset {spec.name} expands the book's {BOOK_TRAIN:,} training images; "
                f"{resolve_data_dir(config.data_dir)} has only {len(train_y):,} (choose a preset without -expanded)"
            )
        expanded = load_expanded_training_data(config.data_dir)
        train = _take(
            expanded.inputs, expanded.labels, config.train_size or EXPANDED_TRAIN, "expanded training set",
            "--train-size", given, config,
        )  # fmt: skip
    else:
        size = config.train_size if given else BOOK_TRAIN
        train = _take(train_x[:BOOK_TRAIN], train_y[:BOOK_TRAIN], size, "training set", "--train-size", given, config)
    validation = _take(
        train_x[BOOK_TRAIN:], train_y[BOOK_TRAIN:], config.test_size, "validation set", "--test-size",
        config.test_size_given, config,
    )  # fmt: skip
    test = _take(test_x, test_y, config.test_size, "test set", "--test-size", config.test_size_given, config)
    return train, validation, test


# -- the network: drawn once ------------------------------------------------------------------------------
def build_network(config: RunConfig) -> Network:
    """The chapter-1/3 network of ``config``, its weights drawn once from ``seed``'s generator.

    ``--init large`` draws N(0, 1) as chapter 1's ``Network(sizes, seed=s)``
    does, ``scaled`` N(0, 1/n_in) as ``network2.Network(sizes, seed=s)``; the
    same generator then shuffles the mini-batches, so ``portable-nn train
    --seed 0`` trains exactly the network ``Network([784, 30, 10], seed=0)``.
    """
    rng = initializers.make_rng(config.seed)
    draw = initializers.gaussian_layers if config.init == "large" else initializers.scaled_gaussian_layers
    biases, weights = draw(list(config.sizes), rng)
    return Network.from_arrays(
        weights, biases, config.backend, dtype=config.dtype, activation=config.activation, cost=config.network_cost,
        seed=rng,  # make_rng takes the source itself: the shuffles continue its stream
    )  # fmt: skip


def _settings_line(config: RunConfig, what: str, net: Any, train: Dataset, evaluation: Dataset, space: str) -> str:
    validation = " validation images" if config.eval_data == "validation" or config.preset else ""
    return (
        f"training {what} on {net.backend.describe()}, {net.dtype}: {train.n} images, "
        f"{config.epochs} epochs, batch {config.batch_size}, eta {config.eta}; testing on {evaluation.n}"
        f"{validation}{space}"
    )


# -- why a run stopped ------------------------------------------------------------------------------------
def stop_reason(config: RunConfig, history: list[EpochResult], interrupted: str | None, diverged: bool) -> str:
    """Why the run ended, in words (also written to the history file)."""
    if interrupted:
        return f"interrupted ({interrupted})"
    if diverged:
        return "diverged (see the warning; lower --eta)"
    if len(history) >= config.epochs:
        return f"all {config.epochs} epochs done"
    last = history[-1] if history else None
    if config.schedule and last is not None and last.eta is not None and last.eta <= config.eta / 64.0:
        return f"the learning-rate schedule reached eta/128 ({config.eta / 128:g}) after epoch {len(history)}"
    if config.early_stopping:
        return f"early stopping: no better evaluation accuracy in {config.early_stopping} epochs"
    return f"stopped after epoch {len(history)}"


# -- the command -----------------------------------------------------------------------------------------
def _prepare(config: RunConfig) -> tuple[Any, dict[str, Path], Dataset, Dataset, Dataset | None, str]:
    """Outputs checked, the network built and the data loaded, in that order; returns what training needs."""
    count = check_network_size(config)
    outputs = check_outputs(
        {"--save": config.save, "--history": config.history, "--plot": config.plot}, _mnist_inputs(config)
    )
    space = check_space(outputs, count, config.dtype)
    _check_checkpoint(config)
    spec = config.spec
    if spec is None:
        net: Any = build_network(config)
        problem = json_problem(net) if "--save" in outputs and outputs["--save"].suffix.lower() == ".json" else None
        if problem is not None:  # refused before training, not after it
            raise CommandError(f"--save {config.save}: {problem}", 2)
        train, evaluation = training_data(config)
        test = None
        what = f"{net.sizes}"
    else:
        net = spec.build(config.batch_size, xp=config.backend, dtype=config.dtype, seed=config.seed)
        train, evaluation, test = preset_data(config, spec)
        what = f"{spec.name} ({spec.description})"
    if not config.quiet:
        say(_settings_line(config, what, net, train, evaluation, space))
    return net, outputs, train, evaluation, test, what


def _check_checkpoint(config: RunConfig) -> None:
    """``--checkpoint``/``--resume DIR`` checked before any data is read: writable, and the file there to resume."""
    directory = config.checkpoint
    if directory is None:
        return
    flag = "--resume" if config.resume else "--checkpoint"
    if config.resume and not (directory / checkpoint.FILE).is_file():
        raise CommandError(f"--resume {directory}: no checkpoint there (run with --checkpoint {directory} first)", 2)
    try:
        check_writable(directory / checkpoint.FILE if directory.is_dir() else directory, f"{flag} directory")
    except OutputPathError as exc:
        raise CommandError(str(exc), 2) from exc


def _resume(config: RunConfig, net: Any, printer: EpochPrinter) -> None:
    """A ``--resume`` run: the checkpoint read and checked before any training; the printer starts where it ended.

    The network takes the checkpoint's parameters now, so that a run whose
    epochs were all done (or one interrupted before its next epoch) still
    saves them; ``SGD`` then checks the settings and continues.
    """
    if not config.resume or config.checkpoint is None:
        return
    path = config.checkpoint / checkpoint.FILE
    result_type = Network3EpochResult if config.preset is not None else EpochResult
    try:
        progress = checkpoint.read(path)
        printer.history = [result_type(**fields) for fields in progress.history]
    except (checkpoint.CheckpointError, checkpoint.CheckpointMismatchError, FileNotFoundError, TypeError) as exc:
        raise CommandError(f"--resume: {exc}", 2) from exc
    try:
        checkpoint.restore_parameters(net, progress, path)
    except checkpoint.CheckpointError:
        pass  # other layer sizes: SGD's settings check names the option that differs
    else:
        if printer.history:
            printer.committed = (printer.history[-1], net.training_state(False))
    if not config.quiet:
        done = len(printer.history)
        ahead = (
            f"continuing with epoch {done + 1}"
            if done < config.epochs and not progress.stopped
            else "the run had ended: nothing left to train"
        )
        say(f"resuming from {config.checkpoint}: {done} of {config.epochs} epochs done; {ahead}")


def _fit(config: RunConfig, net: Any, train: Dataset, evaluation: Dataset, test: Dataset | None, **hooks: Any) -> None:
    hooks.update(checkpoint=config.checkpoint, resume=config.resume)
    try:
        _fit_network(config, net, train, evaluation, test, **hooks)
    except (checkpoint.CheckpointError, checkpoint.CheckpointMismatchError) as exc:
        raise CommandError(f"--resume: {exc}", 2) from exc


def _fit_network(
    config: RunConfig, net: Any, train: Dataset, evaluation: Dataset, test: Dataset | None, **hooks: Any
) -> None:
    if config.preset is not None:
        net.SGD(
            train, config.epochs, config.batch_size, config.eta, evaluation, test, config.lmbda,
            mu=config.momentum, regularization=config.regularization, early_stopping_n=config.early_stopping,
            schedule_n=config.schedule, quiet=True, **hooks,
        )  # fmt: skip
    else:
        net.SGD(
            train, config.epochs, config.batch_size, config.eta, config.lmbda, evaluation,
            "evaluation-cost" in config.monitor, True, "training-cost" in config.monitor,
            "training-accuracy" in config.monitor, config.early_stopping,
            mu=config.momentum, regularization=config.regularization, schedule_n=config.schedule,
            quiet=True, **hooks,
        )  # fmt: skip


def _writers(config: RunConfig, net: Any, history: list[EpochResult], reason: str, what: str) -> Writers:
    settings = {**config.settings(), "network": what, "stopped": reason}
    title = f"{what}: eta {config.eta:g}, batch {config.batch_size}, lmbda {config.lmbda:g} ({reason})"
    return {
        "--save": ("model", net.save),
        "--history": ("history", lambda p: write_history(history, p, settings=settings)),
        "--plot": ("plot", lambda p: plot_history(history_rows(history), p, title)),
    }


def _train(config: RunConfig, stop: StopRequest) -> int:
    net, outputs, train, evaluation, test, what = _prepare(config)
    printer = EpochPrinter(net, config.epochs, train.n, config.quiet)
    _resume(config, net, printer)

    def on_batch(m: int) -> None:
        printer.on_batch(m)
        stop.check()

    start = time.perf_counter()
    interrupted = False
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", RuntimeWarning)
        try:
            stop.check()
            if config.epochs:
                printer.start_epoch()
            _fit(config, net, train, evaluation, test, on_batch=on_batch, on_epoch=printer.on_epoch)
        except KeyboardInterrupt:
            interrupted = True
        finally:
            printer.close()
    printer.restore_committed()
    name = (stop.signal_name or "SIGINT") if interrupted else None
    diverged = any("diverged" in str(w.message) for w in caught)
    reason = stop_reason(config, printer.history, name, diverged)
    report = write_outputs(outputs, _writers(config, net, printer.history, reason, what)) if printer.history else None
    # Everything is on disk: now say what happened (a terminal that went away only silences this).
    for warning in caught:
        warn(f"portable-nn train: warning: {warning.message} (--eta)")
    if interrupted:
        seconds = time.perf_counter() - start
        warn(f"\ninterrupted ({name}) after {len(printer.history)} complete epoch(s), {seconds:.1f} s")
    _print_summary(printer, test, reason, outputs, report)
    status = report.status if report is not None else 0
    return stop.status if interrupted or stop.signal_name or (report and report.interrupted) else status


def _print_summary(
    printer: EpochPrinter, test: Dataset | None, reason: str, outputs: dict[str, Path], report: WriteReport | None
) -> None:
    say(printer.summary() + (f"; {reason}" if printer.history else ""))
    best_test = getattr(printer.history[-1], "test_correct", None) if printer.history else None
    if best_test is not None and test is not None:
        say(f"test accuracy at the best validation epoch: {best_test} / {test.n} ({100 * best_test / test.n:.2f}%)")
    if report is None:
        if outputs:
            say("nothing written: no epoch completed (existing files are untouched)")
        return
    for line in report.errors:
        warn(line)
    for line in report.lines:
        say(line)
    if reason.startswith("interrupted") and report.written:
        epoch = printer.history[-1].epoch + 1
        if len(report.written) == len(outputs):
            say(f"the files hold the network as it was after epoch {epoch}, as summarised")
        else:
            names = ", ".join(str(outputs[option]) for option in report.written)
            say(f"only {names} written: it holds the network as it was after epoch {epoch}, as summarised")


def cmd_train(args: argparse.Namespace) -> int:
    """``portable-nn train``: 0 on success, 1 if an output could not be written, 128 + n after signal n."""
    stop = StopRequest()
    with stop.installed():  # from the start: a signal during the checks or loading also ends cleanly
        return _train(config_from_args(args), stop)
