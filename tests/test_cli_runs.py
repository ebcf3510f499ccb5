"""Issue 18, the command line's side: ``evaluate`` reads only the test set, runs say why they stopped,
history files carry the run's settings (``plot`` titles them), ``--debug`` anywhere, help for a terminal.
"""

from __future__ import annotations

import json
import re

import pytest
from test_cli_hardening import TINY, assert_error, cli, make_work, old_model

SUMMARY = re.compile(r"^final: .* on numpy \(cpu\); (?P<reason>.+)$", re.MULTILINE)


@pytest.fixture
def work(tmp_path, monkeypatch):
    """A working directory for the command, with its own user cache (:func:`test_cli_hardening.make_work`)."""
    return make_work(tmp_path, monkeypatch)


def test_evaluate_reads_only_the_test_files(work, mnist_dir, tmp_path):
    """Point 3: the two test files are enough; the 47 MB training images are neither read nor downloaded."""
    data = tmp_path / "only-test"
    data.mkdir()
    for path in mnist_dir.iterdir():
        if path.name.startswith("t10k-"):
            (data / path.name).symlink_to(path)
    old_model(work / "m.npz")
    proc = cli("evaluate", "--model", "m.npz", "--data-dir", str(data), "--no-download", cwd=work)
    assert proc.returncode == 0, proc.stderr
    assert re.match(r"^\d+ / 10000 \(\d+\.\d\d%\) m\.npz on numpy", proc.stdout), proc.stdout
    assert sorted(p.name for p in data.iterdir()) == sorted(p.name for p in mnist_dir.iterdir() if "t10k" in p.name)


@pytest.mark.parametrize(
    ("flags", "reason"),
    [
        (["--epochs", "2"], "all 2 epochs done"),
        (["--epochs", "40", "--early-stopping", "1", "--eta", "30"], "early stopping: no better evaluation accuracy"),
        (["--epochs", "60", "--schedule", "1", "--eta", "30"], "the learning-rate schedule reached eta/128 (0.234375)"),
        (["--epochs", "2", "--eta", "1e6"], "diverged"),
    ],
    ids=["complete", "early-stopping", "schedule", "diverged"],
)  # fmt: skip
def test_the_summary_and_the_history_say_why_the_run_stopped(work, mnist_dir, flags, reason):
    """Point 6 (and point 9: the history file records the run's settings)."""
    from portable_nn.history import read_history, read_history_settings

    args = ["train", "--data-dir", str(mnist_dir), "--train-size", "200", "--test-size", "50", "--seed", "0"]
    proc = cli(*args, *flags, "--history", "h.json", cwd=work)
    assert proc.returncode == 0, proc.stderr
    stated = SUMMARY.search(proc.stdout)
    assert stated is not None and stated["reason"].startswith(reason), proc.stdout
    settings = read_history_settings(work / "h.json")
    assert str(settings["stopped"]).startswith(reason)
    assert settings["seed"] == 0 and settings["batch_size"] == 10 and settings["sizes"] == [784, 30, 10]
    assert len(read_history(work / "h.json")) == int(re.search(r"(\d+) epoch\(s\) in", proc.stdout)[1])


def test_plot_titles_a_history_with_its_settings(work, mnist_dir):
    from portable_nn.history import plot_title

    proc = cli("train", "--data-dir", str(mnist_dir), *TINY, "--epochs", "1", "--eta", "0.5", "--history", "h.csv",
               cwd=work)  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    title = plot_title(work / "h.csv")
    assert title.startswith("[784, 30, 10]: epochs 1, batch_size 10, eta 0.5") and "(all 1 epochs done)" in title
    assert cli("plot", "h.csv", "-o", "h.png", cwd=work).returncode == 0
    assert (work / "h.png").read_bytes()[:4] == b"\x89PNG"
    # a history written without settings (older files, the Python API) still plots, titled by its name
    (work / "plain.json").write_text(json.dumps([{"epoch": 1, "correct": 5, "n_test": 10, "accuracy": 0.5}]))
    assert plot_title(work / "plain.json") == ""
    assert cli("plot", "plain.json", "-o", "plain.png", cwd=work).returncode == 0


def test_debug_is_accepted_after_the_subcommand(work):
    """Point 5: ``--debug`` anywhere on the command line."""
    proc = cli("evaluate", "--model", "absent.npz", "--debug", cwd=work)
    assert proc.returncode == 1 and "Traceback (most recent call last)" in proc.stderr, proc.stderr
    proc = cli("evaluate", "--model", "absent.npz", cwd=work)
    assert_error(proc, 1, "model file not found: absent.npz")


def test_the_top_level_help_is_written_for_a_terminal_and_lists_sweep(work):
    proc = cli("--help", cwd=work)
    assert proc.returncode == 0
    assert "``" not in proc.stdout, proc.stdout
    for command in ("train", "evaluate", "predict", "plot", "sweep"):
        assert re.search(rf"^\s+{command}\s+\w", proc.stdout, re.MULTILINE), proc.stdout
    assert "sweep" in proc.stdout.split("positional arguments")[0], "the description leaves out sweep"
