"""The math of a fully connected network, once, for every facade and every backend.

Standard namespace only: ``matmul``, element-wise functions, ``take``,
``astype``, slicing and ``.T`` of 2-D arrays, Python floats as scalars.  A
mini-batch of ``m`` samples is an ``(n_in, m)`` column matrix (the book's
chapter 2); ``weights[l]`` is ``(n_out, n_in)`` and ``biases[l]`` ``(n_out, 1)``.

Nothing here updates an array in place: :func:`make_step` builds a pure
function ``step(state, inputs, targets, idx, ones, eta) -> state``, so the
very same function runs eagerly on NumPy, CuPy, PyTorch and array-api-strict
and is what ``jax.jit`` compiles (see :mod:`portable_nn.compiled`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple, cast

from .activations import SIGMOID, Activation, AnyActivation, UserActivation
from .costs import Cost, CostLike, QuadraticCost, UserCost, output_activation

#: Regularisation kinds accepted by ``lmbda`` (the book's L2, and L1 from chapter 3).
REGULARIZATIONS = ("l2", "l1")


@dataclass(frozen=True)
class DenseSpec:
    """What kind of fully connected network: neurons, output layer and cost.

    Attributes
    ----------
    hidden:
        Activation of the hidden layers (sigmoid in chapters 1 and 3): one of
        the package's, or a :class:`portable_nn.activations.UserActivation`
        (backprop then keeps each layer's ``z`` for its derivative).
    output:
        Activation of the output layer, or ``"softmax"``.
    cost:
        A :class:`portable_nn.costs.Cost` class, or a
        :class:`portable_nn.costs.UserCost` (the step calls its ``step_delta``,
        the user's ``delta``).
    """

    hidden: AnyActivation = SIGMOID
    output: Activation | str = SIGMOID
    cost: CostLike = QuadraticCost

    def __post_init__(self) -> None:
        needed = self.cost.output
        have = self.output.name if isinstance(self.output, Activation) else self.output
        if needed is not None and have != needed:
            raise ValueError(f"cost {self.cost.name} needs a {needed} output layer; the network's output is {have}")
        if needed is None and not isinstance(self.output, Activation):
            raise ValueError(f"cost {self.cost.name} cannot be used with a {self.output} output layer")


class State(NamedTuple):
    """Everything one SGD step reads and returns (a JAX pytree as it stands).

    ``velocities_w``/``velocities_b`` are empty tuples without momentum.
    """

    weights: tuple[Any, ...]
    biases: tuple[Any, ...]
    velocities_w: tuple[Any, ...] = ()
    velocities_b: tuple[Any, ...] = ()


def forward(
    xp: Any, spec: DenseSpec, weights: Sequence[Any], biases: Sequence[Any], a: Any, *, keep: bool = False
) -> tuple[Any, Any, list[Any]]:
    """Feed ``a (n_in, m)`` through the network.

    Returns ``(a_out, z_out, activations)``: the output activations and the
    output layer's weighted inputs, both ``(n_out, m)``, and, when ``keep``,
    the list of every layer's activations starting with the input.
    """
    activations = [a] if keep else []
    last = len(weights) - 1
    z = a
    for layer, (w, b) in enumerate(zip(weights, biases)):
        z = w @ a + b
        a = output_activation(xp, spec.output, z) if layer == last else spec.hidden.fn(xp, z)
        if keep:
            activations.append(a)
    return a, z, activations


def _outer(delta: Any, a_prev: Any) -> Any:
    """``delta @ a_prevᵀ``; for one column a broadcast product (NumPy sends ``(n,1)@(1,k)`` to no BLAS)."""
    if delta.shape[1] == 1:
        return delta * a_prev.T
    return delta @ a_prev.T


def _column_sum(delta: Any, ones: Any) -> Any:
    """``Σ_columns delta`` as ``(n, 1)``: one matmul with a ones column (cheaper than ``sum`` for small batches)."""
    if delta.shape[1] == 1:
        return delta
    return delta @ ones


def gradients(
    xp: Any,
    spec: DenseSpec,
    weights: Sequence[Any],
    biases: Sequence[Any],
    x: Any,
    y: Any,
    ones: Any,
    scale: Any = None,
) -> tuple[list[Any], list[Any]]:
    """Backprop of a column mini-batch ``x (n_in, m)``, ``y (n_out, m)``.

    Returns ``(nabla_b, nabla_w)`` shaped like ``biases``/``weights``: the
    gradient of the cost summed over the ``m`` columns, times ``scale`` when
    given (scaling the output δ once scales every gradient below it).
    ``ones`` is an ``(m, 1)`` column of ones of the network's dtype.
    """
    return _backprop_for(xp, spec)(weights, biases, x, y, ones, scale)


def _backprop_for(
    xp: Any, spec: DenseSpec
) -> Callable[[Sequence[Any], Sequence[Any], Any, Any, Any, Any], tuple[list[Any], list[Any]]]:
    """:func:`gradients` with ``xp`` and ``spec`` bound once (the step calls it thousands of times per epoch).

    The package's costs and activations run exactly the fused code they
    always did: the output δ is ``cost.output_delta(xp, a, y, output)`` and
    σ' is ``prime_from_output`` of the stored activations.  A user's cost
    (:class:`portable_nn.costs.UserCost`) gives the δ through
    ``step_delta(xp, z, a, y, output)`` (its ``delta(z, a, y)``); a user's
    activation keeps each layer's ``z`` for its ``prime(z)``.  Which one is
    decided here, in Python, so a jitted step contains only the chosen path.
    """
    hidden = spec.hidden.fn
    keep_z = spec.hidden.needs_z
    # σ' from what backprop keeps: the outputs a (ours) or the weighted inputs z (a user's prime(z)).
    hidden_prime = spec.hidden.prime_of_z if isinstance(spec.hidden, UserActivation) else spec.hidden.prime_from_output
    output = spec.output
    user_cost = spec.cost if isinstance(spec.cost, UserCost) else None
    cost = cast("type[Cost]", spec.cost)  # used only when user_cost is None

    def backprop(
        weights: Sequence[Any], biases: Sequence[Any], x: Any, y: Any, ones: Any, scale: Any
    ) -> tuple[list[Any], list[Any]]:
        activations = [x]
        zs: list[Any] = []
        a = x
        last = len(weights) - 1
        for layer, (w, b) in enumerate(zip(weights, biases)):
            z = w @ a + b
            if keep_z:
                zs.append(z)
            a = output_activation(xp, output, z) if layer == last else hidden(xp, z)
            activations.append(a)
        if user_cost is None:
            delta = cost.output_delta(xp, a, y, output)
        else:
            delta = user_cost.step_delta(xp, z, a, y, output)
        if scale is not None:
            delta = delta * scale
        nabla_b: list[Any] = [None] * (last + 1)
        nabla_w: list[Any] = [None] * (last + 1)
        for layer in range(last, -1, -1):
            if layer < last:
                kept = zs[layer] if keep_z else activations[layer + 1]
                delta = (weights[layer + 1].T @ delta) * hidden_prime(xp, kept)
            nabla_b[layer] = _column_sum(delta, ones)
            nabla_w[layer] = _outer(delta, activations[layer])
        return nabla_b, nabla_w

    return backprop


def make_step(
    xp: Any,
    spec: DenseSpec,
    *,
    lmbda: float = 0.0,
    n: int = 1,
    mu: float = 0.0,
    regularization: str = "l2",
    divisor: float | None = None,
    dtype: Any = None,
) -> Callable[..., State]:
    """The SGD step ``step(state, inputs, targets, idx, ones, eta) -> State``.

    One call takes the rows ``idx`` (an int64 index array of length ``m``) of
    the resident data set ``inputs (n, n_in)``/``targets (n, n_out)``, runs one
    backprop and returns the updated :class:`State`.  The update is the book's:

    * ``lmbda == 0``: ``w ← w − (eta/m)·∇w``;
    * L2: ``w ← (1 − eta·lmbda/n)·w − (eta/m)·∇w``;  L1: ``w ← w − (eta·lmbda/n)·sgn(w) − (eta/m)·∇w``;
    * momentum (``mu > 0``): ``v ← mu·v − eta·(∇w/m + R'(w))``, ``w ← w + v``,
      with ``R'`` the regulariser's gradient; biases are never regularised.

    ``lmbda``, ``n``, ``mu`` and ``regularization`` are fixed when the step is
    built; ``eta`` is an argument so a schedule can change it (under
    ``jax.jit`` without recompiling).  ``divisor``: compact inputs (uint8) are
    cast to ``dtype`` and divided by it per batch.
    """
    if regularization not in REGULARIZATIONS:
        raise ValueError(f"regularization must be one of {REGULARIZATIONS}; got {regularization!r}")
    decay = lmbda / n

    def regularizer_gradient(w: Any) -> Any:
        return decay * w if regularization == "l2" else decay * xp.sign(w)

    def update_weight(w: Any, nw: Any, v: Any, eta: Any) -> tuple[Any, Any]:
        if mu != 0.0:
            v = mu * v - nw
            if lmbda != 0.0:
                v = v - eta * regularizer_gradient(w)
            return w + v, v
        if lmbda == 0.0:
            return w - nw, v
        if regularization == "l2":
            return (1.0 - eta * decay) * w - nw, v
        return w - (eta * decay) * xp.sign(w) - nw, v

    backprop = _backprop_for(xp, spec)
    take = xp.take
    plain = mu == 0.0 and lmbda == 0.0

    def step(state: State, inputs: Any, targets: Any, idx: Any, ones: Any, eta: Any) -> State:
        x = take(inputs, idx, axis=0)
        if divisor is not None:
            x = xp.astype(x, dtype) / divisor
        y = take(targets, idx, axis=0)
        nabla_b, nabla_w = backprop(state.weights, state.biases, x.T, y.T, ones, eta / x.shape[0])
        if plain:  # the book's chapter-1 update, the common case
            return State(
                tuple([w - nw for w, nw in zip(state.weights, nabla_w)]),
                tuple([b - nb for b, nb in zip(state.biases, nabla_b)]),
            )
        weights, velocities_w = [], []
        for i, (w, nw) in enumerate(zip(state.weights, nabla_w)):
            new_w, v = update_weight(w, nw, state.velocities_w[i] if mu != 0.0 else None, eta)
            weights.append(new_w)
            velocities_w.append(v)
        if mu != 0.0:
            velocities_b = tuple(mu * v - nb for v, nb in zip(state.velocities_b, nabla_b))
            biases = tuple(b + v for b, v in zip(state.biases, velocities_b))
            return State(tuple(weights), biases, tuple(velocities_w), velocities_b)
        return State(tuple(weights), tuple(b - nb for b, nb in zip(state.biases, nabla_b)))

    return step


def regularization_cost(xp: Any, weights: Sequence[Any], lmbda: float, n: int, regularization: str) -> Any:
    """``(lmbda/2n)·Σ‖w‖²`` (L2) or ``(lmbda/n)·Σ|w|`` (L1), a 0-d device array (``0.0`` when ``lmbda == 0``)."""
    if lmbda == 0.0:
        return 0.0
    if regularization == "l2":
        return 0.5 * (lmbda / n) * sum(xp.sum(w * w) for w in weights)
    return (lmbda / n) * sum(xp.sum(xp.abs(w)) for w in weights)
