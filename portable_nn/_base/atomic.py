"""Atomic file writes, and checking an output location before hours of work go into it.

:func:`atomic_write` writes to a temporary file beside the target and renames
it over the target only when the ``with`` block succeeds, so the target is
either the old file or the complete new one, never a half-written mix.

Temporary names
    ``.{name}.{pid}-{8 hex digits}.part`` in the target's directory, where
    ``pid`` is the writing process.  When that would be longer than the
    directory's file-name limit (255 bytes on most filesystems), ``name`` is
    replaced by the first 32 hex digits of its SHA-256 (``.{hash}.{pid}-....part``).

Stale temporaries
    A process killed mid-write (``SIGKILL``, power loss) leaves its ``.part``
    file behind.  Every :func:`atomic_write` for a target first removes that
    target's temporaries that match the naming scheme above, whose process no
    longer exists, and that have not been modified for :data:`STALE_AFTER_S`
    seconds; see :func:`remove_stale_temporaries`.  Files of other targets,
    of live processes, recent ones and ones named differently are never touched;
    on systems without POSIX signals (Windows) nothing is removed.

Before training, :func:`check_writable` finds an unusable output path (a
directory, a missing parent, a read-only directory, a name too long) while it
is still cheap to fix; :func:`fallback_path` offers a place to save to when
the final write fails anyway.
"""

from __future__ import annotations

import errno
import hashlib
import os
import re
import secrets
import stat
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any

__all__ = [
    "STALE_AFTER_S",
    "OutputPathError",
    "atomic_write",
    "check_writable",
    "fallback_path",
    "remove_stale_temporaries",
    "temporary_name",
]

#: A temporary whose process is gone is removed only when it has not been modified for this long (seconds).
STALE_AFTER_S = 600.0
_DEFAULT_NAME_MAX = 255
_HASH_DIGITS = 32


class OutputPathError(OSError):
    """An output path cannot be written; the message names it and says what to do.

    ``path`` holds the offending path.  A subclass of :class:`OSError`, so
    ``except OSError`` catches it as well.
    """

    def __init__(self, message: str, path: str | os.PathLike[str]) -> None:
        super().__init__(message)
        self.path = Path(path)

    def __str__(self) -> str:
        return str(self.args[0])


def _name_max(directory: Path) -> int:
    try:
        return int(os.pathconf(directory, "PC_NAME_MAX"))
    except (AttributeError, ValueError, OSError):
        return _DEFAULT_NAME_MAX


def _temp_base(name: str, directory: Path) -> str:
    """The part of a temporary's name that identifies its target (the name, or its hash when too long)."""
    longest = f".{name}.{2**22}-{'0' * 8}.part"  # pids are at most 2**22 on Linux
    if len(os.fsencode(longest)) <= _name_max(directory):
        return name
    return hashlib.sha256(os.fsencode(name)).hexdigest()[:_HASH_DIGITS]


def temporary_name(path: str | os.PathLike[str]) -> Path:
    """A fresh temporary path for ``path``, following the naming scheme in the module docstring."""
    path = Path(path)
    return path.parent / f".{_temp_base(path.name, path.parent)}.{os.getpid()}-{secrets.token_hex(4)}.part"


def _pid_alive(pid: int) -> bool:
    """Whether process ``pid`` may exist (True whenever unsure)."""
    if os.name != "posix" or pid <= 0:
        return True  # os.kill on Windows would terminate the process; pid 0 / negative mean groups
    try:
        os.kill(pid, 0)  # signal 0: existence check only, nothing is sent
    except ProcessLookupError:
        return False
    except OSError:
        return True  # e.g. PermissionError: it exists but belongs to someone else
    return True


def remove_stale_temporaries(path: str | os.PathLike[str], *, older_than: float = STALE_AFTER_S) -> list[Path]:
    """Remove temporaries of ``path`` left by killed writers; return the ones removed.

    A file in ``path``'s directory is removed only when its name is
    ``.{base}.{pid}-{8 hex}.part`` with ``base`` this target's (see
    :func:`temporary_name`), it is a regular file, process ``pid`` no longer
    exists, and it was last modified more than ``older_than`` seconds ago.
    Errors (a vanished file, no permission) are ignored: cleaning up never
    stops a write.
    """
    path = Path(path)
    directory = path.parent
    pattern = re.compile(re.escape(f".{_temp_base(path.name, directory)}.") + r"(\d{1,10})-[0-9a-f]{8}\.part")
    removed: list[Path] = []
    now = time.time()
    try:
        entries = list(os.scandir(directory))
    except OSError:
        return removed
    for entry in entries:
        match = pattern.fullmatch(entry.name)
        if match is None:
            continue
        try:
            info = entry.stat(follow_symlinks=False)
            if not stat.S_ISREG(info.st_mode) or now - info.st_mtime <= older_than:
                continue
            if _pid_alive(int(match.group(1))):
                continue
            os.unlink(entry.path)
            removed.append(Path(entry.path))
        except OSError:
            continue
    return removed


def _create_temporary(path: Path, file_mode: int) -> tuple[int, Path]:
    for _ in range(100):
        tmp = temporary_name(path)
        try:
            return os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0), file_mode), tmp
        except FileExistsError:
            continue
    raise FileExistsError(errno.EEXIST, "could not create a unique temporary file", str(path))


def _fsync_directory(directory: Path) -> None:
    """Make a rename durable (POSIX); a no-op where directories cannot be opened."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


@contextmanager
def atomic_write(path: str | os.PathLike[str], mode: str = "wb", *, follow_links: bool = True) -> Iterator[IO[Any]]:
    """Open a temporary file next to ``path`` and rename it over ``path`` on success.

    ``mode`` is ``"wb"`` (binary) or ``"w"`` (text, UTF-8).  A symbolic link
    at ``path`` is followed by default: the file it points to is replaced, the
    link stays.  With ``follow_links=False`` the link itself is replaced by the
    new file and its target is never touched -- also when the link appears
    between a caller's check and the rename (files we own, such as a sweep's).

    * Success: the data is flushed and fsynced, the temporary gets the mode
      of the file it replaces (a ``0o600`` file stays ``0o600``) or, for a new
      file, the usual ``0o666`` less the umask, and is renamed over ``path``.
    * The ``with`` block raises (including ``KeyboardInterrupt``) or the
      write fails: the temporary is deleted and ``path`` is left as it was.
    * Before starting, stale temporaries of ``path`` from killed processes
      are removed (:func:`remove_stale_temporaries`).

    Raises :class:`ValueError` for a mode that is not a write mode, and the
    ``OSError`` of a failed create/write/rename (naming the path).
    """
    if not mode.startswith("w") or any(c not in "wbt+" for c in mode):
        raise ValueError(f"atomic_write: mode must be 'w' or 'wb'; got {mode!r}")
    given = Path(os.fspath(path))
    if follow_links:
        path = Path(os.path.realpath(given))
    else:  # resolve the directory only: the last component is what gets replaced, link or not
        path = Path(os.path.realpath(given.parent if str(given.parent) else ".")) / given.name
    remove_stale_temporaries(path)
    try:
        info = os.stat(path) if follow_links else os.lstat(path)
        existing_mode: int | None = stat.S_IMODE(info.st_mode) if stat.S_ISREG(info.st_mode) else None
    except OSError:
        existing_mode = None
    # A new file is created with the final mode (umask applied by the kernel);
    # over an existing file, 0o600 until the end, then that file's mode.
    fd, tmp = _create_temporary(path, 0o666 if existing_mode is None else 0o600)
    try:
        encoding = None if "b" in mode else "utf-8"
        with os.fdopen(fd, mode, encoding=encoding) as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        if existing_mode is not None:
            os.chmod(tmp, existing_mode)
        os.replace(tmp, path)
        _fsync_directory(path.parent)
    finally:
        tmp.unlink(missing_ok=True)


def check_writable(path: str | os.PathLike[str], kind: str = "output file") -> Path:
    """Check, before any work is done, that :func:`atomic_write` can write ``path``; return it resolved.

    ``kind`` names the file in messages (``"model file"``, ``"--history file"``).
    Checks, in order: the parent exists and is a directory; the file name
    fits the filesystem's name limit; ``path`` is not a directory and, if it
    exists, is a regular file (symlinks are followed); a probe file,
    named like :func:`atomic_write`'s temporaries, can be created and removed
    in the directory (finds read-only directories and missing permissions);
    an existing file in a sticky directory (``/tmp``) belongs to us.  Nothing
    is left behind.

    Raises
    ------
    OutputPathError
        (an ``OSError``) naming the path, what is wrong and what to do.
    """
    given = Path(path).expanduser()
    if os.fspath(path) == "":
        raise OutputPathError(f"{kind}: the path is empty; give a file name", given)
    target = Path(os.path.realpath(given))
    shown = str(given) if given == target else f"{given} (-> {target})"
    parent = target.parent
    if not parent.exists():
        raise OutputPathError(f"{kind} {shown}: directory {parent} does not exist; create it first", given)
    if not parent.is_dir():
        raise OutputPathError(f"{kind} {shown}: {parent} is not a directory", given)
    name_max = _name_max(parent)
    if len(os.fsencode(target.name)) > name_max:
        raise OutputPathError(
            f"{kind} {shown}: the file name is {len(os.fsencode(target.name))} bytes, longer than this "
            f"filesystem's limit of {name_max}; choose a shorter name",
            given,
        )
    try:
        info: os.stat_result | None = os.stat(target)
    except FileNotFoundError:
        info = None
    except OSError as exc:
        raise OutputPathError(f"{kind} {shown}: cannot check it ({exc.strerror}); choose another path", given) from exc
    if info is not None and stat.S_ISDIR(info.st_mode):
        raise OutputPathError(f"{kind} {shown} is a directory; give the path of a file (inside it or elsewhere)", given)
    if info is not None and not stat.S_ISREG(info.st_mode):
        raise OutputPathError(f"{kind} {shown} exists and is not a regular file; choose another name", given)
    try:
        fd, probe = _create_temporary(target, 0o600)
    except OSError as exc:
        reason = exc.strerror or str(exc)
        raise OutputPathError(
            f"{kind} {shown}: cannot create files in {parent} ({reason}); choose a writable location", given
        ) from exc
    os.close(fd)
    try:
        probe.unlink()
    except OSError as exc:
        raise OutputPathError(
            f"{kind} {shown}: cannot remove files in {parent} ({exc.strerror}); choose another location", given
        ) from exc
    if info is not None and os.name == "posix":
        parent_info = os.stat(parent)
        euid = os.geteuid()
        if parent_info.st_mode & stat.S_ISVTX and euid not in (0, info.st_uid, parent_info.st_uid):
            raise OutputPathError(
                f"{kind} {shown} belongs to another user in the sticky directory {parent}, so it cannot be "
                "replaced; choose another name",
                given,
            )
    return target


def _cache_dir() -> Path:
    if os.name == "nt" and os.environ.get("LOCALAPPDATA"):
        return Path(os.environ["LOCALAPPDATA"]) / "portable_nn" / "rescued"
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "portable_nn" / "rescued"


def fallback_path(path: str | os.PathLike[str], kind: str = "output file") -> Path:
    """A writable place to save what was meant for ``path`` after writing ``path`` failed.

    Tries, in order, the current directory, the user cache
    (``$XDG_CACHE_HOME/portable_nn/rescued`` or ``~/.cache/portable_nn/rescued``,
    created if needed) and the system temporary directory, skipping
    ``path``'s own directory; returns the first where :func:`check_writable`
    passes.  The file name keeps ``path``'s suffix (loaders dispatch on it),
    is shortened to 100 characters of stem plus a time stamp
    (``network-rescued-20250101-120000.npz``) and never names an existing file.

    Raises :class:`OutputPathError` when no candidate is writable.
    """
    path = Path(path).expanduser()
    suffix = path.suffix if len(path.suffix) <= 16 else ""
    stem = (path.name[: -len(suffix)] if suffix else path.name)[:100] or "output"
    stamp = time.strftime("%Y%m%d-%H%M%S")
    original_dir = Path(os.path.realpath(path.parent if str(path.parent) else "."))
    candidates = [Path.cwd(), _cache_dir(), Path(tempfile.gettempdir())]
    problems = []
    for directory in candidates:
        try:
            resolved = Path(os.path.realpath(directory))
            if resolved == original_dir:
                continue
            if directory == candidates[1]:
                directory.mkdir(parents=True, exist_ok=True)
            name, n = f"{stem}-rescued-{stamp}{suffix}", 0
            while (directory / name).exists() and n < 999:
                n += 1
                name = f"{stem}-rescued-{stamp}-{n}{suffix}"
            return check_writable(directory / name, kind)
        except OSError as exc:
            problems.append(f"  {directory}: {exc}")
    raise OutputPathError(f"no writable place to save the {kind} meant for {path}:\n" + "\n".join(problems), path)
