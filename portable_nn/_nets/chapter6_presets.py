"""The book's chapter-6 networks by name: :data:`PRESETS` and :class:`NetworkSpec` (re-exported by ``network3``)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from .._base.types import BackendSpec, Device
from .._base.validation import check_int
from .chapter6 import Network
from .chapter6_layers import ConvPoolLayer, FullyConnectedLayer, Layer, ReLU, SoftmaxLayer, sigmoid

__all__ = ["PRESETS", "NetworkSpec", "preset_network"]


@dataclass(frozen=True)
class NetworkSpec:
    """One of the book's chapter-6 networks: layers and the ``SGD`` settings the book used.

    ``layers`` is a function of nothing returning fresh layer objects (a
    network owns its layers).  ``expanded``: trained on the 250,000-image
    expanded set.  ``book``: the test accuracy the book reports, in percent.
    """

    name: str
    description: str
    make_layers: Callable[[], list[Layer]] = field(repr=False)
    eta: float
    lmbda: float
    epochs: int
    expanded: bool
    book: float

    def layers(self) -> list[Layer]:
        """Fresh layer objects for a new network."""
        return self.make_layers()

    def build(
        self,
        mini_batch_size: int,
        *,
        xp: BackendSpec = "numpy",
        dtype: str = "float32",
        seed: int | None = None,
        device: Device = None,
    ) -> Network:
        """The network, with the book's initial weights drawn from ``seed``."""
        return Network(self.layers(), mini_batch_size, xp=xp, dtype=dtype, seed=seed, device=device)


def _conv(m: int, act: Any, two: bool) -> list[Layer]:
    layers: list[Layer] = [ConvPoolLayer((20, 1, 5, 5), (m, 1, 28, 28), (2, 2), act)]
    if two:
        layers.append(ConvPoolLayer((40, 20, 5, 5), (m, 20, 12, 12), (2, 2), act))
    return layers


def _preset(
    name: str,
    description: str,
    eta: float,
    lmbda: float,
    epochs: int,
    expanded: bool,
    book: float,
    layers: Callable[[int], list[Layer]],
) -> Callable[[int], NetworkSpec]:
    def spec(mini_batch_size: int) -> NetworkSpec:
        m = check_int(mini_batch_size, "mini_batch_size", 1)
        return NetworkSpec(name, description, lambda: layers(m), eta, lmbda, epochs, expanded, book)

    spec.__name__ = name.replace("-", "_")
    spec.__doc__ = description
    return spec


#: The book's chapter-6 networks: ``PRESETS[name](mini_batch_size) -> NetworkSpec``.
PRESETS: dict[str, Callable[[int], NetworkSpec]] = {
    "ch6-fc": _preset(
        "ch6-fc",
        "fully connected [784, 100, 10], sigmoid, softmax output",
        0.1,
        0.0,
        60,
        False,
        97.80,
        lambda m: [FullyConnectedLayer(784, 100), SoftmaxLayer(100, 10)],
    ),
    "ch6-conv1": _preset(
        "ch6-conv1",
        "conv-pool (20 5x5, 2x2) + FC 100 + softmax, sigmoid",
        0.1,
        0.0,
        60,
        False,
        98.78,
        lambda m: [*_conv(m, sigmoid, False), FullyConnectedLayer(20 * 12 * 12, 100), SoftmaxLayer(100, 10)],
    ),
    "ch6-conv2": _preset(
        "ch6-conv2",
        "two conv-pool (20, 40 filters) + FC 100 + softmax, sigmoid",
        0.1,
        0.0,
        60,
        False,
        99.06,
        lambda m: [*_conv(m, sigmoid, True), FullyConnectedLayer(40 * 4 * 4, 100), SoftmaxLayer(100, 10)],
    ),
    "ch6-relu": _preset(
        "ch6-relu",
        "ch6-conv2 with ReLU, eta 0.03, lambda 0.1",
        0.03,
        0.1,
        60,
        False,
        99.23,
        lambda m: [*_conv(m, ReLU, True), FullyConnectedLayer(40 * 4 * 4, 100, ReLU), SoftmaxLayer(100, 10)],
    ),
    "ch6-expanded": _preset(
        "ch6-expanded",
        "ch6-relu on the expanded training data (250,000 images)",
        0.03,
        0.1,
        60,
        True,
        99.37,
        lambda m: [*_conv(m, ReLU, True), FullyConnectedLayer(40 * 4 * 4, 100, ReLU), SoftmaxLayer(100, 10)],
    ),
    "ch6-fc2": _preset(
        "ch6-fc2",
        "ch6-expanded with an extra FC 100 layer",
        0.03,
        0.1,
        60,
        True,
        99.43,
        lambda m: [
            *_conv(m, ReLU, True),
            FullyConnectedLayer(40 * 4 * 4, 100, ReLU),
            FullyConnectedLayer(100, 100, ReLU),
            SoftmaxLayer(100, 10),
        ],
    ),
    "ch6-dropout": _preset(
        "ch6-dropout",
        "two FC 1000 layers with dropout p=0.5, expanded data, 40 epochs",
        0.03,
        0.1,
        40,
        True,
        99.60,
        lambda m: [
            *_conv(m, ReLU, True),
            FullyConnectedLayer(40 * 4 * 4, 1000, ReLU, p_dropout=0.5),
            FullyConnectedLayer(1000, 1000, ReLU, p_dropout=0.5),
            SoftmaxLayer(1000, 10, p_dropout=0.5),
        ],
    ),
}


def preset_network(
    name: str,
    mini_batch_size: int,
    *,
    xp: BackendSpec = "numpy",
    dtype: str = "float32",
    seed: int | None = None,
    device: Device = None,
) -> Network:
    """The book's chapter-6 network called ``name`` (a key of :data:`PRESETS`); its SGD settings are
    ``PRESETS[name](mini_batch_size)``'s ``eta``, ``lmbda``, ``epochs`` and ``expanded``."""
    if name not in PRESETS:
        raise ValueError(f"unknown preset {name!r}; known: {', '.join(PRESETS)}")
    return PRESETS[name](mini_batch_size).build(mini_batch_size, xp=xp, dtype=dtype, seed=seed, device=device)
