"""portable_nn: Nielsen's networks (chapters 1, 3, 6) on NumPy, CuPy, PyTorch, JAX and any Array API library."""

from . import network2, network3
from ._backend.backends import Backend, BackendUnavailableError, resolve_backend, to_numpy
from ._data.bookpickle import BookPickleError
from ._data.expand import expanded_mnist
from ._data.forms import BookPairs, Dataset
from ._data.mnist import load_data, load_data_wrapper, load_mnist
from ._io.serialization import ModelFileError
from ._math.activations import UserFunctionError
from ._train.checkpoint import CheckpointError, CheckpointMismatchError
from ._train.loop import EpochResult
from .loading import load
from .network import Network

__all__ = [
    "Backend",
    "BackendUnavailableError",
    "BookPairs",
    "BookPickleError",
    "CheckpointError",
    "CheckpointMismatchError",
    "Dataset",
    "EpochResult",
    "ModelFileError",
    "Network",
    "UserFunctionError",
    "expanded_mnist",
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
