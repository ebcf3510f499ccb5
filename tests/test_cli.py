"""The portable-nn command on a small subset of the shared MNIST copy."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys

import numpy as np
import pytest

from portable_nn import load, network3, to_numpy
from portable_nn._data.mnist import load_mnist
from portable_nn.cli import main
from portable_nn.history import read_history

EPOCH_LINE = re.compile(r"^epoch (\d+)/(\d+): (\d+) / (\d+) \((\d+\.\d\d)%\) (\d+\.\d\d) s numpy \(cpu\)$")


@pytest.fixture(scope="module")
def trained(mnist_dir, tmp_path_factory):
    """One short training run shared by the tests below: (stdout lines, model path, history path)."""
    out = tmp_path_factory.mktemp("cli")
    args = [
        "train",
        "--data-dir",
        str(mnist_dir),
        "--train-size",
        "3000",
        "--epochs",
        "2",
        "--seed",
        "0",
        "--save",
        str(out / "model.npz"),
        "--history",
        str(out / "history.json"),
        "--plot",
        str(out / "acc.png"),
    ]
    proc = subprocess.run([sys.executable, "-m", "portable_nn", *args], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout.splitlines(), out


def test_train_prints_plain_epoch_lines_and_summary(trained):
    lines, _ = trained
    assert lines[0].startswith("training [784, 30, 10] on numpy (cpu), float64: 3000 images, 2 epochs")
    epochs = [EPOCH_LINE.match(line) for line in lines[1:3]]
    assert all(epochs), lines
    assert [int(m.group(1)) for m in epochs] == [1, 2] and all(m.group(4) == "10000" for m in epochs)
    assert lines[3].startswith("final: ") and "best: epoch" in lines[3]
    assert int(epochs[-1].group(3)) > 5000, "2 epochs on 3000 images should beat 50% (chance is 10%)"


def test_saved_history_and_plot(trained):
    lines, out = trained
    rows = read_history(out / "history.json")
    assert [r["epoch"] for r in rows] == [1, 2]
    last = EPOCH_LINE.match(lines[2])
    assert rows[-1]["correct"] == int(last.group(3)) and rows[-1]["n_test"] == 10000
    assert (out / "acc.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.parametrize("backend", ["numpy", "torch"])
def test_evaluate_reproduces_the_final_accuracy(trained, mnist_dir, capsys, backend):
    lines, out = trained
    if backend == "torch":
        pytest.importorskip("torch")
    final = EPOCH_LINE.match(lines[2])
    assert (
        main(["evaluate", "--model", str(out / "model.npz"), "--data-dir", str(mnist_dir), "--backend", backend]) == 0
    )
    printed = capsys.readouterr().out
    assert printed.startswith(f"{final.group(3)} / 10000 ({final.group(5)}%)"), printed


def test_predict_classifies_png_files(trained, mnist_dir, tmp_path, capsys):
    image_module = pytest.importorskip("PIL.Image")
    _, out = trained
    _, (test_x, _) = load_mnist(mnist_dir, download=False)
    paths = []
    for i in range(3):
        pixels = (test_x[i].reshape(28, 28) * 255).round().astype(np.uint8)
        path = tmp_path / f"digit{i}.png"
        image_module.fromarray(255 - pixels if i == 1 else pixels).save(path)  # one dark-on-light
        paths.append(str(path))
    assert main(["predict", "--raw", "--model", str(out / "model.npz"), *paths]) == 0
    predicted = [int(line.split(": ")[1].split()[0]) for line in capsys.readouterr().out.splitlines()]
    net = load(out / "model.npz")
    expected = np.argmax(to_numpy(net.feedforward(np.round(test_x[:3] * 255).T / 255.0)), axis=0)
    assert predicted == expected.tolist()


@pytest.mark.parametrize(
    "argv",
    [
        ["train", "--batch-size", "0"],
        ["train", "--sizes", "784,abc,10"],
        ["train", "--sizes", "100,30,10"],
        ["train", "--eta", "nan"],
        ["train", "--backend", "tensorflow"],
        ["train", "--save", "model.pkl"],
        ["train", "--frobnicate"],
        ["evaluate"],
        [],
    ],
)
def test_bad_flags_give_a_usage_error(argv, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert "usage: portable-nn" in err and "Traceback" not in err


def test_missing_data_is_a_one_line_error(tmp_path, capsys):
    assert main(["train", "--data-dir", str(tmp_path), "--no-download"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("portable-nn train: error: MNIST files missing from") and "Traceback" not in err


def test_ctrl_c_stops_cleanly_and_saves(mnist_dir, tmp_path):
    model = tmp_path / "model.npz"
    history = tmp_path / "history.csv"
    cmd = [
        sys.executable,
        "-m",
        "portable_nn",
        "train",
        "--data-dir",
        str(mnist_dir),
        "--epochs",
        "200",
        "--train-size",
        "5000",
        "--test-size",
        "1000",
        "--seed",
        "0",
        "--save",
        str(model),
        "--history",
        str(history),
    ]
    proc = subprocess.Popen(
        cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env={**os.environ, "PYTHONUNBUFFERED": "1"}
    )
    try:
        for line in proc.stdout:
            if line.startswith("epoch 1/200"):
                proc.send_signal(signal.SIGINT)
                break
        out, err = proc.communicate(timeout=120)
    finally:
        proc.kill()
    assert proc.returncode == 130, err
    assert "Traceback" not in err and "interrupted (SIGINT) after" in err
    assert "saved model to" in out
    assert load(model).sizes == [784, 30, 10]
    rows = history.read_text().splitlines()
    assert rows[0].startswith("# settings: {") and '"stopped": "interrupted (SIGINT)"' in rows[0]
    assert rows[1].startswith("epoch,seconds,correct,n_test,accuracy,") and len(rows) >= 3
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []


def test_chapter6_preset_trains_saves_and_evaluates(mnist_dir, tmp_path):
    """--preset runs a book chapter-6 network; its .npz evaluates and predicts through the same commands."""
    model, history = tmp_path / "conv.npz", tmp_path / "h.json"
    args = ["train", "--preset", "ch6-conv1", "--data-dir", str(mnist_dir), "--train-size", "300", "--test-size",
            "200", "--epochs", "2", "--seed", "0", "--save", str(model), "--history", str(history)]  # fmt: skip
    proc = subprocess.run([sys.executable, "-m", "portable_nn", *args], capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert lines[0].startswith("training ch6-conv1 (conv-pool") and "float32: 300 images, 2 epochs" in lines[0]
    assert "eta 0.1" in lines[0] and "testing on 200 validation images" in lines[0]
    assert re.match(r"^epoch 2/2: (\d+) / 200 ", lines[2]), lines
    best_test = re.search(r"test accuracy at the best validation epoch: (\d+) / 200", proc.stdout)
    assert best_test is not None, proc.stdout
    rows = read_history(history)
    assert [r["epoch"] for r in rows] == [1, 2] and all(r["n_test"] == 200 for r in rows)
    # the saved network is the last epoch's: the same validation count, recomputed from the file
    net = load(model)
    (train_x, train_y), _ = load_mnist(mnist_dir, download=False)
    assert net.accuracy((train_x[50_000:50_200], train_y[50_000:50_200])) == rows[-1]["correct"]
    evaluated = subprocess.run(
        [sys.executable, "-m", "portable_nn", "evaluate", "--model", str(model), "--data-dir", str(mnist_dir)],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert evaluated.returncode == 0 and re.match(r"^\d+ / 10000 \(", evaluated.stdout), evaluated.stderr


def test_preset_takes_the_shared_update_and_stop_rules(mnist_dir, tmp_path):
    """--momentum, --regularization, --schedule and --early-stopping reach a chapter-6 network's SGD."""
    history = tmp_path / "h.json"
    common = ["train", "--preset", "ch6-fc", "--data-dir", str(mnist_dir), "--train-size", "200", "--test-size",
              "100", "--epochs", "2", "--seed", "0", "--quiet"]  # fmt: skip
    ruled = [*common, "--momentum", "0.5", "--regularization", "l1", "--schedule", "1", "--history", str(history)]
    for args in (common, ruled):
        proc = subprocess.run([sys.executable, "-m", "portable_nn", *args], capture_output=True, text=True, timeout=300)
        assert proc.returncode == 0, proc.stderr
    settings = json.loads(history.read_text())["settings"]
    assert (settings["momentum"], settings["regularization"], settings["schedule"]) == (0.5, "l1", 1)
    # the same run in Python: the CLI builds and trains exactly this network
    (train_x, train_y), _ = load_mnist(mnist_dir, download=False)
    net = network3.preset_network("ch6-fc", 10, seed=0)
    results = net.SGD((train_x[:200], train_y[:200]), 2, 10, 0.1, (train_x[50_000:50_100], train_y[50_000:50_100]),
                      None, mu=0.5, regularization="l1", schedule_n=1, quiet=True)  # fmt: skip
    assert [r["correct"] for r in read_history(history)] == [r.correct for r in results]


@pytest.mark.parametrize("flag", [["--cost", "cross-entropy"], ["--sizes", "784,50,10"], ["--save", "m.json"]])
def test_preset_refuses_flags_it_fixes(flag, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["train", "--preset", "ch6-fc", *flag])
    assert exit_info.value.code == 2
    assert "--preset" in capsys.readouterr().err
