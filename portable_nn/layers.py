"""Chapter 6's layers and the pure math of one mini-batch through them, standard-only.

The layer classes are the book's (``ConvPoolLayer``, ``FullyConnectedLayer``,
``SoftmaxLayer``): a shape specification plus the parameters ``w`` and ``b``
once a :class:`portable_nn.network3.Network` owns the layer.  Everything that
computes is a pure function of the namespace ``xp`` it is given:

* :func:`forward_eval`: the book's ``output`` (dropout scaled by ``1 − p``);
* :func:`make_step`: one SGD step ``step(state, inputs, targets, idx, ones, eta) -> State``
  (the signature of :func:`portable_nn.dense.make_step`), so
  :func:`portable_nn.training.sgd` runs it and :mod:`portable_nn.compiled`
  jits it and a whole epoch for JAX.

Samples are rows: a mini-batch is ``(m, n_in)``; a conv-pool layer reshapes
its input to ``(m, c, h, w)`` (NCHW) and hands on ``(m, f·oh·ow)``, which is
the row-major flattening Theano's ``reshape`` gives, so fully connected layers
after it see the book's ordering.  The convolution and pooling are
:mod:`portable_nn.conv` (true convolution, kernel flipped, as Theano's
``conv2d``; ``pool_2d(ignore_border=True)``; ties in a pooling window all get
the gradient, as Theano's ``MaxPoolGrad``).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any, ClassVar

import numpy as np

from .activations import (
    LINEAR,
    RELU,
    SIGMOID,
    TANH,
    Activation,
    AnyActivation,
    log_softmax,
    on_number_or_array,
    softmax,
)
from .activations import resolve_activation as _resolve
from .conv import conv_backward, conv_forward_with_patches, maxpool_backward, maxpool_forward
from .dense import State
from .initializers import RandomSource

__all__ = [
    "ConvPoolLayer",
    "FullyConnectedLayer",
    "Layer",
    "ReLU",
    "SoftmaxLayer",
    "forward_eval",
    "layer_from_spec",
    "linear",
    "make_step",
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
    hand): a :class:`portable_nn.activations.UserActivation`.
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

    kind: ClassVar[str] = ""
    n_in: int
    n_out: int
    activation: AnyActivation
    p_dropout: float = 0.0

    def __init__(self) -> None:
        self._w: Any = None
        self._b: Any = None
        self._owner: Any = None

    @property
    def w_shape(self) -> tuple[int, ...]:  # pragma: no cover - overridden
        raise NotImplementedError

    @property
    def b_shape(self) -> tuple[int, ...]:
        return (self.w_shape[0],) if self.kind == "ConvPoolLayer" else (self.n_out,)

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

    def _converted(self, value: Any, shape: tuple[int, ...], name: str) -> Any:
        got = tuple(getattr(value, "shape", ()))
        if got != shape:
            raise ValueError(f"{type(self).__name__}.{name} must have shape {shape}; got {got}")
        return value if self._owner is None else self._owner._on_device(value, f"{type(self).__name__}.{name}")

    def spec(self) -> dict[str, Any]:  # pragma: no cover - overridden
        """The layer as JSON-ready data (saved in model files)."""
        raise NotImplementedError

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

    kind = "ConvPoolLayer"

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
        self.filter_shape = _positive_ints(filter_shape, "filter_shape", 4)
        self.image_shape = _positive_ints(image_shape, "image_shape", 4)
        self.poolsize = _positive_ints(poolsize, "poolsize", 2)
        self.activation = resolve_activation(activation_fn, activation_prime)
        f, c, kh, kw = self.filter_shape
        _, ci, h, wd = self.image_shape
        if c != ci:
            raise ValueError(f"filter_shape {self.filter_shape} expects {c} input maps; image_shape has {ci}")
        if kh > h or kw > wd:
            raise ValueError(f"filters {kh}x{kw} do not fit images {h}x{wd}")
        ph, pw = self.poolsize
        self.conv_shape = (h - kh + 1, wd - kw + 1)
        if ph > self.conv_shape[0] or pw > self.conv_shape[1]:
            raise ValueError(f"poolsize {self.poolsize} does not fit the {self.conv_shape} feature maps")
        self.out_shape = (f, self.conv_shape[0] // ph, self.conv_shape[1] // pw)
        self.n_in = ci * h * wd
        self.n_out = math.prod(self.out_shape)

    @property
    def activation_fn(self) -> AnyActivation:
        return self.activation

    @property
    def w_shape(self) -> tuple[int, ...]:
        return self.filter_shape

    def spec(self) -> dict[str, Any]:
        return {
            "type": self.kind,
            "filter_shape": list(self.filter_shape),
            "image_shape": list(self.image_shape),
            "poolsize": list(self.poolsize),
            "activation_fn": self.activation.name,
        }

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

    kind = "FullyConnectedLayer"

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
        self.n_in, self.n_out = _positive_ints((n_in, n_out), "(n_in, n_out)", 2)
        self.activation = resolve_activation(activation_fn, activation_prime)
        self.p_dropout = _dropout(p_dropout)

    @property
    def activation_fn(self) -> AnyActivation:
        return self.activation

    @property
    def w_shape(self) -> tuple[int, ...]:
        return (self.n_in, self.n_out)

    def spec(self) -> dict[str, Any]:
        return {
            "type": self.kind,
            "n_in": self.n_in,
            "n_out": self.n_out,
            "activation_fn": self.activation.name,
            "p_dropout": self.p_dropout,
        }

    def init_parameters(self, rng: RandomSource) -> tuple[np.ndarray, np.ndarray]:
        """``w ~ N(0, 1/n_out)`` ``(n_in, n_out)``, ``b ~ N(0, 1)`` ``(n_out,)`` (the book's)."""
        w = rng.normal(loc=0.0, scale=math.sqrt(1.0 / self.n_out), size=(self.n_in, self.n_out))
        b = rng.normal(loc=0.0, scale=1.0, size=(self.n_out,))
        return w, b


class SoftmaxLayer(Layer):
    """The softmax output layer, trained with the log-likelihood cost; ``w``/``b`` start at zero (the book's)."""

    kind = "SoftmaxLayer"
    activation = SIGMOID  # unused: softmax is not element-wise

    def __init__(self, n_in: int, n_out: int, p_dropout: float = 0.0) -> None:
        super().__init__()
        self.n_in, self.n_out = _positive_ints((n_in, n_out), "(n_in, n_out)", 2)
        self.p_dropout = _dropout(p_dropout)

    @property
    def w_shape(self) -> tuple[int, ...]:
        return (self.n_in, self.n_out)

    def spec(self) -> dict[str, Any]:
        return {"type": self.kind, "n_in": self.n_in, "n_out": self.n_out, "p_dropout": self.p_dropout}

    def init_parameters(self, rng: RandomSource) -> tuple[np.ndarray, np.ndarray]:
        """Zeros, as the book (nothing is drawn from ``rng``)."""
        return np.zeros((self.n_in, self.n_out)), np.zeros((self.n_out,))


LAYER_TYPES: dict[str, type[Layer]] = {c.kind: c for c in (ConvPoolLayer, FullyConnectedLayer, SoftmaxLayer)}


def layer_from_spec(spec: Any) -> Layer:
    """The layer a :meth:`Layer.spec` dict describes (``ValueError``/``TypeError`` if malformed)."""
    if not isinstance(spec, dict) or spec.get("type") not in LAYER_TYPES:
        raise ValueError(f"a layer spec must be an object with type one of {tuple(LAYER_TYPES)}; got {spec!r:.120}")
    args = {k: v for k, v in spec.items() if k != "type"}
    allowed = {
        "ConvPoolLayer": {"filter_shape", "image_shape", "poolsize", "activation_fn"},
        "FullyConnectedLayer": {"n_in", "n_out", "activation_fn", "p_dropout"},
        "SoftmaxLayer": {"n_in", "n_out", "p_dropout"},
    }[spec["type"]]
    if not set(args) <= allowed:
        raise ValueError(f"unexpected keys {sorted(set(args) - allowed)} in a {spec['type']} spec")
    if "activation_fn" in args and not isinstance(args["activation_fn"], str):
        raise ValueError(f"activation_fn must be a name; got {args['activation_fn']!r:.80}")
    return LAYER_TYPES[spec["type"]](**args)


def check_stack(layers: Sequence[Layer]) -> None:
    """Consecutive layers must fit (``n_out`` of one is ``n_in`` of the next); only the last is softmax."""
    if not layers:
        raise ValueError("layers must hold at least one layer (the last a SoftmaxLayer)")
    for i, layer in enumerate(layers):
        if not isinstance(layer, Layer):
            raise TypeError(f"layers[{i}] must be a ConvPoolLayer, FullyConnectedLayer or SoftmaxLayer; got {layer!r}")
        if isinstance(layer, SoftmaxLayer) != (i == len(layers) - 1):
            raise ValueError("the last layer, and only the last, must be a SoftmaxLayer (the log-likelihood cost)")
        if i and layers[i - 1].n_out != layer.n_in:
            raise ValueError(
                f"layers[{i - 1}] gives {layers[i - 1].n_out} values per sample but layers[{i}] takes {layer.n_in}"
            )


# -- the math ------------------------------------------------------------------------------------
def _conv_pool(xp: Any, layer: ConvPoolLayer, w: Any, b: Any, a: Any) -> tuple[Any, Any, Any, Any, Any]:
    """``(out (m, n_out), patches, pool cache, activations (m, f, oh, ow), their weighted inputs)``."""
    m = a.shape[0]
    _, c, h, wd = layer.image_shape
    conv, patches = conv_forward_with_patches(xp.reshape(a, (m, c, h, wd)), w)
    pooled, cache = maxpool_forward(conv, *layer.poolsize)
    z = pooled + xp.reshape(b, (1, layer.filter_shape[0], 1, 1))
    act = layer.activation.fn(xp, z)
    return xp.reshape(act, (m, layer.n_out)), patches, cache, act, z


def forward_eval(xp: Any, layers: Sequence[Layer], weights: Sequence[Any], biases: Sequence[Any], x: Any) -> Any:
    """The book's ``output`` for ``x (m, n_in)``: softmax probabilities ``(m, n_out)``.

    Dropout layers multiply ``x @ w`` by ``1 − p_dropout`` (the expected
    value of the training-time mask), as the book's ``set_inpt`` does.
    """
    return softmax(xp, _logits(xp, layers, weights, biases, x), axis=1)


def _logits(xp: Any, layers: Sequence[Layer], weights: Sequence[Any], biases: Sequence[Any], a: Any) -> Any:
    last = len(layers) - 1
    for i, (layer, w, b) in enumerate(zip(layers, weights, biases)):
        if isinstance(layer, ConvPoolLayer):
            a = _conv_pool(xp, layer, w, b, a)[0]
            continue
        z = a @ w
        if layer.p_dropout:
            z = (1.0 - layer.p_dropout) * z
        z = z + b
        a = z if i == last else layer.activation.fn(xp, z)
    return a


def log_likelihood(
    xp: Any, layers: Sequence[Layer], weights: Sequence[Any], biases: Sequence[Any], x: Any, labels: Any
) -> Any:
    """``Σ −ln a_y`` over the rows of ``x`` at evaluation (0-d array), from the logits via ``log_softmax``."""
    logp = log_softmax(xp, _logits(xp, layers, weights, biases, x), axis=1)
    picked = xp.take_along_axis(logp, xp.reshape(labels, (-1, 1)), axis=1)
    return -xp.sum(picked)


#: Bit ``j`` of a byte packed by ``numpy.packbits`` (big-endian bit order) is ``(byte >> (7 − j)) & 1``.
_SHIFTS = tuple(range(7, -1, -1))


def unpack_mask(xp: Any, packed: Any, n: int, dtype: Any, shifts: Any) -> Any:
    """``packed (m, ceil(n/8)) uint8`` (``numpy.packbits`` rows) as a ``(m, n)`` 0/1 mask of ``dtype``."""
    m, nb = packed.shape
    bits = xp.bitwise_and(xp.bitwise_right_shift(xp.expand_dims(packed, axis=2), shifts), 1)
    return xp.astype(xp.reshape(bits, (m, nb * 8))[:, :n], dtype)


def make_step(
    xp: Any,
    layers: Sequence[Layer],
    *,
    decay: float = 0.0,
    divisor: float | None = None,
    dtype: Any = None,
    device: Any = None,
    dropout: bool = False,
) -> Callable[..., State]:
    """The SGD step ``step(state, inputs, targets, idx, ones, eta) -> State`` of the book's ``network3``.

    ``state.weights``/``state.biases`` are the layers' ``w``/``b``.  One call
    takes rows ``idx`` (``m`` int64 indices) of ``inputs (n, n_in)`` and of the
    one-hot ``targets (n, n_out)``, runs forward (dropout masks applied) and
    backward, and returns

        ``w ← (1 − eta·decay)·w − (eta/m)·Σ∇w``,  ``b ← b − (eta/m)·Σ∇b``

    where ``decay = lmbda / num_training_batches`` is the gradient of the
    book's ``0.5·lmbda·Σ‖w‖²/num_training_batches`` term (every layer's ``w``,
    conv filters included; biases are not regularised).

    With ``dropout``, ``targets`` is a pair ``(one_hot (n, n_out), masks)``:
    ``masks`` one ``(n, ceil(n_in/8))`` uint8 array of packed bits per layer
    with ``p_dropout > 0``, row ``i`` the mask of sample ``i`` this epoch.
    ``ones`` is unused (the epoch loop passes it to every step).
    """
    take = xp.take
    n_layers = len(layers)
    shifts = xp.asarray(_SHIFTS, dtype=xp.uint8, device=device) if dropout else None
    dropping = [layer.p_dropout > 0.0 and dropout for layer in layers]
    # a user's activation differentiates from z (kept); the package's from the outputs alone
    keep_z = [layer.activation.needs_z for layer in layers]

    def step(state: State, inputs: Any, targets: Any, idx: Any, ones: Any, eta: Any) -> State:
        x = take(inputs, idx, axis=0)
        if divisor is not None:
            x = xp.astype(x, dtype) / divisor
        if dropout:
            one_hot, packed = targets
            masks = iter(packed)
        else:
            one_hot, masks = targets, iter(())
        y = take(one_hot, idx, axis=0)
        m = x.shape[0]
        weights, biases = state.weights, state.biases
        # forward, keeping what the backward pass needs
        a = x
        caches: list[tuple[Any, ...]] = []
        for i, layer in enumerate(layers):
            w, b = weights[i], biases[i]
            if isinstance(layer, ConvPoolLayer):
                out, patches, pool_cache, act, z = _conv_pool(xp, layer, w, b, a)
                caches.append((patches, pool_cache, act, z if keep_z[i] else None))
                a = out
                continue
            mask = unpack_mask(xp, take(next(masks), idx, axis=0), layer.n_in, x.dtype, shifts) if dropping[i] else None
            xin = a if mask is None else a * mask
            z = xin @ w + b
            a = softmax(xp, z, axis=1) if i == n_layers - 1 else layer.activation.fn(xp, z)
            caches.append((xin, mask, a, z if keep_z[i] else None))
        # backward: delta is dC/dz of the output (a − y), scaled by eta/m once
        delta = (a - y) * (eta / m)
        grads_w: list[Any] = [None] * n_layers
        grads_b: list[Any] = [None] * n_layers
        for i in range(n_layers - 1, -1, -1):
            layer, w = layers[i], weights[i]
            if isinstance(layer, ConvPoolLayer):
                patches, pool_cache, act, z = caches[i]
                f, oh, ow = layer.out_shape
                dz = xp.reshape(delta, (m, f, oh, ow)) * layer.activation.derivative(xp, z, act)
                grads_b[i] = xp.sum(dz, axis=(0, 2, 3))
                grads_w[i], _, grad_x = conv_backward(maxpool_backward(dz, pool_cache), patches, w, need_grad_x=i > 0)
                if i > 0:
                    delta = xp.reshape(grad_x, (m, layer.n_in))
                continue
            xin, mask, act, z = caches[i]
            if i < n_layers - 1:
                delta = delta * layer.activation.derivative(xp, z, act)
            grads_w[i] = xp.matrix_transpose(xin) @ delta
            grads_b[i] = xp.sum(delta, axis=0)
            if i > 0:
                delta = delta @ xp.matrix_transpose(w)
                if mask is not None:
                    delta = delta * mask
        if decay:
            keep = 1.0 - eta * decay
            new_w = tuple(keep * w - g for w, g in zip(weights, grads_w))
        else:
            new_w = tuple(w - g for w, g in zip(weights, grads_w))
        return State(new_w, tuple(b - g for b, g in zip(biases, grads_b)))

    return step


def loss(
    xp: Any,
    layers: Sequence[Layer],
    weights: Sequence[Any],
    biases: Sequence[Any],
    x: Any,
    y: Any,
    masks: Sequence[Any | None],
    lmbda_over_batches: float,
) -> Any:
    """The book's training cost of one mini-batch: ``mean(−ln a_y) + 0.5·λ/B·Σ‖w‖²`` (0-d array).

    ``x (m, n_in)``, ``y (m, n_out)`` one-hot, ``masks[i]`` the 0/1 dropout
    mask ``(m, layers[i].n_in)`` of layer ``i`` (or ``None``).  For gradient checks.
    """
    a = x
    last = len(layers) - 1
    for i, (layer, w, b) in enumerate(zip(layers, weights, biases)):
        if isinstance(layer, ConvPoolLayer):
            a = _conv_pool(xp, layer, w, b, a)[0]
            continue
        if masks[i] is not None:
            a = a * masks[i]
        z = a @ w + b
        a = z if i == last else layer.activation.fn(xp, z)
    cost = -xp.sum(y * log_softmax(xp, a, axis=1)) / x.shape[0]
    if lmbda_over_batches:
        cost = cost + 0.5 * lmbda_over_batches * sum(xp.sum(w * w) for w in weights)
    return cost
