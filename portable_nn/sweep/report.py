"""What a sweep did: :class:`SweepResult`, its table, and the progress display while it runs.

Numbers are shown with sensible digits: accuracies as percentages with two
decimals (``95.50%``), real-valued options with four significant digits
(``0.01``, ``3.162``), seconds with one decimal.
"""

from __future__ import annotations

import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

from .space import ParamSpec
from .trial import metric_value

__all__ = ["Progress", "SweepResult", "best_record", "format_percent", "format_setting", "format_table"]


def format_percent(value: float | None) -> str:
    """An accuracy in [0, 1] as a percentage with two decimals, ``-`` for none."""
    return "-" if value is None else f"{100 * value:.2f}%"


def format_value(value: Any) -> str:
    """An option's value: floats with four significant digits, the rest as written."""
    return f"{value:.4g}" if isinstance(value, float) else str(value)


def format_setting(params: Mapping[str, Any]) -> str:
    """``eta=0.5 lmbda=5`` for a trial's swept options."""
    return " ".join(f"{k}={format_value(v)}" for k, v in params.items())


def best_record(records: Sequence[Mapping[str, Any]], metric: str) -> dict[str, Any] | None:
    """The complete record with the highest ``metric`` (ties: the earlier one), or None."""
    complete = [r for r in records if r["state"] == "complete" and metric_value(r, metric) is not None]
    if not complete:
        return None
    best = max(complete, key=lambda r: (metric_value(r, metric), -complete.index(r)))
    return {k: v for k, v in best.items() if not k.startswith("_")}


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
    ``lost``: trials whose task failed outside the training more often than
    retried (a worker died again and again); not recorded, so a restart runs
    them again.  ``retries``: trials of this run started more than once (their worker was lost).
    ``damaged``: one line about damaged lines or files found in ``out`` (or None).
    """

    out: Path
    metric: str
    space: dict[str, ParamSpec]
    records: list[dict[str, Any]] = field(default_factory=list)
    best: dict[str, Any] | None = None
    test: dict[str, Any] | None = None
    skipped: int = 0
    lost: list[str] = field(default_factory=list)
    retries: int = 0
    damaged: list[str] = field(default_factory=list)
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
    """Trials sorted by ``metric`` (complete first, then pruned, then failed), ``top`` rows, as aligned text.

    Accuracies in percent with two decimals, real-valued options with four significant digits.
    """
    order = {"complete": 0, "pruned": 1, "failed": 2}

    def sort_key(r: Mapping[str, Any]) -> tuple[int, float]:
        value = metric_value(r, metric)
        return (order.get(r["state"], 3), -(value if value is not None else -1.0))

    rows = sorted(records, key=sort_key)[:top]
    header = ["rank", *names, "state", "best (epoch)", "final", "seconds", "worker"]
    lines = []
    for rank, r in enumerate(rows, 1):
        best = format_percent(r.get("best_accuracy"))
        if r.get("best_accuracy") is not None:
            best += f" ({r['best_epoch']})"
        lines.append(
            [
                str(rank),
                *(format_value(r["config"].get(n)) for n in names),
                r["state"],
                best,
                format_percent(r.get("final_accuracy")),
                f"{r.get('seconds', 0.0):.1f}",
                str(r.get("worker", "")),
            ]
        )
    widths = [max(len(h), *(len(line[i]) for line in lines)) if lines else len(h) for i, h in enumerate(header)]
    out = ["  ".join(h.ljust(w) for h, w in zip(header, widths))]
    out.append("  ".join("-" * w for w in widths))
    out.extend("  ".join(c.ljust(w) for c, w in zip(line, widths)) for line in lines)
    return "\n".join(line.rstrip() for line in out)


class Progress:
    """Trials done / running / pruned / failed / retried and the best so far: a tqdm bar on a terminal, lines otherwise.

    Printing never stops a sweep: a closed or broken stream just ends the display.
    """

    def __init__(self, total: int, metric: str, enabled: bool, stream: TextIO | None = None) -> None:
        self.total, self.metric, self.enabled = total, metric, enabled
        self.stream = stream or sys.stderr
        self.done = self.pruned = self.failed = self.running = 0
        self.restarted: set[int] = set()  # trials (by number) started more than once
        self.best: float | None = None
        self.bar: Any = None
        if enabled and total and getattr(self.stream, "isatty", lambda: False)():
            try:
                from tqdm.auto import tqdm

                self.bar = tqdm(total=total, desc="trials", unit="trial", file=self.stream, dynamic_ncols=True)
            except ImportError:
                self.bar = None

    def _status(self) -> str:
        retried = f", retried {len(self.restarted)}" if self.restarted else ""
        best = "-" if self.best is None else format_percent(self.best)
        return f"running {self.running}, pruned {self.pruned}, failed {self.failed}{retried}, best {best}"

    def _print(self, line: str) -> None:
        try:
            print(line, file=self.stream, flush=True)
        except (OSError, ValueError):  # stderr closed or gone: stop showing progress, keep sweeping
            self.enabled = False

    def retry(self, number: int, params: Mapping[str, Any], reason: str, attempt: int, running: int) -> None:
        """A trial's task was lost (its worker died) and was submitted again."""
        self.restarted.add(number)
        self.running = running
        if not self.enabled:
            return
        if self.bar is not None:
            self.bar.set_postfix_str(self._status(), refresh=True)
        else:
            self._print(
                f"trial {format_setting(params)}: worker lost ({reason}); retrying, attempt {attempt}; {self._status()}"
            )

    def update(self, record: Mapping[str, Any] | None, running: int) -> None:
        """A trial finished (``record``) or only the number running changed (``None``)."""
        self.running = running
        if record is not None:
            if record.get("attempts", 1) > 1:  # restarted by the driver, or by the scheduler on its own
                self.restarted.add(record.get("number", -1))
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
            shown = format_percent(metric_value(record, self.metric))
            attempts = record.get("attempts", 1)
            again = f", after {attempts} attempts (a worker was lost)" if attempts > 1 else ""
            self._print(
                f"trial {self.done}/{self.total} {record['state']} {format_setting(record.get('params', {}))} "
                f"{self.metric} {shown} ({record.get('seconds', 0.0):.1f} s, {record.get('worker', '')}{again}); "
                f"{self._status()}"
            )

    def close(self) -> None:
        """Close the bar (if any)."""
        if self.bar is not None:
            self.bar.close()
