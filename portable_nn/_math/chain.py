"""One chain of layers for every network: the forward pass, backprop of one mini-batch, and the SGD step.

A :class:`Chain` is a stack of :mod:`~portable_nn._math.layers` (chapters 1
and 3: :class:`~portable_nn._math.layers.Dense` columns; chapter 6:
:class:`~portable_nn._math.layers.ConvPool`/``Dense``/``Softmax`` rows).

* :meth:`Chain.forward`: the output (and the output layer's ``z``) for
  evaluation and predictions.
* :meth:`Chain.backprop`: **the backprop of one mini-batch** (the book's
  ``backprop``, chapter 2): forward keeping each layer's cache, the output δ
  from the cost, then each layer's backward from the last to the first.  This
  is the function a reader of the book edits for its exercises.
* :func:`make_step`: the pure SGD step ``step(state, inputs, targets, idx,
  ones, eta) -> State`` every network trains with: take the mini-batch's rows
  of the resident data, backprop, apply the :class:`~portable_nn._math.updates.UpdateRule`.
  It runs eagerly on NumPy, CuPy, PyTorch and array-api-strict, and is what
  ``jax.jit`` compiles (:mod:`portable_nn._backend.compiled`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import cache
from typing import TYPE_CHECKING, Any, cast

from .activations import Activation
from .costs import Cost, CostLike, UserCost
from .layers import Dense, Layer, Layout, Softmax
from .updates import State, UpdateRule

if TYPE_CHECKING:
    from .._base.types import Array, DType, Namespace

#: ``backprop(weights, biases, x, y, masks, ones, scale) -> (grads_w, grads_b)``.
Backprop = Callable[..., tuple[list[Any], list[Any]]]
#: ``step(state, inputs, targets, idx, ones, eta) -> State``.
Step = Callable[..., State]

#: Bit ``j`` of a byte packed by ``numpy.packbits`` (big-endian bit order) is ``(byte >> (7 − j)) & 1``.
SHIFTS = tuple(range(7, -1, -1))


@dataclass(frozen=True)
class Chain:
    """A stack of layers, each ``n_out`` the next one's ``n_in``, all of one layout; only the last may be softmax."""

    layers: tuple[Layer, ...]

    def __post_init__(self) -> None:
        if not self.layers:
            raise ValueError("a network needs at least one layer")
        layouts = {layer.layout for layer in self.layers}
        if len(layouts) != 1:
            raise ValueError("the layers of one network must share one layout (columns or rows)")
        for i, layer in enumerate(self.layers):
            if i and self.layers[i - 1].n_out != layer.n_in:
                raise ValueError(
                    f"layers[{i - 1}] gives {self.layers[i - 1].n_out} values per sample but layers[{i}] "
                    f"takes {layer.n_in}"
                )
            if i < len(self.layers) - 1 and isinstance(layer.activation, str):
                raise ValueError("only the output layer may be a softmax layer")

    @property
    def layout(self) -> Layout:
        """``"columns"`` (samples are columns, chapters 1 and 3) or ``"rows"`` (chapter 6)."""
        return self.layers[0].layout

    @property
    def feature_axis(self) -> int:
        """The axis of the output neurons: 0 (columns) or 1 (rows)."""
        return self.layers[-1].feature_axis

    @property
    def output(self) -> Activation | str:
        """The output layer's activation (an :class:`Activation`, or ``"softmax"``; never a user's: the
        networks build their output layers from the package's activations)."""
        return cast("Activation | str", self.layers[-1].activation)

    @property
    def n_in(self) -> int:
        return self.layers[0].n_in

    @property
    def n_out(self) -> int:
        return self.layers[-1].n_out

    def forward(
        self,
        xp: Namespace,
        weights: Sequence[Array],
        biases: Sequence[Array],
        x: Array,
        masks: Sequence[Array | None] | None = None,
    ) -> tuple[Array, Array]:
        """``(a, z)``: the output activations and the output layer's weighted inputs for ``x``.

        Without ``masks``, evaluation: dropout layers scale ``x·w`` by ``1 − p_dropout``.  With
        ``masks`` (one 0/1 array or ``None`` per layer), training: the masks multiply the layers'
        inputs, as in :meth:`backprop`.  Shapes: ``(n_out, m)`` for columns, ``(m, n_out)`` for rows.
        """
        z = x
        layer_masks = (None,) * len(self.layers) if masks is None else masks
        for f, w, b, mask in zip(_forwards(self, xp, masks is not None), weights, biases, layer_masks):
            x, z, _ = f(w, b, x, mask)
        return x, z

    def backprop(self, xp: Namespace, cost: CostLike) -> Backprop:
        """``backprop(weights, biases, x, y, masks, ones, scale) -> (grads_w, grads_b)`` of one mini-batch.

        ``x``/``y``: the mini-batch in the chain's layout; ``masks``: one 0/1
        dropout mask (or ``None``) per layer, or ``None`` for no dropout;
        ``ones``: an ``(m, 1)`` column of ones (columns layout; else unused);
        ``scale``: multiplies the output δ (the step passes ``eta/m``), or ``None``.
        Returns the gradients of the summed cost over the ``m`` samples, times
        ``scale``, shaped like ``weights``/``biases``.

        The output δ is ``cost.output_delta(xp, a, y, output)`` for the
        package's costs and the user's ``delta(z, a, y)`` for a
        :class:`~portable_nn._math.costs.UserCost`; which one is decided here,
        in Python, so a jitted step holds only the chosen path.
        """
        n = len(self.layers)
        forwards = [layer.forward(xp, training=True, keep=True) for layer in self.layers]
        backwards = [layer.backward(xp, output=i == n - 1, need_input=i > 0) for i, layer in enumerate(self.layers)]
        output = self.output
        user_cost = cost if isinstance(cost, UserCost) else None
        package_cost = cast("type[Cost]", cost)  # used only when user_cost is None
        no_masks = (None,) * n
        last = n - 1

        def backprop(
            weights: Sequence[Array],
            biases: Sequence[Array],
            x: Array,
            y: Array,
            masks: Sequence[Array | None] | None,
            ones: Array,
            scale: Array | float | None,
        ) -> tuple[list[Array], list[Array]]:
            layer_masks = no_masks if masks is None else masks
            caches = []
            a = z = x
            for i in range(n):
                a, z, kept = forwards[i](weights[i], biases[i], a, layer_masks[i])
                caches.append(kept)
            if user_cost is None:
                delta = package_cost.output_delta(xp, a, y, output)
            else:
                delta = user_cost.step_delta(xp, z, a, y, output)
            if scale is not None:
                delta = delta * scale
            grads_w: list[Array] = [None] * n
            grads_b: list[Array] = [None] * n
            for i in range(last, -1, -1):
                grads_w[i], grads_b[i], delta = backwards[i](weights[i], caches[i], delta, ones)
            return grads_w, grads_b

        return backprop


def softmax_chain(layers: Sequence[Layer]) -> Chain:
    """Chapter 6's stack as a :class:`Chain`: the last layer, and only the last, a
    :class:`~portable_nn._math.layers.Softmax` (the log-likelihood cost); ``ValueError`` otherwise."""
    if not layers:
        raise ValueError("layers must hold at least one layer (the last a SoftmaxLayer)")
    if any(isinstance(layer, Softmax) != (i == len(layers) - 1) for i, layer in enumerate(layers)):
        raise ValueError("the last layer, and only the last, must be a SoftmaxLayer (the log-likelihood cost)")
    return Chain(tuple(layers))


@cache
def _forwards(chain: Chain, xp: Namespace, training: bool) -> tuple[Callable[..., tuple[Any, Any, Any]], ...]:
    """The forward functions of ``chain``'s layers for ``xp`` (evaluation or training), built once."""
    return tuple(layer.forward(xp, training=training, keep=False) for layer in chain.layers)


def unpack_mask(xp: Namespace, packed: Array, n: int, dtype: DType, shifts: Array) -> Array:
    """``packed (m, ceil(n/8)) uint8`` (``numpy.packbits`` rows) as a ``(m, n)`` 0/1 mask of ``dtype``."""
    m, nb = packed.shape
    bits = xp.bitwise_and(xp.bitwise_right_shift(xp.expand_dims(packed, axis=2), shifts), 1)
    return xp.astype(xp.reshape(bits, (m, nb * 8))[:, :n], dtype)


def make_step(
    xp: Namespace,
    chain: Chain,
    cost: CostLike,
    rule: UpdateRule,
    *,
    divisor: float | None = None,
    dtype: DType = None,
    shifts: Array | None = None,
) -> Step:
    """The SGD step ``step(state, inputs, targets, idx, ones, eta) -> State`` of any network.

    One call takes the rows ``idx`` (``m`` indices of the backend's index
    dtype) of the resident data ``inputs (n, n_in)``/``targets (n, n_out)``
    (rows, whatever the chain's layout), runs :meth:`Chain.backprop` with the
    output δ scaled by ``eta/m`` and returns ``rule.apply(...)``.  ``eta`` is an
    argument, so a schedule changes it without rebuilding (or recompiling)
    the step; the rule's settings are fixed when the step is built.
    ``divisor``: compact inputs (uint8) are cast to ``dtype`` and divided by it per mini-batch.

    Dropout (``shifts``, :data:`SHIFTS` as a uint8 device array): ``targets``
    is then a pair ``(one_hot (n, n_out), packed)``, ``packed`` one ``(n,
    ceil(n_in/8))`` uint8 array of packed bits per layer with ``p_dropout >
    0``, row ``i`` the mask of sample ``i`` this epoch.
    """
    backprop = chain.backprop(xp, cost)
    update = rule.function(xp)
    take = xp.take
    columns = chain.layout == "columns"
    dropping = [isinstance(layer, Dense) and layer.p_dropout > 0.0 for layer in chain.layers]
    widths = [layer.n_in for layer in chain.layers]
    dropout = shifts is not None and any(dropping)

    def step(state: State, inputs: Array, targets: Any, idx: Array, ones: Array, eta: Array | float) -> State:
        x = take(inputs, idx, axis=0)
        if divisor is not None:
            x = xp.astype(x, dtype) / divisor
        masks = None
        if dropout:
            targets, packed = targets
            rows = iter(packed)
            masks = [
                unpack_mask(xp, take(next(rows), idx, axis=0), width, x.dtype, shifts) if drops else None
                for drops, width in zip(dropping, widths)
            ]
        y = take(targets, idx, axis=0)
        m = x.shape[0]
        if columns:
            x, y = x.T, y.T
        grads_w, grads_b = backprop(state.weights, state.biases, x, y, masks, ones, eta / m)
        return update(state, grads_w, grads_b, eta)

    return step


def cost_from_z(xp: Namespace, chain: Chain, cost: CostLike, z: Array, targets: Array) -> Array:
    """The cost summed over a chunk, from the output layer's ``z`` and one-hot ``targets`` in the chain's layout.

    The package's costs use their stable ``from_z`` (never ``log(0)``), a user's cost its ``fn``; both
    take the book's columns, so chapter 6's rows are transposed (views, no copy).
    """
    if chain.layout == "rows":
        z, targets = xp.matrix_transpose(z), xp.matrix_transpose(targets)
    return cost.from_z(xp, z, targets, chain.output)


def training_loss(
    xp: Namespace,
    chain: Chain,
    weights: Sequence[Array],
    biases: Sequence[Array],
    x: Array,
    y: Array,
    masks: Sequence[Array | None],
    cost: CostLike,
) -> Array:
    """The summed cost of one mini-batch as the step sees it (dropout ``masks`` applied, no ``1 − p`` scaling).

    For gradient checks: central differences of this equal :meth:`Chain.backprop`'s gradients.
    """
    _, z = chain.forward(xp, weights, biases, x, masks)
    return cost_from_z(xp, chain, cost, z, y)
