"""Hyperparameter sweeps on Dask distributed, with Optuna choosing the trials and pruning them.

``run_sweep(space, ...)`` trains one network per *trial* (one setting of the
options in ``space``), each as one Dask task on a worker of a cluster: a
``LocalCluster`` of worker processes on this machine by default, or an existing
cluster given by the address of its scheduler.  Optuna chooses the settings
(``search="grid"``, ``"random"`` or ``"tpe"``) and, with ``prune=True``, stops
trials whose validation accuracy after an epoch is below the median of the
finished trials' accuracies after that epoch (:class:`optuna.pruners.MedianPruner`).

How the pieces fit
    * The Optuna study lives on the Dask scheduler
      (:class:`optuna_integration.DaskStorage`, an in-memory storage the
      scheduler serves), so the driver (``study.ask`` / ``study.tell``) and the
      trials on the workers (``trial.report`` / ``trial.should_prune`` once per
      epoch) share it without a database or a shared filesystem.
    * The driver keeps exactly one task in flight per worker thread and asks
      Optuna for the next setting only when a slot frees up, so TPE always
      conditions on every finished trial.
    * Each worker reads MNIST once (a per-process cache): either from
      ``data_dir`` (which must then be on a filesystem every worker sees) or,
      for a local cluster, from arrays the driver loads once and broadcasts
      through the scheduler (``client.scatter(..., broadcast=True)``).
    * Only the driver writes the results file, ``OUT/trials.jsonl``: one JSON
      object per finished trial, appended with a single ``os.write`` of the
      complete line on an ``O_APPEND`` descriptor and fsynced (see
      :func:`append_record`), the moment the trial's result arrives.
    * A restarted sweep with the same ``out`` reads that file and skips every
      setting already recorded (finished, pruned or failed), and gives the
      recorded trials to the new study so TPE and the pruner learn from them.

Determinism
    A trial's network is seeded with the sweep's ``seed`` (the same seed for
    every setting: common random numbers, so settings are compared on the
    same shuffles).  Its result depends only on its settings and that seed,
    not on the worker or on what else runs: :func:`train_trial` is the
    one function that trains, in-process or on a worker.

Faults
    A worker that dies mid-trial: the scheduler reschedules the task on
    another worker (up to ``distributed.scheduler.allowed-failures`` times,
    default 3) and the trial restarts from epoch 0 with the same seed;
    ``attempts`` in the record counts the starts.  An exception inside the
    training (including divergence, which :func:`train_trial` turns from
    ``RuntimeWarning`` into an error) is recorded as a failed trial with its
    error and the sweep goes on.  Other task errors are retried once by Dask
    (``retries=1``).  Ctrl-C cancels the running trials and returns the result
    with ``interrupted=True``; every finished trial is already on disk.

Nothing here imports Dask or Optuna at module import time: they are imported
when a sweep runs (``pip install "portable-nn[sweep]"``).
"""

from __future__ import annotations

import contextlib
import importlib
import itertools
import json
import math
import os
import socket
import sys
import time
import uuid
import warnings
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

import numpy as np

__all__ = [
    "DEFAULTS",
    "METRICS",
    "PARAMETERS",
    "SEARCHES",
    "ParamSpec",
    "SweepResult",
    "SweepSpecError",
    "append_record",
    "format_table",
    "grid_points",
    "parse_param",
    "parse_space",
    "read_records",
    "run_sweep",
    "train_trial",
    "worker_status",
]

#: Results file inside ``out``: one JSON object per finished trial.
RESULTS_FILE = "trials.jsonl"
#: The sweep's settings, rewritten at every start (for ``plot_sweep`` and for people).
MANIFEST_FILE = "sweep.json"
#: The chosen setting and its test accuracy.
CHOSEN_FILE = "chosen.json"
SEARCHES = ("grid", "random", "tpe")
METRICS = ("validation-accuracy", "best-validation-accuracy")

#: Every option a trial takes, with the chapter-3 defaults used when it is not in the space.
DEFAULTS: dict[str, Any] = {
    "model": "network2",
    "hidden": 30,
    "cost": "cross-entropy",
    "init": "default",
    "activation": "sigmoid",
    "eta": 0.5,
    "lmbda": 5.0,
    "mu": 0.0,
    "batch": 10,
    "epochs": 30,
    "backend": "numpy",
    "dtype": "float64",
}
#: Names accepted in ``--param NAME=...`` (aliases map to :data:`DEFAULTS` keys).
ALIASES = {
    "lambda": "lmbda",
    "mini_batch_size": "batch",
    "mini-batch-size": "batch",
    "batch-size": "batch",
    "batch_size": "batch",
    "hidden_sizes": "hidden",
    "sizes": "hidden",
}
_CHOICES: dict[str, tuple[str, ...]] = {
    "model": ("network", "network2"),
    "cost": ("cross-entropy", "quadratic", "log-likelihood"),
    "init": ("default", "large"),
    "activation": ("sigmoid", "tanh", "relu"),
    "backend": ("numpy", "cupy", "torch", "array_api_strict", "jax"),
    "dtype": ("float64", "float32"),
}
_FLOATS = {"eta": (0.0, False), "lmbda": (0.0, True), "mu": (0.0, True)}  # name: (lower bound, inclusive)
_INTS = {"batch": 1, "epochs": 1}
PARAMETERS = tuple(DEFAULTS)


class SweepSpecError(ValueError):
    """A search specification that cannot run; the message is one line naming the problem."""


# -- search space -------------------------------------------------------------------------


@dataclass(frozen=True)
class ParamSpec:
    """One dimension of the search space.

    ``choices`` for a list of values (every search), or ``low``/``high``
    (and ``log``) for a range (random and TPE only; ints for ``batch``,
    ``epochs`` and a one-layer ``hidden``).
    """

    name: str
    choices: tuple[Any, ...] | None = None
    low: float | None = None
    high: float | None = None
    log: bool = False
    integer: bool = False

    @property
    def is_range(self) -> bool:
        """Whether this is a ``low..high`` range rather than a list of values."""
        return self.choices is None

    def distribution(self) -> Any:
        """The Optuna distribution of this dimension."""
        import optuna

        if self.choices is not None:
            return optuna.distributions.CategoricalDistribution(list(self.choices))
        assert self.low is not None and self.high is not None
        if self.integer:
            return optuna.distributions.IntDistribution(int(self.low), int(self.high), log=self.log)
        return optuna.distributions.FloatDistribution(self.low, self.high, log=self.log)

    def contains(self, value: Any) -> bool:
        """Whether ``value`` (from a results file) lies in this dimension."""
        if self.choices is not None:
            return any(type(value) is type(c) and value == c for c in self.choices)
        assert self.low is not None and self.high is not None
        return isinstance(value, (int, float)) and self.low <= value <= self.high

    def describe(self) -> str:
        """The dimension as it would be written on the command line."""
        if self.choices is not None:
            return f"{self.name}=" + ",".join(str(c) for c in self.choices)
        kind = ":log" if self.log else ""
        return f"{self.name}={self.low:g}..{self.high:g}{kind}"


def _canonical_name(name: str) -> str:
    key = name.strip().lower()
    key = ALIASES.get(key, key)
    if key not in DEFAULTS:
        raise SweepSpecError(f"unknown parameter {name!r}; choose from {', '.join(PARAMETERS)}")
    return key


def _value(name: str, text: str) -> Any:
    """One value of parameter ``name`` from its text, checked."""
    text = text.strip()
    if name in _CHOICES:
        if text not in _CHOICES[name]:
            raise SweepSpecError(f"{name}={text!r}: choose from {', '.join(_CHOICES[name])}")
        return text
    if name == "hidden":
        try:
            layers = [int(part) for part in text.lower().split("x")]
        except ValueError:
            raise SweepSpecError(f"hidden={text!r}: expected a layer width like 30, or widths like 100x30") from None
        if min(layers) < 1:
            raise SweepSpecError(f"hidden={text!r}: layer widths must be positive")
        return layers[0] if len(layers) == 1 else "x".join(str(n) for n in layers)
    if name in _INTS:
        try:
            number = int(text)
        except ValueError:
            raise SweepSpecError(f"{name}={text!r}: expected an integer") from None
        if number < _INTS[name]:
            raise SweepSpecError(f"{name}={text!r}: must be at least {_INTS[name]}")
        return number
    lower, inclusive = _FLOATS[name]
    try:
        real = float(text)
    except ValueError:
        raise SweepSpecError(f"{name}={text!r}: expected a number") from None
    if not math.isfinite(real) or real < lower or (real == lower and not inclusive):
        bound = ">=" if inclusive else ">"
        raise SweepSpecError(f"{name}={text!r}: expected a finite number {bound} {lower:g}")
    if name == "mu" and real >= 1.0:
        raise SweepSpecError(f"mu={text!r}: momentum must be below 1")
    return real


def parse_param(text: str) -> ParamSpec:
    """One ``NAME=v1,v2,...`` or ``NAME=LOW..HIGH[:log]`` specification.

    Raises :class:`SweepSpecError` with a one-line message for anything
    malformed: no ``=``, an unknown name, an empty or repeated value, a
    value of the wrong type or out of range, a range over a categorical
    option or with ``LOW >= HIGH``.
    """
    if "=" not in text:
        raise SweepSpecError(f"--param {text!r}: expected NAME=v1,v2,... or NAME=LOW..HIGH[:log]")
    raw_name, _, rest = text.partition("=")
    name = _canonical_name(raw_name)
    rest = rest.strip()
    if not rest:
        raise SweepSpecError(f"--param {text!r}: no values after '='")
    if ".." in rest:
        body, _, kind = rest.partition(":")
        if kind not in ("", "log"):
            raise SweepSpecError(f"--param {text!r}: a range is LOW..HIGH or LOW..HIGH:log")
        if name in _CHOICES or (name == "hidden" and "x" in body.lower()):
            raise SweepSpecError(f"--param {text!r}: {name} takes a list of values, not a range")
        low_text, _, high_text = body.partition("..")
        low, high = _value(name, low_text), _value(name, high_text)
        if not low < high:
            raise SweepSpecError(f"--param {text!r}: LOW must be below HIGH")
        if kind == "log" and low <= 0:
            raise SweepSpecError(f"--param {text!r}: a log range needs LOW > 0")
        integer = name in _INTS or name == "hidden"
        return ParamSpec(name, low=float(low), high=float(high), log=kind == "log", integer=integer)
    parts = rest.split(",")
    if any(not p.strip() for p in parts):
        raise SweepSpecError(f"--param {text!r}: empty value in the list")
    values = tuple(_value(name, p) for p in parts)
    if len(set(values)) != len(values):
        raise SweepSpecError(f"--param {text!r}: a value is repeated")
    return ParamSpec(name, choices=values)


def parse_space(space: Sequence[str] | Mapping[str, Any]) -> dict[str, ParamSpec]:
    """The search space from ``--param`` strings or a mapping ``{name: values}``.

    A mapping's values are a list of values, a single value, a
    :class:`ParamSpec`, or a string in the command-line syntax after ``=``.
    Raises :class:`SweepSpecError` for a parameter given twice.
    """
    specs: list[ParamSpec] = []
    if isinstance(space, Mapping):
        for name, values in space.items():
            if isinstance(values, ParamSpec):
                specs.append(values)
            elif isinstance(values, str):
                specs.append(parse_param(f"{name}={values}"))
            elif isinstance(values, (list, tuple)):
                specs.append(parse_param(f"{name}=" + ",".join(str(v) for v in values)))
            else:
                specs.append(parse_param(f"{name}={values}"))
    else:
        specs = [parse_param(text) for text in space]
    result: dict[str, ParamSpec] = {}
    for spec in specs:
        if spec.name in result:
            raise SweepSpecError(f"parameter {spec.name} is given twice; put all its values in one --param")
        result[spec.name] = spec
    return result


def grid_points(space: Mapping[str, ParamSpec]) -> list[dict[str, Any]]:
    """Every combination of the listed values, in row-major order of the space (the first name varies slowest)."""
    ranges = [spec.name for spec in space.values() if spec.is_range]
    if ranges:
        raise SweepSpecError(f"grid search needs lists of values; {', '.join(ranges)} is a range (use random or tpe)")
    names = list(space)
    return [dict(zip(names, combo)) for combo in itertools.product(*(space[n].choices or () for n in names))]


# -- one trial ------------------------------------------------------------------------------


def trial_config(params: Mapping[str, Any], *, seed: int, train_size: int, validation_size: int) -> dict[str, Any]:
    """Every option of one training: defaults, overridden by ``params``, plus seed and data sizes."""
    config = dict(DEFAULTS)
    config.update(params)
    config.update(seed=int(seed), train_size=int(train_size), validation_size=int(validation_size))
    return config


def config_key(config: Mapping[str, Any]) -> str:
    """The identity of a training (what restart compares): canonical JSON of its config."""
    return json.dumps(dict(config), sort_keys=True, separators=(",", ":"))


def _sizes(hidden: Any) -> list[int]:
    layers = [int(part) for part in str(hidden).split("x")]
    return [784, *layers, 10]


def _hidden_value(value: Any) -> Any:
    return int(value) if isinstance(value, (int, np.integer)) else value


@dataclass
class TrialData:
    """The data one worker trains on: training, validation and (for the chosen setting) test sets."""

    train: Any
    validation: Any
    test: Any = None


def build_network(config: Mapping[str, Any]) -> Any:
    """The network of ``config`` (``model``, ``hidden``, ``cost``, ``init``, ``activation``, backend, seed)."""
    sizes = _sizes(config["hidden"])
    if config["model"] == "network":
        from .network import Network

        return Network(sizes, xp=config["backend"], dtype=config["dtype"], seed=config["seed"])
    from . import network2

    net = network2.Network(
        sizes,
        cost=config["cost"],
        xp=config["backend"],
        dtype=config["dtype"],
        seed=config["seed"],
        activation=config["activation"],
    )
    if config["init"] == "large":
        net.large_weight_initializer()
    return net


def train_trial(
    config: Mapping[str, Any],
    data: TrialData,
    *,
    on_epoch: Callable[[int, float], None] | None = None,
    test: bool = False,
    history: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """Train the network of ``config`` on ``data``; return its history (the one trainer of every sweep).

    ``on_epoch(epoch, validation_accuracy)`` runs after each epoch (the
    sweep reports to Optuna there; an exception it raises, such as
    ``optuna.TrialPruned``, stops the training and propagates).  A diverging
    training (non-finite weights) raises ``RuntimeWarning`` as an error.

    Returns ``{"history": [{"epoch", "correct", "n", "accuracy", "seconds"}, ...],
    "train_seconds"}`` and, when ``test`` is true, ``"test_correct"``,
    ``"n_test"`` and ``"test_accuracy"`` of the trained network on ``data.test``.
    ``history``: a list to fill epoch by epoch (so a caller keeps the epochs
    of a training that raised).  For ``model="network"`` (chapter 1) ``cost``, ``init``, ``activation``,
    ``lmbda`` and ``mu`` do not apply (quadratic cost, N(0, 1) weights).
    """
    net = build_network(config)
    history = [] if history is None else history

    def epoch_done(result: Any) -> None:
        history.append(
            {
                "epoch": int(result.epoch),
                "correct": int(result.correct),
                "n": int(result.n_test),
                "accuracy": float(result.accuracy),
                "seconds": float(result.seconds),
            }
        )
        if on_epoch is not None:
            on_epoch(int(result.epoch), float(result.accuracy))

    outcome: dict[str, Any] = {"history": history}
    with warnings.catch_warnings():
        warnings.filterwarnings("error", message="training diverged", category=RuntimeWarning)
        try:
            if config["model"] == "network":
                net.SGD(
                    data.train,
                    config["epochs"],
                    config["batch"],
                    config["eta"],
                    test_data=data.validation,
                    quiet=True,
                    on_epoch=epoch_done,
                )
            else:
                net.SGD(
                    data.train,
                    config["epochs"],
                    config["batch"],
                    config["eta"],
                    lmbda=config["lmbda"],
                    evaluation_data=data.validation,
                    monitor_evaluation_accuracy=True,
                    quiet=True,
                    mu=config["mu"],
                    on_epoch=epoch_done,
                )
        finally:
            outcome["train_seconds"] = sum(h["seconds"] for h in history)
    if test:
        correct = int(net.accuracy(data.test) if hasattr(net, "accuracy") else net.evaluate(data.test))
        outcome.update(test_correct=correct, n_test=len(data.test), test_accuracy=correct / len(data.test))
    return outcome


def summarize(history: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """Best and final validation accuracy (and the best epoch) of a history."""
    if not history:
        return {"best_accuracy": None, "best_epoch": None, "final_accuracy": None}
    best = max(history, key=lambda h: (h["accuracy"], -h["epoch"]))
    return {"best_accuracy": best["accuracy"], "best_epoch": best["epoch"], "final_accuracy": history[-1]["accuracy"]}


def metric_value(record: Mapping[str, Any], metric: str) -> float | None:
    """The value a sweep maximises, from a record: final or best validation accuracy."""
    return record.get("best_accuracy") if metric == "best-validation-accuracy" else record.get("final_accuracy")


# -- data on workers ------------------------------------------------------------------------

#: Per-process cache: one read of MNIST per worker process, keyed by source and sizes.
_DATA_CACHE: dict[str, TrialData] = {}


@dataclass(frozen=True)
class DataSource:
    """Where a worker gets its data: a directory it reads itself, or arrays already in its memory."""

    train_size: int
    validation_size: int
    test_size: int
    data_dir: str | None = None
    download: bool = True

    @property
    def token(self) -> str:
        """Cache key of this source in a worker process."""
        return json.dumps([self.data_dir, self.download, self.train_size, self.validation_size, self.test_size])


def load_arrays(source: DataSource) -> dict[str, np.ndarray]:
    """MNIST as uint8 arrays: the first ``train_size`` training images, validation from image 50,000, test."""
    from .mnist import load_mnist

    (train_x, train_y), (test_x, test_y) = load_mnist(source.data_dir, download=source.download, dtype="uint8")
    if source.train_size > 50_000 or source.validation_size > train_x.shape[0] - 50_000:
        raise SweepSpecError("train size is at most 50000 and validation size at most 10000 (the book's split)")
    if source.test_size > test_x.shape[0]:
        raise SweepSpecError(f"test size is at most {test_x.shape[0]}")
    val = slice(50_000, 50_000 + source.validation_size)
    return {
        "train_x": np.ascontiguousarray(train_x[: source.train_size]),
        "train_y": np.ascontiguousarray(train_y[: source.train_size]),
        "val_x": np.ascontiguousarray(train_x[val]),
        "val_y": np.ascontiguousarray(train_y[val]),
        "test_x": np.ascontiguousarray(test_x[: source.test_size]),
        "test_y": np.ascontiguousarray(test_y[: source.test_size]),
    }


def trial_data(arrays: Mapping[str, np.ndarray]) -> TrialData:
    """Wrap uint8 arrays as compact :class:`~portable_nn.dataforms.Dataset` objects (scaled on the device)."""
    from .dataforms import Dataset

    return TrialData(
        train=Dataset(arrays["train_x"], arrays["train_y"], divisor=255.0),
        validation=Dataset(arrays["val_x"], arrays["val_y"], divisor=255.0),
        test=Dataset(arrays["test_x"], arrays["test_y"], divisor=255.0),
    )


def _worker_data(source: DataSource, arrays: Mapping[str, np.ndarray] | None) -> tuple[TrialData, float]:
    """This process's data (cached: device copies made by one trial serve the next); seconds spent loading."""
    start = time.perf_counter()
    cached = _DATA_CACHE.get(source.token)
    if cached is None:
        cached = trial_data(arrays if arrays is not None else load_arrays(source))
        _DATA_CACHE[source.token] = cached
    return cached, time.perf_counter() - start


def worker_status() -> dict[str, Any]:
    """What this process holds for sweeps: run it on every worker with ``client.run(worker_status)``.

    ``data``: the data sets loaded (cache keys); ``blas_threads``: the
    threads each BLAS/OpenMP pool uses here (``threadpoolctl``), which for a
    local cluster is the per-worker limit.
    """
    status: dict[str, Any] = {"data": list(_DATA_CACHE), "pid": os.getpid()}
    try:
        threadpoolctl = importlib.import_module("threadpoolctl")
        status["blas_threads"] = {i["internal_api"]: i["num_threads"] for i in threadpoolctl.threadpool_info()}
    except ImportError:
        status["blas_threads"] = None
    return status


# -- the task run on a worker -----------------------------------------------------------------


def _make_pruner(prune: bool, startup: int, warmup: int) -> Any:
    import optuna

    if not prune:
        return optuna.pruners.NopPruner()
    return optuna.pruners.MedianPruner(n_startup_trials=startup, n_warmup_steps=warmup)


def _worker_identity() -> dict[str, Any]:
    try:
        from distributed import get_worker

        address = get_worker().address
    except (ImportError, ValueError):
        address = "local"
    return {"worker": address, "host": socket.gethostname(), "pid": os.getpid()}


def run_trial_task(payload: dict[str, Any], arrays: Mapping[str, np.ndarray] | None) -> dict[str, Any]:
    """Run one trial on a Dask worker and return its record (never raises for a training error).

    ``payload``: ``config``, ``source`` (:class:`DataSource`), ``storage``
    (a ``DaskStorage``) and ``study_name``, ``trial_id``, pruning settings,
    and ``test`` (evaluate on the test set: the chosen setting's final run).
    """
    import optuna

    start = time.perf_counter()
    optuna_seconds = 0.0
    config = payload["config"]
    record: dict[str, Any] = {"config": config, **_worker_identity()}
    trial = None
    reported: set[int] = set()
    if payload.get("storage") is not None:
        t0 = time.perf_counter()
        study = optuna.load_study(
            study_name=payload["study_name"],
            storage=_dask_storage(payload["storage"]),
            sampler=optuna.samplers.RandomSampler(seed=0),
            pruner=_make_pruner(payload["prune"], payload["prune_startup"], payload["prune_warmup"]),
        )
        trial = optuna.Trial(study, payload["trial_id"])
        attempts = int(trial.user_attrs.get("attempts", 0)) + 1
        trial.set_user_attr("attempts", attempts)
        reported = set(study._storage.get_trial(payload["trial_id"]).intermediate_values)
        record["attempts"] = attempts
        optuna_seconds += time.perf_counter() - t0

    def on_epoch(epoch: int, accuracy: float) -> None:
        nonlocal optuna_seconds
        if trial is None:
            return
        t0 = time.perf_counter()
        try:
            if epoch not in reported:  # a retried trial re-runs epochs already reported
                trial.report(accuracy, epoch)
            if trial.should_prune():
                raise optuna.TrialPruned(f"pruned after epoch {epoch}")
        finally:
            optuna_seconds += time.perf_counter() - t0

    data, data_seconds = _worker_data(payload["source"], arrays)
    history: list[dict[str, Any]] = []
    outcome: dict[str, Any] = {}
    try:
        outcome = train_trial(config, data, on_epoch=on_epoch, test=payload.get("test", False), history=history)
        record["state"] = "complete"
    except optuna.TrialPruned as exc:
        record["state"] = "pruned"
        record["error"] = str(exc)
    except Exception as exc:  # a failing training is a result, recorded with its error
        record["state"] = "failed"
        record["error"] = f"{type(exc).__name__}: {exc}"
    record.update(outcome)
    record["history"] = history
    record.update(summarize(history))
    record["train_seconds"] = sum(h["seconds"] for h in history)
    record["data_seconds"] = data_seconds
    record["optuna_seconds"] = optuna_seconds
    record["seconds"] = time.perf_counter() - start
    try:  # what the worker's BLAS really uses (checks the per-worker thread limit took effect)
        threadpoolctl = importlib.import_module("threadpoolctl")
        record["blas_threads"] = max((i.get("num_threads", 0) for i in threadpoolctl.threadpool_info()), default=None)
    except ImportError:
        pass
    return record


# -- results file -----------------------------------------------------------------------------


def append_record(path: str | os.PathLike[str], record: Mapping[str, Any]) -> None:
    """Append ``record`` as one JSON line to ``path``, atomically with respect to readers and crashes.

    The complete line (``json.dumps(record) + "\\n"``) is written with a
    single ``os.write`` on a descriptor opened with ``O_APPEND``, then
    fsynced.  Appending is O(1) per trial, where rewriting the file through
    :func:`portable_nn.atomic.atomic_write` would be O(trials).  A reader
    never sees a line interleaved with another (only the driver writes, and
    O_APPEND puts each write at the end); a crash during the write can at
    worst leave a last line without its newline, which :func:`read_records`
    ignores and the next append starts on a fresh line.
    """
    line = (json.dumps(record, sort_keys=True, allow_nan=False) + "\n").encode()
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o666)
    try:
        size = os.fstat(fd).st_size
        if size:
            with open(path, "rb") as handle:
                handle.seek(size - 1)
                if handle.read(1) != b"\n":  # a torn last line from a crash: start afresh
                    line = b"\n" + line
        written = os.write(fd, line)
        if written != len(line):
            raise OSError(f"short write to {path}: {written} of {len(line)} bytes")
        os.fsync(fd)
    finally:
        os.close(fd)


def read_records(path: str | os.PathLike[str]) -> list[dict[str, Any]]:
    """Every complete record in a results file (torn or malformed lines are skipped); [] if it does not exist."""
    records = []
    try:
        text = Path(path).read_bytes()
    except FileNotFoundError:
        return []
    for line in text.split(b"\n"):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except ValueError:
            continue
        if isinstance(record, dict) and "config" in record and "state" in record:
            records.append(record)
    return records


def _json_safe(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_safe(v) for v in value]
    if isinstance(value, np.generic):
        return value.item()
    return value


# -- result ---------------------------------------------------------------------------------


@dataclass
class SweepResult:
    """What a sweep did.

    ``records``: every record of this sweep's settings, the ones found in
    ``out`` from earlier runs first, then this run's in finishing order.
    ``best``: the complete record with the highest metric (``None`` if none).
    ``test``: ``{"test_accuracy", "test_correct", "n_test", ...}`` of the best
    setting, retrained once with its seed and evaluated on the test set
    (``None`` when not asked for or nothing finished).
    ``skipped``: settings found finished in ``out`` and not run again.
    ``lost``: trials whose task failed outside the training (e.g. a worker
    died more often than the scheduler allows); not recorded, so a restart
    runs them again.
    """

    out: Path
    metric: str
    space: dict[str, ParamSpec]
    records: list[dict[str, Any]] = field(default_factory=list)
    best: dict[str, Any] | None = None
    test: dict[str, Any] | None = None
    skipped: int = 0
    lost: list[str] = field(default_factory=list)
    wall_seconds: float = 0.0
    interrupted: bool = False
    workers: int = 0
    engine: str = ""

    def new_records(self) -> list[dict[str, Any]]:
        """Records of trials this run finished."""
        return [r for r in self.records if not r.get("_previous")]

    def counts(self) -> dict[str, int]:
        """Records per state."""
        counts = {"complete": 0, "pruned": 0, "failed": 0}
        for r in self.records:
            counts[r["state"]] = counts.get(r["state"], 0) + 1
        return counts

    def overhead(self) -> dict[str, float]:
        """Scheduling overhead of this run's trials, summed (seconds) and relative to their training time.

        ``dask``: driver round trip (submit → result) minus the task's own
        time; ``optuna``: ask/tell in the driver plus report/should_prune and
        study loading in the task; ``training``: task time less Optuna and
        the one-off data load.
        """
        new = [r for r in self.new_records() if "roundtrip_seconds" in r]
        dask_s = sum(max(r["roundtrip_seconds"] - r["seconds"], 0.0) for r in new)
        optuna_s = sum(r.get("optuna_seconds", 0.0) + r.get("driver_optuna_seconds", 0.0) for r in new)
        train_s = sum(r["seconds"] - r.get("optuna_seconds", 0.0) - r.get("data_seconds", 0.0) for r in new)
        total = dask_s + optuna_s
        return {
            "trials": float(len(new)),
            "dask_seconds": dask_s,
            "optuna_seconds": optuna_s,
            "training_seconds": train_s,
            "per_trial_seconds": total / len(new) if new else 0.0,
            "fraction": total / train_s if train_s > 0 else 0.0,
        }

    def table(self, top: int = 10) -> str:
        """The top trials as a plain-text table (see :func:`format_table`)."""
        return format_table(self.records, self.metric, list(self.space), top=top)


def format_table(records: Sequence[Mapping[str, Any]], metric: str, names: Sequence[str], top: int = 10) -> str:
    """Trials sorted by ``metric`` (complete first, then pruned, then failed), ``top`` rows, as aligned text."""
    order = {"complete": 0, "pruned": 1, "failed": 2}

    def sort_key(r: Mapping[str, Any]) -> tuple[int, float]:
        value = metric_value(r, metric)
        return (order.get(r["state"], 3), -(value if value is not None else -1.0))

    rows = sorted(records, key=sort_key)[:top]
    header = ["rank", *names, "state", "best (epoch)", "final", "seconds", "worker"]
    lines = []
    for rank, r in enumerate(rows, 1):
        best = "-" if r.get("best_accuracy") is None else f"{r['best_accuracy']:.4f} ({r['best_epoch']})"
        final = "-" if r.get("final_accuracy") is None else f"{r['final_accuracy']:.4f}"
        lines.append(
            [
                str(rank),
                *(str(r["config"].get(n)) for n in names),
                r["state"],
                best,
                final,
                f"{r.get('seconds', 0.0):.1f}",
                str(r.get("worker", "")),
            ]
        )
    widths = [max(len(h), *(len(line[i]) for line in lines)) if lines else len(h) for i, h in enumerate(header)]
    out = ["  ".join(h.ljust(w) for h, w in zip(header, widths))]
    out.append("  ".join("-" * w for w in widths))
    out.extend("  ".join(c.ljust(w) for c, w in zip(line, widths)) for line in lines)
    return "\n".join(line.rstrip() for line in out)


# -- progress -------------------------------------------------------------------------------


class _Progress:
    """Trials done / running / pruned / failed and the best so far: a tqdm bar on a terminal, lines otherwise."""

    def __init__(self, total: int, metric: str, enabled: bool, stream: TextIO | None = None) -> None:
        self.total, self.metric, self.enabled = total, metric, enabled
        self.stream = stream or sys.stderr
        self.done = self.pruned = self.failed = self.running = 0
        self.best: float | None = None
        self.bar: Any = None
        if enabled and total and getattr(self.stream, "isatty", lambda: False)():
            try:
                from tqdm.auto import tqdm

                self.bar = tqdm(total=total, desc="trials", unit="trial", file=self.stream, dynamic_ncols=True)
            except ImportError:
                self.bar = None

    def _status(self) -> str:
        best = "-" if self.best is None else f"{self.best:.4f}"
        return f"running {self.running}, pruned {self.pruned}, failed {self.failed}, best {best}"

    def update(self, record: Mapping[str, Any] | None, running: int) -> None:
        """A trial finished (``record``) or only the number running changed (``None``)."""
        self.running = running
        if record is not None:
            self.done += 1
            self.pruned += record["state"] == "pruned"
            self.failed += record["state"] == "failed"
            value = metric_value(record, self.metric)
            if record["state"] == "complete" and value is not None and (self.best is None or value > self.best):
                self.best = value
        if not self.enabled:
            return
        if self.bar is not None:
            if record is not None:
                self.bar.update(1)
            self.bar.set_postfix_str(self._status(), refresh=True)
        elif record is not None:
            params = " ".join(f"{k}={v}" for k, v in record.get("params", {}).items())
            value = metric_value(record, self.metric)
            shown = "-" if value is None else f"{value:.4f}"
            print(
                f"trial {self.done}/{self.total} {record['state']} {params} {self.metric} {shown} "
                f"({record.get('seconds', 0.0):.1f} s, {record.get('worker', '')}); {self._status()}",
                file=self.stream,
                flush=True,
            )

    def close(self) -> None:
        """Close the bar (if any)."""
        if self.bar is not None:
            self.bar.close()


# -- the engine -------------------------------------------------------------------------------


def _blas_env(threads: int) -> dict[str, str]:
    value = str(threads)
    return {
        "OMP_NUM_THREADS": value,
        "OPENBLAS_NUM_THREADS": value,
        "MKL_NUM_THREADS": value,
        "VECLIB_MAXIMUM_THREADS": value,
        "NUMEXPR_NUM_THREADS": value,
    }


@contextlib.contextmanager
def dask_client(
    scheduler: str | None = None, *, workers: int | None = None, threads_per_worker: int | None = None
) -> Iterator[tuple[Any, str]]:
    """A Dask client: to ``scheduler`` when given, else to a new ``LocalCluster`` of worker processes.

    The local cluster has ``workers`` processes (default: one per core) with
    one task thread each, and each worker's BLAS/OpenMP pools limited to
    ``threads_per_worker`` threads (default: cores // workers, at least 1)
    through ``distributed.nanny.pre-spawn-environ``, which Dask applies
    before the worker's interpreter starts, so NumPy sees it at import.
    Yields ``(client, description)``; closes what it started.
    """
    import dask
    from distributed import Client, LocalCluster

    if scheduler is not None:
        client = Client(scheduler, timeout="30s")
        try:
            yield client, f"scheduler {scheduler}"
        finally:
            client.close()
        return
    cores = os.cpu_count() or 1
    n = workers or cores
    threads = threads_per_worker or max(1, cores // n)
    environ = dict(dask.config.get("distributed.nanny.pre-spawn-environ", {}))
    environ.update(_blas_env(threads))
    # Dask sets MALLOC_TRIM_THRESHOLD_=65536, which also turns off glibc's dynamic mmap threshold: every
    # weight-sized temporary of a training step is then mmapped and unmapped (page faults, system time).
    environ.pop("MALLOC_TRIM_THRESHOLD_", None)
    # The worker's statistical profiler samples the task thread's stack every 10 ms, taking the GIL from a
    # training loop made of many small NumPy calls; measured here it made trials several times slower.
    # The event loop's 20 ms tick and the 0.5 s system monitor also wake a thread that competes for the GIL.
    settings = {
        "distributed.nanny.pre-spawn-environ": environ,
        "distributed.worker.profile.enabled": False,
        "distributed.admin.tick.interval": "1s",
        "distributed.admin.system-monitor.interval": "5s",
    }
    with dask.config.set(settings):
        cluster = LocalCluster(
            n_workers=n,
            threads_per_worker=1,
            processes=True,
            dashboard_address=None,
            host="127.0.0.1",
            silence_logs=40,
        )
    try:
        client = Client(cluster)
        try:
            yield client, f"LocalCluster, {n} worker processes x {threads} BLAS thread(s)"
        finally:
            client.close()
    finally:
        cluster.close()


def _trial_record(
    params: Mapping[str, Any], config: Mapping[str, Any], result: Mapping[str, Any], number: int
) -> dict[str, Any]:
    record = dict(result)
    record["params"] = dict(params)
    record["config"] = dict(config)
    record["key"] = config_key(config)
    record["number"] = number
    record["finished_at"] = time.strftime("%Y-%m-%dT%H:%M:%S%z")
    return _json_safe(record)


def _lock(out: Path) -> Any:
    """An exclusive lock on ``out`` (POSIX), so two sweeps never write one results file."""
    handle = open(out / ".sweep.lock", "w")  # held for the sweep's lifetime
    try:
        import fcntl

        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except ImportError:
        pass
    except OSError:
        handle.close()
        raise RuntimeError(f"another sweep is writing {out}; wait for it or choose another --out") from None
    return handle


def check_options(search: str, trials: int | None, metric: str, space: Mapping[str, ParamSpec]) -> None:
    if search not in SEARCHES:
        raise SweepSpecError(f"--search must be one of {', '.join(SEARCHES)}; got {search!r}")
    if metric not in METRICS:
        raise SweepSpecError(f"--metric must be one of {', '.join(METRICS)}; got {metric!r}")
    if not space:
        raise SweepSpecError("the search space is empty; give at least one --param NAME=v1,v2,...")
    if search != "grid" and (trials is None or trials < 1):
        raise SweepSpecError(f"--search {search} needs --trials N (N >= 1)")
    if trials is not None and trials < 1:
        raise SweepSpecError(f"--trials must be at least 1; got {trials}")
    hidden = space.get("hidden")
    if hidden is not None and hidden.is_range and hidden.low is not None and hidden.low < 1:
        raise SweepSpecError("hidden widths must be positive")


def _previous_study_trial(record: Mapping[str, Any], distributions: Mapping[str, Any]) -> Any:
    import optuna
    from optuna.trial import TrialState

    state = {"complete": TrialState.COMPLETE, "pruned": TrialState.PRUNED, "failed": TrialState.FAIL}[record["state"]]
    values = {h["epoch"]: h["accuracy"] for h in record.get("history", [])}
    value = record.get("_value") if state == TrialState.COMPLETE else None
    if state == TrialState.COMPLETE and value is None:
        state = TrialState.FAIL
    return optuna.trial.create_trial(
        params={k: _hidden_value(v) for k, v in record["params"].items()},
        distributions=dict(distributions),
        value=value,
        intermediate_values=values,
        state=state,
    )


def run_sweep(
    space: Sequence[str] | Mapping[str, Any],
    *,
    out: str | os.PathLike[str],
    search: str = "grid",
    trials: int | None = None,
    prune: bool = False,
    prune_startup_trials: int = 5,
    prune_warmup_epochs: int = 0,
    metric: str = "validation-accuracy",
    seed: int = 0,
    data_dir: str | os.PathLike[str] | None = None,
    download: bool = True,
    train_size: int = 50_000,
    validation_size: int = 10_000,
    test_size: int = 10_000,
    workers: int | None = None,
    threads_per_worker: int | None = None,
    scheduler: str | None = None,
    send_data: bool | None = None,
    evaluate_test: bool = True,
    progress: bool = True,
    progress_stream: TextIO | None = None,
) -> SweepResult:
    """Run a hyperparameter sweep on Dask; return a :class:`SweepResult`.

    Parameters
    ----------
    space:
        ``["eta=0.1,0.5,3", "lmbda=0,5"]`` (the ``--param`` syntax) or
        ``{"eta": [0.1, 0.5, 3], "lmbda": [0, 5]}``; ranges ``"eta=0.01..10:log"``
        for random/TPE.  Options not in the space take :data:`DEFAULTS`
        (a single value, ``"epochs=2"``, fixes an option).
    out:
        Directory of the results (``trials.jsonl``, ``sweep.json``,
        ``chosen.json``); created if needed.  Restarting with the same ``out``
        skips the settings already recorded there.
    search, trials:
        ``"grid"`` (every combination, ``trials`` ignored unless smaller),
        ``"random"`` or ``"tpe"`` (``trials`` settings in all, counting
        recorded ones).  Random and TPE samplers are seeded with ``seed``.
    prune, prune_startup_trials, prune_warmup_epochs:
        Median pruning after each epoch (``optuna.pruners.MedianPruner``).
    metric:
        ``"validation-accuracy"`` (after the last epoch) or
        ``"best-validation-accuracy"`` (best epoch); maximised.
    seed:
        Seed of every trial's network (initial weights and shuffles).
    data_dir, download, train_size, validation_size, test_size:
        The data: the first ``train_size`` of MNIST's first 50,000 training
        images, ``validation_size`` images from image 50,000 on, and
        ``test_size`` test images (used once, for the chosen setting).
    workers, threads_per_worker, scheduler:
        Local cluster size, BLAS threads per worker; or the address of an
        existing Dask scheduler (``tcp://host:8786``) to use instead.
    send_data:
        Load MNIST here once and broadcast it to the workers (default for a
        local cluster) instead of each worker reading ``data_dir`` itself
        (default with ``scheduler``, where ``data_dir`` must be a path every
        worker sees).
    evaluate_test:
        Retrain the chosen setting once (same seed, so the same network) and
        evaluate it on the test set.
    progress, progress_stream:
        Show progress on ``progress_stream`` (stderr).

    Raises :class:`SweepSpecError` for a bad specification (before any work).
    ``KeyboardInterrupt`` is caught: the result has ``interrupted=True``.
    """
    import optuna
    from distributed import wait
    from optuna.trial import TrialState

    specs = parse_space(space)
    check_options(search, trials, metric, specs)
    if min(train_size, validation_size, test_size) < 1:
        raise SweepSpecError("train, validation and test sizes must be at least 1")
    out_dir = Path(out)
    out_dir.mkdir(parents=True, exist_ok=True)
    results_path = out_dir / RESULTS_FILE
    lock = _lock(out_dir)
    started = time.perf_counter()
    verbosity = optuna.logging.get_verbosity()
    optuna.logging.set_verbosity(optuna.logging.WARNING)  # the progress bar reports trials, not Optuna's INFO lines
    try:
        previous = read_records(results_path)
        names = list(specs)

        def config_of(params: Mapping[str, Any]) -> dict[str, Any]:
            return trial_config(params, seed=seed, train_size=train_size, validation_size=validation_size)

        fixed_key = config_key({k: v for k, v in config_of({}).items() if k not in specs})

        def belongs(record: Mapping[str, Any]) -> bool:
            config = record["config"]
            own_fixed = config_key({k: v for k, v in config.items() if k not in specs})
            return own_fixed == fixed_key and all(specs[n].contains(config.get(n)) for n in names)

        mine = [dict(r, _previous=True, _value=metric_value(r, metric)) for r in previous if belongs(r)]
        done_keys = {r["key"] for r in mine}
        if search == "grid":
            points = grid_points(specs)
            if trials is not None:
                points = points[:trials]
            todo: list[dict[str, Any]] | None = [p for p in points if config_key(config_of(p)) not in done_keys]
            remaining = len(todo or [])
            skipped = len(points) - remaining
        else:
            todo = None
            skipped = min(len(mine), trials or 0)
            remaining = max((trials or 0) - len(mine), 0)
        manifest = {
            "space": {n: s.describe() for n, s in specs.items()},
            "names": names,
            "search": search,
            "trials": trials,
            "prune": prune,
            "metric": metric,
            "seed": seed,
            "defaults": config_of({}),
            "data": {
                "data_dir": None if data_dir is None else str(data_dir),
                "train_size": train_size,
                "validation_size": validation_size,
                "test_size": test_size,
            },
        }
        from .atomic import atomic_write

        with atomic_write(out_dir / MANIFEST_FILE, "w") as handle:
            json.dump(manifest, handle, indent=2)
        result = SweepResult(out=out_dir, metric=metric, space=specs, records=list(mine), skipped=skipped)
        source = DataSource(
            train_size=train_size,
            validation_size=validation_size,
            test_size=test_size,
            data_dir=None if data_dir is None else str(Path(data_dir).resolve()),
            download=download,
        )
        if send_data is None:
            send_data = scheduler is None
        arrays_here = load_arrays(source) if send_data else None  # before any cluster: bad data fails fast
        progress_bar = _Progress(remaining, metric, progress, progress_stream)
        distributions = {n: s.distribution() for n, s in specs.items()}
        try:
            with dask_client(scheduler, workers=workers, threads_per_worker=threads_per_worker) as (client, engine):
                result.engine = engine
                client.wait_for_workers(1, timeout=60)
                arrays = client.scatter(arrays_here, broadcast=True) if arrays_here is not None else None
                study = _create_study(client, search, seed, prune, prune_startup_trials, prune_warmup_epochs)
                storage = study._storage.name
                for record in mine:
                    study.add_trial(_previous_study_trial(record, distributions))
                for point in todo or []:
                    study.enqueue_trial({k: _hidden_value(v) for k, v in point.items()})
                base_payload = {
                    "source": source,
                    "storage": storage,
                    "study_name": study.study_name,
                    "prune": prune,
                    "prune_startup": prune_startup_trials,
                    "prune_warmup": prune_warmup_epochs,
                }
                in_flight: dict[Any, tuple[Any, dict[str, Any], dict[str, Any], float, float]] = {}
                to_submit = remaining
                try:
                    while to_submit or in_flight:
                        slots = max(sum(client.nthreads().values()), 1)
                        while to_submit and len(in_flight) < slots:
                            t0 = time.perf_counter()
                            trial = study.ask(distributions)
                            ask_seconds = time.perf_counter() - t0
                            params = {n: trial.params[n] for n in names}
                            config = config_of(params)
                            payload = dict(base_payload, config=config, trial_id=trial._trial_id)
                            future = client.submit(
                                run_trial_task,
                                payload,
                                arrays,
                                pure=False,
                                retries=1,
                                key=f"portable-nn-trial-{trial.number}-{uuid.uuid4().hex[:8]}",
                            )
                            in_flight[future] = (trial, params, config, time.perf_counter(), ask_seconds)
                            to_submit -= 1
                        progress_bar.update(None, len(in_flight))
                        try:
                            finished = wait(list(in_flight), timeout=1.0, return_when="FIRST_COMPLETED").done
                        except TimeoutError:  # nothing finished within a second: refresh and wait again
                            finished = set()
                        for future in finished:
                            trial, params, config, submitted, ask_seconds = in_flight.pop(future)
                            roundtrip = time.perf_counter() - submitted
                            try:
                                outcome = future.result()
                            except Exception as exc:  # the task, not the training, failed
                                result.lost.append(f"trial {trial.number} {params}: {type(exc).__name__}: {exc}")
                                study.tell(trial, state=TrialState.FAIL)
                                progress_bar.update(None, len(in_flight))
                                continue
                            record = _trial_record(params, config, outcome, trial.number)
                            t0 = time.perf_counter()
                            value = metric_value(record, metric)
                            if record["state"] == "complete" and value is not None:
                                study.tell(trial, value)
                            elif record["state"] == "pruned":
                                study.tell(trial, state=TrialState.PRUNED)
                            else:
                                study.tell(trial, state=TrialState.FAIL)
                            record["driver_optuna_seconds"] = ask_seconds + time.perf_counter() - t0
                            record["roundtrip_seconds"] = roundtrip
                            append_record(results_path, record)
                            result.records.append(record)
                            progress_bar.update(record, len(in_flight))
                except KeyboardInterrupt:
                    result.interrupted = True
                    for future in in_flight:
                        future.cancel()
                result.workers = len(client.nthreads())
                result.best = _best(result.records, metric)
                if evaluate_test and result.best is not None and not result.interrupted:
                    result.test = _chosen_test(
                        client, out_dir, result.best, metric, source, arrays, test_size=test_size
                    )
        except KeyboardInterrupt:
            result.interrupted = True
        finally:
            progress_bar.close()
        result.best = _best(result.records, metric)
        result.wall_seconds = time.perf_counter() - started
        return result
    finally:
        optuna.logging.set_verbosity(verbosity)
        lock.close()


def _dask_storage(name: str, client: Any = None) -> Any:
    """The ``DaskStorage`` called ``name``: registered on the scheduler with ``client``, else (on a worker) looked up.

    Only the name travels in task payloads: unpickling a ``DaskStorage``
    would emit its ``ExperimentalWarning`` in the scheduler and every worker.
    """
    import optuna

    integration = importlib.import_module("optuna_integration")  # untyped package
    with warnings.catch_warnings():
        # DaskStorage is marked experimental; it is the documented way to share a study with Dask workers.
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        if client is None:
            return integration.DaskStorage(name=name, register=False)
        return integration.DaskStorage(name=name, client=client)


def _create_study(client: Any, search: str, seed: int, prune: bool, startup: int, warmup: int) -> Any:
    """A maximising study on a :class:`optuna_integration.DaskStorage` served by the scheduler."""
    import optuna

    storage = _dask_storage(f"portable-nn-{uuid.uuid4().hex}", client=client)
    if search == "tpe":
        sampler: Any = optuna.samplers.TPESampler(seed=seed)
    else:  # grid settings are enqueued, so the sampler is only consulted for random search
        sampler = optuna.samplers.RandomSampler(seed=seed)
    return optuna.create_study(
        storage=storage,
        sampler=sampler,
        pruner=_make_pruner(prune, startup, warmup),
        direction="maximize",
        study_name=f"portable-nn-sweep-{uuid.uuid4().hex[:12]}",
    )


def _best(records: Sequence[Mapping[str, Any]], metric: str) -> dict[str, Any] | None:
    complete = [r for r in records if r["state"] == "complete" and metric_value(r, metric) is not None]
    if not complete:
        return None
    # Highest metric; ties go to the earlier trial (stable: previous records first, then finishing order).
    best = max(complete, key=lambda r: (metric_value(r, metric), -complete.index(r)))
    return {k: v for k, v in best.items() if not k.startswith("_")}


def _chosen_test(
    client: Any,
    out_dir: Path,
    best: Mapping[str, Any],
    metric: str,
    source: DataSource,
    arrays: Any,
    *,
    test_size: int,
) -> dict[str, Any]:
    """Retrain the chosen setting (same seed: the same network) up to its chosen epoch; its test accuracy.

    Cached in ``chosen.json`` by the setting's key, so a restarted sweep that
    chooses the same setting does not train it again.
    """
    from .atomic import atomic_write

    config = dict(best["config"])
    if metric == "best-validation-accuracy" and best.get("best_epoch") is not None:
        config["epochs"] = int(best["best_epoch"]) + 1
    chosen_path = out_dir / CHOSEN_FILE
    key = config_key(config) + f"|test={test_size}"
    try:
        cached = json.loads(chosen_path.read_text())
        if cached.get("test_key") == key:
            return dict(cached)
    except (OSError, ValueError):
        pass
    payload = {"config": config, "source": source, "storage": None, "test": True}
    outcome = client.submit(run_trial_task, payload, arrays, pure=False, retries=1).result()
    if outcome["state"] != "complete":
        return {"error": outcome.get("error", outcome["state"]), "config": config}
    expected = metric_value(best, metric)
    reproduced = outcome["history"][-1]["accuracy"] if outcome["history"] else None
    chosen = {
        "test_key": key,
        "params": best["params"],
        "config": config,
        "metric": metric,
        "validation_accuracy": expected,
        "reproduced_validation_accuracy": reproduced,
        "reproduced": reproduced == expected,
        "test_accuracy": outcome["test_accuracy"],
        "test_correct": outcome["test_correct"],
        "n_test": outcome["n_test"],
        "seconds": outcome["seconds"],
    }
    with atomic_write(chosen_path, "w") as handle:
        json.dump(_json_safe(chosen), handle, indent=2)
    return chosen
