"""The before/after harness runs both checkouts' rows, alternating, and reports what it measured."""

from __future__ import annotations

import importlib.util
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_bench_compare_of_a_checkout_with_itself_writes_every_row(mnist_dir, tmp_path):
    """One epoch row and both conv rows, the checkout against itself: two mins, two medians, two ratios each."""
    out = tmp_path / "page.md"
    cmd = [sys.executable, str(ROOT / "benchmarks" / "bench_compare.py"), "--before", str(ROOT), "--after", str(ROOT),
           "--data-dir", str(mnist_dir), "--rounds", "2", "--n", "200", "--conv-n", "40", "--batches", "10",
           "--conv-batches", "20", "--rows", "portable:numpy:float32", "--env", "PORTABLE_NN_BENCH_PROBE=1",
           "--out", str(out)]  # fmt: skip
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    page = out.read_text()
    numbers = r" \| ".join([r"(\d+\.\d{3})"] * 6)
    rows = re.findall(r"^\| ([^|]+) \| ([^|]+) \| " + numbers + r" \|$", page, re.M)
    expected = ["portable:numpy:float32", "portable_nn numpy"]
    if importlib.util.find_spec("torch") is not None:
        expected.append("portable_nn torch")
    assert [r[0] for r in rows] == expected, page
    for row in rows:
        before_min, before_median, after_min, after_median, ratio_min, ratio_median = map(float, row[2:])
        assert 0 < before_min <= before_median and 0 < after_min <= after_median
        assert abs(ratio_min - after_min / before_min) < 0.01 * max(1.0, ratio_min)  # from the 3-decimal figures
        assert abs(ratio_median - after_median / before_median) < 0.01 * max(1.0, ratio_median)
    assert "--env PORTABLE_NN_BENCH_PROBE=1" in page and "1-minute load during the run: min" in page
    assert "## Machine" in page
