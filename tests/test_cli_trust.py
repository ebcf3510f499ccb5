"""Issue 17, the command line's side: no write through a link, no model lost to the terminal, no traceback.

Each test runs ``python -m portable_nn`` as a subprocess on a slice of the
shared MNIST copy and checks the exit status, stderr and the files on disk
(the numbered classes are the issue's).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest
from test_cli_hardening import (
    TINY,
    _env,
    _write_idx,
    assert_error,
    assert_not_trained,
    cli,
    make_work,
    no_temporaries,
    old_model,
    snapshot,
)

from portable_nn import Network, load, network2
from portable_nn._data.forms import Dataset
from portable_nn._data.mnist import load_mnist


@pytest.fixture
def work(tmp_path, monkeypatch):
    """A working directory for the command, with its own user cache (:func:`test_cli_hardening.make_work`)."""
    return make_work(tmp_path, monkeypatch)


def _run(args: list[str], cwd: Path, **popen: object) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "portable_nn", *args],
        cwd=cwd,
        env=_env(XDG_CACHE_HOME=str(cwd.parent / "cache")),
        **popen,  # type: ignore[call-overload]
    )


def _train_args(mnist_dir: Path, *extra: str) -> list[str]:
    return ["train", "--data-dir", str(mnist_dir), *TINY, "--epochs", "2", *extra]


# -- class 2: plot outputs through links, and a sweep directory's files ---------------------------------
def _sweep_dir(directory: Path) -> Path:
    directory.mkdir()
    record = {"key": "a", "state": "complete", "config": {"eta": 1.0}, "final_accuracy": 0.5, "best_accuracy": 0.5}
    (directory / "trials.jsonl").write_text(json.dumps(record) + "\n")
    (directory / "sweep.json").write_text(json.dumps({"names": ["eta"], "metric": "validation-accuracy"}))
    return directory


def test_plot_of_a_sweep_directory_never_replaces_its_results(work):
    sweep = _sweep_dir(work / "sweep")
    (work / "x.png").symlink_to(sweep / "trials.jsonl")
    before = snapshot(sweep / "trials.jsonl", sweep / "sweep.json")
    assert_error(cli("plot", str(sweep), "-o", "x.png", cwd=work), 2, "x.png", "input file")
    assert snapshot(sweep / "trials.jsonl", sweep / "sweep.json") == before
    no_temporaries(work)


@pytest.mark.parametrize("command", ["plot", "train"])
def test_a_png_link_to_a_text_file_is_refused(work, mnist_dir, command):
    notes = work / "notes.txt"
    notes.write_text("my notes\n")
    (work / "p.png").symlink_to(notes)
    history = work / "h.json"
    history.write_text(json.dumps([{"epoch": 1, "correct": 50, "n_test": 100, "accuracy": 0.5}]))
    args = ["plot", str(history), "-o", "p.png"] if command == "plot" else _train_args(mnist_dir, "--plot", "p.png")
    proc = cli(*args, cwd=work)
    assert_error(proc, 2, "p.png", "is a link to", "notes.txt", "does not end in .png")
    assert_not_trained(proc)
    assert notes.read_text() == "my notes\n"


# -- class 3: every output's real target checked before training ----------------------------------------
@pytest.mark.parametrize(("option", "name", "target"), [("--save", "m.npz", "m.txt"), ("--history", "h.csv", "h.log")])
def test_an_output_link_to_another_suffix_is_refused_before_training(work, mnist_dir, option, name, target):
    (work / target).write_text("keep me\n")
    (work / name).symlink_to(work / target)
    proc = cli(*_train_args(mnist_dir, option, name), cwd=work)
    assert_error(proc, 2, option, "is a link to", target)
    assert_not_trained(proc)
    assert (work / target).read_text() == "keep me\n"


def test_an_output_link_to_an_input_is_refused_before_training(work, mnist_dir, tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    for path in mnist_dir.iterdir():
        (data / path.name).symlink_to(path)
    name = next(p.name for p in data.iterdir() if p.name.startswith("t10k-labels"))
    (work / "labels.npz").symlink_to(data / name)
    proc = cli("train", "--data-dir", str(data), *TINY, "--save", "labels.npz", cwd=work)
    assert_error(proc, 2, "--save", "is the input file")
    assert_not_trained(proc)


# -- class 4: stdout going away never loses the model ---------------------------------------------------
def test_train_piped_into_head_still_saves_the_model(work, mnist_dir):
    proc = _run(_train_args(mnist_dir, "--save", "m.npz"), work, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert proc.stdout is not None and proc.stdout.readline().startswith(b"training [")
    proc.stdout.close()  # `| head -n 1`
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err
    assert b"Traceback" not in err and b"Exception ignored" not in err
    assert load(work / "m.npz").sizes == [784, 30, 10]
    no_temporaries(work)


def test_quiet_train_into_a_closed_pipe_still_saves_the_model(work, mnist_dir):
    proc = _run(
        _train_args(mnist_dir, "--quiet", "--save", "m.npz"), work, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    assert proc.stdout is not None
    proc.stdout.close()  # `| head -c 0`
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 0 and b"Traceback" not in err, err
    assert load(work / "m.npz").sizes == [784, 30, 10]


@pytest.mark.skipif(not Path("/dev/full").exists(), reason="needs /dev/full")
def test_stdout_on_a_full_device_still_saves_the_model(work, mnist_dir):
    with open("/dev/full", "wb") as full:
        proc = _run(_train_args(mnist_dir, "--save", "m.npz", "--history", "h.json"), work, stdout=full,
                    stderr=subprocess.PIPE)  # fmt: skip
        _, err = proc.communicate(timeout=120)
    assert proc.returncode == 0 and b"Traceback" not in err, err
    assert load(work / "m.npz").sizes == [784, 30, 10] and (work / "h.json").stat().st_size > 0


def _with_stderr_closed(args: list[str], cwd: Path) -> subprocess.CompletedProcess:
    command = " ".join(["exec", sys.executable, "-m", "portable_nn", *args, "2>&-"])
    return subprocess.run(["sh", "-c", command], cwd=cwd, capture_output=False, stdout=subprocess.PIPE, timeout=120,
                          env=_env(XDG_CACHE_HOME=str(cwd.parent / "cache")), text=True)  # fmt: skip


def test_train_with_stderr_closed_does_its_work_and_exits_right(work, mnist_dir):
    """Class 13: ``2>&-`` made ``train`` exit 1 silently."""
    proc = _with_stderr_closed(_train_args(mnist_dir, "--save", "m.npz"), work)
    assert proc.returncode == 0, proc.stdout
    assert "final: " in proc.stdout and load(work / "m.npz").sizes == [784, 30, 10]
    bad = _with_stderr_closed(["train", "--batch-size", "0"], work)
    assert bad.returncode == 2


# -- classes 5 and 6: SIGHUP, and a second signal during the save ---------------------------------------
_SIGNAL_DURING_SAVE = textwrap.dedent(
    """
    import os, signal, sys
    from portable_nn import network2
    from portable_nn.cli import main

    original = network2.Network.save

    def save(self, path):
        os.kill(os.getpid(), signal.SIGHUP)   # the first signal: stop at the next mini-batch
        os.kill(os.getpid(), signal.SIGTERM)  # the second, during the save: stop at once
        return original(self, path)

    network2.Network.save = save
    sys.exit(main(sys.argv[1:]))
    """
)


def test_a_second_signal_during_the_save_is_reported_truthfully(work, mnist_dir):
    model = old_model(work / "m.npz")
    before = snapshot(model)
    args = ["train", "--data-dir", str(mnist_dir), *TINY, "--epochs", "1", "--save", "m.npz", "--history", "h.json"]
    proc = subprocess.run([sys.executable, "-c", _SIGNAL_DURING_SAVE, *args], cwd=work, capture_output=True,
                          text=True, timeout=120, env=_env())  # fmt: skip
    assert proc.returncode == 128 + signal.SIGHUP, proc.stderr
    assert "Traceback" not in proc.stderr
    assert "the files hold the network" not in proc.stdout, proc.stdout
    real = Path(os.path.realpath(work))
    assert f"--save: interrupted while writing; {real / 'm.npz'} was left as it was" in proc.stderr
    assert f"--history: not written (interrupted); {real / 'h.json'} was left as it was" in proc.stderr
    assert snapshot(model) == before and not (work / "h.json").exists()
    no_temporaries(work)


# -- class 9: work limits --------------------------------------------------------------------------------
def test_a_small_file_of_a_huge_conv_network_is_refused_before_evaluating(work, mnist_dir):
    from portable_nn import network3

    layers = [network3.ConvPoolLayer((60_000, 1, 1, 1), (1, 1, 28, 28), (28, 28)), network3.SoftmaxLayer(60_000, 10)]
    network3.Network(layers, 1, seed=0).save(work / "wide.npz")
    start = time.monotonic()
    proc = cli("evaluate", "--model", "wide.npz", "--data-dir", str(mnist_dir), cwd=work, timeout=60)
    assert_error(proc, 1, "wide.npz", "activations per image", "PORTABLE_NN_MAX_ACTIVATIONS")
    assert time.monotonic() - start < 30


def test_the_work_limits_apply_to_train_and_are_overridable(work, mnist_dir):
    proc = cli(*_train_args(mnist_dir), cwd=work, env=_env(PORTABLE_NN_MAX_FLOPS="1000"))
    assert_error(proc, 2, "--sizes 784,30,10", "47,640 FLOPs per image", "PORTABLE_NN_MAX_FLOPS")
    assert_not_trained(proc)
    proc = cli(*_train_args(mnist_dir, "--epochs", "1"), cwd=work, env=_env(PORTABLE_NN_MAX_FLOPS="47640"))
    assert proc.returncode == 0, proc.stderr
    assert_error(cli("train", cwd=work, env=_env(PORTABLE_NN_MAX_ACTIVATIONS="lots")), 2, "PORTABLE_NN_MAX_ACTIVATIONS")


def test_work_counts_for_the_three_chapters():
    """The counting function knows dense sizes and chapter 6's layer kinds; the book's networks are far inside."""
    from portable_nn import network3
    from portable_nn._base import limits

    assert limits.network_work([784, 30, 10]) == limits.Work(40, 2 * (784 * 30 + 30 * 10))
    conv = network3.ConvPoolLayer((20, 1, 5, 5), (10, 1, 28, 28), (2, 2))
    # 20 filters x 24x24 convolution outputs (25 multiply-adds each, plus the bias), then 20x12x12 pooled
    assert limits.network_work([conv]) == limits.Work(20 * 24 * 24 + 20 * 12 * 12, 20 * 24 * 24 * (2 * 25 + 1))
    assert limits.network_work([network3.SoftmaxLayer(100, 10)]) == limits.Work(10, 2000)
    for name, spec in network3.PRESETS.items():
        work = limits.check_work(limits.network_work(spec(10).layers()), name)
        assert work.activations < limits.ACTIVATIONS.value() // 100 and work.flops < limits.FLOPS.value() // 100


# -- class 10: predict never blocks on a FIFO ------------------------------------------------------------
@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs FIFOs")
def test_predict_refuses_a_fifo(work):
    pytest.importorskip("PIL")
    old_model(work / "m.npz")
    os.mkfifo(work / "digit.png")
    proc = cli("predict", "--model", "m.npz", "digit.png", cwd=work, timeout=30)
    assert_error(proc, 1, "digit.png", "not a regular file")


# -- class 13: limits and presets end with one line -------------------------------------------------------
def test_a_parameter_limit_below_the_network_is_one_line(work, mnist_dir):
    proc = cli(*_train_args(mnist_dir), cwd=work, env=_env(PORTABLE_NN_MAX_PARAMETERS="100"))
    assert_error(proc, 2, "23,860 parameters", "more than the limit of 100", "PORTABLE_NN_MAX_PARAMETERS")
    assert_not_trained(proc)


def _small_mnist(directory: Path, n_train: int) -> Path:
    directory.mkdir()
    rng = np.random.default_rng(0)
    for stem, n in (("train", n_train), ("t10k", 50)):
        images = rng.integers(0, 256, size=(n, 28, 28), dtype=np.uint8)
        labels = rng.integers(0, 10, size=n, dtype=np.uint8)
        _write_idx(directory / f"{stem}-images-idx3-ubyte", 3, (n, 28, 28))
        with open(directory / f"{stem}-images-idx3-ubyte", "ab") as handle:
            handle.write(images.tobytes())
        _write_idx(directory / f"{stem}-labels-idx1-ubyte", 1, (n,))
        with open(directory / f"{stem}-labels-idx1-ubyte", "ab") as handle:
            handle.write(labels.tobytes())
    return directory


def test_an_expanded_preset_on_a_small_data_set_is_one_line(work, tmp_path):
    data = _small_mnist(tmp_path / "small", 100)
    proc = cli("train", "--preset", "ch6-expanded", "--data-dir", str(data), "--no-download", "--epochs", "1",
               cwd=work, env=_env(XDG_CACHE_HOME=str(tmp_path / "cache")))  # fmt: skip
    assert_error(proc, 1, "ch6-expanded", "50,000", "only 100")


# -- class 15 and 17: layer count, sizes beyond the data ------------------------------------------------
def test_more_layers_than_a_model_file_may_hold_are_refused_up_front(work):
    sizes = ",".join(["784", *["1"] * 1000, "10"])  # 1,002 layer sizes: a file of them would not load
    proc = cli("train", "--sizes", sizes, "--save", "m.npz", cwd=work, timeout=30)
    assert_error(proc, 2, "--sizes", "1002 layer sizes", "at most 1000")
    assert not (work / "m.npz").exists()


def test_saving_refuses_what_loading_would_refuse(tmp_path):
    """The Python API's save has the limit of ``train`` and ``load``: no file is written that cannot be read."""
    net = network2.Network([784, *[1] * 1000, 10], seed=0)
    with pytest.raises(ValueError, match="1002 layer sizes; a model file holds at most 1000"):
        net.save(tmp_path / "deep.npz")
    assert not (tmp_path / "deep.npz").exists()


@pytest.mark.parametrize(("option", "value", "what"), [("--train-size", "1000000000", "training set"),
                                                       ("--test-size", "20000", "test set")])  # fmt: skip
def test_sizes_beyond_the_data_are_errors(work, mnist_dir, option, value, what):
    args = ["train", "--data-dir", str(mnist_dir), "--seed", "0", "--epochs", "1", option, value]
    proc = cli(*args, cwd=work)
    assert_error(proc, 2, f"{option} {value}", f"the {what} has only")
    assert "epoch 1/" not in proc.stdout


# -- issue 15: the CLI draws the initial weights once, as the Python API does -----------------------------
def _api_run(mnist_dir: Path, net: object) -> None:
    (x, y), _ = load_mnist(mnist_dir, download=False, dtype="uint8")
    net.SGD(Dataset(x[:300], y[:300], divisor=255.0), 1, 10, 3.0)  # type: ignore[attr-defined]


@pytest.mark.parametrize("init", ["large", "scaled"])
def test_train_with_a_seed_trains_the_api_network_of_that_seed(work, mnist_dir, init):
    proc = cli("train", "--data-dir", str(mnist_dir), *TINY, "--epochs", "1", "--init", init, "--save", "m.npz",
               cwd=work)  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    api = Network([784, 30, 10], seed=0) if init == "large" else network2.Network([784, 30, 10], "quadratic", seed=0)
    _api_run(mnist_dir, api)
    saved = load(work / "m.npz")
    for mine, theirs in zip([*saved.weights, *saved.biases], [*api.weights, *api.biases]):
        np.testing.assert_allclose(np.asarray(mine), np.asarray(theirs), rtol=0, atol=1e-12)
