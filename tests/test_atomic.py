"""Atomic writes: modes kept, long names, stale temporaries, and checking output paths up front."""

from __future__ import annotations

import json
import os
import re
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest

from portable_nn._base import atomic
from portable_nn._base.atomic import (
    STALE_AFTER_S,
    OutputPathError,
    atomic_write,
    check_writable,
    fallback_path,
    remove_stale_temporaries,
    temporary_name,
)

NAME_MAX = 255


def _names(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir())


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.fixture
def unwritable_dir(tmp_path):
    """A directory in which this process cannot create files (a 0o500 directory, or /sys for root)."""
    directory = tmp_path / "readonly"
    directory.mkdir()
    directory.chmod(0o500)
    probe = directory / "probe"
    try:
        probe.touch()
    except PermissionError:
        yield directory
    else:  # root ignores permission bits; /sys refuses even root
        probe.unlink()
        assert Path("/sys").is_dir(), "need a directory this process cannot write to"
        yield Path("/sys")
    finally:
        directory.chmod(0o700)


def _dead_pid() -> int:
    """The pid of a process that has exited (and was reaped)."""
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


@pytest.mark.parametrize("old_mode", [0o600, 0o640, 0o755])
def test_overwrite_keeps_the_existing_file_mode(tmp_path, old_mode):
    path = tmp_path / "model.npz"
    path.write_bytes(b"old")
    path.chmod(old_mode)
    with atomic_write(path) as handle:
        handle.write(b"new")
    assert path.read_bytes() == b"new"
    assert _mode(path) == old_mode


def test_new_file_gets_the_umask_mode_and_a_private_temporary_while_replacing(tmp_path):
    old_umask = os.umask(0o027)
    try:
        with atomic_write(tmp_path / "new.json", "w") as handle:
            handle.write("{}")
    finally:
        os.umask(old_umask)
    assert _mode(tmp_path / "new.json") == 0o640
    target = tmp_path / "secret.npz"
    target.write_bytes(b"old")
    target.chmod(0o644)
    with atomic_write(target) as handle:
        (tmp,) = [p for p in tmp_path.iterdir() if p.name.endswith(".part")]
        assert _mode(tmp) == 0o600  # nobody else reads a half-written replacement
        handle.write(b"new")
    assert _mode(target) == 0o644


def test_text_mode_writes_utf8_and_bad_modes_are_refused(tmp_path):
    with atomic_write(tmp_path / "h.json", "w") as handle:
        handle.write("ε→∞")
    assert (tmp_path / "h.json").read_bytes() == "ε→∞".encode()
    for mode in ("r", "ab", "rb+", "wx"):
        with pytest.raises(ValueError, match=r"mode must be 'w' or 'wb'"):
            with atomic_write(tmp_path / "h.json", mode):
                pass
    assert _names(tmp_path) == ["h.json"]


@pytest.mark.parametrize("exc_type", [RuntimeError, KeyboardInterrupt])
def test_failure_keeps_the_old_file_and_removes_the_temporary(tmp_path, exc_type):
    path = tmp_path / "model.npz"
    path.write_bytes(b"old")
    with pytest.raises(exc_type):
        with atomic_write(path) as handle:
            handle.write(b"half")
            raise exc_type("stop")
    assert path.read_bytes() == b"old"
    assert _names(tmp_path) == ["model.npz"]


def test_temporary_names_carry_the_pid_and_fit_the_name_limit(tmp_path):
    short = temporary_name(tmp_path / "net.npz")
    assert re.fullmatch(rf"\.net\.npz\.{os.getpid()}-[0-9a-f]{{8}}\.part", short.name)
    assert short.parent == tmp_path
    long_name = "n" * 240 + ".npz"  # fits the limit, but ".{name}.{pid}-xxxxxxxx.part" would not
    hashed = temporary_name(tmp_path / long_name)
    assert len(os.fsencode(hashed.name)) <= NAME_MAX
    assert re.fullmatch(rf"\.[0-9a-f]{{32}}\.{os.getpid()}-[0-9a-f]{{8}}\.part", hashed.name)


def test_long_target_name_is_written(tmp_path):
    path = tmp_path / ("n" * 240 + ".npz")
    with atomic_write(path) as handle:
        handle.write(b"data")
    assert path.read_bytes() == b"data"
    assert _names(tmp_path) == [path.name]


def _make_temp(directory: Path, name: str, age: float) -> Path:
    path = directory / name
    path.write_bytes(b"partial")
    then = time.time() - age
    os.utime(path, (then, then))
    return path


def test_stale_temporaries_of_dead_processes_are_removed_and_nothing_else(tmp_path):
    dead = _dead_pid()
    old = STALE_AFTER_S + 60
    stale = _make_temp(tmp_path, f".model.npz.{dead}-0badc0de.part", old)
    kept = [
        _make_temp(tmp_path, f".model.npz.{dead}-0badc0df.part", 5),  # recent: its writer may be elsewhere
        _make_temp(tmp_path, f".model.npz.{os.getpid()}-0badc0de.part", old),  # a live process (this one)
        _make_temp(tmp_path, f".other.npz.{dead}-0badc0de.part", old),  # another target
        _make_temp(tmp_path, ".model.npz.abc123xy.part", old),  # an old-style name without a pid
        _make_temp(tmp_path, f"model.npz.{dead}-0badc0de.part", old),  # not hidden: not ours
    ]
    with atomic_write(tmp_path / "model.npz") as handle:
        handle.write(b"new")
    assert not stale.exists()
    assert all(p.exists() for p in kept)
    assert (tmp_path / "model.npz").read_bytes() == b"new"


def test_stale_hashed_temporaries_are_found_too(tmp_path):
    target = tmp_path / ("n" * 240 + ".npz")
    base = temporary_name(target).name.split(".")[1]
    stale = _make_temp(tmp_path, f".{base}.{_dead_pid()}-12345678.part", STALE_AFTER_S + 60)
    assert remove_stale_temporaries(target) == [stale]
    assert not stale.exists()


def test_symlinked_target_is_replaced_through_the_link(tmp_path):
    real = tmp_path / "real.npz"
    real.write_bytes(b"old")
    link = tmp_path / "link.npz"
    link.symlink_to(real)
    with atomic_write(link) as handle:
        handle.write(b"new")
    assert link.is_symlink() and real.read_bytes() == b"new"


def test_check_writable_accepts_new_and_existing_files_and_leaves_nothing(tmp_path):
    assert check_writable(tmp_path / "net.npz") == (tmp_path / "net.npz").resolve()
    (tmp_path / "old.npz").write_bytes(b"x")
    assert check_writable(tmp_path / "old.npz", "model file") == (tmp_path / "old.npz").resolve()
    assert _names(tmp_path) == ["old.npz"]


def test_check_writable_refuses_a_directory(tmp_path):
    with pytest.raises(OutputPathError, match=r"^model file .* is a directory; give the path of a file") as info:
        check_writable(tmp_path, "model file")
    assert isinstance(info.value, OSError) and info.value.path == tmp_path


def test_check_writable_refuses_a_missing_or_non_directory_parent(tmp_path):
    with pytest.raises(OutputPathError, match=r"directory .*nope does not exist; create it first"):
        check_writable(tmp_path / "nope" / "net.npz")
    (tmp_path / "file").write_bytes(b"")
    with pytest.raises(OSError, match=r"file is not a directory"):
        check_writable(tmp_path / "file" / "net.npz")


def test_check_writable_refuses_a_name_over_the_limit(tmp_path):
    with pytest.raises(OutputPathError, match=r"the file name is 300 bytes, longer than this filesystem's limit of"):
        check_writable(tmp_path / ("n" * 296 + ".npz"), "--history file")


def test_check_writable_refuses_an_unwritable_directory(unwritable_dir):
    with pytest.raises(OutputPathError, match=r"cannot create files in .* choose a writable location"):
        check_writable(unwritable_dir / "net.npz")


def test_check_writable_refuses_special_files(tmp_path):
    with pytest.raises(OutputPathError, match=r"/dev/null exists and is not a regular file"):
        check_writable("/dev/null")
    with pytest.raises(OutputPathError, match=r"path is empty"):
        check_writable("")


def test_fallback_path_prefers_the_current_directory(tmp_path, monkeypatch, unwritable_dir):
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    monkeypatch.chdir(cwd)
    path = fallback_path(unwritable_dir / "network.npz")
    assert path.parent == cwd.resolve()
    assert re.fullmatch(r"network-rescued-\d{8}-\d{6}\.npz", path.name)
    assert not path.exists()
    path.write_bytes(b"taken")
    assert fallback_path(unwritable_dir / "network.npz") != path  # never an existing file


def test_fallback_path_uses_the_cache_when_the_current_directory_failed(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    path = fallback_path("history.json", "--history file")
    assert path.parent == (tmp_path / "cache" / "portable_nn" / "rescued").resolve()
    assert path.suffix == ".json"


def test_fallback_path_shortens_long_names(tmp_path, monkeypatch, unwritable_dir):
    monkeypatch.chdir(tmp_path)
    path = fallback_path(unwritable_dir / ("n" * 250 + ".npz"))
    assert len(path.name) < 140 and path.suffix == ".npz"
    with atomic_write(path) as handle:
        handle.write(b"saved")
    assert path.read_bytes() == b"saved"


def test_fallback_path_raises_when_nothing_is_writable(tmp_path, monkeypatch, unwritable_dir):
    monkeypatch.chdir(unwritable_dir)
    monkeypatch.setenv("XDG_CACHE_HOME", str(unwritable_dir / "cache"))
    monkeypatch.setattr(atomic.tempfile, "gettempdir", lambda: str(unwritable_dir))
    with pytest.raises(OutputPathError, match=r"no writable place to save the output file meant for .*net\.npz"):
        fallback_path(tmp_path / "net.npz")


def test_without_following_links_the_link_is_replaced_and_its_target_untouched(tmp_path):
    target = tmp_path / "precious.txt"
    target.write_text("keep me")
    link = tmp_path / "out.json"
    link.symlink_to(target)
    with atomic_write(link, "w", follow_links=False) as handle:
        handle.write("new")
    assert target.read_text() == "keep me"
    assert not link.is_symlink() and link.read_text() == "new"


def test_a_link_made_after_the_sweep_files_check_is_still_not_written_through(tmp_path, monkeypatch):
    """The race of issue 17 class 1: a link that appears between the check and the write."""
    from portable_nn.sweep import files

    target = tmp_path / "precious.txt"
    target.write_text("keep me")
    chosen = tmp_path / "chosen.json"
    chosen.symlink_to(target)
    monkeypatch.setattr(files, "_refuse_link_or_special", lambda path: None)  # the check ran before the link
    files.write_json(chosen, {"a": 1})
    assert target.read_text() == "keep me"
    assert json.loads(chosen.read_text()) == {"a": 1}
