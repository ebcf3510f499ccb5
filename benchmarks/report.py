"""The report writer: ``docs/benchmarks.md`` (targets table first) and its plot, from one :class:`Run`.

Nothing here measures anything and nothing is typed in: every number comes
from the :class:`Run` that :mod:`benchmarks.bench_epoch` filled.
"""

from __future__ import annotations

import math
import re
import statistics
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .workers import Result

#: Spec prefixes of the rows the targets compare.
NUMPY64, NUMPY32 = "portable:numpy:float64", "portable:numpy:float32"
SEED64, SEED32 = "seed:float64", "seed:float32"
JAX_PORTABLE, JAX_HAND = "portable:jax:float32", "jax_epoch:float32"
NETWORK2 = "network2:float64"
CUPY32 = "portable:cupy:float32"


@dataclass
class Run:
    """Everything one benchmark run measured, plus how it was run."""

    command: str
    date: str
    mode: str
    train_size: int
    rounds: int
    sweep_rounds: int
    sweep_steps: int
    machine: list[tuple[str, str]]
    busy: list[str]
    load_start: float
    main: list[Result] = field(default_factory=list)
    sweep: list[Result] = field(default_factory=list)
    ingestion: dict[str, Any] = field(default_factory=dict)
    readme: dict[str, Any] = field(default_factory=dict)
    blas: dict[str, list[dict[str, str]]] = field(default_factory=dict)  # row name -> its pools
    notes: list[str] = field(default_factory=list)
    gpu: str = ""
    load_end: float = float("nan")
    elapsed: float = 0.0
    network2_available: bool = False
    torch_threads: dict[str, int] = field(default_factory=dict)  # torch row name -> intra-op threads


# -- sections other scripts own ----------------------------------------------------
_OWNED = re.compile(r"<!-- ([\w.-]+): begin -->.*?<!-- \1: end -->\n?", re.S)


def _owned(name: str) -> re.Pattern[str]:
    return re.compile(re.escape(f"<!-- {name}: begin -->") + r".*?" + re.escape(f"<!-- {name}: end -->") + r"\n?", re.S)


def keep_owned_sections(old: str, new: str) -> str:
    """``new`` with every ``<!-- NAME: begin --> ... <!-- NAME: end -->`` span of ``old`` kept (replaced in
    place where ``new`` has the same span, else appended): another script's section (``bench_jax_chunks``)
    survives a rewrite of the page."""
    for match in _OWNED.finditer(old):
        span = match.group(0) if match.group(0).endswith("\n") else match.group(0) + "\n"
        same = _owned(match.group(1))
        new = same.sub(lambda _, span=span: span, new) if same.search(new) else new.rstrip("\n") + "\n\n" + span
    return new


# -- formatting ------------------------------------------------------------------
def fmt(x: float | None) -> str:
    """Seconds to about 3 significant figures, in fixed notation (0.000412, 0.0123, 1.234, 12.3).

    Fixed decimals alone would print a sub-millisecond time as ``0.000``: a measured
    time must never read as zero.
    """
    if x is None or x != x:
        return "–"
    if x >= 10:
        return f"{x:.1f}"
    if x >= 0.01 or x <= 0:
        return f"{x:.3f}"
    decimals = 2 - math.floor(math.log10(x))
    return f"{x:.{decimals}f}"


def _load_range(results: list[Result]) -> str:
    loads = [v for r in results for pair in r.loads for v in pair]
    return f"{min(loads):.2f}–{max(loads):.2f}" if loads else "–"


def find(results: list[Result], spec: str, batch: int | None = None, hidden: int = 30) -> Result | None:
    """The measured row with this spec (and batch, hidden), or ``None``."""
    for r in results:
        if r.spec == spec and r.ok and r.hidden == hidden and (batch is None or r.batch == batch):
            return r
    return None


def floor_of(results: list[Result], dtype: str, batch: int, hidden: int = 30) -> Result | None:
    """The faster (by median) of the 1- and 2-thread floors of ``dtype`` at this batch and hidden size."""
    floors = [r for r in results if r.spec.startswith(f"floor:{dtype}:") and r.ok]
    floors = [r for r in floors if r.batch == batch and r.hidden == hidden]
    return min(floors, key=lambda r: r.median, default=None)


# -- the targets ---------------------------------------------------------------------
@dataclass
class Target:
    """One row of the targets table: ``min``/``median`` are ratios, seconds or MB as ``unit`` says."""

    label: str
    limit: float
    unit: str = "×"
    min: float | None = None
    median: float | None = None
    missing: str = ""

    @property
    def verdict(self) -> str:
        if self.median is None or self.min is None:
            return self.missing or "not measured"
        if self.median <= self.limit:
            return "met"
        if self.min <= self.limit:
            return "met at min only"
        return f"missed ({self.median / self.limit:.2f}× the limit)"

    def cell(self, value: float | None) -> str:
        if value is None:
            return "–"
        if self.unit == "×":
            return f"{value:.2f}×"
        if self.unit == "MB":
            return f"{value:.0f} MB"
        return f"{value:.5f} s" if value < 0.01 else f"{value:.3f} s"


def _ratio(label: str, limit: float, a: Result | None, b: Result | None, missing: str = "") -> Target:
    if a is None or b is None:
        return Target(label, limit, missing=missing or "not measured (row missing or failed)")
    return Target(label, limit, min=a.min / b.min, median=a.median / b.median)


def _network2_target(run: Run) -> Target:
    label = "network2 numpy f64 / Network numpy f64, batch 10 (main table)"
    if not run.network2_available:
        return Target(label, 1.1, missing="not available (`import portable_nn.network2` fails)")
    n2, net = find(run.main, NETWORK2, 10), find(run.main, NUMPY64, 10)
    if n2 is None or net is None:
        return Target(label, 1.1, missing="not measured (row failed: see Notes)")
    if n2.source == "wall":  # network2 gave no epoch times: compare whole SGD calls on both sides
        return Target(
            label + " — whole SGD calls", 1.1, min=n2.wall_min / net.wall_min, median=n2.wall_median / net.wall_median
        )
    return Target(label, 1.1, min=n2.min / net.min, median=n2.median / net.median)


def _absolute(label: str, limit: float, unit: str, values: list[float] | None, missing: str) -> Target:
    if not values:
        return Target(label, limit, unit, missing=missing)
    return Target(label, limit, unit, min=min(values), median=statistics.median(values))


def targets(run: Run) -> list[Target]:
    """Issue 7's (and issue 8's) targets, each from rows measured in this run."""
    rows = [
        _ratio(
            "numpy f64 / seed matrix f64, batch 10 (main table)",
            0.5,
            find(run.main, NUMPY64, 10),
            find(run.main, SEED64, 10),
        ),
        _ratio(
            "numpy f32 / seed matrix f32, batch 10 (main table)",
            0.40,
            find(run.main, NUMPY32, 10),
            find(run.main, SEED32, 10),
        ),
    ]
    for batch in (1, 10, 100, 1000):
        rows.append(
            _ratio(
                f"JAX via portable_nn / hand-written JAX epoch, f32, batch {batch} (sweep)",
                1.2,
                find(run.sweep, JAX_PORTABLE, batch),
                find(run.sweep, JAX_HAND, batch),
            )
        )
    cells = run.ingestion.get("cells", {})
    missing = run.ingestion.get("error", "not measured")
    names = {
        "loader": "load_data_wrapper pairs",
        "plain list": "plain list of the same pairs",
        "separate arrays": "list of 50,000 separately allocated pairs",
    }
    for form, limit in (("loader", 0.05), ("plain list", 0.5), ("separate arrays", 0.5)):
        for call in ("first call", "second call"):
            what = names[form]
            rows.append(
                _absolute(
                    f"ingestion, {what}, {call} (s per SGD call)", limit, "s", cells.get(f"{form}, {call}"), missing
                )
            )
    readme = run.readme
    rows.append(
        _absolute(
            "README main job: peak RSS",
            600,
            "MB",
            [readme["rss_mb"]] if "rss_mb" in readme else None,
            readme.get("error", "not measured"),
        )
    )
    outside = [readme["wall"] - sum(readme["epoch_seconds"])] if "wall" in readme else None
    rows.append(
        _absolute(
            "README main job: wall time outside the epochs", 1.5, "s", outside, readme.get("error", "not measured")
        )
    )
    rows.append(
        _ratio(
            "numpy f32 batch 1000 / floor (faster of 1, 2 BLAS threads) (sweep)",
            1.3,
            find(run.sweep, NUMPY32, 1000),
            floor_of(run.sweep, "float32", 1000),
        )
    )
    rows.append(_network2_target(run))
    return rows


# -- sections --------------------------------------------------------------------
def _machine(run: Run) -> list[str]:
    lines = ["## Machine", "", "| | |", "| --- | --- |", *[f"| {k} | {v} |" for k, v in run.machine]]
    kernels: dict[str, list[str]] = {}
    for row, pools in run.blas.items():
        for pool in pools:
            if "error" in pool:
                key = pool["error"]
            else:
                key = (
                    f"{pool['internal_api']} {pool['version']} ({pool['user_api']}), kernel "
                    f"{pool['architecture'] or 'n/a'}, {pool['num_threads']} threads: {Path(pool['filepath']).name}"
                )
            kernels.setdefault(key, []).append(row)
    for key, rows in kernels.items():
        where = ", ".join(rows) if len(rows) <= 4 else f"{len(rows)} rows"
        lines.append(f"| thread pool at run time (threadpoolctl, in the workers) | {key} — in {where} |")
    if run.torch_threads:
        threads = ", ".join(f"{name}: {n}" for name, n in run.torch_threads.items())
        lines.append(f"| torch intra-op threads (`--torch-threads`, 0 = torch's default) | {threads} |")
    lines += [
        f"| load average (1 min) at start / end | {run.load_start:.2f} / {run.load_end:.2f} |",
        f"| busiest other processes at start (1 s sample) | {'; '.join(run.busy) or 'none'} |",
        "",
    ]
    return lines


def _main_table(run: Run) -> list[str]:
    seed = find(run.main, SEED64, 10)
    lines = [
        "## Seconds per epoch, `[784, 30, 10]`, batch 10, eta 3.0",
        "",
        f"{run.train_size:,} MNIST training images per epoch; training only (shuffle included, evaluation "
        f"excluded).  One untimed warm-up epoch per row, then {run.rounds} strictly alternating rounds "
        "(every row one epoch per round, same order); min and median over the rounds.  Each row runs in its "
        "own process; peak RSS is that process's (interpreter, libraries and its copy of the data included).  "
        "`portable_nn` rows: `EpochResult.seconds` from `SGD(data, 1, 10, 3.0, quiet=True)` on stacked "
        "arrays; *SGD call* is the wall time of that whole call.",
        "",
        "| implementation | dtype | min (s) | median (s) | SGD call, median (s) | median / seed f64 "
        "| rounds | load (1 min) during row | peak RSS (MB) |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for r in run.main:
        if not r.ok:
            lines.append(f"| {r.name} | {r.short_dtype} | failed | | | | | | |")
            continue
        call = fmt(r.wall_median) if r.source != "timer" else ""
        rel = f"{r.median / seed.median:.2f}" if seed else ""
        lines.append(
            f"| {r.name} | {r.short_dtype} | {fmt(r.min)} | {fmt(r.median)} | {call} | {rel} "
            f"| {len(r.seconds)} | {_load_range([r])} | {r.rss_mb:.0f} |"
        )
    lines += ["", f"Load (1-minute average) over the whole table: {_load_range(run.main)}.", ""]
    return lines


def _ingestion(run: Run) -> list[str]:
    ing = run.ingestion
    lines = ["## One-off cost: ingestion into `SGD`", ""]
    if "cells" not in ing:
        return [*lines, f"Not measured: {ing.get('error', 'skipped')}.", ""]
    rounds = len(ing["load_data_wrapper"])
    lines += [
        f"Wall time of `Network([784, 30, 10], seed=0).SGD(data, 1, 10, 3.0, quiet=True)` minus that epoch's "
        f"`EpochResult.seconds`, on a fresh network each call; the first call on a data object, then a second "
        f"call on the same object.  *loader*: the `training_data` from `portable_nn.load_data_wrapper` "
        f"({ing['n_pairs']:,} pairs); *plain list*: `[(x, y) for x, y in training_data]`, the same arrays in "
        f"an ordinary list (views of one array: converted without a copy); *separate arrays*: "
        f"`[(x.copy(), y.copy()) ...]`, every pair its own allocation (one copy into a fresh array).  "
        f"{rounds} round(s), each with freshly loaded data; own process.",
        "",
        "| data, call | min (s) | median (s) |",
        "| --- | --- | --- |",
    ]
    for cell, values in ing["cells"].items():
        lines.append(f"| {cell} | {min(values):.4f} | {statistics.median(values):.4f} |")
    loads = ing["load_data_wrapper"]
    lines += [
        "",
        f"`load_data_wrapper(data_dir)` itself: min {min(loads):.2f} s, median "
        f"{statistics.median(loads):.2f} s (reading and decoding the IDX files, building the pairs).",
        "",
    ]
    return lines


def _readme(run: Run) -> list[str]:
    job = run.readme
    lines = ["## The README main job", ""]
    if "wall" not in job:
        return [*lines, f"Not measured: {job.get('error', 'skipped')}.", ""]
    epochs = job["epoch_seconds"]
    outside = job["wall"] - sum(epochs)
    lines += [
        f"`{job['command']}` run once as a child of a fresh worker process (data dir as above).",
        "",
        "| | |",
        "| --- | --- |",
        f"| epochs | {len(epochs)} (final test accuracy {job['final_accuracy']:.4f}) |"
        if job["final_accuracy"] is not None
        else f"| epochs | {len(epochs)} |",
        f"| total wall time | {job['wall']:.2f} s |",
        f"| sum of the per-epoch `seconds` in the history | {sum(epochs):.2f} s "
        f"(min {min(epochs):.3f}, median {statistics.median(epochs):.3f} s per epoch) |"
        if epochs
        else "| sum of per-epoch seconds | 0 |",
        f"| wall time outside the epochs | {outside:.2f} s |",
        f"| of which interpreter start + CLI imports (`portable-nn --version`, timed separately) | "
        f"{job['startup']:.2f} s |",
        f"| peak RSS of the job (`getrusage(RUSAGE_CHILDREN)`) | {job['rss_mb']:.0f} MB |",
        "",
        "Time outside the epochs includes interpreter start and imports, reading MNIST, moving it into `SGD`, "
        "the per-epoch test-set evaluation, and writing the model and history.",
        "",
    ]
    return lines


def _sweep(run: Run, plot: bool) -> list[str]:
    if not run.sweep:
        return []
    batches = sorted({r.batch for r in run.sweep})
    images = {b: next(r.n for r in run.sweep if r.batch == b) for b in batches}
    lines = [
        "## Sweep: mini-batch size",
        "",
        f"Seconds per {run.train_size:,}-image epoch, median (min) over {run.sweep_rounds} alternating rounds "
        "after a warm-up.  Each cell trains the first min(N, "
        f"{run.sweep_steps:,} × batch) images and is scaled to a {run.train_size:,}-image epoch: "
        + ", ".join(f"{images[b]:,} images at batch {b}" for b in batches)
        + ".  Floors: see *Method*.",
        "",
    ]
    for hidden in sorted({r.hidden for r in run.sweep}):
        lines += [
            f"### `[784, {hidden}, 10]`",
            "",
            "| implementation | dtype | " + " | ".join(f"batch {b}" for b in batches) + " |",
            "| --- | --- |" + " --- |" * len(batches),
        ]
        rows: list[tuple[str, str, str]] = []
        for r in run.sweep:
            if r.hidden == hidden and (r.spec, r.name, r.short_dtype) not in rows:
                rows.append((r.spec, r.name, r.short_dtype))
        for spec, name, dtype in rows:
            cells = []
            for b in batches:
                match = [r for r in run.sweep if r.spec == spec and r.batch == b and r.hidden == hidden]
                cells.append(f"{fmt(match[0].median)} ({fmt(match[0].min)})" if match and match[0].ok else "–")
            lines.append(f"| {name} | {dtype} | " + " | ".join(cells) + " |")
        lines += [
            "",
            f"Load (1-minute average) during this sweep: {_load_range([r for r in run.sweep if r.hidden == hidden])}.",
            "",
        ]
    if plot:
        lines += ["![seconds per epoch against mini-batch size](benchmarks.png)", ""]
    return lines


def _gpu(run: Run) -> list[str]:
    lines = ["## GPU (CuPy)", ""]
    if run.gpu:
        return [*lines, f"Not run: {run.gpu}.", ""]
    crossover = None
    for batch in sorted({r.batch for r in run.sweep if r.hidden == 30}):
        gpu, cpu = find(run.sweep, CUPY32, batch), find(run.sweep, NUMPY32, batch)
        if gpu and cpu and gpu.median < cpu.median:
            crossover = batch
            break
    text = (
        f"CuPy f32 beats NumPy f32 on this CPU from batch {crossover} on (hidden 30, sweep)."
        if crossover
        else "CuPy f32 did not beat NumPy f32 on this CPU at any swept batch size (hidden 30)."
    )
    return [*lines, text, ""]


def _method() -> list[str]:
    return [
        "## Method",
        "",
        "- *floor*: per epoch one permutation; per step, gather the step's input and one-hot target rows by "
        "index from the resident data set (cold operands, each image read once per epoch), the step's five "
        "matmuls (`W1 @ x`, `W2 @ a1`, `W2.T @ δ2`, `δ2 @ a1.T`, `δ1 @ x`) and the in-place weight updates; "
        "no sigmoids, element-wise work or biases.  Timed with NumPy at 1 and at 2 BLAS threads "
        "(threadpoolctl); targets use the faster of the two.",
        "- *seed matrix version*: the seed's `update_mini_batch` — `np.hstack` of the batch's `(784, 1)` "
        "pairs, one matrix backprop — over the book's list of pairs, shuffled with `random.shuffle`.",
        "- *hand-written JAX*: one `jax.jit` call per epoch, `lax.fori_loop` over the mini-batches, each "
        "gathering its rows by index (`jnp.take`) from the device-resident data set, same math as "
        "`portable_nn` (tanh sigmoid, quadratic cost, backprop by hand).",
        "- Ratios in the targets table: *min* is min(row) / min(reference), *median* is median(row) / "
        "median(reference), both from this run.  *met*: median within the limit; *met at min only*: only the "
        "min is.",
        "- torch rows run with the intra-op thread count under *Machine* (`--torch-threads`, default 1; 0 "
        "keeps torch's default, 2 here): at these sizes extra threads buy nothing, and on a loaded 2-core "
        "machine torch's OpenMP barriers made 2-thread epochs 10-60× slower in trials.  NumPy rows use "
        "OpenBLAS's default thread count, as users get; the floors show 1 and 2 threads.",
        "- Every worker process runs without `OPENBLAS_CORETYPE` / `OPENBLAS_L2_SIZE`; the BLAS kernel each "
        "then loaded is listed under *Machine*.",
        "",
    ]


def write_plot(run: Run, path: Path) -> bool:
    """Seconds per epoch against batch size, one panel per hidden size; ``False`` without matplotlib."""
    if not run.sweep:
        return False
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return False
    hiddens = sorted({r.hidden for r in run.sweep})
    fig, axes = plt.subplots(1, len(hiddens), figsize=(6.5 * len(hiddens), 5), squeeze=False)
    for ax, hidden in zip(axes[0], hiddens):
        rows = [r for r in run.sweep if r.hidden == hidden and r.ok]
        for spec in dict.fromkeys(r.spec for r in rows):
            points = sorted((r.batch, r.median, r.min) for r in rows if r.spec == spec)
            first = next(r for r in rows if r.spec == spec)
            style: dict[str, Any] = {"linestyle": "--"} if spec.startswith("floor") else {}
            ax.plot(
                [p[0] for p in points],
                [p[1] for p in points],
                marker="o",
                label=f"{first.name} {first.short_dtype}",
                **style,
            )
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel("mini-batch size")
        ax.set_ylabel(f"seconds per {run.train_size:,}-image epoch (median)")
        ax.set_title(f"[784, {hidden}, 10], training time per epoch")
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return True


def render(run: Run, plot: bool) -> str:
    """The whole markdown report."""
    table: list[Target] = targets(run)
    lines = [
        "# Benchmarks",
        "",
        f"Generated by `{run.command}` on {run.date} ({run.mode} mode) in {run.elapsed / 60:.1f} minutes.  "
        "Every figure below was measured in that one run; nothing is typed in.",
        "",
        "## Targets (issues 7 and 8)",
        "",
        "| target | limit | measured min | measured median | verdict |",
        "| --- | --- | --- | --- | --- |",
        *[f"| {t.label} | ≤ {t.cell(t.limit)} | {t.cell(t.min)} | {t.cell(t.median)} | {t.verdict} |" for t in table],
        "",
    ]
    sections: list[Callable[[], list[str]]] = [
        lambda: _machine(run),
        lambda: _main_table(run),
        lambda: _ingestion(run),
        lambda: _readme(run),
        lambda: _sweep(run, plot),
        lambda: _gpu(run),
        _method,
    ]
    for section in sections:
        lines += section()
    if run.notes:
        lines += ["## Notes", "", *[f"- {n}" for n in run.notes], ""]
    return "\n".join(lines)
