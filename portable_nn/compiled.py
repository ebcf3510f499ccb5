"""Compiling the standard-namespace step where the backend can compile it.

The step built by :func:`portable_nn.dense.make_step` is pure and written
against the standard only, which is exactly what ``jax.jit`` traces.  For JAX
this module compiles it twice: the step alone (for a last, smaller
mini-batch) and a whole epoch of full mini-batches as one
``jax.lax.fori_loop``, so a batch-1 epoch is one call instead of 50,000.
Every other backend runs the same function eagerly.  (``torch.compile`` was
not adopted: the step is a handful of BLAS calls, and eager PyTorch already
spends its time in them.)

This is, with :mod:`portable_nn.backends`, the only module that names an
array library.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any

from .backends import Backend


def compiles(backend: Backend) -> bool:
    """True when steps and epochs for ``backend`` are compiled (JAX)."""
    return backend.name == "jax"


def compile_function(backend: Backend, fn: Callable[..., Any]) -> Callable[..., Any]:
    """``jax.jit(fn)`` on JAX, ``fn`` itself elsewhere."""
    if not compiles(backend):
        return fn
    return importlib.import_module("jax").jit(fn)


def epoch_function(backend: Backend, step: Callable[..., Any]) -> Callable[..., Any] | None:
    """A compiled ``epoch(state, inputs, targets, order, ones, eta) -> state`` running ``step``
    once per row of ``order`` (``(n_batches, m)`` int64 indices), or ``None`` where the
    backend runs eagerly (the epoch loop then calls ``step`` from Python)."""
    if not compiles(backend):
        return None
    jax = importlib.import_module("jax")

    def epoch(state: Any, inputs: Any, targets: Any, order: Any, ones: Any, eta: Any) -> Any:
        def body(i: Any, carry: Any) -> Any:
            return step(carry, inputs, targets, order[i], ones, eta)

        return jax.lax.fori_loop(0, order.shape[0], body, state)

    return jax.jit(epoch)
