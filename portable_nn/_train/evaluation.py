"""The one evaluation loop of every network: accuracy, output saturation and cost over resident data, in chunks.

The data is resident on the device (:class:`~portable_nn._data.forms.DeviceData`,
samples as rows, compact uint8 inputs scaled per chunk).  Each chunk goes
through the network's :class:`~portable_nn._math.chain.Chain` (evaluation
semantics: dropout scaled by ``1 − p``); the counts stay on the device and
come to the host once per call, so evaluating costs one synchronisation, not
one per chunk.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import array_api_extra as xpx

from .._backend.backends import Backend, host_view
from .._backend.compiled import compile_function
from .._base.types import Array, DType
from .._data.forms import DeviceData
from .._math.chain import Chain, cost_from_z
from .._math.costs import CostLike
from .._math.layers import SOFTMAX, ConvPool
from .._math.updates import regularization_cost

#: Most floats one evaluation chunk may hold across its layers' temporaries (2**24: 128 MB in float64).
EVAL_FLOATS = 2**24
#: Samples fed through the network at once, at most.
EVAL_CHUNK = 10_000
#: Most inputs one chunk of compact (uint8) data is scaled into at once (2**20 floats: 8 MB in float64).
#: Small enough for the allocator to reuse the buffer: a fresh 60 MB buffer every epoch costs more in
#: page faults than the whole forward pass.
EVAL_SCALED_INPUTS = 2**20

#: ``forward(weights, biases, x) -> (a, z)``: the chain's evaluation forward, compiled where the backend compiles.
EvalForward = Callable[[tuple[Array, ...], tuple[Array, ...], Array], tuple[Array, Array]]


@dataclass(frozen=True)
class Evaluator:
    """Evaluation of one network: its chain on its backend, in its float dtype.

    ``forward`` is built once (``jax.jit`` of :meth:`Chain.forward` on JAX, the chain's own elsewhere).
    """

    chain: Chain
    backend: Backend
    dtype: DType
    forward: EvalForward

    @classmethod
    def build(cls, chain: Chain, backend: Backend, dtype: DType) -> Evaluator:
        xp = backend.xp

        def forward(weights: tuple[Array, ...], biases: tuple[Array, ...], x: Array) -> tuple[Array, Array]:
            return chain.forward(xp, weights, biases, x)

        return cls(chain, backend, dtype, compile_function(backend, forward))

    def chunk(self, divisor: float | None) -> int:
        """Samples per chunk: at most :data:`EVAL_CHUNK`, within :data:`EVAL_FLOATS` of temporaries."""
        per_sample = 0
        for layer in self.chain.layers:
            if isinstance(layer, ConvPool):
                f, c, kh, kw = layer.filter_shape
                per_sample += (c * kh * kw + 2 * f) * math.prod(layer.conv_shape)
            per_sample += layer.n_in + 2 * layer.n_out
        chunk = max(1, min(EVAL_CHUNK, EVAL_FLOATS // per_sample))
        if divisor is not None:
            chunk = max(1, min(chunk, EVAL_SCALED_INPUTS // self.chain.n_in))
        return chunk

    def inputs(self, data: DeviceData) -> Iterator[tuple[Array, Array]]:
        """``(x, targets or labels)`` for consecutive chunks: ``x`` float in the chain's layout."""
        xp, columns = self.backend.xp, self.chain.layout == "columns"
        chunk = self.chunk(data.divisor)
        for k in range(0, data.n, chunk):
            stop = min(k + chunk, data.n)  # out-of-bounds slice stops are not standard
            x = data.inputs[k:stop, :]
            if data.divisor is not None:
                x = xp.astype(x, self.dtype) / data.divisor
            yield (x.T if columns else x), data.targets[k:stop, ...]

    def outputs(self, weights: tuple[Array, ...], biases: tuple[Array, ...], x: Array) -> Array:
        """The output activations for ``x`` in the chain's layout."""
        return self.forward(weights, biases, x)[0]

    def count_correct(
        self, weights: tuple[Array, ...], biases: tuple[Array, ...], data: DeviceData
    ) -> tuple[int, float]:
        """``(correct, saturation)`` over ``data`` (one host copy).

        ``correct``: samples whose most active output is the label.  ``saturation``:
        the fraction of output activations at 1 (within machine epsilon) or at 0 (within
        machine epsilon for element-wise outputs; below the smallest normal number for a
        softmax, which a confident network reaches without diverging).  Only a diverged
        network has nearly all of them there.
        """
        xp = self.backend.xp
        axis = self.chain.feature_axis
        info = xp.finfo(self.dtype)
        floor = float(info.smallest_normal if self.chain.output == SOFTMAX else info.eps)
        top = 1.0 - float(info.eps)
        counts = xp.zeros((2,), dtype=self.backend.index_dtype, device=self.backend.device)
        for x, labels in self.inputs(data):
            a = self.outputs(weights, biases, x)
            if labels.ndim == 2:
                labels = xp.argmax(labels, axis=1)
            hits = xp.count_nonzero(xp.argmax(a, axis=axis) == labels)
            saturated = xp.count_nonzero(xp.logical_or(a <= floor, a >= top))
            counts = counts + xp.stack([hits, saturated])
        correct, saturated = (int(c) for c in host_view(counts))
        return correct, saturated / max(1, data.n * self.chain.n_out)

    def total_cost(
        self,
        weights: tuple[Array, ...],
        biases: tuple[Array, ...],
        data: DeviceData,
        cost: CostLike,
        decay: float = 0.0,
        regularization: str = "l2",
    ) -> float:
        """Mean cost over ``data`` plus the regularisation term with ``decay`` (one host copy)."""
        xp = self.backend.xp
        total: Array | float = 0.0
        columns = self.chain.layout == "columns"
        for x, targets in self.inputs(data):
            z = self.forward(weights, biases, x)[1]
            if targets.ndim == 1:
                targets = xpx.one_hot(targets, self.chain.n_out, dtype=self.dtype, xp=xp)
            total = total + cost_from_z(xp, self.chain, cost, z, targets.T if columns else targets)
        total = total / data.n + regularization_cost(xp, weights, decay, regularization)
        return float(host_view(total))
