"""The plot of a sweep directory (``portable-nn plot DIR``): accuracy against each swept option, a heat map for two."""

from __future__ import annotations

import json
import math
import os
import sys
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, TextIO

from ..history import save_figure
from .files import MANIFEST_FILE, RESULTS_FILE, SweepFileError, read_json, read_results
from .schema import check_manifest
from .trial import metric_value

__all__ = ["plot_sweep"]


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _varying(records: list[dict[str, Any]], names: list[str]) -> list[str]:
    return [n for n in names if len({json.dumps(r["config"].get(n)) for r in records}) > 1]


def plot_sweep(
    directory: str | os.PathLike[str], output_png: str | os.PathLike[str], *, warn: TextIO | None = None
) -> Path:
    """Draw a sweep directory's results to ``output_png``; return its path.

    One panel per swept parameter: the metric of each finished trial against
    the parameter's value (log axis for positive numbers spanning a factor
    of 10 or more; pruned trials hollow, at their last accuracy), with a
    line through the best value per setting.  With exactly two swept
    parameters, a heat map of the best metric over their grid is added.
    Written atomically.  Needs matplotlib.  Damaged lines of ``trials.jsonl``
    (or a damaged ``sweep.json``) are skipped and named in one line on
    ``warn`` (stderr).

    Raises :class:`~portable_nn.sweep.files.SweepFileError` (an ``OSError``)
    when ``directory`` holds no results file, it cannot be read (a link, too
    large) or no trial has an accuracy.
    """
    from .._base.errors import OptionalDependencyError

    directory = Path(directory)
    results_path = directory / RESULTS_FILE
    if not results_path.is_file() and not results_path.is_symlink():
        raise SweepFileError(f"{directory} is not a sweep directory: it has no {RESULTS_FILE}")
    results = read_results(results_path)
    manifest, problem = read_json(directory / MANIFEST_FILE, check_manifest)
    notes = [n for n in (results.summary(results_path), problem if (directory / MANIFEST_FILE).exists() else None) if n]
    if notes:
        print("portable-nn plot: warning: " + "; ".join(notes), file=warn or sys.stderr)
    records = [r for r in results.records if r.get("final_accuracy") is not None]
    if not records:
        raise SweepFileError(f"{results_path} has no trial with an accuracy to plot")
    manifest = manifest or {"metric": "validation-accuracy", "names": []}
    metric = manifest["metric"]
    names = _varying(records, manifest["names"]) or _varying(records, sorted({k for r in records for k in r["config"]}))
    names = names or manifest["names"] or ["eta"]
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ModuleNotFoundError as exc:
        raise OptionalDependencyError('plotting needs matplotlib: pip install "portable-nn[plot]"') from exc

    def value_of(r: Mapping[str, Any]) -> float:
        v = metric_value(r, metric) if r["state"] == "complete" else r.get("best_accuracy")
        return 100.0 * float(v if v is not None else math.nan)

    heat = len(names) == 2
    panels = len(names) + heat
    fig, axes = plt.subplots(1, panels, figsize=(4.8 * panels, 4), squeeze=False)
    for ax, name in zip(axes[0], names):
        _panel(ax, name, records, value_of)
        ax.set_ylabel(f"{metric} (%)")
    axes[0][0].legend(fontsize="small")
    if heat:
        image = _heat_map(axes[0][-1], names, records, value_of)
        fig.colorbar(image, ax=axes[0][-1], label=f"{metric} (%)")
    fig.suptitle(f"{directory.name}: {len(records)} trials")
    fig.tight_layout()
    return save_figure(fig, output_png)


def _panel(ax: Any, name: str, records: list[dict[str, Any]], value_of: Callable[[Mapping[str, Any]], float]) -> None:
    """One option's panel: each trial's metric against the option's value, a line through the best per value."""
    values = [r["config"].get(name) for r in records]
    numeric = all(_is_number(v) for v in values)
    if numeric:
        xs = [float(v) for v in values]
        positions: dict[Any, float] = {v: float(v) for v in values}
    else:
        labels = sorted({str(v) for v in values})
        positions = {label: float(i) for i, label in enumerate(labels)}
        xs = [positions[str(v)] for v in values]
    for state, marker, face in (("complete", "o", None), ("pruned", "o", "none"), ("failed", "x", None)):
        pts = [(x, value_of(r)) for x, r in zip(xs, records) if r["state"] == state]
        if pts:
            ax.scatter(*zip(*pts), marker=marker, facecolors=face, label=state, alpha=0.8)
    best: dict[float, float] = {}
    for x, r in zip(xs, records):
        if r["state"] == "complete":
            best[x] = max(best.get(x, -math.inf), value_of(r))
    if best:
        ax.plot(sorted(best), [best[x] for x in sorted(best)], "-", color="grey", alpha=0.6)
    if numeric and min(xs) > 0 and max(xs) >= 10 * min(xs):
        ax.set_xscale("log")
    if not numeric:
        ax.set_xticks(list(positions.values()), list(positions.keys()))
    ax.set_xlabel(name)
    ax.grid(alpha=0.3)


def _heat_map(
    ax: Any, names: list[str], records: list[dict[str, Any]], value_of: Callable[[Mapping[str, Any]], float]
) -> Any:
    """The best metric over the grid of two options, with its values written in the cells; the image."""
    a_name, b_name = names
    a_vals = sorted({json.dumps(r["config"].get(a_name)) for r in records}, key=_sort_key)
    b_vals = sorted({json.dumps(r["config"].get(b_name)) for r in records}, key=_sort_key)
    grid = [[math.nan] * len(a_vals) for _ in b_vals]
    for r in records:
        if r["state"] != "complete":
            continue
        i = b_vals.index(json.dumps(r["config"].get(b_name)))
        j = a_vals.index(json.dumps(r["config"].get(a_name)))
        grid[i][j] = value_of(r) if math.isnan(grid[i][j]) else max(grid[i][j], value_of(r))
    image = ax.imshow(grid, origin="lower", aspect="auto", cmap="viridis")
    ax.set_xticks(range(len(a_vals)), [json.loads(v) for v in a_vals])
    ax.set_yticks(range(len(b_vals)), [json.loads(v) for v in b_vals])
    ax.set_xlabel(a_name)
    ax.set_ylabel(b_name)
    for i, row in enumerate(grid):
        for j, v in enumerate(row):
            if not math.isnan(v):
                colour = label_colour(image.cmap(image.norm(v)))
                ax.text(j, i, f"{v:.2f}", ha="center", va="center", color=colour, fontsize="small")
    return image


def label_colour(rgba: Sequence[float]) -> str:
    """``"black"`` or ``"white"``, whichever reads better on a cell of colour ``rgba`` (components in [0, 1]).

    By the cell's relative luminance (WCAG 2: sRGB linearised, weighted
    0.2126/0.7152/0.0722): black on light cells (viridis's yellow and green),
    white on dark ones (its purple and blue); 0.179 is where both contrast
    ratios are equal.
    """

    def linear(c: float) -> float:
        return c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4

    r, g, b = (linear(float(c)) for c in rgba[:3])
    return "black" if 0.2126 * r + 0.7152 * g + 0.0722 * b > 0.179 else "white"


def _sort_key(text: str) -> tuple[int, Any]:
    value = json.loads(text)
    return (0, float(value)) if _is_number(value) else (1, str(value))
