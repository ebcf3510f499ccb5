"""The floor: what any implementation of an SGD epoch must at least do, timed with NumPy.

Per epoch: draw one permutation of the ``n`` samples.  Per step of ``m`` samples:

* gather the step's ``m`` input rows and ``m`` one-hot target rows by index
  from the resident ``(n, 784)`` / ``(n, 10)`` arrays -- cold operands, as the
  real epoch has them (every image is read from memory once per epoch);
* the step's five matrix products: forward ``W1 @ x`` and ``W2 @ a1``, backward
  ``W2.T @ delta2``, ``delta2 @ a1.T`` and ``delta1 @ x``;
* the in-place weight updates ``W -= grad`` (each weight is read and written once).

Not counted: sigmoids, element-wise products, bias terms, Python dispatch of a
real step.  So the floor is a lower bound on an epoch's time with that BLAS
at that thread count; it runs at 1 and at 2 BLAS threads (``threadpoolctl``).
"""

from __future__ import annotations

import time

import numpy as np

from .data import N_IN, N_OUT
from .impls import Impl, Timing


class StepFloor(Impl):
    """Gather + the five matmuls + weight updates per step, at a fixed number of BLAS threads."""

    def __init__(self, dtype: str, threads: int) -> None:
        self.dtype, self.threads = dtype, threads
        self.name = f"floor: gather + step matmuls ({threads} BLAS thread{'s' if threads > 1 else ''})"

    def prepare(self, sizes, images, labels, seed):
        if len(sizes) != 3:
            raise ValueError("the floor is written for one hidden layer")
        from threadpoolctl import threadpool_limits

        self.limits = threadpool_limits
        hidden = sizes[1]
        rng = np.random.default_rng(seed)
        self.x = np.ascontiguousarray(images, dtype=self.dtype)
        self.y = np.eye(N_OUT, dtype=self.dtype)[labels]
        self.w1 = rng.standard_normal((hidden, N_IN)).astype(self.dtype)
        self.w2 = rng.standard_normal((N_OUT, hidden)).astype(self.dtype)
        self.rng = rng
        self.hidden = hidden

    def epoch(self, batch_size, eta):
        n, m = self.x.shape[0], batch_size
        # Backward deltas are stand-ins (the element-wise work that makes them is not counted).
        delta2 = (self.rng.standard_normal((N_OUT, m)) * 1e-4).astype(self.dtype)
        delta1 = (self.rng.standard_normal((self.hidden, m)) * 1e-4).astype(self.dtype)
        x_all, y_all, w1, w2 = self.x, self.y, self.w1, self.w2
        with self.limits(limits=self.threads, user_api="blas"):
            start = time.perf_counter()
            order = self.rng.permutation(n)
            for k in range(0, n, m):
                idx = order[k : k + m]
                x = x_all[idx]  # (m, 784): cold rows
                _targets = y_all[idx]  # (m, 10)
                d2, d1 = delta2[:, : idx.shape[0]], delta1[:, : idx.shape[0]]
                a1 = w1 @ x.T  # (hidden, m)
                _a2 = w2 @ a1  # (10, m)
                _e1 = w2.T @ d2  # (hidden, m)
                g2 = d2 @ a1.T  # (10, hidden)
                g1 = d1 @ x  # (hidden, 784)
                w1 -= g1
                w2 -= g2
            seconds = time.perf_counter() - start
        return Timing(seconds, seconds)
