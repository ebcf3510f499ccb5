"""The ``.npz`` container of every model and checkpoint file: bounded reading, format checks, one error type.

Every reader (chapter-1/3 models in :mod:`portable_nn._io.serialization`,
network3's in :mod:`portable_nn._io.network3_files`, checkpoints in
:mod:`portable_nn._train.checkpoint`) reads its members' ``.npy`` headers
first (:func:`npz_headers`: shapes and dtypes, checked against the file's
size and :data:`portable_nn._base.limits.MODEL_BYTES` before anything is
allocated), checks its one JSON ``meta`` string (:func:`check_meta_header`),
refuses another program's ``format`` or a newer ``version`` (:func:`check_format`),
and only then reads the arrays (:func:`read_members`, never with pickle).
"""

from __future__ import annotations

import lzma
import math
import struct
import warnings
import zipfile
import zlib
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import IO, Any

import numpy as np

from .._base import limits


class ModelFileError(ValueError):
    """A model file is malformed: unreadable, wrong keys, shapes, dtypes or non-finite values."""


def check_format(path: Path, meta: dict[str, Any], *, name: str, version: int, required: bool) -> None:
    """Refuse a model file of another program's ``format`` or of a ``version`` newer than ``version``.

    One check for every chapter: chapter-1/3 files (``name="portable_nn"``;
    ``required=False``: the book's JSON and version-0 npz files carry neither
    key) and network3's (``required=True``).  Raises :class:`ModelFileError`.
    """
    found = meta.get("format")
    if found is None and required:
        raise ModelFileError(f"{path}: no 'format' in its metadata: not a {name} model file")
    if found is not None and found != name:
        raise ModelFileError(f"{path}: a {found!r:.60} file (written by another program?), not a {name} model file")
    if found is not None or "version" in meta:
        got = meta.get("version")
        if type(got) is not int or not 1 <= got <= version:
            raise ModelFileError(
                f"{path}: unsupported {name} format version {got!r:.40} (this portable_nn reads versions 1 to "
                f"{version}; a newer portable_nn may have written it)"
            )


def check_file_size(path: Path) -> None:
    size = path.stat().st_size
    limit = limits.MODEL_BYTES.value()
    if size > limit:
        raise ModelFileError(
            f"{path}: {size} bytes is larger than the model size limit {limit}; {limits.MODEL_BYTES.hint()}"
        )
    if size == 0:
        raise ModelFileError(f"{path}: the file is empty")


#: Deflate's largest expansion (1032:1): the most a compressed member of n bytes can hold.
_DEFLATE_RATIO = 1032
#: A member's declared shape and dtype.
Header = tuple[tuple[int, ...], np.dtype]


def _npy_header(member: IO[bytes]) -> tuple[tuple[int, ...], np.dtype, int]:
    """``(shape, dtype, header length)`` of the ``.npy`` stream ``member``; ``ValueError`` if malformed."""
    version = np.lib.format.read_magic(member)
    if version not in ((1, 0), (2, 0)):
        raise ValueError(f"unsupported .npy format version {version}")
    read_header = np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # numpy warns about Python-2 headers it can still parse
            shape, _, dtype = read_header(member)
    except ValueError:
        raise
    except Exception as exc:  # a hostile header can make numpy's literal parser fail in any way
        raise ValueError(f"malformed .npy header ({type(exc).__name__}: {exc})") from exc
    if not isinstance(shape, tuple) or any(isinstance(d, bool) or not isinstance(d, int) or d < 0 for d in shape):
        raise ValueError(f"malformed .npy shape {shape!r}")
    return shape, dtype, member.tell()


def npz_headers(path: Path, archive: zipfile.ZipFile, allowed: Callable[[str], bool], kind: str) -> dict[str, Header]:
    """Every member's npy header ``{name: (shape, dtype)}``, checked before anything is allocated.

    Used by every model reader (``serialization`` and ``network3``).  Checks:
    no two members of one name; only ``NAME.npy`` members whose ``NAME``
    passes ``allowed``; each zip entry no larger than the file could hold (a
    deflated member holds at most 1032 bytes per stored byte); no object or
    record dtypes; each header's declared bytes equal to its entry's size; the
    total under :data:`portable_nn._base.limits.MODEL_BYTES`.  ``kind`` names the
    file kind in messages.  Raises :class:`ModelFileError`.
    """
    limit = limits.MODEL_BYTES.value()
    file_size = path.stat().st_size
    infos = archive.infolist()
    names = [info.filename for info in infos]
    if len(set(names)) != len(names):
        raise ModelFileError(f"{path}: the archive holds two members of the same name")
    headers: dict[str, Header] = {}
    total = 0
    for info in infos:
        if not info.filename.endswith(".npy"):
            raise ModelFileError(f"{path}: unexpected member {info.filename!r} (not an .npy array)")
        name = info.filename[: -len(".npy")]
        if not allowed(name):
            raise ModelFileError(f"{path}: unexpected member {info.filename!r} (not part of a {kind})")
        stored_most = file_size if info.compress_type == zipfile.ZIP_STORED else _DEFLATE_RATIO * file_size
        if info.compress_size > file_size or info.file_size > stored_most:
            raise ModelFileError(f"{path}: member {info.filename!r} claims more data than the file holds")
        with archive.open(info) as member:
            shape, dtype, header_bytes = _npy_header(member)
        if dtype.hasobject or dtype.kind in "OV":
            raise ModelFileError(f"{path}: member {info.filename!r} holds Python objects or records")
        nbytes = math.prod(shape) * dtype.itemsize
        if header_bytes + nbytes != info.file_size:
            raise ModelFileError(
                f"{path}: member {info.filename!r} declares {nbytes} bytes of data but its zip entry "
                f"holds {info.file_size - header_bytes} (truncated or damaged)"
            )
        total += nbytes
        if total > limit:
            raise ModelFileError(f"{path}: its arrays declare more than {limit} bytes; {limits.MODEL_BYTES.hint()}")
        headers[name] = (shape, dtype)
    return headers


def read_members(archive: zipfile.ZipFile, names: Iterable[str]) -> dict[str, np.ndarray]:
    """The ``.npy`` members ``names`` of ``archive`` (headers already checked by :func:`npz_headers`), no pickle."""
    arrays = {}
    for name in names:
        with archive.open(name + ".npy") as member:
            arrays[name] = np.lib.format.read_array(member, allow_pickle=False)
    return arrays


#: What reading a damaged zip archive raises (zipfile and the decompressors it uses).
ZIP_ERRORS = (
    OSError,
    ValueError,
    EOFError,
    KeyError,
    zipfile.BadZipFile,
    NotImplementedError,  # an unsupported compression method
    RuntimeError,  # an encrypted member
    zlib.error,
    lzma.LZMAError,
    struct.error,
)


def check_meta_header(
    path: Path,
    headers: dict[str, Header],
    max_bytes: int,
    kind: str,
    error: type[Exception] = ModelFileError,
) -> None:
    """The file's ``meta`` member must exist and be one JSON string of at most ``max_bytes`` (``error`` if not).

    ``kind`` names the file kind in the message (``"network3 model"``, ``"portable_nn checkpoint"``).
    """
    if "meta" not in headers:
        raise error(f"{path}: missing 'meta' (not a {kind})")
    shape, dtype = headers["meta"]
    if shape != () or dtype.kind != "U" or dtype.itemsize > max_bytes:
        raise error(f"{path}: 'meta' must be one JSON string; got {dtype} {shape}")
