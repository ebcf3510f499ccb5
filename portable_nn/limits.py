"""The package's size limits, in one place.

Every reader that takes bytes from outside -- IDX files, downloads, history
files, saved models -- refuses input larger than a limit *before* it
allocates memory for it, so a corrupt header or a hostile file fails with a
clear error instead of exhausting memory.  Each limit has a default, an
environment variable that overrides it, and an argument of the function that
uses it that overrides both:

==========================  ================================  =================
limit                       environment variable              default
==========================  ================================  =================
:data:`IDX_BYTES`           ``PORTABLE_NN_MAX_IDX_BYTES``     2 GiB (2**31)
:data:`DOWNLOAD_BYTES`      ``PORTABLE_NN_MAX_DOWNLOAD_BYTES``  256 MiB (2**28)
:data:`HISTORY_BYTES`       ``PORTABLE_NN_MAX_HISTORY_BYTES``   64 MiB (2**26)
:data:`MODEL_BYTES`         ``PORTABLE_NN_MAX_MODEL_BYTES``   2 GiB (2**31)
==========================  ================================  =================

The environment variable holds a positive integer number of bytes, optionally
with a binary suffix: ``PORTABLE_NN_MAX_IDX_BYTES=4G`` (also ``K``, ``M``,
``KiB``, ``MiB``, ``GiB``; underscores are allowed, ``1_000_000``).  A value
that is not such a number raises :class:`ValueError` naming the variable, so a
typo never silently falls back to the default.  The environment is read on
every call, not at import.

Example::

    from portable_nn import limits
    limits.IDX_BYTES.value()            # the limit in force now
    limits.IDX_BYTES.value(2**33)       # an explicit override wins
"""

from __future__ import annotations

import errno
import os
import re
import stat
from dataclasses import dataclass

__all__ = ["DOWNLOAD_BYTES", "HISTORY_BYTES", "IDX_BYTES", "MODEL_BYTES", "Limit", "parse_size", "stat_regular_file"]

_SUFFIXES = {"": 1, "K": 2**10, "M": 2**20, "G": 2**30, "T": 2**40}
_SIZE = re.compile(r"\s*([0-9][0-9_]*)\s*(?:([KMGT])(?:I?B)?|B)?\s*", re.IGNORECASE)


def parse_size(text: str, what: str = "size") -> int:
    """Parse ``"123"``, ``"64M"``, ``"2GiB"`` or ``"1_000"`` into a positive number of bytes.

    Raises :class:`ValueError` naming ``what`` when ``text`` is not such a number.
    """
    match = _SIZE.fullmatch(text)
    if match is None or match.group(1).endswith("_") or "__" in match.group(1):
        raise ValueError(f"{what}: expected a positive number of bytes such as 1048576, 64M or 2GiB; got {text!r}")
    value = int(match.group(1).replace("_", "")) * _SUFFIXES[(match.group(2) or "").upper()]
    if value <= 0:
        raise ValueError(f"{what}: expected a positive number of bytes; got {text!r}")
    return value


@dataclass(frozen=True)
class Limit:
    """A size limit in bytes: ``default``, overridden by ``$env``, overridden by an argument."""

    name: str
    env: str
    default: int
    doc: str

    def value(self, override: int | None = None) -> int:
        """The limit in force: ``override`` when given, else ``$env`` when set (and not empty), else the default.

        Raises :class:`ValueError` naming the argument or the variable when it is
        not a positive integer.
        """
        if override is not None:
            if isinstance(override, bool) or not isinstance(override, int) or override <= 0:
                raise ValueError(f"{self.name}: expected a positive integer number of bytes; got {override!r}")
            return override
        text = os.environ.get(self.env, "")
        if text.strip():
            return parse_size(text, f"${self.env}")
        return self.default

    def hint(self) -> str:
        """How to raise the limit, for error messages."""
        return f"set ${self.env} (e.g. {self.env}=4G) or pass a larger limit to raise it"


#: Largest IDX data section :func:`portable_nn.idx.read_idx` accepts (product of the header's dimensions).
IDX_BYTES = Limit(
    "max_idx_bytes", "PORTABLE_NN_MAX_IDX_BYTES", 2**31, "largest IDX data section (product of the dimensions)"
)
#: Most bytes :func:`portable_nn.download.download_file` accepts for a file without a pinned size.
DOWNLOAD_BYTES = Limit(
    "max_download_bytes", "PORTABLE_NN_MAX_DOWNLOAD_BYTES", 2**28, "largest download of a file without a pinned size"
)
#: Largest history file (JSON or CSV) :func:`portable_nn.history.read_history` reads.
HISTORY_BYTES = Limit("max_history_bytes", "PORTABLE_NN_MAX_HISTORY_BYTES", 2**26, "largest history file")
#: Largest saved model file the loaders read (for :mod:`portable_nn.serialization`).
MODEL_BYTES = Limit("max_model_bytes", "PORTABLE_NN_MAX_MODEL_BYTES", 2**31, "largest saved model file")

ALL = (IDX_BYTES, DOWNLOAD_BYTES, HISTORY_BYTES, MODEL_BYTES)


def stat_regular_file(path: str | os.PathLike[str], kind: str, error: type[Exception]) -> os.stat_result:
    """``os.stat(path)`` of a regular file that a reader is about to read; checked before it is opened.

    A directory raises :class:`IsADirectoryError` (``"is a directory, expected
    KIND"``); a device, pipe or socket raises ``error`` naming the path, so a
    reader never blocks on a FIFO.  A missing or unreadable path raises what
    ``os.stat`` raises, naming it.  ``kind`` reads like ``"an IDX file"``.
    """
    info = os.stat(path)
    if stat.S_ISDIR(info.st_mode):
        raise IsADirectoryError(errno.EISDIR, f"is a directory, expected {kind}", str(path))
    if not stat.S_ISREG(info.st_mode):
        raise error(f"{path}: not a regular file (a device, pipe or socket), expected {kind}")
    return info
