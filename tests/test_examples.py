"""The examples run as a newcomer would run them, and never write into the committed docs/ unless asked (--doc)."""

from __future__ import annotations

import hashlib
import importlib.util
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "examples"


def _run(script: str, *args: str, cwd: Path | None = None, env: dict | None = None, timeout: float = 600):
    return subprocess.run(
        [sys.executable, str(EXAMPLES / script), *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=cwd,
        env=None if env is None else {**os.environ, **env},
    )


def _one_error_line(proc: subprocess.CompletedProcess, script: str, *fragments: str) -> None:
    assert proc.returncode == 2, (proc.returncode, proc.stderr[-2000:])
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in proc.stderr, proc.stderr[-2000:]
    assert lines[0].startswith(f"{script}: error: "), lines
    for fragment in fragments:
        assert fragment in lines[0], lines


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


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


EVERY_EXAMPLE = [
    ("train_cpu.py", ()),
    ("train_gpu.py", ()),
    ("chapter3.py", ()),
    ("chapter6.py", ("train", "ch6-fc:1")),
    ("sweep_chapter3.py", ()),
]


@pytest.mark.parametrize(("script", "args"), EVERY_EXAMPLE, ids=[s for s, _ in EVERY_EXAMPLE])
def test_a_missing_data_dir_is_one_line_and_is_not_created(script, args, tmp_path):
    missing = tmp_path / "nothere" / "mnist"
    proc = _run(script, *args, "--data-dir", str(missing), cwd=tmp_path, timeout=120)
    _one_error_line(proc, script, f"--data-dir {missing} does not exist")
    assert not (tmp_path / "nothere").exists()
    assert not (tmp_path / "portable-nn-runs").exists()  # stopped before anything was written


OUTPUTS = [
    ("chapter3.py", ()),
    ("chapter6.py", ("train", "ch6-fc:1")),
    ("chapter6.py", ("report",)),
    ("sweep_chapter3.py", ()),
]


@pytest.mark.parametrize(("script", "args"), OUTPUTS, ids=[" ".join((s, *a)) for s, a in OUTPUTS])
def test_an_out_dir_in_a_missing_folder_is_found_before_the_work(script, args, tmp_path, mnist_dir):
    out = tmp_path / "missing" / "results"
    data = () if args == ("report",) else ("--data-dir", str(mnist_dir))  # report reads no data
    proc = _run(script, *args, *data, "--out", str(out), cwd=tmp_path, timeout=120)
    _one_error_line(proc, script, f"--out {out}", "does not exist")
    assert not out.parent.exists()


def test_chapter6_report_writes_to_a_working_directory_not_docs(tmp_path):
    pytest.importorskip("matplotlib")
    committed = {p: _digest(p) for p in [ROOT / "docs" / "chapter6.md", ROOT / "docs" / "chapter6_accuracy.png"]}
    proc = _run("chapter6.py", "report", cwd=tmp_path, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    page = tmp_path / "portable-nn-runs" / "chapter6" / "chapter6.md"
    assert page.is_file()
    assert "runs in `portable-nn-runs/chapter6/chapter6_runs/`" in page.read_text()
    assert "Not run (no result file)" in page.read_text()  # a fresh working directory has no runs yet
    assert {p: _digest(p) for p in committed} == committed  # docs/ untouched


def test_chapter6_doc_and_out_are_exclusive(tmp_path):
    proc = _run("chapter6.py", "report", "--doc", "--out", str(tmp_path), cwd=tmp_path, timeout=120)
    assert proc.returncode == 2 and "not allowed with argument" in proc.stderr and "Traceback" not in proc.stderr


def test_sweep_leaves_no_temporary_directory(tmp_path):
    pytest.importorskip("distributed")
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    empty = tmp_path / "empty"  # exists, holds no MNIST: the run fails after its temporary directory exists
    empty.mkdir()
    proc = _run("sweep_chapter3.py", "--data-dir", str(empty), cwd=tmp_path, env={"TMPDIR": str(scratch)}, timeout=300)
    assert proc.returncode != 0 and "MNIST files missing" in proc.stderr
    assert list(scratch.iterdir()) == []


def test_generated_bench_conv_page_prints_no_machine_paths():
    text = (ROOT / "docs" / "bench_conv.md").read_text()
    assert not re.findall(r"(?<![\w.])/(?:work|home|root|tmp|usr|opt|Users)/\S*", text)
    spec = importlib.util.spec_from_file_location("bench_conv_paths", ROOT / "benchmarks" / "bench_conv.py")
    module = importlib.util.module_from_spec(spec)
    saved = sys.argv
    sys.argv = ["bench_conv.py"]  # bench_conv reads --threads from sys.argv at import
    try:
        spec.loader.exec_module(module)
    finally:
        sys.argv = saved
    import numpy

    line = f"  200  0.1  {numpy.__file__}:1(f)  {ROOT / 'portable_nn' / 'conv.py'}:2(g)  {os.__file__}:3(h)"
    cleaned = module.machine_paths_removed(line)
    assert "site-packages/numpy/__init__.py:1(f)" in cleaned and " portable_nn/conv.py:2(g)" in cleaned
    assert "stdlib/os.py:3(h)" in cleaned and str(ROOT) not in cleaned
