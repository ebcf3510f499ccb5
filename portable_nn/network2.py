"""Nielsen's ``network2.py`` (chapter 3) on the shared core, for any Array API backend.

Drop-in for the book's module: the same names, argument order and defaults
(``Network(sizes, cost=CrossEntropyCost)``, ``SGD(training_data, epochs,
mini_batch_size, eta, lmbda=0.0, evaluation_data=None, monitor_...=False,
early_stopping_n=0)`` returning the four lists, ``accuracy``, ``total_cost``,
``save``, module-level ``load`` and ``vectorized_result``), the same printed
lines, and keyword-only extras: the backend (``xp``, ``dtype``, ``seed``,
``device``) and the chapter's other techniques:

* ``LogLikelihoodCost`` gives the network a softmax output layer;
* ``activation="tanh"`` or ``"relu"`` for the hidden neurons, or your own
  function with its derivative (``activation=f, activation_prime=f_prime``);
* your own cost (a class or object with the book's ``fn(a, y)`` and
  ``delta(z, a, y)``), or a subclass of ours overriding them: used as written
  (see :mod:`portable_nn._math.costs`);
* ``SGD(..., mu=0.9)``: momentum SGD; ``regularization="l1"``: L1 instead of L2;
* ``SGD(..., schedule_n=10)``: halve ``eta`` after 10 epochs without a new best
  evaluation accuracy, stop once it has fallen to ``eta/128``;
* ``early_stopping_n``: stop after that many epochs without a new best.

The math is :mod:`portable_nn._math.dense`, the loop :mod:`portable_nn._train.loop`.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

import numpy as np

from ._base.types import BackendSpec, Device
from ._base.validation import check_eta, check_int, check_lmbda, check_mu, check_stop_rules
from ._io.serialization import read_model
from ._math import initializers
from ._math.activations import SIGMOID, Activation, on_number_or_array, resolve_activation
from ._math.costs import CrossEntropyCost, LogLikelihoodCost, QuadraticCost, get_cost
from ._math.dense import DenseSpec
from ._math.updates import check_regularization
from ._nets.dense import DenseNetwork
from ._train.checkpoint import data_identity, network_settings, open_checkpoint
from ._train.loop import EpochResult, StopRules, sgd

__all__ = [
    "CrossEntropyCost",
    "LogLikelihoodCost",
    "Network",
    "QuadraticCost",
    "load",
    "sigmoid",
    "sigmoid_prime",
    "vectorized_result",
]


class Network(DenseNetwork):
    """The book's chapter-3 network.

    Parameters
    ----------
    sizes:
        Neurons per layer, e.g. ``[784, 30, 10]``.
    cost:
        ``CrossEntropyCost`` (default, sigmoid outputs), ``QuadraticCost``, or
        ``LogLikelihoodCost`` (softmax outputs): the class, an instance
        (``CrossEntropyCost()``, as the book's scripts pass it) or its name;
        or your own cost class or object with the book's ``fn(a, y)`` and
        ``delta(z, a, y)`` (``(n_out, m)`` column arrays of the network's
        backend; ``fn`` sums over the columns), or a subclass of ours
        overriding them: training calls your ``delta``, ``total_cost`` your
        ``fn``.  ``net.cost`` is what you passed.
    xp, dtype, seed, device:
        Backend, ``"float64"``/``"float32"``, seed, backend device.  Every
        random number is a host NumPy draw moved to the device, so the same
        seed gives the same network and the same run on every backend.
        ``seed=None`` (the book's way): the initial weights
        (``numpy.random.standard_normal``, biases then weights, layer by
        layer: the book's ``np.random.randn`` values) and each epoch's
        shuffle (``numpy.random.permutation``) come from NumPy's global
        state, so a script that calls ``np.random.seed(k)`` first repeats
        exactly.  ``seed=k``: a generator of its own,
        ``numpy.random.default_rng(k)``, which the global state does not touch.
    activation, activation_prime:
        Hidden neurons: ``"sigmoid"`` (the book's), ``"tanh"`` or ``"relu"``;
        or your own function of the weighted input ``z`` (any shape, an array
        of the network's backend and dtype) with ``activation_prime`` its
        derivative, a function of ``z`` too.  Write them with
        ``xp = array_api_compat.array_namespace(z)``; a failure (or a result of
        another library, shape or dtype) raises
        :class:`portable_nn._math.activations.UserFunctionError` naming the function
        and the backend.

    Weights start from :meth:`default_weight_initializer` (N(0, 1/n_in)
    weights, N(0, 1) biases) as in the book.
    """

    def __init__(
        self,
        sizes: list[int],
        cost: Any = CrossEntropyCost,
        *,
        xp: BackendSpec = "numpy",
        dtype: str = "float64",
        seed: int | None = None,
        device: Device = None,
        activation: Any = "sigmoid",
        activation_prime: Callable[[Any], Any] | None = None,
    ) -> None:
        options = {"cost": cost, "activation": activation, "activation_prime": activation_prime}
        self._setup(sizes, xp, dtype, seed, device, self._spec(**options))
        self._configure(**options)
        self.default_weight_initializer()

    @classmethod
    def _spec(
        cls,
        cost: Any = CrossEntropyCost,
        activation: Any = "sigmoid",
        activation_prime: Callable[[Any], Any] | None = None,
        **_: Any,
    ) -> DenseSpec:
        resolved = get_cost(cost)
        output = "softmax" if resolved.output == "softmax" else SIGMOID
        hidden = resolve_activation(activation, activation_prime, "activation", _BOOK_FUNCTIONS, "activation_prime")
        return DenseSpec(hidden=hidden, output=output, cost=resolved)

    def _configure(self, cost: Any = CrossEntropyCost, **options: Any) -> None:
        #: The cost as passed (the book's ``self.cost``): a class or an instance; names become the class.
        self.cost = self.spec.cost if isinstance(cost, str) else cost

    # -- initialisation (the book's two) ----------------------------------------
    def default_weight_initializer(self) -> None:
        """Weights from N(0, 1/n_in), biases from N(0, 1), drawn from the network's generator.

        With ``seed=None`` that is NumPy's global state: after ``np.random.seed(k)``
        these are the book's ``np.random.randn`` draws, in the book's order.
        """
        self._set_host_parameters(*initializers.scaled_gaussian_layers(self.sizes, self._rng))

    def large_weight_initializer(self) -> None:
        """Weights and biases from N(0, 1), as in chapter 1 (for comparison)."""
        self._set_host_parameters(*initializers.gaussian_layers(self.sizes, self._rng))

    # -- training -----------------------------------------------------------------
    def update_mini_batch(
        self, mini_batch: Any, eta: float, lmbda: float, n: int, *, regularization: str = "l2"
    ) -> None:
        """One step ``w ← (1 − eta·lmbda/n)·w − (eta/m)·∇w``, ``b ← b − (eta/m)·∇b`` (one backprop).

        ``n`` is the size of the whole training set (it scales the weight
        decay); ``regularization="l1"`` uses ``w ← w − (eta·lmbda/n)·sgn(w) − (eta/m)·∇w``.
        """
        eta = check_eta(eta)
        lmbda = check_lmbda(lmbda)
        n = check_int(n, "n", 1)
        regularization = check_regularization(regularization)
        data = self._device_data(mini_batch, "mini_batch", training=True)
        self._apply_step(data, eta, lmbda=lmbda, n=n, regularization=regularization)

    def SGD(  # noqa: N802 - the book's name
        self,
        training_data: Any,
        epochs: int,
        mini_batch_size: int,
        eta: float,
        lmbda: float = 0.0,
        evaluation_data: Any = None,
        monitor_evaluation_cost: bool = False,
        monitor_evaluation_accuracy: bool = False,
        monitor_training_cost: bool = False,
        monitor_training_accuracy: bool = False,
        early_stopping_n: int = 0,
        *,
        mu: float = 0.0,
        regularization: str = "l2",
        schedule_n: int = 0,
        quiet: bool = False,
        on_batch: Callable[[int], None] | None = None,
        on_epoch: Callable[[EpochResult], None] | None = None,
        checkpoint: str | os.PathLike[str] | None = None,
        resume: bool = False,
    ) -> tuple[list[float], list[int], list[float], list[int]]:
        """Mini-batch SGD with the book's monitoring; returns the book's four lists.

        ``(evaluation_cost, evaluation_accuracy, training_cost,
        training_accuracy)``, one value per epoch for each monitored series
        (empty lists otherwise).  Prints the book's lines unless ``quiet``.
        ``early_stopping_n`` and ``schedule_n`` watch the accuracy on
        ``evaluation_data`` (which they therefore need).  ``on_epoch`` receives
        an :class:`EpochResult` carrying every monitored value and the epoch's ``eta``.
        ``checkpoint=DIR`` writes ``DIR/checkpoint.npz`` after every epoch
        (parameters, momentum velocities, generator state, eta, the stop
        rules' counters, the results); ``resume=True`` continues from it, bit
        for bit as an uninterrupted run with the same seed, settings and data
        (the four lists then include the earlier epochs).  See :mod:`portable_nn._train.checkpoint`.
        """
        epochs = check_int(epochs, "epochs", 0)
        mini_batch_size = check_int(mini_batch_size, "mini_batch_size", 1)
        eta = check_eta(eta)
        lmbda = check_lmbda(lmbda)
        mu = check_mu(mu)
        regularization = check_regularization(regularization)
        early_stopping_n, schedule_n = check_stop_rules(
            early_stopping_n, schedule_n, evaluation_data, "evaluation_data"
        )
        if (monitor_evaluation_cost or monitor_evaluation_accuracy) and evaluation_data is None:
            raise ValueError("monitor_evaluation_cost/accuracy need evaluation_data")
        train = self._device_data(training_data, "training_data", training=True)
        evaluation = (
            None if evaluation_data is None else self._device_data(evaluation_data, "evaluation_data", training=False)
        )
        watch_accuracy = monitor_evaluation_accuracy or bool(early_stopping_n or schedule_n)
        self._velocities = None  # momentum starts from rest in every SGD call (or from the checkpoint's)
        saved = open_checkpoint(
            checkpoint,
            resume,
            network_settings(
                self, epochs=epochs, mini_batch_size=mini_batch_size, eta=eta, lmbda=lmbda, mu=mu,
                regularization=regularization, early_stopping_n=early_stopping_n, schedule_n=schedule_n,
                monitor=[monitor_evaluation_cost, monitor_evaluation_accuracy, monitor_training_cost,
                         monitor_training_accuracy],
                training_data=data_identity(train), evaluation_data=data_identity(evaluation),
            ),
            result_type=EpochResult,
        )  # fmt: skip
        lists: tuple[list[float], list[int], list[float], list[int]] = ([], [], [], [])

        def collect(result: EpochResult) -> None:
            if result.training_cost is not None:
                lists[2].append(result.training_cost)
            if result.training_correct is not None:
                lists[3].append(result.training_correct)
            if result.evaluation_cost is not None:
                lists[0].append(result.evaluation_cost)
            if monitor_evaluation_accuracy and result.correct is not None:
                lists[1].append(result.correct)

        for earlier in saved.results() if saved is not None else ():
            collect(earlier)

        def report(j: int, seconds: float, eta_now: float) -> EpochResult:
            result = EpochResult(
                j,
                seconds,
                correct=self._count_correct(evaluation) if evaluation is not None and watch_accuracy else None,
                n_test=None if evaluation is None else evaluation.n,
                evaluation_cost=self._total_cost(evaluation, lmbda, regularization)
                if evaluation is not None and monitor_evaluation_cost
                else None,
                training_cost=self._total_cost(train, lmbda, regularization) if monitor_training_cost else None,
                training_correct=self._count_correct(train) if monitor_training_accuracy else None,
                n_train=train.n,
                eta=eta_now,
            )
            collect(result)
            lines = [f"Epoch {j} training complete"]
            if result.training_cost is not None:
                lines.append(f"Cost on training data: {result.training_cost}")
            if result.training_correct is not None:
                lines.append(f"Accuracy on training data: {result.training_correct} / {train.n}")
            if result.evaluation_cost is not None:
                lines.append(f"Cost on evaluation data: {result.evaluation_cost}")
            if monitor_evaluation_accuracy and result.correct is not None:
                lines.append(f"Accuracy on evaluation data: {result.correct} / {result.n_test}")
            if not quiet:
                print("\n".join(lines) + "\n")
            return result

        sgd(
            self,
            train,
            epochs,
            mini_batch_size,
            eta,
            report=report,
            rule=self.update_rule(lmbda, train.n, mu, regularization),
            rules=StopRules(early_stopping_n=early_stopping_n, schedule_n=schedule_n),
            on_batch=on_batch,
            on_epoch=on_epoch,
            checkpoint=saved,
        )
        return lists

    # -- monitoring -----------------------------------------------------------------
    def accuracy(self, data: Any, convert: bool = False) -> int:
        """Number of samples in ``data`` whose most active output neuron is the right digit.

        ``convert`` is accepted for the book's code; the form of ``data``
        (int labels or one-hot ``y``) is recognised either way.
        """
        return self._count_correct(self._device_data(data, "data", training=False))

    def total_cost(self, data: Any, lmbda: float, convert: bool = False, *, regularization: str = "l2") -> float:
        """Mean cost over ``data`` plus ``(lmbda/2n)·Σ‖w‖²`` (``n = len(data)``), as in the book.

        Computed from the output layer's weighted inputs, so it stays finite
        when outputs saturate.  ``convert`` is accepted for the book's code.
        """
        lmbda = check_lmbda(lmbda)
        regularization = check_regularization(regularization)
        return self._total_cost(self._device_data(data, "data", training=True), lmbda, regularization)


def load(
    filename: str | os.PathLike[str], xp: BackendSpec = "numpy", *, dtype: str | None = None, device: Device = None
) -> Network:
    """Load a network saved by :meth:`Network.save` or by the book's own ``network2.save``, keeping its cost.

    Chapter-1 and chapter-3 files only (:func:`portable_nn.load` reads every kind).
    """
    _, weights, biases, meta = read_model(filename)
    return Network.from_arrays(
        weights, biases, xp, dtype=dtype, device=device, cost=meta["cost"], activation=meta["activation"]
    )


def vectorized_result(j: int) -> np.ndarray:
    """A ``(10, 1)`` float64 column with 1.0 in row ``j`` (the book's one-hot target)."""
    j = check_int(j, "j", 0)
    if j > 9:
        raise ValueError(f"j must be a digit 0..9; got {j}")
    e = np.zeros((10, 1))
    e[j] = 1.0
    return e


def sigmoid(z: Any) -> Any:
    """The sigmoid function, for any backend's array (same backend, shape and dtype) or a number (a ``float``)."""
    return on_number_or_array(SIGMOID, z)


def sigmoid_prime(z: Any) -> Any:
    """``σ'(z) = σ(z)(1 − σ(z))``, for any backend's array or a number (a ``float``)."""
    return on_number_or_array(SIGMOID, z, prime=True)


#: The module's own functions, as ``activation=`` takes them (with no or the matching ``activation_prime``).
_BOOK_FUNCTIONS: dict[Callable[[Any], Any], tuple[Activation, Callable[[Any], Any] | None]] = {
    sigmoid: (SIGMOID, sigmoid_prime)
}
