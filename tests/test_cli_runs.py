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


# -- one vocabulary (point 5) --------------------------------------------------------------------------------
def test_train_and_sweep_draw_their_defaults_and_values_from_one_place():
    """``train``'s RunConfig is chapter 1's run, a sweep's unswept options chapter 3's; both name inits alike."""
    from portable_nn._base.runconfig import CHAPTER1, CHAPTER3, INITS
    from portable_nn.cli.config import DEFAULTS as TRAIN
    from portable_nn.sweep.space import CHOICES
    from portable_nn.sweep.space import DEFAULTS as SWEEP

    assert INITS == ("large", "scaled") and CHOICES["init"] == INITS
    assert {name: getattr(TRAIN, name) for name in CHAPTER1} == CHAPTER1
    sweep_names = {
        "cost": "cost",
        "init": "init",
        "eta": "eta",
        "lmbda": "lmbda",
        "mu": "momentum",
        "batch": "batch_size",
    }
    assert {name: SWEEP[name] for name in sweep_names} == {s: CHAPTER3[t] for s, t in sweep_names.items()}
    assert SWEEP["init"] == "scaled" and TRAIN.init == "large"


def test_sweep_takes_trains_names_and_the_old_init_spelling_with_a_note():
    from portable_nn.sweep.space import parse_param, valid_value

    assert parse_param("momentum=0.1,0.5").name == "mu"
    assert parse_param("batch-size=10").name == "batch"
    with pytest.warns(FutureWarning, match=r"^init=default is now spelled init=scaled"):
        spec = parse_param("init=default,large")
    assert spec.choices == ("scaled", "large")
    assert valid_value("init", "default")  # a trials.jsonl written before the rename still reads


def test_train_accepts_the_old_init_spelling_with_a_one_line_note(work, mnist_dir):
    args = ["train", "--data-dir", str(mnist_dir), "--train-size", "100", "--test-size", "20", "--epochs", "1"]
    proc = cli(*args, "--init", "default", "--seed", "0", "--history", "h.json", cwd=work)
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr.count("\n") == 1 and "--init default is now spelled --init scaled" in proc.stderr
    from portable_nn.history import read_history_settings

    assert read_history_settings(work / "h.json")["init"] == "scaled"


def test_sweep_notes_the_old_init_spelling_in_one_line(work, mnist_dir):
    proc = cli(
        "sweep", "--param", "init=default", "--data-dir", str(mnist_dir), "--no-download", "--out", "s",
        "--train-size", "100", "--validation-size", "50", "--test-size", "50", "--param", "epochs=1",
        "--workers", "1", "--quiet", cwd=work, timeout=240,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    notes = [line for line in proc.stderr.splitlines() if "note:" in line]
    assert notes == ["portable-nn sweep: note: init=default is now spelled init=scaled (the old name still works)"]
    record = json.loads((work / "s" / "trials.jsonl").read_text().splitlines()[0])
    assert record["config"]["init"] == "scaled"
    assert [row["epoch"] for row in record["history"]] == [1] and record["best_epoch"] == 1  # point 5: from 1


# -- epochs numbered from 1 (point 5) ------------------------------------------------------------------------
def test_a_trials_file_written_with_epochs_from_0_reads_numbered_from_1():
    """The stated rule: a history starting at epoch 0 is an old record, renumbered on reading."""
    from helpers import sweep_record

    from portable_nn.sweep.schema import check_record

    new = sweep_record(epochs=3)
    assert [row["epoch"] for row in check_record(new)["history"]] == [1, 2, 3]
    old = {**new, "history": [{**row, "epoch": row["epoch"] - 1} for row in new["history"]], "best_epoch": 2}
    read = check_record(old)
    assert [row["epoch"] for row in read["history"]] == [1, 2, 3] and read["best_epoch"] == 3


def test_the_divergence_warning_numbers_epochs_as_the_epoch_lines_do(work, mnist_dir):
    args = ["train", "--data-dir", str(mnist_dir), "--train-size", "200", "--test-size", "50", "--seed", "0"]
    proc = cli(*args, "--epochs", "2", "--eta", "1e6", cwd=work)
    assert proc.returncode == 0, proc.stderr
    assert "epoch 1/2:" in proc.stdout and "training diverged in epoch 1:" in proc.stderr, proc.stderr


# -- a missing data directory is never created (point 2) -------------------------------------------------------
def _offline(work):
    """The environment of :func:`cli` with every HTTPS request sent to a closed local port (fails at once)."""
    from test_cli_hardening import _env

    return _env(
        XDG_CACHE_HOME=str(work.parent / "cache"), https_proxy="http://127.0.0.1:9", HTTPS_PROXY="http://127.0.0.1:9"
    )


TRAIN_TINY = ("train", "--epochs", "1", "--train-size", "100", "--test-size", "20")


@pytest.mark.parametrize("command", [("evaluate", "--model", "m.npz"), TRAIN_TINY], ids=["evaluate", "train"])
@pytest.mark.parametrize("how", ["--data-dir", "PORTABLE_NN_DATA"])
def test_a_missing_data_dir_is_refused_and_never_created(work, command, how):
    old_model(work / "m.npz")
    env = _offline(work)
    if how == "--data-dir":
        proc = cli(*command, "--data-dir", "../nothere/x", cwd=work, env=env)
    else:
        proc = cli(*command, cwd=work, env={**env, "PORTABLE_NN_DATA": "../nothere/x"})
    line = assert_error(proc, 2, "../nothere/x does not exist", "--download")
    assert line.startswith(f"portable-nn {command[0]}: error: {how if how[0] == '-' else '$' + how} ")
    assert not (work.parent / "nothere").exists() and not (work.parent / "cache").exists()


@pytest.mark.parametrize("command", [("evaluate", "--model", "m.npz"), TRAIN_TINY], ids=["evaluate", "train"])
@pytest.mark.parametrize("where", [("--data-dir", "../nothere/x", "--download"), ()], ids=["--download", "cache"])
def test_an_offline_download_leaves_no_directory_behind(work, command, where):
    """``--download`` (or the default cache) creates the directory for the download and removes it when it fails."""
    old_model(work / "m.npz")
    proc = cli(*command, *where, cwd=work, env=_offline(work))
    assert_error(proc, 1, "download")
    assert not (work.parent / "nothere").exists() and not (work.parent / "cache").exists()
    assert sorted(p.name for p in work.iterdir()) == ["m.npz"]


def test_download_with_an_existing_data_dir_reads_it(work, mnist_dir):
    proc = cli(*TRAIN_TINY, "--data-dir", str(mnist_dir), "--download", "--quiet", cwd=work)
    assert proc.returncode == 0, proc.stderr


# -- readable heat-map labels (point 9) ------------------------------------------------------------------------
def test_heat_map_labels_are_black_on_light_cells_and_white_on_dark_ones():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from helpers import sweep_record

    from portable_nn.sweep.plot import _heat_map, label_colour

    assert label_colour((0.993, 0.906, 0.144, 1.0)) == "black"  # viridis's yellow
    assert label_colour((0.267, 0.005, 0.329, 1.0)) == "white"  # viridis's purple
    records = [sweep_record(eta=eta, lmbda=lmbda) for eta in (0.1, 3.0) for lmbda in (0.0, 5.0)]
    values = {(0.1, 0.0): 0.1, (0.1, 5.0): 0.2, (3.0, 0.0): 0.8, (3.0, 5.0): 0.9}
    fig, ax = plt.subplots()
    try:
        _heat_map(ax, ["eta", "lmbda"], records, lambda r: values[r["config"]["eta"], r["config"]["lmbda"]])
        colours = {text.get_text(): text.get_color() for text in ax.texts}
    finally:
        plt.close(fig)
    assert colours == {"0.10": "white", "0.20": "white", "0.80": "black", "0.90": "black"}
