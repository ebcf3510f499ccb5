"""What every ``portable-nn`` command shares: its error types, one-line messages, and printing that cannot fail.

Printing never aborts a command: :func:`say` (stdout) and :func:`warn`
(stderr) treat a stream that went away (a closed pipe, ``| head -n 1``, a
full device, a hung-up terminal, a stream closed with ``2>&-``) as "stop
printing to it": the error is swallowed, the stream's descriptor is pointed at
the null device so the interpreter's last flush cannot fail either, and the
command goes on to write its files and exit with its own status.
"""

from __future__ import annotations

import contextlib
import errno
import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import TextIO

from .._backend.backends import BackendUnavailableError
from .._base.atomic import OutputPathError
from .._base.errors import OptionalDependencyError
from .._data.download import DownloadError
from .._data.idx import IDXFormatError
from .._data.mnist import DATA_ENV, resolve_data_dir
from .._io.serialization import ModelFileError
from ..history import HistoryFileError

#: Exceptions that mean "the user's input or environment is wrong", not "the program is wrong":
#: each ends a command with one line on stderr and exit status 1.
EXPECTED_ERRORS: tuple[type[BaseException], ...] = (
    BackendUnavailableError,
    OptionalDependencyError,
    DownloadError,
    IDXFormatError,
    ModelFileError,
    HistoryFileError,
    OSError,
    MemoryError,
)
#: Set to 1 to see tracebacks of expected errors too (same as ``--debug``).
DEBUG_ENV = "PORTABLE_NN_DEBUG"


class CommandError(Exception):
    """An expected failure found by the command itself; ``status`` 2 for usage errors, 1 otherwise."""

    def __init__(self, message: str, status: int = 1) -> None:
        super().__init__(message)
        self.status = status


# -- printing that cannot fail -------------------------------------------------------------------------
_BROKEN: set[str] = set()


def _silence(name: str, stream: TextIO | None) -> None:
    """Stop printing to ``stream`` (``"stdout"`` or ``"stderr"``): later writes, and the final flush, go nowhere."""
    _BROKEN.add(name)
    try:
        if stream is not None:
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, stream.fileno())
            os.close(devnull)
    except (OSError, ValueError):
        pass


def _write(name: str, text: str) -> None:
    stream: TextIO | None = getattr(sys, name)
    if name in _BROKEN or stream is None:
        return
    try:
        stream.write(text + "\n")
        stream.flush()
    except (OSError, ValueError):  # EPIPE, ENOSPC, EIO (hung-up terminal), or a closed file
        _silence(name, stream)


def say(text: str) -> None:
    """Print a line on stdout, flushed; a stdout that went away silences it instead of raising."""
    _write("stdout", text)


def warn(text: str) -> None:
    """Print a line on stderr; a stderr that went away (or was closed) silences it instead of raising."""
    _write("stderr", text)


def stderr_usable() -> bool:
    """Whether stderr is still there to print to (for progress bars)."""
    return "stderr" not in _BROKEN and sys.stderr is not None


def ensure_standard_streams() -> None:
    """Give a closed stdin/stdout/stderr (``2>&-``) the null device, before any file is opened.

    A closed descriptor 1 or 2 would otherwise be reused by the next file the
    command opens (a model being saved), and a message meant for the terminal
    would be written into it.
    """
    for fd, name in ((0, "stdin"), (1, "stdout"), (2, "stderr")):
        try:
            os.fstat(fd)
        except OSError:
            devnull = os.open(os.devnull, os.O_RDWR)
            if devnull != fd:
                os.dup2(devnull, fd)
                os.close(devnull)
            if name != "stdin":
                _BROKEN.add(name)
    for name in ("stdout", "stderr"):
        if getattr(sys, name) is None:  # Python found the descriptor closed at start-up
            setattr(sys, name, open(os.devnull, "w", encoding="utf-8"))
            _BROKEN.add(name)


# -- one line per expected error ------------------------------------------------------------------------
#: What to do about an operating-system error, by errno.
_ERRNO_HINTS = {
    errno.EACCES: "check its permissions or choose another path",
    errno.EPERM: "check its permissions or choose another path",
    errno.ENOENT: "check the path",
    errno.ENOTDIR: "check the path",
    errno.EISDIR: "give the path of a file, not a directory",
    errno.ENOSPC: "free some disk space or choose another location",
    errno.EDQUOT: "free some disk space or choose another location",
    errno.EROFS: "the filesystem is read-only; choose a writable location",
    errno.EIO: "the file cannot be read (damaged disk or special file); choose another",
}


def describe(exc: BaseException) -> str:
    """One line for an expected error: what went wrong, naming the file, and what to do."""
    if isinstance(exc, MemoryError):
        return "out of memory (a network or data set too large for this machine?)"
    text = str(exc)
    if isinstance(exc, OSError) and not isinstance(exc, OutputPathError):
        if exc.filename is not None and not text.startswith(str(exc.filename)):
            text = f"{exc.filename}: {exc.strerror or exc}"
        hint = _ERRNO_HINTS.get(exc.errno or 0)
        if hint is not None and hint not in text:
            text = f"{text} ({hint})"
    return " ".join(line.strip() for line in text.splitlines() if line.strip())


@contextlib.contextmanager
def data_directory(data_dir: Path | None, *, download: bool, create: bool) -> Iterator[Path]:
    """The MNIST directory a command reads, with the rule for creating it; yields the resolved path.

    A missing ``--data-dir`` (or ``$PORTABLE_NN_DATA``) is never created
    unless ``create`` (``--download``) says so: it is a :class:`CommandError`
    naming the path.  The default cache is created for a download.  When
    loading fails (offline, say), every directory created for it that is still
    empty is removed again, so nothing is left behind.  A path naming a file is
    left to the loader, which refuses it before anything is created.
    """
    directory = resolve_data_dir(data_dir)
    source = "--data-dir" if data_dir is not None else f"${DATA_ENV}" if os.environ.get(DATA_ENV) else None
    if directory.exists() or not download:  # a file there: the loader's NotADirectoryError says so
        yield directory
        return
    if source is not None and not create:
        raise CommandError(
            f"{source} {directory} does not exist; point it at a directory of MNIST files, "
            "or add --download to create it and download MNIST into it",
            2,
        )
    created = [directory, *(p for p in directory.parents if not p.exists())]
    try:
        yield directory
    except BaseException:
        for path in created:  # deepest first
            with contextlib.suppress(OSError):
                path.rmdir()
        raise
