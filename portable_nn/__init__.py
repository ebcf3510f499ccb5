"""portable_nn: Nielsen's MNIST network, one backprop for NumPy, CuPy and any Array API library."""

from .backends import Backend, BackendUnavailableError, resolve_backend, to_numpy
from .mnist import load_data_wrapper, load_mnist
from .network import EpochResult, Network
from .serialization import ModelFileError, load

__all__ = [
    "Backend",
    "BackendUnavailableError",
    "EpochResult",
    "ModelFileError",
    "Network",
    "load",
    "load_data_wrapper",
    "load_mnist",
    "resolve_backend",
    "to_numpy",
]
__version__ = "0.1.0"
