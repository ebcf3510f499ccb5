"""The update rules of every network: plain SGD, L2 or L1 weight decay, momentum; and the state they update.

One :class:`UpdateRule` serves chapters 1, 3 and 6.  The gradients it is given
are already scaled by ``eta/m`` (the step scales the output δ once, which
scales every gradient below it), so for a weight ``w`` with scaled gradient
``g``:

* plain: ``w ← w − g``;
* L2: ``w ← (1 − eta·decay)·w − g``;  L1: ``w ← w − (eta·decay)·sgn(w) − g``;
* momentum (``mu > 0``): ``v ← mu·v − g − eta·R'(w)``, ``w ← w + v``, with
  ``R'`` the regulariser's gradient (``decay·w`` or ``decay·sgn(w)``).

Biases are never regularised.  ``decay`` is what the network calls the
regularisation strength per weight: ``lmbda/n`` in chapter 3 (``n`` training
samples), ``lmbda/num_training_batches`` in chapter 6, both as the book.

Nothing is updated in place (JAX arrays are immutable): :meth:`UpdateRule.apply` (and the function a
step binds once, :meth:`UpdateRule.function`) returns a new :class:`State`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, NamedTuple

if TYPE_CHECKING:
    from .._base.types import Array, Namespace

#: A network's momentum velocities between steps: ``(velocities_w, velocities_b)``.
Velocities = tuple[tuple["Array", ...], tuple["Array", ...]]
#: Regularisation kinds (the book's L2, and L1 from chapter 3).
REGULARIZATIONS = ("l2", "l1")


def check_regularization(regularization: object) -> str:
    """``regularization`` when it is one of :data:`REGULARIZATIONS`; ``ValueError`` naming it otherwise."""
    if regularization not in REGULARIZATIONS:
        raise ValueError(f"regularization must be one of {REGULARIZATIONS}; got {regularization!r}")
    return str(regularization)


class State(NamedTuple):
    """Everything one SGD step reads and returns (a JAX pytree as it stands).

    ``weights``/``biases``: one array per layer, in the layer's own shapes.
    ``velocities_w``/``velocities_b``: shaped like them with momentum, empty tuples without.
    """

    weights: tuple[Array, ...]
    biases: tuple[Array, ...]
    velocities_w: tuple[Array, ...] = ()
    velocities_b: tuple[Array, ...] = ()


@dataclass(frozen=True)
class UpdateRule:
    """How one step turns scaled gradients into new parameters (see the module docstring).

    ``decay``: the regularisation strength per weight (``0``: none); ``mu``:
    the momentum coefficient (``0``: plain SGD); ``regularization``: ``"l2"`` or ``"l1"``.
    """

    decay: float = 0.0
    mu: float = 0.0
    regularization: str = "l2"

    def __post_init__(self) -> None:
        check_regularization(self.regularization)

    @property
    def momentum(self) -> bool:
        """Whether the state carries velocities."""
        return self.mu != 0.0

    def apply(
        self, xp: Namespace, state: State, grads_w: Sequence[Array], grads_b: Sequence[Array], eta: float | Array
    ) -> State:
        """The new :class:`State` from ``state`` and gradients already scaled by ``eta/m``."""
        return self.function(xp)(state, grads_w, grads_b, eta)

    def function(self, xp: Namespace) -> Callable[[State, Sequence[Array], Sequence[Array], float | Array], State]:
        """``update(state, grads_w, grads_b, eta) -> State`` for this rule, chosen once (a step calls it per
        mini-batch): the book's plain update is then two comprehensions and nothing else."""
        if self.mu == 0.0 and self.decay == 0.0:
            return _plain
        return lambda state, grads_w, grads_b, eta: self._general(xp, state, grads_w, grads_b, eta)

    def _general(
        self, xp: Namespace, state: State, grads_w: Sequence[Array], grads_b: Sequence[Array], eta: float | Array
    ) -> State:
        """Decay and/or momentum (see the module docstring)."""
        mu, decay = self.mu, self.decay
        l2 = self.regularization == "l2"
        if mu == 0.0:
            if l2:
                keep = 1.0 - eta * decay
                weights = tuple([keep * w - g for w, g in zip(state.weights, grads_w)])
            else:
                shrink = eta * decay
                weights = tuple([w - shrink * xp.sign(w) - g for w, g in zip(state.weights, grads_w)])
            return State(weights, tuple([b - g for b, g in zip(state.biases, grads_b)]))
        velocities_w = []
        for w, g, v in zip(state.weights, grads_w, state.velocities_w):
            v = mu * v - g
            if decay != 0.0:
                v = v - eta * (decay * w if l2 else decay * xp.sign(w))
            velocities_w.append(v)
        velocities_b = tuple([mu * v - g for v, g in zip(state.velocities_b, grads_b)])
        return State(
            tuple([w + v for w, v in zip(state.weights, velocities_w)]),
            tuple([b + v for b, v in zip(state.biases, velocities_b)]),
            tuple(velocities_w),
            velocities_b,
        )


def _plain(state: State, grads_w: Sequence[Array], grads_b: Sequence[Array], eta: float | Array) -> State:
    """The book's chapter-1 update: ``w − g``, ``b − g``."""
    return State(
        tuple([w - g for w, g in zip(state.weights, grads_w)]),
        tuple([b - g for b, g in zip(state.biases, grads_b)]),
    )


def with_velocities(xp: Namespace, state: State, velocities: Velocities | None) -> State:
    """``state`` carrying ``velocities`` (``(velocities_w, velocities_b)``; zeros like the parameters if ``None``).

    The state a momentum step starts from: a network keeps the velocities its last step returned.
    """
    if velocities is None:
        velocities = (
            tuple(xp.zeros_like(w) for w in state.weights),
            tuple(xp.zeros_like(b) for b in state.biases),
        )
    return State(state.weights, state.biases, *velocities)


def regularization_cost(xp: Namespace, weights: Sequence[Array], decay: float, regularization: str) -> Array | float:
    """``(decay/2)·Σ‖w‖²`` (L2) or ``decay·Σ|w|`` (L1) over every layer's weights: a 0-d array (``0.0`` if no decay)."""
    if decay == 0.0:
        return 0.0
    if regularization == "l2":
        return 0.5 * decay * sum(xp.sum(w * w) for w in weights)
    return decay * sum(xp.sum(xp.abs(w)) for w in weights)
