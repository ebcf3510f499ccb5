"""The task a Dask worker runs for one trial, and what it shares with the driver through Optuna.

:func:`run_trial_task` loads the study from the scheduler's
:class:`optuna_integration.DaskStorage` by name, finds its trial by number,
trains (:func:`portable_nn.sweep.trial.train_trial`), reports the validation
accuracy of each epoch and asks whether to stop.  It only uses Optuna's public
storage interface (``get_study_id_from_name``,
``get_trial_id_from_study_id_trial_number``, ``get_trial``,
``set_trial_intermediate_value``, ``set_trial_user_attr``) and
``study.pruner``.  It never raises: a failing training, or a trial the driver
has already closed, comes back as a record.

:func:`dask_setup` is this module's Dask preload: worker processes ignore
SIGINT and SIGHUP, so Ctrl-C or a closed terminal (sent to the whole process
group) stops the driver, which closes the cluster, instead of printing a
traceback per worker.
"""

from __future__ import annotations

import importlib
import os
import signal
import socket
import threading
import time
import warnings
from collections.abc import Mapping
from typing import Any

import numpy as np

from .trial import summarize, train_trial, worker_data

__all__ = ["dask_setup", "dask_storage", "make_pruner", "run_trial_task"]


#: Signals a terminal sends to its whole process group, which the driver handles for its workers.
GROUP_SIGNALS = tuple(getattr(signal, name) for name in ("SIGINT", "SIGHUP") if hasattr(signal, name))


def dask_setup(worker: Any) -> None:
    """Dask preload hook (``preload=["portable_nn.sweep.tasks"]``): the worker ignores SIGINT and SIGHUP.

    The driver gets them too and closes the cluster, which stops the workers.
    """
    if threading.current_thread() is threading.main_thread():
        for signum in GROUP_SIGNALS:
            signal.signal(signum, signal.SIG_IGN)


def dask_storage(name: str, client: Any = None) -> Any:
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


def make_pruner(prune: bool, startup: int, warmup: int) -> Any:
    """Optuna's median pruner (or none)."""
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


class _TrialLink:
    """A worker's view of its Optuna trial: attempts, epoch reports and the pruning question."""

    def __init__(self, payload: Mapping[str, Any]) -> None:
        import optuna

        self.storage = dask_storage(payload["storage"])
        self.study = optuna.load_study(
            study_name=payload["study_name"],
            storage=self.storage,
            sampler=optuna.samplers.RandomSampler(seed=0),
            pruner=make_pruner(payload["prune"], payload["prune_startup"], payload["prune_warmup"]),
        )
        study_id = self.storage.get_study_id_from_name(payload["study_name"])
        self.trial_id = self.storage.get_trial_id_from_study_id_trial_number(study_id, payload["trial_number"])
        frozen = self.storage.get_trial(self.trial_id)
        self.finished = frozen.state.is_finished()  # the driver gave up on it: nothing may be written
        self.attempts = int(frozen.user_attrs.get("attempts", 0)) + 1
        self.reported = set(frozen.intermediate_values)  # a retried trial re-runs epochs already reported
        if not self.finished:
            self.storage.set_trial_user_attr(self.trial_id, "attempts", self.attempts)

    def epoch(self, epoch: int, accuracy: float) -> None:
        """Report one epoch's validation accuracy; raise ``optuna.TrialPruned`` when the pruner says stop."""
        import optuna

        if epoch not in self.reported:
            self.storage.set_trial_intermediate_value(self.trial_id, epoch, accuracy)
            self.reported.add(epoch)
        if self.study.pruner.prune(self.study, self.storage.get_trial(self.trial_id)):
            raise optuna.TrialPruned(f"pruned after epoch {epoch}")


def run_trial_task(payload: dict[str, Any], arrays: Mapping[str, np.ndarray] | None) -> dict[str, Any]:
    """Run one trial on a Dask worker and return its record (never raises).

    ``payload``: ``config``, ``source`` (:class:`~portable_nn.sweep.trial.DataSource`),
    ``storage`` (the name of a ``DaskStorage``, or None: no Optuna, as for the
    chosen setting's test run), ``study_name``, ``trial_number``, pruning
    settings, and ``test`` (also evaluate on the test set).  ``state`` of the
    record: ``complete``, ``pruned``, ``failed`` (the training or the task
    raised; ``error`` says what) or ``stale`` (the driver closed the trial already).
    """
    import optuna

    start = time.perf_counter()
    record: dict[str, Any] = {"config": payload["config"], **_worker_identity()}
    history: list[dict[str, Any]] = []
    timing = {"optuna": 0.0, "data": 0.0}
    try:
        link = _connect(payload, record, timing)
        if link is not None and link.finished:
            return {**record, "state": "stale"}
        data, timing["data"] = worker_data(payload["source"], arrays)

        def on_epoch(epoch: int, accuracy: float) -> None:
            if link is not None:
                t0 = time.perf_counter()
                try:
                    link.epoch(epoch, accuracy)
                finally:
                    timing["optuna"] += time.perf_counter() - t0

        outcome = train_trial(
            payload["config"], data, on_epoch=on_epoch, test=payload.get("test", False), history=history
        )
        record.update(outcome, state="complete")
    except optuna.TrialPruned as exc:
        record.update(state="pruned", error=str(exc))
    except Exception as exc:  # a failing training (or a storage error) is a result, recorded with its error
        record.update(state="failed", error=f"{type(exc).__name__}: {str(exc)[:500]}")
    record["history"] = history
    record.update(summarize(history))
    record["train_seconds"] = sum(h["seconds"] for h in history)
    record["data_seconds"] = timing["data"]
    record["optuna_seconds"] = timing["optuna"]
    record["seconds"] = time.perf_counter() - start
    try:  # what the worker's BLAS really uses (checks the per-worker thread limit took effect)
        threadpoolctl = importlib.import_module("threadpoolctl")
        record["blas_threads"] = max((i.get("num_threads", 0) for i in threadpoolctl.threadpool_info()), default=None)
    except ImportError:
        pass
    return record


def _connect(payload: Mapping[str, Any], record: dict[str, Any], timing: dict[str, float]) -> _TrialLink | None:
    if payload.get("storage") is None:
        return None
    t0 = time.perf_counter()
    link = _TrialLink(payload)
    record["attempts"] = link.attempts
    timing["optuna"] += time.perf_counter() - t0
    return link
