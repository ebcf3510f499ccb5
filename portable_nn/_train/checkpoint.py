"""Checkpoints: everything an ``SGD`` run needs to continue after an interrupt, bit for bit.

``SGD(..., checkpoint=DIR)`` (every network) writes ``DIR/checkpoint.npz``
after every completed epoch, atomically (:func:`portable_nn._base.atomic.atomic_write`:
one file, renamed into place, so the checkpoint is always one whole epoch's).
``SGD(..., checkpoint=DIR, resume=True)`` reads it back and continues from the
epoch after the stored one; with the same seed and settings the weights at the
end are exactly those of a run that was never interrupted.

The file is an ``.npz`` without pickle: the arrays (``w{i}``, ``b{i}`` and,
with momentum, ``vw{i}``, ``vb{i}``, in the network's dtype) and ``meta``, one
JSON string holding the rest:

* ``format``/``version``: ``"portable_nn-checkpoint"`` and :data:`VERSION`;
  a newer version is refused;
* ``settings``: what must match for the run to be the same run (network kind
  and layers, dtype, cost, eta, lmbda, mu, mini_batch_size, epochs,
  regularization, the stop rules, and the data's identity: ``n`` and the
  SHA-256 of the training and evaluation data as the device holds them);
  resuming with any of them different is a :class:`CheckpointMismatchError`
  (a ``ValueError``) naming it;
* ``epoch`` (epochs completed), ``eta`` (the schedule's current value),
  ``best``/``since`` (the stop rules' plateau counter), ``stopped`` (a stop
  rule ended the run), ``history`` (each epoch's result as a dict);
* ``rng``: the generator's state (``Generator.bit_generator.state``, or
  ``np.random.get_state(legacy=False)`` for NumPy's global state with
  ``seed=None``), NumPy arrays in it written as ``{"ndarray": [...], "dtype": ...}``.

A damaged file (not a zip, a bad member, bad JSON, wrong shapes) raises
:class:`CheckpointError`, a ``ValueError`` with one line naming the file.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import os
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from .._backend.backends import host_view
from .._base import limits
from .._base.atomic import atomic_write
from .._data.forms import DeviceData
from .._io.npz import ZIP_ERRORS, check_meta_header, npz_headers, read_members
from .._math import initializers
from .._math.updates import State

__all__ = [
    "FILE",
    "FORMAT",
    "VERSION",
    "Checkpoint",
    "CheckpointError",
    "Progress",
    "data_identity",
    "network_settings",
    "open_checkpoint",
]

FORMAT = "portable_nn-checkpoint"
#: The format version written; files of a higher version are refused.
VERSION = 1
#: The checkpoint's file name inside its directory.
FILE = "checkpoint.npz"
#: Largest ``meta`` member (JSON: settings, history, generator state) in characters.
_MAX_META_CHARS = 1 << 24
_KINDS = ("w", "b", "vw", "vb")


class CheckpointError(ValueError):
    """A checkpoint file is damaged or not a checkpoint; the message is one line naming the file."""


class CheckpointMismatchError(ValueError):
    """A checkpoint of other settings, other data, another random source or a newer format version."""


@dataclass(frozen=True)
class Progress:
    """A checkpoint's contents: where the run stood after its last completed epoch.

    ``state``: host (NumPy) arrays in the network's dtype, ``weights``/``biases``
    per layer, velocities empty without momentum.  ``history``: one dict of
    :class:`~portable_nn._train.loop.EpochResult` fields per completed epoch.
    """

    epoch: int
    eta: float
    best: float
    since: int
    stopped: bool
    history: list[dict[str, Any]]
    rng: dict[str, Any]
    state: State


def data_identity(data: DeviceData | None) -> dict[str, Any] | None:
    """``{"n", "sha256"}`` of resident data: the hash of its inputs' and targets' host bytes (one host copy)."""
    if data is None:
        return None
    digest = hashlib.sha256()
    for array in (data.inputs, data.targets):
        host = np.ascontiguousarray(host_view(array))
        digest.update(f"{host.dtype.str}{host.shape}".encode())
        digest.update(host.data)
    return {"n": int(data.n), "sha256": digest.hexdigest()}


def _name(value: Any) -> str:
    return str(getattr(value, "name", None) or getattr(value, "__name__", None) or type(value).__name__)


def network_settings(net: Any, **run: Any) -> dict[str, Any]:
    """The settings a checkpoint must match: the network's kind, layers, dtype (and cost), plus ``run``'s.

    ``run``: the ``SGD`` call's arguments (eta, epochs, mini_batch_size, ...)
    and the data's :func:`data_identity`.
    """
    kind: dict[str, Any] = {"network": f"{type(net).__module__}.{type(net).__name__}", "dtype": net.dtype}
    if hasattr(net, "layers"):
        kind["layers"] = [layer.spec() for layer in net.layers]
        kind["p_dropout"] = [layer.p_dropout for layer in net.layers]
    else:
        spec = net.spec
        kind.update(sizes=list(net.sizes), hidden=_name(spec.hidden), output=_name(spec.output), cost=_name(spec.cost))
    return {**kind, **run}


# -- generator state --------------------------------------------------------------------------------------
def _rng_state(rng: Any) -> dict[str, Any]:
    if isinstance(rng, initializers.GlobalNumPyRandom):
        return {"source": "global", "state": np.random.get_state(legacy=False)}  # noqa: NPY002 - on purpose
    return {"source": "generator", "state": rng.bit_generator.state}


def _set_rng_state(path: Path, rng: Any, saved: dict[str, Any]) -> None:
    source = "global" if isinstance(rng, initializers.GlobalNumPyRandom) else "generator"
    if saved.get("source") != source:
        raise CheckpointMismatchError(
            f"{path}: the checkpoint's random numbers came from {saved.get('source')!r} "
            f"(seed {'None' if saved.get('source') == 'global' else 'an int'}), this network's from {source!r}; "
            "resume with the same seed"
        )
    try:
        if source == "global":
            np.random.set_state(saved["state"])  # noqa: NPY002 - the global state, on purpose
        else:
            generator: Any = rng  # a numpy.random.Generator (the network's default_rng(seed))
            generator.bit_generator.state = saved["state"]
    except (KeyError, TypeError, ValueError) as exc:
        raise CheckpointError(f"{path}: the generator state cannot be restored ({exc})") from exc


def _encode(value: Any) -> Any:
    if isinstance(value, np.ndarray):
        return {"ndarray": value.tolist(), "dtype": value.dtype.str}
    if isinstance(value, np.generic):
        return value.item()
    raise TypeError(f"cannot write {type(value).__name__} into a checkpoint")


def _decode(obj: dict[str, Any]) -> Any:
    if set(obj) == {"ndarray", "dtype"}:
        return np.asarray(obj["ndarray"], dtype=np.dtype(obj["dtype"]))
    return obj


# -- the checkpoint of one SGD call ----------------------------------------------------------------------
class Checkpoint:
    """The checkpoint directory of one ``SGD`` call: ``settings`` to match, ``progress`` when resuming.

    Built by :func:`open_checkpoint`; :func:`portable_nn._train.loop.sgd` calls
    :meth:`restore` before its first epoch and :meth:`save` after each one.
    """

    def __init__(self, directory: Path, settings: dict[str, Any], result_type: type, progress: Progress | None) -> None:
        self.directory, self.path = directory, directory / FILE
        self.settings, self.result_type, self.progress = settings, result_type, progress

    def results(self) -> list[Any]:
        """The resumed run's earlier epoch results (``result_type`` objects); empty for a fresh run."""
        return [] if self.progress is None else [self.result_type(**d) for d in self.progress.history]

    def restore(self, net: Any) -> None:
        """Put the stored parameters, velocities and generator state into ``net`` (nothing for a fresh run)."""
        if self.progress is None:
            return
        _set_rng_state(self.path, net.random_source, self.progress.rng)
        restore_parameters(net, self.progress, self.path)

    def save(
        self,
        state: State,
        net: Any,
        *,
        epoch: int,
        eta: float,
        best: float,
        since: int,
        stopped: bool,
        history: list[Any],
    ) -> None:
        """Write the checkpoint after ``epoch`` completed epochs (atomic: one file renamed into place)."""
        arrays = {f"{kind}{i}": host_view(a) for kind, part in zip(_KINDS, state) for i, a in enumerate(part)}
        meta = {
            "format": FORMAT,
            "version": VERSION,
            "settings": self.settings,
            "epoch": epoch,
            "eta": eta,
            "best": None if math.isinf(best) else best,
            "since": since,
            "stopped": stopped,
            "history": [dataclasses.asdict(r) for r in history],
            "rng": _rng_state(net.random_source),
        }
        arrays["meta"] = np.asarray(json.dumps(meta, default=_encode))
        self.directory.mkdir(parents=True, exist_ok=True)
        with atomic_write(self.path, "wb") as handle:
            np.savez(handle, allow_pickle=False, **arrays)


def restore_parameters(net: Any, progress: Progress, path: Path) -> None:
    """Put ``progress``'s parameters and velocities into ``net`` (on its backend, in its dtype); shapes checked."""
    backend, dtype = net.backend, net.float_dtype
    now = net.training_state(False)
    for kind, stored, current in zip(_KINDS, progress.state, (*now[:2], *now[:2])):
        if stored and [a.shape for a in stored] != [tuple(c.shape) for c in current]:
            raise CheckpointError(f"{path}: the {kind!r} arrays do not have this network's shapes")
    net.set_training_state(State(*(tuple(backend.asarray(a, dtype=dtype) for a in part) for part in progress.state)))


def open_checkpoint(
    checkpoint: str | os.PathLike[str] | None,
    resume: bool,
    settings: dict[str, Any],
    *,
    result_type: type,
) -> Checkpoint | None:
    """The :class:`Checkpoint` for an ``SGD`` call's ``checkpoint=``/``resume=`` arguments (``None``: none).

    ``resume=True`` reads ``checkpoint/checkpoint.npz`` now, before any work:
    a missing file is ``FileNotFoundError``, a damaged one :class:`CheckpointError`,
    one of other settings, other data or a newer version a ``ValueError`` naming the setting.
    """
    if not isinstance(resume, bool):
        raise TypeError(f"resume must be True or False; got {resume!r}")
    if checkpoint is None:
        if resume:
            raise ValueError("resume=True needs checkpoint=DIR: the directory to resume from")
        return None
    if not isinstance(checkpoint, (str, os.PathLike)):
        raise TypeError(f"checkpoint must be a directory path (str or os.PathLike) or None; got {checkpoint!r}")
    directory = Path(checkpoint)
    if directory.exists() and not directory.is_dir():
        raise ValueError(f"checkpoint must be a directory; {str(directory)!r} is a file")
    settings = json.loads(json.dumps(settings, default=_encode))  # as it will read back
    progress = read(directory / FILE, settings) if resume else None
    return Checkpoint(directory, settings, result_type, progress)


# -- reading ---------------------------------------------------------------------------------------------
def read(path: Path, settings: dict[str, Any] | None = None) -> Progress:
    """The checkpoint at ``path``, checked; with ``settings``, refused unless they match the stored ones."""
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no checkpoint to resume from (run with checkpoint= first)")
    size = path.stat().st_size
    if size > limits.MODEL_BYTES.value():
        raise CheckpointError(f"{path}: {size} bytes is larger than the limit; {limits.MODEL_BYTES.hint()}")
    try:
        with zipfile.ZipFile(path) as archive:
            headers = npz_headers(path, archive, _member_name, "checkpoint")
            check_meta_header(path, headers, 4 * _MAX_META_CHARS, "portable_nn checkpoint", CheckpointError)
            arrays = read_members(archive, headers)
    except CheckpointError:
        raise
    except ZIP_ERRORS as exc:
        raise CheckpointError(f"{path}: not a readable checkpoint ({type(exc).__name__}: {exc})") from exc
    meta = _parse_meta(path, str(arrays.pop("meta")))
    if settings is not None:
        _check_settings(path, meta["settings"], settings)
    return _progress(path, meta, arrays)


def _member_name(name: str) -> bool:
    return name == "meta" or (name.rstrip("0123456789") in _KINDS and name[-1:].isdigit())


def _parse_meta(path: Path, text: str) -> dict[str, Any]:
    try:
        meta = json.loads(text, object_hook=_decode)
    except (ValueError, RecursionError) as exc:
        raise CheckpointError(f"{path}: 'meta' is not JSON ({exc})") from exc
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise CheckpointError(f"{path}: not a portable_nn checkpoint")
    version = meta.get("version")
    if not isinstance(version, int) or isinstance(version, bool) or version < 1:
        raise CheckpointError(f"{path}: bad checkpoint version {version!r}")
    if version > VERSION:
        raise CheckpointMismatchError(
            f"{path}: checkpoint format version {version} is newer than this portable_nn reads ({VERSION}); "
            "upgrade portable_nn to resume it"
        )
    expected = {
        "settings": dict,
        "epoch": int,
        "eta": float,
        "since": int,
        "stopped": bool,
        "history": list,
        "rng": dict,
    }
    for key, kind in expected.items():
        value = meta.get(key)
        if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
            raise CheckpointError(f"{path}: 'meta' field {key!r} is missing or not a {kind.__name__}")
    if meta["best"] is not None and not isinstance(meta["best"], (int, float)):
        raise CheckpointError(f"{path}: 'meta' field 'best' is not a number")
    if len(meta["history"]) != meta["epoch"] or not all(isinstance(r, dict) for r in meta["history"]):
        raise CheckpointError(f"{path}: the history does not hold one result per completed epoch")
    return meta


def _check_settings(path: Path, stored: dict[str, Any], current: dict[str, Any]) -> None:
    for key in sorted(set(stored) | set(current)):
        if stored.get(key) != current.get(key):
            raise CheckpointMismatchError(
                f"{path}: the checkpoint was written with {key}={_short(stored.get(key))}, this run has "
                f"{key}={_short(current.get(key))}; resume with the same settings and data"
            )


def _short(value: Any) -> str:
    text = json.dumps(value)
    return text if len(text) <= 80 else text[:77] + "..."


def _progress(path: Path, meta: dict[str, Any], arrays: dict[str, np.ndarray]) -> Progress:
    parts: list[tuple[np.ndarray, ...]] = []
    for kind in _KINDS:
        count = sum(1 for name in arrays if name.rstrip("0123456789") == kind)
        names = [f"{kind}{i}" for i in range(count)]
        if not set(names) <= set(arrays):
            raise CheckpointError(f"{path}: the {kind!r} arrays are not numbered 0..{count - 1}")
        parts.append(tuple(arrays[name] for name in names))
    weights, biases, vw, vb = parts
    if not weights or len(biases) != len(weights) or len(vw) != len(vb) or len(vw) not in (0, len(weights)):
        raise CheckpointError(f"{path}: the parameter arrays do not form one set per layer")
    for name, array in arrays.items():
        if array.dtype.kind != "f" or not np.all(np.isfinite(array)):
            raise CheckpointError(f"{path}: {name} is not finite floating-point data")
    best = -math.inf if meta["best"] is None else float(meta["best"])
    return Progress(
        meta["epoch"], meta["eta"], best, meta["since"], meta["stopped"], meta["history"], meta["rng"],
        State(weights, biases, vw, vb),
    )  # fmt: skip
