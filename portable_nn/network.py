"""Nielsen's ``network.py`` (chapter 1): sigmoid layers, quadratic cost, mini-batch SGD.

The book's names and behaviour on the shared core: the math is
:mod:`portable_nn._math.dense` (standard namespace only), the epoch loop
:mod:`portable_nn._train.loop`, the data path :mod:`portable_nn._data.forms`.  One
mini-batch is one ``(sizes[0], m)`` matrix and one backprop; nothing is copied
to the host per mini-batch.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

from ._base.types import BackendSpec, Device
from ._base.validation import check_eta, check_int
from ._math import initializers
from ._nets.dense import DenseNetwork
from ._train.checkpoint import data_identity, network_settings, open_checkpoint
from ._train.evaluation import EVAL_CHUNK
from ._train.loop import EpochResult, sgd

__all__ = ["EVAL_CHUNK", "EpochResult", "Network"]


class Network(DenseNetwork):
    """A fully connected sigmoid network trained by mini-batch SGD on the quadratic cost.

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
        per-epoch shuffles identically on every backend.  ``None``: NumPy's
        global state, as the book (``np.random.seed(k)`` first makes a run repeat).
    device:
        Backend device for all arrays; ``None`` is the library's default.

    Attributes
    ----------
    weights:
        List of ``(sizes[l+1], sizes[l])`` backend arrays of ``dtype``.
    biases:
        List of ``(sizes[l+1], 1)`` backend arrays of ``dtype``.

    Every weight and bias starts as a draw from N(0, 1), as in the book.
    :meth:`from_arrays` builds a network from given parameters instead.
    """

    def __init__(
        self,
        sizes: list[int],
        xp: BackendSpec = "numpy",
        *,
        dtype: str = "float64",
        seed: int | None = None,
        device: Device = None,
    ) -> None:
        self._setup(sizes, xp, dtype, seed, device, self._spec())
        self._set_host_parameters(*initializers.gaussian_layers(self.sizes, self._rng))

    def cost_derivative(self, output_activations: Any, y: Any) -> Any:
        """∂C/∂a for the quadratic cost ``C = ½‖a − y‖²``, shape of ``y``."""
        return output_activations - y

    def update_mini_batch(self, mini_batch: Any, eta: float) -> None:
        """Apply ``w ← w − eta/m ∇w`` (and the same for ``b``) with one backprop call.

        ``mini_batch`` is Nielsen's list of ``(x, y)`` pairs (``x`` of shape
        ``(sizes[0], 1)``, ``y`` one-hot ``(sizes[-1], 1)`` or an int label), or
        a stacked tuple ``(inputs (m, sizes[0]), labels)``.
        """
        eta = check_eta(eta)
        self._apply_step(self._device_data(mini_batch, "mini_batch", training=True), eta)

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
        checkpoint: str | os.PathLike[str] | None = None,
        resume: bool = False,
    ) -> list[EpochResult]:
        """Train with mini-batch stochastic gradient descent.

        Each epoch draws a shuffle of the training set, then applies
        :meth:`update_mini_batch`'s step to consecutive slices of
        ``mini_batch_size`` samples of it (the last one may be smaller), taking
        each mini-batch's rows by index from the data resident on the device.
        The only host round-trip is one per epoch, for timing and accuracy.

        Returns one :class:`EpochResult` per epoch, and prints Nielsen's
        ``Epoch j: k / n`` lines unless ``quiet``.  ``on_batch(m)`` is called
        after each mini-batch of ``m`` samples is queued (for progress bars; it
        must not read device arrays), ``on_epoch(result)`` after each epoch.
        Interrupting (Ctrl-C) leaves the network as it was after the last
        completed epoch.  ``checkpoint=DIR`` writes ``DIR/checkpoint.npz``
        after every epoch; ``resume=True`` continues from it (same settings,
        data and seed: the weights come out bit for bit as without the
        interrupt; the results returned include the earlier epochs).  See
        :mod:`portable_nn._train.checkpoint`.
        """
        epochs = check_int(epochs, "epochs", 0)
        mini_batch_size = check_int(mini_batch_size, "mini_batch_size", 1)
        eta = check_eta(eta)
        train = self._device_data(training_data, "training_data", training=True)
        test = None if test_data is None else self._device_data(test_data, "test_data", training=False)
        saved = open_checkpoint(
            checkpoint,
            resume,
            network_settings(
                self, epochs=epochs, mini_batch_size=mini_batch_size, eta=eta,
                training_data=data_identity(train), test_data=data_identity(test),
            ),
            result_type=EpochResult,
        )  # fmt: skip

        def report(j: int, seconds: float, eta: float) -> EpochResult:
            correct = None if test is None else self._count_correct(test)
            result = EpochResult(j, seconds, correct, None if test is None else test.n, eta=eta)
            if not quiet:
                print(f"Epoch {j} complete" if test is None else f"Epoch {j}: {correct} / {test.n}")
            return result

        return sgd(
            self, train, epochs, mini_batch_size, eta, report=report, on_batch=on_batch, on_epoch=on_epoch,
            checkpoint=saved,
        )  # fmt: skip

    def evaluate(self, test_data: Any) -> int:
        """Number of samples whose most active output neuron matches the label.

        ``test_data``: Nielsen's list of ``(x, label)`` pairs, or a stacked
        tuple ``(inputs (n, sizes[0]), labels (n,))``; one-hot targets are
        accepted too.  Returns a Python ``int``.
        """
        return self._count_correct(self._device_data(test_data, "test_data", training=False))
