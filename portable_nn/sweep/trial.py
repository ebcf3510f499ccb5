"""One trial: its data, its network, its training (the one trainer of every sweep, in-process or on a worker).

:func:`train_trial` trains the network of a configuration on a
:class:`TrialData` and returns its per-epoch validation history.  A worker
process reads MNIST once (:func:`load_arrays`, cached per
:class:`DataSource`) or takes arrays the driver sent; :func:`data_digest`
identifies those arrays, and is part of every trial's configuration.
Imports neither Dask nor Optuna.
"""

from __future__ import annotations

import hashlib
import importlib
import json
import os
import time
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from .space import SweepSpecError, hidden_sizes

__all__ = [
    "DataSource",
    "TrialData",
    "build_network",
    "data_digest",
    "load_arrays",
    "metric_value",
    "summarize",
    "train_trial",
    "trial_data",
    "worker_data",
    "worker_status",
]

#: The arrays a sweep trains (train), chooses (val) and tests (test) on, in the order they are hashed.
ARRAY_NAMES = ("train_x", "train_y", "val_x", "val_y", "test_x", "test_y")


@dataclass
class TrialData:
    """The data one worker trains on: training, validation and (for the chosen setting) test sets."""

    train: Any
    validation: Any
    test: Any = None


def build_network(config: Mapping[str, Any]) -> Any:
    """The network of ``config`` (``model``, ``hidden``, ``cost``, ``init``, ``activation``, backend, seed)."""
    sizes = hidden_sizes(config["hidden"])
    if config["model"] == "network":
        from ..network import Network

        return Network(sizes, xp=config["backend"], dtype=config["dtype"], seed=config["seed"])
    from .. import network2

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
                "epoch": int(result.epoch) + 1,  # numbered from 1, as every epoch a user sees
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

#: Per-process cache: one read of MNIST per worker process, keyed by source, sizes and data digest.
_DATA_CACHE: dict[str, TrialData] = {}


@dataclass(frozen=True)
class DataSource:
    """Where a worker gets its data: a directory it reads itself, or arrays already in its memory.

    ``digest``: :func:`data_digest` of the arrays, computed by the driver
    (part of the cache key, so a worker never trains on other data than the
    trial names).
    """

    train_size: int
    validation_size: int
    test_size: int
    data_dir: str | None = None
    download: bool = True
    digest: str = ""

    @property
    def token(self) -> str:
        """Cache key of this source in a worker process."""
        return json.dumps(
            [self.data_dir, self.download, self.train_size, self.validation_size, self.test_size, self.digest]
        )


def load_arrays(source: DataSource) -> dict[str, np.ndarray]:
    """MNIST as uint8 arrays: the first ``train_size`` training images, validation from image 50,000, test."""
    from .._data.mnist import load_mnist

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


def data_digest(arrays: Mapping[str, np.ndarray], names: Sequence[str] = ARRAY_NAMES[:4]) -> str:
    """SHA-256 (hex) of the arrays ``names`` (dtype, shape and bytes of each): the identity of a trial's data.

    The default, training and validation arrays, is what a trial's result
    depends on; ``ARRAY_NAMES[4:]`` identifies the test set of ``chosen.json``.
    """
    digest = hashlib.sha256()
    for name in names:
        array = np.ascontiguousarray(arrays[name])
        digest.update(f"{name}:{array.dtype.str}:{array.shape};".encode())
        digest.update(array.data)
    return digest.hexdigest()


def trial_data(arrays: Mapping[str, np.ndarray]) -> TrialData:
    """Wrap uint8 arrays as compact :class:`~portable_nn._data.forms.Dataset` objects (scaled on the device)."""
    from .._data.forms import Dataset

    return TrialData(
        train=Dataset(arrays["train_x"], arrays["train_y"], divisor=255.0),
        validation=Dataset(arrays["val_x"], arrays["val_y"], divisor=255.0),
        test=Dataset(arrays["test_x"], arrays["test_y"], divisor=255.0),
    )


def worker_data(source: DataSource, arrays: Mapping[str, np.ndarray] | None) -> tuple[TrialData, float]:
    """This process's data (cached: device copies made by one trial serve the next); seconds spent loading.

    Arrays read here (not sent) must have the digest the driver computed.
    """
    start = time.perf_counter()
    cached = _DATA_CACHE.get(source.token)
    if cached is None:
        if arrays is None:
            arrays = load_arrays(source)
            if source.digest and data_digest(arrays) != source.digest:
                raise SweepSpecError(f"{source.data_dir} on this worker holds other data than the driver's")
        cached = trial_data(arrays)
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
