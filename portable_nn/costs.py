"""Cost functions, as in the book's ``network2.py`` and ``network3.py``, for any Array API backend.

Each cost class keeps the book's static methods, ``fn(a, y)`` and
``delta(z, a, y)``, written against the namespace of their arguments, so code
typed from the book works.  Arrays hold one sample per column: ``a``, ``y``
and ``z`` are ``(n_out, m)``; ``fn`` returns the cost summed over the whole
batch as a 0-d array.

The training core uses two more methods of each class:

* ``output_delta(xp, a, y, output)``: ``∂C/∂z`` of the output layer from its
  activations ``a`` and the output activation, so ``z`` need not be kept;
* ``from_z(xp, z, y, output)``: the summed cost computed from the weighted
  inputs ``z``, finite even where the output saturates (``σ(±50)`` is exactly
  0 or 1 in floating point, where ``log(1 − a)`` is ``−inf``).
"""

from __future__ import annotations

from typing import Any, ClassVar

import array_api_compat

from .activations import SIGMOID, Activation, log_softmax, softmax


def _xp(*arrays: Any) -> Any:
    return array_api_compat.array_namespace(*arrays)


def _softplus(xp: Any, z: Any) -> Any:
    """``log(1 + exp(z))`` without overflow: ``max(z, 0) + log1p(exp(−|z|))``."""
    return xp.maximum(z, 0.0) + xp.log1p(xp.exp(-xp.abs(z)))


class Cost:
    """Base class: the name used in model files and what output layer the cost needs."""

    #: Name written to model files (the book's class name).
    name: ClassVar[str] = ""
    #: The output layer this cost is defined for (``None``: any element-wise activation).
    output: ClassVar[str | None] = None

    @staticmethod
    def fn(a: Any, y: Any) -> Any:  # pragma: no cover - overridden
        raise NotImplementedError

    @staticmethod
    def delta(z: Any, a: Any, y: Any) -> Any:  # pragma: no cover - overridden
        raise NotImplementedError

    @classmethod
    def output_delta(cls, xp: Any, a: Any, y: Any, output: Activation | str) -> Any:  # pragma: no cover
        raise NotImplementedError

    @classmethod
    def from_z(cls, xp: Any, z: Any, y: Any, output: Activation | str) -> Any:  # pragma: no cover
        raise NotImplementedError


class QuadraticCost(Cost):
    """``C = ½‖a − y‖²`` (chapter 1's cost)."""

    name = "QuadraticCost"

    @staticmethod
    def fn(a: Any, y: Any) -> Any:
        """``½ Σ (a − y)²`` over every element (all neurons, all samples)."""
        xp = _xp(a, y)
        d = a - y
        return 0.5 * xp.sum(d * d)

    @staticmethod
    def delta(z: Any, a: Any, y: Any) -> Any:
        """``(a − y) ⊙ σ'(z)`` for a sigmoid output layer (the book's formula)."""
        xp = _xp(z, a, y)
        return (a - y) * SIGMOID.prime_from_output(xp, SIGMOID.fn(xp, z))

    @classmethod
    def output_delta(cls, xp: Any, a: Any, y: Any, output: Activation | str) -> Any:
        if not isinstance(output, Activation):
            raise ValueError("QuadraticCost needs an element-wise output layer (sigmoid, tanh, relu, linear)")
        return (a - y) * output.prime_from_output(xp, a)

    @classmethod
    def from_z(cls, xp: Any, z: Any, y: Any, output: Activation | str) -> Any:
        if not isinstance(output, Activation):
            raise ValueError("QuadraticCost needs an element-wise output layer (sigmoid, tanh, relu, linear)")
        d = output.fn(xp, z) - y
        return 0.5 * xp.sum(d * d)


class _MatchedCost(Cost):
    """A cost paired with the output layer that makes its output δ simply ``a − y``.

    (Cross-entropy with sigmoid outputs, log-likelihood with softmax: the σ'
    factor cancels, so learning never slows down on saturation.)
    """

    @staticmethod
    def delta(z: Any, a: Any, y: Any) -> Any:
        """``a − y``."""
        return a - y

    @classmethod
    def output_delta(cls, xp: Any, a: Any, y: Any, output: Activation | str) -> Any:
        return a - y


class CrossEntropyCost(_MatchedCost):
    """``C = −Σ [y ln a + (1 − y) ln(1 − a)]`` for sigmoid outputs (chapter 3)."""

    name = "CrossEntropyCost"
    output = "sigmoid"

    @staticmethod
    def fn(a: Any, y: Any) -> Any:
        """The cross-entropy summed over every element.

        ``a`` is clipped to ``[eps, 1 − eps]`` (``eps`` the machine epsilon of
        its dtype) before the logarithms, so a saturated output costs at most
        ``−ln(eps)`` (36.04 in float64, 15.94 in float32) instead of ``inf``
        or ``nan``; the book used ``nan_to_num`` for the same purpose.
        Training and ``total_cost`` use :meth:`from_z`, which needs no clipping.
        """
        xp = _xp(a, y)
        eps = float(xp.finfo(a.dtype).eps)
        a = xp.clip(a, eps, 1.0 - eps)
        return -xp.sum(y * xp.log(a) + (1.0 - y) * xp.log(1.0 - a))

    @classmethod
    def from_z(cls, xp: Any, z: Any, y: Any, output: Activation | str) -> Any:
        """``Σ softplus(z) − y·z``, the same cost written with ``ln σ(z) = −softplus(−z)``."""
        return xp.sum(_softplus(xp, z) - y * z)


class LogLikelihoodCost(_MatchedCost):
    """``C = −ln a_y`` for a softmax output layer (chapter 3's softmax, chapter 6's output)."""

    name = "LogLikelihoodCost"
    output = "softmax"

    @staticmethod
    def fn(a: Any, y: Any) -> Any:
        """``−Σ y ln a`` over every element (``y`` one-hot), with ``a`` clipped below at ``eps``."""
        xp = _xp(a, y)
        eps = float(xp.finfo(a.dtype).eps)
        return -xp.sum(y * xp.log(xp.clip(a, eps, 1.0)))

    @classmethod
    def from_z(cls, xp: Any, z: Any, y: Any, output: Activation | str) -> Any:
        """``−Σ y · log_softmax(z)``, computed with the max shift (never ``−inf``)."""
        return -xp.sum(y * log_softmax(xp, z, axis=0))


#: Costs by the name written to model files.
COSTS: dict[str, type[Cost]] = {c.name: c for c in (QuadraticCost, CrossEntropyCost, LogLikelihoodCost)}
#: Short names used on the command line.
COST_ALIASES = {
    "quadratic": QuadraticCost,
    "cross-entropy": CrossEntropyCost,
    "log-likelihood": LogLikelihoodCost,
}


def get_cost(cost: Any, argument: str = "cost") -> type[Cost]:
    """The cost class for a class, a file name (``"CrossEntropyCost"``) or a CLI name (``"cross-entropy"``)."""
    if isinstance(cost, type) and issubclass(cost, Cost) and cost is not Cost:
        return cost
    if isinstance(cost, str):
        found = COSTS.get(cost) or COST_ALIASES.get(cost.strip().lower())
        if found is not None:
            return found
    names = ", ".join([*COSTS, *COST_ALIASES])
    raise ValueError(f"{argument} must be one of {names} (or one of the cost classes); got {cost!r}")


def output_activation(xp: Any, output: Activation | str, z: Any) -> Any:
    """The output layer's activations from its weighted inputs ``z (n_out, m)``."""
    if isinstance(output, Activation):
        return output.fn(xp, z)
    return softmax(xp, z, axis=0)
