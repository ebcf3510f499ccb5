"""Test helpers: the backend grid, host-side comparison, Nielsen's reference code."""

from __future__ import annotations

import contextlib
import importlib
import importlib.util
import os
import tempfile
import threading
import tracemalloc
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import array_api_compat
import array_api_extra.testing as xpx_testing
import numpy as np
import pytest

from portable_nn import Backend, BackendUnavailableError, resolve_backend, to_numpy

#: Every backend the suite knows how to run on, in report order.
ALL_BACKENDS = ("numpy", "array_api_strict", "torch", "jax", "cupy")

#: Relative/absolute tolerance of a backend against the NumPy reference, per dtype.
#: About 1e5 ulps: room for a different BLAS summation order compounded over a
#: few dozen SGD steps, far below any real bug (those show up at 1e-2 and above).
PARITY_TOL = {"float64": 1e5 * np.finfo(np.float64).eps, "float32": 1e3 * np.finfo(np.float32).eps}


def requested_backends() -> tuple[str, ...]:
    """Backends named in ``PORTABLE_NN_BACKENDS`` (comma separated), default all.

    An entry is a backend name, optionally with a device: ``torch:cuda``,
    ``jax:gpu``, ``cupy:1``, ``torch:cpu`` (see :func:`device_for`).
    """
    raw = os.environ.get("PORTABLE_NN_BACKENDS", "").strip()
    if not raw:
        return ALL_BACKENDS
    names = tuple(n.strip() for n in raw.split(",") if n.strip())
    unknown = sorted({n for n in names if split_entry(n)[0] not in ALL_BACKENDS})
    if unknown:
        raise pytest.UsageError(f"PORTABLE_NN_BACKENDS: unknown backend(s) {unknown}; known: {ALL_BACKENDS}")
    return names


def split_entry(entry: str) -> tuple[str, str | None]:
    """``"torch:cuda"`` -> ``("torch", "cuda")``; ``"numpy"`` -> ``("numpy", None)``."""
    name, sep, device = entry.partition(":")
    return name, (device if sep else None)


def _named_device(name: str, device: str) -> Any:
    """The library's device object for ``device`` (``torch:cuda``, ``jax:gpu``, ``cupy:0``, ...).

    Raises :class:`BackendUnavailableError` when the library is missing or has no such device.
    """
    try:
        if name == "torch":
            torch = importlib.import_module("torch")
            return torch.empty(0, device=device).device  # "cuda" -> cuda:0; raises without CUDA
        if name == "jax":
            return importlib.import_module("jax").devices(device)[0]  # "gpu", "cpu"
        if name == "cupy":
            cupy = importlib.import_module("cupy")
            return cupy.cuda.Device(int(device))
        if name == "array_api_strict":
            return importlib.import_module("array_api_strict").Device(device)
    except (ImportError, RuntimeError, AssertionError, ValueError) as exc:
        raise BackendUnavailableError(f"{name}:{device}: no such device here ({type(exc).__name__}: {exc})") from exc
    if name == "numpy" and device == "cpu":
        return "cpu"
    raise BackendUnavailableError(f"{name}:{device}: devices are not supported for {name}")


def backends_required() -> bool:
    """``PORTABLE_NN_REQUIRE_BACKENDS=1``: a missing backend is an error, not a skip."""
    return os.environ.get("PORTABLE_NN_REQUIRE_BACKENDS", "") not in ("", "0")


def device_for(name: str) -> Any:
    """The device tests place ``name``'s arrays on (``None``: the library default).

    ``name`` may carry a device (``torch:cuda``); a device the machine lacks
    raises :class:`BackendUnavailableError`.
    """
    name, device = split_entry(name)
    if device is not None:
        return _named_device(name, device)
    if name == "array_api_strict" and importlib.util.find_spec("array_api_strict") is not None:
        # A non-default device: any array created without device=... lands on
        # CPU_DEVICE and mixing the two raises, so a misplaced array is caught.
        return importlib.import_module("array_api_strict").Device("device1")
    return None


def make_backend(name: str) -> Backend:
    """Resolve a backend (``name`` or ``name:device``) for a test, or skip (fail when backends are required)."""
    try:
        return resolve_backend(split_entry(name)[0], device_for(name))
    except BackendUnavailableError as exc:
        if backends_required():
            pytest.fail(f"backend {name!r} was required but is unavailable: {exc}", pytrace=False)
        pytest.skip(f"backend {name!r} unavailable: {exc}")


def x64_scope(name: Any, dtype: Any = None) -> contextlib.AbstractContextManager[None]:
    """JAX's 64-bit mode for a test on backend ``name`` in ``dtype``: on unless ``dtype`` is float32.

    The package never turns 64-bit mode on (a float64 JAX network needs the
    user's opt-in), so float64 JAX cases run inside ``jax.enable_x64(True)``
    (this thread, restored after) and float32 ones with it as the process has
    it (off): the path a float32 user takes.  Other backends: no-op.
    """
    if name != "jax" or str(dtype) == "float32" or importlib.util.find_spec("jax") is None:
        return contextlib.nullcontext()
    return importlib.import_module("jax").enable_x64(True)


def backend_dtype_grid(dtypes: tuple[str, ...] = ("float64", "float32")) -> Iterator[tuple[str, str]]:
    """``(backend name, dtype)`` pairs for parametrising a test."""
    for name in requested_backends():
        for dtype in dtypes:
            yield name, dtype


def assert_on_backend(array: Any, backend: Backend, shape: tuple[int, ...], dtype: str) -> None:
    """The array belongs to ``backend``'s namespace and device, with this shape and dtype."""
    namespace = array_api_compat.array_namespace(array)
    assert namespace is backend.xp, f"array is in {namespace.__name__}, expected {backend.xp.__name__}"
    assert array_api_compat.device(array) == backend.device, (
        f"array is on {array_api_compat.device(array)}, expected {backend.device}"
    )
    assert tuple(array.shape) == shape, f"shape {tuple(array.shape)} != {shape}"
    assert array.dtype == getattr(backend.xp, dtype), f"dtype {array.dtype} != {dtype}"


def assert_close(actual: Any, desired: np.ndarray, backend: Backend, dtype: str, tol: float | None = None) -> float:
    """Check namespace, device, shape and dtype of ``actual``, then its values, against a NumPy reference.

    The reference is moved to ``backend`` in ``dtype`` and compared with
    ``array_api_extra.testing.assert_close`` (namespace, shape, dtype and
    device first, then ``|actual - desired| <= tol + tol * |desired|``).
    Returns the largest absolute deviation, for reporting.
    """
    assert isinstance(desired, np.ndarray), "the reference must be a NumPy array"
    assert_on_backend(actual, backend, desired.shape, dtype)
    tol = PARITY_TOL[dtype] if tol is None else tol
    expected = backend.asarray(desired.astype(dtype), dtype=getattr(backend.xp, dtype))
    xpx_testing.assert_close(actual, expected, rtol=tol, atol=tol, xp=backend.xp)
    host = to_numpy(actual)
    return float(np.max(np.abs(host.astype(np.float64) - desired))) if desired.size else 0.0


# -- Nielsen's original per-example code, kept as the reference -----------------
def sigmoid(z: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-z))


def sigmoid_prime(z: np.ndarray) -> np.ndarray:
    return sigmoid(z) * (1 - sigmoid(z))


def nielsen_backprop(biases, weights, x, y):
    """``network.py``'s backprop for one sample ``x (n_in, 1)``, ``y (n_out, 1)``."""
    nabla_b = [np.zeros(b.shape) for b in biases]
    nabla_w = [np.zeros(w.shape) for w in weights]
    activation = x
    activations = [x]
    zs = []
    for b, w in zip(biases, weights):
        z = np.dot(w, activation) + b
        zs.append(z)
        activation = sigmoid(z)
        activations.append(activation)
    delta = (activations[-1] - y) * sigmoid_prime(zs[-1])
    nabla_b[-1] = delta
    nabla_w[-1] = np.dot(delta, activations[-2].transpose())
    for layer in range(2, len(biases) + 1):
        z = zs[-layer]
        delta = np.dot(weights[-layer + 1].transpose(), delta) * sigmoid_prime(z)
        nabla_b[-layer] = delta
        nabla_w[-layer] = np.dot(delta, activations[-layer - 1].transpose())
    return nabla_b, nabla_w


def nielsen_update_mini_batch(biases, weights, mini_batch, eta):
    """``network.py``'s update: loop over samples, then one step; returns new lists."""
    nabla_b = [np.zeros(b.shape) for b in biases]
    nabla_w = [np.zeros(w.shape) for w in weights]
    for x, y in mini_batch:
        delta_nabla_b, delta_nabla_w = nielsen_backprop(biases, weights, x, y)
        nabla_b = [nb + dnb for nb, dnb in zip(nabla_b, delta_nabla_b)]
        nabla_w = [nw + dnw for nw, dnw in zip(nabla_w, delta_nabla_w)]
    weights = [w - (eta / len(mini_batch)) * nw for w, nw in zip(weights, nabla_w)]
    biases = [b - (eta / len(mini_batch)) * nb for b, nb in zip(biases, nabla_b)]
    return biases, weights


def quadratic_cost(biases, weights, x, y) -> float:
    """``½ Σ‖a(x) − y‖²`` over the columns of ``x``, computed in NumPy float64."""
    a = x
    for b, w in zip(biases, weights):
        a = sigmoid(w @ a + b)
    return 0.5 * float(np.sum((a - y) ** 2))


def synthetic_problem(n: int, n_in: int = 6, n_out: int = 3, seed: int = 0):
    """A learnable toy problem: the label is the argmax of a fixed linear map.

    Returns ``(inputs (n, n_in) float64 in [0, 1], labels (n,) int64)``.
    """
    rng = np.random.default_rng(seed)
    inputs = rng.random((n, n_in))
    projection = rng.standard_normal((n_in, n_out))
    labels = np.argmax((inputs - 0.5) @ projection, axis=1).astype(np.int64)
    return inputs, labels


def one_hot_columns(labels: np.ndarray, n_out: int) -> np.ndarray:
    """``(n,)`` labels to an ``(n_out, n)`` one-hot column matrix."""
    out = np.zeros((n_out, labels.shape[0]))
    out[labels, np.arange(labels.shape[0])] = 1.0
    return out


def nielsen_pairs(inputs: np.ndarray, labels: np.ndarray, n_out: int, one_hot: bool = True):
    """Stacked data to Nielsen's list of ``(x (n_in, 1), y)`` pairs."""
    pairs = []
    for x, label in zip(inputs, labels):
        if one_hot:
            y = np.zeros((n_out, 1))
            y[label] = 1.0
        else:
            y = int(label)
        pairs.append((x.reshape(-1, 1), y))
    return pairs


# -- shared by the file-reader tests -----------------------------------------------------
def mutate_bytes(data: Any, content: bytes) -> bytes:
    """Flip, overwrite, delete, insert or truncate bytes of ``content`` a few times.

    ``data`` is Hypothesis's ``st.data()``.
    """
    from hypothesis import strategies as st

    buffer = bytearray(content)
    for _ in range(data.draw(st.integers(1, 4))):
        op = data.draw(st.sampled_from(["flip", "set", "delete", "insert", "truncate", "append"]))
        at = data.draw(st.integers(0, max(len(buffer) - 1, 0)))
        if op == "flip" and buffer:
            buffer[at] ^= 1 << data.draw(st.integers(0, 7))
        elif op == "set" and buffer:
            buffer[at] = data.draw(st.integers(0, 255))
        elif op == "delete" and buffer:
            del buffer[at : at + data.draw(st.integers(1, 8))]
        elif op == "insert":
            buffer[at:at] = data.draw(st.binary(min_size=1, max_size=8))
        elif op == "truncate":
            del buffer[at:]
        elif op == "append":
            buffer += data.draw(st.binary(min_size=1, max_size=16))
    return bytes(buffer)


def error_reading_fifo(reader: Callable[[Any], Any], fifo: Any) -> BaseException | None:
    """Call ``reader(fifo)`` in a thread; the exception it raised, or ``None`` if it blocked for 5 s."""
    outcome: list[BaseException] = []

    def run() -> None:
        try:
            reader(fifo)
        except Exception as exc:
            outcome.append(exc)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(5)
    if thread.is_alive():  # unblock the reader so the test process can finish
        with open(fifo, "wb"):
            pass
    return outcome[0] if outcome else None


def read_in_tmp(reader: Callable[[Path], Any], name: str, content: bytes) -> tuple[Any, BaseException | None, int]:
    """Write ``content`` as ``name`` in a fresh directory and read it with ``reader`` under tracemalloc.

    Returns ``(result or None, exception or None, peak traced bytes)`` and
    checks that the directory holds exactly the one file afterwards.
    """
    with tempfile.TemporaryDirectory() as directory:
        path = Path(directory) / name
        path.write_bytes(content)
        tracemalloc.start()
        result = error = None
        try:
            result = reader(path)
        except Exception as exc:  # checked by the caller
            error = exc
        finally:
            _, peak = tracemalloc.get_traced_memory()
            tracemalloc.stop()
        assert os.listdir(directory) == [name], "the reader left files behind"
        return result, error, peak


def sweep_record(state: str = "complete", epochs: int = 2, **params: Any) -> dict[str, Any]:
    """A valid line of a sweep's ``trials.jsonl`` for the setting ``params`` (``eta=0.5``), as the driver writes it."""
    from portable_nn.sweep import config_key, trial_config

    config = trial_config({"epochs": epochs, **params}, seed=0, train_size=500, validation_size=200, data="0" * 64)
    history = [
        {"epoch": e + 1, "correct": 100 + e, "n": 200, "accuracy": (100 + e) / 200, "seconds": 0.1}
        for e in range(epochs)  # numbered from 1
    ]
    last = history[-1]["accuracy"]
    return {
        "config": config,
        "params": dict(params),
        "key": config_key(config),
        "state": state,
        "history": history,
        "best_accuracy": last,
        "best_epoch": epochs,
        "final_accuracy": last,
        "seconds": 0.2,
        "worker": "tcp://127.0.0.1:1",
        "number": 0,
        "attempts": 1,
    }


# -- the conformance grid: (backend, device, dtype) triples -------------------------------------
#: Devices the grid runs each backend on, by label (``None``: the library's default device).
GRID_DEVICES: dict[str, tuple[str | None, ...]] = {"array_api_strict": (None, "device1")}


def namespace_device_dtype_combinations(
    dtypes: tuple[str, ...] = ("float64", "float32"),
) -> Iterator[tuple[str, str | None, str]]:
    """``(backend name, device label, dtype)`` for every requested backend, in the style of scikit-learn's
    ``yield_namespace_device_dtype_combinations``: array-api-strict on its default device and on
    ``Device("device1")``, every other backend on its default device (CuPy joins when requested)."""
    for name in requested_backends():
        for device in GRID_DEVICES.get(name, (None,)):
            for dtype in dtypes:
                yield name, device, dtype


def device_from_label(name: str, label: str | None) -> Any:
    """The device object a grid label stands for (``None``: the library's default)."""
    if label is None:
        return None
    if name == "array_api_strict":
        return importlib.import_module("array_api_strict").Device(label)
    return label


def make_backend_on(name: str, label: str | None) -> Backend:
    """:func:`make_backend` on the device a grid label names (an entry's own device, ``torch:cuda``, wins)."""
    if split_entry(name)[1] is not None:
        return make_backend(name)
    try:
        return resolve_backend(name, device_from_label(name, label))
    except BackendUnavailableError as exc:
        if backends_required():
            pytest.fail(f"backend {name!r} was required but is unavailable: {exc}", pytrace=False)
        pytest.skip(f"backend {name!r} unavailable: {exc}")


#: Where a ``(backend, dtype)`` grid case runs: JAX float64 inside ``jax.enable_x64(True)``, the rest as they
#: come (the global flag is never switched by a test).
dtype_scope = x64_scope
