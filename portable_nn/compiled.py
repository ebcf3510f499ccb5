"""Compiling the standard-namespace step where the backend can compile it.

The step built by :func:`portable_nn.dense.make_step` is pure and written
against the standard only, which is exactly what ``jax.jit`` traces.  For JAX
this module compiles it twice: the step alone (for a last, smaller
mini-batch) and a *chunk* of full mini-batches as one ``jax.lax.fori_loop``
over rows ``start:stop`` of the epoch's ``(n_batches, m)`` order.  The epoch
loop (:mod:`portable_nn.training`) calls the chunk about
:data:`CHUNKS_PER_EPOCH` times per epoch: few enough calls that a batch-1
epoch costs no more than one compiled loop (measured in
``docs/benchmarks.md``), often enough that progress is reported and Ctrl-C is
seen every ~2% of an epoch.  ``start`` and ``stop`` are traced, so every chunk
of an epoch, the last shorter one included, runs the same compiled function.
Every other backend runs the step eagerly.  (``torch.compile`` was not
adopted: the step is a handful of BLAS calls, and eager PyTorch already
spends its time in them.)

This is, with :mod:`portable_nn.backends`, the only module that names an
array library.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any

from .backends import Backend

#: An epoch of full mini-batches is run as at most this many compiled calls.
CHUNKS_PER_EPOCH = 50


def compiles(backend: Backend) -> bool:
    """True when steps and epochs for ``backend`` are compiled (JAX)."""
    return backend.name == "jax"


def compile_function(backend: Backend, fn: Callable[..., Any]) -> Callable[..., Any]:
    """``jax.jit(fn)`` on JAX, ``fn`` itself elsewhere."""
    if not compiles(backend):
        return fn
    return importlib.import_module("jax").jit(fn)


def chunk_size(n_batches: int) -> int:
    """Mini-batches per compiled call: ``ceil(n_batches / CHUNKS_PER_EPOCH)`` (at least 1)."""
    return max(1, -(-n_batches // CHUNKS_PER_EPOCH))


def epoch_function(backend: Backend, step: Callable[..., Any]) -> Callable[..., Any] | None:
    """A compiled ``chunk(state, inputs, targets, rows, start, stop, ones, eta) -> state``, or ``None``.

    Runs ``step`` once per row ``rows[start]``, ..., ``rows[stop - 1]`` of
    ``rows`` (``(n_batches, m)`` indices of the backend's index dtype), in
    order; ``start``/``stop`` are Python ints, traced, so one compilation
    serves every chunk of a given ``rows`` shape.  ``None`` where the backend
    runs eagerly (the epoch loop then calls ``step`` from Python).
    """
    if not compiles(backend):
        return None
    jax = importlib.import_module("jax")

    def chunk(state: Any, inputs: Any, targets: Any, rows: Any, start: Any, stop: Any, ones: Any, eta: Any) -> Any:
        def body(i: Any, carry: Any) -> Any:
            return step(carry, inputs, targets, rows[i], ones, eta)

        return jax.lax.fori_loop(start, stop, body, state)

    return jax.jit(chunk)


def wait(backend: Backend, tree: Any) -> None:
    """Block until the (possibly asynchronous) arrays in ``tree`` are computed; no-op on eager backends."""
    if compiles(backend):
        importlib.import_module("jax").block_until_ready(tree)
