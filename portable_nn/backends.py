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
from typing import Any

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


def _enable_jax_x64() -> None:
    """JAX computes in float32 unless 64-bit mode is on: turn it on, so ``dtype="float64"``
    (and int64 indices) mean what they say; float32 networks are unaffected, as every
    array is created with an explicit dtype."""
    jax = _import("jax")
    if not jax.config.jax_enable_x64:
        jax.config.update("jax_enable_x64", True)


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


def resolve_backend(xp: Any = "numpy", device: Any = None) -> Backend:
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

    Raises
    ------
    BackendUnavailableError
        The library is missing or (CuPy) no CUDA device can run a kernel; the
        message gives the install command.
    TypeError, ValueError
        ``xp`` is neither a known name nor an array namespace.
    """
    if isinstance(xp, Backend):
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
    if name == "jax":
        _enable_jax_x64()
    if name == "array_api_strict":
        namespace = _import("array_api_strict")
    else:
        if not hasattr(module, "asarray"):
            raise TypeError(f"xp={module!r} has no asarray(): it is not an array namespace")
        namespace = array_api_compat.array_namespace(module.asarray([0.0]))
    if device is None:
        device = array_api_compat.device(namespace.asarray([0.0]))
    return Backend(name=name, xp=namespace, device=device)


def to_numpy(array: Any) -> np.ndarray:
    """Copy any backend's array to a NumPy array on the host.

    Works for NumPy, CuPy (``.get()``), PyTorch (any device), JAX and
    array-api-strict arrays on any of its devices.  Python scalars and lists
    pass through ``numpy.asarray``.
    """
    if isinstance(array, np.ndarray):
        return array
    if array_api_compat.is_cupy_array(array):
        return array.get()
    if array_api_compat.is_torch_array(array):
        return array.detach().cpu().numpy()
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
