"""Named types for what the package passes around (the array API has no static types of its own).

They are aliases, so they cost nothing at run time and say in a signature
what a value is: an array of some backend, a standard namespace, a device, a
dtype object, or what ``xp=`` accepts.  The bottom of the package: imports
nothing of it.
"""

from __future__ import annotations

from types import ModuleType
from typing import Any, TypeAlias

#: An array of any standard-conforming library (NumPy, CuPy, torch, JAX, array-api-strict).
Array: TypeAlias = Any
#: A standard array namespace (``array_api_compat.numpy``, ``array_api_strict``, ...).
Namespace: TypeAlias = ModuleType
#: A library's device object (``"cpu"``, ``torch.device``, ``array_api_strict.Device``, ...); ``None``: its default.
Device: TypeAlias = Any
#: A library's dtype object (``xp.float32``, ...).
DType: TypeAlias = Any
#: What ``xp=`` accepts: a backend name, a namespace module, or a resolved :class:`portable_nn.Backend`.
BackendSpec: TypeAlias = Any
