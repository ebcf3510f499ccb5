"""Chapter 6's network (the book's ``network3.Network``) on the shared core; ``portable_nn.network3`` re-exports it.

The layers are the book's classes (:mod:`portable_nn._nets.chapter6_layers`),
their math the shared :class:`~portable_nn._math.chain.Chain` in the rows
layout; training is the shared epoch loop (:func:`portable_nn._train.loop.sgd`)
with the shared :class:`~portable_nn._math.updates.UpdateRule`, so momentum,
L1, early stopping and the learning-rate schedule work here as in chapter 3;
evaluation is the shared :class:`~portable_nn._train.evaluation.Evaluator`.
What is chapter 6's own: the book's L2 scale (``lmbda/num_training_batches``),
dropout masks drawn on the host once per epoch, and the book's printed lines.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from .._backend.backends import Backend, resolve_backend, to_numpy
from .._backend.compiled import compile_function, epoch_function
from .._base.limits import parameter_count
from .._base.types import Array, BackendSpec, Device
from .._base.validation import (
    check_dtype,
    check_eta,
    check_int,
    check_lmbda,
    check_mu,
    check_stop_rules,
    max_parameters,
)
from .._data import forms as dataforms
from .._io.network3_files import write_network3_file
from .._math import initializers
from .._math.chain import SHIFTS, make_step
from .._math.costs import LogLikelihoodCost
from .._math.updates import UpdateRule, check_regularization
from .._train.checkpoint import data_identity, network_settings, open_checkpoint
from .._train.evaluation import Evaluator
from .._train.loop import EpochResult, StopRules, sgd
from .._train.protocol import Epoch, Step
from .base import TrainableNetwork
from .chapter6_layers import Layer, chain_of

__all__ = ["Network", "Network3EpochResult"]


@dataclass(frozen=True)
class Network3EpochResult(EpochResult):
    """An :class:`EpochResult` (``correct``/``n_test``: the validation data) plus the test data's count.

    ``test_correct``/``n_test_data`` are set when the epoch brought a best
    validation accuracy so far (``>=``, as the book) and test data was given,
    otherwise they repeat the value that goes with the best epoch so far
    (``None`` before any).  ``best`` tells whether this epoch was a new best.
    """

    test_correct: int | None = None
    n_test_data: int | None = None
    best: bool = False

    @property
    def test_accuracy(self) -> float | None:
        """``test_correct / n_test_data`` (the test accuracy going with the best validation so far)."""
        return None if self.test_correct is None or not self.n_test_data else self.test_correct / self.n_test_data


class Network(TrainableNetwork):
    """The book's chapter-6 network: a list of layers, the last a :class:`SoftmaxLayer`.

    Parameters
    ----------
    layers:
        :class:`ConvPoolLayer`, :class:`FullyConnectedLayer` and a final
        :class:`SoftmaxLayer`, each ``n_out`` the next one's ``n_in``.  The
        network draws their initial ``w``/``b`` (the book's initialisation,
        layer by layer, weights then biases, from its NumPy generator) and
        owns them: ``net.layers[i].w`` is a backend array of ``dtype``;
        assigning an array of the same shape (any backend) replaces it.
    mini_batch_size:
        The book's argument (kept, and used by ``SGD`` when none is given).
    xp, dtype, seed, device:
        Backend, ``"float32"`` (default) or ``"float64"``, seed, device.  The
        initial weights, shuffles and dropout masks are host NumPy draws (the
        same on every backend): with ``seed=None`` from NumPy's global state
        (``np.random.seed(k)`` makes a script repeat; the weights are the
        book's ``np.random.normal`` values), with ``seed=k`` from the
        network's own ``numpy.random.default_rng(k)``.  See
        :mod:`portable_nn._math.initializers`.
    """

    def __init__(
        self,
        layers: Sequence[Layer],
        mini_batch_size: int,
        *,
        xp: BackendSpec = "numpy",
        dtype: str = "float32",
        seed: int | None = None,
        device: Device = None,
    ) -> None:
        self._setup(layers, mini_batch_size, xp, dtype, seed, device)
        for layer in self.layers:
            w, b = layer.init_parameters(self._rng)
            layer.w, layer.b = w, b

    @classmethod
    def from_parameters(
        cls,
        layers: Sequence[Layer],
        mini_batch_size: int,
        weights: Sequence[Array],
        biases: Sequence[Array],
        *,
        xp: BackendSpec = "numpy",
        dtype: str = "float32",
        seed: int | None = None,
        device: Device = None,
    ) -> Network:
        """A network of ``layers`` holding the given ``w``/``b`` (any backend; checked and converted), none drawn."""
        if len(weights) != len(layers) or len(biases) != len(layers):
            raise ValueError(
                f"weights and biases must hold one array per layer ({len(layers)}); "
                f"got {len(weights)} and {len(biases)}"
            )
        net = cls.__new__(cls)
        net._setup(layers, mini_batch_size, xp, dtype, seed, device)
        for layer, w, b in zip(net.layers, weights, biases, strict=True):
            layer.w, layer.b = w, b
        return net

    def _setup(
        self,
        layers: Sequence[Layer],
        mini_batch_size: int,
        xp: BackendSpec,
        dtype: str,
        seed: int | initializers.RandomSource | None,
        device: Device,
    ) -> None:
        layers = list(layers)
        chain = chain_of(layers)  # checks the stack (types, fit, softmax last)
        for i, layer in enumerate(layers):
            if layer.owned:
                raise ValueError(f"layers[{i}] already belongs to a network: build a new layer object for this one")
            if sum(1 for other in layers if other is layer) > 1:
                raise ValueError(f"layers[{i}] appears twice in layers")
        count = parameter_count(layers)
        if count > max_parameters():
            raise ValueError(
                f"these layers have {count:,} weights and biases, more than the limit of {max_parameters():,}; "
                "set $PORTABLE_NN_MAX_PARAMETERS to allow more"
            )
        self.mini_batch_size = check_int(mini_batch_size, "mini_batch_size", 1)
        self.dtype = check_dtype(dtype)
        self._rng = initializers.make_rng(seed)
        self.backend: Backend = resolve_backend(xp, device, self.dtype)
        self.xp = self.backend.xp
        self.layers = layers
        for layer in layers:
            layer.adopt(self)
        self.n_in = layers[0].n_in
        self.n_out = layers[-1].n_out
        #: The layers' math: a chain of rows-layout layers (:mod:`portable_nn._math.chain`).
        self.chain = chain
        self._evaluator = Evaluator.build(self.chain, self.backend, self.float_dtype)
        self._compiled: dict[tuple[UpdateRule, float | None, bool], tuple[Step, Epoch]] = {}
        self._velocities = None
        self._ones_cache = {}
        self._dropout = any(layer.p_dropout > 0.0 for layer in layers)
        self._train_dropout = False
        #: Fraction of saturated softmax outputs at the last evaluation (the divergence check reads it).
        self.output_saturation = 0.0

    def __repr__(self) -> str:
        return f"Network({self.layers!r}, {self.mini_batch_size}, xp={self.backend.name!r}, dtype={self.dtype!r})"

    @property
    def params(self) -> list[Any]:
        """``[w0, b0, w1, b1, ...]`` as the book's ``params`` (read-only list; assign via the layers)."""
        return [p for layer in self.layers for p in (layer.w, layer.b)]

    # -- conversions -------------------------------------------------------------------------
    def own_array(self, array: Any, name: str) -> Any:
        """``array`` (any backend or NumPy) as this network's dtype on its device; must be finite real numbers.

        For ``feedforward``'s inputs, and what a layer's ``w``/``b`` setter calls once the network owns it."""
        return dataforms.as_network_array(array, name, self.backend, self.dtype, finite=True)

    def _device_data(self, data: Any, name: str, *, training: bool) -> dataforms.DeviceData:
        return dataforms.to_device(data, name, self.n_in, self.n_out, self.backend, self.dtype, training=training)

    # -- the training protocol (portable_nn._train.protocol; the rest in TrainableNetwork) ----
    def _hold(self, weights: tuple[Array, ...], biases: tuple[Array, ...]) -> None:
        for layer, w, b in zip(self.layers, weights, biases):
            layer.hold(w, b)

    @staticmethod
    def update_rule(
        lmbda: float, n: int, mini_batch_size: int, mu: float = 0.0, regularization: str = "l2"
    ) -> UpdateRule:
        """The book's chapter-6 rule: the decay of ``lmbda`` is ``lmbda/num_training_batches``.

        ``num_training_batches = n // mini_batch_size`` (at least 1), as the book's L2 term
        ``0.5·lmbda·Σ‖w‖²/num_training_batches``; network2's is ``lmbda/n``.
        """
        return UpdateRule(lmbda / max(1, n // mini_batch_size), mu, regularization)

    def training_step(self, rule: UpdateRule, divisor: float | None) -> tuple[Step, Epoch]:
        """The step (and compiled epoch, on JAX) for these settings, built once per setting."""
        key = (rule, divisor, self._train_dropout)
        if key not in self._compiled:
            backend = self.backend
            shifts = backend.xp.asarray(SHIFTS, dtype=backend.xp.uint8, device=backend.device)
            step = make_step(
                self.xp,
                self.chain,
                LogLikelihoodCost,
                rule,
                divisor=divisor,
                dtype=self.float_dtype,
                shifts=shifts if self._train_dropout else None,
            )
            self._compiled[key] = (compile_function(backend, step), epoch_function(backend, step))
        return self._compiled[key]

    # -- dropout masks ---------------------------------------------------------------------------
    def _draw_masks(self, n: int) -> tuple[Any, ...]:
        """One epoch's dropout masks: per dropout layer ``(n, ceil(n_in/8))`` uint8 packed bits, on the device.

        Bit ``u`` of row ``i`` keeps input ``u`` of sample ``i`` (probability
        ``1 − p``).  ``p == 0.5``: uniform random bytes; otherwise
        ``random(float32) >= p`` in chunks of 8,192 rows, then ``packbits``.
        """
        masks = []
        for layer in self.layers:
            if layer.p_dropout <= 0.0:
                continue
            width = -(-layer.n_in // 8)
            if layer.p_dropout == 0.5:
                packed = self._rng.integers(0, 256, size=(n, width), dtype=np.uint8)
            else:
                packed = np.empty((n, width), dtype=np.uint8)
                for k in range(0, n, 8192):
                    keep = self._rng.random((min(8192, n - k), layer.n_in), dtype=np.float32) >= layer.p_dropout
                    packed[k : k + keep.shape[0]] = np.packbits(keep, axis=1)
            masks.append(self.backend.asarray(packed, dtype=self.xp.uint8))
        return tuple(masks)

    # -- evaluation (portable_nn._train.evaluation) -------------------------------------------
    def _params(self) -> tuple[tuple[Array, ...], tuple[Array, ...]]:
        return tuple(layer.w for layer in self.layers), tuple(layer.b for layer in self.layers)

    def feedforward(self, inputs: Any) -> Any:
        """Output activations ``(n, n_out)`` (softmax probabilities) for stacked inputs ``(n, n_in)``.

        Any ``n``; evaluated in chunks (dropout scaled by ``1 − p``); the
        result is an array of the network's backend, dtype and device.
        """
        shape = tuple(getattr(inputs, "shape", ()))
        if len(shape) != 2 or shape[1] != self.n_in:
            raise ValueError(f"inputs must have shape (n, {self.n_in}) (one sample per row); got {shape}")
        x = self.own_array(inputs, "inputs")
        weights, biases = self._params()
        chunk = self._evaluator.chunk(None)
        outputs = self._evaluator.outputs
        parts = [outputs(weights, biases, x[k : min(k + chunk, shape[0]), :]) for k in range(0, shape[0], chunk)]
        if not parts:
            return self.xp.zeros((0, self.n_out), dtype=self.float_dtype, device=self.backend.device)
        return parts[0] if len(parts) == 1 else self.xp.concat(parts, axis=0)

    def accuracy(self, data: Any) -> int:
        """How many samples of ``data`` (stacked ``(inputs, labels)``, pairs, a ``Dataset``) are classified right."""
        return self._count_correct(self._device_data(data, "data", training=False))

    def predictions(self, data: Any) -> np.ndarray:
        """The most probable digit of every sample, as a host ``(n,)`` int64 NumPy array, on every backend.

        ``data``: stacked inputs ``(n, n_in)`` (any backend, or a
        :class:`SharedArray` such as ``test_x`` of ``test_x, test_y =
        test_data``), or a data set (:class:`SharedPair`, ``Dataset``, pairs).
        The book's ``conv.py`` gets these from a Theano function of
        ``net.layers[-1].y_out`` over ``test_x`` mini-batch by mini-batch;
        ``np.argmax(net.feedforward(x), axis=1)`` gives the same on NumPy only.
        """
        xp = self.xp
        if isinstance(data, np.ndarray) or (hasattr(data, "shape") and not hasattr(data, "dataset")):
            outputs = self.feedforward(data)
            return to_numpy(xp.argmax(outputs, axis=1)).astype(np.int64)
        weights, biases = self._params()
        evaluator = self._evaluator
        parts = [
            to_numpy(xp.argmax(evaluator.outputs(weights, biases, x), axis=1)).astype(np.int64)
            for x, _ in evaluator.inputs(self._device_data(data, "data", training=False))
        ]
        return np.concatenate(parts)

    def cost(self, data: Any, lmbda: float = 0.0, mini_batch_size: int | None = None) -> float:
        """The book's cost on ``data`` without dropout: ``mean(−ln a_y) + 0.5·lmbda·Σ‖w‖²/num_batches``.

        ``num_batches = len(data) // mini_batch_size`` (the network's by default).
        """
        lmbda = check_lmbda(lmbda)
        m = self.mini_batch_size if mini_batch_size is None else check_int(mini_batch_size, "mini_batch_size", 1)
        device = self._device_data(data, "data", training=False)
        decay = self.update_rule(lmbda, device.n, m).decay
        return self._evaluator.total_cost(*self._params(), device, LogLikelihoodCost, decay, "l2")

    # -- training --------------------------------------------------------------------------------------
    def SGD(  # noqa: N802 - the book's name
        self,
        training_data: Any,
        epochs: int,
        mini_batch_size: int,
        eta: float,
        validation_data: Any = None,
        test_data: Any = None,
        lmbda: float = 0.0,
        *,
        mu: float = 0.0,
        regularization: str = "l2",
        early_stopping_n: int = 0,
        schedule_n: int = 0,
        quiet: bool = False,
        on_batch: Callable[[int], None] | None = None,
        on_epoch: Callable[[EpochResult], None] | None = None,
        checkpoint: str | os.PathLike[str] | None = None,
        resume: bool = False,
    ) -> list[Network3EpochResult]:
        """Mini-batch SGD with the book's cost (log-likelihood + ``0.5·lmbda·Σ‖w‖²/num_training_batches``).

        ``training_data``: stacked ``(inputs (n, n_in), labels (n,))`` as the
        book's ``load_data_shared`` gives, the package's pairs, or a
        :class:`portable_nn.Dataset`.  After each epoch prints the book's lines
        (``Training mini-batch number k`` every 1,000 mini-batches, ``Epoch j:
        validation accuracy``, the best-so-far line and the corresponding test
        accuracy) unless ``quiet``, and finally the book's summary.  Returns one
        :class:`Network3EpochResult` per epoch.  Parameters change only at
        the end of an epoch: Ctrl-C leaves the network as after the last whole one.
        ``checkpoint=DIR`` writes ``DIR/checkpoint.npz`` after every epoch
        (parameters, generator state, so the dropout masks continue, and the
        results); ``resume=True`` continues from it, bit for bit as an
        uninterrupted run with the same seed, settings and data (the results
        include the earlier epochs).  See :mod:`portable_nn._train.checkpoint`.

        Keyword-only, as network2's ``SGD``: ``mu`` (momentum), ``regularization``
        (``"l2"``, the book's, or ``"l1"``: ``w ← w − eta·lmbda/num_training_batches·sgn(w) − ...``),
        ``early_stopping_n`` and ``schedule_n`` (halve ``eta`` after that many
        epochs without a new best, stop at ``eta/128``), both watching the
        validation accuracy (so they need ``validation_data``).
        """
        epochs = check_int(epochs, "epochs", 0)
        mini_batch_size = check_int(mini_batch_size, "mini_batch_size", 1)
        eta = check_eta(eta)
        lmbda = check_lmbda(lmbda)
        mu = check_mu(mu)
        regularization = check_regularization(regularization)
        early_stopping_n, schedule_n = check_stop_rules(
            early_stopping_n, schedule_n, validation_data, "validation_data"
        )
        train = self._device_data(training_data, "training_data", training=True)
        validation = (
            None if validation_data is None else self._device_data(validation_data, "validation_data", training=False)
        )
        test = None if test_data is None else self._device_data(test_data, "test_data", training=False)
        rule = self.update_rule(lmbda, train.n, mini_batch_size, mu, regularization)
        self._train_dropout = self._dropout
        say = (lambda *_: None) if quiet else print
        batches_per_epoch = -(-train.n // mini_batch_size)
        counter = {"iteration": 0}
        best: dict[str, Any] = {"validation": -1, "iteration": None, "test": None}
        saved = open_checkpoint(
            checkpoint,
            resume,
            network_settings(
                self, epochs=epochs, mini_batch_size=mini_batch_size, eta=eta, lmbda=lmbda, mu=mu,
                regularization=regularization, early_stopping_n=early_stopping_n, schedule_n=schedule_n,
                training_data=data_identity(train), validation_data=data_identity(validation),
                test_data=data_identity(test),
            ),
            result_type=Network3EpochResult,
        )  # fmt: skip
        for earlier in saved.results() if saved is not None else ():
            if earlier.best:  # the best-so-far bookkeeping of the epochs before the interrupt
                best["validation"], best["iteration"] = earlier.correct, (earlier.epoch + 1) * batches_per_epoch - 1
            best["test"] = earlier.test_correct
            counter["iteration"] = (earlier.epoch + 1) * batches_per_epoch

        def count_batches(m: int) -> None:
            done = counter["iteration"]
            now = done + -(-m // mini_batch_size)
            for it in range(-(-done // 1000) * 1000, now, 1000):
                say(f"Training mini-batch number {it}")
            counter["iteration"] = now
            if on_batch is not None:
                on_batch(m)

        def before_epoch(j: int) -> dataforms.DeviceData | None:
            if not self._train_dropout:
                return None
            return dataforms.DeviceData(
                train.inputs, (train.targets, self._draw_masks(train.n)), train.n, train.divisor
            )

        def report(j: int, seconds: float, eta_now: float) -> EpochResult:
            counter["iteration"] = (j + 1) * batches_per_epoch
            correct = None if validation is None else self._count_correct(validation)
            new_best = False
            if validation is not None and correct is not None:
                say(f"Epoch {j}: validation accuracy {correct / validation.n:.2%}")
                if correct >= best["validation"]:
                    new_best = True
                    say("This is the best validation accuracy to date.")
                    best["validation"], best["iteration"] = correct, counter["iteration"] - 1
                    if test is not None:
                        best["test"] = self._count_correct(test)
                        say(f"The corresponding test accuracy is {best['test'] / test.n:.2%}")
            return Network3EpochResult(
                j,
                seconds,
                correct=correct,
                n_test=None if validation is None else validation.n,
                n_train=train.n,
                eta=eta_now,
                test_correct=best["test"],
                n_test_data=None if test is None else test.n,
                best=new_best,
            )

        history = sgd(
            self,
            train,
            epochs,
            mini_batch_size,
            eta,
            report=report,
            rule=rule,
            rules=StopRules(early_stopping_n=early_stopping_n, schedule_n=schedule_n),
            on_batch=count_batches,
            on_epoch=on_epoch,
            before_epoch=before_epoch,
            checkpoint=saved,
        )
        say("Finished training network.")
        if validation is not None and best["iteration"] is not None:
            say(
                f"Best validation accuracy of {best['validation'] / validation.n:.2%} "
                f"obtained at iteration {best['iteration']}"
            )
            if test is not None:
                say(f"Corresponding test accuracy of {best['test'] / test.n:.2%}")
        return history  # type: ignore[return-value]  # report builds Network3EpochResult

    # -- files ------------------------------------------------------------------------------------------
    def save(self, path: str | os.PathLike[str]) -> Path:
        """Write ``.npz`` (no pickle): ``layer{i}_w``, ``layer{i}_b`` host arrays and ``meta``, a JSON string
        with the layer specification, the mini-batch size and the dtype; atomic.  Loads onto any backend
        with :func:`load`.  Refuses (``ValueError``) non-finite parameters."""
        path = Path(path)
        weights, biases = self._params()
        specs = [layer.spec() for layer in self.layers]
        write_network3_file(path, specs, weights, biases, self.mini_batch_size, self.dtype)
        return path
