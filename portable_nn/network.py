"""Nielsen's ``network.py``, one matrix per mini-batch, on any Array API backend.

The math in this module uses only the standard namespace ``self.xp``
(``matmul``, ``tanh``, ``sum``, ``take``, ``argmax``, slicing, ``.T`` on 2-D
arrays) and Python floats as scalars.  Arrays are never updated in place: each
step builds new arrays and rebinds the lists, so immutable-array libraries
work too.  Every array in the math is 2-D: a mini-batch of ``m`` samples is an
``(n_in, m)`` matrix, one sample per column, as in the book's chapter 2.

Host-side work -- random numbers, data conversion, argument checks -- lives in
:mod:`portable_nn.initializers`, :mod:`portable_nn.dataforms` and
:mod:`portable_nn.validation`.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from . import dataforms, initializers
from .backends import Backend, resolve_backend, to_numpy
from .validation import check_dtype, check_eta, check_int, check_sizes

#: Columns fed through the network at once by :meth:`Network.evaluate`.
EVAL_CHUNK = 10_000


@dataclass(frozen=True)
class EpochResult:
    """One epoch of :meth:`Network.SGD`.

    ``seconds``: wall time of the epoch's training (shuffle and all mini-batch
    steps, synchronised with the device); ``correct``/``n_test``/``accuracy``
    are ``None`` when no test data was given.
    """

    epoch: int
    seconds: float
    correct: int | None = None
    n_test: int | None = None

    @property
    def accuracy(self) -> float | None:
        """``correct / n_test``, or ``None`` without test data."""
        return None if self.correct is None else self.correct / self.n_test


class Network:
    """A fully connected sigmoid network trained by mini-batch SGD.

    Parameters
    ----------
    sizes:
        Neurons per layer, e.g. ``[784, 30, 10]``.
    xp:
        Backend name (``"numpy"``, ``"cupy"``, ``"torch"``,
        ``"array_api_strict"``, ``"jax"``) or an array namespace module.
    dtype:
        ``"float64"`` (the book's) or ``"float32"``.
    seed:
        Seed for NumPy's ``default_rng``; it fixes the initial weights and the
        per-epoch shuffles identically on every backend.
    device:
        Backend device for all arrays; ``None`` is the library's default.

    Attributes
    ----------
    weights:
        List of ``(sizes[l+1], sizes[l])`` backend arrays of ``dtype``.
    biases:
        List of ``(sizes[l+1], 1)`` backend arrays of ``dtype``.
    """

    def __init__(
        self,
        sizes: list[int],
        xp: Any = "numpy",
        *,
        dtype: str = "float64",
        seed: int | None = None,
        device: Any = None,
    ) -> None:
        self.sizes = check_sizes(sizes)
        self.num_layers = len(self.sizes)
        self.dtype = check_dtype(dtype)
        self._rng = initializers.make_rng(seed)
        self.backend: Backend = resolve_backend(xp, device)
        self.xp = self.backend.xp
        biases, weights = initializers.gaussian_layers(self.sizes, self._rng)
        self.biases = [self._from_host(b) for b in biases]
        self.weights = [self._from_host(w) for w in weights]
        self._ones: dict[int, Any] = {}

    def __repr__(self) -> str:
        return f"Network({self.sizes}, xp={self.backend.name!r}, dtype={self.dtype!r})"

    # -- conversions -------------------------------------------------------
    def _from_host(self, array: Any) -> Any:
        return self.backend.asarray(to_numpy(array).astype(self.dtype), dtype=self.backend.dtype(self.dtype))

    def _on_backend(self, array: Any, name: str, rows: int) -> Any:
        """``array`` as a 2-D ``(rows, m)`` array of this network's dtype on its device."""
        shape = tuple(getattr(array, "shape", ()))
        if len(shape) != 2 or shape[0] != rows:
            raise ValueError(f"{name} must have shape ({rows}, m) (one sample per column); got {shape}")
        if self.backend.owns(array) and array.dtype == self.backend.dtype(self.dtype):
            return array
        return self._from_host(array)

    # -- the math (standard namespace only) --------------------------------
    def _sigmoid(self, z: Any) -> Any:
        # 1/(1+exp(-z)) written with tanh: same values, no overflow for large |z|.
        return 0.5 * self.xp.tanh(0.5 * z) + 0.5

    def feedforward(self, a: Any) -> Any:
        """Output activations ``(sizes[-1], m)`` for inputs ``a`` of shape ``(sizes[0], m)``."""
        a = self._on_backend(a, "a", self.sizes[0])
        for b, w in zip(self.biases, self.weights):
            a = self._sigmoid(w @ a + b)
        return a

    def cost_derivative(self, output_activations: Any, y: Any) -> Any:
        """∂C/∂a for the quadratic cost ``C = ½‖a − y‖²``, shape of ``y``."""
        return output_activations - y

    def _ones_column(self, m: int) -> Any:
        """A cached ``(m, 1)`` column of ones: ``delta @ ones`` sums a batch in one matmul.

        For small batches one matmul call costs a third of ``xp.sum(..., axis=1,
        keepdims=True)`` (see docs/benchmarks.md).
        """
        ones = self._ones.get(m)
        if ones is None:
            ones = self._ones[m] = self.xp.ones(
                (m, 1), dtype=self.backend.dtype(self.dtype), device=self.backend.device
            )
        return ones

    def _gradients(self, x: Any, y: Any, scale: float | None) -> tuple[list[Any], list[Any]]:
        """Backprop for a column mini-batch; gradients summed over columns, times ``scale``."""
        activations = [x]
        a = x
        for b, w in zip(self.biases, self.weights):
            a = self._sigmoid(w @ a + b)
            activations.append(a)
        # σ'(z) = σ(z)(1 − σ(z)): reuse the activations instead of recomputing σ.
        delta = self.cost_derivative(a, y) * (a * (1.0 - a))
        if scale is not None:  # scaling δ scales every gradient below it: one multiply
            delta = delta * scale
        nabla_b = [delta] * (self.num_layers - 1)
        nabla_w = [delta] * (self.num_layers - 1)
        ones = self._ones_column(x.shape[1])
        nabla_b[-1] = delta @ ones
        nabla_w[-1] = delta @ activations[-2].T
        for layer in range(2, self.num_layers):
            a = activations[-layer]
            delta = (self.weights[-layer + 1].T @ delta) * (a * (1.0 - a))
            nabla_b[-layer] = delta @ ones
            nabla_w[-layer] = delta @ activations[-layer - 1].T
        return nabla_b, nabla_w

    def backprop(self, x: Any, y: Any) -> tuple[list[Any], list[Any]]:
        """Gradient of the quadratic cost summed over a mini-batch.

        Parameters
        ----------
        x:
            ``(sizes[0], m)`` inputs, one sample per column.
        y:
            ``(sizes[-1], m)`` desired outputs.

        Returns
        -------
        ``(nabla_b, nabla_w)``: lists shaped like ``biases`` and ``weights``,
        each the sum over the ``m`` columns of the per-sample gradients.
        """
        x = self._on_backend(x, "x", self.sizes[0])
        y = self._on_backend(y, "y", self.sizes[-1])
        if x.shape[1] != y.shape[1]:
            raise ValueError(f"x and y must have the same number of columns; got {x.shape[1]} and {y.shape[1]}")
        return self._gradients(x, y, None)

    def _step(self, x_rows: Any, y_rows: Any, scale: float) -> None:
        """One SGD step on ``(m, n_in)``/``(m, n_out)`` row blocks; ``scale`` is ``eta/m``."""
        nabla_b, nabla_w = self._gradients(x_rows.T, y_rows.T, scale)
        self.weights = [w - nw for w, nw in zip(self.weights, nabla_w)]
        self.biases = [b - nb for b, nb in zip(self.biases, nabla_b)]

    def update_mini_batch(self, mini_batch: Any, eta: float) -> None:
        """Apply ``w ← w − eta/m ∇w`` (and the same for ``b``) with one backprop call.

        ``mini_batch`` is Nielsen's list of ``(x, y)`` pairs (``x`` of shape
        ``(sizes[0], 1)``, ``y`` one-hot ``(sizes[-1], 1)`` or an int label), or
        a stacked tuple ``(inputs (m, sizes[0]), labels)``.
        """
        eta = check_eta(eta)
        data = self._training_data(mini_batch, "mini_batch")
        self._step(data.inputs, data.targets, eta / data.n)

    # -- training loop -----------------------------------------------------
    def _training_data(self, data: Any, name: str) -> dataforms.DeviceData:
        inputs, targets = dataforms.training_arrays(data, name, self.sizes[0], self.sizes[-1])
        return dataforms.to_device(inputs, targets, self.backend, self.dtype)

    def _evaluation_data(self, data: Any, name: str) -> dataforms.DeviceData:
        inputs, labels = dataforms.evaluation_arrays(data, name, self.sizes[0], self.sizes[-1])
        return dataforms.to_device(inputs, labels, self.backend, self.dtype)

    def SGD(  # noqa: N802 - Nielsen's name
        self,
        training_data: Any,
        epochs: int,
        mini_batch_size: int,
        eta: float,
        test_data: Any = None,
        *,
        quiet: bool = False,
        on_batch: Callable[[int], None] | None = None,
        on_epoch: Callable[[EpochResult], None] | None = None,
    ) -> list[EpochResult]:
        """Train with mini-batch stochastic gradient descent.

        Each epoch shuffles the training set (one gather on the device), then
        applies :meth:`update_mini_batch`'s step to consecutive slices of
        ``mini_batch_size`` samples (the last one may be smaller).  Data is
        checked and moved to the device once per call; the only host
        round-trip is one per epoch, for timing and accuracy.

        Returns one :class:`EpochResult` per epoch, and prints Nielsen's
        ``Epoch j: k / n`` lines unless ``quiet``.  ``on_batch(m)`` is called
        after each mini-batch of ``m`` samples is queued (for progress bars; it
        must not read device arrays), ``on_epoch(result)`` after each epoch.
        """
        epochs = check_int(epochs, "epochs", 0)
        mini_batch_size = check_int(mini_batch_size, "mini_batch_size", 1)
        eta = check_eta(eta)
        train = self._training_data(training_data, "training_data")
        test = None if test_data is None else self._evaluation_data(test_data, "test_data")

        xp, n = self.xp, train.n
        history = []
        for j in range(epochs):
            start = time.perf_counter()
            order = self.backend.asarray(initializers.permutation(self._rng, n))
            inputs = xp.take(train.inputs, order, axis=0)
            targets = xp.take(train.targets, order, axis=0)
            for k in range(0, n, mini_batch_size):
                stop = min(k + mini_batch_size, n)
                self._step(inputs[k:stop, :], targets[k:stop, :], eta / (stop - k))
                if on_batch is not None:
                    on_batch(stop - k)
            self._synchronize()
            seconds = time.perf_counter() - start
            correct = None if test is None else self._count_correct(test)
            result = EpochResult(j, seconds, correct, None if test is None else test.n)
            history.append(result)
            if on_epoch is not None:
                on_epoch(result)
            if not quiet:
                if test is None:
                    print(f"Epoch {j} complete")
                else:
                    print(f"Epoch {j}: {correct} / {test.n}")
        return history

    def save(self, path: str | os.PathLike[str]) -> Path:
        """Save sizes, weights and biases to ``.npz`` or ``.json`` (atomic write).

        The file loads onto any backend with :func:`portable_nn.load`.
        """
        from .serialization import save

        return save(self, path)

    def _synchronize(self) -> None:
        """Wait for queued device work (one tiny host copy)."""
        to_numpy(self.biases[-1][0:1, 0:1])

    # -- evaluation --------------------------------------------------------
    def _count_correct(self, data: dataforms.DeviceData) -> int:
        xp = self.xp
        correct = xp.asarray(0, dtype=xp.int64, device=self.backend.device)
        for k in range(0, data.n, EVAL_CHUNK):
            stop = min(k + EVAL_CHUNK, data.n)  # out-of-bounds slice stops are not standard
            a = data.inputs[k:stop, :].T
            for b, w in zip(self.biases, self.weights):
                a = self._sigmoid(w @ a + b)
            hits = xp.argmax(a, axis=0) == data.targets[k:stop]
            correct = correct + xp.count_nonzero(hits)
        return int(to_numpy(correct))

    def evaluate(self, test_data: Any) -> int:
        """Number of samples whose most active output neuron matches the label.

        ``test_data``: Nielsen's list of ``(x, label)`` pairs, or a stacked
        tuple ``(inputs (n, sizes[0]), labels (n,))``; one-hot targets are
        accepted too.  Returns a Python ``int``.
        """
        return self._count_correct(self._evaluation_data(test_data, "test_data"))
