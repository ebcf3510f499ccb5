"""What a sweep's files may hold: every field of a trial record, of ``chosen.json`` and of ``sweep.json``, checked.

The readers in :mod:`.files` parse a line or a file and hand the value to
:func:`check_record`, :func:`check_chosen` or :func:`check_manifest`, which
return the value with only the known fields, or raise :class:`SchemaError`
with one line naming the field and what it holds.  Accuracies are numbers in
[0, 1], counts non-negative integers (``correct <= n``), seconds finite and
``>= 0``, states one of :data:`STATES`, options the values a sweep can take
(:func:`portable_nn.sweep.space.valid_value`), and a record's ``key`` the
canonical JSON of its ``config`` (so an edited config is not taken for the
trial it claims to be).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from typing import Any

from .space import DEFAULTS, MAX_SEED, METRICS, config_key, valid_value

__all__ = ["STATES", "SchemaError", "check_chosen", "check_config", "check_manifest", "check_record"]

#: The states of a finished trial.
STATES = ("complete", "pruned", "failed")
#: Options of a configuration besides :data:`~portable_nn.sweep.space.DEFAULTS`.
_RUN_FIELDS = ("seed", "train_size", "validation_size", "data")


class SchemaError(ValueError):
    """A value read from a sweep file does not have the documented form; the message names the field."""


def _kind(value: Any) -> str:
    if value is None:
        return "null"
    return {bool: "a boolean", str: "a string", list: "a list", dict: "an object"}.get(type(value), "a number")


def _fail(field: str, expected: str, value: Any) -> SchemaError:
    return SchemaError(f"{field} must be {expected}, got {_kind(value)} {value!r:.40}")


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_real(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def fraction(value: Any) -> bool:
    """An accuracy: a finite number in [0, 1]."""
    return _is_real(value) and 0 <= value <= 1


def count(value: Any) -> bool:
    """A non-negative integer."""
    return _is_int(value) and value >= 0


def seconds(value: Any) -> bool:
    """A duration: a finite number >= 0."""
    return _is_real(value) and value >= 0


def text(value: Any) -> bool:
    """A string."""
    return isinstance(value, str)


def _optional(check: Callable[[Any], bool]) -> Callable[[Any], bool]:
    return lambda value: value is None or check(value)


_EXPECTED = {
    fraction: "a number in [0, 1]",
    count: "an integer >= 0",
    seconds: "a finite number >= 0",
    text: "a string",
}
#: Optional fields of a record: (check, what it must be).
_RECORD_FIELDS: dict[str, tuple[Callable[[Any], bool], str]] = {
    **{name: (_optional(fraction), "a number in [0, 1] or null") for name in ("best_accuracy", "final_accuracy")},
    "best_epoch": (_optional(count), "an integer >= 0 or null"),
    **{name: (count, "an integer >= 0") for name in ("number", "pid")},
    "attempts": (lambda v: _is_int(v) and v >= 1, "an integer >= 1"),
    "blas_threads": (_optional(count), "an integer >= 0 or null"),
    **{
        name: (seconds, "a finite number >= 0")
        for name in (
            "seconds",
            "train_seconds",
            "data_seconds",
            "optuna_seconds",
            "driver_optuna_seconds",
            "roundtrip_seconds",
        )
    },
    **{name: (text, "a string") for name in ("worker", "host", "error", "finished_at")},
}


def _object(value: Any, field: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise _fail(field, "an object", value)
    return value


def check_config(value: Any, field: str = "config") -> dict[str, Any]:
    """A trial's full configuration: exactly the options of a sweep, each a value it can take."""
    config = _object(value, field)
    expected = set(DEFAULTS) | set(_RUN_FIELDS)
    unknown = sorted(set(config) - expected)
    missing = sorted(expected - set(config) - {"data"})  # records written before the data identity lack it
    if unknown or missing:
        problem = f"unknown option {unknown[0]!r}" if unknown else f"no {missing[0]!r}"
        raise SchemaError(f"{field}: {problem}")
    for name in DEFAULTS:
        if not valid_value(name, config[name]):
            raise _fail(f"{field}.{name}", "a value a sweep takes", config[name])
    if not (_is_int(config["seed"]) and 0 <= config["seed"] <= MAX_SEED):
        raise _fail(f"{field}.seed", f"an integer in [0, {MAX_SEED}]", config["seed"])
    for name in ("train_size", "validation_size"):
        if not (_is_int(config[name]) and config[name] >= 1):
            raise _fail(f"{field}.{name}", "an integer >= 1", config[name])
    if not text(config.get("data", "")):
        raise _fail(f"{field}.data", "a string", config["data"])
    return config


def _check_params(value: Any, config: Mapping[str, Any]) -> dict[str, Any]:
    params = _object(value, "params")
    for name, setting in params.items():
        if name not in DEFAULTS or type(setting) is not type(config[name]) or setting != config[name]:
            where = f"params.{name}" if name.isidentifier() else f"params[{name!r:.40}]"  # a key from the file: quoted
            raise SchemaError(f"{where} ({setting!r:.40}) is not the config's")
    return params


def _check_history(value: Any) -> list[dict[str, Any]]:
    if not isinstance(value, list):
        raise _fail("history", "a list", value)
    rows = []
    for i, row in enumerate(value):
        row = _object(row, f"history[{i}]")
        for name, check in (("epoch", count), ("correct", count), ("n", count), ("accuracy", fraction)):
            if not check(row.get(name)):
                raise _fail(f"history[{i}].{name}", _EXPECTED[check], row.get(name))
        if not seconds(row.get("seconds", 0.0)):
            raise _fail(f"history[{i}].seconds", "a finite number >= 0", row.get("seconds"))
        if row["n"] < 1 or row["correct"] > row["n"]:
            raise SchemaError(f"history[{i}]: correct ({row['correct']}) must be at most n ({row['n']}), n >= 1")
        rows.append({str(k): row[k] for k in ("epoch", "correct", "n", "accuracy", "seconds") if k in row})
    return rows


def check_record(value: Any) -> dict[str, Any]:
    """One line of ``trials.jsonl``: the record with its known fields (others dropped), or :class:`SchemaError`."""
    record = _object(value, "the line")
    for name in ("config", "params", "state", "key", "history"):
        if name not in record:
            raise SchemaError(f"no {name!r} field")
    config = check_config(record["config"])
    checked: dict[str, Any] = {"config": config, "params": _check_params(record["params"], config)}
    if record["state"] not in STATES:
        raise _fail("state", "one of " + ", ".join(STATES), record["state"])
    if record["key"] != config_key(config):
        raise SchemaError("key is not the canonical JSON of config (an edited record?)")
    checked.update(state=record["state"], key=record["key"], history=_check_history(record["history"]))
    for name, (check, expected) in _RECORD_FIELDS.items():
        if name in record:
            if not check(record[name]):
                raise _fail(name, expected, record[name])
            checked[name] = record[name]
    if checked["state"] == "complete" and not (
        checked["history"] and fraction(checked.get("final_accuracy")) and fraction(checked.get("best_accuracy"))
    ):
        raise SchemaError("a complete trial needs a history and its best and final accuracy")
    return checked


def check_chosen(value: Any) -> dict[str, Any]:
    """``chosen.json``: the chosen setting, its cache key, and its test result."""
    chosen = _object(value, "chosen.json")
    checks: dict[str, tuple[Callable[[Any], bool], str]] = {
        "test_key": (text, "a string"),
        "metric": (lambda v: v in METRICS, "one of " + ", ".join(METRICS)),
        "validation_accuracy": (_optional(fraction), "a number in [0, 1] or null"),
        "reproduced_validation_accuracy": (_optional(fraction), "a number in [0, 1] or null"),
        "reproduced": (lambda v: isinstance(v, bool), "true or false"),
        "test_accuracy": (fraction, "a number in [0, 1]"),
        "test_correct": (count, "an integer >= 0"),
        "n_test": (lambda v: _is_int(v) and v >= 1, "an integer >= 1"),
        "seconds": (seconds, "a finite number >= 0"),
    }
    for name, (check, expected) in checks.items():
        if not check(chosen.get(name)):
            raise _fail(name, expected, chosen.get(name))
    config = check_config(chosen.get("config"))
    params = _check_params(chosen.get("params"), config)
    if (
        chosen["test_correct"] > chosen["n_test"]
        or chosen["test_accuracy"] != chosen["test_correct"] / chosen["n_test"]
    ):
        raise SchemaError("test_accuracy is not test_correct / n_test")
    return {**{name: chosen[name] for name in checks}, "config": config, "params": params}


def check_manifest(value: Any) -> dict[str, Any]:
    """``sweep.json``, as far as :func:`~portable_nn.sweep.plot.plot_sweep` uses it: ``metric`` and ``names``."""
    manifest = _object(value, "sweep.json")
    metric = manifest.get("metric", METRICS[0])
    if metric not in METRICS:
        raise _fail("metric", "one of " + ", ".join(METRICS), metric)
    names = manifest.get("names", [])
    if not isinstance(names, list) or not all(isinstance(n, str) and n in DEFAULTS for n in names):
        raise _fail("names", "a list of option names", names)
    return {"metric": metric, "names": names}
