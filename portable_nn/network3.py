"""Nielsen's ``network3.py`` (chapter 6) without Theano: convolutional networks on the shared Array-API core.

As a reader types it from chapter 6::

    from portable_nn import network3
    from portable_nn.network3 import Network, ConvPoolLayer, FullyConnectedLayer, SoftmaxLayer, ReLU

    training_data, validation_data, test_data = network3.load_data_shared()
    mini_batch_size = 10
    net = Network([
        ConvPoolLayer(image_shape=(mini_batch_size, 1, 28, 28), filter_shape=(20, 1, 5, 5), poolsize=(2, 2)),
        FullyConnectedLayer(n_in=20*12*12, n_out=100),
        SoftmaxLayer(n_in=100, n_out=10)], mini_batch_size, seed=1)
    net.SGD(training_data, 60, mini_batch_size, 0.1, validation_data, test_data)

prints the book's lines (``Epoch 0: validation accuracy 94.21%``, ``This is the
best validation accuracy to date.``, ``The corresponding test accuracy is ...``).

Keyword-only extras, as for the other networks: ``xp``, ``dtype`` (float32 by
default, as the book's GPU setting), ``seed``, ``device``; ``SGD(...,
quiet=True, on_batch=..., on_epoch=...)`` returning one
:class:`Network3EpochResult` per epoch; ``feedforward``, ``accuracy``,
``save``/:func:`load` (``.npz``).  :data:`PRESETS` and :func:`preset_network`
build the chapter's networks by name.

What differs from the book (all documented in ``docs/chapter6.md``):

* The training data is reshuffled every epoch from the network's NumPy
  generator (the book walks the mini-batches in a fixed order); a last,
  smaller mini-batch is trained on too.
* Dropout masks come from the network's NumPy source (the global state with
  ``seed=None``, else its ``default_rng(seed)``): at the start of each
  epoch one Bernoulli(1 − p) bit per sample and input unit of every dropout
  layer is drawn on the host, packed 8 per byte (``numpy.packbits``) and moved
  to the device once; the step takes each mini-batch's rows and unpacks them
  with two bitwise operations.  The same seed gives the same masks on every
  backend.  Cost: ``n·Σ n_in/8`` bytes per epoch (the book's dropout network on
  the expanded data: 250,000 × 2,640 bits = 83 MB) and the host draw
  (``integers`` for p = 0.5, else ``random`` in chunks; ~0.1 s resp. ~2 s per
  epoch of 250,000 samples).
* The L2 term is the book's ``0.5·lmbda·Σ‖w‖²/num_training_batches``
  (``num_training_batches = n // mini_batch_size``), over every layer's ``w``:
  the step does ``w ← (1 − eta·lmbda/num_training_batches)·w − (eta/m)·Σ∇w``.
  (network2's decay is ``lmbda/n``: the same ``lmbda`` is ``mini_batch_size``
  times stronger here, as in the book.)
* Accuracies are over the whole validation/test sets (the book averages
  whole mini-batches, the same for 10,000 samples and batch sizes dividing it).
"""

from __future__ import annotations

import os

from ._base.types import BackendSpec, Device
from ._data.shared import SharedArray, SharedPair, get_value, load_data_shared, load_expanded_training_data, size
from ._io.network3_files import read_network3_file
from ._nets.chapter6 import Network, Network3EpochResult
from ._nets.chapter6_layers import (
    ConvPoolLayer,
    FullyConnectedLayer,
    Layer,
    ReLU,
    SoftmaxLayer,
    layer_from_core,
    linear,
    sigmoid,
    tanh,
)
from ._nets.chapter6_presets import PRESETS, NetworkSpec, preset_network

__all__ = [
    "PRESETS",
    "ConvPoolLayer",
    "FullyConnectedLayer",
    "Layer",
    "Network",
    "Network3EpochResult",
    "NetworkSpec",
    "ReLU",
    "SharedArray",
    "SharedPair",
    "SoftmaxLayer",
    "get_value",
    "linear",
    "load",
    "load_data_shared",
    "load_expanded_training_data",
    "preset_network",
    "sigmoid",
    "size",
    "tanh",
]


def load(
    path: str | os.PathLike[str],
    xp: BackendSpec = "numpy",
    *,
    dtype: str | None = None,
    device: Device = None,
    seed: int | None = None,
) -> Network:
    """A network saved by :meth:`Network.save`, onto any backend (``dtype`` defaults to the file's).

    Sizes are checked before anything is allocated (file size, every npz
    member's header against the layer specification in ``meta``), then
    dtypes and finiteness; no random weights are drawn.  Raises
    :class:`portable_nn.ModelFileError` naming the file for anything malformed.
    """
    meta, cores, arrays = read_network3_file(path)
    layers = [layer_from_core(core) for core in cores]
    weights = [arrays[f"layer{i}_w"] for i in range(len(layers))]
    biases = [arrays[f"layer{i}_b"] for i in range(len(layers))]
    return Network.from_parameters(
        layers, meta["mini_batch_size"], weights, biases, xp=xp, dtype=dtype or meta["dtype"], seed=seed, device=device
    )
