"""portable_nn: Nielsen's networks (chapters 1, 3, 6) on NumPy, CuPy, PyTorch, JAX and any Array API library."""

from . import network2, network3
from .backends import Backend, BackendUnavailableError, resolve_backend, to_numpy
from .bookpickle import BookPickleError
from .dataforms import BookPairs, Dataset
from .loading import load
from .mnist import load_data, load_data_wrapper, load_mnist
from .network import Network
from .serialization import ModelFileError
from .training import EpochResult

__all__ = [
    "Backend",
    "BackendUnavailableError",
    "BookPairs",
    "BookPickleError",
    "Dataset",
    "EpochResult",
    "ModelFileError",
    "Network",
    "load",
    "load_data",
    "load_data_wrapper",
    "load_mnist",
    "network2",
    "network3",
    "resolve_backend",
    "to_numpy",
]
__version__ = "0.2.0"
