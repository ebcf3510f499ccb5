"""Reading IDX files (the format MNIST ships in), gzipped or not, with checks.

An IDX file is a 4-byte magic number -- two zero bytes, a type code (``0x08``
for unsigned bytes) and the number of dimensions -- followed by one big-endian
``uint32`` per dimension and then the data.  :func:`read_idx` checks all of
that and that the data length matches the header, so a truncated, corrupt or
mislabelled file fails with an error that names it.

Memory is bounded by the header, never by what the file claims or expands to:
the header is read first, the size it declares is checked against
:data:`portable_nn._base.limits.IDX_BYTES` (``$PORTABLE_NN_MAX_IDX_BYTES``), against
the file size (raw files) or the most a gzip file of that size can expand to
(deflate cannot expand more than 1032:1), and only then is the array allocated.
Gzip data is decompressed in bounded chunks straight into that array, so a
gzip bomb stops one byte past the declared size.
"""

from __future__ import annotations

import gzip
import io
import math
import os
import struct
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Protocol

import numpy as np

from .._base import limits

_GZIP_MAGIC = b"\x1f\x8b"
_UBYTE = 0x08
_IN_CHUNK = 1 << 16  # compressed bytes read at a time
_OUT_CHUNK = 1 << 18  # most decompressed bytes produced at a time
#: Deflate's largest possible expansion (258-byte matches coded in 2 bits) and slack for gzip headers.
_MAX_RATIO = 1032
_RATIO_SLACK = 1 << 12


class IDXFormatError(ValueError):
    """An IDX file is truncated, corrupt, too large or not the array that was expected.

    The message starts with the file's path.
    """


class _Stream(Protocol):
    def read(self, n: int) -> bytes: ...

    def readinto(self, view: memoryview) -> int: ...


class _RawStream:
    def __init__(self, handle: io.BufferedReader) -> None:
        self._handle = handle

    def read(self, n: int) -> bytes:
        parts, got = [], 0
        while got < n:
            chunk = self._handle.read(n - got)
            if not chunk:
                break
            parts.append(chunk)
            got += len(chunk)
        return b"".join(parts)

    def readinto(self, view: memoryview) -> int:
        got = 0
        while got < len(view):
            n = self._handle.readinto(view[got:])
            if not n:
                break
            got += n
        return got


class _GzipStream:
    """Decompress one or more concatenated gzip members, never more than asked for at a time."""

    def __init__(self, handle: io.BufferedReader, path: Path) -> None:
        self._handle = handle
        self._path = path
        self._inflate = zlib.decompressobj(wbits=16 + zlib.MAX_WBITS)
        self._pending = b""  # compressed input not yet given to the decompressor
        self._finished = False

    def _corrupt(self, detail: str) -> IDXFormatError:
        return IDXFormatError(f"{self._path}: corrupt or truncated gzip data ({detail})")

    def _next_member(self) -> bool:
        """After a member ends: start the next one (True) or confirm the end of the file (False)."""
        while len(self._pending) < 2:
            more = self._handle.read(_IN_CHUNK)
            if not more:
                break
            self._pending += more
        if not self._pending:
            return False
        if self._pending[:2] != _GZIP_MAGIC:
            raise IDXFormatError(f"{self._path}: unexpected bytes after the end of the gzip data")
        self._inflate = zlib.decompressobj(wbits=16 + zlib.MAX_WBITS)
        return True

    def _chunk(self, max_length: int) -> bytes:
        """Up to ``max_length`` decompressed bytes; ``b""`` only at the end of the data."""
        while not self._finished:
            if self._inflate.eof and not self._next_member():
                self._finished = True
                break
            try:
                out = self._inflate.decompress(self._pending, max_length)
            except zlib.error as exc:
                raise self._corrupt(str(exc)) from exc
            self._pending = self._inflate.unused_data if self._inflate.eof else self._inflate.unconsumed_tail
            if out:
                return out
            if not self._inflate.eof and not self._pending:
                self._pending = self._handle.read(_IN_CHUNK)
                if not self._pending:
                    raise self._corrupt("the file ends inside the compressed stream")
        return b""

    def read(self, n: int) -> bytes:
        parts, got = [], 0
        while got < n:
            chunk = self._chunk(min(n - got, _OUT_CHUNK))
            if not chunk:
                break
            parts.append(chunk)
            got += len(chunk)
        return b"".join(parts)

    def readinto(self, view: memoryview) -> int:
        got = 0
        while got < len(view):
            chunk = self._chunk(min(len(view) - got, _OUT_CHUNK))
            if not chunk:
                break
            view[got : got + len(chunk)] = chunk
            got += len(chunk)
        return got


def _open_regular(path: Path, kind: str = "an IDX file") -> tuple[io.BufferedReader, os.stat_result]:
    """Open ``path`` for reading after checking it is a regular file (never blocks on a FIFO)."""
    limits.stat_regular_file(path, kind, IDXFormatError)
    handle = open(path, "rb")  # closed by the caller
    return handle, os.fstat(handle.fileno())


def _most_bytes(size: int, is_gzip: bool) -> int:
    """The most decompressed bytes a file of ``size`` bytes can hold (deflate expands at most 1032:1)."""
    return _MAX_RATIO * size + _RATIO_SLACK if is_gzip else size


@contextmanager
def open_stream(path: str | os.PathLike[str], kind: str = "a data file") -> Iterator[tuple[_Stream, int]]:
    """``(stream, most)``: the decompressed content of ``path`` (gzip detected from its first bytes, or raw)
    and the most bytes a file of its size can decompress to.

    ``stream.read(n)`` decompresses in bounded chunks and never returns more
    than ``n`` bytes; corrupt or truncated gzip data raises
    :class:`IDXFormatError` naming the path.  ``path`` must be a regular file
    (``kind``, like ``"a pickle file"``, names it in that error).  Shared by
    :func:`read_idx` and :mod:`portable_nn._data.bookpickle`.
    """
    path = Path(path)
    handle, info = _open_regular(path, kind)
    with handle:
        is_gzip = handle.read(2) == _GZIP_MAGIC
        handle.seek(0)
        stream: _Stream = _GzipStream(handle, path) if is_gzip else _RawStream(handle)
        yield stream, _most_bytes(info.st_size, is_gzip)


def read_idx(path: str | os.PathLike[str], ndim: int | None = None, *, max_bytes: int | None = None) -> np.ndarray:
    """Read an IDX file of unsigned bytes into a ``uint8`` array of its header's shape.

    Parameters
    ----------
    path:
        The file, gzip-compressed (detected from its content, one or more
        members) or raw.
    ndim:
        The number of dimensions expected (3 for images, 1 for labels);
        ``None`` accepts any.
    max_bytes:
        Largest data section accepted (the product of the dimensions);
        default :data:`portable_nn._base.limits.IDX_BYTES`, 2 GiB or
        ``$PORTABLE_NN_MAX_IDX_BYTES``.

    What is checked, before anything the size of the data is allocated: the
    magic number, the type code (``0x08``), ``ndim``, a complete header, the
    declared size against ``max_bytes``, and against the file size (raw) or
    the largest expansion a gzip file of that size allows.  Then the data is
    read (gzip: decompressed in chunks straight into the array, CRC checked)
    and must end exactly where the header says.

    Raises
    ------
    IDXFormatError
        Bad magic number, unsupported type code, unexpected ``ndim``,
        truncated header, declared size over the limit, data shorter or
        longer than the header says, corrupt or truncated gzip data, or a
        path that is not a regular file; the message starts with the path.
    OSError
        The file cannot be opened or read: ``FileNotFoundError``,
        ``PermissionError``, ``IsADirectoryError`` (a directory given as the
        file); ``str(exc)`` names the path.
    """
    path = Path(path)
    limit = limits.IDX_BYTES.value(max_bytes)
    with open_stream(path, "an IDX file") as (stream, most):
        is_gzip = isinstance(stream, _GzipStream)
        head = stream.read(4)
        if len(head) < 4:
            raise IDXFormatError(f"{path}: too short for an IDX header ({len(head)} bytes)")
        zero, type_code, dims = struct.unpack(">HBB", head)
        if zero != 0:
            raise IDXFormatError(f"{path}: bad magic number {head.hex()} (not an IDX file)")
        if type_code != _UBYTE:
            raise IDXFormatError(
                f"{path}: IDX type code 0x{type_code:02x} is not supported (expected 0x08, unsigned bytes)"
            )
        if ndim is not None and dims != ndim:
            raise IDXFormatError(f"{path}: expected {ndim} dimension(s), the header says {dims}")
        dim_bytes = stream.read(4 * dims)
        if len(dim_bytes) < 4 * dims:
            raise IDXFormatError(f"{path}: truncated header ({dims} dimensions need {4 + 4 * dims} bytes)")
        shape = struct.unpack(f">{dims}I", dim_bytes)
        expected = math.prod(shape)  # Python ints: no overflow
        if expected == 0 and math.prod(max(d, 1) for d in shape) > limit:
            # no bytes, but a shape NumPy cannot form (0, 10**9, 10**9): nonsense, not a data set
            raise IDXFormatError(f"{path}: header shape {shape} is empty but its other dimensions exceed the limit")
        if expected > limit:
            raise IDXFormatError(
                f"{path}: header shape {shape} needs {expected} data bytes, more than the limit of {limit} "
                f"({limits.IDX_BYTES.hint()})"
            )
        header_end = 4 + 4 * dims
        if not is_gzip:
            actual = most - header_end
            if actual != expected:
                raise IDXFormatError(
                    f"{path}: header shape {shape} needs {expected} data bytes, file has {actual} "
                    f"({'truncated' if actual < expected else 'trailing bytes'})"
                )
        elif header_end + expected > most:
            raise IDXFormatError(
                f"{path}: header shape {shape} needs {expected} data bytes, more than a gzip file of "
                f"{(most - _RATIO_SLACK) // _MAX_RATIO} bytes can hold (truncated or corrupt)"
            )
        data = np.empty(expected, dtype=np.uint8)
        got = stream.readinto(data.data)  # a writable uint8 memoryview of the array
        if got < expected:
            raise IDXFormatError(
                f"{path}: header shape {shape} needs {expected} data bytes, file has {got} (truncated)"
            )
        if stream.read(1):  # also reads a gzip file to its end, checking its CRC
            raise IDXFormatError(
                f"{path}: header shape {shape} needs {expected} data bytes, file has more (trailing bytes)"
            )
    return data.reshape(shape)


def write_idx(path: str | os.PathLike[str], array: np.ndarray, *, compress: bool | None = None) -> None:
    """Write a ``uint8`` array as an IDX file (gzip when ``compress`` or the name ends in ``.gz``)."""
    path = Path(path)
    array = np.ascontiguousarray(array, dtype=np.uint8)
    payload = struct.pack(f">HBB{array.ndim}I", 0, _UBYTE, array.ndim, *array.shape) + array.tobytes()
    if compress is None:
        compress = path.suffix == ".gz"
    path.write_bytes(gzip.compress(payload, mtime=0) if compress else payload)
