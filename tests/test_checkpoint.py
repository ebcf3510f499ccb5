"""Checkpoints: an interrupted-and-resumed run gives bit for bit the weights of an uninterrupted one.

The interrupt is the one users meet: ``KeyboardInterrupt`` raised from
``on_epoch`` after ``k`` epochs (Ctrl-C between epochs), then ``SGD`` called
again with ``resume=True`` on a freshly built network with the same seed.
"""

from __future__ import annotations

import json
import signal
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from helpers import synthetic_problem

from portable_nn import network, network2, network3
from portable_nn._backend.backends import to_numpy
from portable_nn._train import checkpoint
from portable_nn.network3 import FullyConnectedLayer, SoftmaxLayer

EPOCHS, STOP_AFTER = 4, 2
DATA = synthetic_problem(60, n_in=6, n_out=3, seed=1)
EVAL = synthetic_problem(30, n_in=6, n_out=3, seed=2)


def _build(chapter: str, backend: Any, dtype: str, seed: int | None) -> Any:
    if chapter == "network":
        return network.Network([6, 7, 3], xp=backend, dtype=dtype, seed=seed)
    if chapter == "network2":
        return network2.Network([6, 7, 3], xp=backend, dtype=dtype, seed=seed)
    layers = [FullyConnectedLayer(6, 8, p_dropout=0.25), SoftmaxLayer(8, 3)]
    return network3.Network(layers, 10, xp=backend, dtype=dtype, seed=seed)


def _train(chapter: str, net: Any, **options: Any) -> Any:
    """``epochs=EPOCHS`` of SGD with the chapter's settings (network2: momentum, L2, a schedule)."""
    if chapter == "network":
        return net.SGD(DATA, EPOCHS, 10, 3.0, EVAL, quiet=True, **options)
    if chapter == "network2":
        return net.SGD(
            DATA, EPOCHS, 10, 0.5, 0.1, EVAL, monitor_evaluation_accuracy=True, monitor_training_cost=True,
            mu=0.5, schedule_n=1, quiet=True, **options,
        )  # fmt: skip
    return net.SGD(DATA, EPOCHS, 10, 0.1, EVAL, EVAL, 0.01, quiet=True, **options)


def _interrupt_after(k: int) -> Callable[[Any], None]:
    def on_epoch(result: Any) -> None:
        if result.epoch + 1 == k:
            raise KeyboardInterrupt

    return on_epoch


def _parameters(net: Any) -> list[np.ndarray]:
    if hasattr(net, "layers"):
        return [to_numpy(p) for p in net.params]
    return [to_numpy(p) for p in (*net.weights, *net.biases)]


def _run_interrupted(chapter: str, backend: Any, dtype: str, seed: int | None, directory: Path) -> tuple[Any, Any]:
    if seed is None:
        np.random.seed(11)  # noqa: NPY002 - the book's way, on purpose
    with pytest.raises(KeyboardInterrupt):
        _train(
            chapter, _build(chapter, backend, dtype, seed), checkpoint=directory, on_epoch=_interrupt_after(STOP_AFTER)
        )
    if seed is None:
        np.random.seed(99)  # noqa: NPY002 - a later script draws differently: the checkpoint must put it back
    resumed = _build(chapter, backend, dtype, seed)
    return resumed, _train(chapter, resumed, checkpoint=directory, resume=True)


CHAPTERS = ("network", "network2", "network3")


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("chapter", CHAPTERS)
def test_interrupted_and_resumed_run_is_bit_for_bit(backend, dtype, chapter, tmp_path):
    whole = _build(chapter, backend, dtype, 3)
    whole_result = _train(chapter, whole)
    resumed, resumed_result = _run_interrupted(chapter, backend, dtype, 3, tmp_path / "ckpt")
    got, want = _parameters(resumed), _parameters(whole)
    assert len(got) == len(want)
    for g, w in zip(got, want):
        assert g.dtype == w.dtype
        assert np.array_equal(g, w), "resumed weights differ from the uninterrupted run"
    if chapter != "network2":  # per-epoch results, the earlier epochs included (timings aside)
        strip = [{**r.__dict__, "seconds": 0} for r in resumed_result]
        assert strip == [{**r.__dict__, "seconds": 0} for r in whole_result]
        assert len(resumed_result) == EPOCHS
    else:
        assert resumed_result == whole_result  # the book's four lists, earlier epochs included
    assert checkpoint.read(tmp_path / "ckpt" / checkpoint.FILE).epoch == EPOCHS


@pytest.mark.parametrize("chapter", CHAPTERS)
def test_global_numpy_state_is_restored(chapter, tmp_path):
    np.random.seed(11)  # noqa: NPY002
    whole = _build(chapter, "numpy", "float64", None)
    _train(chapter, whole)
    resumed, _ = _run_interrupted(chapter, "numpy", "float64", None, tmp_path / "ckpt")
    for g, w in zip(_parameters(resumed), _parameters(whole)):
        assert np.array_equal(g, w)


@pytest.mark.parametrize("chapter", CHAPTERS)
def test_interrupt_mid_epoch_resumes_from_the_last_whole_one(chapter, tmp_path):
    """Ctrl-C in the middle of epoch STOP_AFTER + 1 (from ``on_batch``): the checkpoint is the epoch before."""
    seen = {"examples": 0}

    def on_batch(m: int) -> None:
        seen["examples"] += m
        if seen["examples"] > STOP_AFTER * len(DATA[1]) + 25:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        _train(chapter, _build(chapter, "numpy", "float64", 3), checkpoint=tmp_path, on_batch=on_batch)
    assert checkpoint.read(tmp_path / checkpoint.FILE).epoch == STOP_AFTER
    resumed = _build(chapter, "numpy", "float64", 3)
    _train(chapter, resumed, checkpoint=tmp_path, resume=True)
    whole = _build(chapter, "numpy", "float64", 3)
    _train(chapter, whole)
    for g, w in zip(_parameters(resumed), _parameters(whole)):
        assert np.array_equal(g, w)


def test_interrupted_weights_differ_from_the_final_ones(tmp_path):
    """Guard: after STOP_AFTER epochs the weights are not yet the final ones, so equality above means something."""
    net = _build("network2", "numpy", "float64", 3)
    with pytest.raises(KeyboardInterrupt):
        _train("network2", net, checkpoint=tmp_path, on_epoch=_interrupt_after(STOP_AFTER))
    whole = _build("network2", "numpy", "float64", 3)
    _train("network2", whole)
    assert not all(np.array_equal(a, b) for a, b in zip(_parameters(net), _parameters(whole)))
    saved = checkpoint.read(tmp_path / checkpoint.FILE)
    assert saved.epoch == STOP_AFTER and saved.state.velocities_w  # momentum velocities are kept
    for a, b in zip(saved.state.weights, net.weights):
        assert np.array_equal(a, to_numpy(b))


# -- refusals ---------------------------------------------------------------------------------------------
@pytest.fixture
def written(tmp_path: Path) -> Path:
    with pytest.raises(KeyboardInterrupt):
        _train("network2", _build("network2", "numpy", "float64", 3), checkpoint=tmp_path, on_epoch=_interrupt_after(1))
    return tmp_path


@pytest.mark.parametrize(
    ("setting", "call"),
    [
        ("eta", lambda net, d: net.SGD(DATA, EPOCHS, 10, 0.25, 0.1, EVAL, mu=0.5, schedule_n=1, quiet=True,
                                      monitor_evaluation_accuracy=True, monitor_training_cost=True,
                                      checkpoint=d, resume=True)),
        ("mu", lambda net, d: net.SGD(DATA, EPOCHS, 10, 0.5, 0.1, EVAL, mu=0.0, schedule_n=1, quiet=True,
                                     monitor_evaluation_accuracy=True, monitor_training_cost=True,
                                     checkpoint=d, resume=True)),
        ("training_data", lambda net, d: net.SGD((DATA[0] * 0.5, DATA[1]), EPOCHS, 10, 0.5, 0.1, EVAL, mu=0.5,
                                                schedule_n=1, quiet=True, monitor_evaluation_accuracy=True,
                                                monitor_training_cost=True, checkpoint=d, resume=True)),
        ("dtype", None),
    ],
)  # fmt: skip
def test_other_settings_or_data_are_refused(written, setting, call):
    if call is None:
        net = _build("network2", "numpy", "float32", 3)
        call = lambda net, d: _train("network2", net, checkpoint=d, resume=True)  # noqa: E731
    else:
        net = _build("network2", "numpy", "float64", 3)
    before = _parameters(net)
    with pytest.raises(ValueError, match=f"written with {setting}=.*this run has {setting}="):
        call(net, written)
    for a, b in zip(before, _parameters(net)):
        assert np.array_equal(a, b)  # nothing changed


def _rewrite_meta(path: Path, change: Callable[[dict[str, Any]], None]) -> None:
    with np.load(path, allow_pickle=False) as archive:
        arrays = {name: archive[name] for name in archive.files}
    meta = json.loads(str(arrays["meta"]))
    change(meta)
    arrays["meta"] = np.asarray(json.dumps(meta))
    with path.open("wb") as handle:
        np.savez(handle, allow_pickle=False, **arrays)


def test_newer_version_is_refused(written):
    _rewrite_meta(written / checkpoint.FILE, lambda meta: meta.update(version=checkpoint.VERSION + 1))
    with pytest.raises(ValueError, match="version 2 is newer"):
        _train("network2", _build("network2", "numpy", "float64", 3), checkpoint=written, resume=True)


@pytest.mark.parametrize(
    "damage",
    [
        lambda p: p.write_bytes(p.read_bytes()[: len(p.read_bytes()) // 2]),
        lambda p: p.write_bytes(b"not a zip file"),
        lambda p: _rewrite_meta(p, lambda meta: meta.update(epoch="two")),
        lambda p: _rewrite_meta(p, lambda meta: meta.update(history=[])),
        lambda p: _rewrite_meta(p, lambda meta: meta["rng"].update(state={"bit_generator": "nope"})),
    ],
)
def test_damaged_checkpoint_is_one_line_naming_the_file(written, damage):
    path = written / checkpoint.FILE
    damage(path)
    with pytest.raises(checkpoint.CheckpointError) as caught:
        _train("network2", _build("network2", "numpy", "float64", 3), checkpoint=written, resume=True)
    message = str(caught.value)
    assert str(path) in message and "\n" not in message


def test_resume_needs_a_checkpoint(tmp_path):
    net = _build("network", "numpy", "float64", 3)
    with pytest.raises(FileNotFoundError, match="no checkpoint"):
        _train("network", net, checkpoint=tmp_path / "missing", resume=True)
    with pytest.raises(ValueError, match="resume=True needs checkpoint"):
        _train("network", net, resume=True)
    with pytest.raises(TypeError, match="checkpoint must be"):
        _train("network", net, checkpoint=3)


def test_checkpoint_file_has_no_pickle(written):
    with zipfile.ZipFile(written / checkpoint.FILE) as archive:
        names = sorted(archive.namelist())
    assert "meta.npy" in names and all(n.endswith(".npy") for n in names)
    checkpoint.read(written / checkpoint.FILE)  # reads back with allow_pickle=False


# -- the command line ---------------------------------------------------------------------------------------
CLI_RUN = ["--train-size", "3000", "--batch-size", "1", "--test-size", "100", "--seed", "0", "--epochs", "3"]


def _arrays(path: Path) -> dict[str, np.ndarray]:
    with np.load(path, allow_pickle=False) as archive:
        return {name: archive[name] for name in archive.files}


def test_cli_sigint_then_resume_saves_the_uninterrupted_model(mnist_dir, tmp_path, monkeypatch):
    from test_cli_hardening import Running, cli, make_work

    work = make_work(tmp_path, monkeypatch)
    args = ["train", "--data-dir", str(mnist_dir), *CLI_RUN]
    whole = cli(*args, "--save", "whole.npz", cwd=work)
    assert whole.returncode == 0, whole.stderr
    run = Running([*args, "--checkpoint", "ckpt"], work)
    run.wait_for("epoch 1/3")
    run.proc.send_signal(signal.SIGINT)  # lands in epoch 2: the checkpoint keeps epoch 1 (or 2)
    stopped = run.finish()
    assert stopped.returncode == 130 and "Traceback" not in stopped.stderr, stopped.stderr
    done = checkpoint.read(work / "ckpt" / checkpoint.FILE).epoch
    assert 1 <= done < 3, "the run ended before the signal; make the epochs longer"
    resumed = cli(*args, "--resume", "ckpt", "--save", "resumed.npz", cwd=work)
    assert resumed.returncode == 0, resumed.stderr
    assert f"resuming from ckpt: {done} of 3 epochs done; continuing with epoch {done + 1}" in resumed.stdout
    assert f"epoch {done + 1}/3:" in resumed.stdout and f"epoch {done}/3:" not in resumed.stdout
    assert "after epoch 3;" in resumed.stdout  # the summary covers the whole run
    want, got = _arrays(work / "whole.npz"), _arrays(work / "resumed.npz")
    assert sorted(got) == sorted(want)
    for name in want:
        assert np.array_equal(got[name], want[name]), name


def test_cli_resume_with_other_settings_is_one_line_exit_2(mnist_dir, tmp_path, monkeypatch):
    from test_cli_hardening import assert_error, cli, make_work

    work = make_work(tmp_path, monkeypatch)
    args = ["train", "--data-dir", str(mnist_dir), "--train-size", "200", "--test-size", "50", "--seed", "0"]
    first = cli(*args, "--epochs", "1", "--checkpoint", "ckpt", cwd=work)
    assert first.returncode == 0, first.stderr
    proc = cli(*args, "--epochs", "1", "--eta", "0.5", "--resume", "ckpt", cwd=work)
    assert_error(proc, 2, "--resume", "eta=3.0", "eta=0.5")
    (work / "ckpt" / checkpoint.FILE).write_bytes(b"damaged")
    proc = cli(*args, "--epochs", "1", "--resume", "ckpt", cwd=work)
    assert_error(proc, 2, "--resume", str(Path("ckpt") / checkpoint.FILE), "not a readable checkpoint")
    proc = cli(*args, "--resume", "missing", cwd=work)
    assert_error(proc, 2, "--resume", "no checkpoint")
    assert "training [" not in proc.stdout  # refused before any data is read
    (work / "file").write_text("")
    proc = cli(*args, "--checkpoint", "file", cwd=work)
    assert_error(proc, 2, "--checkpoint", "is a file")
