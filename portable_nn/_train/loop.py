"""The epoch loop shared by every network: order, per-batch take, step, epoch-end bookkeeping.

Per ``SGD`` call the data is resident on the device (:mod:`portable_nn._data.forms`).
Per epoch, :func:`sgd` draws the order on the host from the network's NumPy
generator (so a seed gives the same order on every backend), moves it to the
device once, and runs the compiled step over consecutive slices of it: each
mini-batch's rows are taken from the resident data by index, so no
epoch-wide copy of the data set is ever made.  Where the backend compiles
(JAX), the full mini-batches run as ~50 compiled chunks per epoch
(:mod:`portable_nn._backend.compiled`), so progress (``on_batch``) and Ctrl-C are
seen between chunks.  At the end of an epoch one
tiny host copy synchronises the device (honest timing) and checks the weights
are finite; then the facade's ``report`` evaluates and prints, and the stop
rules (early stopping, the learning-rate schedule) decide what happens next.

The network's parameters are replaced only at the end of an epoch: an
exception or Ctrl-C in the middle of one leaves the network exactly as it was
after the last completed epoch.
"""

from __future__ import annotations

import math
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from .._backend.backends import host_view
from .._backend.compiled import chunk_size, wait
from .._base.types import Namespace
from .._data.forms import DeviceData
from .._math import initializers
from .._math.updates import State, UpdateRule
from .checkpoint import Checkpoint
from .protocol import Epoch, Step, Trainable


@dataclass(frozen=True)
class EpochResult:
    """One epoch of ``SGD``.

    ``seconds``: wall time of the epoch's training (order and every mini-batch
    step, synchronised with the device), evaluation excluded.  ``correct`` and
    ``n_test`` count the evaluation (test) data; the other fields are ``None``
    unless monitored.  ``eta`` is the learning rate the epoch ran with.

    ``epoch`` is the 0-based index of the epoch (the book's ``Epoch 0: ...``
    lines print it as it is); everything else a user sees numbers epochs from
    1 (``epoch + 1``): the CLI's ``epoch 1/30`` lines, history files, a
    sweep's ``trials.jsonl`` and tables, the divergence warning.
    """

    epoch: int
    seconds: float
    correct: int | None = None
    n_test: int | None = None
    evaluation_cost: float | None = None
    training_cost: float | None = None
    training_correct: int | None = None
    n_train: int | None = None
    eta: float | None = None

    @property
    def accuracy(self) -> float | None:
        """``correct / n_test``, or ``None`` without evaluation data."""
        return None if self.correct is None or not self.n_test else self.correct / self.n_test

    @property
    def training_accuracy(self) -> float | None:
        """``training_correct / n_train``, or ``None`` when not monitored."""
        return None if self.training_correct is None or not self.n_train else self.training_correct / self.n_train


#: Fraction of saturated output activations (on the evaluation data) taken as divergence.
SATURATED = 0.99


#: The book's chapter-1 rule: no decay, no momentum.
PLAIN_SGD = UpdateRule()


class Plateau:
    """Counts epochs without a new best value (of evaluation accuracy)."""

    def __init__(self) -> None:
        self.best = -math.inf
        self.since = 0

    def update(self, value: float) -> int:
        """Record ``value``; returns how many epochs in a row brought no improvement."""
        if value > self.best:
            self.best, self.since = value, 0
        else:
            self.since += 1
        return self.since


@dataclass(frozen=True)
class StopRules:
    """Chapter 3's rules, both driven by the evaluation accuracy.

    ``early_stopping_n``: stop after this many epochs without a new best (0: off).
    ``schedule_n``: halve ``eta`` after this many epochs without a new best and
    stop once it has fallen to ``eta/128`` (0: off).
    """

    early_stopping_n: int = 0
    schedule_n: int = 0


class _Runner:
    """The compiled step (and, where the backend compiles, the compiled epoch) for one ``SGD`` call."""

    def __init__(self, net: Trainable, train: DeviceData, batch: int, compiled: tuple[Step, Epoch]) -> None:
        self.net, self.train, self.batch = net, train, batch
        self.step, self.epoch = compiled
        self._pace: float | None = None  # seconds per compiled mini-batch, once measured
        self._last_done: float | None = None

    def run(self, state: State, order: Any, eta: float, on_batch: Callable[[int], None] | None) -> State:
        """One epoch over ``order`` (``(n,)`` indices on the device) from ``state``; returns the new state.

        Eager backends: one step per mini-batch, ``on_batch`` after each.
        Compiled backends: the full mini-batches in :func:`~portable_nn._backend.compiled.chunk_size` chunks,
        one compiled call each, ``on_batch`` once a chunk has finished (one chunk stays queued
        behind it, so the device never waits for Python); then the last, shorter mini-batch.
        """
        n, m, data = self.train.n, self.batch, self.train
        full = n - n % m
        if self.epoch is not None and full:
            rows = self.net.backend.xp.reshape(order if full == n else order[:full], (full // m, m))
            state = self._chunks(state, rows, eta, on_batch)
            start = full
        else:
            start = 0
        for k in range(start, n, m):
            stop = min(k + m, n)  # out-of-bounds slice stops are not standard
            state = self.step(state, data.inputs, data.targets, order[k:stop], self.net.ones_column(stop - k), eta)
            if on_batch is not None:
                on_batch(stop - k)
        return state

    def _chunks(self, state: State, rows: Any, eta: float, on_batch: Callable[[int], None] | None) -> State:
        """The compiled chunks over ``rows`` (``(n_batches, m)``), reporting each once it is computed.

        Chunk sizes follow the pace measured so far (:func:`~portable_nn._backend.compiled.chunk_size`);
        they change only how often Python looks in, never the result.
        """
        n_batches, m = rows.shape
        data, ones, epoch = self.train, self.net.ones_column(m), self.epoch
        assert epoch is not None  # run() calls this only where the backend compiles
        queued: tuple[State, int] | None = None
        self._last_done = None
        start = 0
        while start < n_batches:
            stop = min(start + chunk_size(n_batches, self._pace), n_batches)
            state = epoch(state, data.inputs, data.targets, rows, start, stop, ones, eta)
            if queued is not None:
                self._finished(*queued, m, on_batch)  # KeyboardInterrupt lands here, between chunks
            queued, start = (state, stop - start), stop
        if queued is not None:
            self._finished(*queued, m, on_batch)
        return state

    def _finished(self, state: State, batches: int, m: int, on_batch: Callable[[int], None] | None) -> None:
        """Wait for the chunk that produced ``state``, note the pace, report its ``batches * m`` examples."""
        wait(self.net.backend, state)
        now = time.perf_counter()
        if self._last_done is not None:  # the device went from the previous chunk straight to this one
            self._pace = (now - self._last_done) / batches
        self._last_done = now
        if on_batch is not None:
            on_batch(batches * m)


def _all_finite(xp: Namespace, state: State) -> bool:
    """One host copy: synchronises the device and tells whether every parameter is finite."""
    flags = [xp.all(xp.isfinite(p)) for p in (*state.weights, *state.biases)]
    total = flags[0]
    for flag in flags[1:]:
        total = xp.logical_and(total, flag)
    return bool(host_view(total))


class _FloatingPointErrors:
    """NumPy's floating-point errors (overflow, invalid value, divide by zero) recorded, not printed.

    ``with errors:`` routes them to this object for the block (``np.errstate``:
    this thread only, restored on exit; underflow stays ignored).  Raw NumPy
    warnings would name a line inside the package; :func:`sgd` turns the first
    one into its own divergence warning instead.  Only NumPy-backed namespaces
    (NumPy, array-api-strict) report such errors.
    """

    def __init__(self) -> None:
        self.first: str | None = None
        self._state: Any = None

    def __call__(self, kind: str, flag: int) -> None:
        if self.first is None:
            self.first = kind

    def __enter__(self) -> None:
        self._state = np.errstate(over="call", invalid="call", divide="call", under="ignore", call=self)
        self._state.__enter__()

    def __exit__(self, *exc: object) -> None:
        self._state.__exit__(*exc)


def _diverged(epoch: int, eta: float, reason: str) -> bool:
    """Warn (``RuntimeWarning``, at the caller of ``SGD``) that training diverged; returns True.

    ``epoch`` is the 0-based index; the message numbers epochs from 1, as every line a user sees.
    """
    warnings.warn(
        f"training diverged in epoch {epoch + 1}: {reason}; lower eta (now {eta:g})", RuntimeWarning, stacklevel=4
    )
    return True


def sgd(
    net: Trainable,
    train: DeviceData,
    epochs: int,
    mini_batch_size: int,
    eta: float,
    *,
    report: Callable[[int, float, float], EpochResult],
    rule: UpdateRule = PLAIN_SGD,
    rules: StopRules = StopRules(),
    on_batch: Callable[[int], None] | None = None,
    on_epoch: Callable[[EpochResult], None] | None = None,
    before_epoch: Callable[[int], DeviceData | None] | None = None,
    checkpoint: Checkpoint | None = None,
) -> list[EpochResult]:
    """Run up to ``epochs`` epochs of mini-batch SGD on resident data; returns one result per epoch.

    ``report(epoch, seconds, eta)`` is called after each epoch, once the
    network holds that epoch's parameters; it evaluates, prints and returns
    the :class:`EpochResult`.  ``on_batch(m)`` is called with the number of
    examples done: after each mini-batch on eager backends (once it is queued;
    it must not read device arrays), after each compiled chunk of mini-batches
    once it is computed on JAX (~2% of an epoch); ``on_epoch(result)`` after
    each epoch.  A ``KeyboardInterrupt`` (or any exception) raised in
    ``on_batch`` or between mini-batches or chunks leaves the network as after
    the last completed epoch.  ``before_epoch(j)``, if
    given, runs at the start of epoch ``j`` (its time counts in the epoch's
    ``seconds``, before the order is drawn) and may return the training data
    to use from then on (same ``n``; e.g. ``network3`` attaching the epoch's
    dropout masks to the targets).

    Warns once (``RuntimeWarning``, naming ``eta``) if training diverges: the
    weights become non-finite, or (when the facade evaluates) at least 99% of
    the output activations are saturated at 0 or 1, or the NumPy arithmetic of
    training or evaluation overflowed or produced an invalid value (those
    NumPy warnings themselves are not shown).

    ``checkpoint`` (:class:`~portable_nn._train.checkpoint.Checkpoint`): when it
    resumes, the loop starts from its parameters, velocities, generator state,
    eta, stop-rule counters and history; after every epoch (once the stop rules
    have run, before ``on_epoch``) it is written again.
    """
    compiled = net.training_step(rule, train.divisor)
    runner = _Runner(net, train, mini_batch_size, compiled)
    backend = net.backend
    history: list[EpochResult] = []
    plateau = Plateau()
    eta0, warned, first = eta, False, 0
    if checkpoint is not None and checkpoint.progress is not None:
        checkpoint.restore(net)
        progress = checkpoint.progress
        history, first, eta = checkpoint.results(), progress.epoch, progress.eta
        plateau.best, plateau.since = progress.best, progress.since
        if progress.stopped:
            return history
    for j in range(first, epochs):
        start = time.perf_counter()
        if before_epoch is not None:
            fresh = before_epoch(j)
            if fresh is not None:
                runner.train = fresh
        order = backend.asarray(initializers.permutation(net.random_source, train.n), dtype=backend.index_dtype)
        errors = _FloatingPointErrors()
        with errors:
            state = runner.run(net.training_state(rule.momentum), order, eta, on_batch)
        finite = _all_finite(backend.xp, state)
        seconds = time.perf_counter() - start
        net.set_training_state(state)
        if not finite and not warned:
            warned = _diverged(j, eta, "the weights are no longer finite")
        with errors:
            result = report(j, seconds, eta)
        saturation = net.output_saturation if result.correct is not None else 0.0
        if saturation >= SATURATED and not warned:
            warned = _diverged(j, eta, f"{100 * saturation:.1f}% of the output activations are saturated at 0 or 1")
        if errors.first is not None and not warned:
            warned = _diverged(j, eta, f"the arithmetic hit a floating-point {errors.first}")
        history.append(result)
        eta, stop = _apply_rules(rules, plateau, result, eta, eta0)
        if checkpoint is not None:
            checkpoint.save(
                state, net, epoch=j + 1, eta=eta, best=plateau.best, since=plateau.since, stopped=stop, history=history
            )
        if on_epoch is not None:
            on_epoch(result)
        if stop:
            break
    return history


def _apply_rules(
    rules: StopRules, plateau: Plateau, result: EpochResult, eta: float, eta0: float
) -> tuple[float, bool]:
    """The stop rules after one epoch: returns the next epoch's ``eta`` and whether to stop."""
    if result.correct is None or not (rules.early_stopping_n or rules.schedule_n):
        return eta, False
    since = plateau.update(result.correct)
    if rules.early_stopping_n and since >= rules.early_stopping_n:
        return eta, True
    if rules.schedule_n and since >= rules.schedule_n:
        eta /= 2.0
        plateau.since = 0
        return eta, eta <= eta0 / 128.0
    return eta, False
