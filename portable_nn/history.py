"""Per-epoch training history: write it as JSON or CSV, read it back, plot it."""

from __future__ import annotations

import csv
import io
import json
import math
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from ._base import limits
from ._base.atomic import atomic_write
from ._base.errors import OptionalDependencyError
from ._train.loop import EpochResult

#: Columns of a history file: the evaluation (test) accuracy of chapter 1, then chapter 3's monitored series.
FIELDS = (
    "epoch",
    "seconds",
    "correct",
    "n_test",
    "accuracy",
    "evaluation_cost",
    "training_cost",
    "training_correct",
    "n_train",
    "training_accuracy",
    "eta",
)


def history_rows(history: Sequence[EpochResult]) -> list[dict[str, Any]]:
    """One dict per epoch with :data:`FIELDS` (epochs numbered from 1; ``None`` for what was not monitored)."""
    return [
        {
            "epoch": r.epoch + 1,
            "seconds": r.seconds,
            "correct": r.correct,
            "n_test": r.n_test,
            "accuracy": r.accuracy,
            "evaluation_cost": r.evaluation_cost,
            "training_cost": r.training_cost,
            "training_correct": r.training_correct,
            "n_train": r.n_train if r.training_correct is not None else None,
            "training_accuracy": r.training_accuracy,
            "eta": r.eta,
        }
        for r in history
    ]


#: How a CSV history file's settings line starts (before the header line).
CSV_SETTINGS_PREFIX = "# settings: "


def write_history(
    history: Sequence[EpochResult], path: str | os.PathLike[str], *, settings: Mapping[str, object] | None = None
) -> Path:
    """Write the history to ``path``: JSON or CSV, by suffix.

    Without ``settings``, JSON is a list of objects (one per epoch, :data:`FIELDS`).
    With ``settings`` (the run's options, plain JSON values, e.g.
    ``{"eta": 3.0, "stopped": "all 30 epochs done"}``) JSON is an object
    ``{"settings": {...}, "epochs": [...]}`` and CSV starts with one line
    ``# settings: {...}`` (JSON) before its header; :func:`read_history_settings`
    reads them back (``portable-nn plot`` titles the plot with them).
    """
    path = Path(path)
    rows = history_rows(history)
    if path.suffix.lower() == ".json":
        text = json.dumps(rows if settings is None else {"settings": dict(settings), "epochs": rows}, indent=1)
    elif path.suffix.lower() == ".csv":
        buffer = io.StringIO()
        if settings is not None:
            buffer.write(CSV_SETTINGS_PREFIX + json.dumps(dict(settings)) + "\n")
        writer: csv.DictWriter[str] = csv.DictWriter(buffer, fieldnames=FIELDS, lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
        text = buffer.getvalue()
    else:
        raise ValueError(f"--history must end in .json or .csv; got {str(path)!r}")
    with atomic_write(path, "w") as handle:
        handle.write(text)
    return path


class HistoryFileError(ValueError):
    """A history file cannot be read as a training history; the message starts with its path.

    Raised by :func:`read_history` for a wrong suffix, a file over the size
    limit or not a regular file, text that is not UTF-8, invalid JSON or CSV,
    nesting too deep for the parser, a structure that is not a list of rows,
    and missing or ill-typed fields.
    """


#: Fields with a fixed meaning: (kind, description); any other key is an extra numeric series.
_FIELD_RULES = {
    "epoch": ("count", "a non-negative integer"),
    "correct": ("count", "a non-negative integer or null"),
    "n_test": ("count", "a non-negative integer or null"),
    "seconds": ("seconds", "a finite number >= 0 or null"),
    "accuracy": ("fraction", "a number in [0, 1] or null"),
    "training_correct": ("count", "a non-negative integer or null"),
    "n_train": ("count", "a non-negative integer or null"),
    "training_accuracy": ("fraction", "a number in [0, 1] or null"),
}
_REQUIRED = ("epoch",)


def read_history(path: str | os.PathLike[str]) -> list[dict[str, Any]]:
    """Read a history file written by :func:`write_history`, checking everything in it.

    ``.json``: a list of objects, one per epoch.  ``.csv``: a header line and
    one line per epoch, empty cells meaning null.  Each row must have
    ``epoch`` (a non-negative integer); ``correct`` and ``n_test`` are
    non-negative integers or null (``correct <= n_test``), likewise
    ``training_correct`` and ``n_train``; ``seconds`` a finite number >= 0 or
    null, ``accuracy`` and ``training_accuracy`` numbers in [0, 1] or null.
    Any other key is a numeric series (e.g. ``training_cost``, ``eta``): a
    number (NaN and infinities allowed), null, or a list of numbers and nulls.  Files larger
    than :data:`portable_nn._base.limits.HISTORY_BYTES` (64 MiB,
    ``$PORTABLE_NN_MAX_HISTORY_BYTES``) are refused before being read.

    Returns the rows as dicts (CSV cells converted to int or float).

    Raises
    ------
    HistoryFileError
        (a ``ValueError``) for anything wrong with the file's name or content;
        the message names the file and, where it applies, the row and field.
    OSError
        The file cannot be opened: ``FileNotFoundError``, ``PermissionError``,
        ``IsADirectoryError``.
    """
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in (".json", ".csv"):
        raise HistoryFileError(f"{path}: expected a .json or .csv history file, not {path.suffix or 'no suffix'!r}")
    text = _read_history_text(path)
    rows = _parse_history_json(path, text) if suffix == ".json" else _parse_history_csv(path, text)
    for where, row in rows:
        _check_history_row(path, where, row)
    return [row for _, row in rows]


def _read_history_text(path: Path) -> str:
    info = limits.stat_regular_file(path, "a history file", HistoryFileError)
    limit = limits.HISTORY_BYTES.value()
    if info.st_size > limit:
        raise HistoryFileError(
            f"{path}: {info.st_size} bytes, more than the limit of {limit} for history files "
            f"({limits.HISTORY_BYTES.hint()})"
        )
    with path.open("rb") as handle:
        data = handle.read(min(info.st_size, limit) + 1)  # never a buffer larger than the file
    if len(data) > limit:
        raise HistoryFileError(f"{path}: more than the limit of {limit} bytes for history files")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise HistoryFileError(f"{path}: not UTF-8 text (byte 0x{data[exc.start]:02x} at offset {exc.start})") from exc


class _DuplicateKeyError(Exception):
    pass


def _no_duplicate_keys(pairs: list[tuple[str, object]]) -> dict[str, Any]:
    row: dict[str, object] = {}
    for key, value in pairs:
        if key in row:
            raise _DuplicateKeyError(key)
        row[key] = value
    return row


def _parse_history_json(path: Path, text: str) -> list[tuple[str, dict[str, Any]]]:
    try:
        value = json.loads(text, object_pairs_hook=_no_duplicate_keys)
    except _DuplicateKeyError as exc:
        raise HistoryFileError(f"{path}: key {exc.args[0]!r} appears twice in one object") from None
    except RecursionError:
        raise HistoryFileError(f"{path}: JSON nested too deeply (a history is a list of flat objects)") from None
    except ValueError as exc:  # JSONDecodeError, or an integer with too many digits
        raise HistoryFileError(f"{path}: not valid JSON ({exc})") from None
    if isinstance(value, dict) and set(value) <= {"settings", "epochs"} and "epochs" in value:
        value = value["epochs"]  # the form with the run's settings (read by read_history_settings)
    if not isinstance(value, list):
        raise HistoryFileError(f"{path}: expected a JSON list of objects (one per epoch), got {_kind(value)}")
    rows = []
    for i, row in enumerate(value, 1):
        if not isinstance(row, dict):
            raise HistoryFileError(f"{path}: row {i}: expected an object (one epoch), got {_kind(row)}")
        rows.append((f"row {i}", row))
    return rows


def _parse_history_csv(path: Path, text: str) -> list[tuple[str, dict[str, Any]]]:
    if text.startswith(CSV_SETTINGS_PREFIX):  # the run's settings (read by read_history_settings)
        text = "\n" + text.split("\n", 1)[1] if "\n" in text else ""
    reader = csv.reader(io.StringIO(text, newline=""))
    try:
        lines = [(reader.line_num, cells) for cells in reader if cells]
    except csv.Error as exc:
        raise HistoryFileError(f"{path}: line {reader.line_num}: not valid CSV ({exc})") from None
    if not lines:
        raise HistoryFileError(f"{path}: empty, expected a CSV header line such as {','.join(FIELDS)}")
    _, header = lines[0]
    if len(set(header)) != len(header) or "" in header:
        raise HistoryFileError(f"{path}: the CSV header has empty or repeated column names: {header!r:.200}")
    missing = [name for name in _REQUIRED if name not in header]
    if missing:
        raise HistoryFileError(f"{path}: the CSV header has no {missing[0]!r} column: {header!r:.200}")
    rows = []
    for line, cells in lines[1:]:
        if len(cells) != len(header):
            raise HistoryFileError(f"{path}: line {line}: {len(cells)} cells, the header has {len(header)}")
        row: dict[str, object] = {}
        for name, cell in zip(header, cells):
            kind = _FIELD_RULES.get(name, ("number", ""))[0]
            text_value = cell.strip()
            try:
                row[name] = None if text_value == "" else int(text_value) if kind == "count" else float(text_value)
            except ValueError:
                expected = "an integer" if kind == "count" else "a number"
                raise HistoryFileError(
                    f"{path}: line {line}, column {name!r}: expected {expected} or an empty cell, got {cell!r:.60}"
                ) from None
        rows.append((f"line {line}", row))
    return rows


def _kind(value: object) -> str:
    return {dict: "an object", list: "a list", str: "a string", bool: "a boolean"}.get(
        type(value), "null" if value is None else "a number"
    )


def _is_number(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _check_history_row(path: Path, where: str, row: dict[str, Any]) -> None:
    for name in _REQUIRED:
        if name not in row:
            raise HistoryFileError(f"{path}: {where}: missing the {name!r} field")
    for name, value in row.items():
        rule = _FIELD_RULES.get(name)
        if rule is None:
            ok = value is None or _is_number(value)
            if isinstance(value, list):
                ok = all(v is None or _is_number(v) for v in value)
            if not ok:
                raise HistoryFileError(
                    f"{path}: {where}: field {name!r} must be a number, null or a list of numbers, "
                    f"got {_kind(value)} {value!r:.60}"
                )
            continue
        kind, description = rule
        if value is None:
            ok = name not in _REQUIRED
        elif kind == "count":
            ok = isinstance(value, int) and not isinstance(value, bool) and value >= 0
        elif kind == "seconds":
            ok = _is_number(value) and math.isfinite(value) and value >= 0
        else:
            ok = _is_number(value) and 0 <= value <= 1
        if not ok:
            raise HistoryFileError(f"{path}: {where}: field {name!r} must be {description}, got {value!r:.60}")
    for part, whole in (("correct", "n_test"), ("training_correct", "n_train")):
        if row.get(part) is not None and row.get(whole) is not None and row[part] > row[whole]:
            raise HistoryFileError(f"{path}: {where}: {part!r} ({row[part]}) is larger than {whole!r} ({row[whole]})")


#: Most characters of settings shown in a plot's title.
_TITLE_CHARS = 160


def read_history_settings(path: str | os.PathLike[str]) -> dict[str, object]:
    """The run's settings stored in a history file by :func:`write_history` (``{}`` when it has none).

    Only JSON scalars are kept (anything else in the settings is dropped).
    Raises what :func:`read_history` raises for a file that cannot be read.
    """
    path = Path(path)
    text = _read_history_text(path)
    settings: object = None
    try:
        if path.suffix.lower() == ".csv" and text.startswith(CSV_SETTINGS_PREFIX):
            settings = json.loads(text.split("\n", 1)[0][len(CSV_SETTINGS_PREFIX) :])
        elif path.suffix.lower() == ".json":
            value = json.loads(text)
            settings = value.get("settings") if isinstance(value, dict) else None
    except (ValueError, RecursionError):
        return {}
    if not isinstance(settings, dict):
        return {}
    return {str(k): v for k, v in settings.items() if v is None or isinstance(v, (str, int, float, bool, list))}


def plot_title(path: str | os.PathLike[str]) -> str:
    """A plot title from a history file's settings (``""`` when it has none)."""
    settings = read_history_settings(path)
    if not settings:
        return ""
    network = settings.pop("network", None)
    stopped = settings.pop("stopped", None)
    shown = ", ".join(
        f"{k} {v}"
        for k, v in settings.items()
        if v is not None and v != "" and k != "sizes" and (k == "seed" or v is True or v != 0)  # 0: off
    )
    title = f"{network or Path(path).name}: {shown}"
    title = title if len(title) <= _TITLE_CHARS else title[: _TITLE_CHARS - 3] + "..."
    return f"{title}\n({stopped})" if stopped else title


def plot_history(rows: Sequence[dict[str, Any]], path: str | os.PathLike[str], title: str = "") -> Path:
    """Draw a history's curves to a PNG, as the book's chapter-3 figures do.

    One panel of accuracy (%) per epoch (evaluation and, when monitored,
    training data) and, when costs were monitored, a second panel of cost per
    epoch.  Needs matplotlib (``pip install "portable-nn[plot]"``).

    Raises
    ------
    OptionalDependencyError
        matplotlib is not installed.
    ValueError
        The history has no accuracy or cost values to draw.
    """
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ModuleNotFoundError as exc:
        if exc.name is None or exc.name.split(".")[0] != "matplotlib":
            raise
        raise OptionalDependencyError('plotting needs matplotlib: pip install "portable-nn[plot]"') from exc

    def series(key: str, scale: float = 1.0) -> list[tuple[float, float]]:
        return [(r["epoch"], scale * r[key]) for r in rows if isinstance(r.get(key), (int, float))]

    accuracy = {
        "evaluation data": series("accuracy", 100.0),
        "training data": series("training_accuracy", 100.0),
    }
    cost = {"evaluation data": series("evaluation_cost"), "training data": series("training_cost")}
    panels = [(name, curves) for name, curves in (("accuracy (%)", accuracy), ("cost", cost)) if any(curves.values())]
    if not panels:
        raise ValueError("the history has no accuracy or cost values to plot (train with test data to get them)")
    fig, axes = plt.subplots(1, len(panels), figsize=(6 * len(panels), 4), squeeze=False)
    for ax, (ylabel, curves) in zip(axes[0], panels):
        for label, points in curves.items():
            if points:
                ax.plot([p[0] for p in points], [p[1] for p in points], marker="." if len(points) < 60 else None,
                        label=label)  # fmt: skip
        ax.set_xlabel("epoch")
        ax.set_ylabel(ylabel)
        ax.grid(True, alpha=0.3)
        ax.legend()
    fig.suptitle(title or "portable_nn training")
    fig.tight_layout()
    return save_figure(fig, path)


def save_figure(fig: Any, path: str | os.PathLike[str]) -> Path:
    """Write the Matplotlib figure ``fig`` to ``path`` as a PNG, atomically, and close it (also on failure)."""
    import matplotlib.pyplot as plt

    path = Path(path)
    try:
        with atomic_write(path, "wb") as handle:
            fig.savefig(handle, format="png", dpi=100)
    finally:
        plt.close(fig)
    return path
