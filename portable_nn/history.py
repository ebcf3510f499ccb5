"""Per-epoch training history: write it as JSON or CSV, read it back, plot it."""

from __future__ import annotations

import csv
import io
import json
import os
from collections.abc import Sequence
from pathlib import Path

from .atomic import atomic_write
from .network import EpochResult

FIELDS = ("epoch", "seconds", "correct", "n_test", "accuracy")


def history_rows(history: Sequence[EpochResult]) -> list[dict]:
    """One dict per epoch with :data:`FIELDS` (epochs numbered from 1)."""
    return [
        {"epoch": r.epoch + 1, "seconds": r.seconds, "correct": r.correct, "n_test": r.n_test, "accuracy": r.accuracy}
        for r in history
    ]


def write_history(history: Sequence[EpochResult], path: str | os.PathLike[str]) -> Path:
    """Write the history to ``path``: JSON (a list of objects) or CSV, by suffix."""
    path = Path(path)
    rows = history_rows(history)
    if path.suffix.lower() == ".json":
        text = json.dumps(rows, indent=1)
    elif path.suffix.lower() == ".csv":
        buffer = io.StringIO()
        writer = csv.DictWriter(buffer, fieldnames=FIELDS, lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
        text = buffer.getvalue()
    else:
        raise ValueError(f"--history must end in .json or .csv; got {str(path)!r}")
    with atomic_write(path, "w") as handle:
        handle.write(text)
    return path


def read_history(path: str | os.PathLike[str]) -> list[dict]:
    """Read a history file written by :func:`write_history`."""
    path = Path(path)
    if path.suffix.lower() == ".json":
        return json.loads(path.read_text())
    with path.open(newline="") as handle:
        return [
            {k: (None if v == "" else float(v) if k in ("seconds", "accuracy") else int(v)) for k, v in row.items()}
            for row in csv.DictReader(handle)
        ]


def plot_history(rows: Sequence[dict], path: str | os.PathLike[str], title: str = "") -> Path:
    """Draw test accuracy per epoch to a PNG (needs matplotlib: ``pip install "portable-nn[plot]"``)."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError as exc:
        raise ImportError('plotting needs matplotlib: pip install "portable-nn[plot]"') from exc
    points = [(r["epoch"], 100.0 * r["accuracy"]) for r in rows if r.get("accuracy") is not None]
    if not points:
        raise ValueError("the history has no accuracy values (train with test data to get them)")
    fig, ax = plt.subplots(figsize=(6, 4))
    ax.plot([p[0] for p in points], [p[1] for p in points], marker="o")
    ax.set_xlabel("epoch")
    ax.set_ylabel("test accuracy (%)")
    ax.set_title(title or "portable_nn training")
    ax.grid(True, alpha=0.3)
    fig.tight_layout()
    path = Path(path)
    with atomic_write(path, "wb") as handle:
        fig.savefig(handle, format="png", dpi=100)
    plt.close(fig)
    return path
