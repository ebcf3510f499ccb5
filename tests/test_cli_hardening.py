"""The ``portable-nn`` command when things go wrong (issue 9), run as a real subprocess.

Every test runs ``python -m portable_nn`` on a tiny slice of the shared MNIST
copy and checks the exit status, stderr (one ``portable-nn CMD: error:`` line,
no traceback) and the files on disk: the old files untouched where nothing
should be written, no ``.part`` temporaries anywhere.  Filesystem conditions
root cannot fake with permission bits use real ones: ``/sys`` (no files can be
created there), write-only sysfs attributes (cannot be opened for reading),
and small or read-only ``tmpfs`` mounts where this machine lets us mount them
(skipped with the reason elsewhere).
"""

from __future__ import annotations

import contextlib
import errno
import glob
import io
import json
import os
import re
import shutil
import signal
import stat
import struct
import subprocess
import sys
import threading
import time
import zlib
from pathlib import Path

import numpy as np
import pytest

from portable_nn import Network, load
from portable_nn._data.forms import Dataset
from portable_nn._data.mnist import load_mnist

TINY = ["--train-size", "300", "--test-size", "100", "--seed", "0"]
SUMMARY = re.compile(r"^final: (\d+) / (\d+) \(\d+\.\d\d%\) after epoch (\d+);", re.MULTILINE)
EPOCH = re.compile(r"^epoch (\d+)/\d+: (\d+) / (\d+) ", re.MULTILINE)


# -- helpers ---------------------------------------------------------------------------------------------
def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PORTABLE_NN_")}
    return {**env, "PYTHONUNBUFFERED": "1", **extra}


def make_work(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A working directory for the command (fallback saves land here) with its own user cache."""
    directory = tmp_path / "work"
    directory.mkdir()
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    return directory


@pytest.fixture
def work(tmp_path, monkeypatch):
    """See :func:`make_work`."""
    return make_work(tmp_path, monkeypatch)


def cli(*args: str, cwd: Path, env: dict[str, str] | None = None, timeout: float = 60) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "portable_nn", *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        env=env or _env(XDG_CACHE_HOME=str(cwd.parent / "cache")),
        timeout=timeout,
    )


def assert_error(proc: subprocess.CompletedProcess, status: int, *fragments: str) -> str:
    """Exit ``status``, no traceback, one error line (after argparse's usage line for status 2); returns it."""
    assert proc.returncode == status, f"exit {proc.returncode}\nstdout:\n{proc.stdout}\nstderr:\n{proc.stderr}"
    assert "Traceback" not in proc.stderr, proc.stderr
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    errors = [line for line in lines if re.match(r"portable-nn( \w+)?: error: ", line)]
    assert len(errors) == 1, proc.stderr
    if status == 2:
        assert lines[0].startswith("usage: portable-nn"), proc.stderr
    for fragment in fragments:
        assert fragment in errors[0], f"{fragment!r} not in {errors[0]!r}"
    return errors[0]


def assert_not_trained(proc: subprocess.CompletedProcess) -> None:
    """The failure was found before training started."""
    assert "training [" not in proc.stdout and "epoch 1/" not in proc.stdout, proc.stdout


def no_temporaries(*directories: Path) -> None:
    for directory in directories:
        leftovers = [p for p in directory.rglob("*") if p.name.endswith(".part")]
        assert leftovers == [], f"temporary files left behind: {leftovers}"


def snapshot(*paths: Path) -> dict[Path, bytes]:
    return {p: p.read_bytes() for p in paths}


@pytest.fixture(scope="module")
def test_subset(mnist_dir):
    """The first 100 test images as the command evaluates them (uint8 / 255)."""
    _, (images, labels) = load_mnist(mnist_dir, download=False, dtype="uint8")
    return Dataset(images[:100], labels[:100], divisor=255.0)


def saved_correct(path: Path, subset: Dataset) -> int:
    return load(path).evaluate(subset)


def old_model(path: Path, seed: int = 7) -> Path:
    return Network([784, 30, 10], seed=seed).save(path)


@contextlib.contextmanager
def tmpfs(directory: Path, size: str, *, read_only: bool = False):
    """A ``size``-limited (optionally read-only) tmpfs on ``directory``; skips where mounting is not allowed."""
    directory.mkdir()
    options = f"size={size},mode=0777" + (",ro" if read_only else "")
    if not sys.platform.startswith("linux") or shutil.which("mount") is None:
        pytest.skip("size-limited filesystems need Linux and mount(8)")
    result = subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(directory)], capture_output=True)
    if result.returncode != 0:
        reason = result.stderr.decode(errors="replace").strip() or f"exit {result.returncode}"
        pytest.skip(f"cannot mount a tmpfs here (needs root and CAP_SYS_ADMIN): {reason}")
    try:
        yield directory
    finally:
        subprocess.run(["umount", "-l", str(directory)], capture_output=True)


def fill(directory: Path) -> None:
    """Fill ``directory``'s filesystem to the last byte."""
    with open(directory / "filler", "wb", buffering=0) as handle:
        block = bytes(4096)
        while True:
            try:
                handle.write(block)
            except OSError as exc:
                assert exc.errno in (errno.ENOSPC, errno.EDQUOT), exc
                break
    for size in (512, 64, 1):
        with open(directory / "filler", "ab", buffering=0) as handle, contextlib.suppress(OSError):
            while True:
                handle.write(bytes(size))


class Running:
    """A training run we can read line by line and signal (killed after ``timeout`` s whatever happens)."""

    def __init__(self, args: list[str], cwd: Path, timeout: float = 60) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "portable_nn", *args],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            cwd=cwd,
            env=_env(XDG_CACHE_HOME=str(cwd.parent / "cache")),
        )
        self.watchdog = threading.Timer(timeout, self.proc.kill)
        self.watchdog.start()
        self.lines: list[str] = []

    def wait_for(self, prefix: str) -> str:
        for line in self.proc.stdout:
            self.lines.append(line)
            if line.startswith(prefix):
                return line
        raise AssertionError(f"the run ended before printing {prefix!r}: {''.join(self.lines)}")

    def finish(self) -> subprocess.CompletedProcess:
        try:
            out, err = self.proc.communicate(timeout=60)
        finally:
            self.watchdog.cancel()
            self.proc.kill()
        return subprocess.CompletedProcess(self.proc.args, self.proc.returncode, "".join(self.lines) + out, err)


# -- 1. outputs checked before training: directory, no permission, read-only, full, long names ------------
@pytest.mark.parametrize("option", ["--save", "--history", "--plot"])
def test_output_that_is_a_directory_is_refused_before_training(mnist_dir, work, option):
    target = work / {"--save": "model.npz", "--history": "h.json", "--plot": "acc.png"}[option]
    target.mkdir()
    proc = cli("train", "--data-dir", str(mnist_dir), *TINY, option, str(target), cwd=work)
    assert_error(proc, 2, option, str(target), "is a directory")
    assert_not_trained(proc)
    assert target.is_dir() and list(target.iterdir()) == []


def _unwritable_directory(tmp_path: Path) -> Path:
    if os.geteuid() != 0:
        directory = tmp_path / "locked"
        directory.mkdir(mode=0o500)
        return directory
    if not os.path.isdir("/sys") or _can_create_in("/sys"):
        pytest.skip("no directory that root cannot create files in (/sys is writable here)")
    return Path("/sys")


def _can_create_in(directory: str) -> bool:
    try:
        fd = os.open(os.path.join(directory, ".portable_nn_probe"), os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except OSError:
        return False
    os.close(fd)
    os.unlink(os.path.join(directory, ".portable_nn_probe"))
    return True


@pytest.mark.parametrize("option", ["--save", "--history"])
def test_output_in_a_directory_we_cannot_write_is_refused_before_training(mnist_dir, work, tmp_path, option):
    directory = _unwritable_directory(tmp_path)
    target = directory / ("portable_nn_model.npz" if option == "--save" else "portable_nn_history.csv")
    proc = cli("train", "--data-dir", str(mnist_dir), *TINY, option, str(target), cwd=work)
    assert_error(proc, 2, option, str(target), f"cannot create files in {directory}", "choose a writable location")
    assert_not_trained(proc)
    assert not target.exists()


def test_output_on_a_read_only_filesystem_is_refused_before_training(mnist_dir, work, tmp_path):
    with tmpfs(tmp_path / "ro", "64k", read_only=True) as directory:
        proc = cli("train", "--data-dir", str(mnist_dir), *TINY, "--save", str(directory / "m.npz"), cwd=work)
        assert_error(proc, 2, "--save", "Read-only file system", "choose a writable location")
        assert_not_trained(proc)


def test_not_enough_space_for_the_model_is_found_before_training(mnist_dir, work, tmp_path):
    with tmpfs(tmp_path / "small", "64k") as directory:
        proc = cli("train", "--data-dir", str(mnist_dir), *TINY, "--save", str(directory / "m.npz"), cwd=work)
        line = assert_error(proc, 1, f"--save {directory / 'm.npz'}", "the model needs about", "free")
        assert re.search(r"needs about 19\d,\d{3} bytes", line), line
        assert_not_trained(proc)
        assert os.listdir(directory) == []


def test_disk_filled_during_training_rescues_the_model(mnist_dir, work, tmp_path, test_subset):
    with tmpfs(tmp_path / "disk", "256k") as directory:
        target = directory / "model.npz"
        run = Running(["train", "--data-dir", str(mnist_dir), *TINY, "--epochs", "100", "--save", str(target)], work)
        run.wait_for("epoch 1/")
        os.kill(run.proc.pid, signal.SIGSTOP)  # the pre-checks passed; now the disk fills up
        try:
            fill(directory)
        finally:
            os.kill(run.proc.pid, signal.SIGCONT)
        proc = run.finish()
        assert not target.exists(), "the run finished before the disk was filled; make the epochs longer"
        line = assert_error(proc, 1, f"could not write --save {target}", "saved the model to")
        rescued = Path(line.split("saved the model to ")[1].split(" instead")[0])
        assert rescued.parent == work and rescued.suffix == ".npz", line
        correct, n, epoch = map(int, SUMMARY.search(proc.stdout).groups())
        assert (n, epoch) == (100, 100)
        assert saved_correct(rescued, test_subset) == correct
        no_temporaries(directory, work)


def test_long_legal_name_is_saved(mnist_dir, work):
    name = "m" * (255 - len(".npz")) + ".npz"  # the longest legal name: its temporary needs a shorter name
    proc = cli("train", "--data-dir", str(mnist_dir), *TINY, "--epochs", "1", "--save", str(work / name), cwd=work)
    assert proc.returncode == 0, proc.stderr
    assert load(work / name).sizes == [784, 30, 10]
    assert sorted(os.listdir(work)) == [name]


def test_name_longer_than_the_filesystem_allows_is_refused_before_training(mnist_dir, work):
    target = work / ("m" * 300 + ".npz")
    proc = cli("train", "--data-dir", str(mnist_dir), *TINY, "--save", str(target), cwd=work)
    assert_error(proc, 2, "--save", "longer than this filesystem's limit of 255", "choose a shorter name")
    assert_not_trained(proc)


# -- 2. good files are never overwritten by another output or the command's own input ----------------------
def test_same_path_for_save_and_history_is_refused(mnist_dir, work):
    model = old_model(work / "out.json")
    (work / "link.json").symlink_to(model)
    before = snapshot(model)
    for history in ("out.json", "./out.json", "link.json"):
        proc = cli("train", "--data-dir", str(mnist_dir), *TINY, "--save", "out.json", "--history", history, cwd=work)
        assert_error(proc, 2, "--save and --history name the same file", "give each its own")
        assert_not_trained(proc)
    assert snapshot(model) == before
    no_temporaries(work)


def test_plot_never_overwrites_a_model_or_its_input(work):
    history = work / "h.json"
    history.write_text(json.dumps([{"epoch": 1, "correct": 50, "n_test": 100, "accuracy": 0.5}]))
    model = old_model(work / "model.npz")
    (work / "alias.png").symlink_to(history)
    before = snapshot(history, model)
    assert_error(cli("plot", str(history), "-o", str(model), cwd=work), 2, "-o/--output must end in .png")
    assert_error(cli("plot", str(history), "-o", str(history), cwd=work), 2, "-o/--output must end in .png")
    assert_error(cli("plot", str(history), "-o", "alias.png", cwd=work), 2, "is the input file")
    assert snapshot(history, model) == before
    proc = cli("plot", str(history), "-o", "acc.png", cwd=work)
    assert proc.returncode == 0, proc.stderr
    assert (work / "acc.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    no_temporaries(work)


# -- 3. interrupts: SIGINT and SIGTERM, before the first epoch and mid-training -----------------------------
SIGNALS = [pytest.param(signal.SIGINT, id="SIGINT"), pytest.param(signal.SIGTERM, id="SIGTERM")]
#: SIGHUP (terminal or SSH session closed) is handled like SIGTERM (issue 17, class 5).
STOP_SIGNALS = [*SIGNALS, pytest.param(signal.SIGHUP, id="SIGHUP")]


@pytest.mark.parametrize("signum", STOP_SIGNALS)
def test_interrupt_before_the_first_epoch_writes_nothing(mnist_dir, work, signum):
    model, history = old_model(work / "model.npz"), work / "history.json"
    history.write_text(json.dumps([{"epoch": 1, "correct": 1, "n_test": 2}]))
    before = snapshot(model, history)
    args = ["--train-size", "10000", "--batch-size", "1", "--test-size", "100", "--seed", "0", "--epochs", "3"]
    run = Running(["train", "--data-dir", str(mnist_dir), *args, "--save", str(model), "--history", str(history)], work)
    run.wait_for("training [")  # printed just before the first (one-second) epoch starts
    run.proc.send_signal(signum)
    proc = run.finish()
    assert proc.returncode == 128 + signum, proc.stderr
    assert "Traceback" not in proc.stderr and f"interrupted ({signum.name}) after 0 complete epoch(s)" in proc.stderr
    assert "epoch 1/" not in proc.stdout, "the first epoch completed before the signal; make it longer"
    assert "no epoch completed" in proc.stdout and "nothing written" in proc.stdout
    assert snapshot(model, history) == before
    no_temporaries(work)


@pytest.mark.parametrize("signum", STOP_SIGNALS)
@pytest.mark.parametrize("after_epoch", [1, 2])
def test_interrupt_mid_training_saves_the_last_completed_epoch(mnist_dir, work, test_subset, signum, after_epoch):
    model, history = work / "model.npz", work / "history.csv"
    args = ["--train-size", "3000", "--batch-size", "1", "--test-size", "100", "--seed", "0", "--epochs", "50"]
    run = Running(["train", "--data-dir", str(mnist_dir), *args, "--save", str(model), "--history", str(history)], work)
    run.wait_for(f"epoch {after_epoch}/50")
    run.proc.send_signal(signum)  # lands in the next epoch: its partial updates must not be saved
    proc = run.finish()
    assert proc.returncode == 128 + signum, proc.stderr
    assert "Traceback" not in proc.stderr and f"interrupted ({signum.name}) after" in proc.stderr
    epochs = EPOCH.findall(proc.stdout)
    correct, n, epoch = map(int, SUMMARY.search(proc.stdout).groups())
    assert epoch == len(epochs) >= after_epoch and epoch < 50
    assert (correct, n) == (int(epochs[-1][1]), 100)
    assert f"the files hold the network as it was after epoch {epoch}, as summarised" in proc.stdout
    assert saved_correct(model, test_subset) == correct, "the saved model is not the one summarised"
    rows = history.read_text().splitlines()[1:]  # after the settings line
    assert len(rows) == 1 + epoch and rows[-1].startswith(f"{epoch},") and f",{correct},100," in rows[-1]
    no_temporaries(work)


def test_stale_temporaries_of_killed_runs_are_removed(mnist_dir, work):
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    stale = work / f".model.npz.{dead.pid}-0badc0de.part"
    stale.write_bytes(b"half a model")
    hour_ago = time.time() - 3600
    os.utime(stale, (hour_ago, hour_ago))
    proc = cli("train", "--data-dir", str(mnist_dir), *TINY, "--epochs", "1", "--save", "model.npz", cwd=work)
    assert proc.returncode == 0, proc.stderr
    assert sorted(os.listdir(work)) == ["model.npz"]


# -- 4. memory: small inputs that declare huge sizes ---------------------------------------------------------
def test_absurd_sizes_are_refused_before_allocating(work):
    proc = cli("train", "--sizes", "784,1000000000,10", cwd=work, timeout=30)
    assert_error(proc, 2, "--sizes", "more than the limit of 50,000,000", "PORTABLE_NN_MAX_PARAMETERS")


def test_typo_in_a_limit_variable_is_a_usage_error(work, mnist_dir):
    proc = cli(
        "evaluate", "--model", "m.npz", "--data-dir", str(mnist_dir), cwd=work,
        env=_env(PORTABLE_NN_MAX_MODEL_BYTES="2 gigs"),
    )  # fmt: skip
    assert_error(proc, 2, "$PORTABLE_NN_MAX_MODEL_BYTES", "'2 gigs'")


# -- 5. ordinary mistakes: one line, exit 1 (or 2 for flags), never a traceback -----------------------------
def _npz(**arrays) -> bytes:
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    return buffer.getvalue()


def _model_files(directory: Path) -> dict[str, tuple[Path, str]]:
    """Broken model files: name -> (path, what the error must say)."""
    good = old_model(directory / "good.npz").read_bytes()
    net = Network([784, 30, 10], seed=0)
    arrays = {"sizes": np.asarray([784, 30, 10])}
    arrays.update({f"weights_{i}": np.asarray(w, dtype=np.float16) for i, w in enumerate(net.weights)})
    arrays.update({f"biases_{i}": np.asarray(b) for i, b in enumerate(net.biases)})
    npy = io.BytesIO()
    np.save(npy, np.zeros(3))
    json_model = json.loads(Network([784, 30, 10], seed=0).save(directory / "ok.json").read_text())
    json_model["weights"][0][0][0] = "0.25"
    contents = {
        "empty.npz": (b"", "the file is empty"),
        "truncated.npz": (good[: len(good) // 3], "not a readable .npz model"),
        "renamed-npy.npz": (npy.getvalue(), "not a readable .npz model"),
        "half.npz": (_npz(**arrays), "weights[0] is float16; expected float32 or float64"),
        "deep.json": (b"[" * 100_000 + b"]" * 100_000, "JSON nested deeper than a model ever is"),
        "strings.json": (json.dumps(json_model).encode(), "weights[0][0][0] is str '0.25'; expected a number"),
        "small.npz": (None, "the model has 6 inputs and 3 outputs; MNIST needs 784 inputs and 10 outputs"),
    }
    files = {}
    for name, (content, message) in contents.items():
        path = directory / name
        if content is None:
            Network([6, 5, 3], seed=0).save(path)
        else:
            path.write_bytes(content)
        files[name] = (path, message)
    return files


def test_broken_model_files_are_one_line_errors(work, mnist_dir):
    for path, message in _model_files(work).values():
        proc = cli("evaluate", "--model", str(path), "--data-dir", str(mnist_dir), cwd=work)
        assert_error(proc, 1, str(path), message)
    proc = cli("evaluate", "--model", "model.pkl", "--data-dir", str(mnist_dir), cwd=work)
    assert_error(proc, 2, "--model must end in .npz or .json", "model.pkl")
    proc = cli("evaluate", "--model", "absent.npz", "--data-dir", str(mnist_dir), cwd=work)
    assert_error(proc, 1, "model file not found: absent.npz")


def _write_idx(path: Path, magic_dims: int, shape: tuple[int, ...]) -> None:
    path.write_bytes(struct.pack(f">HBB{len(shape)}I", 0, 8, magic_dims, *shape))


def test_empty_data_set_is_a_one_line_error(work, tmp_path):
    data = tmp_path / "empty-mnist"
    data.mkdir()
    for stem, shape in [
        ("train-images-idx3-ubyte", (0, 28, 28)),
        ("train-labels-idx1-ubyte", (0,)),
        ("t10k-images-idx3-ubyte", (0, 28, 28)),
        ("t10k-labels-idx1-ubyte", (0,)),
    ]:
        _write_idx(data / stem, len(shape), shape)
    assert_error(cli("train", "--data-dir", str(data), "--no-download", cwd=work), 1, "the MNIST training set is empty")
    old_model(work / "m.npz")
    proc = cli("evaluate", "--model", "m.npz", "--data-dir", str(data), "--no-download", cwd=work)
    assert_error(proc, 1, "the MNIST test set is empty")


def test_data_dir_that_is_a_file_is_a_one_line_error(work, mnist_dir):
    regular = work / "mnist.gz"
    regular.write_bytes(b"not a directory")
    proc = cli("train", "--data-dir", str(regular), *TINY[:4], cwd=work)
    assert_error(proc, 1, f"{regular} is not a directory", "--data-dir / $PORTABLE_NN_DATA must name a directory")
    proc = cli("train", *TINY[:4], cwd=work, env=_env(PORTABLE_NN_DATA=str(regular), XDG_CACHE_HOME=str(work)))
    assert_error(proc, 1, f"{regular} is not a directory")


def _write_only_file() -> str:
    if os.geteuid() != 0:
        return ""
    for candidate in ["/sys/class/zram-control/hot_remove", *glob.glob("/sys/devices/*/*/rescan")]:
        info = os.stat(candidate) if os.path.exists(candidate) else None
        if info and stat.S_ISREG(info.st_mode) and not info.st_mode & 0o444:
            return candidate
    pytest.skip("no file here that root cannot read (a write-only sysfs attribute)")


def test_unreadable_data_file_is_a_one_line_error(work, mnist_dir, tmp_path):
    data = tmp_path / "mnist"
    data.mkdir()
    for path in mnist_dir.iterdir():
        (data / path.name).symlink_to(path)
    images = data / "train-images-idx3-ubyte.gz"
    images.unlink()
    target = _write_only_file()
    if target:
        images.symlink_to(target)  # only ever opened for reading, which the kernel refuses
    else:
        shutil.copy(mnist_dir / "train-images-idx3-ubyte.gz", images)
        images.chmod(0)
    proc = cli("train", "--data-dir", str(data), *TINY[:4], cwd=work)
    assert_error(proc, 1, str(images), "Permission denied", "check its permissions")


def test_unreadable_data_directory_is_a_one_line_error(work, tmp_path):
    if os.geteuid() != 0:
        directory = tmp_path / "locked"
        directory.mkdir(mode=0)
    else:
        directory = Path("/proc/1/root")
        try:
            os.stat(directory / "train-images-idx3-ubyte.gz")
        except PermissionError:
            pass
        except OSError:
            pytest.skip("no directory here that root cannot search (/proc/1/root is open to us)")
    proc = cli("train", "--data-dir", str(directory), "--no-download", cwd=work)
    assert_error(proc, 1, str(directory), "Permission denied")


def test_bad_flag_values_are_usage_errors(work):
    assert_error(cli("train", "--seed", "-1", cwd=work), 2, "--seed", "expected an int >= 0; got '-1'")
    assert_error(cli("train", "--eta", "1e400", cwd=work), 2, "--eta", "a finite number > 0")
    assert_error(cli("train", "--test-size", "0", cwd=work), 2, "--test-size")


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("garbage.json", b"\x00\xff{[", "not UTF-8 text"),
        ("truncated.json", b'[{"epoch": 1, "correct": 5', "not valid JSON"),
        ("deep.json", b"[" * 100_000 + b"]" * 100_000, "nested too deeply"),
        ("object.json", b'{"epoch": 1}', "expected a JSON list of objects"),
        ("typed.json", b'[{"epoch": "one"}]', "field 'epoch' must be a non-negative integer"),
        ("bad.csv", b"epoch,correct\n1,2,3\n", "line 2: 3 cells, the header has 2"),
        ("history.txt", b"[]", "expected a .json or .csv history file"),
        ("empty.json", b"[]", "no accuracy or cost values to plot"),
    ],
)
def test_corrupt_history_given_to_plot_is_a_one_line_error(work, name, content, message):
    path = work / name
    path.write_bytes(content)
    assert_error(cli("plot", str(path), "-o", "acc.png", cwd=work), 1, str(path), message)
    assert not (work / "acc.png").exists()
    no_temporaries(work)


def _png(width: int, height: int, rows: bytes) -> bytes:
    """A 1-bit greyscale PNG of ``width`` x ``height`` whose image data is ``rows`` (filter bytes included)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(rows, 9)) + chunk(b"IEND", b"")


def test_decompression_bombs_are_refused(work):
    pytest.importorskip("PIL")
    old_model(work / "m.npz")
    # Over twice Pillow's limit (an error in Pillow) and just over it (only a warning in Pillow, which
    # would then decode 10^8 pixels): both are refused before decoding.
    (work / "huge.png").write_bytes(_png(20_000, 20_000, b""))
    (work / "big.png").write_bytes(_png(10_000, 10_000, bytes(10_000 * (1 + 10_000 // 8))))
    for name in ("huge.png", "big.png"):
        proc = cli("predict", "--model", "m.npz", name, cwd=work)
        assert_error(proc, 1, name, "refused, the image is too large", "28x28")


def test_debug_shows_the_traceback(work):
    for args, env in ((["--debug"], _env()), ([], _env(PORTABLE_NN_DEBUG="1"))):
        proc = cli(*args, "evaluate", "--model", "absent.npz", cwd=work, env=env)
        assert proc.returncode == 1 and "Traceback (most recent call last)" in proc.stderr
        assert "FileNotFoundError: model file not found: absent.npz" in proc.stderr


def test_a_bug_is_not_hidden(monkeypatch, tmp_path):
    from portable_nn import cli as cli_module

    def broken(args):
        raise ImportError("an internal import went wrong")

    monkeypatch.setattr(cli_module, "cmd_plot", broken)
    with pytest.raises(ImportError, match="internal import"):
        cli_module.main(["plot", str(tmp_path / "h.json"), "-o", str(tmp_path / "a.png")])


# -- 6. nonsense is refused where the library meets it (the CLI relies on these) ---------------------------
@pytest.mark.parametrize("sizes", [{784, 30, 10}, {784: 30, 30: 10}, "784,30,10"])
def test_sizes_must_be_an_ordered_sequence(sizes):
    with pytest.raises(TypeError, match=r"sizes must be a list of at least 2 positive ints"):
        Network(sizes)


def test_eta_too_large_for_a_float_names_eta():
    from portable_nn._base.validation import check_eta

    with pytest.raises(ValueError, match=r"^eta must be a finite number > 0; got a number too large for a float"):
        check_eta(10**400)
    with pytest.raises(ValueError, match=r"^eta must be"):
        Network([4, 3, 2], seed=0).SGD((np.ones((5, 4)), np.zeros(5, dtype=np.int64)), 1, 2, 10**400, quiet=True)


@pytest.mark.parametrize("dtype", ["<U3", object, bool])
def test_strings_objects_and_booleans_are_not_trained_on(dtype):
    inputs = np.full((5, 4), "0.5").astype(dtype) if dtype is not bool else np.ones((5, 4), dtype=bool)
    net = Network([4, 3, 2], seed=0)
    with pytest.raises(TypeError, match=r"training_data: inputs must be real numbers"):
        net.SGD((inputs, np.zeros(5, dtype=np.int64)), 1, 2, 1.0, quiet=True)


def test_missing_jax_suggests_the_extra_not_a_submodule(monkeypatch):
    import importlib

    from portable_nn._backend.backends import BackendUnavailableError, resolve_backend

    real = importlib.import_module

    def no_jax(name, package=None):
        if name.split(".")[0] == "jax":
            raise ModuleNotFoundError(f"No module named {name!r}", name="jax")
        return real(name, package)

    monkeypatch.setattr(importlib, "import_module", no_jax)
    with pytest.raises(BackendUnavailableError) as info:
        resolve_backend("jax")
    assert 'pip install "portable-nn[jax]"' in str(info.value) and "jax.numpy" not in str(info.value).split("with:")[1]


def test_a_missing_backend_is_a_one_line_error(work, mnist_dir):
    proc = cli("train", "--data-dir", str(mnist_dir), *TINY, "--backend", "cupy", cwd=work)
    if proc.returncode == 0:
        pytest.skip("CuPy works on this machine")
    assert_error(proc, 1, "xp='cupy'")
    assert_not_trained(proc)


# -- 7. divergence is reported, non-finite weights are never saved -----------------------------------------
@pytest.mark.parametrize(("dtype", "eta"), [("float64", "1e6"), ("float32", "1e38")])
def test_divergence_is_reported(mnist_dir, work, dtype, eta):
    proc = cli(
        "train", "--data-dir", str(mnist_dir), *TINY, "--epochs", "2", "--dtype", dtype, "--eta", eta,
        "--save", "m.npz", cwd=work,
    )  # fmt: skip
    assert "Traceback" not in proc.stderr
    assert re.search(r"portable-nn train: warning: training diverged in epoch 1: .*lower eta.*\(--eta\)", proc.stderr)
    if proc.returncode == 0:
        net = load(work / "m.npz")
        assert all(np.all(np.isfinite(np.asarray(w))) for w in net.weights)
    else:
        assert_error(proc, 1, "--save", "NaN or infinite", "left as it was")


# -- 9. permissions never widen ---------------------------------------------------------------------------
def test_overwriting_keeps_the_file_modes(mnist_dir, work):
    model, history = old_model(work / "m.npz"), work / "h.csv"
    history.write_text("epoch\n1\n")
    model.chmod(0o600)
    history.chmod(0o640)
    proc = cli("train", "--data-dir", str(mnist_dir), *TINY, "--epochs", "1", "--save", "m.npz", "--history", "h.csv",
               cwd=work)  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert stat.S_IMODE(model.stat().st_mode) == 0o600 and stat.S_IMODE(history.stat().st_mode) == 0o640
    assert history.read_text().split("\n", 1)[1].startswith("epoch,seconds,correct")  # after the settings line
    no_temporaries(work)
