"""``portable_nn.load``: the one place that knows all three networks.

The file layer (:mod:`portable_nn._io.serialization`, and network3's reader)
reads and writes plain data -- host arrays and metadata -- and knows no
network class; each network builds itself from that data
(``from_arrays``).  This module chooses which network a file holds, so it
sits above the three facades and nothing below imports it.
"""

from __future__ import annotations

import os
from pathlib import Path

from . import network, network2, network3
from ._base.types import BackendSpec, Device
from ._io.serialization import ModelFileError, is_network3_file, read_model

Loaded = network.Network | network2.Network | network3.Network


def load(
    path: str | os.PathLike[str], xp: BackendSpec = "numpy", *, dtype: str | None = None, device: Device = None
) -> Loaded:
    """Load any model file this package (or the book's ``network2``) saved, onto any backend.

    Returns a chapter-1 :class:`portable_nn.network.Network` for a sigmoid
    network with the quadratic cost, a :class:`portable_nn.network2.Network`
    (keeping its cost and activation) for other fully connected ones, and a
    :class:`portable_nn.network3.Network` for a file ``network3`` saved.
    ``dtype`` defaults to the file's (float64 for JSON).
    """
    if is_network3_file(Path(path)):
        return network3.load(path, xp, dtype=dtype, device=device)
    _, weights, biases, meta = read_model(path)
    if meta["cost"] == "QuadraticCost" and meta["activation"] == "sigmoid":
        return network.Network.from_arrays(weights, biases, xp, dtype=dtype, device=device)
    return network2.Network.from_arrays(
        weights, biases, xp, dtype=dtype, device=device, cost=meta["cost"], activation=meta["activation"]
    )


__all__ = ["Loaded", "ModelFileError", "load"]
