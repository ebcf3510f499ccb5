"""The benchmark script runs end to end on a few steps and writes its report."""

from __future__ import annotations

import importlib.util
import re
import subprocess
import sys
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "bench_epoch.py"


def test_benchmark_smoke_run_writes_table_targets_profile_and_plot(tmp_path):
    out = tmp_path / "bench.md"
    args = ["--synthetic", "--train-size", "200", "--reps", "1", "--sweep-samples", "100", "--sweep-reps", "1",
            "--batches", "10,100", "--hiddens", "30", "--out", str(out)]  # fmt: skip
    proc = subprocess.run([sys.executable, str(SCRIPT), *args], capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr
    text = out.read_text()
    for heading in ("## Machine", "## Seconds per epoch", "## Targets", "## Sweep", "## Where a batch-10 step"):
        assert heading in text
    rows = re.findall(
        r"^\| (book network\.py|seed matrix|portable_nn numpy)[^|]*\| (f64|f32) \| (\d+\.\d+) \|", text, re.M
    )
    assert len(rows) >= 4, text
    assert all(float(seconds) > 0 for _, _, seconds in rows)
    assert re.search(r"\| numpy f64 batch 10 / book loop \| <= 0.15 \| \d+\.\d\d \| (met|missed by)", text)
    if importlib.util.find_spec("matplotlib") is not None:
        assert out.with_suffix(".png").read_bytes()[:4] == b"\x89PNG"
