"""What every network shares of the training protocol (:class:`portable_nn._train.protocol.Trainable`).

A network says how its parameters are read (``_params``) and held (``_hold``); this base keeps the
momentum velocities between ``SGD`` calls, gives the loop the network's float dtype, generator and ones
columns, and counts correct answers through the network's evaluator.
"""

from __future__ import annotations

from .._backend.backends import Backend
from .._base.types import Array, DType, Namespace
from .._data.forms import DeviceData
from .._math.initializers import RandomSource
from .._math.updates import State, Velocities, with_velocities
from .._train.evaluation import Evaluator


class TrainableNetwork:
    """Base of :class:`portable_nn._nets.dense.DenseNetwork` and :class:`portable_nn._nets.chapter6.Network`."""

    backend: Backend
    dtype: str
    xp: Namespace
    _rng: RandomSource
    _velocities: Velocities | None = None
    _ones_cache: dict[int, Array]
    _evaluator: Evaluator
    #: Fraction of saturated outputs at the last evaluation (the divergence check reads it).
    output_saturation: float = 0.0

    @property
    def float_dtype(self) -> DType:
        """The dtype object of the parameters (``xp.float64`` or ``xp.float32``)."""
        return self.backend.dtype(self.dtype)

    @property
    def random_source(self) -> RandomSource:
        """The NumPy generator of initial weights, shuffles and dropout masks (NumPy's global state with
        ``seed=None``)."""
        return self._rng

    def ones_column(self, m: int) -> Array:
        """A cached ``(m, 1)`` column of ones of the network's dtype on its device (the column layout's sums)."""
        ones = self._ones_cache.get(m)
        if ones is None:
            ones = self._ones_cache[m] = self.xp.ones((m, 1), dtype=self.float_dtype, device=self.backend.device)
        return ones

    def _count_correct(self, data: DeviceData) -> int:
        """Samples whose most active output is the label (one host copy); notes ``output_saturation``."""
        correct, self.output_saturation = self._evaluator.count_correct(*self._params(), data)
        return correct

    def _params(self) -> tuple[tuple[Array, ...], tuple[Array, ...]]:  # pragma: no cover - overridden
        """``(weights, biases)``: one array per layer, the network's own."""
        raise NotImplementedError

    def _hold(self, weights: tuple[Array, ...], biases: tuple[Array, ...]) -> None:  # pragma: no cover
        """Keep ``weights``/``biases`` (a step's own output: no checks)."""
        raise NotImplementedError

    def training_state(self, momentum: bool) -> State:
        """The parameters as a :class:`State`; with ``momentum`` also the velocities (zero at first)."""
        state = State(*self._params())
        return with_velocities(self.xp, state, self._velocities) if momentum else state

    def set_training_state(self, state: State) -> None:
        """Hold the step's own arrays (no checks), and its velocities for the next ``SGD`` call."""
        self._hold(state.weights, state.biases)
        if state.velocities_w:
            self._velocities = (state.velocities_w, state.velocities_b)
