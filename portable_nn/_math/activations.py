"""Activation functions written against the Array API standard.

Each activation is an :class:`Activation`: ``fn(xp, z)`` gives the neuron
outputs and ``prime_from_output(xp, a)`` gives ``σ'(z)`` from the outputs
``a = σ(z)`` alone, so backprop never has to keep ``z`` (for every activation
here the derivative is a function of the output).  Scalars are Python floats
so float32 arrays stay float32.

Softmax is not an element-wise activation; :func:`softmax` is here for the
output layer of :mod:`portable_nn.network2` (and chapter 6).

A reader's own activation (the book's exercises) is a :class:`UserActivation`:
two plain functions of the weighted input, ``fn(z)`` and its derivative
``prime(z)``, called on whatever arrays the network holds.  They are written
against the namespace of those arrays (``xp = array_api_compat.array_namespace(z)``;
on NumPy the book's ``np.`` code works as written), and :func:`call_user`
turns a failure, or a result of the wrong library, shape or dtype, into a
:class:`UserFunctionError` naming the function and the backend.
"""

from __future__ import annotations

import numbers
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import array_api_compat
import numpy as np

if TYPE_CHECKING:
    from .._base.types import Array, Namespace


@dataclass(frozen=True)
class Activation:
    """An element-wise activation and its derivative.

    Attributes
    ----------
    name:
        ``"sigmoid"``, ``"tanh"``, ``"relu"`` or ``"linear"`` (the name saved in
        model files and used on the command line).
    fn:
        ``fn(xp, z) -> a``, same shape and dtype as ``z``.
    prime_from_output:
        ``prime_from_output(xp, a) -> σ'(z)`` where ``a = fn(xp, z)``.
    """

    name: str
    fn: Callable[[Namespace, Array], Array]
    prime_from_output: Callable[[Namespace, Array], Array]

    #: Backprop needs only the outputs ``a`` (never the weighted inputs ``z``).
    needs_z = False

    def derivative(self, xp: Namespace, z: Array, a: Array) -> Array:
        """``σ'(z)``, here from the outputs ``a`` alone (``z`` may be ``None``)."""
        return self.prime_from_output(xp, a)

    def __repr__(self) -> str:
        return f"Activation({self.name!r})"


def _sigmoid(xp: Namespace, z: Array) -> Array:
    # 1/(1+exp(-z)) written with tanh: the same values, and no overflow for large |z|.
    return 0.5 * xp.tanh(0.5 * z) + 0.5


def _sigmoid_prime(xp: Namespace, a: Array) -> Array:
    return a * (1.0 - a)


def _tanh(xp: Namespace, z: Array) -> Array:
    return xp.tanh(z)


def _tanh_prime(xp: Namespace, a: Array) -> Array:
    return 1.0 - a * a


def _relu(xp: Namespace, z: Array) -> Array:
    return xp.maximum(z, 0.0)


def _relu_prime(xp: Namespace, a: Array) -> Array:
    # σ'(0) is taken as 0, as Theano's and PyTorch's ReLU gradients do.
    return xp.astype(a > 0.0, a.dtype)


def _linear(xp: Namespace, z: Array) -> Array:
    return z


def _linear_prime(xp: Namespace, a: Array) -> Array:
    return xp.ones_like(a)


SIGMOID = Activation("sigmoid", _sigmoid, _sigmoid_prime)
TANH = Activation("tanh", _tanh, _tanh_prime)
RELU = Activation("relu", _relu, _relu_prime)
LINEAR = Activation("linear", _linear, _linear_prime)

#: Activations by the name used in files and on the command line.
ACTIVATIONS = {a.name: a for a in (SIGMOID, TANH, RELU, LINEAR)}


def get_activation(name: str | Activation, argument: str = "activation") -> Activation:
    """The :class:`Activation` called ``name`` (``ValueError`` naming ``argument`` otherwise)."""
    if isinstance(name, Activation):
        return name
    key = str(name).strip().lower()
    if key not in ACTIVATIONS:
        raise ValueError(f"{argument} must be one of {', '.join(map(repr, ACTIVATIONS))}; got {name!r}")
    return ACTIVATIONS[key]


# -- the reader's own functions ---------------------------------------------------------------------
class UserFunctionError(TypeError, ValueError):
    """A reader's own cost or activation failed, or returned something the network cannot use.

    The message names the function and the backend; the original exception
    (if any) is the ``__cause__``.  Both a ``TypeError`` and a ``ValueError``,
    so code catching either sees it.
    """


#: How to write a function that runs on every backend (quoted in the errors).
NAMESPACE_HINT = (
    "write it with the namespace of its arguments, xp = array_api_compat.array_namespace(z), "
    "instead of numpy (the book's np. code runs only on the NumPy backend)"
)


def qualified_name(function: Any) -> str:
    """``module.qualname`` of a user's function or class (never one of the package's short names)."""
    target = function if isinstance(function, type) or callable(function) else type(function)
    module = getattr(target, "__module__", None) or "?"
    qualname = getattr(target, "__qualname__", None) or getattr(target, "__name__", None) or repr(target)
    return f"{module}.{qualname}"


def backend_name(xp: Namespace) -> str:
    """The backend's name for an error message (``"torch"``, ``"jax"``, ...), from the namespace's module name.

    ``array_api_compat.torch`` -> ``torch``, ``jax.numpy`` -> ``jax``, ``array_api_strict`` as it is.
    """
    name = str(getattr(xp, "__name__", xp))
    name = name.removeprefix("array_api_compat.")
    return name.split(".")[0]


def call_user(
    function: Callable[..., Any], what: str, xp: Namespace, like: Array, *args: Any, scalar: bool = False
) -> Array:
    """``function(*args)``, checked: an array of namespace ``xp`` shaped and typed like ``like``.

    ``what`` names the function in errors (``"activation my_fn"``).  Any
    exception it raises, and a result of another library (say a NumPy array
    on torch), shape or dtype, becomes a :class:`UserFunctionError` naming
    ``what`` and the backend (the exception chained as its cause).  With
    ``scalar`` the result may instead be one number (a Python/NumPy real, or
    a one-element array of ``xp``): it comes back as a 0-d array of ``like``'s
    dtype.  Checks run in Python, so under ``jax.jit`` they cost nothing after tracing.
    """
    backend = backend_name(xp)
    try:
        result = function(*args)
    except Exception as exc:
        raise UserFunctionError(
            f"{what} failed on the {backend} backend ({type(exc).__name__}: {exc}); if it is written with "
            f"numpy, {NAMESPACE_HINT}"
        ) from exc
    if scalar:
        return _as_scalar(result, what, backend, xp, like)
    _check_namespace(result, what, backend, xp)
    if tuple(result.shape) != tuple(like.shape) or result.dtype != like.dtype:
        raise UserFunctionError(
            f"{what} returned an array of shape {tuple(result.shape)} and dtype {result.dtype} on the {backend} "
            f"backend; expected shape {tuple(like.shape)} and dtype {like.dtype} (those of its arguments)"
        )
    return result


def _check_namespace(result: Any, what: str, backend: str, xp: Namespace) -> None:
    try:
        namespace = array_api_compat.array_namespace(result)
    except TypeError:
        namespace = None
    if namespace is not xp:
        got = f"{type(result).__module__}.{type(result).__qualname__}"
        raise UserFunctionError(
            f"{what} returned a {got} on the {backend} backend, not one of its arrays: {NAMESPACE_HINT}"
        )


def _as_scalar(result: Any, what: str, backend: str, xp: Namespace, like: Array) -> Array:
    """A user cost's value as a 0-d array of ``like``'s dtype and device."""
    if isinstance(result, numbers.Real):  # a Python or NumPy number (the book's np.sum gives one)
        return xp.asarray(float(result), dtype=like.dtype, device=array_api_compat.device(like))
    _check_namespace(result, what, backend, xp)
    size = 1
    for n in result.shape:
        size *= n
    if size != 1 or not xp.isdtype(result.dtype, ("real floating", "integral")):
        raise UserFunctionError(
            f"{what} returned an array of shape {tuple(result.shape)} and dtype {result.dtype} on the {backend} "
            "backend; expected one real number (the cost summed over the batch)"
        )
    return xp.astype(xp.reshape(result, ()), like.dtype)


@dataclass(frozen=True, eq=False)
class UserActivation:
    """A reader's own element-wise activation: ``function(z)`` and its derivative ``prime(z)``.

    Both take the weighted inputs ``z`` (any shape, the network's dtype, an
    array of the network's backend) and return an array of the same shape
    and dtype (checked; see :func:`call_user`).  Backprop keeps each layer's
    ``z`` for ``prime``.  ``name`` is the function's ``module.qualname`` (what
    model files record, so a file never claims one of the package's activations).
    """

    function: Callable[[Any], Any]
    prime: Callable[[Any], Any]

    #: Backprop must keep the weighted inputs ``z`` for :meth:`derivative`.
    needs_z = True

    @property
    def name(self) -> str:
        return qualified_name(self.function)

    def fn(self, xp: Namespace, z: Array) -> Array:
        """``function(z)``, checked."""
        return call_user(self.function, f"activation {self.name}", xp, z, z)

    def prime_of_z(self, xp: Namespace, z: Array) -> Array:
        """``prime(z)``, checked."""
        return call_user(self.prime, f"activation derivative {qualified_name(self.prime)}", xp, z, z)

    def derivative(self, xp: Namespace, z: Array, a: Array) -> Array:
        """``prime(z)``, checked (``a`` is unused)."""
        return self.prime_of_z(xp, z)

    def __repr__(self) -> str:
        return f"UserActivation({self.name!r}, prime={qualified_name(self.prime)!r})"


#: An activation the networks take: one of the package's, or the reader's own.
AnyActivation = Activation | UserActivation


def resolve_activation(
    value: Array,
    prime: Callable[[Any], Any] | None,
    argument: str,
    known: Mapping[Callable[[Any], Any], tuple[Activation, Callable[[Any], Any] | None]],
    prime_argument: str,
) -> AnyActivation:
    """The activation for a name, an :class:`Activation`, one of the facade's own functions or the user's.

    ``known`` maps the facade's functions (``network3.ReLU``, ``network2.sigmoid``)
    to ``(Activation, its derivative function or None)``.  A known function
    with no ``prime`` (or its own derivative) is the package's activation, with
    its fused backprop; any other callable is a :class:`UserActivation` and
    needs ``prime`` (``ValueError`` naming ``prime_argument`` otherwise: there is
    no automatic differentiation to derive it).
    """
    if isinstance(value, (Activation, UserActivation)) and prime is None:
        return value
    if prime is not None and not callable(prime):
        raise TypeError(f"{prime_argument} must be a function of the weighted input z; got {prime!r}")
    if isinstance(value, str):
        if prime is not None:
            raise ValueError(f"{prime_argument} goes with your own {argument} function, not with {value!r}")
        return get_activation(value, argument)
    if not callable(value) or isinstance(value, type):
        names = ", ".join(getattr(f, "__name__", repr(f)) for f in known)
        raise TypeError(
            f"{argument} must be one of {names}, a name ({', '.join(map(repr, ACTIVATIONS))}) or your own "
            f"function of the weighted input z; got {value!r}"
        )
    ours = known.get(value)
    if ours is not None and (prime is None or prime is ours[1]):
        return ours[0]
    if prime is None:
        raise ValueError(
            f"{argument}={qualified_name(value)} is your own function, so pass its derivative too: "
            f"{prime_argument}=<function of z returning dσ/dz> (the book's Theano derived it; portable_nn "
            f"computes its gradients by hand, on every backend, and cannot)"
        )
    return UserActivation(value, prime)


def on_number_or_array(activation: Activation, z: Array, prime: bool = False) -> Array:
    """``σ(z)`` (or ``σ'(z)``) for a backend array, or a ``float`` for a Python/NumPy real number.

    The book calls ``sigmoid(0.5)`` on plain numbers; arrays keep their backend.
    """
    if isinstance(z, numbers.Real) and not hasattr(z, "__array_namespace__"):
        value = np.asarray(float(z), dtype=np.float64)
        xp: Namespace = array_api_compat.array_namespace(value)
        out = activation.fn(xp, value)
        return float(activation.prime_from_output(xp, out) if prime else out)
    xp = array_api_compat.array_namespace(z)
    out = activation.fn(xp, z)
    return activation.prime_from_output(xp, out) if prime else out


def softmax(xp: Namespace, z: Array, axis: int = 0) -> Array:
    """Softmax along ``axis`` (the neurons), shifted by the maximum so ``exp`` never overflows."""
    e = xp.exp(z - xp.max(z, axis=axis, keepdims=True))
    return e / xp.sum(e, axis=axis, keepdims=True)


def log_softmax(xp: Namespace, z: Array, axis: int = 0) -> Array:
    """``log(softmax(z))`` computed stably: ``z − max − log Σ exp(z − max)``."""
    shifted = z - xp.max(z, axis=axis, keepdims=True)
    return shifted - xp.log(xp.sum(xp.exp(shifted), axis=axis, keepdims=True))
