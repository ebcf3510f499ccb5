"""The Dask side of a sweep: the client (a local cluster or an existing scheduler), the study, waiting on tasks.

Nothing here is imported before a sweep runs; Dask and Optuna are imported
inside the functions.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import threading
import uuid
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any

import numpy as np

from .tasks import GROUP_SIGNALS, dask_storage, make_pruner

__all__ = ["SchedulerError", "add_trials", "create_study", "dask_client", "wait_some"]


class SchedulerError(RuntimeError):
    """The Dask scheduler given with ``--scheduler`` cannot be used; the message names it and why."""


def _blas_env(threads: int) -> dict[str, str]:
    value = str(threads)
    return {
        "OMP_NUM_THREADS": value,
        "OPENBLAS_NUM_THREADS": value,
        "MKL_NUM_THREADS": value,
        "VECLIB_MAXIMUM_THREADS": value,
        "NUMEXPR_NUM_THREADS": value,
    }


def _connect(scheduler: str) -> Any:
    """A client of ``scheduler``, or :class:`SchedulerError` (whatever the other end answered)."""
    from distributed import Client

    try:
        return Client(scheduler, timeout="30s")
    except (OSError, TimeoutError, ValueError, TypeError) as exc:
        raise SchedulerError(f"cannot connect to the Dask scheduler {scheduler}: {_short(exc)}") from None
    except Exception as exc:  # a non-Dask server's garbage (even a MemoryError from a bogus length) lands here
        raise SchedulerError(
            f"{scheduler} did not answer like a Dask scheduler (reading its answer: {type(exc).__name__}); "
            "check the address"
        ) from None


def _short(exc: BaseException) -> str:
    lines = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {lines[0][:200] if lines else ''}".rstrip(": ")


def _start_resource_tracker() -> None:
    """Start multiprocessing's resource tracker ignoring the group signals (it ignores only SIGINT and SIGTERM).

    A closed terminal sends SIGHUP to the whole process group; a tracker killed
    by it is relaunched with warnings and tracebacks.  A disposition of
    ``SIG_IGN`` survives ``exec``, so the tracker started here keeps it.
    """
    from multiprocessing import resource_tracker

    if threading.current_thread() is not threading.main_thread():
        return
    previous = {signum: signal.signal(signum, signal.SIG_IGN) for signum in GROUP_SIGNALS}
    try:
        resource_tracker.ensure_running()
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)


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
    Its workers ignore SIGINT (:func:`portable_nn.sweep.tasks.dask_setup`).
    Yields ``(client, description)``; closes what it started.
    """
    import dask.config
    from distributed import Client, LocalCluster

    if scheduler is not None:
        client = _connect(scheduler)
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
    _start_resource_tracker()
    with dask.config.set(settings):
        cluster = LocalCluster(
            n_workers=n,
            threads_per_worker=1,
            processes=True,
            dashboard_address="127.0.0.1:0",  # no fixed port (8787 may be taken), only on this machine
            host="127.0.0.1",
            silence_logs=50,
            preload=["portable_nn.sweep.tasks"],
        )
    try:
        client = Client(cluster)
        try:
            yield client, f"LocalCluster, {n} worker processes x {threads} BLAS thread(s)"
        finally:
            with _quiet_dask_logs():
                client.close()
    finally:
        with _quiet_dask_logs():
            cluster.close()


@contextlib.contextmanager
def _quiet_dask_logs() -> Iterator[None]:
    """Dask's own loggers silenced inside the block (while the cluster closes), their levels restored after.

    After a stop signal the scheduler may still try to write to the closed
    client and logs that at CRITICAL with a traceback; the sweep has already
    said in one line why it stopped, so that noise must not reach the terminal.
    """
    loggers = _dask_loggers()
    levels = [logger.level for logger in loggers]
    for logger in loggers:
        logger.setLevel(logging.CRITICAL + 1)
    try:
        yield
    finally:
        for logger, level in zip(loggers, levels):
            logger.setLevel(level)


def _dask_loggers() -> list[logging.Logger]:
    """``distributed`` and every child logger it has made so far."""
    names = ["distributed", *(n for n in list(logging.root.manager.loggerDict) if n.startswith("distributed."))]
    return [logging.getLogger(name) for name in names]


def silence_dask_logs() -> None:
    """Dask's loggers silenced for the rest of the process: a stop signal has come, the sweep has said why in
    one line, and the scheduler's complaints about the client going away (CRITICAL, with tracebacks, from
    its own thread) must not follow it.  Only ``portable-nn sweep``, which owns its process, calls this."""
    for logger in _dask_loggers():
        logger.setLevel(logging.CRITICAL + 1)


def create_study(client: Any, search: str, seed: int, prune: bool, startup: int, warmup: int) -> tuple[Any, str]:
    """A maximising study on a ``DaskStorage`` served by the scheduler; returns (study, storage name)."""
    import optuna

    name = f"portable-nn-{uuid.uuid4().hex}"
    storage = dask_storage(name, client=client)
    if search == "tpe":
        sampler: Any = optuna.samplers.TPESampler(seed=seed)
    else:  # grid settings are enqueued, so the sampler is only consulted for random search
        sampler = optuna.samplers.RandomSampler(seed=seed)
    study = optuna.create_study(
        storage=storage,
        sampler=sampler,
        pruner=make_pruner(prune, startup, warmup),
        direction="maximize",
        study_name=f"portable-nn-sweep-{uuid.uuid4().hex[:12]}",
    )
    return study, name


def wait_some(futures: Iterable[Any], timeout: float) -> set[Any]:
    """The futures that finished (with a result, an error, or cancelled) within ``timeout`` seconds.

    Unlike :func:`distributed.wait`, a cancelled future (its worker and data
    lost) is returned like a finished one rather than raised.
    """
    from distributed import wait

    pending = list(futures)
    try:
        wait(pending, timeout=timeout, return_when="FIRST_COMPLETED")
    except TimeoutError:
        pass
    except Exception:  # CancelledError / FuturesCancelledError: some future was cancelled
        pass
    return {f for f in pending if f.status != "pending"}


def _hidden_value(value: Any) -> Any:
    return int(value) if isinstance(value, (int, np.integer)) else value


def add_trials(
    study: Any,
    distributions: Mapping[str, Any],
    previous: Sequence[Mapping[str, Any]],
    todo: Sequence[Mapping[str, Any]],
) -> None:
    """Give ``study`` the ``previous`` records as finished trials, and enqueue the grid settings ``todo``.

    A previous record's ``_value`` is its metric (a complete trial without one is added as failed).
    """
    import optuna
    from optuna.trial import TrialState

    states = {"complete": TrialState.COMPLETE, "pruned": TrialState.PRUNED, "failed": TrialState.FAIL}
    for record in previous:
        state = states[record["state"]]
        value = record.get("_value") if state == TrialState.COMPLETE else None
        frozen = optuna.trial.create_trial(
            params={k: _hidden_value(v) for k, v in record["params"].items()},
            distributions=dict(distributions),
            value=value,
            intermediate_values={h["epoch"] - 1: h["accuracy"] for h in record["history"]},  # steps from 0
            state=state if value is not None or state != TrialState.COMPLETE else TrialState.FAIL,
        )
        study.add_trial(frozen)
    for point in todo:
        study.enqueue_trial({k: _hidden_value(v) for k, v in point.items()})
