"""Chapters 1 and 3 as stacks of :class:`~portable_nn._math.layers.Dense` columns: what kind of network, as data.

A :class:`DenseSpec` says which neurons, output layer and cost a fully
connected network has; :meth:`DenseSpec.chain` is the
:class:`~portable_nn._math.chain.Chain` of ``Dense`` layers for given
``sizes`` (the book's column layout: a mini-batch of ``m`` samples is an
``(n_in, m)`` matrix, ``weights[l]`` is ``(n_out, n_in)``, ``biases[l]``
``(n_out, 1)``).  The math itself is the chain's, shared with chapter 6.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from .activations import SIGMOID, Activation, AnyActivation
from .chain import Chain
from .costs import CostLike, QuadraticCost
from .layers import SOFTMAX, Dense, Layer, Softmax

__all__ = ["DenseSpec"]


@dataclass(frozen=True)
class DenseSpec:
    """What kind of fully connected network: neurons, output layer and cost.

    Attributes
    ----------
    hidden:
        Activation of the hidden layers (sigmoid in chapters 1 and 3): one of
        the package's, or a :class:`portable_nn._math.activations.UserActivation`
        (backprop then keeps each layer's ``z`` for its derivative).
    output:
        Activation of the output layer, or ``"softmax"``.
    cost:
        A :class:`portable_nn._math.costs.Cost` class, or a
        :class:`portable_nn._math.costs.UserCost` (the step calls its ``step_delta``,
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

    def chain(self, sizes: Sequence[int]) -> Chain:
        """The :class:`Chain` of ``Dense`` column layers for ``sizes`` (e.g. ``[784, 30, 10]``): hidden, then output."""
        last = len(sizes) - 2
        layers: list[Layer] = []
        for i, (n_in, n_out) in enumerate(zip(sizes[:-1], sizes[1:])):
            if i < last:
                layers.append(Dense(n_in, n_out, self.hidden))
            elif self.output == SOFTMAX:
                layers.append(Softmax(n_in, n_out))
            else:
                layers.append(Dense(n_in, n_out, self.output))
        return Chain(tuple(layers))
