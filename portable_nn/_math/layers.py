"""The layers of every network, each as a frozen spec with its forward and its backward side by side.

Three kinds, standard namespace only:

* :class:`Dense`: ``act(w·a + b)``.  ``layout="columns"`` is the book's
  chapters 1 and 3 (samples are columns: ``a (n_in, m)``, ``w (n_out, n_in)``,
  ``b (n_out, 1)``); ``layout="rows"`` is chapter 6 (samples are rows:
  ``a (m, n_in)``, ``w (n_in, n_out)``, ``b (n_out,)``), with dropout on its
  inputs when ``p_dropout > 0``.
* :class:`Softmax`: a :class:`Dense` whose activation is the softmax over the
  neurons (chapter 3's softmax output, chapter 6's ``SoftmaxLayer``).
* :class:`ConvPool`: chapter 6's convolution + max-pooling + activation, rows
  in and out (``(m, c·h·w)`` → ``(m, f·oh·ow)``, NCHW inside, the row-major
  flattening of Theano's ``reshape``).

A layer builds, once per step, the two functions the chain calls for every
mini-batch (so the per-call work is only the arithmetic):

* ``forward(xp, training=..., keep=...)`` → ``f(w, b, a, mask) -> (out, z, cache)``:
  the layer's output, its weighted input ``z`` and, with ``keep``, what its
  backward needs.  Training applies the dropout ``mask`` (0/1, or ``None``) to
  the inputs; evaluation multiplies ``x·w`` by ``1 − p_dropout`` instead (the book's).
* ``backward(xp, output=..., need_input=...)`` → ``g(w, cache, grad, ones) -> (grad_w, grad_b, grad_in)``:
  ``grad`` is ``∂C/∂out`` (or, for the output layer, ``∂C/∂z`` as the cost
  gives it); returns the gradients of ``w`` and ``b`` and ``∂C/∂a`` of the
  layer's input (``None`` unless ``need_input``).  ``ones`` is an ``(m, 1)``
  column of ones (the column layout sums over samples with one matmul).

Nothing is updated in place, and nothing branches on array values, so the
same functions run eagerly on every backend and under ``jax.jit``.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from typing import TYPE_CHECKING, Any, ClassVar, Literal

from .activations import ACTIVATIONS, SIGMOID, Activation, AnyActivation, UserActivation, get_activation, softmax
from .conv import conv_backward, conv_forward_with_patches, maxpool_backward, maxpool_forward

if TYPE_CHECKING:
    from .._base.types import Array, Namespace

#: Where the samples are: the book's columns (chapters 1, 3) or rows (chapter 6).
Layout = Literal["columns", "rows"]
#: The name of the softmax output activation (not element-wise, so not an :class:`Activation`).
SOFTMAX = "softmax"
#: ``f(w, b, a, mask) -> (out, z, cache)``.
Forward = Callable[[Any, Any, Any, Any], tuple[Any, Any, Any]]
#: ``g(w, cache, grad, ones) -> (grad_w, grad_b, grad_in)``.
Backward = Callable[[Any, Any, Any, Any], tuple[Any, Any, Any]]


def _check_positive(values: tuple[int, ...], what: str) -> None:
    if any(isinstance(v, bool) or not isinstance(v, int) or v < 1 for v in values):
        raise ValueError(f"{what} must be positive ints; got {values!r}")


def _check_dropout(p_dropout: float) -> None:
    if isinstance(p_dropout, bool) or not isinstance(p_dropout, (int, float)) or not 0.0 <= p_dropout < 1.0:
        raise ValueError(f"p_dropout must be a number in [0, 1); got {p_dropout!r}")


def _outer(delta: Array, a_prev: Array) -> Array:
    """``delta @ a_prevᵀ``; for one column a broadcast product (NumPy sends ``(n,1)@(1,k)`` to no BLAS)."""
    if delta.shape[1] == 1:
        return delta * a_prev.T
    return delta @ a_prev.T


def _column_sum(delta: Array, ones: Array) -> Array:
    """``Σ_columns delta`` as ``(n, 1)``: one matmul with a ones column (cheaper than ``sum`` for small batches)."""
    if delta.shape[1] == 1:
        return delta
    return delta @ ones


@dataclass(frozen=True)
class Dense:
    """A fully connected layer ``act(w·a + b)`` (see the module docstring for the two layouts).

    ``activation``: an :class:`Activation`, a :class:`UserActivation` (its
    ``prime(z)`` then needs ``z`` kept), or ``"softmax"`` (output layers only).
    ``p_dropout``: chapter 6's dropout on the inputs (rows layout only).
    """

    n_in: int
    n_out: int
    activation: AnyActivation | str = SIGMOID
    layout: Layout = "columns"
    p_dropout: float = 0.0

    def __post_init__(self) -> None:
        _check_positive((self.n_in, self.n_out), "(n_in, n_out)")
        _check_dropout(self.p_dropout)
        if self.layout not in ("columns", "rows"):
            raise ValueError(f"layout must be 'columns' or 'rows'; got {self.layout!r}")
        if self.p_dropout and self.layout == "columns":
            raise ValueError("dropout is chapter 6's (rows layout); a columns layer must have p_dropout 0")
        if isinstance(self.activation, str) and self.activation != SOFTMAX:
            raise ValueError(f"a Dense activation given by name must be {SOFTMAX!r}; got {self.activation!r}")

    @property
    def w_shape(self) -> tuple[int, ...]:
        """``(n_out, n_in)`` (columns) or ``(n_in, n_out)`` (rows)."""
        return (self.n_out, self.n_in) if self.layout == "columns" else (self.n_in, self.n_out)

    @property
    def b_shape(self) -> tuple[int, ...]:
        """``(n_out, 1)`` (columns) or ``(n_out,)`` (rows)."""
        return (self.n_out, 1) if self.layout == "columns" else (self.n_out,)

    @property
    def feature_axis(self) -> int:
        """The axis of the neurons in ``a``, ``z`` and the output: 0 (columns) or 1 (rows)."""
        return 0 if self.layout == "columns" else 1

    @property
    def keeps_z(self) -> bool:
        """Whether backward needs ``z`` (a user's ``prime(z)``), not only the output."""
        return isinstance(self.activation, UserActivation)

    def forward(self, xp: Namespace, *, training: bool, keep: bool) -> Forward:
        """``f(w, b, a, mask) -> (out, z, cache)``; ``cache = (input, mask, out, z or None)`` with ``keep``."""
        keep_z, activation, axis = self.keeps_z, self.activation, self.feature_axis
        # the activation's own function, bound once (the forward runs for every mini-batch)
        activate: Callable[[Namespace, Array], Array] = (
            partial(softmax, axis=axis) if isinstance(activation, str) else activation.fn
        )
        if self.layout == "columns":

            def columns(w: Array, b: Array, a: Array, mask: Array) -> tuple[Array, Array, Any]:
                z = w @ a + b
                out = activate(xp, z)
                return out, z, (a, None, out, z if keep_z else None) if keep else None

            return columns
        scale = 1.0 - self.p_dropout

        def rows(w: Array, b: Array, a: Array, mask: Array) -> tuple[Array, Array, Any]:
            if mask is not None:
                a = a * mask
                z = a @ w + b
            elif not training and scale != 1.0:
                z = scale * (a @ w) + b
            else:
                z = a @ w + b
            out = activate(xp, z)
            return out, z, (a, mask, out, z if keep_z else None) if keep else None

        return rows

    def backward(self, xp: Namespace, *, output: bool, need_input: bool) -> Backward:
        """``g(w, cache, grad, ones) -> (grad_w, grad_b, grad_in)`` (see the module docstring)."""
        activation = self.activation
        # σ' from the outputs alone (the package's), or from z (a user's prime(z)); None: the cost gave ∂C/∂z
        prime: Callable[[Any, Any], Any] | None = None
        use_z = self.keeps_z
        if output:
            pass
        elif isinstance(activation, Activation):
            prime = activation.prime_from_output
        elif isinstance(activation, UserActivation):
            prime = activation.prime_of_z
        else:
            raise ValueError("a softmax layer must be the output layer")
        if self.layout == "columns":

            def columns(w: Array, cache: Any, grad: Array, ones: Array) -> tuple[Array, Array, Array]:
                a, _, out, z = cache
                dz = grad if prime is None else grad * prime(xp, z if use_z else out)
                return _outer(dz, a), _column_sum(dz, ones), (w.T @ dz if need_input else None)

            return columns

        def rows(w: Array, cache: Any, grad: Array, ones: Array) -> tuple[Array, Array, Array]:
            a, mask, out, z = cache
            dz = grad if prime is None else grad * prime(xp, z if use_z else out)
            grad_w, grad_b, grad_in = xp.matrix_transpose(a) @ dz, xp.sum(dz, axis=0), None
            if need_input:
                grad_in = dz @ xp.matrix_transpose(w)
                if mask is not None:
                    grad_in = grad_in * mask
            return grad_w, grad_b, grad_in

        return rows


@dataclass(frozen=True)
class Softmax(Dense):
    """The softmax output layer: a :class:`Dense` whose activation is the softmax over the neurons."""

    activation: AnyActivation | str = SOFTMAX

    def __post_init__(self) -> None:
        if self.activation != SOFTMAX:
            raise ValueError(f"a Softmax layer's activation is the softmax; got {self.activation!r}")
        super().__post_init__()


@dataclass(frozen=True)
class ConvPool:
    """Convolution, max-pooling, bias and activation: ``act(maxpool(conv(x, w)) + b)``, samples as rows.

    ``filter_shape (f, c, kh, kw)`` is ``w``'s shape (``b`` is ``(f,)``);
    ``image_shape (mini_batch, c, h, w)`` as the book (the first entry is not
    used: any mini-batch runs); ``poolsize (ph, pw)`` non-overlapping windows.
    The convolution is a true one (kernel flipped, Theano's ``conv2d``); ties in
    a pooling window all get the gradient (Theano's ``MaxPoolGrad``): see
    :mod:`portable_nn._math.conv`.
    """

    filter_shape: tuple[int, int, int, int]
    image_shape: tuple[int, int, int, int]
    poolsize: tuple[int, int] = (2, 2)
    activation: AnyActivation = SIGMOID

    layout: ClassVar[Layout] = "rows"
    p_dropout: ClassVar[float] = 0.0
    feature_axis: ClassVar[int] = 1

    def __post_init__(self) -> None:
        _check_positive((*self.filter_shape, *self.image_shape, *self.poolsize), "shapes")
        _, c, kh, kw = self.filter_shape
        _, ci, h, wd = self.image_shape
        if c != ci:
            raise ValueError(f"filter_shape {self.filter_shape} expects {c} input maps; image_shape has {ci}")
        if kh > h or kw > wd:
            raise ValueError(f"filters {kh}x{kw} do not fit images {h}x{wd}")
        ph, pw = self.poolsize
        if ph > h - kh + 1 or pw > wd - kw + 1:
            raise ValueError(f"poolsize {self.poolsize} does not fit the {self.conv_shape} feature maps")
        if isinstance(self.activation, str):
            raise ValueError("a ConvPool activation must be element-wise (not the softmax)")

    @property
    def conv_shape(self) -> tuple[int, int]:
        """``(oh, ow)`` of the convolution's feature maps, before pooling."""
        return (self.image_shape[2] - self.filter_shape[2] + 1, self.image_shape[3] - self.filter_shape[3] + 1)

    @property
    def out_shape(self) -> tuple[int, int, int]:
        """``(f, oh // ph, ow // pw)``: one sample's output maps."""
        oh, ow = self.conv_shape
        return (self.filter_shape[0], oh // self.poolsize[0], ow // self.poolsize[1])

    @property
    def n_in(self) -> int:
        """``c·h·w`` values per sample."""
        return math.prod(self.image_shape[1:])

    @property
    def n_out(self) -> int:
        """``f·(oh // ph)·(ow // pw)`` values per sample."""
        return math.prod(self.out_shape)

    @property
    def w_shape(self) -> tuple[int, ...]:
        return self.filter_shape

    @property
    def b_shape(self) -> tuple[int, ...]:
        return (self.filter_shape[0],)

    @property
    def keeps_z(self) -> bool:
        return isinstance(self.activation, UserActivation)

    def forward(self, xp: Namespace, *, training: bool, keep: bool) -> Forward:
        """``f(w, b, a, mask) -> (out (m, n_out), z (m, f, oh, ow), cache)`` (``mask`` is unused)."""
        _, c, h, wd = self.image_shape
        f = self.filter_shape[0]
        ph, pw = self.poolsize
        n_out, keep_z, fn = self.n_out, self.keeps_z, self.activation.fn

        def conv_pool(w: Array, b: Array, a: Array, mask: Array) -> tuple[Array, Array, Any]:
            m = a.shape[0]
            conv, patches = conv_forward_with_patches(xp.reshape(a, (m, c, h, wd)), w)
            pooled, pool_cache = maxpool_forward(conv, ph, pw)
            z = pooled + xp.reshape(b, (1, f, 1, 1))
            act = fn(xp, z)
            cache = (patches, pool_cache, act, z if keep_z else None) if keep else None
            return xp.reshape(act, (m, n_out)), z, cache

        return conv_pool

    def backward(self, xp: Namespace, *, output: bool, need_input: bool) -> Backward:
        """``g(w, cache, grad (m, n_out), ones) -> (grad_w, grad_b, grad_in (m, n_in) or None)``."""
        if output:
            raise ValueError("a ConvPool layer cannot be the output layer")
        f, oh, ow = self.out_shape
        n_in, derivative = self.n_in, self.activation.derivative

        def conv_pool(w: Array, cache: Any, grad: Array, ones: Array) -> tuple[Array, Array, Array]:
            patches, pool_cache, act, z = cache
            m = grad.shape[0]
            dz = xp.reshape(grad, (m, f, oh, ow)) * derivative(xp, z, act)
            grad_b = xp.sum(dz, axis=(0, 2, 3))
            grad_w, _, grad_x = conv_backward(maxpool_backward(dz, pool_cache), patches, w, need_grad_x=need_input)
            grad_in = xp.reshape(grad_x, (m, n_in)) if need_input else None
            return grad_w, grad_b, grad_in

        return conv_pool


#: Any layer of a chain.
Layer = Dense | ConvPool


# -- layers as plain data (model files) ----------------------------------------------------------------
def layer_spec(layer: Layer) -> dict[str, Any]:
    """A chapter-6 layer as the JSON-ready dict of network3's model files (the book's class names)."""
    name = layer.activation.name if not isinstance(layer.activation, str) else SOFTMAX
    if isinstance(layer, ConvPool):
        return {
            "type": "ConvPoolLayer",
            "filter_shape": list(layer.filter_shape),
            "image_shape": list(layer.image_shape),
            "poolsize": list(layer.poolsize),
            "activation_fn": name,
        }
    if isinstance(layer, Softmax):
        return {"type": "SoftmaxLayer", "n_in": layer.n_in, "n_out": layer.n_out, "p_dropout": layer.p_dropout}
    return {
        "type": "FullyConnectedLayer",
        "n_in": layer.n_in,
        "n_out": layer.n_out,
        "activation_fn": name,
        "p_dropout": layer.p_dropout,
    }


_SPEC_KEYS = {
    "ConvPoolLayer": {"filter_shape", "image_shape", "poolsize", "activation_fn"},
    "FullyConnectedLayer": {"n_in", "n_out", "activation_fn", "p_dropout"},
    "SoftmaxLayer": {"n_in", "n_out", "p_dropout"},
}


def _ints(value: object, name: str, length: int) -> tuple[int, ...]:
    if not isinstance(value, (list, tuple)) or len(value) != length:
        raise ValueError(f"{name} must be a list of {length} positive ints; got {value!r:.80}")
    items = tuple(value)
    _check_positive(items, name)
    return items


def _number(value: object, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ValueError(f"{name} must be a number; got {value!r:.80}")
    return float(value)


def layer_from_spec(spec: object) -> Layer:
    """The rows-layout layer a :func:`layer_spec` dict describes (``ValueError`` if malformed)."""
    if not isinstance(spec, dict) or spec.get("type") not in _SPEC_KEYS:
        raise ValueError(f"a layer spec must be an object with type one of {tuple(_SPEC_KEYS)}; got {spec!r:.120}")
    kind = spec["type"]
    extra = set(spec) - {"type"} - _SPEC_KEYS[kind]
    if extra:
        raise ValueError(f"unexpected keys {sorted(extra)} in a {kind} spec")
    name = spec.get("activation_fn", "sigmoid")
    if not isinstance(name, str) or name.strip().lower() not in ACTIVATIONS:
        raise ValueError(f"activation_fn must be one of {', '.join(map(repr, ACTIVATIONS))}; got {name!r:.80}")
    activation = get_activation(name, "activation_fn")
    if kind == "ConvPoolLayer":
        filters = _ints(spec.get("filter_shape"), "filter_shape", 4)
        images = _ints(spec.get("image_shape"), "image_shape", 4)
        pool = _ints(spec.get("poolsize", [2, 2]), "poolsize", 2)
        return ConvPool(filters, images, pool, activation)  # type: ignore[arg-type]  # lengths checked
    n_in, n_out = (spec.get(k) for k in ("n_in", "n_out"))
    if not all(isinstance(v, int) and not isinstance(v, bool) for v in (n_in, n_out)):
        raise ValueError(f"n_in and n_out must be positive ints; got {n_in!r:.40} and {n_out!r:.40}")
    p = _number(spec.get("p_dropout", 0.0), "p_dropout")
    if kind == "SoftmaxLayer":
        return Softmax(n_in, n_out, layout="rows", p_dropout=p)  # type: ignore[arg-type]
    return Dense(n_in, n_out, activation, layout="rows", p_dropout=p)  # type: ignore[arg-type]
