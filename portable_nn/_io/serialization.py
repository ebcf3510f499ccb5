"""Saving and loading networks: ``.npz`` and the book's ``network2`` JSON.

Files hold host (NumPy) arrays, so a model trained on one backend loads onto
any other.  Writes go through :func:`portable_nn._base.atomic.atomic_write`, so a
crash or Ctrl-C never leaves a half-written model.  Reading checks sizes
before allocating (file size, npz member headers, JSON nesting), then keys,
shapes, dtypes and finiteness, and names the file on failure; the network is
then built from the arrays (:meth:`portable_nn._nets.dense.DenseNetwork.from_arrays`), never from
random weights of a declared shape.

``.json``: ``{"sizes", "weights", "biases", "cost"}`` exactly as the book's
``network2.Network.save`` writes it, plus ``"format": "portable_nn"``,
``"version"`` and ``"activation"``, which the book's ``network2.load``
ignores.  Only networks the book's loader reads as themselves are saved as
JSON -- sigmoid neurons throughout and ``QuadraticCost`` or
``CrossEntropyCost`` (:data:`BOOK_JSON_COSTS`); any other (tanh, ReLU,
softmax/log-likelihood, a user's cost) is refused with a ``ValueError``
pointing to ``.npz``, since the book would silently load a tanh file as a
sigmoid network (:func:`json_problem`).
``.npz``: ``sizes`` (int64), ``weights_0..L-1``, ``biases_0..L-1`` (float64 or
float32) and ``meta``, a JSON string with ``format``, ``version``, ``cost``
and ``activation``; files without ``meta`` (version 0) are chapter-1
networks.  Everything is written and read with ``allow_pickle=False``.

Every model file with a ``format`` names ours, and its ``version`` is one
this code reads (:func:`check_format`, shared with ``network3``): another
program's file or one from a newer version is refused, never guessed at.
"""

from __future__ import annotations

import json
import os
import re
import zipfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from .._backend.backends import host_view
from .._base import limits
from .._base.atomic import atomic_write
from .._base.types import Array
from .._base.validation import check_layer_arrays, check_sizes
from .._math.costs import COSTS, QuadraticCost
from .._math.dense import DenseSpec
from .npz import ZIP_ERRORS, Header, ModelFileError, check_file_size, check_format, npz_headers

__all__ = ["ModelFileError", "check_format", "json_problem", "read_model", "save"]

#: Longest ``sizes`` array a model file may have (layers); the same limit for ``train``, saving and loading.
_MAX_LAYERS = limits.MAX_LAYERS
#: Largest ``meta`` member (a short JSON string) in bytes.
_MAX_META_BYTES = 1 << 16


class SavableNetwork(Protocol):
    """What a chapter-1/3 model file is written from (``_nets.dense.DenseNetwork`` is one); the file layer needs no
    network class, so it imports none."""

    @property
    def sizes(self) -> list[int]: ...

    @property
    def weights(self) -> Sequence[Array]: ...

    @property
    def biases(self) -> Sequence[Array]: ...

    @property
    def spec(self) -> DenseSpec: ...


FORMATS = (".npz", ".json")
#: Version of the files written now (1: cost and activation recorded).
FORMAT_VERSION = 1
#: Costs a model file may name.
KNOWN_COSTS = tuple(COSTS)
#: Deepest JSON nesting a model needs is 3 (list of matrices of rows); anything deeper is refused.
_MAX_JSON_DEPTH = 8


def _format_of(path: Path) -> str:
    if path.suffix.lower() not in FORMATS:
        raise ModelFileError(f"path must end in .npz or .json; got {str(path)!r}")
    return path.suffix.lower()


#: The costs the book's ``network2.load`` knows (it looks the name up in its module).
BOOK_JSON_COSTS = ("QuadraticCost", "CrossEntropyCost")
#: ``format`` of chapter-1/3 files.
FORMAT = "portable_nn"


def json_problem(net: SavableNetwork) -> str | None:
    """Why ``net`` cannot be saved as the book's network2 JSON, or ``None`` when it can.

    The book's ``network2.load`` builds a sigmoid network with the cost its
    file names (``getattr`` on its module) and ignores every other key, so a
    file of a tanh/ReLU or softmax network, or of a cost it does not have,
    would load as a different network.
    """
    spec = net.spec
    output = spec.output.name if not isinstance(spec.output, str) else spec.output
    cost = getattr(spec.cost, "name", type(spec.cost).__name__)
    if spec.hidden.name == "sigmoid" and output == "sigmoid" and cost in BOOK_JSON_COSTS:
        return None
    return (
        f"a network with {spec.hidden.name} hidden neurons, a {output} output layer and the {cost} cannot be "
        "saved as the book's network2 JSON: its network2.load reads only sigmoid networks with "
        f"{' or '.join(BOOK_JSON_COSTS)} and would load this file as a different network; save it as .npz instead"
    )


def _meta(net: SavableNetwork) -> dict[str, Any]:
    return {
        "format": FORMAT,
        "version": FORMAT_VERSION,
        "cost": net.spec.cost.name,
        "activation": net.spec.hidden.name,
    }


def save(net: SavableNetwork, path: str | os.PathLike[str]) -> Path:
    """Write ``net``'s sizes, parameters, cost and activation to ``path`` (``.npz`` or ``.json``).

    Refuses (``ValueError``) to write non-finite parameters: such a network has
    diverged and the file could not be loaded again; and a ``.json`` of a
    network the book's ``network2.load`` would read as another one
    (:func:`json_problem`), before anything is written.
    """
    path = Path(path)
    fmt = _format_of(path)
    problem = json_problem(net) if fmt == ".json" else None
    if problem is not None:
        raise ValueError(f"not saving {path}: {problem}")
    if len(net.sizes) > _MAX_LAYERS:
        raise ValueError(f"not saving {path}: {len(net.sizes)} layer sizes; a model file holds at most {_MAX_LAYERS}")
    weights = [host_view(w) for w in net.weights]  # read only: no copy
    biases = [host_view(b) for b in net.biases]
    for i, (w, b) in enumerate(zip(weights, biases)):
        if not (np.all(np.isfinite(w)) and np.all(np.isfinite(b))):
            raise ValueError(
                f"not saving {path}: layer {i} holds NaN or infinite values (training diverged; lower eta)"
            )
    if fmt == ".npz":
        arrays: dict[str, np.ndarray] = {"sizes": np.asarray(net.sizes, dtype=np.int64)}
        arrays.update({f"weights_{i}": w for i, w in enumerate(weights)})
        arrays.update({f"biases_{i}": b for i, b in enumerate(biases)})
        arrays["meta"] = np.asarray(json.dumps(_meta(net)))
        with atomic_write(path, "wb") as handle:
            np.savez(handle, allow_pickle=False, **arrays)
    else:
        data = {
            "sizes": list(net.sizes),
            "weights": [w.tolist() for w in weights],
            "biases": [b.tolist() for b in biases],
            **_meta(net),
        }
        with atomic_write(path, "w") as handle:
            json.dump(data, handle)
    return path


def _is_layer(name: str) -> bool:
    return _LAYER_MEMBER.fullmatch(name) is not None


def _npz_members(path: Path) -> dict[str, np.ndarray]:
    """Read a model's npz members, checking everything that decides memory use before allocating any of it.

    The npy header of every member is read first (shape and dtype only).
    Then: no member but ``sizes``, ``meta``, ``weights_i`` and ``biases_i``;
    ``sizes`` a short 1-D integer array, read and checked by
    :func:`check_sizes` (layer sizes >= 1, the parameter limit); every
    ``weights_i``/``biases_i`` declared with exactly the shape ``sizes``
    implies; each member's declared bytes consistent with its zip entry and
    with the file's size (a deflated member holds at most 1032 bytes per
    stored byte).  Only then are the arrays read.
    """
    try:
        with zipfile.ZipFile(path) as archive:
            infos = archive.infolist()
            headers = npz_headers(path, archive, lambda name: name in ("sizes", "meta") or _is_layer(name), "model")
            sizes = _read_sizes(path, archive, headers)
            _check_member_shapes(path, headers, sizes)
            arrays = {}
            for info in infos:
                with archive.open(info) as member:
                    arrays[info.filename[: -len(".npy")]] = np.lib.format.read_array(member, allow_pickle=False)
    except ModelFileError:
        raise
    except ZIP_ERRORS as exc:
        raise ModelFileError(f"{path}: not a readable .npz model ({type(exc).__name__}: {exc})") from exc
    return arrays


_LAYER_MEMBER = re.compile(r"(weights|biases)_(0|[1-9][0-9]{0,5})")


def _read_sizes(path: Path, archive: zipfile.ZipFile, headers: dict[str, Header]) -> list[int]:
    if "sizes" not in headers:
        raise ModelFileError(f"{path}: missing key 'sizes'")
    shape, dtype = headers["sizes"]
    if len(shape) != 1 or dtype.kind not in "iu" or not 2 <= shape[0] <= _MAX_LAYERS:
        raise ModelFileError(
            f"{path}: 'sizes' must be a 1-D integer array of 2 to {_MAX_LAYERS} layer sizes; got {dtype} {shape}"
        )
    if "meta" in headers:
        meta_shape, meta_dtype = headers["meta"]
        if meta_shape != () or meta_dtype.kind != "U" or meta_dtype.itemsize > _MAX_META_BYTES:
            raise ModelFileError(f"{path}: 'meta' must be one short JSON string; got {meta_dtype} {meta_shape}")
    with archive.open("sizes.npy") as member:
        sizes = np.lib.format.read_array(member, allow_pickle=False)
    return _check_declared_sizes(path, [int(s) for s in sizes])


def _check_member_shapes(path: Path, headers: dict[str, Header], sizes: list[int]) -> None:
    expected = {f"weights_{i}": (n_out, n_in) for i, (n_in, n_out) in enumerate(zip(sizes[:-1], sizes[1:]))}
    expected.update({f"biases_{i}": (n_out, 1) for i, n_out in enumerate(sizes[1:])})
    present = {name for name in headers if name not in ("sizes", "meta")}
    if present != set(expected):
        keys = sorted(headers)
        raise ModelFileError(f"{path}: keys {keys} do not match a {len(sizes)}-layer model {sorted(expected)}")
    for name, shape in expected.items():
        got = headers[name][0]
        if got != shape:
            kind, i = name.split("_")
            raise ModelFileError(f"{path}: {kind}[{i}] has shape {got}, expected {shape}")


def _read_npz(path: Path) -> tuple[list[np.ndarray], list[np.ndarray], dict[str, Any]]:
    contents = _npz_members(path)
    n = len(contents["sizes"]) - 1
    meta: dict[str, Any] = {}
    if "meta" in contents:
        try:
            meta = json.loads(str(contents.pop("meta")))
        except (TypeError, ValueError, RecursionError) as exc:
            raise ModelFileError(f"{path}: 'meta' is not JSON ({exc})") from exc
        if not isinstance(meta, dict):
            raise ModelFileError(f"{path}: 'meta' must be a JSON object")
    weights = [contents[f"weights_{i}"] for i in range(n)]
    biases = [contents[f"biases_{i}"] for i in range(n)]
    return weights, biases, meta


def _matrix(value: Any, path: Path, what: str) -> np.ndarray:
    """A JSON matrix -- a list of equally long lists of numbers -- as a float64 array.

    Only JSON numbers count: ``true``/``false``, strings, ``null`` and deeper
    lists are refused (NumPy would turn ``[true, 0.5]`` into ``[1.0, 0.5]``
    and ``["0.5"]`` into an array of strings).
    """
    if not isinstance(value, list) or not value or not all(isinstance(row, list) for row in value):
        raise ModelFileError(f"{path}: {what} must be a matrix: a non-empty list of rows of numbers")
    width = len(value[0])
    for r, row in enumerate(value):
        if len(row) != width:
            raise ModelFileError(f"{path}: {what} row {r} has {len(row)} numbers, row 0 has {width}")
        for c, number in enumerate(row):
            if type(number) not in (float, int):  # bool is a subclass of int: excluded here on purpose
                raise ModelFileError(
                    f"{path}: {what}[{r}][{c}] is {type(number).__name__} {number!r:.40}; expected a number"
                )
    try:
        return np.array(value, dtype=np.float64)
    except OverflowError as exc:
        raise ModelFileError(f"{path}: {what} holds an integer too large for a float") from exc


def _read_json(path: Path) -> tuple[list[np.ndarray], list[np.ndarray], dict[str, Any]]:
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ModelFileError(f"{path}: not a readable JSON model ({exc})") from exc
    if _bracket_depth(text) > _MAX_JSON_DEPTH:
        raise ModelFileError(f"{path}: JSON nested deeper than a model ever is ({_MAX_JSON_DEPTH} levels)")
    try:
        data = json.loads(text)
    except (ValueError, RecursionError) as exc:  # JSONDecodeError, or an integer with too many digits
        raise ModelFileError(f"{path}: not a readable JSON model ({exc})") from exc
    if not isinstance(data, dict) or not {"sizes", "weights", "biases"} <= set(data):
        raise ModelFileError(f"{path}: a network2 JSON model needs keys 'sizes', 'weights', 'biases'")
    sizes = data["sizes"]
    if not isinstance(sizes, list) or not all(type(s) is int for s in sizes):
        raise ModelFileError(f"{path}: 'sizes' must be a list of ints; got {sizes!r:.80}")
    sizes = _check_declared_sizes(path, sizes)
    for key in ("weights", "biases"):
        if not isinstance(data[key], list):
            raise ModelFileError(f"{path}: '{key}' must be nested lists of numbers (one matrix per layer)")
    for key in ("weights", "biases"):
        if len(data[key]) != len(sizes) - 1:
            raise ModelFileError(
                f"{path}: {len(sizes)} layers need {len(sizes) - 1} weight and bias arrays; "
                f"got {len(data['weights'])} and {len(data['biases'])}"
            )
    weights = [_matrix(w, path, f"weights[{i}]") for i, w in enumerate(data["weights"])]
    biases = [_matrix(b, path, f"biases[{i}]") for i, b in enumerate(data["biases"])]
    for i, w in enumerate(weights):
        expected = (sizes[i + 1], sizes[i])
        if w.shape != expected:
            raise ModelFileError(f"{path}: weights[{i}] has shape {w.shape}, expected {expected}")
    meta = {k: data[k] for k in ("format", "version", "cost", "activation") if k in data}
    return weights, biases, meta


def _bracket_depth(text: str) -> int:
    """Deepest ``[``/``{`` nesting of a JSON text, found without parsing it (strings skipped)."""
    depth = deepest = 0
    in_string = escaped = False
    for ch in text:
        if in_string:
            if escaped:
                escaped = False
            elif ch == "\\":
                escaped = True
            elif ch == '"':
                in_string = False
        elif ch == '"':
            in_string = True
        elif ch in "[{":
            depth += 1
            if depth > deepest:
                deepest = depth
                if deepest > _MAX_JSON_DEPTH:
                    return deepest
        elif ch in "]}":
            depth -= 1
    return deepest


def _check_declared_sizes(path: Path, sizes: list[int]) -> list[int]:
    """``sizes`` checked by :func:`check_sizes` (the parameter limit included), errors naming the file."""
    try:
        return check_sizes(sizes)
    except (TypeError, ValueError) as exc:
        raise ModelFileError(f"{path}: {exc}") from exc


def read_model(path: str | os.PathLike[str]) -> tuple[list[int], list[np.ndarray], list[np.ndarray], dict[str, Any]]:
    """Read and check a model file: ``(sizes, weights, biases, meta)`` as host data.

    ``meta`` holds ``cost`` (a name in :data:`KNOWN_COSTS`) and ``activation``.
    Raises :class:`ModelFileError` (naming the file) for anything malformed,
    ``FileNotFoundError`` when there is no such file.
    """
    path = Path(path)
    fmt = _format_of(path)
    if not path.exists():
        raise FileNotFoundError(f"model file not found: {path}")
    if not path.is_file():
        raise ModelFileError(f"{path}: not a regular file")
    check_file_size(path)
    weights, biases, meta = _read_npz(path) if fmt == ".npz" else _read_json(path)
    for i, array in enumerate([*weights, *biases]):
        if array.dtype.kind == "f" and array.dtype.itemsize < 4:
            name = f"weights[{i}]" if i < len(weights) else f"biases[{i - len(weights)}]"
            raise ModelFileError(f"{path}: {name} is {array.dtype}; expected float32 or float64")
    if len(biases) != len(weights):
        raise ModelFileError(
            f"{path}: {len(weights) + 1} layers need {len(weights)} weight and bias arrays; "
            f"got {len(weights)} and {len(biases)}"
        )
    try:
        sizes = check_layer_arrays(weights, biases)
    except (TypeError, ValueError) as exc:
        raise ModelFileError(f"{path}: {exc}") from exc
    check_format(path, meta, name=FORMAT, version=FORMAT_VERSION, required=False)
    cost = meta.get("cost", QuadraticCost.name)
    if not isinstance(cost, str) or cost not in KNOWN_COSTS:
        raise ModelFileError(f"{path}: unknown cost {cost!r}; expected one of {KNOWN_COSTS}")
    activation = meta.get("activation", "sigmoid")
    from .._math.activations import ACTIVATIONS

    if not isinstance(activation, str) or activation not in ACTIVATIONS:
        raise ModelFileError(f"{path}: unknown activation {activation!r}; expected one of {tuple(ACTIVATIONS)}")
    return sizes, weights, biases, {"cost": cost, "activation": activation}


def is_network3_file(path: Path) -> bool:
    """An ``.npz`` written by ``network3.Network.save`` (its members are ``layer{i}_w``/``layer{i}_b``)."""
    if path.suffix.lower() != ".npz" or not path.is_file():
        return False
    try:
        with zipfile.ZipFile(path) as archive:
            return "layer0_w.npy" in archive.namelist()
    except (OSError, zipfile.BadZipFile):
        return False  # read_model reports what is wrong with the file
