"""The chosen setting's one test run, cached in ``OUT/chosen.json``.

The cache key is the chosen configuration (which holds the SHA-256 of the
training and validation data), the test size and the test set's SHA-256, so
a restarted sweep that chooses the same setting on the same data reuses the
result, and any other data tests again.  A ``chosen.json`` that does not pass
:func:`portable_nn.sweep.schema.check_chosen` is ignored (and named) and
rewritten.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from .files import read_json, write_json
from .schema import check_chosen
from .space import config_key
from .trial import metric_value

__all__ = ["ChosenTest"]


class ChosenTest:
    """The test of the best record of a sweep whose results live beside ``path``."""

    def __init__(self, path: Path, metric: str, test_size: int, test_digest: str) -> None:
        self.path, self.metric, self.test_size, self.test_digest = path, metric, test_size, test_digest
        self.problem: str | None = None

    def config(self, best: Mapping[str, Any]) -> dict[str, Any]:
        """The configuration to retrain: the best record's, up to its best epoch for ``best-validation-accuracy``."""
        config = dict(best["config"])
        if self.metric == "best-validation-accuracy" and best.get("best_epoch") is not None:
            config["epochs"] = int(best["best_epoch"])  # numbered from 1: the epochs up to and with the best
        return config

    def key(self, best: Mapping[str, Any]) -> str:
        """The cache key of the test of ``best``."""
        return f"{config_key(self.config(best))}|test={self.test_size}|test_sha256={self.test_digest}"

    def cached(self, best: Mapping[str, Any]) -> dict[str, Any] | None:
        """The cached test of ``best``, or None (``problem`` then says why, when the file was damaged)."""
        chosen, problem = read_json(self.path, check_chosen)
        if chosen is not None and chosen["test_key"] == self.key(best):
            return chosen
        if chosen is None and self.path.exists():
            self.problem = f"{problem}; the chosen setting is tested again"
        return None

    def record(self, best: Mapping[str, Any], outcome: Mapping[str, Any]) -> dict[str, Any]:
        """The test result from the task's ``outcome``, written to ``chosen.json`` when the run completed."""
        config = self.config(best)
        if outcome.get("state") != "complete":
            return {"error": outcome.get("error", outcome.get("state")), "config": config}
        expected = metric_value(best, self.metric)
        reproduced = outcome["history"][-1]["accuracy"] if outcome["history"] else None
        chosen = {
            "test_key": self.key(best),
            "params": best["params"],
            "config": config,
            "metric": self.metric,
            "validation_accuracy": expected,
            "reproduced_validation_accuracy": reproduced,
            "reproduced": reproduced == expected,
            "test_accuracy": outcome["test_accuracy"],
            "test_correct": outcome["test_correct"],
            "n_test": outcome["n_test"],
            "seconds": outcome["seconds"],
        }
        write_json(self.path, chosen)
        return chosen
