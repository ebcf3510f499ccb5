"""Choosing an array backend: one call returns the namespace and the device.

The training math in :mod:`portable_nn.network` only ever sees the object
returned by :func:`resolve_backend`: a standard-conforming namespace (wrapped by
``array-api-compat`` where the library needs it) and the device its arrays
live on.  Everything library-specific -- imports, "is a GPU really usable",
how to copy an array back to the host -- is kept in this module.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from types import ModuleType
from typing import Any, cast

import array_api_compat
import numpy as np

#: Backend names accepted by ``Network(xp=...)`` and ``--backend``.
KNOWN_BACKENDS = ("numpy", "cupy", "torch", "array_api_strict", "jax")

#: What to run when a backend's library is missing.
INSTALL_HINTS = {
    "numpy": "pip install numpy",
    "cupy": 'pip install "portable-nn[cuda12]"   (or "portable-nn[cuda13]" for a CUDA 13 driver)',
    "torch": 'pip install "portable-nn[torch]"',
    "array_api_strict": 'pip install "portable-nn[strict]"',
    "jax": 'pip install "portable-nn[jax]"',
}


class BackendUnavailableError(ImportError):
    """The requested array library is not installed, or cannot run here."""


@dataclass(frozen=True)
class Backend:
    """An array namespace together with the device its arrays are placed on.

    Attributes
    ----------
    name:
        One of :data:`KNOWN_BACKENDS`, or the namespace's module name.
    xp:
        The standard-conforming namespace (``array_api_compat.numpy``,
        ``array_api_compat.cupy``, ``array_api_compat.torch``,
        ``array_api_strict``, ...).
    device:
        The device object arrays are created on (``"cpu"``, a
        ``cupy.cuda.Device``, ``torch.device``, ``array_api_strict.Device``).
    """

    name: str
    xp: Any
    device: Any

    def asarray(self, array: Any, dtype: Any = None) -> Any:
        """Copy/convert host data (NumPy array, list) onto this backend's device."""
        if self.name == "torch" and isinstance(array, np.ndarray) and not array.flags.writeable:
            array = array.copy()  # torch would share the read-only buffer and warn
        return self.xp.asarray(array, dtype=dtype, device=self.device)

    def dtype(self, name: str) -> Any:
        """The namespace's dtype object for ``"float32"`` / ``"float64"`` / ``"int64"``."""
        return getattr(self.xp, name)

    @property
    def index_dtype(self) -> Any:
        """The namespace's default indexing dtype on this device, for labels, orders and counts.

        ``int64`` everywhere except JAX with 64-bit mode off, where it is
        ``int32`` (asking JAX for int64 there would warn and truncate).  Read
        when needed, so it follows ``jax_enable_x64`` as it is at that moment.
        """
        info = getattr(self.xp, "__array_namespace_info__", None)
        if info is None:  # pragma: no cover - every supported namespace has it
            return self.xp.int64
        return info().default_dtypes(device=self.device)["indexing"]

    def owns(self, array: Any) -> bool:
        """True when ``array`` already belongs to this namespace and device."""
        try:
            namespace = array_api_compat.array_namespace(array)
        except TypeError:
            return False
        return namespace is self.xp and array_api_compat.device(array) == self.device

    def describe(self) -> str:
        """Human-readable ``name (device)`` for logs."""
        return f"{self.name} ({device_name(self)})"


def _import(module: str, backend: str | None = None) -> ModuleType:
    """Import ``module`` for the backend called ``backend`` (default: the module's top-level name)."""
    name = backend or module.split(".")[0]
    try:
        return importlib.import_module(module)
    except ModuleNotFoundError as exc:  # pragma: no cover - depends on the machine
        if exc.name is None or exc.name.split(".")[0] != module.split(".")[0]:
            raise  # the library is there but something it imports is not: a real bug to show
        raise BackendUnavailableError(
            f"xp={name!r} needs the {module.split('.')[0]!r} package, which is not installed "
            f"({exc}). Install it with: {INSTALL_HINTS.get(name, 'pip install ' + module.split('.')[0])}"
        ) from exc


#: How a user turns on JAX's 64-bit mode, quoted by the float64 refusal.
JAX_X64_HINT = 'jax.config.update("jax_enable_x64", True) at the start of the program, or JAX_ENABLE_X64=1'


def enable_jax_x64() -> None:
    """Turn on JAX's process-wide 64-bit mode.

    For programs that own their process (the ``portable-nn`` command line);
    the library itself never calls it, as it would change every JAX array the
    user creates afterwards (``jnp.zeros(1)`` becomes float64).
    """
    jax = _import("jax")
    if not jax.config.jax_enable_x64:
        jax.config.update("jax_enable_x64", True)


def _check_jax_dtype(dtype: str) -> None:
    """A float64 JAX network needs the user's opt-in to 64-bit mode (``ValueError`` otherwise).

    Scoping ``jax.enable_x64(True)`` around the package's own calls is not
    safe: the network's float64 weights and outputs reach the user, and any
    operation on them outside that scope warns and truncates to float32, and
    compiled functions retrace at float32.
    """
    if dtype == "float64" and not _import("jax").config.jax_enable_x64:
        raise ValueError(
            "dtype='float64' with xp='jax' needs JAX's 64-bit mode, which is off: without it JAX computes in "
            f"float32. Turn it on with {JAX_X64_HINT}, or use dtype='float32'"
        )


#: (backend name, device, dtype) triples that passed :func:`_probe`.
_PROBED: set[tuple[str, str, str]] = set()


def _probe(name: str, namespace: Any, device: Any, dtype: str) -> None:
    """Copy a tiny array to ``device``, compute ``exp(a @ a)`` in ``dtype`` there and copy it back.

    Raises ``ValueError`` naming the device or dtype, with the library's
    reason, when any of it fails (torch's ``meta`` device holds no data; a
    GPU may lack float64) or gives a different dtype or wrong values.
    """
    key = (name, repr(device), dtype)
    if key in _PROBED:
        return
    host = np.array([[0.5, -1.0], [2.0, 0.25]])
    try:
        a = namespace.asarray(host, device=device)
        back = to_numpy(a)
    except Exception as exc:
        raise ValueError(
            f"device={device!r} cannot be used with xp={name!r}: copying data to it and back fails ({exc})"
        ) from exc
    if not np.array_equal(back, host):
        raise ValueError(f"device={device!r} cannot be used with xp={name!r}: data copied to it does not come back")
    try:
        b = namespace.asarray(a, dtype=getattr(namespace, dtype), device=device)
        out = namespace.exp(b @ b)
        got = to_numpy(out)
    except Exception as exc:
        raise ValueError(f"dtype={dtype!r} cannot be computed in by xp={name!r} on device {device!r} ({exc})") from exc
    if out.dtype != getattr(namespace, dtype) or not np.allclose(got, np.exp(host @ host), rtol=1e-5):
        raise ValueError(
            f"dtype={dtype!r} cannot be computed in by xp={name!r} on device {device!r}: "
            f"the result came back as {out.dtype}"
        )
    _PROBED.add(key)


def _check_cupy_usable(cupy: ModuleType) -> None:
    """CuPy importing is not the same as a GPU working: run one tiny kernel."""
    try:
        n_devices = cupy.cuda.runtime.getDeviceCount()
    except Exception as exc:  # CUDARuntimeError when no driver is present
        raise BackendUnavailableError(
            f"xp='cupy': CuPy is installed but no usable CUDA device was found ({exc}). "
            "Use xp='numpy' on this machine, or install a CuPy wheel matching the "
            f"CUDA driver: {INSTALL_HINTS['cupy']}"
        ) from exc
    if n_devices < 1:
        raise BackendUnavailableError(
            "xp='cupy': CuPy is installed but reports 0 CUDA devices. Use xp='numpy' on this machine."
        )
    try:
        int((cupy.arange(4) * 2).sum())
    except Exception as exc:
        raise BackendUnavailableError(
            f"xp='cupy': a CUDA device exists but a test kernel failed ({exc}). "
            "The CuPy wheel probably does not match the CUDA driver: "
            f"{INSTALL_HINTS['cupy']}"
        ) from exc


def _name_of_namespace(module: Any) -> str | None:
    checks = (
        ("numpy", array_api_compat.is_numpy_namespace),
        ("cupy", array_api_compat.is_cupy_namespace),
        ("torch", array_api_compat.is_torch_namespace),
        ("array_api_strict", array_api_compat.is_array_api_strict_namespace),
        ("jax", array_api_compat.is_jax_namespace),
    )
    for name, check in checks:
        if check(module):
            return name
    return None


def resolve_backend(xp: Any = "numpy", device: Any = None, dtype: str | None = None) -> Backend:
    """Normalise ``xp`` (a name or an array namespace module) to a :class:`Backend`.

    Parameters
    ----------
    xp:
        ``"numpy"``, ``"cupy"``, ``"torch"``, ``"array_api_strict"``, ``"jax"``,
        a module of one of those libraries, an ``array_api_compat`` namespace, or
        any other module whose ``asarray`` returns arrays that
        ``array_api_compat.array_namespace`` understands.
    device:
        Where arrays are placed; ``None`` means the library's default device.
        It must hold data: a tiny array is copied there and back (torch's
        ``meta`` device, a CUDA device torch was not built for, are refused).
    dtype:
        ``"float32"`` or ``"float64"``, the dtype the network computes in: a
        tiny product and ``exp`` are computed there in it and must come back
        right.  On JAX, ``"float64"`` needs 64-bit mode turned on by the user
        (:data:`JAX_X64_HINT`); the package never turns it on itself.
        ``None`` checks the device with the namespace's default float dtype.

    Raises
    ------
    BackendUnavailableError
        The library is missing or (CuPy) no CUDA device can run a kernel; the
        message gives the install command.
    TypeError, ValueError
        ``xp`` is neither a known name nor an array namespace; the device
        cannot hold or return data; the backend cannot compute in ``dtype``
        there (the message gives the library's reason).
    """
    if isinstance(xp, Backend):
        if xp.name == "jax" and dtype is not None:
            _check_jax_dtype(dtype)
        _probe(xp.name, xp.xp, xp.device, dtype or "float32")
        return xp
    if isinstance(xp, str):
        name = xp.strip().lower().replace("-", "_")
        if name not in KNOWN_BACKENDS:
            raise ValueError(
                f"xp must be one of {', '.join(map(repr, KNOWN_BACKENDS))} or an array namespace module; got {xp!r}"
            )
        module = _import("jax.numpy" if name == "jax" else name, name)
    elif isinstance(xp, ModuleType):
        module = xp
        name = _name_of_namespace(module) or str(getattr(module, "__name__", repr(module)))
    else:
        raise TypeError(
            f"xp must be a backend name such as 'numpy' or 'cupy', or an array "
            f"namespace module; got {type(xp).__name__}"
        )

    if name == "cupy":
        _check_cupy_usable(_import("cupy"))
    if name == "jax" and dtype is not None:
        _check_jax_dtype(dtype)
    if name == "array_api_strict":
        namespace = _import("array_api_strict")
    else:
        if not hasattr(module, "asarray"):
            raise TypeError(f"xp={module!r} has no asarray(): it is not an array namespace")
        namespace = array_api_compat.array_namespace(module.asarray([0.0]))
    if device is None:
        device = array_api_compat.device(namespace.asarray([0.0]))
    _probe(name, namespace, device, dtype or "float32")
    return Backend(name=name, xp=namespace, device=device)


def to_numpy(array: Any) -> np.ndarray:
    """A new, writable NumPy copy of any backend's array, on the host.

    Always a copy: writing into the result never changes ``array`` (a
    network's weights, say), on any backend -- NumPy and torch/JAX on the CPU
    included, where a view would share memory.  Works for NumPy, CuPy,
    PyTorch (any device), JAX and array-api-strict arrays on any of its
    devices; Python scalars and lists pass through ``numpy.array``.
    """
    if array_api_compat.is_cupy_array(array):
        return cast(np.ndarray, array.get())  # device to host: already a new array
    if array_api_compat.is_torch_array(array) and array.device.type != "cpu":
        return cast(np.ndarray, array.detach().cpu().numpy())  # device to host: already a new tensor
    return np.array(host_view(array), copy=True)


def host_view(array: Any) -> np.ndarray:
    """The array on the host without a copy where the library allows one (package-internal).

    May share memory with ``array`` (NumPy, torch/JAX on the CPU,
    array-api-strict) and may be read-only (JAX): only for reading -- a
    count, a flag, parameters being saved -- never to hand to a user or to
    write into.  Copies only where the data is on another device.
    """
    if isinstance(array, np.ndarray):
        return array
    if array_api_compat.is_cupy_array(array):
        return cast(np.ndarray, array.get())
    if array_api_compat.is_torch_array(array):
        return cast(np.ndarray, array.detach().cpu().numpy())
    if type(array).__module__.startswith("array_api_strict"):
        strict = importlib.import_module("array_api_strict")
        return np.asarray(array.to_device(strict.Device("CPU_DEVICE")))
    return np.asarray(array)


def device_name(backend: Backend) -> str:
    """A short description of the backend's device (GPU model for CuPy/CUDA)."""
    if backend.name == "cupy":
        cupy = importlib.import_module("cupy")
        props = cupy.cuda.runtime.getDeviceProperties(cupy.cuda.Device().id)
        gpu = props["name"]
        return f"cuda:{cupy.cuda.Device().id} {gpu.decode() if isinstance(gpu, bytes) else gpu}"
    return str(backend.device)
