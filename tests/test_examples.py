"""The examples run as a newcomer would run them."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


def _run(script: str, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(EXAMPLES / script), *args], capture_output=True, text=True, timeout=600)


@pytest.mark.slow
def test_train_cpu_runs_the_books_session(mnist_dir):
    proc = _run("train_cpu.py", "--data-dir", str(mnist_dir), "--epochs", "1", "--seed", "0")
    assert proc.returncode == 0, proc.stderr
    line = proc.stdout.strip().splitlines()[-1]
    assert line.startswith("Epoch 0: ") and line.endswith(" / 10000")
    assert int(line.split()[2]) >= 9000


def test_train_gpu_explains_a_missing_gpu(mnist_dir):
    if importlib.util.find_spec("cupy") is not None:
        pytest.skip("CuPy is installed: this test is for machines without it")
    proc = _run("train_gpu.py", "--data-dir", str(mnist_dir), "--epochs", "1")
    assert proc.returncode == 1
    assert proc.stderr.startswith("train_gpu.py needs a CUDA GPU with CuPy") and "Traceback" not in proc.stderr
