"""``portable-nn sweep``: Dask-distributed hyperparameter sweeps with Optuna, on tiny MNIST subsets.

Every sweep here trains ``[784, 10, 10]`` (or ``[784, 30, 10]``) on a few
hundred images for a few epochs, so a trial takes well under a second; the
cost of a test is mostly starting Dask processes (about 2 s per cluster).
The reference results are computed in this process with ``network2`` directly,
not through ``portable_nn.sweep``.
"""

from __future__ import annotations

import json
import os
import signal
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

from portable_nn import network2, sweep_cli
from portable_nn._data.forms import Dataset
from portable_nn._data.mnist import load_mnist
from portable_nn.sweep import (
    RESULTS_FILE,
    SweepSpecError,
    append_record,
    grid_points,
    parse_space,
    read_records,
    run_sweep,
    worker_status,
)

TINY = {"train_size": 500, "validation_size": 200, "test_size": 200}


@pytest.fixture(scope="module")
def mnist_arrays(mnist_dir):
    (train_x, train_y), (test_x, test_y) = load_mnist(mnist_dir, download=False, dtype="uint8")
    return train_x, train_y, test_x, test_y


def reference_accuracies(arrays, *, eta, lmbda, hidden=10, epochs=2, train_size=500, validation_size=200, seed=0):
    """Per-epoch validation counts of one training done by hand with network2 (the sweep must match it)."""
    train_x, train_y, _, _ = arrays
    train = Dataset(train_x[:train_size], train_y[:train_size], divisor=255.0)
    validation = Dataset(
        train_x[50_000 : 50_000 + validation_size], train_y[50_000 : 50_000 + validation_size], divisor=255.0
    )
    net = network2.Network([784, hidden, 10], cost="cross-entropy", seed=seed)
    _, accuracy, _, _ = net.SGD(
        train, epochs, 10, eta, lmbda=lmbda, evaluation_data=validation, monitor_evaluation_accuracy=True, quiet=True
    )
    return net, accuracy


def by_params(records):
    return {(r["params"]["eta"], r["params"]["lmbda"]): r for r in records}


# -- specifications ------------------------------------------------------------------------------


def test_space_parsing_and_grid_order():
    space = parse_space(["eta=0.1,3", "lambda=0,5", "hidden=30,100x30", "cost=quadratic", "epochs=1..4"])
    assert list(space) == ["eta", "lmbda", "hidden", "cost", "epochs"]
    assert space["hidden"].choices == (30, "100x30")
    assert space["lmbda"].choices == (0.0, 5.0)
    assert space["epochs"].is_range and space["epochs"].integer
    grid = parse_space({"eta": [0.1, 3], "lmbda": [0, 5]})
    assert grid_points(grid) == [
        {"eta": 0.1, "lmbda": 0.0},
        {"eta": 0.1, "lmbda": 5.0},
        {"eta": 3.0, "lmbda": 0.0},
        {"eta": 3.0, "lmbda": 5.0},
    ]


BAD_SPECS = [
    (["--param", "eta"], "expected NAME="),
    (["--param", "speed=1"], "unknown parameter 'speed'"),
    (["--param", "eta="], "no values"),
    (["--param", "eta=0.1,,1"], "empty value"),
    (["--param", "eta=-1"], "expected a finite number > 0"),
    (["--param", "eta=fast"], "expected a number"),
    (["--param", "eta=0.1,0.1"], "repeated"),
    (["--param", "cost=cubic"], "choose from cross-entropy"),
    (["--param", "hidden=0"], "positive"),
    (["--param", "batch=2.5"], "expected an integer"),
    (["--param", "eta=1..0.1", "--search", "random", "--trials", "3"], "LOW must be below HIGH"),
    (["--param", "eta=0..1:log", "--search", "random", "--trials", "3"], "expected a finite number > 0"),
    (["--param", "cost=quadratic..log-likelihood", "--search", "tpe", "--trials", "3"], "not a range"),
    (["--param", "eta=0.1..1"], "grid search needs lists of values"),
    (["--param", "eta=0.1,1", "--search", "random"], "needs --trials"),
    (["--param", "eta=0.1", "--param", "eta=1"], "given twice"),
]


@pytest.mark.parametrize(("argv", "message"), BAD_SPECS, ids=[" ".join(a) for a, _ in BAD_SPECS])
def test_bad_specifications_fail_with_one_line(argv, message, tmp_path, capsys):
    with pytest.raises(SystemExit) as excinfo:
        sweep_cli.main(["sweep", *argv, "--out", str(tmp_path / "out")])
    assert excinfo.value.code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1, err
    assert err.startswith("portable-nn sweep: error: ") and message in err, err
    assert not (tmp_path / "out").exists()  # nothing was started


def test_bad_specifications_raise_in_the_api(tmp_path):
    with pytest.raises(SweepSpecError, match="grid search needs lists"):
        run_sweep(["eta=0.1..1"], out=tmp_path)
    with pytest.raises(SweepSpecError, match="--search must be one of"):
        run_sweep(["eta=0.1"], out=tmp_path, search="bayes")


def test_results_file_appends_whole_lines_and_survives_a_torn_line(tmp_path):
    path = tmp_path / RESULTS_FILE
    append_record(path, sweep_record(eta=1.0))
    with open(path, "ab") as handle:  # a crash in the middle of a write
        handle.write(b'{"config": {"eta": 2.0}, "sta')
    append_record(path, sweep_record("failed", eta=3.0))
    assert [r["params"]["eta"] for r in read_records(path)] == [1.0, 3.0]
    assert path.read_bytes().endswith(b"\n")


# -- sweeps on Dask --------------------------------------------------------------------------------


def test_local_cluster_grid_matches_trainings_one_by_one(mnist_dir, mnist_arrays, tmp_path):
    result = run_sweep(
        {"eta": [0.5, 3.0], "lmbda": [0.0, 1.0], "hidden": 10, "epochs": 2},
        out=tmp_path,
        data_dir=mnist_dir,
        workers=2,
        progress=False,
        **TINY,
    )
    assert not result.interrupted and not result.lost
    assert result.engine.startswith("LocalCluster, 2 worker processes x 1 BLAS")
    records = by_params(result.records)
    assert sorted(records) == [(0.5, 0.0), (0.5, 1.0), (3.0, 0.0), (3.0, 1.0)]
    for (eta, lmbda), record in records.items():
        _, expected = reference_accuracies(mnist_arrays, eta=eta, lmbda=lmbda)
        assert record["state"] == "complete"
        assert [h["correct"] for h in record["history"]] == expected, (eta, lmbda)
        assert record["final_accuracy"] == expected[-1] / 200
        assert record["blas_threads"] == 1  # the per-worker BLAS limit took effect before NumPy was imported
        assert record["worker"].startswith("tcp://127.0.0.1:")
    # the file holds the same records, and the chosen setting's test accuracy is the reference network's
    assert {r["key"] for r in read_records(tmp_path / RESULTS_FILE)} == {r["key"] for r in result.records}
    best_eta, best_lmbda = result.best["params"]["eta"], result.best["params"]["lmbda"]
    assert result.best["final_accuracy"] == max(r["final_accuracy"] for r in result.records)
    net, _ = reference_accuracies(mnist_arrays, eta=best_eta, lmbda=best_lmbda)
    test = Dataset(mnist_arrays[2][:200], mnist_arrays[3][:200], divisor=255.0)
    assert result.test["test_correct"] == net.accuracy(test)
    assert result.test["reproduced"] is True
    chosen = json.loads((tmp_path / "chosen.json").read_text())
    assert chosen["test_correct"] == result.test["test_correct"]


def test_restart_skips_finished_trials_and_cli_plots(mnist_dir, tmp_path, capsys):
    out = tmp_path / "sweep"
    argv = ["sweep", "--param", "eta=0.5,3", "--param", "lmbda=0,1", "--param", "hidden=10", "--param", "epochs=1"]
    argv += ["--data-dir", str(mnist_dir), "--train-size", "500", "--validation-size", "200", "--test-size", "200"]
    argv += ["--workers", "1", "--quiet", "--out", str(out)]
    assert sweep_cli.main(argv) == 0
    path = out / RESULTS_FILE
    first = read_records(path)
    assert len(first) == 4
    # keep two finished trials and a line torn by a crash, as an interrupted sweep would leave them
    lines = path.read_bytes().split(b"\n")
    path.write_bytes(b"\n".join(lines[:2]) + b"\n" + lines[2][:25])
    kept = {r["key"] for r in read_records(path)}
    assert len(kept) == 2
    capsys.readouterr()
    assert sweep_cli.main([*argv, "--plot", str(tmp_path / "sweep.png")]) == 0
    report = capsys.readouterr().out
    assert "4 trials" in report and "2 found from an earlier run" in report and "test accuracy" in report
    second = read_records(path)
    assert len(second) == 4 and len({r["key"] for r in second}) == 4
    assert {r["key"] for r in second[2:]}.isdisjoint(kept)  # only the missing settings ran again
    again = {r["key"]: [h["correct"] for h in r["history"]] for r in second}
    assert all(again[r["key"]] == [h["correct"] for h in r["history"]] for r in first)  # and gave the same results
    assert (tmp_path / "sweep.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    result = run_sweep(
        ["eta=0.5,3", "lmbda=0,1", "hidden=10", "epochs=1"],
        out=out,
        data_dir=mnist_dir,
        workers=1,
        progress=False,
        **TINY,
    )
    assert result.skipped == 4 and result.new_records() == []


def test_failing_trial_is_recorded_and_the_sweep_goes_on(mnist_dir, tmp_path):
    result = run_sweep(
        ["eta=1e300,0.5,1e6", "lmbda=0", "hidden=10", "epochs=2"],
        out=tmp_path,
        data_dir=mnist_dir,
        workers=2,
        progress=False,
        **TINY,
    )
    states = {r["params"]["eta"]: r for r in read_records(tmp_path / RESULTS_FILE)}
    assert sorted(states) == [0.5, 1e6, 1e300]
    for eta in (1e300, 1e6):
        assert states[eta]["state"] == "failed"
        assert "training diverged in epoch 1" in states[eta]["error"]
    assert states[0.5]["state"] == "complete" and len(states[0.5]["history"]) == 2
    assert result.best["params"]["eta"] == 0.5 and result.test["n_test"] == 200


def median_rule(records, startup):
    """Independently of Optuna: which epoch (if any) the median rule stops each trial at, in finishing order."""
    finished: list[list[float]] = []
    expected = []
    for record in records:
        accuracies = [h["accuracy"] for h in record["history"]]
        stop = None
        if len(finished) >= startup:
            for step in range(len(accuracies)):
                median = float(np.median([f[step] for f in finished if len(f) > step]))
                if max(accuracies[: step + 1]) < median:
                    stop = step
                    break
        expected.append(stop)
        if record["state"] == "complete":
            finished.append(accuracies)
    return expected


def test_pruning_stops_the_trials_the_median_rule_stops(mnist_dir, tmp_path):
    etas = [0.5, 3.0, 0.01, 1.0, 0.02, 2.0, 0.005]
    result = run_sweep(
        {"eta": etas, "lmbda": [0.0], "hidden": 10, "epochs": 3},
        out=tmp_path,
        prune=True,
        prune_startup_trials=2,
        data_dir=mnist_dir,
        workers=1,  # one trial at a time: which trials had finished when another reported is then certain
        progress=False,
        **TINY,
    )
    records = read_records(tmp_path / RESULTS_FILE)
    assert [r["params"]["eta"] for r in records] == etas  # grid order
    expected = median_rule(records, startup=2)
    for record, stop in zip(records, expected):
        if stop is None:
            assert record["state"] == "complete", record["params"]
            assert len(record["history"]) == 3
        else:
            assert record["state"] == "pruned", record["params"]
            assert len(record["history"]) == stop + 1  # stopped right after the epoch that fell below the median
    assert any(s is not None for s in expected) and any(s is None for s in expected[2:])
    assert result.counts()["pruned"] == sum(s is not None for s in expected)


# -- an existing cluster: dask scheduler + dask worker processes ------------------------------------


@pytest.fixture
def external_cluster(tmp_path):
    """``dask scheduler`` and two ``dask worker --no-nanny`` processes on 127.0.0.1; yields (address, workers)."""
    from distributed import Client

    dask_exe = Path(sys.executable).with_name("dask")
    scheduler_file = tmp_path / "scheduler.json"
    env = dict(os.environ, OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1", MKL_NUM_THREADS="1")
    env.pop("PYTHONWARNINGS", None)
    log = open(tmp_path / "dask.log", "ab")

    def start(*args: str) -> subprocess.Popen:
        return subprocess.Popen([str(dask_exe), *args], stdout=log, stderr=subprocess.STDOUT, env=env)

    processes = [
        start(
            "scheduler", "--host", "127.0.0.1", "--port", "0", "--no-dashboard", "--scheduler-file", str(scheduler_file)
        )
    ]
    try:
        deadline = time.monotonic() + 60
        while not scheduler_file.exists() and time.monotonic() < deadline:
            time.sleep(0.1)
        address = json.loads(scheduler_file.read_text())["address"]
        workers = [
            start("worker", address, "--nthreads", "1", "--no-nanny", "--no-dashboard", "--host", "127.0.0.1")
            for _ in range(2)
        ]
        processes += workers
        with Client(address, timeout="30s") as client:
            client.wait_for_workers(2, timeout=60)
        yield address, workers
    finally:
        for process in reversed(processes):
            if process.poll() is None:
                process.terminate()
        for process in processes:
            try:
                process.wait(timeout=3)
            except subprocess.TimeoutExpired:  # a worker still in a trial: no need to wait for it
                process.kill()
                process.wait(timeout=10)
        log.close()


def test_sweep_on_a_separately_started_scheduler(external_cluster, mnist_dir, mnist_arrays, tmp_path):
    address, _ = external_cluster
    result = run_sweep(
        {"eta": [0.5, 3.0], "lmbda": [0.0, 1.0], "hidden": 10, "epochs": 2},
        out=tmp_path / "out",
        scheduler=address,  # workers read --data-dir themselves (a shared filesystem), once per process
        data_dir=mnist_dir,
        download=False,
        progress=False,
        **TINY,
    )
    assert result.engine == f"scheduler {address}" and not result.lost
    for (eta, lmbda), record in by_params(result.records).items():
        _, expected = reference_accuracies(mnist_arrays, eta=eta, lmbda=lmbda)
        assert [h["correct"] for h in record["history"]] == expected
    assert len({r["pid"] for r in result.records}) >= 1
    # each worker process loaded the data once: only its first trial spent time reading files
    assert sum(r["data_seconds"] > 0.05 for r in result.records) <= 2


def test_killing_a_worker_mid_sweep_still_completes_every_trial(external_cluster, mnist_dir, mnist_arrays, tmp_path):
    from distributed import Client

    address, workers = external_cluster
    victim = workers[1]
    etas = [0.5, 1.0, 2.0, 3.0]
    space = {"eta": etas, "lmbda": [0.0], "hidden": 30, "epochs": 25}
    sizes = {"train_size": 3000, "validation_size": 200, "test_size": 200}
    outcome: dict = {}

    def sweep() -> None:
        outcome["result"] = run_sweep(
            space,
            out=tmp_path / "out",
            scheduler=address,
            data_dir=mnist_dir,
            progress=False,
            evaluate_test=False,
            **sizes,
        )

    thread = threading.Thread(target=sweep)
    thread.start()
    with Client(address, timeout="30s") as client:
        victim_address = next(addr for addr, pid in client.run(os.getpid).items() if pid == victim.pid)

        def training_on_victim() -> bool:
            # busy with a trial, and past loading the data (so the trial has started and counted its attempt)
            busy = client.processing(workers=[victim_address]).get(victim_address)
            status = client.run(worker_status, workers=[victim_address]).get(victim_address)
            return bool(busy) and bool(status and status["data"])

        deadline = time.monotonic() + 60
        while not training_on_victim() and time.monotonic() < deadline:
            time.sleep(0.05)
        time.sleep(0.2)  # inside the trial's epochs
        victim.send_signal(signal.SIGKILL)
        killed_at = time.monotonic()
    thread.join(timeout=180)
    print(f"sweep finished {time.monotonic() - killed_at:.1f} s after the kill")
    assert not thread.is_alive()
    result = outcome["result"]
    assert not result.lost and not result.interrupted
    records = read_records(tmp_path / "out" / RESULTS_FILE)
    assert sorted(r["params"]["eta"] for r in records) == etas
    assert all(r["state"] == "complete" for r in records)
    assert max(r["attempts"] for r in records) >= 2  # a trial really was cut off and run again elsewhere
    retried = next(r for r in records if r["attempts"] >= 2)
    assert retried["worker"] != victim_address
    _, expected = reference_accuracies(
        mnist_arrays, eta=retried["params"]["eta"], lmbda=0.0, hidden=30, epochs=25, train_size=3000
    )
    assert [h["correct"] for h in retried["history"]] == expected  # the retry is the same training


def test_ctrl_c_stops_cleanly_keeping_finished_trials(mnist_dir, tmp_path):
    out = tmp_path / "out"
    argv = [sys.executable, "-m", "portable_nn.sweep_cli", "sweep", "--param", "eta=0.5,1,2,3,4,5"]
    argv += ["--param", "hidden=30", "--param", "epochs=10", "--data-dir", str(mnist_dir), "--workers", "1"]
    argv += ["--train-size", "3000", "--validation-size", "200", "--test-size", "200", "--quiet", "--out", str(out)]
    env = dict(os.environ)
    env.pop("PYTHONWARNINGS", None)
    process = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env, cwd=tmp_path)
    path = out / RESULTS_FILE
    deadline = time.monotonic() + 90
    while (not path.exists() or not path.read_bytes()) and time.monotonic() < deadline:
        time.sleep(0.05)
    process.send_signal(signal.SIGINT)
    _, err = process.communicate(timeout=60)
    assert process.returncode == 130, err.decode()
    assert b"interrupted; finished trials are in" in err
    records = read_records(path)
    assert 1 <= len(records) < 6 and all(r["state"] == "complete" for r in records)
    assert path.read_bytes().endswith(b"\n")
