"""portable_nn: Nielsen's MNIST network, one backprop for NumPy, CuPy and any Array API library."""

from .backends import Backend, BackendUnavailableError, resolve_backend, to_numpy
from .network import EpochResult, Network

__all__ = [
    "Backend",
    "BackendUnavailableError",
    "EpochResult",
    "Network",
    "resolve_backend",
    "to_numpy",
]
__version__ = "0.1.0"
