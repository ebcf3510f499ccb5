"""``portable-nn sweep`` when things go wrong (issue 17), run through the console script in a subprocess.

Each test names the class of issue 17 it proves.  Sweeps here are tiny
(``[784, 10, 10]``, a few hundred images, one or two epochs); the checks that
must happen before any trial are asserted to happen before any Dask process
starts (they return within a second or two and leave nothing trained).
"""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import struct
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from helpers import sweep_record

pytest.importorskip("distributed")
pytest.importorskip("optuna")
pytest.importorskip("optuna_integration")

from portable_nn._data.idx import read_idx, write_idx
from portable_nn.sweep import (
    RESULTS_FILE,
    SweepFileError,
    format_table,
    prepare_out,
    read_records,
    read_results,
)
from portable_nn.sweep.files import out_lock

TINY = ["--train-size", "300", "--validation-size", "100", "--test-size", "100"]
NET = ["--param", "epochs=1"]
_SCRIPT = Path(sys.executable).with_name("portable-nn")
COMMAND = [str(_SCRIPT)] if _SCRIPT.exists() else [sys.executable, "-m", "portable_nn"]
ERROR = re.compile(r"^portable-nn \w+: error: ", re.MULTILINE)


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PORTABLE_NN_") and k != "PYTHONWARNINGS"}
    return {**env, "PYTHONUNBUFFERED": "1", **extra}


def sweep_cli(
    *args: str, cwd: Path, env: dict[str, str] | None = None, timeout: float = 120
) -> subprocess.CompletedProcess:
    return subprocess.run(
        [*COMMAND, *args], capture_output=True, text=True, cwd=cwd, env=env or _env(), timeout=timeout
    )


def tiny_sweep(out: Path, mnist_dir: Path, *extra: str) -> list[str]:
    return ["sweep", *NET, *extra, "--data-dir", str(mnist_dir), *TINY, "--workers", "1", "--out", str(out)]


def one_error(proc: subprocess.CompletedProcess, status: int, *fragments: str) -> str:
    """Exit ``status``, no traceback, exactly one error line holding every fragment; returns the line."""
    assert proc.returncode == status, f"exit {proc.returncode}\nstdout:\n{proc.stdout}\nstderr:\n{proc.stderr}"
    assert "Traceback" not in proc.stderr, proc.stderr
    errors = ERROR.findall(proc.stderr)
    assert len(errors) == 1, proc.stderr
    line = next(line for line in proc.stderr.splitlines() if ERROR.match(line))
    for fragment in fragments:
        assert fragment in line, f"{fragment!r} not in {line!r}"
    return line


def no_traceback(proc: subprocess.CompletedProcess) -> None:
    for marker in ("Traceback", "FuturesCancelledError", "UpdateFinishedTrialError", "KeyboardInterrupt"):
        assert marker not in proc.stderr, proc.stderr


# -- class 1: nothing in --out is followed through a link; --out checked before any trial ----------------------


@pytest.mark.parametrize("name", ["trials.jsonl", "sweep.json", "chosen.json", ".sweep.lock"])
def test_a_link_in_out_is_refused_before_any_trial(name, mnist_dir, tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    precious = tmp_path / "precious.txt"
    precious.write_text("keep me\n")
    (out / name).symlink_to(precious)
    proc = sweep_cli(*tiny_sweep(out, mnist_dir), cwd=tmp_path)
    one_error(proc, 2, str(out / name), "symbolic link")
    assert precious.read_text() == "keep me\n"  # not truncated, appended to or replaced
    assert (out / name).is_symlink()
    assert sorted(p.name for p in out.iterdir()) == [name]  # nothing else written: no trial ran


def test_a_fifo_in_out_is_refused_without_blocking(mnist_dir, tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    os.mkfifo(out / RESULTS_FILE)
    proc = sweep_cli(*tiny_sweep(out, mnist_dir), cwd=tmp_path, timeout=60)
    one_error(proc, 2, "not a regular file")


def test_out_inside_a_file_is_refused(mnist_dir, tmp_path):
    (tmp_path / "file").write_text("x")
    proc = sweep_cli(*tiny_sweep(tmp_path / "file" / "out", mnist_dir), cwd=tmp_path)
    one_error(proc, 2, "--out")
    assert (tmp_path / "file").read_text() == "x"


def test_the_lock_works_without_fcntl(tmp_path):
    """Where ``fcntl`` is missing the lock still excludes a second sweep (filelock's portable lock)."""
    code = f"""
import sys
sys.modules["fcntl"] = None  # as on a platform without it
from pathlib import Path
from portable_nn.sweep.files import SweepFileError, out_lock
out = Path({str(tmp_path)!r})
with out_lock(out):
    try:
        with out_lock(out):
            print("second lock taken")
    except SweepFileError as exc:
        print("refused:", exc)
"""
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=_env(), timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("refused: another sweep is writing"), proc.stdout


def test_a_second_sweep_on_the_same_out_is_refused_in_one_line(mnist_dir, tmp_path):
    out = prepare_out(tmp_path / "out")
    with out_lock(out):
        proc = sweep_cli(*tiny_sweep(out, mnist_dir), cwd=tmp_path)
    one_error(proc, 1, "another sweep is writing")
    assert not (out / RESULTS_FILE).exists()


# -- classes 8 and 11: sweep files read with a size limit, checked against the schema, never a traceback -------


def test_an_oversized_results_file_is_refused_in_one_line(mnist_dir, tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (out / RESULTS_FILE).write_bytes(b"{}\n" * 1000)
    env = _env(PORTABLE_NN_MAX_HISTORY_BYTES="1K")
    one_error(sweep_cli(*tiny_sweep(out, mnist_dir), cwd=tmp_path, env=env), 1, "more than the limit of 1024")
    one_error(sweep_cli("plot", str(out), "-o", str(tmp_path / "p.png"), cwd=tmp_path, env=env), 1, "limit")
    assert not (tmp_path / "p.png").exists()


def test_a_sparse_2_gib_results_file_is_refused_before_reading(tmp_path):
    path = tmp_path / RESULTS_FILE
    with open(path, "wb") as handle:
        handle.truncate(2**31)
    with pytest.raises(SweepFileError, match="more than the limit"):
        read_results(path)


DAMAGED_LINES = [
    b'{"config": 5, "state": "complete", "params": {}, "key": "", "history": []}',  # wrong type, valid JSON
    b"[" * 100_000 + b"]" * 100_000,  # nested 100,000 deep
    json.dumps(sweep_record(eta=0.5)).replace('"final_accuracy": 0.505', '"final_accuracy": NaN').encode(),
    json.dumps({**sweep_record(eta=0.5), "final_accuracy": 7.5, "best_accuracy": 7.5}).encode(),  # accuracy 7.5
    json.dumps({**sweep_record(eta=0.5), "state": "finished"}).encode(),  # unknown state
    json.dumps({**sweep_record(eta=0.5), "history": [{"epoch": 0, "correct": 9, "n": 4, "accuracy": 1.0}]}).encode(),
    b"\xff\xfe not utf-8",
    b'{"config": {"eta": 2.0}, "sta',  # torn by a crash
]


def test_damaged_lines_are_skipped_counted_and_named(tmp_path):
    path = tmp_path / RESULTS_FILE
    good = [sweep_record(eta=0.5), sweep_record("failed", eta=3.0)]
    lines = [json.dumps(good[0]).encode(), *DAMAGED_LINES, json.dumps(good[1]).encode()]
    path.write_bytes(b"\n".join(lines) + b"\n")
    results = read_results(path)
    assert [r["params"]["eta"] for r in results.records] == [0.5, 3.0]
    assert len(results.bad) == len(DAMAGED_LINES)
    assert [int(b.split(":")[0].split()[1]) for b in results.bad] == list(range(2, 2 + len(DAMAGED_LINES)))
    assert "nested too deeply" in results.bad[1] and "NaN" in results.bad[2] and "[0, 1]" in results.bad[3]
    summary = results.summary(path)
    assert summary.count("\n") == 0 and f"skipped {len(DAMAGED_LINES)} damaged line(s)" in summary


@pytest.mark.parametrize(
    ("change", "fragment"),
    [
        ({"final_accuracy": 7.5}, "final_accuracy must be a number in [0, 1]"),
        ({"best_accuracy": -0.1}, "best_accuracy"),
        ({"state": "running"}, "state must be one of"),
        ({"key": "other"}, "key is not the canonical JSON"),
        ({"attempts": 0}, "attempts"),
        ({"seconds": "fast"}, "seconds"),
        ({"params": {"eta": 0.7}}, "params.eta"),
        ({"worker": 5}, "worker"),
        ({"history": "none"}, "history must be a list"),
    ],
)
def test_each_field_of_a_record_is_checked(change, fragment, tmp_path):
    path = tmp_path / RESULTS_FILE
    path.write_text(json.dumps({**sweep_record(eta=0.5), **change}) + "\n")
    results = read_results(path)
    assert results.records == [] and len(results.bad) == 1
    assert fragment in results.bad[0], results.bad[0]


@pytest.mark.parametrize(
    ("option", "value"),
    [("eta", -1.0), ("eta", True), ("hidden", 0), ("hidden", "10x"), ("cost", "cubic"), ("seed", -1), ("batch", 1.5)],
)
def test_each_option_of_a_config_is_checked(option, value, tmp_path):
    record = sweep_record(eta=0.5)
    record["config"][option] = value
    path = tmp_path / RESULTS_FILE
    path.write_text(json.dumps(record) + "\n")
    assert read_records(path) == []


def test_empty_files_read_as_no_records(tmp_path):
    (tmp_path / RESULTS_FILE).write_bytes(b"")
    assert read_results(tmp_path / RESULTS_FILE).records == []
    (tmp_path / RESULTS_FILE).write_bytes(b"\n\n  \n")
    assert read_results(tmp_path / RESULTS_FILE).bad == []


def test_a_damaged_sweep_directory_resumes_and_plots_with_one_warning(mnist_dir, tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (out / RESULTS_FILE).write_bytes(b"\n".join(DAMAGED_LINES) + b"\n")
    (out / "chosen.json").write_text("[1, 2]")
    (out / "sweep.json").write_text('{"names": 5}')
    proc = sweep_cli(*tiny_sweep(out, mnist_dir), cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    no_traceback(proc)
    warnings = [line for line in proc.stderr.splitlines() if "warning" in line]
    assert len(warnings) == 2, proc.stderr  # the damaged lines, the damaged chosen.json
    assert f"skipped {len(DAMAGED_LINES)} damaged line(s)" in warnings[0]
    assert "test accuracy of the chosen setting" in proc.stdout
    assert (out / RESULTS_FILE).read_bytes().startswith(b"\n".join(DAMAGED_LINES))  # kept, only appended to
    assert len(read_records(out / RESULTS_FILE)) == 1
    assert json.loads((out / "chosen.json").read_text())["n_test"] == 100
    (out / "sweep.json").write_text('{"names": 5}')
    plot = sweep_cli("plot", str(out), "-o", str(tmp_path / "p.png"), cwd=tmp_path)
    assert plot.returncode == 0, plot.stderr
    no_traceback(plot)
    assert plot.stderr.count("warning") == 1 and "sweep.json" in plot.stderr
    assert (tmp_path / "p.png").read_bytes()[:4] == b"\x89PNG"


def test_plot_of_a_directory_without_accuracies_is_one_line(tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (out / RESULTS_FILE).write_text(json.dumps(sweep_record("failed", eta=0.5) | {"final_accuracy": None}) + "\n")
    one_error(sweep_cli("plot", str(out), "-o", str(tmp_path / "p.png"), cwd=tmp_path), 1, "no trial with an accuracy")


# -- class 7: the data is part of a trial's identity --------------------------------------------------------


def test_a_rerun_on_other_data_trains_again(mnist_dir, tmp_path):
    other = tmp_path / "other-mnist"
    other.mkdir()
    for name in ("train-images-idx3-ubyte.gz", "t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"):
        (other / name).symlink_to(Path(mnist_dir).resolve() / name)
    labels = read_idx(Path(mnist_dir) / "train-labels-idx1-ubyte.gz")
    write_idx(other / "train-labels-idx1-ubyte", ((labels.astype(np.int64) + 1) % 10).astype(np.uint8))
    out = tmp_path / "out"
    first = sweep_cli(*tiny_sweep(out, mnist_dir, "--quiet"), cwd=tmp_path)
    assert first.returncode == 0, first.stderr
    second = sweep_cli(*tiny_sweep(out, other, "--quiet"), cwd=tmp_path)
    assert second.returncode == 0, second.stderr
    assert "0 found from an earlier run" in second.stdout, second.stdout
    records = read_records(out / RESULTS_FILE)
    assert len(records) == 2 and records[0]["config"]["data"] != records[1]["config"]["data"]
    assert records[0]["history"] != records[1]["history"]  # trained on the other labels
    chosen = json.loads((out / "chosen.json").read_text())
    assert chosen["config"]["data"] == records[1]["config"]["data"]
    third = sweep_cli(*tiny_sweep(out, other, "--quiet"), cwd=tmp_path)
    assert "1 found from an earlier run" in third.stdout and len(read_records(out / RESULTS_FILE)) == 2


# -- classes 12 and 16: sweeps that cannot work are refused up front; failures end non-zero -------------------


UP_FRONT = [
    (["--param", "hidden=1000000000"], "more than the limit"),
    (["--param", "hidden=70000"], "more than the limit"),
    (["--seed", "-1"], "--seed must be an integer in [0, 4294967295]"),
    (["--param", "model=network", "--param", "cost=quadratic,cross-entropy"], "model=network (chapter 1) ignores cost"),
    (["--param", "model=network,network2", "--param", "lmbda=0,5"], "ignores lmbda"),
    (["--param", "model=network", "--param", "activation=tanh"], "ignores activation"),
]


@pytest.mark.parametrize(("extra", "fragment"), UP_FRONT, ids=[" ".join(e) for e, _ in UP_FRONT])
def test_a_sweep_that_cannot_work_is_refused_before_any_trial(extra, fragment, mnist_dir, tmp_path):
    started = time.monotonic()
    proc = sweep_cli(*tiny_sweep(tmp_path / "out", mnist_dir, *extra), cwd=tmp_path)
    one_error(proc, 2, fragment)
    assert not (tmp_path / "out").exists()
    assert time.monotonic() - started < 30  # no cluster was started, no trial ran


def test_a_missing_backend_is_refused_before_any_trial(mnist_dir, tmp_path):
    import importlib.util

    if importlib.util.find_spec("cupy") is not None:
        pytest.skip("CuPy is installed here")
    proc = sweep_cli(*tiny_sweep(tmp_path / "out", mnist_dir, "--param", "backend=numpy,cupy"), cwd=tmp_path)
    one_error(proc, 2, "backend=cupy", "BackendUnavailableError")
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("kind", ["directory", "link to a .txt"])
def test_a_plot_that_cannot_be_written_is_refused_before_any_trial(kind, mnist_dir, tmp_path):
    plot = tmp_path / "sweep.png"
    if kind == "directory":
        plot.mkdir()
    else:
        (tmp_path / "notes.txt").write_text("notes\n")
        plot.symlink_to(tmp_path / "notes.txt")
    proc = sweep_cli(*tiny_sweep(tmp_path / "out", mnist_dir, "--plot", str(plot)), cwd=tmp_path)
    one_error(proc, 2, "--plot")
    assert not (tmp_path / "out" / RESULTS_FILE).exists()
    if kind != "directory":
        assert (tmp_path / "notes.txt").read_text() == "notes\n"


def test_a_sweep_in_which_every_trial_failed_exits_non_zero(mnist_dir, tmp_path):
    proc = sweep_cli(*tiny_sweep(tmp_path / "out", mnist_dir, "--param", "eta=1e300", "--quiet"), cwd=tmp_path)
    one_error(proc, 1, "no trial completed (1 failed", "diverged")
    assert [r["state"] for r in read_records(tmp_path / "out" / RESULTS_FILE)] == ["failed"]


def test_a_scheduler_answering_garbage_is_not_out_of_memory(mnist_dir, tmp_path):
    server = socket.create_server(("127.0.0.1", 0))
    port = server.getsockname()[1]

    def serve() -> None:
        for _ in range(20):
            try:
                connection, _ = server.accept()
            except OSError:
                return
            with connection:  # a frame header claiming 64 TiB, as a non-Dask service might answer
                connection.sendall(struct.pack("<Q", 2**46) + b"garbage" * 10)

    threading.Thread(target=serve, daemon=True).start()
    try:
        argv = ["sweep", *NET, "--data-dir", str(mnist_dir), *TINY, "--out", str(tmp_path / "out")]
        proc = sweep_cli(*argv, "--scheduler", f"tcp://127.0.0.1:{port}", cwd=tmp_path)
    finally:
        server.close()
    line = one_error(proc, 1, f"tcp://127.0.0.1:{port} did not answer like a Dask scheduler")
    assert "out of memory" not in line


# -- class 12: a killed worker is retried without a traceback; Ctrl-C and SIGHUP print one line -------------


def _children(pid: int) -> list[int]:
    """Child processes of ``pid``, whichever of its threads started them (Linux ``/proc``)."""
    children = []
    for task in Path(f"/proc/{pid}/task").glob("*"):
        try:
            children += [int(p) for p in (task / "children").read_text().split()]
        except OSError:
            continue
    return children


def _worker_pids(pid: int) -> list[int]:
    """The Dask worker processes the driver ``pid`` started (multiprocessing spawn children)."""
    pids = []
    for child in _children(pid):
        try:
            cmdline = Path(f"/proc/{child}/cmdline").read_bytes()
        except OSError:
            continue
        if b"spawn_main" in cmdline:
            pids.append(child)
    return pids


def _start(argv: list[str], cwd: Path) -> subprocess.Popen:
    return subprocess.Popen(
        [*COMMAND, *argv],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=cwd,
        env=_env(),
        start_new_session=True,  # its own process group, as a terminal's foreground job
    )


def _wait_for_records(path: Path, n: int, process: subprocess.Popen, timeout: float = 90) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and process.poll() is None:
        if path.exists() and path.read_bytes().count(b"\n") >= n:
            return
        time.sleep(0.05)
    raise AssertionError(f"no {n} records in {path} (exit {process.poll()})")


LONG_TRIALS = ["--param", "hidden=30", "--param", "epochs=60", "--train-size", "3000"]  # 1-2 s a trial
LONG_TRIALS += ["--validation-size", "100", "--test-size", "100"]


@pytest.mark.skipif(not Path("/proc/self/task").exists(), reason="finds the worker processes through /proc")
@pytest.mark.parametrize("workers", [1, 2])
def test_a_killed_worker_is_retried_without_a_traceback(workers, mnist_dir, tmp_path):
    out = tmp_path / "out"
    argv = ["sweep", "--param", "eta=0.5,1,2", *LONG_TRIALS, "--data-dir", str(mnist_dir)]
    process = _start([*argv, "--workers", str(workers), "--no-test", "--out", str(out)], tmp_path)
    try:
        _wait_for_records(out / RESULTS_FILE, 1, process)
        time.sleep(0.3)  # the next trial is inside its epochs
        victims = _worker_pids(process.pid)
        assert len(victims) == workers
        for victim in victims:  # every worker: the broadcast data dies with them
            os.kill(victim, signal.SIGKILL)
        stdout, stderr = process.communicate(timeout=180)
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
    proc = subprocess.CompletedProcess(process.args, process.returncode, stdout, stderr)
    assert proc.returncode == 0, stderr
    no_traceback(proc)
    records = read_records(out / RESULTS_FILE)
    assert sorted(r["params"]["eta"] for r in records) == [0.5, 1.0, 2.0]
    assert all(r["state"] == "complete" for r in records)
    assert max(r["attempts"] for r in records) >= 2, stderr  # a trial really was cut off and started again
    # the restart is on the progress line: the driver's resubmission, or the trial's line if the scheduler did it
    assert re.search(
        r"(worker lost \(\w+\); retrying, attempt 2|after \d attempts \(a worker was lost\)); .*, retried [1-9]", stderr
    ), stderr
    assert re.search(r"\d restarted after a lost worker", stdout), stdout


STOPS = [(signal.SIGINT, 130, "interrupted"), (signal.SIGHUP, 129, "stopped by SIGHUP")]
STOPS += [(signal.SIGTERM, 143, "stopped by SIGTERM")]


@pytest.mark.parametrize(("signum", "status", "said"), STOPS, ids=[s[2] for s in STOPS])
def test_a_signal_to_the_process_group_prints_one_line(signum, status, said, mnist_dir, tmp_path):
    out = tmp_path / "out"
    argv = ["sweep", "--param", "eta=0.5,1,2,3,4", *LONG_TRIALS, "--data-dir", str(mnist_dir), "--workers", "2"]
    process = _start([*argv, "--quiet", "--out", str(out)], tmp_path)
    try:
        _wait_for_records(out / RESULTS_FILE, 1, process)
        os.killpg(process.pid, signum)  # what a terminal does: the driver and every worker get it
        _, stderr = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
    assert process.returncode == status, stderr
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert lines == [f"portable-nn sweep: {said}; finished trials are in {out / RESULTS_FILE}"], stderr
    records = read_records(out / RESULTS_FILE)
    assert 1 <= len(records) < 5 and (out / RESULTS_FILE).read_bytes().endswith(b"\n")


# -- issue 18 point 9: tables with sensible digits ----------------------------------------------------------


def test_tables_show_percentages_and_four_significant_digits():
    record = sweep_record(eta=0.1 + 0.2, lmbda=1 / 3)
    record.update(best_accuracy=0.955, final_accuracy=0.95499999, best_epoch=1)
    table = format_table([record], "validation-accuracy", ["eta", "lmbda"])
    row = table.splitlines()[2].split()
    assert row[1:4] == ["0.3", "0.3333", "complete"], table
    assert row[4:7] == ["95.50%", "(1)", "95.50%"], table


def test_importing_the_sweep_imports_neither_dask_nor_optuna():
    code = (
        "import sys, portable_nn.cli, portable_nn.sweep, portable_nn.sweep_cli, portable_nn.sweep.cli; "
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('dask', 'distributed', 'optuna', 'filelock')))"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=_env(), timeout=60)
    assert proc.stdout.strip() == "[]", proc.stdout + proc.stderr


def test_no_private_optuna_api():
    import portable_nn

    package = Path(portable_nn.__file__).parent
    files = [*package.glob("sweep*.py"), *package.glob("sweep/*.py")]
    source = "\n".join(p.read_text() for p in files)
    assert files and "trial_number" in source
    assert not re.search(r"\._(storage|trial_id)\b", source)


def test_after_a_stop_only_dasks_finalizer_errors_are_dropped():
    """An interrupt inside a Dask constructor leaves a half-built ``Future`` whose ``__del__`` fails: after a stop
    that traceback must not follow the one-line message; before a stop, and from anything else, it is shown."""
    import types

    from portable_nn.sweep.cli import _Stopped

    def dask_del() -> None: ...

    dask_del.__module__ = "distributed.client"
    dask = types.SimpleNamespace(object=dask_del, exc_value=AttributeError("'Future' object has no attribute"))
    ours = types.SimpleNamespace(object=_Stopped, exc_value=AttributeError("ours"))
    shown: list[object] = []
    stopped = _Stopped()
    hook = stopped._unraisable(shown.append)
    hook(dask)
    assert shown == [dask]  # no stop yet: a real error
    stopped.requested = True
    hook(dask)
    hook(ours)
    assert shown == [dask, ours]
