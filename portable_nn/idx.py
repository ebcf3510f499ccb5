"""Reading IDX files (the format MNIST ships in), gzipped or not, with checks.

An IDX file is a 4-byte magic number -- two zero bytes, a type code (``0x08``
for unsigned bytes) and the number of dimensions -- followed by one big-endian
``uint32`` per dimension and then the data.  :func:`read_idx` checks all of
that and that the data length matches the header, so a truncated, corrupt or
mislabelled file fails with an error that names it.
"""

from __future__ import annotations

import gzip
import os
import struct
import zlib
from pathlib import Path

import numpy as np

_GZIP_MAGIC = b"\x1f\x8b"
_UBYTE = 0x08


class IDXFormatError(ValueError):
    """An IDX file is truncated, corrupt or not the array that was expected."""


def _read_bytes(path: Path) -> bytes:
    raw = path.read_bytes()
    if raw[:2] != _GZIP_MAGIC:
        return raw
    try:
        return gzip.decompress(raw)
    except (EOFError, OSError, zlib.error) as exc:
        raise IDXFormatError(f"{path}: corrupt or truncated gzip data ({exc})") from exc


def read_idx(path: str | os.PathLike[str], ndim: int | None = None) -> np.ndarray:
    """Read an IDX file of unsigned bytes into a ``uint8`` array of its header's shape.

    Parameters
    ----------
    path:
        The file, gzip-compressed (detected from its content) or raw.
    ndim:
        The number of dimensions expected (3 for images, 1 for labels);
        ``None`` accepts any.

    Raises
    ------
    IDXFormatError
        Bad magic number, unsupported type code, unexpected ``ndim``, or a
        data length that does not match the header; the message names the file.
    FileNotFoundError
        The file does not exist.
    """
    path = Path(path)
    data = _read_bytes(path)
    if len(data) < 4:
        raise IDXFormatError(f"{path}: too short for an IDX header ({len(data)} bytes)")
    zero, type_code, dims = struct.unpack(">HBB", data[:4])
    if zero != 0:
        raise IDXFormatError(f"{path}: bad magic number {data[:4].hex()} (not an IDX file)")
    if type_code != _UBYTE:
        raise IDXFormatError(
            f"{path}: IDX type code 0x{type_code:02x} is not supported (expected 0x08, unsigned bytes)"
        )
    if ndim is not None and dims != ndim:
        raise IDXFormatError(f"{path}: expected {ndim} dimension(s), the header says {dims}")
    header_end = 4 + 4 * dims
    if len(data) < header_end:
        raise IDXFormatError(f"{path}: truncated header")
    shape = struct.unpack(f">{dims}I", data[4:header_end])
    expected = int(np.prod(shape, dtype=np.int64))
    actual = len(data) - header_end
    if actual != expected:
        raise IDXFormatError(
            f"{path}: header shape {shape} needs {expected} data bytes, file has {actual} "
            f"({'truncated' if actual < expected else 'trailing bytes'})"
        )
    return np.frombuffer(data, dtype=np.uint8, offset=header_end).reshape(shape)


def write_idx(path: str | os.PathLike[str], array: np.ndarray, *, compress: bool | None = None) -> None:
    """Write a ``uint8`` array as an IDX file (gzip when ``compress`` or the name ends in ``.gz``)."""
    path = Path(path)
    array = np.ascontiguousarray(array, dtype=np.uint8)
    payload = struct.pack(f">HBB{array.ndim}I", 0, _UBYTE, array.ndim, *array.shape) + array.tobytes()
    if compress is None:
        compress = path.suffix == ".gz"
    path.write_bytes(gzip.compress(payload, mtime=0) if compress else payload)
