"""The conformance grid (issue 14): every documented form, on every backend, through every public entry point.

Cases are generated, not listed: ``(backend, device, dtype)`` triples from
:func:`helpers.namespace_device_dtype_combinations` (numpy, array-api-strict on
its default device and on ``Device("device1")``, torch, JAX; CuPy joins when
``PORTABLE_NN_BACKENDS`` names it) × input forms × the public entry points of
the three networks.  Each case is compared with the NumPy float64 network on
the host: values within ``PARITY_TOL[dtype]``, counts exactly, and the
namespace, device and dtype of every returned or stored array.  Refusals must
be ``TypeError``/``ValueError`` naming the argument, and leave the parameters
as they were.

By default (``tests-cpu``) the grid runs a representative product: every form
on every triple for the entry points that only evaluate, and for the training
entry points each (triple, form) pair once, the entry point rotating so that
every pair of the three factors is covered.  ``PORTABLE_NN_CONFORMANCE_FULL=1``
also collects the rest of the product, marked ``conformance_full``
(``-m conformance_full`` runs only those).

The data is tiny (20 samples, a 6-5-3 network) and exactly representable in
float16, bfloat16 and float32 (``k/256``), so a conversion is never the
reason for a difference.
"""

from __future__ import annotations

import functools
import math
import os
import re
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from helpers import (
    PARITY_TOL,
    assert_close,
    dtype_scope,
    make_backend_on,
    namespace_device_dtype_combinations,
    nielsen_pairs,
    requested_backends,
)

import portable_nn
from portable_nn import BookPairs, Dataset, Network, network2, network3, resolve_backend, to_numpy
from portable_nn.network3 import FullyConnectedLayer, SoftmaxLayer

FULL = os.environ.get("PORTABLE_NN_CONFORMANCE_FULL", "") not in ("", "0")

N, N_IN, N_HIDDEN, N_OUT = 20, 6, 5, 3
SIZES = [N_IN, N_HIDDEN, N_OUT]
_RNG = np.random.default_rng(14)
RAW = _RNG.integers(0, 256, size=(N, N_IN), dtype=np.uint8)
INPUTS = RAW / 256.0  # exact in float16, bfloat16 and float32
LABELS = _RNG.integers(0, N_OUT, size=N).astype(np.int64)
ONE_HOT = np.eye(N_OUT)[LABELS]
#: Replacement parameters for the "replaced parameters" forms, exact in float32.
#: Replacement parameters, exactly representable in float16 (the "other float" of a float32 JAX case), so every
#: float form carries the same values and a difference is the package's, not the rounding's.
NEW_W = [_RNG.standard_normal((o, i)).astype(np.float16).astype(np.float64) for i, o in zip(SIZES[:-1], SIZES[1:])]
NEW_B = [_RNG.standard_normal((o, 1)).astype(np.float16).astype(np.float64) for o in SIZES[1:]]

TRIPLES = list(namespace_device_dtype_combinations())
HALF = {"float16": ("numpy", "torch", "jax", "cupy"), "bfloat16": ("torch", "jax")}


# -- building arrays of a backend -----------------------------------------------------------------------
def on(backend: Any, array: np.ndarray, dtype: str | None = None) -> Any:
    """``array`` on ``backend`` (in ``dtype``, or the library's own choice for ``array``'s dtype)."""
    return backend.asarray(array, dtype=None if dtype is None else getattr(backend.xp, dtype))


def foreign_name(name: str) -> str | None:
    """Another requested backend whose arrays a ``name`` network must convert (torch, else array-api-strict)."""
    return next(
        (other for other in ("torch", "array_api_strict") if other != name and other in requested_backends()), None
    )


@functools.cache
def _foreign_backend(name: str) -> Any:
    return resolve_backend(foreign_name(name))


def _default_device(backend: Any) -> Any:
    """The same library on its default device (array-api-strict's ``CPU_DEVICE`` for a ``device1`` case)."""
    return resolve_backend(backend.name)


@dataclass(frozen=True)
class Grid:
    """What a form builder gets: the case's backend, its name and device label, the network's dtype."""

    backend: Any
    name: str
    label: str | None
    dtype: str


def _columns(b: Any, dtype: str, array: np.ndarray) -> list[Any]:
    return [on(b, row.reshape(-1, 1).copy(), dtype) for row in array]


class _Carrier(tuple):  # what network3.load_data_shared returns (issue 16): (x, y) with .dataset
    dataset: Dataset


def _carrier(inputs: Any, labels: Any) -> _Carrier:
    carrier = _Carrier((inputs, labels))
    carrier.dataset = Dataset(inputs, labels)
    return carrier


def _interleaved(g: Grid) -> tuple[Any, Any]:
    """``2N`` rows whose even rows are the data (odd rows: junk), on the case's backend."""
    inputs = np.full((2 * N, N_IN), 7.0)
    inputs[::2] = INPUTS
    labels = np.zeros(2 * N, dtype=np.int64)
    labels[::2] = LABELS
    return on(g.backend, inputs, g.dtype), on(g.backend, labels)


def _other_float(dtype: str, name: str = "") -> str:
    """A float dtype other than the network's: float16 for a float32 JAX case (64-bit mode is off there, so a
    float64 array cannot exist), else the other of float32/float64."""
    if dtype == "float64":
        return "float32"
    return "float16" if name == "jax" else "float64"


def _negative_stride(array: np.ndarray) -> np.ndarray:
    view = array[::-1].copy()[::-1]
    assert view.strides[0] < 0
    return view


def _requires_grad(g: Grid) -> Any:
    tensor = on(g.backend, INPUTS, g.dtype)
    tensor.requires_grad_(True)
    return tensor


@dataclass(frozen=True)
class Form:
    """One way to pass the data set ``(INPUTS, LABELS)``."""

    build: Callable[[Grid], Any]
    available: Callable[[str, str | None], bool] = lambda name, label: True


def _half(kind: str) -> Form:
    return Form(lambda g: (on(g.backend, INPUTS, kind), on(g.backend, LABELS)), lambda n, _: n in HALF[kind])


FORMS: dict[str, Form] = {
    "pairs/host/one-hot": Form(lambda g: nielsen_pairs(INPUTS, LABELS, N_OUT)),
    "pairs/host/int": Form(lambda g: nielsen_pairs(INPUTS, LABELS, N_OUT, one_hot=False)),
    "pairs/backend/one-hot": Form(
        lambda g: list(zip(_columns(g.backend, g.dtype, INPUTS), _columns(g.backend, g.dtype, ONE_HOT)))
    ),
    "pairs/backend/int": Form(lambda g: list(zip(_columns(g.backend, g.dtype, INPUTS), map(int, LABELS)))),
    "pairs/backend/0-d": Form(
        lambda g: [(x, on(g.backend, np.asarray(y))) for x, y in zip(_columns(g.backend, g.dtype, INPUTS), LABELS)]
    ),
    "zip/backend/one-hot": Form(
        lambda g: zip(_columns(g.backend, g.dtype, INPUTS), _columns(g.backend, g.dtype, ONE_HOT))
    ),
    "pairs/foreign/one-hot": Form(
        lambda g: list(zip(_columns(_foreign_backend(g.name), g.dtype, INPUTS), _columns(g.backend, g.dtype, ONE_HOT))),
        lambda n, _: foreign_name(n) is not None,
    ),
    "stacked/host/int": Form(lambda g: (INPUTS, LABELS)),
    "stacked/host/one-hot": Form(lambda g: (INPUTS, ONE_HOT)),
    "stacked/host/negative-stride": Form(lambda g: (_negative_stride(INPUTS), _negative_stride(LABELS))),
    "stacked/backend/int": Form(lambda g: (on(g.backend, INPUTS, g.dtype), on(g.backend, LABELS))),
    "stacked/backend/one-hot": Form(lambda g: (on(g.backend, INPUTS, g.dtype), on(g.backend, ONE_HOT, g.dtype))),
    "stacked/backend/other-float": Form(
        lambda g: (on(g.backend, INPUTS, _other_float(g.dtype, g.name)), on(g.backend, LABELS))
    ),
    "stacked/backend/float16": _half("float16"),
    "stacked/backend/bfloat16": _half("bfloat16"),
    "stacked/backend/requires-grad": Form(
        lambda g: (_requires_grad(g), on(g.backend, LABELS)), lambda n, _: n == "torch"
    ),
    "stacked/foreign": Form(
        lambda g: (on(_foreign_backend(g.name), INPUTS, g.dtype), on(_foreign_backend(g.name), LABELS)),
        lambda n, _: foreign_name(n) is not None,
    ),
    "stacked/default-device": Form(
        lambda g: (on(_default_device(g.backend), INPUTS, g.dtype), on(_default_device(g.backend), LABELS)),
        lambda n, label: label is not None,
    ),
    "dataset/host": Form(lambda g: Dataset(INPUTS, LABELS)),
    "dataset/host/uint8": Form(lambda g: Dataset(RAW, LABELS, divisor=256.0)),
    "dataset/host/mask": Form(
        lambda g: Dataset(*_interleaved(Grid(resolve_backend("numpy"), "numpy", None, g.dtype)))[
            np.arange(2 * N) % 2 == 0
        ]
    ),
    "dataset/backend": Form(lambda g: Dataset(on(g.backend, INPUTS, g.dtype), on(g.backend, LABELS))),
    "dataset/backend/one-hot": Form(lambda g: Dataset(on(g.backend, INPUTS, g.dtype), on(g.backend, ONE_HOT, g.dtype))),
    "dataset/backend/uint8": Form(lambda g: Dataset(on(g.backend, RAW), on(g.backend, LABELS), divisor=256.0)),
    "dataset/backend/sliced": Form(lambda g: Dataset(*_interleaved(g))[::2]),
    "dataset/backend/index-array": Form(lambda g: Dataset(*_interleaved(g))[np.arange(0, 2 * N, 2)]),
    "dataset/foreign": Form(
        lambda g: Dataset(on(_foreign_backend(g.name), INPUTS, g.dtype), on(_foreign_backend(g.name), LABELS)),
        lambda n, _: foreign_name(n) is not None,
    ),
    "dataset/default-device": Form(
        lambda g: Dataset(on(_default_device(g.backend), RAW), on(_default_device(g.backend), LABELS), divisor=256.0),
        lambda n, label: label is not None,
    ),
    "book-pairs": Form(lambda g: BookPairs(nielsen_pairs(INPUTS, LABELS, N_OUT), Dataset(INPUTS, ONE_HOT))),
    "carrier/backend": Form(lambda g: _carrier(on(g.backend, INPUTS, g.dtype), on(g.backend, LABELS))),
}


# -- the networks and their entry points ----------------------------------------------------------------
def _network(kind: str, backend: Any, dtype: str) -> Any:
    if kind == "network":
        return Network(SIZES, backend, dtype=dtype, seed=3)
    if kind == "network2":
        return network2.Network(SIZES, xp=backend, dtype=dtype, seed=3)
    layers = [FullyConnectedLayer(N_IN, N_HIDDEN), SoftmaxLayer(N_HIDDEN, N_OUT)]
    return network3.Network(layers, 5, xp=backend, dtype=dtype, seed=3)


def parameters(net: Any) -> list[Any]:
    """Every stored array of a network: ``weights + biases``, or network3's ``w, b`` per layer."""
    if isinstance(net, network3.Network):
        return [p for layer in net.layers for p in (layer.w, layer.b)]
    return [*net.weights, *net.biases]


def _network2_sgd(net: Any, make: Callable[[], Any]) -> Any:
    lists = net.SGD(make(), 1, 5, 0.5, lmbda=1.0, evaluation_data=make(), monitor_evaluation_cost=True,
                    monitor_evaluation_accuracy=True, monitor_training_cost=True, monitor_training_accuracy=True,
                    quiet=True)  # fmt: skip
    return [list(values) for values in lists]


def _network3_sgd(net: Any, make: Callable[[], Any]) -> Any:
    return [(r.correct, r.test_correct) for r in net.SGD(make(), 1, 5, 0.1, make(), make(), quiet=True)]


@dataclass(frozen=True)
class Entry:
    """A public entry point taking data: the network kind, the call, the argument its errors name."""

    kind: str
    call: Callable[[Any, Callable[[], Any]], Any]
    argument: str
    trains: bool


ENTRIES: dict[str, Entry] = {
    "network.evaluate": Entry("network", lambda net, make: net.evaluate(make()), "test_data", False),
    "network2.accuracy": Entry("network2", lambda net, make: net.accuracy(make()), "data", False),
    "network2.total_cost": Entry("network2", lambda net, make: net.total_cost(make(), 1.0), "data", False),
    "network3.accuracy": Entry("network3", lambda net, make: net.accuracy(make()), "data", False),
    "network3.cost": Entry("network3", lambda net, make: net.cost(make(), 1.0), "data", False),
    "network.update_mini_batch": Entry(
        "network", lambda net, make: net.update_mini_batch(make(), 3.0), "mini_batch", True
    ),
    "network.SGD": Entry(
        "network",
        lambda net, make: [r.correct for r in net.SGD(make(), 1, 5, 3.0, test_data=make(), quiet=True)],
        "training_data",
        True,
    ),
    "network2.update_mini_batch": Entry(
        "network2", lambda net, make: net.update_mini_batch(make(), 0.5, 1.0, N), "mini_batch", True
    ),
    "network2.SGD": Entry("network2", _network2_sgd, "training_data", True),
    "network3.SGD": Entry("network3", _network3_sgd, "training_data", True),
}
TRAINING = [name for name, entry in ENTRIES.items() if entry.trains]


@functools.cache
def reference(kind: str, what: str, replaced: bool = False) -> tuple[Any, tuple[np.ndarray, ...]]:
    """``(returned value, host parameters afterwards)`` of the NumPy float64 network on ``(INPUTS, LABELS)``."""
    net = _network(kind, resolve_backend("numpy"), "float64")
    if replaced:
        _replace(net, False, lambda a: a)
    value = ENTRIES[what].call(net, lambda: (INPUTS, LABELS)) if what in ENTRIES else None
    return value, tuple(to_numpy(p).copy() for p in parameters(net))


def assert_same(value: Any, expected: Any, dtype: str, where: str) -> None:
    """Ints (counts) exactly; floats within the dtype's tolerance; lists element by element."""
    if isinstance(expected, (list, tuple)):
        assert isinstance(value, (list, tuple)) and len(value) == len(expected), f"{where}: {value!r} != {expected!r}"
        for i, (v, e) in enumerate(zip(value, expected)):
            assert_same(v, e, dtype, f"{where}[{i}]")
    elif isinstance(expected, float):
        assert isinstance(value, float), f"{where}: {type(value).__name__} returned, expected a Python float"
        tol = PARITY_TOL[dtype]
        assert math.isclose(value, expected, rel_tol=tol, abs_tol=tol), f"{where}: {value!r} != {expected!r}"
    else:
        assert type(value) is type(expected) and value == expected, f"{where}: {value!r} != {expected!r}"


def assert_parameters(net: Any, expected: tuple[np.ndarray, ...], backend: Any, dtype: str) -> None:
    """Every stored array is the network's own (namespace, device, dtype, no autograd) and equals the reference."""
    stored = parameters(net)
    assert len(stored) == len(expected)
    for array, want in zip(stored, expected):
        assert_close(array, want, backend, dtype)
        assert not getattr(array, "requires_grad", False), "a parameter carries torch's autograd state"
    if not isinstance(net, network3.Network):
        assert type(net.weights).__name__ == "Parameters" and type(net.biases).__name__ == "Parameters"


def _rotating(t: int, f: int) -> str:
    return TRAINING[(t + f) % len(TRAINING)]


def _triple_id(name: str, label: str | None, dtype: str) -> str:
    return f"{name}{'@' + label if label else ''}-{dtype}"


def _product(axis: dict[str, Any], entries: list[str]) -> Iterator[Any]:
    """``(triple, form, entry)`` cases: the representative product, plus the rest when ``FULL``."""
    for t, (name, label, dtype) in enumerate(TRIPLES):
        for f, (form, spec) in enumerate(axis.items()):
            if not spec.available(name, label):
                continue
            for entry in entries:
                representative = entry not in TRAINING or entry == _rotating(t, f)
                if representative or FULL:
                    marks = () if representative else (pytest.mark.conformance_full,)
                    yield pytest.param(
                        name,
                        label,
                        dtype,
                        form,
                        entry,
                        marks=marks,
                        id=f"{_triple_id(name, label, dtype)}-{form}-{entry}",
                    )


# -- data forms × data entry points -----------------------------------------------------------------------
@pytest.mark.parametrize(("name", "label", "dtype", "form", "what"), list(_product(FORMS, list(ENTRIES))))
def test_data_forms(name: str, label: str | None, dtype: str, form: str, what: str) -> None:
    entry = ENTRIES[what]
    expected_value, expected_parameters = reference(entry.kind, what)
    with dtype_scope(name, dtype):
        backend = make_backend_on(name, label)
        grid = Grid(backend, name, label, dtype)
        net = _network(entry.kind, backend, dtype)
        value = entry.call(net, lambda: FORMS[form].build(grid))
        assert_parameters(net, expected_parameters, backend, dtype)
    assert_same(value, expected_value, dtype, f"{what}({form})")


# -- array inputs: feedforward --------------------------------------------------------------------------
ARRAYS: dict[str, Form] = {
    "host/float64": Form(lambda g: INPUTS),
    "host/uint8": Form(lambda g: RAW),
    "host/negative-stride": Form(lambda g: _negative_stride(INPUTS)),
    "backend": Form(lambda g: on(g.backend, INPUTS, g.dtype)),
    "backend/other-float": Form(lambda g: on(g.backend, INPUTS, _other_float(g.dtype, g.name))),
    "backend/float16": Form(lambda g: on(g.backend, INPUTS, "float16"), lambda n, _: n in HALF["float16"]),
    "backend/bfloat16": Form(lambda g: on(g.backend, INPUTS, "bfloat16"), lambda n, _: n in HALF["bfloat16"]),
    "backend/requires-grad": Form(_requires_grad, lambda n, _: n == "torch"),
    "foreign": Form(lambda g: on(_foreign_backend(g.name), INPUTS, g.dtype), lambda n, _: foreign_name(n) is not None),
    "default-device": Form(
        lambda g: on(_default_device(g.backend), INPUTS, g.dtype), lambda n, label: label is not None
    ),
}
KINDS = ["network", "network2", "network3"]


@pytest.mark.parametrize(("name", "label", "dtype", "form", "kind"), list(_product(ARRAYS, KINDS)))
def test_feedforward_inputs(name: str, label: str | None, dtype: str, form: str, kind: str) -> None:
    """``feedforward`` of every array form: ``(n_in, m)`` columns (chapters 1, 3) or ``(n, n_in)`` rows (chapter 6)."""
    host = RAW.astype(np.float64) if form == "host/uint8" else INPUTS
    rows = kind == "network3"
    reference_net = _network(kind, resolve_backend("numpy"), "float64")
    expected = to_numpy(reference_net.feedforward(host if rows else host.T))
    with dtype_scope(name, dtype):
        backend = make_backend_on(name, label)
        net = _network(kind, backend, dtype)
        array = ARRAYS[form].build(Grid(backend, name, label, dtype))
        out = net.feedforward(array if rows else array.T)
        assert_close(out, expected, backend, dtype)
        assert not getattr(out, "requires_grad", False)


# -- replaced parameters ---------------------------------------------------------------------------------
@dataclass(frozen=True)
class ParameterForm:
    """One way to assign ``NEW_W``/``NEW_B``: the array made from each host array, element or whole list."""

    make: Callable[[Grid, np.ndarray], Any]
    whole_list: bool = False
    available: Callable[[str, str | None], bool] = lambda name, label: True


def _with_grad(g: Grid, host: np.ndarray) -> Any:
    return on(g.backend, host, g.dtype).requires_grad_(True)


PARAMETER_FORMS: dict[str, ParameterForm] = {
    "element/host": ParameterForm(lambda g, host: host),
    "list/host": ParameterForm(lambda g, host: host, whole_list=True),
    "element/backend": ParameterForm(lambda g, host: on(g.backend, host, g.dtype)),
    "list/backend": ParameterForm(lambda g, host: on(g.backend, host, g.dtype), whole_list=True),
    "element/other-float": ParameterForm(lambda g, host: on(g.backend, host, _other_float(g.dtype, g.name))),
    "element/requires-grad": ParameterForm(_with_grad, available=lambda n, _: n == "torch"),
    "element/foreign": ParameterForm(
        lambda g, host: on(_foreign_backend(g.name), host, g.dtype), available=lambda n, _: foreign_name(n) is not None
    ),
    "element/default-device": ParameterForm(
        lambda g, host: on(_default_device(g.backend), host, g.dtype), available=lambda n, label: label is not None
    ),
}


def _replace(net: Any, whole_list: bool, make: Callable[[np.ndarray], Any]) -> None:
    """Put ``NEW_W``/``NEW_B`` into ``net`` (network3: through each layer's ``w`` ``(n_in, n_out)`` and ``b``)."""
    if isinstance(net, network3.Network):
        for layer, w, b in zip(net.layers, NEW_W, NEW_B):
            layer.w, layer.b = make(w.T.copy()), make(b[:, 0].copy())
    elif whole_list:
        net.weights = [make(w) for w in NEW_W]
        net.biases = [make(b) for b in NEW_B]
    else:
        for i, (w, b) in enumerate(zip(NEW_W, NEW_B)):
            net.weights[i] = make(w)
            net.biases[i] = make(b)


#: Entry points without data: the network kind each runs on.
NO_DATA = {"network.feedforward": "network", "network.save/load": "network", "network2.save/load": "network2",
           "network3.feedforward": "network3", "network3.save/load": "network3"}  # fmt: skip
PARAMETER_ENTRIES = [*NO_DATA, *ENTRIES]


def _save_and_load(net: Any, backend: Any, dtype: str) -> Any:
    """The network after a round trip through a ``.npz`` file (whose float arrays must be of ``dtype``)."""
    with tempfile.TemporaryDirectory() as directory:
        path = net.save(Path(directory) / "model.npz")
        with np.load(path) as stored:
            floats = [stored[key].dtype for key in stored.files if stored[key].dtype.kind == "f"]
        assert floats and all(f == np.dtype(dtype) for f in floats), f"the file holds {floats}, expected {dtype}"
        load = network3.load if isinstance(net, network3.Network) else portable_nn.load
        return load(path, backend, device=backend.device)


@pytest.mark.parametrize(("name", "label", "dtype", "form", "what"), list(_product(PARAMETER_FORMS, PARAMETER_ENTRIES)))
def test_replaced_parameters(name: str, label: str | None, dtype: str, form: str, what: str) -> None:
    """Assigned ``weights``/``biases`` (``w``/``b``) are converted: the math and the files see the network's own."""
    kind = NO_DATA.get(what) or ENTRIES[what].kind
    expected_value, expected_parameters = reference(kind, what, replaced=True)
    with dtype_scope(name, dtype):
        backend = make_backend_on(name, label)
        grid = Grid(backend, name, label, dtype)
        net = _network(kind, backend, dtype)
        spec = PARAMETER_FORMS[form]
        _replace(net, spec.whole_list, lambda host: spec.make(grid, host))
        assert_parameters(net, expected_parameters if what in NO_DATA else reference(kind, "", True)[1], backend, dtype)
        if what.endswith("feedforward"):
            inputs = INPUTS if kind == "network3" else INPUTS.T
            expected_out = _network(kind, resolve_backend("numpy"), "float64")
            _replace(expected_out, False, lambda a: a)
            assert_close(net.feedforward(inputs), to_numpy(expected_out.feedforward(inputs)), backend, dtype)
            value = None
        elif what.endswith("save/load"):
            net = _save_and_load(net, backend, dtype)
            value = None
        else:
            value = ENTRIES[what].call(net, lambda: (INPUTS, LABELS))
        assert_parameters(net, expected_parameters, backend, dtype)
    assert_same(value, expected_value, dtype, f"{what} after {form}")


# -- refusals --------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Refusal:
    """Bad data: what to build, the error, and the message (``{arg}`` is the entry point's argument)."""

    build: Callable[[Grid], Any]
    error: type[Exception]
    message: str
    available: Callable[[str, str | None], bool] = lambda name, label: True


def _with_nan(g: Grid) -> tuple[Any, Any]:
    inputs = INPUTS.copy()
    inputs[3, 2] = np.nan
    return on(g.backend, inputs, g.dtype), on(g.backend, LABELS)


REFUSALS: dict[str, Refusal] = {
    "bool inputs": Refusal(
        lambda g: (on(g.backend, INPUTS > 0.5), on(g.backend, LABELS)), TypeError, "{arg}: inputs must be real numbers"
    ),
    "complex inputs": Refusal(lambda g: (INPUTS + 1j, LABELS), TypeError, "{arg}: inputs must be real numbers"),
    "labels out of range": Refusal(
        lambda g: (on(g.backend, INPUTS, g.dtype), on(g.backend, LABELS + N_OUT)), ValueError, "{arg}: labels must be"
    ),
    "NaN inputs": Refusal(_with_nan, ValueError, "{arg}: inputs must be finite"),
    "wrong width": Refusal(
        lambda g: (on(g.backend, np.ones((N, N_IN + 1)), g.dtype), on(g.backend, LABELS)),
        ValueError,
        r"{arg}: inputs must have shape \(n, 6\)",
    ),
    "bool y in pairs": Refusal(
        lambda g: [(x, True) for x in _columns(g.backend, g.dtype, INPUTS)], TypeError, "{arg}: y must be"
    ),
    "pairs of bool x": Refusal(
        lambda g: [(on(g.backend, row.reshape(-1, 1) > 0.5), 0) for row in INPUTS], TypeError, r"{arg}\[0\]: x must be"
    ),
    "not data": Refusal(lambda g: 42, TypeError, "{arg} must be a list of"),
}


@pytest.mark.parametrize(("name", "label", "dtype", "form", "what"), list(_product(REFUSALS, list(ENTRIES))))
def test_refusals_name_the_argument(name: str, label: str | None, dtype: str, form: str, what: str) -> None:
    entry, refusal = ENTRIES[what], REFUSALS[form]
    with dtype_scope(name, dtype):
        backend = make_backend_on(name, label)
        net = _network(entry.kind, backend, dtype)
        before = [to_numpy(p).copy() for p in parameters(net)]
        with pytest.raises(refusal.error, match=refusal.message.format(arg=re.escape(entry.argument))):
            entry.call(net, lambda: refusal.build(Grid(backend, name, label, dtype)))
        for array, want in zip(parameters(net), before):
            np.testing.assert_array_equal(to_numpy(array), want)


PARAMETER_REFUSALS: dict[str, tuple[Callable[[Any, Grid], None], type[Exception], str]] = {
    "wrong shape": (lambda net, g: net.weights.__setitem__(0, on(g.backend, NEW_W[0].T, g.dtype)), ValueError,
                    r"weights\[0\] must have shape \(5, 6\); got \(6, 5\)"),
    "bool": (lambda net, g: net.biases.__setitem__(1, on(g.backend, NEW_B[1] > 0)), TypeError,
             r"biases\[1\] must be real numbers"),
    "NaN": (lambda net, g: net.weights.__setitem__(1, on(g.backend, NEW_W[1] * np.nan, g.dtype)), ValueError,
            r"weights\[1\] holds NaN"),
    "not an array": (lambda net, g: net.weights.__setitem__(0, NEW_W[0].tolist()), TypeError,
                     r"weights\[0\] must be an array"),
    "list too short": (lambda net, g: setattr(net, "biases", [NEW_B[0]]), ValueError,
                       r"biases must be a list of 2 arrays"),
    "append": (lambda net, g: net.weights.append(NEW_W[0]), TypeError, r"weights holds one array per layer"),
    "bad element in a list": (lambda net, g: setattr(net, "weights", [NEW_W[0], NEW_W[0]]), ValueError,
                              r"weights\[1\] must have shape \(3, 5\)"),
}  # fmt: skip


@pytest.mark.parametrize("kind", ["network", "network2"])
@pytest.mark.parametrize("what", list(PARAMETER_REFUSALS))
@pytest.mark.parametrize(("name", "label", "dtype"), TRIPLES, ids=[_triple_id(*t) for t in TRIPLES])
def test_parameter_refusals_name_the_element(name: str, label: str | None, dtype: str, what: str, kind: str) -> None:
    assign, error, message = PARAMETER_REFUSALS[what]
    with dtype_scope(name, dtype):
        backend = make_backend_on(name, label)
        net = _network(kind, backend, dtype)
        before = [to_numpy(p).copy() for p in parameters(net)]
        with pytest.raises(error, match=message):
            assign(net, Grid(backend, name, label, dtype))
        for array, want in zip(parameters(net), before):
            np.testing.assert_array_equal(to_numpy(array), want)
