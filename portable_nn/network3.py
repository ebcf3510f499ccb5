"""Nielsen's ``network3.py`` (chapter 6) without Theano: convolutional networks on the shared Array-API core.

As a reader types it from chapter 6::

    from portable_nn import network3
    from portable_nn.network3 import Network, ConvPoolLayer, FullyConnectedLayer, SoftmaxLayer, ReLU

    training_data, validation_data, test_data = network3.load_data_shared()
    mini_batch_size = 10
    net = Network([
        ConvPoolLayer(image_shape=(mini_batch_size, 1, 28, 28), filter_shape=(20, 1, 5, 5), poolsize=(2, 2)),
        FullyConnectedLayer(n_in=20*12*12, n_out=100),
        SoftmaxLayer(n_in=100, n_out=10)], mini_batch_size, seed=1)
    net.SGD(training_data, 60, mini_batch_size, 0.1, validation_data, test_data)

prints the book's lines (``Epoch 0: validation accuracy 94.21%``, ``This is the
best validation accuracy to date.``, ``The corresponding test accuracy is ...``).

Keyword-only extras, as for the other networks: ``xp``, ``dtype`` (float32 by
default, as the book's GPU setting), ``seed``, ``device``; ``SGD(...,
quiet=True, on_batch=..., on_epoch=...)`` returning one
:class:`Network3EpochResult` per epoch; ``feedforward``, ``accuracy``,
``save``/:func:`load` (``.npz``).  :data:`PRESETS` and :func:`preset_network`
build the chapter's networks by name.

What differs from the book (all documented in ``docs/chapter6.md``):

* The training data is reshuffled every epoch from the network's NumPy
  generator (the book walks the mini-batches in a fixed order); a last,
  smaller mini-batch is trained on too.
* Dropout masks come from the network's NumPy source (the global state with
  ``seed=None``, else its ``default_rng(seed)``): at the start of each
  epoch one Bernoulli(1 − p) bit per sample and input unit of every dropout
  layer is drawn on the host, packed 8 per byte (``numpy.packbits``) and moved
  to the device once; the step takes each mini-batch's rows and unpacks them
  with two bitwise operations.  The same seed gives the same masks on every
  backend.  Cost: ``n·Σ n_in/8`` bytes per epoch (the book's dropout network on
  the expanded data: 250,000 × 2,640 bits = 83 MB) and the host draw
  (``integers`` for p = 0.5, else ``random`` in chunks; ~0.1 s resp. ~2 s per
  epoch of 250,000 samples).
* The L2 term is the book's ``0.5·lmbda·Σ‖w‖²/num_training_batches``
  (``num_training_batches = n // mini_batch_size``), over every layer's ``w``:
  the step does ``w ← (1 − eta·lmbda/num_training_batches)·w − (eta/m)·Σ∇w``.
  (network2's decay is ``lmbda/n``: the same ``lmbda`` is ``mini_batch_size``
  times stronger here, as in the book.)
* Accuracies are over the whole validation/test sets (the book averages
  whole mini-batches, the same for 10,000 samples and batch sizes dividing it).
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from . import dataforms, initializers
from .backends import Backend, _host_view, resolve_backend, to_numpy
from .checkpoint import data_identity, network_settings, open_checkpoint
from .compiled import compile_function, epoch_function
from .dense import State
from .layers import (
    ConvPoolLayer,
    FullyConnectedLayer,
    Layer,
    ReLU,
    SoftmaxLayer,
    check_stack,
    forward_eval,
    linear,
    log_likelihood,
    make_step,
    sigmoid,
    tanh,
)
from .network3_data import (
    SharedArray,
    SharedPair,
    get_value,
    load_data_shared,
    load_expanded_training_data,
    size,
)
from .network3_files import read_network3_file, write_network3_file
from .training import EpochResult, sgd
from .validation import check_dtype, check_eta, check_int, check_lmbda, max_parameters

__all__ = [
    "PRESETS",
    "ConvPoolLayer",
    "FullyConnectedLayer",
    "Network",
    "Network3EpochResult",
    "NetworkSpec",
    "ReLU",
    "SharedArray",
    "SharedPair",
    "SoftmaxLayer",
    "get_value",
    "linear",
    "load",
    "load_data_shared",
    "load_expanded_training_data",
    "preset_network",
    "sigmoid",
    "size",
    "tanh",
]

#: Most floats one evaluation chunk may hold across its layers' temporaries (2**24: 64 MB in float32).
EVAL_FLOATS = 2**24
#: Model files written now.


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


class Network:
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
        :mod:`portable_nn.initializers`.
    """

    def __init__(
        self,
        layers: Sequence[Layer],
        mini_batch_size: int,
        *,
        xp: Any = "numpy",
        dtype: str = "float32",
        seed: int | None = None,
        device: Any = None,
    ) -> None:
        self._setup(layers, mini_batch_size, xp, dtype, seed, device)
        for layer in self.layers:
            w, b = layer.init_parameters(self._rng)
            layer.w, layer.b = w, b

    def _setup(
        self, layers: Sequence[Layer], mini_batch_size: int, xp: Any, dtype: Any, seed: Any, device: Any
    ) -> None:
        layers = list(layers)
        check_stack(layers)
        for i, layer in enumerate(layers):
            if layer._owner is not None:
                raise ValueError(f"layers[{i}] already belongs to a network: build a new layer object for this one")
            if sum(1 for other in layers if other is layer) > 1:
                raise ValueError(f"layers[{i}] appears twice in layers")
        count = sum(math.prod(layer.w_shape) + math.prod(layer.b_shape) for layer in layers)
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
            layer._owner = self
        self.n_in = layers[0].n_in
        self.n_out = layers[-1].n_out
        self._compiled: dict[tuple[Any, ...], tuple[Callable[..., State], Any]] = {}
        self._decay_batches = 1
        self._dropout = any(layer.p_dropout > 0.0 for layer in layers)
        self._train_dropout = False
        self._eval = compile_function(self.backend, lambda w, b, x: forward_eval(self.xp, self.layers, w, b, x))
        self.output_saturation = 0.0

    def __repr__(self) -> str:
        return f"Network({self.layers!r}, {self.mini_batch_size}, xp={self.backend.name!r}, dtype={self.dtype!r})"

    @property
    def params(self) -> list[Any]:
        """``[w0, b0, w1, b1, ...]`` as the book's ``params`` (read-only list; assign via the layers)."""
        return [p for layer in self.layers for p in (layer.w, layer.b)]

    # -- conversions -------------------------------------------------------------------------
    def _on_device(self, array: Any, name: str) -> Any:
        """``array`` (any backend or NumPy) as this network's dtype on its device; must be finite real numbers."""
        return dataforms.as_network_array(array, name, self.backend, self.dtype, finite=True)

    def _device_data(self, data: Any, name: str, *, training: bool) -> dataforms.DeviceData:
        return dataforms.to_device(data, name, self.n_in, self.n_out, self.backend, self.dtype, training=training)

    # -- what training.sgd needs ---------------------------------------------------------------
    def _get_state(self, momentum: bool) -> State:
        return State(tuple(layer.w for layer in self.layers), tuple(layer.b for layer in self.layers))

    def _set_state(self, state: State) -> None:
        for layer, w, b in zip(self.layers, state.weights, state.biases):
            layer._w, layer._b = w, b

    def _compiled_step(
        self, *, lmbda: float, n: int, mu: float, regularization: str, divisor: float | None
    ) -> tuple[Callable[..., State], Any]:
        decay = lmbda / self._decay_batches
        key = (decay, divisor, self._train_dropout)
        if key not in self._compiled:
            step = make_step(
                self.xp,
                self.layers,
                decay=decay,
                divisor=divisor,
                dtype=self.backend.dtype(self.dtype),
                device=self.backend.device,
                dropout=self._train_dropout,
            )
            self._compiled[key] = (compile_function(self.backend, step), epoch_function(self.backend, step))
        return self._compiled[key]

    def _ones(self, m: int) -> Any:
        return None  # the step has no use for the epoch loop's ones column

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

    # -- evaluation ----------------------------------------------------------------------------------
    def _chunk(self) -> int:
        per_sample = 0
        for layer in self.layers:
            if isinstance(layer, ConvPoolLayer):
                f, c, kh, kw = layer.filter_shape
                oh, ow = layer.conv_shape
                per_sample += (c * kh * kw + 2 * f) * oh * ow
            per_sample += layer.n_in + 2 * layer.n_out
        return max(1, min(10_000, EVAL_FLOATS // per_sample))

    def _input_chunks(self, data: dataforms.DeviceData) -> Any:
        xp = self.xp
        chunk = self._chunk()
        for k in range(0, data.n, chunk):
            stop = min(k + chunk, data.n)
            x = data.inputs[k:stop, :]
            if data.divisor is not None:
                x = xp.astype(x, self.backend.dtype(self.dtype)) / data.divisor
            yield x, data.targets[k:stop, ...]

    def _params(self) -> tuple[tuple[Any, ...], tuple[Any, ...]]:
        return tuple(layer.w for layer in self.layers), tuple(layer.b for layer in self.layers)

    def _count_correct(self, data: dataforms.DeviceData) -> int:
        """Samples whose most probable digit is the label (one host copy).

        Also records in ``output_saturation`` the fraction of softmax outputs
        at 1 (within ``eps``) or below the smallest normal number (a logit gap
        over ~87 in float32): only a diverged network has nearly all there.
        """
        xp = self.xp
        weights, biases = self._params()
        info = xp.finfo(self.backend.dtype(self.dtype))
        counts = xp.zeros((2,), dtype=self.backend.index_dtype, device=self.backend.device)
        for x, labels in self._input_chunks(data):
            if labels.ndim == 2:
                labels = xp.argmax(labels, axis=1)
            a = self._eval(weights, biases, x)
            saturated = xp.count_nonzero(xp.logical_or(a < info.smallest_normal, a >= 1.0 - info.eps))
            counts = counts + xp.stack([xp.count_nonzero(xp.argmax(a, axis=1) == labels), saturated])
        correct, saturated = (int(c) for c in _host_view(counts))
        self.output_saturation = saturated / max(1, data.n * self.n_out)
        return correct

    def feedforward(self, inputs: Any) -> Any:
        """Output activations ``(n, n_out)`` (softmax probabilities) for stacked inputs ``(n, n_in)``.

        Any ``n``; evaluated in chunks (dropout scaled by ``1 − p``); the
        result is an array of the network's backend, dtype and device.
        """
        shape = tuple(getattr(inputs, "shape", ()))
        if len(shape) != 2 or shape[1] != self.n_in:
            raise ValueError(f"inputs must have shape (n, {self.n_in}) (one sample per row); got {shape}")
        x = self._on_device(inputs, "inputs")
        weights, biases = self._params()
        chunk = self._chunk()
        parts = [self._eval(weights, biases, x[k : min(k + chunk, shape[0]), :]) for k in range(0, shape[0], chunk)]
        if not parts:
            return self.xp.zeros((0, self.n_out), dtype=self.backend.dtype(self.dtype), device=self.backend.device)
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
        parts = [
            to_numpy(xp.argmax(self._eval(weights, biases, x), axis=1)).astype(np.int64)
            for x, _ in self._input_chunks(self._device_data(data, "data", training=False))
        ]
        return np.concatenate(parts)

    def cost(self, data: Any, lmbda: float = 0.0, mini_batch_size: int | None = None) -> float:
        """The book's cost on ``data`` without dropout: ``mean(−ln a_y) + 0.5·lmbda·Σ‖w‖²/num_batches``.

        ``num_batches = len(data) // mini_batch_size`` (the network's by default).
        """
        lmbda = check_lmbda(lmbda)
        m = self.mini_batch_size if mini_batch_size is None else check_int(mini_batch_size, "mini_batch_size", 1)
        device = self._device_data(data, "data", training=False)
        xp = self.xp
        weights, biases = self._params()
        total: Any = 0.0
        for x, labels in self._input_chunks(device):
            total = total + log_likelihood(xp, self.layers, weights, biases, x, labels)
        total = total / device.n
        if lmbda:
            total = total + 0.5 * lmbda / max(1, device.n // m) * sum(xp.sum(w * w) for w in weights)
        return float(to_numpy(total))

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
        include the earlier epochs).  See :mod:`portable_nn.checkpoint`.
        """
        epochs = check_int(epochs, "epochs", 0)
        mini_batch_size = check_int(mini_batch_size, "mini_batch_size", 1)
        eta = check_eta(eta)
        lmbda = check_lmbda(lmbda)
        train = self._device_data(training_data, "training_data", training=True)
        validation = (
            None if validation_data is None else self._device_data(validation_data, "validation_data", training=False)
        )
        test = None if test_data is None else self._device_data(test_data, "test_data", training=False)
        self._decay_batches = max(1, train.n // mini_batch_size)
        self._train_dropout = self._dropout
        say = (lambda *_: None) if quiet else print
        batches_per_epoch = -(-train.n // mini_batch_size)
        counter = {"iteration": 0}
        best: dict[str, Any] = {"validation": -1, "iteration": None, "test": None}
        saved = open_checkpoint(
            checkpoint,
            resume,
            network_settings(
                self, epochs=epochs, mini_batch_size=mini_batch_size, eta=eta, lmbda=lmbda,
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
            lmbda=lmbda,
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
        write_network3_file(path, self.layers, self.mini_batch_size, self.dtype)
        return path


def load(
    path: str | os.PathLike[str],
    xp: Any = "numpy",
    *,
    dtype: str | None = None,
    device: Any = None,
    seed: int | None = None,
) -> Network:
    """A network saved by :meth:`Network.save`, onto any backend (``dtype`` defaults to the file's).

    Sizes are checked before anything is allocated (file size, every npz
    member's header against the layer specification in ``meta``), then
    dtypes and finiteness; no random weights are drawn.  Raises
    :class:`portable_nn.ModelFileError` naming the file for anything malformed.
    """
    meta, layers, arrays = read_network3_file(path)
    net = Network.__new__(Network)
    net._setup(layers, meta["mini_batch_size"], xp, dtype or meta["dtype"], seed, device)
    for i, layer in enumerate(layers):
        layer.w, layer.b = arrays[f"layer{i}_w"], arrays[f"layer{i}_b"]
    return net


# -- the chapter's networks by name -------------------------------------------------------------------------
@dataclass(frozen=True)
class NetworkSpec:
    """One of the book's chapter-6 networks: layers and the ``SGD`` settings the book used.

    ``layers`` is a function of nothing returning fresh layer objects (a
    network owns its layers).  ``expanded``: trained on the 250,000-image
    expanded set.  ``book``: the test accuracy the book reports, in percent.
    """

    name: str
    description: str
    make_layers: Callable[[], list[Layer]] = field(repr=False)
    eta: float
    lmbda: float
    epochs: int
    expanded: bool
    book: float

    def layers(self) -> list[Layer]:
        """Fresh layer objects for a new network."""
        return self.make_layers()

    def build(
        self,
        mini_batch_size: int,
        *,
        xp: Any = "numpy",
        dtype: str = "float32",
        seed: int | None = None,
        device: Any = None,
    ) -> Network:
        """The network, with the book's initial weights drawn from ``seed``."""
        return Network(self.layers(), mini_batch_size, xp=xp, dtype=dtype, seed=seed, device=device)


def _conv(m: int, act: Any, two: bool) -> list[Layer]:
    layers: list[Layer] = [ConvPoolLayer((20, 1, 5, 5), (m, 1, 28, 28), (2, 2), act)]
    if two:
        layers.append(ConvPoolLayer((40, 20, 5, 5), (m, 20, 12, 12), (2, 2), act))
    return layers


def _preset(
    name: str,
    description: str,
    eta: float,
    lmbda: float,
    epochs: int,
    expanded: bool,
    book: float,
    layers: Callable[[int], list[Layer]],
) -> Callable[[int], NetworkSpec]:
    def spec(mini_batch_size: int) -> NetworkSpec:
        m = check_int(mini_batch_size, "mini_batch_size", 1)
        return NetworkSpec(name, description, lambda: layers(m), eta, lmbda, epochs, expanded, book)

    spec.__name__ = name.replace("-", "_")
    spec.__doc__ = description
    return spec


#: The book's chapter-6 networks: ``PRESETS[name](mini_batch_size) -> NetworkSpec``.
PRESETS: dict[str, Callable[[int], NetworkSpec]] = {
    "ch6-fc": _preset(
        "ch6-fc",
        "fully connected [784, 100, 10], sigmoid, softmax output",
        0.1,
        0.0,
        60,
        False,
        97.80,
        lambda m: [FullyConnectedLayer(784, 100), SoftmaxLayer(100, 10)],
    ),
    "ch6-conv1": _preset(
        "ch6-conv1",
        "conv-pool (20 5x5, 2x2) + FC 100 + softmax, sigmoid",
        0.1,
        0.0,
        60,
        False,
        98.78,
        lambda m: [*_conv(m, sigmoid, False), FullyConnectedLayer(20 * 12 * 12, 100), SoftmaxLayer(100, 10)],
    ),
    "ch6-conv2": _preset(
        "ch6-conv2",
        "two conv-pool (20, 40 filters) + FC 100 + softmax, sigmoid",
        0.1,
        0.0,
        60,
        False,
        99.06,
        lambda m: [*_conv(m, sigmoid, True), FullyConnectedLayer(40 * 4 * 4, 100), SoftmaxLayer(100, 10)],
    ),
    "ch6-relu": _preset(
        "ch6-relu",
        "ch6-conv2 with ReLU, eta 0.03, lambda 0.1",
        0.03,
        0.1,
        60,
        False,
        99.23,
        lambda m: [*_conv(m, ReLU, True), FullyConnectedLayer(40 * 4 * 4, 100, ReLU), SoftmaxLayer(100, 10)],
    ),
    "ch6-expanded": _preset(
        "ch6-expanded",
        "ch6-relu on the expanded training data (250,000 images)",
        0.03,
        0.1,
        60,
        True,
        99.37,
        lambda m: [*_conv(m, ReLU, True), FullyConnectedLayer(40 * 4 * 4, 100, ReLU), SoftmaxLayer(100, 10)],
    ),
    "ch6-fc2": _preset(
        "ch6-fc2",
        "ch6-expanded with an extra FC 100 layer",
        0.03,
        0.1,
        60,
        True,
        99.43,
        lambda m: [
            *_conv(m, ReLU, True),
            FullyConnectedLayer(40 * 4 * 4, 100, ReLU),
            FullyConnectedLayer(100, 100, ReLU),
            SoftmaxLayer(100, 10),
        ],
    ),
    "ch6-dropout": _preset(
        "ch6-dropout",
        "two FC 1000 layers with dropout p=0.5, expanded data, 40 epochs",
        0.03,
        0.1,
        40,
        True,
        99.60,
        lambda m: [
            *_conv(m, ReLU, True),
            FullyConnectedLayer(40 * 4 * 4, 1000, ReLU, p_dropout=0.5),
            FullyConnectedLayer(1000, 1000, ReLU, p_dropout=0.5),
            SoftmaxLayer(1000, 10, p_dropout=0.5),
        ],
    ),
}


def preset_network(
    name: str,
    mini_batch_size: int,
    *,
    xp: Any = "numpy",
    dtype: str = "float32",
    seed: int | None = None,
    device: Any = None,
) -> Network:
    """The book's chapter-6 network called ``name`` (a key of :data:`PRESETS`); its SGD settings are
    ``PRESETS[name](mini_batch_size)``'s ``eta``, ``lmbda``, ``epochs`` and ``expanded``."""
    if name not in PRESETS:
        raise ValueError(f"unknown preset {name!r}; known: {', '.join(PRESETS)}")
    return PRESETS[name](mini_batch_size).build(mini_batch_size, xp=xp, dtype=dtype, seed=seed, device=device)
