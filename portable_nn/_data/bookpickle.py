"""The book's pickled MNIST files (``mnist.pkl.gz``, ``mnist_expanded.pkl.gz``), read without running pickle code.

The book ships ``data/mnist.pkl.gz`` (a Python-2 pickle of
``((train_x, train_y), (valid_x, valid_y), (test_x, test_y))``: float32
``(n, 784)`` images in [0, 1], int64 labels) and its ``expand_mnist.py``
writes ``mnist_expanded.pkl.gz`` (the same, the training pair being two lists
of 250,000 ``(784,)`` arrays and labels).  ``pickle.load`` on such a file
runs whatever callables the file names, so it is never used here.

:class:`RestrictedUnpickler` resolves only the names that rebuild NumPy
arrays, dtypes and scalars -- ``numpy.core.multiarray._reconstruct`` /
``scalar``, ``numpy.ndarray``, ``numpy.dtype`` (and their ``numpy._core``
spellings), ``numpy.core.numeric._frombuffer`` (protocol 5), ``_codecs.encode``
with the ``latin1`` codec (Python-3 pickles of protocol 0-2) -- and each of
them is a stand-in that checks its arguments and builds the array itself with
``numpy.frombuffer``: NumPy's own ``__setstate__`` never sees data from the
file.  Any other global (``os.system``, ``builtins.eval``, ...) raises
:class:`BookPickleError` when it is *looked up*, before anything could call it.

Sizes, as for the IDX reader (:mod:`portable_nn._data.idx`): the arrays of one
file may hold at most :data:`portable_nn._base.limits.IDX_BYTES`
(``$PORTABLE_NN_MAX_IDX_BYTES``, 2 GiB) of data, checked as each is built;
the decompressed stream may be at most 4 times that (protocol 0, which the
book's ``expand_mnist.py`` writes, spells a byte with up to 4 characters: its
784 MB of images take about 3 GB) and at most what a gzip file of its size
can expand to (1032:1).  Every read is checked against both *before* it is
made and the stream is decompressed in bounded chunks, so neither a gzip bomb
nor a pickle declaring a huge string allocates more than the file really
holds.  The number of pickle opcodes is bounded too (one per 64 bytes of the
limit), so a stream of tiny opcodes cannot build billions of objects.

:func:`load_book_mnist` then checks the structure (three ``(images,
labels)`` pairs, 784 pixels, digit labels, equal lengths) and returns the
book's ``load_data()`` layout.
"""

from __future__ import annotations

import codecs
import functools
import math
import os
import pickle
import re
import struct
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from .._base import limits
from .idx import IDXFormatError, open_stream

__all__ = ["BookPickleError", "RestrictedUnpickler", "is_book_pickle", "load_book_mnist", "read_book_pickle"]

#: One ``(images (n, 784) float32, labels (n,) int64)`` split.
Split = tuple[np.ndarray, np.ndarray]

#: Suffixes that mark a path as one of the book's pickle files (not a directory of IDX files).
PICKLE_SUFFIXES = (".pkl.gz", ".pkl", ".pickle", ".pickle.gz")
#: The decompressed stream may be this many times the limit: protocol 0 spells a byte with up to 4 characters.
_TEXT_FACTOR = 4
#: Bytes of limit per pickle opcode allowed (see the module docstring).
_BYTES_PER_OPCODE = 64
_MIN_OPCODES = 1 << 16
#: Array dtypes a pickle may declare: booleans, integers, floats of the usual sizes (no objects, records, strings).
_DTYPE_CODE = re.compile(r"[<>|=]?(?:b1|[iu][1248]|f[248])")
_MAX_DEPTH = 8


class BookPickleError(ValueError):
    """A pickle file is not one of the book's data files, or holds something other than arrays.

    The message starts with the file's path and is one line.
    """


def is_book_pickle(path: str | os.PathLike[str]) -> bool:
    """Whether ``path`` names a pickle file by its name (``.pkl.gz``, ``.pkl``, ...), existing or not."""
    name = Path(path).name.lower()
    return any(name.endswith(suffix) for suffix in PICKLE_SUFFIXES)


# -- stand-ins for the few globals a NumPy pickle names ---------------------------------------------------
class _Refused(pickle.UnpicklingError):
    """Raised inside the unpickler; turned into a :class:`BookPickleError` naming the file."""


class _Truncated(pickle.UnpicklingError):
    """A read past what the file can hold: reported as a truncated or corrupt file."""


class _OverLimit(pickle.UnpicklingError):
    """A read past the size limit."""


class _NdarrayClass:
    """Stands for ``numpy.ndarray`` as ``_reconstruct``'s first argument; cannot be called or built."""

    __slots__ = ()

    def __setstate__(self, state: Any) -> None:
        raise _Refused("a BUILD on numpy.ndarray itself")


class _DtypeToken:
    """A dtype being rebuilt: created from a type code, its pickled state only may set the byte order."""

    __slots__ = ("dtype",)

    def __init__(self, code: Any) -> None:
        if isinstance(code, bytes):
            code = code.decode("latin1")
        if not isinstance(code, str) or _DTYPE_CODE.fullmatch(code) is None:
            raise _Refused(f"dtype {code!r:.40} is not a boolean, integer or float type")
        self.dtype = np.dtype(code)

    def __setstate__(self, state: Any) -> None:
        # NumPy writes (version, byte order, subarray, names, fields, elsize, alignment, flags[, metadata]).
        if not isinstance(state, tuple) or len(state) not in (8, 9) or state[2:5] != (None, None, None):
            raise _Refused(f"a dtype state that is not a plain number type: {state!r:.80}")
        order = state[1].decode("latin1") if isinstance(state[1], bytes) else state[1]
        if order not in ("<", ">", "|", "="):
            raise _Refused(f"dtype byte order {order!r:.20}")
        if order in "<>":
            self.dtype = self.dtype.newbyteorder("<" if order == "<" else ">")


def _dtype(code: Any, align: Any = False, copy: Any = False) -> _DtypeToken:
    return _DtypeToken(code)


def _as_dtype(value: Any) -> np.dtype:
    if isinstance(value, _DtypeToken):
        return value.dtype
    raise _Refused(f"expected a dtype, got {type(value).__name__}")


def _as_bytes(data: Any, what: str) -> bytes | bytearray | memoryview:
    if isinstance(data, str):  # a Python-2 str read with encoding="latin1"
        return data.encode("latin1")
    if isinstance(data, (bytes, bytearray)):
        return data
    if isinstance(data, pickle.PickleBuffer):
        return data.raw()
    raise _Refused(f"{what} must be bytes, got {type(data).__name__}")


def _shape(value: Any) -> tuple[int, ...]:
    if not isinstance(value, tuple) or len(value) > 32 or not all(type(d) is int and d >= 0 for d in value):
        raise _Refused(f"array shape {value!r:.60} is not a tuple of sizes")
    return value


class _Budget:
    """Bytes of array data still allowed in one file (the IDX limit)."""

    __slots__ = ("hint", "left", "limit")

    def __init__(self, limit: int, hint: str) -> None:
        self.left = self.limit = limit
        self.hint = hint

    def take(self, nbytes: int) -> None:
        self.left -= nbytes
        if self.left < 0:
            raise _OverLimit(f"its arrays hold more than the limit of {self.limit} bytes ({self.hint})")


def _build(
    budget: _Budget, raw: bytes | bytearray | memoryview, dtype: np.dtype, shape: tuple[int, ...], fortran: bool
) -> np.ndarray:
    """The array whose bytes are ``raw`` (no copy), in native byte order; sizes must agree."""
    expected = math.prod(shape) * dtype.itemsize
    if len(raw) != expected:
        raise _Refused(f"an array of shape {shape} and dtype {dtype} needs {expected} bytes, the file has {len(raw)}")
    budget.take(expected)
    array = np.frombuffer(raw, dtype=dtype).reshape(shape, order="F" if fortran else "C")
    if not dtype.isnative:
        array = array.astype(dtype.newbyteorder("="))
    return array


class _ArrayToken:
    """An array being rebuilt by ``_reconstruct`` and ``BUILD``; ``array`` is set by its state."""

    __slots__ = ("array", "budget")

    def __init__(self, budget: _Budget) -> None:
        self.array: np.ndarray | None = None
        self.budget = budget

    def __setstate__(self, state: Any) -> None:
        if not isinstance(state, tuple) or len(state) not in (4, 5):
            raise _Refused(f"an array state that is not NumPy's: {type(state).__name__}")
        shape, dtype, fortran, raw = state[-4:]
        if self.array is not None or not isinstance(fortran, (bool, int)):
            raise _Refused("a malformed array state")
        self.array = _build(self.budget, _as_bytes(raw, "array data"), _as_dtype(dtype), _shape(shape), bool(fortran))


def _reconstruct(budget: _Budget, subtype: Any, shape: Any, dtype_code: Any) -> _ArrayToken:
    if not isinstance(subtype, _NdarrayClass) or shape != (0,):
        raise _Refused("_reconstruct called with other arguments than NumPy's pickles use")
    return _ArrayToken(budget)


def _scalar(budget: _Budget, dtype: Any, data: Any = None) -> np.generic:
    dt = _as_dtype(dtype)
    value: np.generic = _build(budget, _as_bytes(data, "scalar data"), dt, (), False)[()]  # type: ignore[assignment]
    return value


def _frombuffer(budget: _Budget, buffer: Any, dtype: Any, shape: Any, order: Any) -> np.ndarray:
    if order not in ("C", "F"):
        raise _Refused(f"array order {order!r:.10}")
    return _build(budget, _as_bytes(buffer, "array data"), _as_dtype(dtype), _shape(shape), order == "F")


def _is_latin1(encoding: Any) -> bool:
    try:
        return isinstance(encoding, str) and codecs.lookup(encoding).name == "iso8859-1"
    except LookupError:
        return False


def _encode(text: Any, encoding: Any = "utf-8") -> bytes:
    if not isinstance(text, str) or not _is_latin1(encoding):
        raise _Refused(f"_codecs.encode with encoding {encoding!r:.20} (only latin1 rebuilds bytes)")
    return text.encode("latin1")


_MULTIARRAY = ("numpy.core.multiarray", "numpy._core.multiarray")
_NUMERIC = ("numpy.core.numeric", "numpy._core.numeric")
#: The stand-ins; those taking the array budget first get it from the unpickler.
_ALLOWED: dict[tuple[str, str], Callable[..., Any] | None] = {
    **{(m, "_reconstruct"): _reconstruct for m in _MULTIARRAY},
    **{(m, "scalar"): _scalar for m in _MULTIARRAY},
    **{(m, "ndarray"): None for m in (*_MULTIARRAY, "numpy")},
    **{(m, "dtype"): _dtype for m in (*_MULTIARRAY, "numpy")},
    **{(m, "_frombuffer"): _frombuffer for m in _NUMERIC},
    ("_codecs", "encode"): _encode,
}
_BUDGETED = (_reconstruct, _scalar, _frombuffer)


# -- the stream: bounded reads of the decompressed bytes -----------------------------------------------------
class _BoundedReader:
    """``read``/``readline`` over a decompressed stream, refusing any read past ``limit`` before making it."""

    def __init__(self, stream: Any, limit: int, most: int, hint: str) -> None:
        self._stream = stream
        cap = _TEXT_FACTOR * limit
        self._limit = min(cap, most)
        self._error: type[pickle.UnpicklingError] = _OverLimit if cap <= most else _Truncated
        self._over = (
            f"more than {_TEXT_FACTOR} times the limit of {limit} bytes ({hint})"
            if cap <= most
            else f"more than a file of its size can hold ({most} bytes)"
        )
        self._pending = b""
        self.consumed = 0

    def _take(self, n: int) -> None:
        if self.consumed + n > self._limit:
            raise self._error(f"the pickle needs {self.consumed + n} decompressed bytes, {self._over}")
        self.consumed += n

    def read(self, n: int = -1) -> bytes:
        if n < 0:
            raise _Refused("an unbounded read")
        self._take(n)
        head, self._pending = self._pending[:n], self._pending[n:]
        if len(head) == n:
            return head
        rest: bytes = self._stream.read(n - len(head))
        return head + rest

    def readinto(self, buffer: Any) -> int:
        data = self.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)

    def readline(self) -> bytes:
        parts, size = [], 0
        while True:
            cut = self._pending.find(b"\n")
            if cut < 0:
                chunk, self._pending = self._pending, b""
            else:
                chunk, self._pending = self._pending[: cut + 1], self._pending[cut + 1 :]
            parts.append(chunk)
            size += len(chunk)
            if self.consumed + size > self._limit:
                raise self._error(f"a pickle line reaches past {self.consumed + size} decompressed bytes, {self._over}")
            if cut >= 0:
                break
            self._pending = self._stream.read(1 << 16)
            if not self._pending:
                break
        self.consumed += size
        return b"".join(parts)

    def at_end(self) -> bool:
        """Whether nothing follows what was read (reads at most one more byte)."""
        return not self._pending and not self._stream.read(1)


# -- the unpickler ---------------------------------------------------------------------------------------------
def _load_bytearray8(self: Any) -> None:
    # pickle's own allocates the declared length before reading; this reads (bounded) first.
    (length,) = struct.unpack("<Q", self.read(8))
    self.append(bytearray(self.read(length)))


class RestrictedUnpickler(pickle._Unpickler):
    """An unpickler that rebuilds only NumPy arrays, dtypes and scalars (and tuples, lists, numbers, strings).

    ``find_class`` returns checking stand-ins for the globals listed in the
    module docstring and raises :class:`pickle.UnpicklingError` for any
    other, so a file naming ``os.system`` fails at that name, before
    anything is called.  The pure-Python unpickler is used so that every
    read goes through the bounded stream (the C one allocates a declared
    length before reading it).  ``max_opcodes`` bounds the opcodes executed.
    """

    dispatch: ClassVar[dict[int, Callable[[Any], None]]] = dict(pickle._Unpickler.dispatch)
    dispatch[pickle.BYTEARRAY8[0]] = _load_bytearray8

    def __init__(self, file: Any, *, max_opcodes: int, budget: _Budget) -> None:
        super().__init__(file, encoding="latin1", fix_imports=True)
        self._ndarray = _NdarrayClass()
        self._budget = budget
        remaining = [max_opcodes]
        table = self.dispatch

        def counted(key: int) -> Callable[[Any], None]:
            action = table[key]

            def run(unpickler: Any) -> None:
                remaining[0] -= 1
                if remaining[0] < 0:
                    raise _Refused(f"more than {max_opcodes} pickle operations")
                action(unpickler)

            return run

        self.dispatch = {key: counted(key) for key in table}  # type: ignore[misc]  # per instance: counted

    def find_class(self, module: str, name: str) -> Any:
        key = (module, name)
        if key not in _ALLOWED:
            raise _Refused(f"refused global {module}.{name} (only NumPy arrays, dtypes and scalars are rebuilt)")
        target = _ALLOWED[key]
        if target is None:
            return self._ndarray
        return functools.partial(target, self._budget) if target in _BUDGETED else target

    def persistent_load(self, pid: Any) -> Any:
        raise _Refused("persistent ids are not allowed")


def _resolve(value: Any, depth: int = 0) -> Any:
    """``value`` with every rebuilt array token replaced by its array; anything unexpected is refused."""
    if depth > _MAX_DEPTH:
        raise _Refused("nested deeper than the book's data files")
    if isinstance(value, _ArrayToken):
        if value.array is None:
            raise _Refused("an array without its data")
        return value.array
    if isinstance(value, (_DtypeToken, _NdarrayClass)):
        raise _Refused("a bare dtype or class where data was expected")
    if isinstance(value, tuple):
        return tuple(_resolve(v, depth + 1) for v in value)
    if isinstance(value, list):
        for i, item in enumerate(value):  # in place: the book's expanded lists hold 250,000 arrays
            value[i] = _resolve(item, depth + 1)
        return value
    if isinstance(value, (int, float, np.generic, np.ndarray)) and not isinstance(value, bool):
        return value
    raise _Refused(f"a {type(value).__name__} where arrays, lists and tuples were expected")


def read_book_pickle(path: str | os.PathLike[str], *, max_bytes: int | None = None) -> Any:
    """The object in the pickle file ``path`` (gzip-compressed or not), rebuilt by :class:`RestrictedUnpickler`.

    Only tuples, lists, numbers and NumPy arrays/scalars of boolean, integer
    or float dtypes come back (arrays are read-only views of the file's bytes).
    ``max_bytes`` overrides :data:`portable_nn._base.limits.IDX_BYTES` as the cap
    on the decompressed stream.  Python-2 strings are read as latin1.

    Raises
    ------
    BookPickleError
        Any other global, a truncated, corrupt or oversized stream, a
        decompression bomb, trailing bytes, malformed array data; one line
        starting with the path.
    OSError
        The file cannot be opened (``FileNotFoundError``, ``IsADirectoryError``, ...).
    """
    path = Path(path)
    limit = limits.IDX_BYTES.value(max_bytes)
    try:
        with open_stream(path, "a pickle file") as (stream, most):
            hint = limits.IDX_BYTES.hint()
            reader = _BoundedReader(stream, limit, most, hint)
            unpickler = RestrictedUnpickler(
                reader, max_opcodes=max(_MIN_OPCODES, limit // _BYTES_PER_OPCODE), budget=_Budget(limit, hint)
            )
            with warnings.catch_warnings():
                warnings.simplefilter("error")  # e.g. a bad escape in a protocol-0 string: corrupt, not a warning
                result = _resolve(unpickler.load())
            if not reader.at_end():
                raise _Refused("trailing bytes after the end of the pickle")
    except IDXFormatError as exc:  # corrupt or truncated gzip data, from the shared stream reader
        raise BookPickleError(str(exc)) from None
    except _Refused as exc:
        raise BookPickleError(f"{path}: not one of the book's data files: {exc}") from None
    except _OverLimit as exc:
        raise BookPickleError(f"{path}: {exc}") from None
    except (EOFError, pickle.UnpicklingError, ValueError, TypeError, KeyError, IndexError, AttributeError) as exc:
        detail = str(exc) or type(exc).__name__
        raise BookPickleError(f"{path}: not a readable pickle (truncated or corrupt: {detail})") from None
    except (MemoryError, RecursionError, OverflowError, struct.error, UnicodeError, Warning) as exc:
        raise BookPickleError(f"{path}: not a readable pickle ({type(exc).__name__})") from None
    return result


# -- the book's layout -------------------------------------------------------------------------------------------
def _images(path: Path, value: Any, what: str) -> np.ndarray:
    """``(n, 784)`` float32 from an array or a list of ``(784,)`` arrays (list entries freed as they are copied)."""
    if isinstance(value, np.ndarray):
        if value.ndim != 2 or value.shape[1] != 784 or value.dtype.kind != "f":
            raise BookPickleError(
                f"{path}: {what} images must be a float (n, 784) array; got {value.dtype} {value.shape}"
            )
        images = value.astype(np.float32, copy=False)
    elif isinstance(value, list):
        images = np.empty((len(value), 784), dtype=np.float32)
        for i, row in enumerate(value):
            if not isinstance(row, np.ndarray) or row.shape != (784,) or row.dtype.kind != "f":
                shown = getattr(row, "shape", type(row).__name__)
                raise BookPickleError(f"{path}: {what} image {i} must be a float (784,) array; got {shown}")
            images[i] = row
            value[i] = None
    else:
        raise BookPickleError(f"{path}: {what} images must be an array or a list; got {type(value).__name__}")
    if images.size and not (np.all(np.isfinite(images)) and images.min() >= 0.0 and images.max() <= 1.0):
        raise BookPickleError(f"{path}: {what} pixels must be finite values in [0, 1]")
    return images


def _labels(path: Path, value: Any, what: str, n: int) -> np.ndarray:
    try:
        labels = np.asarray(value)
    except (ValueError, TypeError) as exc:
        raise BookPickleError(f"{path}: {what} labels are not a list of digits ({exc})") from None
    if labels.shape != (n,) or labels.dtype.kind not in "iu":
        raise BookPickleError(f"{path}: {what} labels must be {n} integers; got {labels.dtype} {labels.shape}")
    if n and (labels.min() < 0 or labels.max() > 9):
        raise BookPickleError(
            f"{path}: {what} labels must be digits 0-9; found {int(labels.min())}..{int(labels.max())}"
        )
    return labels.astype(np.int64, copy=False)


def load_book_mnist(path: str | os.PathLike[str], *, max_bytes: int | None = None) -> tuple[Split, Split, Split]:
    """The book's ``mnist_loader.load_data()`` from its pickle file ``path``.

    Returns ``(training, validation, test)``, each ``(images (n, 784)
    float32 in [0, 1], labels (n,) int64)``: 50,000/10,000/10,000 for
    ``mnist.pkl.gz``, 250,000 training images for ``mnist_expanded.pkl.gz``
    (whose pairs are lists of arrays; they are stacked, freeing each as it
    is copied).  Read by :func:`read_book_pickle`; anything but three pairs
    of 784-pixel images and digit labels of equal lengths raises
    :class:`BookPickleError` naming the file.
    """
    path = Path(path)
    data = read_book_pickle(path, max_bytes=max_bytes)
    if not isinstance(data, (tuple, list)) or len(data) != 3:
        raise BookPickleError(f"{path}: expected (training, validation, test) data; got {type(data).__name__}")
    splits = []
    for what, pair in zip(("training", "validation", "test"), data):
        if not isinstance(pair, (tuple, list)) or len(pair) != 2:
            raise BookPickleError(f"{path}: the {what} data must be an (images, labels) pair")
        images = _images(path, pair[0], what)
        splits.append((images, _labels(path, pair[1], what, images.shape[0])))
    return splits[0], splits[1], splits[2]
