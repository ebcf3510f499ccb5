"""Hyperparameter sweeps on Dask distributed, with Optuna choosing the trials and pruning them.

``run_sweep(space, ...)`` trains one network per *trial* (one setting of the
options in ``space``), each as one Dask task on a worker of a cluster: a
``LocalCluster`` of worker processes on this machine by default, or an existing
cluster given by the address of its scheduler.  Optuna chooses the settings
(``search="grid"``, ``"random"`` or ``"tpe"``) and, with ``prune=True``, stops
trials whose validation accuracy after an epoch is below the median of the
finished trials' accuracies after that epoch (:class:`optuna.pruners.MedianPruner`).

The package, by job
    :mod:`.space`     the options, their defaults, ``--param`` parsing, a trial's identity
    :mod:`.checks`    every setting checked before the first trial
    :mod:`.schema`    what the sweep's files may hold, field by field
    :mod:`.files`     ``OUT`` and its files: checked, locked, never written through links, read with limits
    :mod:`.trial`     one trial's data and training (the one trainer, in-process or on a worker)
    :mod:`.tasks`     the task a worker runs, and its link to the Optuna study
    :mod:`.engine`    the Dask client (local cluster or scheduler) and the study
    :mod:`.driver`    :class:`SweepDriver` and :func:`run_sweep`
    :mod:`.chosen`    the chosen setting's one test run (``chosen.json``)
    :mod:`.report`    :class:`SweepResult`, its table, the progress line
    :mod:`.plot`      ``plot_sweep`` (``portable-nn plot DIR``)
    :mod:`.cli`       ``portable-nn sweep``

How the pieces fit
    * The Optuna study lives on the Dask scheduler
      (:class:`optuna_integration.DaskStorage`, an in-memory storage the
      scheduler serves), so the driver (``study.ask`` / ``study.tell``) and the
      trials on the workers (one report per epoch, and the pruner's answer)
      share it without a database or a shared filesystem.
    * The driver keeps exactly one task in flight per worker thread and asks
      Optuna for the next setting only when a slot frees up, so TPE always
      conditions on every finished trial.
    * The driver reads MNIST once and identifies it (SHA-256 of the arrays,
      part of every trial's configuration); each worker gets the arrays
      broadcast through the scheduler (local cluster) or reads ``data_dir``
      itself, once per process.
    * Only the driver writes the results file, ``OUT/trials.jsonl``: one JSON
      object per finished trial, appended with a single ``os.write`` of the
      complete line and fsynced, the moment the trial's result arrives.
    * A restarted sweep with the same ``out`` and data skips every setting
      already recorded (finished, pruned or failed), and gives the recorded
      trials to the new study so TPE and the pruner learn from them.

Determinism
    A trial's network is seeded with the sweep's ``seed`` (the same seed for
    every setting: common random numbers, so settings are compared on the
    same shuffles).  Its result depends only on its settings, the data and
    that seed, not on the worker or on what else runs.

Faults
    A worker that dies mid-trial: its task is submitted again (the data sent
    again if its last copy died too), up to :data:`~.driver.MAX_TRIES` times,
    and the trial restarts from epoch 0 with the same seed; ``attempts`` in
    the record counts the starts, the progress line the retries.  An exception
    inside the training (including divergence) is recorded as a failed trial
    with its error and the sweep goes on.  Ctrl-C, SIGTERM or SIGHUP cancel the
    running trials and return the result with ``interrupted=True``; every
    finished trial is already on disk.

Nothing here imports Dask or Optuna at module import time: they are imported
when a sweep runs (``pip install "portable-nn[sweep]"``).
"""

from __future__ import annotations

from .checks import check_space
from .driver import MAX_TRIES, SweepDriver, run_sweep
from .files import (
    CHOSEN_FILE,
    MANIFEST_FILE,
    RESULTS_FILE,
    Results,
    SweepFileError,
    append_record,
    prepare_out,
    read_records,
    read_results,
)
from .options import SweepOptions
from .report import SweepResult, format_table
from .schema import STATES, SchemaError
from .space import (
    DEFAULTS,
    METRICS,
    PARAMETERS,
    SEARCHES,
    ParamSpec,
    SweepSpecError,
    check_options,
    config_key,
    grid_points,
    parse_param,
    parse_space,
    trial_config,
)
from .tasks import run_trial_task
from .trial import (
    DataSource,
    TrialData,
    build_network,
    data_digest,
    load_arrays,
    metric_value,
    summarize,
    train_trial,
    trial_data,
    worker_status,
)

__all__ = [
    "CHOSEN_FILE",
    "DEFAULTS",
    "MANIFEST_FILE",
    "MAX_TRIES",
    "METRICS",
    "PARAMETERS",
    "RESULTS_FILE",
    "SEARCHES",
    "STATES",
    "DataSource",
    "ParamSpec",
    "Results",
    "SchemaError",
    "SweepDriver",
    "SweepFileError",
    "SweepOptions",
    "SweepResult",
    "SweepSpecError",
    "TrialData",
    "append_record",
    "build_network",
    "check_options",
    "check_space",
    "config_key",
    "data_digest",
    "format_table",
    "grid_points",
    "load_arrays",
    "metric_value",
    "parse_param",
    "parse_space",
    "prepare_out",
    "read_records",
    "read_results",
    "run_sweep",
    "run_trial_task",
    "summarize",
    "train_trial",
    "trial_config",
    "trial_data",
    "worker_status",
]
