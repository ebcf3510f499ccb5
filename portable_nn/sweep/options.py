"""The settings of a sweep besides its space and its directory, in one frozen object."""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import TextIO

__all__ = ["SweepOptions"]


@dataclass(frozen=True)
class SweepOptions:
    """Every setting of a sweep besides its space and ``out`` (see :func:`run_sweep` for their meaning)."""

    search: str = "grid"
    trials: int | None = None
    prune: bool = False
    prune_startup_trials: int = 5
    prune_warmup_epochs: int = 0
    metric: str = "validation-accuracy"
    seed: int = 0
    data_dir: str | os.PathLike[str] | None = None
    download: bool = True
    train_size: int = 50_000
    validation_size: int = 10_000
    test_size: int = 10_000
    workers: int | None = None
    threads_per_worker: int | None = None
    scheduler: str | None = None
    send_data: bool | None = None
    evaluate_test: bool = True
    progress: bool = True
    progress_stream: TextIO | None = None
