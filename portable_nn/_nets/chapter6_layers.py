"""Chapter 6's layer classes as the book names them: a frozen math layer plus the parameters ``w``/``b``.

``ConvPoolLayer``, ``FullyConnectedLayer`` and ``SoftmaxLayer`` take the
book's arguments, check them, and hold their :mod:`portable_nn._math.layers`
counterpart as ``core`` (:class:`~portable_nn._math.layers.ConvPool`,
:class:`~portable_nn._math.layers.Dense` and
:class:`~portable_nn._math.layers.Softmax` in the rows layout: samples are
rows, a conv-pool layer reshapes to NCHW inside and hands on the row-major
flattening Theano's ``reshape`` gives).  All the math is the core's, shared
with chapters 1 and 3; these classes add the book's names, the parameters a
:class:`portable_nn.network3.Network` owns, and their initial values.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from .._math.activations import (
    LINEAR,
    RELU,
    SIGMOID,
    TANH,
    Activation,
    AnyActivation,
    on_number_or_array,
)
from .._math.activations import resolve_activation as _resolve
from .._math.chain import Chain, softmax_chain
from .._math.initializers import RandomSource
from .._math.layers import ConvPool, Dense, Softmax, layer_spec
from .._math.layers import Layer as CoreLayer

__all__ = [
    "ConvPoolLayer",
    "FullyConnectedLayer",
    "Layer",
    "ReLU",
    "SoftmaxLayer",
    "chain_of",
    "layer_from_core",
    "linear",
    "sigmoid",
    "tanh",
]


# -- the book's activation functions ------------------------------------------------------------
def sigmoid(z: Any) -> Any:
    """σ(z) for any backend's array (the book's ``theano.tensor.nnet.sigmoid``), or a number (a ``float``)."""
    return on_number_or_array(SIGMOID, z)


def tanh(z: Any) -> Any:
    """tanh(z) for any backend's array, or a number (a ``float``)."""
    return on_number_or_array(TANH, z)


def ReLU(z: Any) -> Any:  # noqa: N802 - the book's name
    """max(0, z) for any backend's array, or a number (a ``float``)."""
    return on_number_or_array(RELU, z)


def linear(z: Any) -> Any:
    """The identity: z."""
    return z


_BOOK_FUNCTIONS: dict[Callable[[Any], Any], tuple[Activation, Callable[[Any], Any] | None]] = {
    sigmoid: (SIGMOID, None),
    tanh: (TANH, None),
    ReLU: (RELU, None),
    linear: (LINEAR, None),
}


def resolve_activation(activation_fn: Any, activation_prime: Callable[[Any], Any] | None = None) -> AnyActivation:
    """The activation for the book's functions (``sigmoid``, ``tanh``, ``ReLU``, ``linear``), an
    :class:`Activation`, a name (``"ReLU"``, ``"relu"``, ...), or your own function of the weighted input.

    Your own ``activation_fn`` (as the book's network3 takes it) needs its
    derivative ``activation_prime``, a function of the weighted input too
    (Theano differentiated it for the book; here gradients are written by
    hand): a :class:`portable_nn._math.activations.UserActivation`.
    """
    return _resolve(activation_fn, activation_prime, "activation_fn", _BOOK_FUNCTIONS, "activation_prime")


# -- layers ---------------------------------------------------------------------------------------
def _positive_ints(value: Any, name: str, length: int) -> tuple[int, ...]:
    try:
        items = tuple(value)
    except TypeError:
        raise TypeError(f"{name} must be a tuple of {length} positive ints; got {value!r}") from None
    if len(items) != length or any(isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < 1 for v in items):
        raise ValueError(f"{name} must be a tuple of {length} positive ints; got {value!r}")
    return tuple(int(v) for v in items)


def _dropout(p_dropout: Any) -> float:
    if isinstance(p_dropout, bool) or not isinstance(p_dropout, (int, float, np.floating, np.integer)):
        raise TypeError(f"p_dropout must be a number in [0, 1); got {p_dropout!r}")
    p = float(p_dropout)
    if not 0.0 <= p < 1.0:
        raise ValueError(f"p_dropout must be a number in [0, 1); got {p}")
    return p


class Layer:
    """What every chapter-6 layer has: ``n_in``, ``n_out``, the parameters ``w``/``b`` and a JSON spec.

    ``w`` and ``b`` are ``None`` until a :class:`portable_nn.network3.Network`
    owns the layer; then they are arrays of the network's backend and dtype.
    Assigning an array of the right shape (from any backend) replaces them.
    """

    #: The layer's math (frozen): what the chain runs.
    core: CoreLayer

    def __init__(self) -> None:
        self._w: Any = None
        self._b: Any = None
        self._owner: Any = None

    @property
    def n_in(self) -> int:
        return self.core.n_in

    @property
    def n_out(self) -> int:
        return self.core.n_out

    @property
    def p_dropout(self) -> float:
        return self.core.p_dropout

    @property
    def activation(self) -> AnyActivation:
        activation = self.core.activation
        return SIGMOID if isinstance(activation, str) else activation  # a softmax layer's is unused

    @property
    def w_shape(self) -> tuple[int, ...]:
        return self.core.w_shape

    @property
    def b_shape(self) -> tuple[int, ...]:
        return self.core.b_shape

    @property
    def w(self) -> Any:
        """The weights (see the class for the shape), a backend array once owned by a network."""
        return self._w

    @w.setter
    def w(self, value: Any) -> None:
        self._w = self._converted(value, self.w_shape, "w")

    @property
    def b(self) -> Any:
        """The biases, a backend array once owned by a network."""
        return self._b

    @b.setter
    def b(self, value: Any) -> None:
        self._b = self._converted(value, self.b_shape, "b")

    def adopt(self, owner: Any) -> None:
        """Become ``owner``'s layer (a :class:`portable_nn.network3.Network`): ``w``/``b`` are then converted
        to its backend and dtype.  A layer belongs to one network: ``ValueError`` if it already has one."""
        if self._owner is not None:
            raise ValueError("this layer already belongs to a network: build a new layer object for this one")
        self._owner = owner

    @property
    def owned(self) -> bool:
        """Whether a network owns the layer."""
        return self._owner is not None

    def hold(self, w: Any, b: Any) -> None:
        """Hold the owner's own arrays (a training step's output): no checks, no conversion."""
        self._w, self._b = w, b

    def _converted(self, value: Any, shape: tuple[int, ...], name: str) -> Any:
        got = tuple(getattr(value, "shape", ()))
        if got != shape:
            raise ValueError(f"{type(self).__name__}.{name} must have shape {shape}; got {got}")
        return value if self._owner is None else self._owner.own_array(value, f"{type(self).__name__}.{name}")

    def spec(self) -> dict[str, Any]:
        """The layer as JSON-ready data (saved in model files)."""
        return layer_spec(self.core)

    def init_parameters(self, rng: RandomSource) -> tuple[np.ndarray, np.ndarray]:
        """The book's initial ``(w, b)`` as float64 host arrays, drawn from ``rng`` (weights first)."""
        raise NotImplementedError  # pragma: no cover - overridden

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.spec().items() if k != "type")
        return f"{type(self).__name__}({args})"


class ConvPoolLayer(Layer):
    """A convolutional layer followed by max-pooling: ``act(maxpool(conv(x, w)) + b)``.

    Parameters
    ----------
    filter_shape:
        ``(n_filters, in_channels, kh, kw)``: the shape of ``w``.
    image_shape:
        ``(mini_batch_size, in_channels, h, w)`` as in the book; the first
        entry is kept for the book's code but any mini-batch size runs.
    poolsize:
        ``(ph, pw)`` non-overlapping pooling windows (rows/columns that do not
        fill a window are dropped).
    activation_fn, activation_prime:
        ``sigmoid`` (default), ``tanh``, ``ReLU`` or ``linear``; or your own
        function of the weighted input with ``activation_prime`` its derivative
        (see :func:`resolve_activation`).

    ``w`` is ``(n_filters, in_channels, kh, kw)``, ``b`` ``(n_filters,)``; the
    output is ``n_filters·((h − kh + 1) // ph)·((w − kw + 1) // pw)`` values per sample.
    """

    core: ConvPool  # pyright: ignore[reportIncompatibleVariableOverride]  # narrower: set once in __init__

    def __init__(
        self,
        filter_shape: Sequence[int],
        image_shape: Sequence[int],
        poolsize: Sequence[int] = (2, 2),
        activation_fn: Any = sigmoid,
        *,
        activation_prime: Callable[[Any], Any] | None = None,
    ) -> None:
        super().__init__()
        filters = _positive_ints(filter_shape, "filter_shape", 4)
        images = _positive_ints(image_shape, "image_shape", 4)
        pool = _positive_ints(poolsize, "poolsize", 2)
        activation = resolve_activation(activation_fn, activation_prime)
        self.core = ConvPool(filters, images, pool, activation)  # type: ignore[arg-type]  # lengths checked

    @property
    def filter_shape(self) -> tuple[int, ...]:
        return self.core.filter_shape

    @property
    def image_shape(self) -> tuple[int, ...]:
        return self.core.image_shape

    @property
    def poolsize(self) -> tuple[int, ...]:
        return self.core.poolsize

    @property
    def conv_shape(self) -> tuple[int, int]:
        return self.core.conv_shape

    @property
    def out_shape(self) -> tuple[int, int, int]:
        return self.core.out_shape

    @property
    def activation_fn(self) -> AnyActivation:
        return self.activation

    def init_parameters(self, rng: RandomSource) -> tuple[np.ndarray, np.ndarray]:
        """``w ~ N(0, 1/n_out)`` with ``n_out = n_filters·kh·kw / (ph·pw)``, ``b ~ N(0, 1)`` (the book's)."""
        n_out = self.filter_shape[0] * math.prod(self.filter_shape[2:]) / math.prod(self.poolsize)
        w = rng.normal(loc=0.0, scale=math.sqrt(1.0 / n_out), size=self.filter_shape)
        b = rng.normal(loc=0.0, scale=1.0, size=(self.filter_shape[0],))
        return w, b


class FullyConnectedLayer(Layer):
    """``act(x @ w + b)`` with ``w (n_in, n_out)``, ``b (n_out,)``; dropout on its inputs when ``p_dropout > 0``.

    In training each input is kept with probability ``1 − p_dropout`` (not
    rescaled); at evaluation ``x @ w`` is multiplied by ``1 − p_dropout``, as the book does.
    ``activation_fn`` as for :class:`ConvPoolLayer` (your own function needs ``activation_prime``).
    """

    core: Dense  # pyright: ignore[reportIncompatibleVariableOverride]  # narrower: set once in __init__

    def __init__(
        self,
        n_in: int,
        n_out: int,
        activation_fn: Any = sigmoid,
        p_dropout: float = 0.0,
        *,
        activation_prime: Callable[[Any], Any] | None = None,
    ) -> None:
        super().__init__()
        n_in, n_out = _positive_ints((n_in, n_out), "(n_in, n_out)", 2)
        activation = resolve_activation(activation_fn, activation_prime)
        core = Dense(n_in, n_out, activation, layout="rows", p_dropout=_dropout(p_dropout))
        self.core = core  # pyright: ignore[reportIncompatibleVariableOverride]

    @property
    def activation_fn(self) -> AnyActivation:
        return self.activation

    def init_parameters(self, rng: RandomSource) -> tuple[np.ndarray, np.ndarray]:
        """``w ~ N(0, 1/n_out)`` ``(n_in, n_out)``, ``b ~ N(0, 1)`` ``(n_out,)`` (the book's)."""
        w = rng.normal(loc=0.0, scale=math.sqrt(1.0 / self.n_out), size=(self.n_in, self.n_out))
        b = rng.normal(loc=0.0, scale=1.0, size=(self.n_out,))
        return w, b


class SoftmaxLayer(Layer):
    """The softmax output layer, trained with the log-likelihood cost; ``w``/``b`` start at zero (the book's)."""

    core: Softmax  # pyright: ignore[reportIncompatibleVariableOverride]  # narrower: set once in __init__

    def __init__(self, n_in: int, n_out: int, p_dropout: float = 0.0) -> None:
        super().__init__()
        n_in, n_out = _positive_ints((n_in, n_out), "(n_in, n_out)", 2)
        core = Softmax(n_in, n_out, layout="rows", p_dropout=_dropout(p_dropout))
        self.core = core  # pyright: ignore[reportIncompatibleVariableOverride]

    def init_parameters(self, rng: RandomSource) -> tuple[np.ndarray, np.ndarray]:
        """Zeros, as the book (nothing is drawn from ``rng``)."""
        return np.zeros((self.n_in, self.n_out)), np.zeros((self.n_out,))


def layer_from_core(core: CoreLayer) -> Layer:
    """The book's layer object for a rows-layout math layer (a fresh object, owned by no network)."""
    if isinstance(core, ConvPool):
        return ConvPoolLayer(core.filter_shape, core.image_shape, core.poolsize, core.activation)
    if isinstance(core, Softmax):
        return SoftmaxLayer(core.n_in, core.n_out, core.p_dropout)
    return FullyConnectedLayer(core.n_in, core.n_out, core.activation, core.p_dropout)


def chain_of(layers: Sequence[Layer]) -> Chain:
    """The math of the book's ``layers``: the :class:`~portable_nn._math.chain.Chain` of their cores.

    Every element must be one of the book's layer classes (``TypeError``), consecutive layers must fit and
    the last, and only the last, must be a :class:`SoftmaxLayer` (``ValueError``).
    """
    for i, layer in enumerate(layers):
        if not isinstance(layer, Layer):
            raise TypeError(f"layers[{i}] must be a ConvPoolLayer, FullyConnectedLayer or SoftmaxLayer; got {layer!r}")
    return softmax_chain([layer.core for layer in layers])
