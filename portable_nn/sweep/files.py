"""A sweep's directory and its files: checked before any trial, never written through a link, read with limits.

``OUT/trials.jsonl``
    One JSON object per finished trial, appended by the driver only
    (:func:`append_record`).
``OUT/sweep.json``
    The sweep's settings, rewritten at every start.
``OUT/chosen.json``
    The chosen setting's test result, keyed by the setting and the data.
``OUT/.sweep.lock``
    Held (:mod:`filelock`, which works where ``fcntl`` is missing) while a
    sweep writes the directory; opened without truncating anything.

:func:`prepare_out` checks ``OUT`` before any trial: a directory (created if
missing) that this user owns and can write, in which none of these four names
is a symbolic link or anything but a regular file.  Files are then opened with
``O_NOFOLLOW`` where the system has it (the check above covers the others).
Every reader refuses a file over :data:`portable_nn._base.limits.HISTORY_BYTES`
(``$PORTABLE_NN_MAX_HISTORY_BYTES``, 64 MiB) before reading it, and never
blocks on a FIFO; :func:`read_results` checks each line against
:mod:`.schema`, keeps the valid records and names the others, so damage costs
at most the damaged trials (run again), never the sweep.
"""

from __future__ import annotations

import importlib
import json
import math
import os
import stat
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .._base import limits
from .._base.atomic import atomic_write
from .schema import SchemaError, check_record

__all__ = [
    "CHOSEN_FILE",
    "LOCK_FILE",
    "MANIFEST_FILE",
    "RESULTS_FILE",
    "Results",
    "SweepFileError",
    "append_record",
    "json_safe",
    "out_lock",
    "prepare_out",
    "read_json",
    "read_records",
    "read_results",
    "write_json",
]

#: Results file inside ``out``: one JSON object per finished trial.
RESULTS_FILE = "trials.jsonl"
#: The sweep's settings, rewritten at every start (for ``plot_sweep`` and for people).
MANIFEST_FILE = "sweep.json"
#: The chosen setting and its test accuracy.
CHOSEN_FILE = "chosen.json"
#: Held while a sweep writes ``out``.
LOCK_FILE = ".sweep.lock"
_OWN_FILES = (RESULTS_FILE, MANIFEST_FILE, CHOSEN_FILE, LOCK_FILE)
_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)
_LOCK_RETRY_S = 0.0


class SweepFileError(OSError):
    """A sweep directory or file cannot be used; the message names it and says what to do.

    An :class:`OSError` (like :class:`portable_nn._base.atomic.OutputPathError`),
    so the command line reports it in one line.
    """

    def __str__(self) -> str:
        return str(self.args[0])


def _refuse_link_or_special(path: Path) -> None:
    try:
        info = os.lstat(path)
    except FileNotFoundError:
        return
    if stat.S_ISLNK(info.st_mode):
        raise SweepFileError(
            f"{path} is a symbolic link; a sweep never reads or writes its files through links "
            "(remove it, or choose another --out)"
        )
    if not stat.S_ISREG(info.st_mode):
        raise SweepFileError(f"{path} exists and is not a regular file; remove it or choose another --out")


def prepare_out(out: str | os.PathLike[str]) -> Path:
    """Check (and create) a sweep's ``out`` directory before any work; return it resolved.

    Raises :class:`SweepFileError` when ``out`` is not a directory, belongs to
    another user, cannot be written, or holds one of the sweep's files as a
    symbolic link or a non-regular file.
    """
    given = Path(out).expanduser()
    directory = Path(os.path.realpath(given))
    shown = str(given) if given == directory else f"{given} (-> {directory})"
    if directory.exists() and not directory.is_dir():
        raise SweepFileError(f"--out {shown} exists and is not a directory")
    try:
        directory.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise SweepFileError(f"--out {shown}: cannot create it ({exc.strerror or exc})") from exc
    info = os.stat(directory)
    if hasattr(os, "geteuid") and info.st_uid != os.geteuid() and os.geteuid() != 0:
        raise SweepFileError(f"--out {shown} belongs to another user; give a directory of your own")
    if not os.access(directory, os.W_OK | os.X_OK):
        raise SweepFileError(f"--out {shown}: cannot write in it (permissions); choose another directory")
    for name in _OWN_FILES:
        _refuse_link_or_special(directory / name)
    return directory


@contextmanager
def out_lock(directory: Path) -> Iterator[None]:
    """Hold ``directory/.sweep.lock`` (exclusive, not waiting) for the ``with`` block.

    Raises :class:`SweepFileError` when another sweep holds it or the lock
    file is a link.
    """
    filelock = importlib.import_module("filelock")  # imported when a sweep runs

    path = directory / LOCK_FILE
    _refuse_link_or_special(path)
    lock = filelock.FileLock(str(path), timeout=_LOCK_RETRY_S)
    try:
        lock.acquire()
    except filelock.Timeout:
        raise SweepFileError(f"another sweep is writing {directory}; wait for it or choose another --out") from None
    except OSError as exc:
        raise SweepFileError(f"{path}: cannot take the sweep's lock ({exc.strerror or exc})") from exc
    try:
        yield
    finally:
        lock.release()


def _open_regular(path: Path, flags: int) -> int | None:
    """A descriptor of the regular file ``path`` (never a link, never blocking on a FIFO); None if missing."""
    if not _NOFOLLOW:
        _refuse_link_or_special(path)
    try:
        fd = os.open(path, flags | _NOFOLLOW | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_BINARY", 0), 0o666)
    except FileNotFoundError:
        return None
    except OSError as exc:
        if os.path.islink(path):
            _refuse_link_or_special(path)
        raise SweepFileError(f"{path}: cannot open it ({exc.strerror or exc})") from exc
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        raise SweepFileError(f"{path} is not a regular file (a directory, device, pipe or socket)")
    return fd


def read_bounded(path: Path) -> bytes | None:
    """The bytes of ``path`` (None if it does not exist), refusing files over the history-file size limit."""
    fd = _open_regular(path, os.O_RDONLY)
    if fd is None:
        return None
    limit = limits.HISTORY_BYTES.value()
    with os.fdopen(fd, "rb") as handle:
        size = os.fstat(handle.fileno()).st_size
        if size > limit:
            raise SweepFileError(
                f"{path}: {size} bytes, more than the limit of {limit} for sweep files ({limits.HISTORY_BYTES.hint()})"
            )
        data = handle.read(min(size, limit) + 1)
    if len(data) > limit:
        raise SweepFileError(f"{path}: more than the limit of {limit} bytes for sweep files")
    return data


class _DuplicateKeyError(ValueError):
    pass


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for key, value in pairs:
        if key in result:
            raise _DuplicateKeyError(f"key {key!r} appears twice")
        result[key] = value
    return result


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a number a sweep writes")


def parse_json(data: bytes) -> Any:
    """JSON from ``data``: UTF-8, no NaN or infinities, no repeated keys; :class:`SchemaError` otherwise."""
    try:
        return json.loads(data.decode("utf-8"), object_pairs_hook=_no_duplicates, parse_constant=_no_constant)
    except UnicodeDecodeError as exc:
        raise SchemaError(f"not UTF-8 (byte 0x{data[exc.start]:02x} at offset {exc.start})") from None
    except RecursionError:
        raise SchemaError("JSON nested too deeply") from None
    except ValueError as exc:  # JSONDecodeError, a repeated key, NaN, an integer with too many digits
        raise SchemaError(f"not valid JSON ({str(exc)[:80]})") from None


@dataclass
class Results:
    """The valid records of a results file, and one line per line that was not (``"line 3: ..."``)."""

    records: list[dict[str, Any]] = field(default_factory=list)
    bad: list[str] = field(default_factory=list)

    def summary(self, path: Path) -> str | None:
        """One line about the skipped lines, or None when there were none."""
        if not self.bad:
            return None
        return f"skipped {len(self.bad)} damaged line(s) of {path} (first: {self.bad[0]}); those trials run again"


def read_results(path: str | os.PathLike[str]) -> Results:
    """Every valid record in a results file, and what was wrong with the other lines; empty if there is no file.

    Raises :class:`SweepFileError` only for the file as a whole: a link, not
    a regular file, over the size limit.
    """
    path = Path(path)
    data = read_bounded(path)
    results = Results()
    for number, line in enumerate((data or b"").split(b"\n"), 1):
        if not line.strip():
            continue
        try:
            results.records.append(check_record(parse_json(line)))
        except SchemaError as exc:
            results.bad.append(f"line {number}: {exc}")
    return results


def read_records(path: str | os.PathLike[str]) -> list[dict[str, Any]]:
    """Every valid record in a results file (torn, malformed, ill-typed lines skipped); [] if there is none."""
    return read_results(path).records


def read_json(path: Path, check: Callable[[Any], dict[str, Any]]) -> tuple[dict[str, Any] | None, str | None]:
    """``(value, None)`` for a valid JSON file, ``(None, why)`` for a missing or invalid one.

    Raises :class:`SweepFileError` for a link, a non-regular file or one over the size limit.
    """
    data = read_bounded(path)
    if data is None:
        return None, f"{path} does not exist"
    try:
        return check(parse_json(data)), None
    except SchemaError as exc:
        return None, f"{path}: {exc}"


def json_safe(value: Any) -> Any:
    """``value`` with NumPy scalars as Python numbers and non-finite floats as ``None`` (strict JSON)."""
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(v) for v in value]
    return value


def write_json(path: Path, value: Any) -> None:
    """Replace ``path`` atomically with ``value`` as indented strict JSON; a link at ``path`` is refused."""
    _refuse_link_or_special(path)
    with atomic_write(path, "w", follow_links=False) as handle:  # a link made after the check is replaced, not followed
        json.dump(json_safe(value), handle, indent=2, allow_nan=False)


def append_record(path: str | os.PathLike[str], record: Any) -> None:
    """Append ``record`` as one JSON line to ``path``, atomically with respect to readers and crashes.

    The complete line (``json.dumps(record) + "\\n"``) is written with a
    single ``os.write`` on a descriptor opened with ``O_APPEND`` (and
    ``O_NOFOLLOW``: a link is refused), then fsynced.  Appending is O(1) per
    trial, where rewriting the file through
    :func:`portable_nn._base.atomic.atomic_write` would be O(trials).  A reader
    never sees a line interleaved with another (only the driver writes, and
    O_APPEND puts each write at the end); a crash during the write can at
    worst leave a last line without its newline, which :func:`read_results`
    skips and the next append starts on a fresh line.
    """
    path = Path(path)
    line = (json.dumps(json_safe(record), sort_keys=True, allow_nan=False) + "\n").encode()
    fd = _open_regular(path, os.O_RDWR | os.O_APPEND | os.O_CREAT)
    assert fd is not None  # O_CREAT
    try:
        size = os.fstat(fd).st_size
        if size:
            os.lseek(fd, size - 1, os.SEEK_SET)
            if os.read(fd, 1) != b"\n":  # a torn last line from a crash: start afresh
                line = b"\n" + line
        written = os.write(fd, line)
        if written != len(line):
            raise OSError(f"short write to {path}: {written} of {len(line)} bytes")
        os.fsync(fd)
    finally:
        os.close(fd)
