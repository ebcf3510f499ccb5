"""Compiling the standard-namespace step where the backend can compile it.

The step built by :func:`portable_nn._math.chain.make_step` is pure and written
against the standard only, which is exactly what ``jax.jit`` traces.  For JAX
this module compiles it twice: the step alone (for a last, smaller
mini-batch) and a *chunk* of full mini-batches as one ``jax.lax.fori_loop``
over rows ``start:stop`` of the epoch's ``(n_batches, m)`` order.  The epoch
loop (:mod:`portable_nn._train.loop`) sizes the chunks (:func:`chunk_size`) to
last about :data:`CHUNK_SECONDS` each: often enough that progress is reported
and Ctrl-C is seen within a fraction of a second, few enough that an epoch
costs no more than the single compiled loop it replaced (measured in
``docs/benchmarks.md``).  ``start`` and ``stop`` are traced, so every chunk,
the last shorter one included, runs the same compiled function (one
compilation per order shape).
Every other backend runs the step eagerly.  (``torch.compile`` was not
adopted: the step is a handful of BLAS calls, and eager PyTorch already
spends its time in them.)

This is, with :mod:`portable_nn._backend.backends`, the only module that names an
array library.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any, cast

from .backends import Backend

#: The first epoch is cut into this many compiled calls, while the pace is not yet known.
CHUNKS_PER_EPOCH = 50

#: Then a compiled call aims to last about this long: progress and Ctrl-C every fifth of a second,
#: and the ~0.1 ms a call costs (dispatch, wait) stays far below 1% of it.
CHUNK_SECONDS = 0.2


def compiles(backend: Backend) -> bool:
    """True when steps and epochs for ``backend`` are compiled (JAX)."""
    return backend.name == "jax"


def compile_function(backend: Backend, fn: Callable[..., Any]) -> Callable[..., Any]:
    """``jax.jit(fn)`` on JAX, ``fn`` itself elsewhere."""
    if not compiles(backend):
        return fn
    return cast(Callable[..., Any], importlib.import_module("jax").jit(fn))


def chunk_size(n_batches: int, seconds_per_batch: float | None = None) -> int:
    """Mini-batches per compiled call, between 1 and ``n_batches``.

    Without a measured pace: ``ceil(n_batches / CHUNKS_PER_EPOCH)``.  With one:
    as many mini-batches as take :data:`CHUNK_SECONDS`.
    """
    if seconds_per_batch is None or not seconds_per_batch > 0.0:
        return max(1, -(-n_batches // CHUNKS_PER_EPOCH))
    return max(1, min(n_batches, int(CHUNK_SECONDS / seconds_per_batch)))


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

    return cast(Callable[..., Any], jax.jit(chunk))


def wait(backend: Backend, tree: Any) -> None:
    """Block until the (possibly asynchronous) arrays in ``tree`` are computed; no-op on eager backends."""
    if compiles(backend):
        importlib.import_module("jax").block_until_ready(tree)
