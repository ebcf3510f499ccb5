"""The benchmark runs end to end on synthetic data at tiny sizes and writes a complete report."""

from __future__ import annotations

import importlib.util
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "benchmarks" / "bench_epoch.py"
NUMBER = r"(\d+\.\d+)"
VALUE = r"(\d+(?:\.\d+)?)"  # "0.62×", "0.003 s", "412 MB"

HEADINGS = (
    "## Targets (issues 7 and 8)",
    "## Machine",
    "## Seconds per epoch, `[784, 30, 10]`, batch 10",
    "## One-off cost: ingestion into `SGD`",
    "## The README main job",
    "## Sweep: mini-batch size",
    "## GPU (CuPy)",
    "## Method",
)
RATIO_TARGETS = (
    "numpy f64 / seed matrix f64, batch 10 (main table)",
    "numpy f32 / seed matrix f32, batch 10 (main table)",
    *(f"JAX via portable_nn / hand-written JAX epoch, f32, batch {b} (sweep)" for b in (1, 10, 100, 1000)),
    "numpy f32 batch 1000 / floor (faster of 1, 2 BLAS threads) (sweep)",
)
ABSOLUTE_TARGETS = (
    "ingestion, load_data_wrapper pairs, first call (s per SGD call)",
    "ingestion, load_data_wrapper pairs, second call (s per SGD call)",
    "ingestion, plain list of the same pairs, first call (s per SGD call)",
    "ingestion, plain list of the same pairs, second call (s per SGD call)",
    "README main job: peak RSS",
    "README main job: wall time outside the epochs",
)
MAIN_ROWS = (
    ("book network.py (per-example loop)", "f64"),
    ("seed matrix version (hstack per batch)", "f64"),
    ("seed matrix version (hstack per batch)", "f32"),
    ("portable_nn numpy", "f64"),
    ("portable_nn numpy", "f32"),
    ("floor: gather + step matmuls (1 BLAS thread)", "f32"),
    ("floor: gather + step matmuls (2 BLAS threads)", "f32"),
)


def _target(text: str, label: str) -> tuple[float, float, str]:
    """(min, median, verdict) of one row of the targets table."""
    match = re.search(
        rf"^\| {re.escape(label)} \| ≤ [^|]+ \| {VALUE}(?:×| s| MB) \| {VALUE}(?:×| s| MB) \| ([^|]+) \|$",
        text,
        re.M,
    )
    assert match, f"target row missing or unmeasured: {label}\n{text}"
    return float(match[1]), float(match[2]), match[3].strip()


def test_benchmark_smoke_run_writes_every_section_with_measured_numbers(tmp_path):
    out = tmp_path / "bench.md"
    proc = subprocess.run(
        [sys.executable, str(SCRIPT), "--synthetic", "--tiny", "--out", str(out)],
        capture_output=True,
        text=True,
        timeout=170,
        cwd=ROOT,
    )
    assert proc.returncode == 0, proc.stderr
    text = out.read_text()
    for heading in HEADINGS:
        assert heading in text, heading

    for label in (*RATIO_TARGETS, *ABSOLUTE_TARGETS):
        low, median, verdict = _target(text, label)
        assert 0 < low and 0 < median, label
        assert verdict in ("met", "met at min only") or verdict.startswith("missed ("), verdict

    network2 = re.search(r"^\| network2 numpy f64 / Network numpy f64.*\| ([^|]+) \|$", text, re.M)
    assert network2, text
    if importlib.util.find_spec("portable_nn.network2") is None:
        assert network2[1].strip().startswith("not available")
    else:
        low, median, _ = _target(text, network2[0].split(" | ")[0].removeprefix("| "))
        assert 0 < low and 0 < median

    for name, dtype in MAIN_ROWS:
        row = re.search(rf"^\| {re.escape(name)} \| {dtype} \| {NUMBER} \| {NUMBER} \|", text, re.M)
        assert row, f"main-table row missing: {name} {dtype}"
        assert 0 < float(row[1]) <= float(row[2])

    sweep = text.split("## Sweep: mini-batch size", 1)[1].split("\n## ", 1)[0]
    cells = re.findall(rf"{NUMBER} \({NUMBER}\)", sweep)
    assert len(cells) >= 4 * 4, sweep  # numpy f64/f32 and the two floors at 4 batch sizes, at least
    assert all(0 < float(low) <= float(median) for median, low in cells)

    assert re.search(r"\| thread pool at run time \(threadpoolctl, in the workers\) \| \w+", text)
    assert re.search(r"\| load average \(1 min\) at start / end \| \d+\.\d\d / \d+\.\d\d \|", text)
    if importlib.util.find_spec("cupy") is None:
        assert "Not run: no GPU." in text
    if importlib.util.find_spec("matplotlib") is not None:
        assert out.with_suffix(".png").read_bytes()[:4] == b"\x89PNG"


def test_a_rewrite_of_the_benchmark_page_keeps_other_scripts_sections(monkeypatch):
    monkeypatch.syspath_prepend(str(ROOT))  # ``benchmarks`` is a folder of the checkout, not an installed package
    from benchmarks.report import keep_owned_sections

    section = "<!-- bench_jax_chunks: begin -->\n## JAX chunks\n| a | b |\n<!-- bench_jax_chunks: end -->\n"
    old = "# Benchmarks\nold numbers\n\n" + section
    kept = keep_owned_sections(old, "# Benchmarks\nnew numbers\n")
    assert kept.startswith("# Benchmarks\nnew numbers\n") and kept.endswith(section) and "old numbers" not in kept
    stale = section.replace("| a | b |", "| stale |")
    assert keep_owned_sections(old, "new\n" + stale + "tail\n") == "new\n" + section + "tail\n"
