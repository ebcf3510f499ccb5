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

Your own cost (the book's chapter-3 exercise) is any class or object with the
book's ``fn(a, y)`` and ``delta(z, a, y)``, or a subclass of one of these that
overrides them.  :func:`get_cost` wraps it in a :class:`UserCost`: the step
calls *your* ``delta`` and ``total_cost`` *your* ``fn`` (what you did not
override keeps the fused path).  They receive arrays of the network's backend
(``(n_out, m)`` columns, the network's dtype): write them with
``xp = array_api_compat.array_namespace(a)`` (on NumPy the book's ``np.`` code
works as written); ``fn`` returns the cost summed over the ``m`` columns.
"""

from __future__ import annotations

import inspect
from typing import TYPE_CHECKING, Any, ClassVar

import array_api_compat

from .activations import SIGMOID, Activation, call_user, log_softmax, qualified_name, softmax

if TYPE_CHECKING:
    from .._base.types import Array, Namespace


def _xp(*arrays: Any) -> Array:
    return array_api_compat.array_namespace(*arrays)


def _softplus(xp: Namespace, z: Array) -> Array:
    """``log(1 + exp(z))`` without overflow: ``max(z, 0) + log1p(exp(−|z|))``."""
    return xp.maximum(z, 0.0) + xp.log1p(xp.exp(-xp.abs(z)))


class Cost:
    """Base class: the name used in model files and what output layer the cost needs."""

    #: Name written to model files (the book's class name).
    name: ClassVar[str] = ""
    #: The output layer this cost is defined for (``None``: any element-wise activation).
    output: ClassVar[str | None] = None

    @staticmethod
    def fn(a: Array, y: Array) -> Array:  # pragma: no cover - overridden
        raise NotImplementedError

    @staticmethod
    def delta(z: Array, a: Array, y: Array) -> Array:  # pragma: no cover - overridden
        raise NotImplementedError

    @classmethod
    def output_delta(cls, xp: Namespace, a: Array, y: Array, output: Activation | str) -> Array:  # pragma: no cover
        raise NotImplementedError

    @classmethod
    def from_z(cls, xp: Namespace, z: Array, y: Array, output: Activation | str) -> Array:  # pragma: no cover
        raise NotImplementedError


class QuadraticCost(Cost):
    """``C = ½‖a − y‖²`` (chapter 1's cost)."""

    name = "QuadraticCost"

    @staticmethod
    def fn(a: Array, y: Array) -> Array:
        """``½ Σ (a − y)²`` over every element (all neurons, all samples)."""
        xp = _xp(a, y)
        d = a - y
        return 0.5 * xp.sum(d * d)

    @staticmethod
    def delta(z: Array, a: Array, y: Array) -> Array:
        """``(a − y) ⊙ σ'(z)`` for a sigmoid output layer (the book's formula)."""
        xp = _xp(z, a, y)
        return (a - y) * SIGMOID.prime_from_output(xp, SIGMOID.fn(xp, z))

    @classmethod
    def output_delta(cls, xp: Namespace, a: Array, y: Array, output: Activation | str) -> Array:
        if not isinstance(output, Activation):
            raise ValueError("QuadraticCost needs an element-wise output layer (sigmoid, tanh, relu, linear)")
        return (a - y) * output.prime_from_output(xp, a)

    @classmethod
    def from_z(cls, xp: Namespace, z: Array, y: Array, output: Activation | str) -> Array:
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
    def delta(z: Array, a: Array, y: Array) -> Array:
        """``a − y``."""
        return a - y

    @classmethod
    def output_delta(cls, xp: Namespace, a: Array, y: Array, output: Activation | str) -> Array:
        return a - y


class CrossEntropyCost(_MatchedCost):
    """``C = −Σ [y ln a + (1 − y) ln(1 − a)]`` for sigmoid outputs (chapter 3)."""

    name = "CrossEntropyCost"
    output = "sigmoid"

    @staticmethod
    def fn(a: Array, y: Array) -> Array:
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
    def from_z(cls, xp: Namespace, z: Array, y: Array, output: Activation | str) -> Array:
        """``Σ softplus(z) − y·z``, the same cost written with ``ln σ(z) = −softplus(−z)``."""
        return xp.sum(_softplus(xp, z) - y * z)


class LogLikelihoodCost(_MatchedCost):
    """``C = −ln a_y`` for a softmax output layer (chapter 3's softmax, chapter 6's output)."""

    name = "LogLikelihoodCost"
    output = "softmax"

    @staticmethod
    def fn(a: Array, y: Array) -> Array:
        """``−Σ y ln a`` over every element (``y`` one-hot), with ``a`` clipped below at ``eps``."""
        xp = _xp(a, y)
        eps = float(xp.finfo(a.dtype).eps)
        return -xp.sum(y * xp.log(xp.clip(a, eps, 1.0)))

    @classmethod
    def from_z(cls, xp: Namespace, z: Array, y: Array, output: Activation | str) -> Array:
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
#: What the training step and ``total_cost`` call on one of the package's costs.
_INTERNALS = ("output_delta", "from_z")
#: Output layers a user's cost may ask for with an ``output`` attribute.
_OUTPUTS = (None, "sigmoid", "softmax")


class UserCost:
    """A cost that is not exactly one of the package's: the reader's own, or a subclass overriding ``fn``/``delta``.

    ``source`` is what was passed (a class or an instance).  The step calls
    ``source.delta(z, a, y)`` and ``total_cost`` ``source.fn(a, y)`` (each
    checked by :func:`portable_nn._math.activations.call_user`: a failure, or a
    result of another library, shape or dtype, is a
    :class:`portable_nn._math.activations.UserFunctionError` naming the method and
    the backend).  A subclass of one of the package's costs keeps that cost's
    fused path for the method it does not override.

    Attributes: ``name`` (``module.qualname``: what model files record, never
    one of the package's names), ``output`` (the output layer it needs: the
    base cost's, or the source's ``output`` attribute, ``None`` by default,
    which network2 makes sigmoid as the book's),
    ``base`` (the package's cost it derives from, or ``None``),
    ``own_fn``/``own_delta`` (whether ``fn``/``delta`` are the user's).
    """

    def __init__(self, source: Any, base: type[Cost] | None, own_fn: bool, own_delta: bool) -> None:
        self.source = source
        self.base = base
        self.own_fn = own_fn
        self.own_delta = own_delta
        self._cls: Any = source if isinstance(source, type) else type(source)
        self.name = qualified_name(self._cls)
        output = base.output if base is not None else getattr(source, "output", None)
        if output not in _OUTPUTS:
            raise ValueError(f"{self.name}.output must be one of {_OUTPUTS} (its output layer); got {output!r}")
        self.output: str | None = output

    def __repr__(self) -> str:
        return f"UserCost({self.name!r})"

    def fn(self, a: Array, y: Array) -> Array:
        """The source's ``fn(a, y)`` (the book's method), unchecked."""
        return self.source.fn(a, y)

    def delta(self, z: Array, a: Array, y: Array) -> Array:
        """The source's ``delta(z, a, y)`` (the book's method), unchecked."""
        return self.source.delta(z, a, y)

    def step_delta(self, xp: Namespace, z: Array, a: Array, y: Array, output: Activation | str) -> Array:
        """The output δ of the training step (which calls this instead of ``output_delta``): the user's
        ``delta(z, a, y)``, checked to be ``a``'s shape and dtype, or the base's fused δ."""
        if self.own_delta:
            return call_user(self.source.delta, f"cost {self.name}.delta", xp, a, z, a, y)
        return self._cls.output_delta(xp, a, y, output)

    def from_z(self, xp: Namespace, z: Array, y: Array, output: Activation | str) -> Array:
        """The user's ``fn(output(z), y)`` as a 0-d array of ``z``'s dtype, or the base's stable ``from_z``."""
        if self.own_fn:
            a = output_activation(xp, output, z)
            return call_user(self.source.fn, f"cost {self.name}.fn", xp, a, a, y, scalar=True)
        return self._cls.from_z(xp, z, y, output)


#: What a network's ``spec.cost`` holds: one of the package's cost classes, or a :class:`UserCost`.
CostLike = type[Cost] | UserCost


def _overrides(source: Any, base: type, attribute: str) -> bool:
    """Whether ``source`` (a class or an instance) has its own ``attribute`` instead of ``base``'s."""
    if not isinstance(source, type) and attribute in getattr(source, "__dict__", {}):
        return True
    cls = source if isinstance(source, type) else type(source)
    return inspect.getattr_static(cls, attribute, None) is not inspect.getattr_static(base, attribute, None)


def get_cost(cost: Any, argument: str = "cost") -> CostLike:
    """The cost for a class or an instance (the package's or the user's), a file name or a CLI name.

    * ``QuadraticCost``, ``CrossEntropyCost()``, ``"CrossEntropyCost"``,
      ``"cross-entropy"``, or a subclass/instance that overrides nothing: the
      package's class (fused, stable paths);
    * any other class or object with callable ``fn`` and ``delta`` (the
      book's static methods), or a subclass of one of ours overriding them:
      a :class:`UserCost` that calls them.

    ``TypeError``/``ValueError`` naming ``argument`` for anything else.
    """
    names = ", ".join([*COSTS, *COST_ALIASES])
    if isinstance(cost, str):
        found = COSTS.get(cost) or COST_ALIASES.get(cost.strip().lower())
        if found is not None:
            return found
        raise ValueError(f"{argument} must be one of {names}, a cost class or object; got {cost!r}")
    cls = cost if isinstance(cost, type) else type(cost)
    if cls is Cost or not (callable(getattr(cost, "fn", None)) and callable(getattr(cost, "delta", None))):
        raise TypeError(
            f"{argument} must be one of {names}, or a cost class or object with the book's fn(a, y) and "
            f"delta(z, a, y); got {cost!r}"
        )
    if isinstance(cost, type):
        for method in ("fn", "delta"):
            if inspect.isfunction(inspect.getattr_static(cls, method, None)):
                raise TypeError(
                    f"{argument}={qualified_name(cls)}: {method} is a plain method; make fn and delta "
                    f"@staticmethod as the book's costs are, or pass an instance, {cls.__name__}()"
                )
    base = next((c for c in cls.__mro__ if c in COSTS.values()), None)
    if base is None:
        return UserCost(cost, None, True, True)
    own = {name: _overrides(cost, base, name) for name in ("fn", "delta", *_INTERNALS)}
    if not any(own.values()):
        return cls
    return UserCost(cost, base, own["fn"], own["delta"])


def output_activation(xp: Namespace, output: Activation | str, z: Array) -> Array:
    """The output layer's activations from its weighted inputs ``z (n_out, m)``."""
    if isinstance(output, Activation):
        return output.fn(xp, z)
    return softmax(xp, z, axis=0)
