"""The public training interface: what the epoch loop, checkpoints, the CLI and the sweep need from any network.

Every network of the package (chapters 1, 3 and 6) implements
:class:`Trainable`; nothing outside a network touches its private members.
A network's parameters travel as a :class:`~portable_nn._math.updates.State`
(one array per layer, plus the momentum velocities), the network's own
arrays on its own backend.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

from .._backend.backends import Backend
from .._base.types import Array, DType
from .._math.initializers import RandomSource
from .._math.updates import State, UpdateRule

#: ``step(state, inputs, targets, idx, ones, eta) -> State`` (see :func:`portable_nn._math.chain.make_step`).
Step = Callable[..., State]
#: A compiled chunk of steps (JAX), or ``None`` where the backend runs the step eagerly.
Epoch = Callable[..., State] | None


class Trainable(Protocol):
    """What :func:`portable_nn._train.loop.sgd` needs from a network.

    ``backend``: where its arrays live; ``float_dtype``: their dtype object; ``ones_column``: the ones
    column a step sums columns with;
    ``random_source``: the host NumPy generator every shuffle (and dropout mask)
    is drawn from; ``output_saturation``: the fraction of saturated outputs at
    the last evaluation (the divergence check reads it).
    """

    backend: Backend
    output_saturation: float

    @property
    def float_dtype(self) -> DType:
        """The dtype object of the network's parameters (``xp.float32`` or ``xp.float64``)."""
        ...

    @property
    def random_source(self) -> RandomSource:
        """The network's NumPy generator (or NumPy's global state with ``seed=None``)."""
        ...

    def ones_column(self, m: int) -> Array:
        """An ``(m, 1)`` column of ones of the network's dtype on its device (every step gets one)."""
        ...

    def training_state(self, momentum: bool) -> State:
        """The parameters (and, with ``momentum``, the velocities, zero at first) as a :class:`State`."""
        ...

    def set_training_state(self, state: State) -> None:
        """Hold ``state``'s arrays (the step's own output: not checked again)."""
        ...

    def training_step(self, rule: UpdateRule, divisor: float | None) -> tuple[Step, Epoch]:
        """The step for ``rule`` (and the compiled chunk of steps on JAX), built once per setting."""
        ...
