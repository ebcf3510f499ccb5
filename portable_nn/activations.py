"""Activation functions written against the Array API standard.

Each activation is an :class:`Activation`: ``fn(xp, z)`` gives the neuron
outputs and ``prime_from_output(xp, a)`` gives ``σ'(z)`` from the outputs
``a = σ(z)`` alone, so backprop never has to keep ``z`` (for every activation
here the derivative is a function of the output).  Scalars are Python floats
so float32 arrays stay float32.

Softmax is not an element-wise activation; :func:`softmax` is here for the
output layer of :mod:`portable_nn.network2` (and chapter 6).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any


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
    fn: Callable[[Any, Any], Any]
    prime_from_output: Callable[[Any, Any], Any]

    def __repr__(self) -> str:
        return f"Activation({self.name!r})"


def _sigmoid(xp: Any, z: Any) -> Any:
    # 1/(1+exp(-z)) written with tanh: the same values, and no overflow for large |z|.
    return 0.5 * xp.tanh(0.5 * z) + 0.5


def _sigmoid_prime(xp: Any, a: Any) -> Any:
    return a * (1.0 - a)


def _tanh(xp: Any, z: Any) -> Any:
    return xp.tanh(z)


def _tanh_prime(xp: Any, a: Any) -> Any:
    return 1.0 - a * a


def _relu(xp: Any, z: Any) -> Any:
    return xp.maximum(z, 0.0)


def _relu_prime(xp: Any, a: Any) -> Any:
    # σ'(0) is taken as 0, as Theano's and PyTorch's ReLU gradients do.
    return xp.astype(a > 0.0, a.dtype)


def _linear(xp: Any, z: Any) -> Any:
    return z


def _linear_prime(xp: Any, a: Any) -> Any:
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


def softmax(xp: Any, z: Any, axis: int = 0) -> Any:
    """Softmax along ``axis`` (the neurons), shifted by the maximum so ``exp`` never overflows."""
    e = xp.exp(z - xp.max(z, axis=axis, keepdims=True))
    return e / xp.sum(e, axis=axis, keepdims=True)


def log_softmax(xp: Any, z: Any, axis: int = 0) -> Any:
    """``log(softmax(z))`` computed stably: ``z − max − log Σ exp(z − max)``."""
    shifted = z - xp.max(z, axis=axis, keepdims=True)
    return shifted - xp.log(xp.sum(xp.exp(shifted), axis=axis, keepdims=True))
