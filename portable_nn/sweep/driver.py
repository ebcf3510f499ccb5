"""The driver of a sweep: :func:`run_sweep` and the :class:`SweepDriver` it runs.

The driver checks everything it can before the first trial (the space, every
setting's network, ``out`` and its files, the data), then keeps exactly one
task in flight per worker thread, asking Optuna for the next setting only when
a slot frees up (so TPE conditions on every finished trial).  Each finished
trial is appended to ``trials.jsonl`` the moment it arrives.  A task lost with
its worker (killed, out of memory, its data gone with it) is submitted again,
up to :data:`MAX_TRIES` times, and reported on the progress line; the trial
keeps its Optuna number and restarts from epoch 0 with the same seed.
"""

from __future__ import annotations

import contextlib
import os
import time
import uuid
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from . import checks
from .chosen import ChosenTest
from .files import (
    CHOSEN_FILE,
    MANIFEST_FILE,
    RESULTS_FILE,
    append_record,
    out_lock,
    prepare_out,
    read_results,
    write_json,
)
from .options import SweepOptions
from .report import Progress, SweepResult, best_record
from .space import ParamSpec, SweepSpecError, check_options, config_key, grid_points, parse_space, trial_config
from .trial import ARRAY_NAMES, DataSource, data_digest, load_arrays, metric_value

__all__ = ["MAX_TRIES", "SweepDriver", "SweepOptions", "run_sweep"]

#: Submissions of one trial's task before it is given up as lost (its worker died each time).
MAX_TRIES = 4


@dataclass
class _Task:
    """One trial's task in flight."""

    trial: Any
    params: dict[str, Any]
    config: dict[str, Any]
    payload: dict[str, Any]
    ask_seconds: float
    submitted: float = 0.0
    tries: int = 0


@contextlib.contextmanager
def _optuna_quiet() -> Iterator[None]:
    import optuna

    verbosity = optuna.logging.get_verbosity()
    optuna.logging.set_verbosity(optuna.logging.WARNING)  # the progress line reports trials, not Optuna's INFO
    try:
        yield
    finally:
        optuna.logging.set_verbosity(verbosity)


@dataclass
class _Plan:
    """What this run has to do: the earlier records it reuses and the settings (or count) it still runs."""

    previous: list[dict[str, Any]] = field(default_factory=list)
    todo: list[dict[str, Any]] = field(default_factory=list)
    remaining: int = 0
    skipped: int = 0


class SweepDriver:
    """One sweep: ``SweepDriver(space, out, options).run()`` returns its :class:`SweepResult`.

    The constructor checks the space and every setting (:class:`SweepSpecError`)
    before anything is created or started.
    """

    def __init__(self, space: Sequence[str] | Mapping[str, Any], out: str | os.PathLike[str], options: SweepOptions):
        self.specs: dict[str, ParamSpec] = parse_space(space)
        self.options = options
        self.out = out
        check_options(options.search, options.trials, options.metric, self.specs)
        if options.search == "grid":
            grid_points(self.specs)
        checks.check_space(
            self.specs, seed=options.seed, sizes=(options.train_size, options.validation_size, options.test_size)
        )
        self.settings = checks.categorical_settings(self.specs)
        if options.scheduler is None:  # a local cluster runs this environment: check it here, before any process
            self._refuse(checks.setting_problems(self.settings, options.seed, list(self.specs)), "")
        self.arrays_here: dict[str, np.ndarray] | None = None
        self.arrays: Any = None
        self.in_flight: dict[Any, _Task] = {}

    @staticmethod
    def _refuse(problems: Sequence[str], where: str) -> None:
        if problems:
            more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
            raise SweepSpecError(f"{where}{problems[0]}{more}")

    def config_of(self, params: Mapping[str, Any]) -> dict[str, Any]:
        """The full configuration of a setting of the swept options."""
        o = self.options
        return trial_config(
            params, seed=o.seed, train_size=o.train_size, validation_size=o.validation_size, data=self.source.digest
        )

    # -- before the cluster ----------------------------------------------------------------------------

    def _load_data(self) -> None:
        """Read the data once here (bad data fails before any cluster) and identify it."""
        o = self.options
        data_dir = None if o.data_dir is None else str(Path(o.data_dir).resolve())
        source = DataSource(o.train_size, o.validation_size, o.test_size, data_dir, o.download)
        arrays = load_arrays(source)
        self.test_digest = data_digest(arrays, ARRAY_NAMES[4:])
        self.source = replace(source, digest=data_digest(arrays))
        send = o.scheduler is None if o.send_data is None else o.send_data
        self.arrays_here = arrays if send else None

    def _plan(self, out_dir: Path, result: SweepResult) -> _Plan:
        results = read_results(out_dir / RESULTS_FILE)
        summary = results.summary(out_dir / RESULTS_FILE)
        if summary:
            result.damaged.append(summary)
        fixed_key = config_key({k: v for k, v in self.config_of({}).items() if k not in self.specs})

        def belongs(record: Mapping[str, Any]) -> bool:
            config = record["config"]
            own_fixed = config_key({k: v for k, v in config.items() if k not in self.specs})
            return own_fixed == fixed_key and all(s.contains(config.get(n)) for n, s in self.specs.items())

        metric = self.options.metric
        plan = _Plan(previous=[dict(r, _previous=True, _value=metric_value(r, metric)) for r in results.records])
        plan.previous = [r for r in plan.previous if belongs(r)]
        done = {r["key"] for r in plan.previous}
        if self.options.search == "grid":
            points = grid_points(self.specs)[: self.options.trials]
            plan.todo = [p for p in points if config_key(self.config_of(p)) not in done]
            plan.remaining, plan.skipped = len(plan.todo), len(points) - len(plan.todo)
        else:
            trials = self.options.trials or 0
            plan.skipped, plan.remaining = min(len(plan.previous), trials), max(trials - len(plan.previous), 0)
        return plan

    def _write_manifest(self, out_dir: Path) -> None:
        o = self.options
        write_json(
            out_dir / MANIFEST_FILE,
            {
                "space": {n: s.describe() for n, s in self.specs.items()},
                "names": list(self.specs),
                "search": o.search,
                "trials": o.trials,
                "prune": o.prune,
                "metric": o.metric,
                "seed": o.seed,
                "defaults": self.config_of({}),
                "data": {
                    "data_dir": None if o.data_dir is None else str(o.data_dir),
                    "train_size": o.train_size,
                    "validation_size": o.validation_size,
                    "test_size": o.test_size,
                    "sha256": self.source.digest,
                    "test_sha256": self.test_digest,
                },
            },
        )

    # -- the run ---------------------------------------------------------------------------------------

    def run(self) -> SweepResult:
        """Run the sweep; Ctrl-C (``KeyboardInterrupt``) ends it with ``interrupted=True``."""
        started = time.perf_counter()
        out_dir = prepare_out(self.out)
        with out_lock(out_dir), _optuna_quiet():
            self._load_data()
            result = SweepResult(out=out_dir, metric=self.options.metric, space=self.specs)
            plan = self._plan(out_dir, result)
            result.records, result.skipped = list(plan.previous), plan.skipped
            self._write_manifest(out_dir)
            self.result, self.out_dir = result, out_dir
            self.progress = Progress(
                plan.remaining, self.options.metric, self.options.progress, self.options.progress_stream
            )
            try:
                self._on_cluster(plan)
            except KeyboardInterrupt:
                result.interrupted = True
            finally:
                self.progress.close()
                result.retries = len(self.progress.restarted)
        result.best = best_record(result.records, self.options.metric)
        result.wall_seconds = time.perf_counter() - started
        return result

    def _on_cluster(self, plan: _Plan) -> None:
        from .engine import add_trials, create_study, dask_client

        o = self.options
        with dask_client(o.scheduler, workers=o.workers, threads_per_worker=o.threads_per_worker) as (client, engine):
            self.result.engine = engine
            client.wait_for_workers(1, timeout=60)
            if o.scheduler is not None:
                answers = client.run(checks.setting_problems, self.settings, o.seed, list(self.specs))
                for address, problems in answers.items():
                    self._refuse(problems, f"worker {address}: ")
            self._scatter(client)
            self.study, storage = create_study(
                client, o.search, o.seed, o.prune, o.prune_startup_trials, o.prune_warmup_epochs
            )
            self.distributions = {n: spec.distribution() for n, spec in self.specs.items()}
            add_trials(self.study, self.distributions, plan.previous, plan.todo)
            self.base_payload = {
                "source": self.source,
                "storage": storage,
                "study_name": self.study.study_name,
                "prune": o.prune,
                "prune_startup": o.prune_startup_trials,
                "prune_warmup": o.prune_warmup_epochs,
            }
            try:
                self._loop(client, plan.remaining)
            except KeyboardInterrupt:
                self.result.interrupted = True
                for future in self.in_flight:
                    future.cancel()
            self.result.workers = len(client.nthreads())
            best = best_record(self.result.records, o.metric)
            if o.evaluate_test and best is not None and not self.result.interrupted:
                self.result.test = self._chosen_test(client, best)

    def _scatter(self, client: Any) -> None:
        """Send the arrays to every worker (again when the last copy was lost with its worker)."""
        if self.arrays_here is None:
            return
        if self.arrays is None or any(f.status != "finished" for f in self.arrays.values()):
            client.wait_for_workers(1, timeout=60)
            self.arrays = client.scatter(self.arrays_here, broadcast=True)

    def _loop(self, client: Any, to_submit: int) -> None:
        from .engine import wait_some

        while to_submit or self.in_flight:
            slots = max(sum(client.nthreads().values()), 1)
            while to_submit and len(self.in_flight) < slots:
                self._submit(client, self._ask())
                to_submit -= 1
            self.progress.update(None, len(self.in_flight))
            for future in wait_some(list(self.in_flight), timeout=1.0):
                self._collect(client, future)

    def _ask(self) -> _Task:
        t0 = time.perf_counter()
        trial = self.study.ask(self.distributions)
        params = {n: trial.params[n] for n in self.specs}
        config = self.config_of(params)
        payload = dict(self.base_payload, config=config, trial_number=trial.number)
        return _Task(trial, params, config, payload, ask_seconds=time.perf_counter() - t0)

    def _submit(self, client: Any, task: _Task) -> None:
        from .tasks import run_trial_task

        task.tries += 1
        task.submitted = time.perf_counter()
        key = f"portable-nn-trial-{task.trial.number}-{uuid.uuid4().hex[:8]}"
        self.in_flight[client.submit(run_trial_task, task.payload, self.arrays, pure=False, key=key)] = task

    def _collect(self, client: Any, future: Any) -> None:
        from optuna.trial import TrialState

        task = self.in_flight.pop(future)
        try:
            outcome = future.result()
        except Exception as exc:  # the task, not the training, failed: its worker (and maybe the data) was lost
            self._retry_or_lose(client, task, exc)
            return
        if outcome.get("state") == "stale":
            self._lose(task, "its Optuna trial was already closed")
            return
        record = self._record(task, outcome)
        t0 = time.perf_counter()
        value = metric_value(record, self.options.metric)
        if record["state"] == "complete" and value is not None:
            self.study.tell(task.trial, value, skip_if_finished=True)
        else:
            state = TrialState.PRUNED if record["state"] == "pruned" else TrialState.FAIL
            self.study.tell(task.trial, state=state, skip_if_finished=True)
        record["driver_optuna_seconds"] = task.ask_seconds + time.perf_counter() - t0
        append_record(self.out_dir / RESULTS_FILE, record)
        self.result.records.append(record)
        self.progress.update(record, len(self.in_flight))

    def _record(self, task: _Task, outcome: Mapping[str, Any]) -> dict[str, Any]:
        record = dict(outcome)
        record.update(
            params=dict(task.params),
            config=dict(task.config),
            key=config_key(task.config),
            number=task.trial.number,
            # the driver's count wins where a worker died before it could record its attempt in the study
            attempts=max(int(outcome.get("attempts", 1)), task.tries),
            finished_at=time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            roundtrip_seconds=time.perf_counter() - task.submitted,
        )
        return record

    def _retry_or_lose(self, client: Any, task: _Task, exc: BaseException) -> None:
        reason = type(exc).__name__
        if task.tries >= MAX_TRIES:
            self._lose(task, f"{reason} on each of {task.tries} tries")
            return
        self._scatter(client)
        self._submit(client, task)
        self.progress.retry(task.trial.number, task.params, reason, task.tries, len(self.in_flight))

    def _lose(self, task: _Task, why: str) -> None:
        from optuna.trial import TrialState

        self.result.lost.append(f"trial {task.trial.number} {task.params}: {why}")
        self.study.tell(task.trial, state=TrialState.FAIL, skip_if_finished=True)
        self.progress.update(None, len(self.in_flight))

    # -- the chosen setting ----------------------------------------------------------------------------

    def _run_task(self, client: Any, payload: dict[str, Any]) -> dict[str, Any]:
        """Run one task to its end, submitting it again when its worker is lost (up to :data:`MAX_TRIES`)."""
        from .tasks import run_trial_task

        outcome: dict[str, Any] = {}
        for _ in range(MAX_TRIES):
            try:
                self._scatter(client)
                return dict(client.submit(run_trial_task, payload, self.arrays, pure=False).result())
            except Exception as exc:  # a lost worker: try again
                outcome = {"state": "failed", "error": f"{type(exc).__name__} (worker lost)"}
        return outcome

    def _chosen_test(self, client: Any, best: Mapping[str, Any]) -> dict[str, Any]:
        test = ChosenTest(self.out_dir / CHOSEN_FILE, self.options.metric, self.options.test_size, self.test_digest)
        chosen = test.cached(best)
        if chosen is None:
            if test.problem:
                self.result.damaged.append(test.problem)
            payload = {"config": test.config(best), "source": self.source, "storage": None, "test": True}
            chosen = test.record(best, self._run_task(client, payload))
        return chosen


def run_sweep(
    space: Sequence[str] | Mapping[str, Any],
    *,
    out: str | os.PathLike[str],
    **options: Any,
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
        ``chosen.json``); created if needed, checked before any trial
        (:func:`portable_nn.sweep.files.prepare_out`).  Restarting with the
        same ``out`` skips the settings already recorded there for the same data.
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
        Seed of every trial's network (initial weights and shuffles), in [0, 2**32).
    data_dir, download, train_size, validation_size, test_size:
        The data: the first ``train_size`` of MNIST's first 50,000 training
        images, ``validation_size`` images from image 50,000 on, and
        ``test_size`` test images (used once, for the chosen setting).  Read
        once by the driver, whose SHA-256 of them is part of every trial's
        configuration.
    workers, threads_per_worker, scheduler:
        Local cluster size, BLAS threads per worker; or the address of an
        existing Dask scheduler (``tcp://host:8786``) to use instead.
    send_data:
        Broadcast the driver's arrays to the workers (default for a local
        cluster) instead of each worker reading ``data_dir`` itself
        (default with ``scheduler``, where ``data_dir`` must be a path every
        worker sees).
    evaluate_test:
        Retrain the chosen setting once (same seed, so the same network) and
        evaluate it on the test set.
    progress, progress_stream:
        Show progress on ``progress_stream`` (stderr).

    Raises :class:`SweepSpecError` for a bad specification or a setting that
    cannot run (before any work), :class:`~portable_nn.sweep.files.SweepFileError`
    for an unusable ``out``.  ``KeyboardInterrupt`` is caught: the result has
    ``interrupted=True``.
    """
    unknown = sorted(set(options) - set(SweepOptions.__dataclass_fields__))
    if unknown:
        raise TypeError(f"run_sweep() got an unexpected keyword argument {unknown[0]!r}")
    return SweepDriver(space, out, SweepOptions(**options)).run()
