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
:data:`ACTIVATIONS`         ``PORTABLE_NN_MAX_ACTIVATIONS``   2**22 per image
:data:`FLOPS`               ``PORTABLE_NN_MAX_FLOPS``         2**30 per image
==========================  ================================  =================

:data:`ACTIVATIONS` and :data:`FLOPS` bound the *work* of a network, not its
memory: the activations one image makes in all layers together and the
floating-point operations of its forward pass (:func:`network_work`).  A
parameter limit alone lets a 3 KB chapter-6 file of 60,000 1x1 filters
(660,000 parameters) make 47 million activations per image; the command line
checks both before it trains or evaluates.  The book's largest network
(``ch6-dropout``: two conv-pool layers, 1,000-neuron dropout layers) makes
19,610 activations and 6.5 MFLOP per image; a ``[784, 60000, 10]`` network
60,010 activations and 95 MFLOP, well inside both limits.

The environment variable holds a positive integer number of bytes, optionally
with a binary suffix: ``PORTABLE_NN_MAX_IDX_BYTES=4G`` (also ``K``, ``M``,
``KiB``, ``MiB``, ``GiB``; underscores are allowed, ``1_000_000``).  A value
that is not such a number raises :class:`ValueError` naming the variable, so a
typo never silently falls back to the default.  The environment is read on
every call, not at import.

Example::

    from portable_nn._base import limits
    limits.IDX_BYTES.value()            # the limit in force now
    limits.IDX_BYTES.value(2**33)       # an explicit override wins
"""

from __future__ import annotations

import errno
import math
import os
import re
import stat
from collections.abc import Sequence
from dataclasses import dataclass

__all__ = [
    "ACTIVATIONS",
    "DOWNLOAD_BYTES",
    "FLOPS",
    "HISTORY_BYTES",
    "IDX_BYTES",
    "MAX_LAYERS",
    "MODEL_BYTES",
    "WORK",
    "Limit",
    "Work",
    "check_work",
    "network_work",
    "parse_size",
    "stat_regular_file",
]

_SUFFIXES = {"": 1, "K": 2**10, "M": 2**20, "G": 2**30, "T": 2**40}
_SIZE = re.compile(r"\s*([0-9][0-9_]*)\s*(?:([KMGT])(?:I?B)?|B)?\s*", re.IGNORECASE)


def parse_size(text: str, what: str = "size", unit: str = "bytes") -> int:
    """Parse ``"123"``, ``"64M"``, ``"2GiB"`` or ``"1_000"`` into a positive number (of ``unit``).

    Raises :class:`ValueError` naming ``what`` when ``text`` is not such a number.
    """
    match = _SIZE.fullmatch(text)
    if match is None or match.group(1).endswith("_") or "__" in match.group(1):
        raise ValueError(f"{what}: expected a positive number of {unit} such as 1048576, 64M or 2GiB; got {text!r}")
    value = int(match.group(1).replace("_", "")) * _SUFFIXES[(match.group(2) or "").upper()]
    if value <= 0:
        raise ValueError(f"{what}: expected a positive number of {unit}; got {text!r}")
    return value


@dataclass(frozen=True)
class Limit:
    """A limit (in bytes, or ``unit``): ``default``, overridden by ``$env``, overridden by an argument."""

    name: str
    env: str
    default: int
    doc: str
    unit: str = "bytes"

    def value(self, override: int | None = None) -> int:
        """The limit in force: ``override`` when given, else ``$env`` when set (and not empty), else the default.

        Raises :class:`ValueError` naming the argument or the variable when it is
        not a positive integer.
        """
        if override is not None:
            if isinstance(override, bool) or not isinstance(override, int) or override <= 0:
                raise ValueError(f"{self.name}: expected a positive integer number of {self.unit}; got {override!r}")
            return override
        text = os.environ.get(self.env, "")
        if text.strip():
            return parse_size(text, f"${self.env}", self.unit)
        return self.default

    def hint(self) -> str:
        """How to raise the limit, for error messages."""
        return f"set ${self.env} (e.g. {self.env}=4G) or pass a larger limit to raise it"


#: Largest IDX data section :func:`portable_nn._data.idx.read_idx` accepts (product of the header's dimensions).
IDX_BYTES = Limit(
    "max_idx_bytes", "PORTABLE_NN_MAX_IDX_BYTES", 2**31, "largest IDX data section (product of the dimensions)"
)
#: Most bytes :func:`portable_nn._data.download.download_file` accepts for a file without a pinned size.
DOWNLOAD_BYTES = Limit(
    "max_download_bytes", "PORTABLE_NN_MAX_DOWNLOAD_BYTES", 2**28, "largest download of a file without a pinned size"
)
#: Largest history file (JSON or CSV) :func:`portable_nn.history.read_history` reads.
HISTORY_BYTES = Limit("max_history_bytes", "PORTABLE_NN_MAX_HISTORY_BYTES", 2**26, "largest history file")
#: Largest saved model file the loaders read (for :mod:`portable_nn._io.serialization`).
MODEL_BYTES = Limit("max_model_bytes", "PORTABLE_NN_MAX_MODEL_BYTES", 2**31, "largest saved model file")

#: Most activations one image may make in all the layers of a network together (:func:`network_work`).
ACTIVATIONS = Limit(
    "max_activations", "PORTABLE_NN_MAX_ACTIVATIONS", 2**22, "most activations per image", "activations per image"
)
#: Most floating-point operations of one image's forward pass (:func:`network_work`).
FLOPS = Limit("max_flops", "PORTABLE_NN_MAX_FLOPS", 2**30, "most FLOPs per image", "FLOPs per image")
#: Longest list of layer sizes (``sizes``) a fully connected network may have, for training, saving and loading.
MAX_LAYERS = 1000

#: The size limits (bytes).
ALL = (IDX_BYTES, DOWNLOAD_BYTES, HISTORY_BYTES, MODEL_BYTES)
#: The work limits (counts per image).
WORK = (ACTIVATIONS, FLOPS)


@dataclass(frozen=True)
class Work:
    """The work of one image through a network: ``activations`` made and ``flops`` of the forward pass."""

    activations: int
    flops: int


def _layer_work(layer: object) -> Work:
    """One chapter-6 layer's work per image, read from its public shape attributes.

    ``ConvPoolLayer`` (``filter_shape`` ``(f, c, kh, kw)``, ``conv_shape``,
    ``out_shape``): ``2·c·kh·kw`` FLOPs for each of the ``f·conv_h·conv_w``
    convolution outputs, plus the pooled outputs.  ``FullyConnectedLayer`` and
    ``SoftmaxLayer`` (``n_in``, ``n_out``): ``2·n_in·n_out`` FLOPs, ``n_out``
    activations.
    """
    filter_shape = getattr(layer, "filter_shape", None)
    if filter_shape is not None:
        f, c, kh, kw = (int(d) for d in filter_shape)
        conv = f * math.prod([int(d) for d in getattr(layer, "conv_shape")])  # noqa: B009 - any layer object
        pooled = math.prod([int(d) for d in getattr(layer, "out_shape")])  # noqa: B009
        return Work(conv + pooled, 2 * c * kh * kw * conv + conv)
    n_in, n_out = int(getattr(layer, "n_in")), int(getattr(layer, "n_out"))  # noqa: B009
    return Work(n_out, 2 * n_in * n_out)


def network_work(layers: Sequence[int] | Sequence[object]) -> Work:
    """The work of one image through a network, summed over its layers.

    ``layers`` is either a fully connected network's ``sizes`` (ints, e.g.
    ``[784, 30, 10]``: ``sum(sizes[1:])`` activations, ``2·Σ n_in·n_out``
    FLOPs) or a chapter-6 network's layer objects (``ConvPoolLayer``,
    ``FullyConnectedLayer``, ``SoftmaxLayer``; see :func:`_layer_work`).
    """
    items = list(layers)
    if items and all(isinstance(n, int) for n in items):
        sizes = [int(n) for n in items]  # type: ignore[call-overload]
        return Work(sum(sizes[1:]), sum(2 * a * b for a, b in zip(sizes[:-1], sizes[1:])))
    works = [_layer_work(layer) for layer in items]
    return Work(sum(w.activations for w in works), sum(w.flops for w in works))


def parameter_count(layers: Sequence[int] | Sequence[object]) -> int:
    """Weights and biases of a network: the one count every limit check uses.

    ``layers``: a fully connected network's ``sizes`` (``Σ n_out·(n_in + 1)``),
    or layer objects with ``w_shape``/``b_shape`` (chapter 6's, or the math layers).
    """
    items = list(layers)
    if items and all(isinstance(n, int) for n in items):
        sizes = [int(n) for n in items]  # type: ignore[call-overload]
        return sum(n_out * (n_in + 1) for n_in, n_out in zip(sizes[:-1], sizes[1:]))
    return sum(math.prod(getattr(layer, "w_shape")) + math.prod(getattr(layer, "b_shape")) for layer in items)  # noqa: B009


def check_work(work: Work, what: str) -> Work:
    """``work`` when within :data:`ACTIVATIONS` and :data:`FLOPS`; :class:`ValueError` naming ``what`` if not."""
    for count, limit in ((work.activations, ACTIVATIONS), (work.flops, FLOPS)):
        if count > limit.value():
            raise ValueError(
                f"{what}: {count:,} {limit.unit} is more than the limit of {limit.value():,} "
                f"(a network this large would take very long to run); set ${limit.env} to raise it"
            )
    return work


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
