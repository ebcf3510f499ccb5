"""What every fully connected network of the book shares: parameters, data, evaluation, training.

:class:`DenseNetwork` holds the parameters as the book does (``weights[l]``
``(sizes[l+1], sizes[l])``, ``biases[l]`` ``(sizes[l+1], 1)``, plain lists of
backend arrays you can read and replace: every assignment is checked and
converted, as network3's ``w``/``b`` are), moves data to the device once
(:mod:`portable_nn._data.forms`), evaluates in chunks with one host copy per
result (:mod:`portable_nn._train.evaluation`), and trains through
:func:`portable_nn._train.loop.sgd` with the step of :mod:`portable_nn._math.chain`
(its :class:`~portable_nn._math.dense.DenseSpec` as a chain of ``Dense`` layers).
The book's facades, :class:`portable_nn.network.Network` and
:class:`portable_nn.network2.Network`, add only their names, defaults, printed
lines and file formats.
"""

from __future__ import annotations

import operator
import os
from collections.abc import Callable, Iterable, Sequence
from functools import partial
from pathlib import Path
from typing import Any, NoReturn, TypeVar

from .._backend.backends import Backend, resolve_backend, to_numpy
from .._backend.compiled import compile_function, epoch_function
from .._base.types import Array, BackendSpec, Device
from .._base.validation import check_dtype, check_layer_arrays, check_sizes
from .._data import forms as dataforms
from .._math import initializers
from .._math.chain import Backprop, make_step
from .._math.dense import DenseSpec
from .._math.updates import UpdateRule
from .._train.evaluation import Evaluator
from .._train.protocol import Epoch, Step
from .base import TrainableNetwork

_Net = TypeVar("_Net", bound="DenseNetwork")


class Parameters(list[Any]):
    """``weights`` or ``biases``: a list of one array per layer whose every assignment is checked.

    ``params[l] = array`` (and slice assignment) passes ``array`` through the
    network's check (shape, real dtype, finite values) and converts it to the
    network's backend, device and dtype (a torch tensor is detached from
    autograd), so a foreign array never stays in the list.  The length is
    the number of layers: ``append``, ``del`` and the like are refused.  A
    copy or pickle is a plain ``list``.
    """

    __slots__ = ("_check", "_name")

    def __init__(
        self, arrays: Iterable[Any] = (), check: Callable[[int, Any], Any] | None = None, name: str = ""
    ) -> None:
        super().__init__(arrays)  # trusted: the network's own arrays (built or stepped by it)
        self._check = check
        self._name = name

    def __setitem__(self, index: Any, value: Any) -> None:
        check = self._check
        if isinstance(index, slice):
            positions = range(*index.indices(len(self)))
            values = list(value)
            if len(values) != len(positions):
                raise ValueError(
                    f"{self._name}[{index.start}:{index.stop}] = ...: {self._name} holds one array per layer; "
                    f"assign {len(positions)} arrays, got {len(values)}"
                )
            converted = values if check is None else [check(i, v) for i, v in zip(positions, values)]
            super().__setitem__(index, converted)
            return
        i = operator.index(index)
        if not -len(self) <= i < len(self):
            raise IndexError(f"{self._name} index {i} out of range for {len(self)} layers")
        i %= len(self)
        super().__setitem__(i, value if check is None else check(i, value))

    def _fixed(self, *args: Any, **kwargs: Any) -> NoReturn:
        raise TypeError(
            f"{self._name} holds one array per layer: its length and order are fixed "
            "(assign elements, or build a new network for other sizes)"
        )

    append = extend = insert = pop = remove = clear = sort = reverse = __delitem__ = _fixed  # pyright: ignore[reportAssignmentType]
    __iadd__ = __imul__ = _fixed

    def __reduce__(self) -> tuple[Any, ...]:
        return (list, (list(self),))


class DenseNetwork(TrainableNetwork):
    """Base class of the book's fully connected networks (see the facades for the public API).

    Attributes
    ----------
    sizes:
        Neurons per layer, e.g. ``[784, 30, 10]``.
    weights, biases:
        Lists of ``(sizes[l+1], sizes[l])`` and ``(sizes[l+1], 1)`` backend
        arrays of ``dtype``.
    backend:
        The :class:`portable_nn.Backend` (namespace ``xp`` and ``device``).
    dtype:
        ``"float64"`` or ``"float32"``.
    spec:
        The :class:`portable_nn._math.dense.DenseSpec`: activations and cost.
    """

    sizes: list[int]
    _weights: Parameters
    _biases: Parameters

    # -- construction --------------------------------------------------------
    def _setup(self, sizes: Any, xp: Any, dtype: Any, seed: Any, device: Any, spec: DenseSpec) -> None:
        self.sizes = check_sizes(sizes)
        self.num_layers = len(self.sizes)
        self.dtype = check_dtype(dtype)
        self._rng = initializers.make_rng(seed)
        self.backend: Backend = resolve_backend(xp, device, self.dtype)
        self.xp = self.backend.xp
        self.spec = spec
        #: The layers as math: a chain of ``Dense`` columns (:mod:`portable_nn._math.chain`).
        self.chain = spec.chain(self.sizes)
        self._evaluator = Evaluator.build(self.chain, self.backend, self.float_dtype)
        self._backprop: Backprop | None = None
        self._ones_cache = {}
        self._compiled: dict[tuple[UpdateRule, float | None], tuple[Step, Epoch]] = {}
        self._velocities = None
        #: Fraction of output activations within machine epsilon of 0 or 1 at the last evaluation.
        self.output_saturation = 0.0

    def _set_host_parameters(self, biases: Sequence[Any], weights: Sequence[Any]) -> None:
        """Move host (NumPy) parameter arrays to the backend in the network's dtype."""
        self._set_parameters([self._from_host(w) for w in weights], [self._from_host(b) for b in biases])

    # -- parameters: the book's plain lists, every assignment checked ------------------------
    def _set_parameters(self, weights: Iterable[Any], biases: Iterable[Any]) -> None:
        """Store the network's own arrays (no checks: the step's output, or arrays it just converted)."""
        self._weights = self._wrap("weights", weights)
        self._biases = self._wrap("biases", biases)

    def _wrap(self, kind: str, arrays: Iterable[Any]) -> Parameters:
        return Parameters(arrays, partial(self._parameter, kind), kind)

    def _parameter(self, kind: str, layer: int, value: Any) -> Any:
        """``value`` for ``weights[layer]``/``biases[layer]``: checked, on this network's backend, device and dtype."""
        name = f"{kind}[{layer}]"
        rows, columns = self.sizes[layer + 1], self.sizes[layer]
        shape = (rows, columns) if kind == "weights" else (rows, 1)
        got = tuple(getattr(value, "shape", ()))
        if dataforms.is_array(value) and got != shape:
            raise ValueError(f"{name} must have shape {shape}; got {got}")
        return dataforms.as_network_array(value, name, self.backend, self.dtype, finite=True)

    def _checked_list(self, kind: str, values: Any) -> list[Any]:
        layers = self.num_layers - 1
        if isinstance(values, (str, bytes)) or not isinstance(values, Iterable) or dataforms.is_array(values):
            raise TypeError(f"{kind} must be a list of {layers} arrays (one per layer); got {type(values).__name__}")
        values = list(values)
        if len(values) != layers:
            raise ValueError(f"{kind} must be a list of {layers} arrays (one per layer); got {len(values)}")
        return [self._parameter(kind, i, v) for i, v in enumerate(values)]

    @property
    def weights(self) -> Parameters:
        """``weights[l]``: ``(sizes[l+1], sizes[l])`` arrays of the network's backend and dtype.

        Assign the whole list or one element: each array is checked (shape,
        real dtype, finite) and converted to the network's backend, device and
        dtype.
        """
        if not isinstance(self._weights, Parameters):  # a copied or unpickled network holds a plain list
            self._weights = self._wrap("weights", self._weights)
        return self._weights

    @weights.setter
    def weights(self, values: Any) -> None:
        self._weights = self._wrap("weights", self._checked_list("weights", values))

    @property
    def biases(self) -> Parameters:
        """``biases[l]``: ``(sizes[l+1], 1)`` arrays of the network's backend and dtype (assigned as ``weights``)."""
        if not isinstance(self._biases, Parameters):
            self._biases = self._wrap("biases", self._biases)
        return self._biases

    @biases.setter
    def biases(self, values: Any) -> None:
        self._biases = self._wrap("biases", self._checked_list("biases", values))

    @classmethod
    def from_arrays(
        cls: type[_Net],
        weights: Sequence[Any],
        biases: Sequence[Any],
        xp: BackendSpec = "numpy",
        *,
        dtype: str | None = None,
        seed: int | initializers.RandomSource | None = None,
        device: Device = None,
        **options: Any,
    ) -> _Net:
        """A network holding the given parameters (no random weights are drawn).

        ``weights[l]`` must be ``(sizes[l+1], sizes[l])`` and ``biases[l]``
        ``(sizes[l+1], 1)`` real, finite arrays of any backend; ``sizes`` is
        read from their shapes.  ``dtype`` defaults to the arrays' own
        (float32 stays float32, anything else becomes float64).  ``options``
        are the facade's own keyword arguments (``cost=`` for network2).
        """
        host_w = [dataforms.host_array(w) for w in weights]
        host_b = [dataforms.host_array(b) for b in biases]
        sizes = check_layer_arrays(host_w, host_b)
        if dtype is None:
            dtype = "float32" if str(host_w[0].dtype) == "float32" else "float64"
        net = cls.__new__(cls)
        net._setup(sizes, xp, dtype, seed, device, cls._spec(**options))
        net._configure(**options)
        net._set_host_parameters(host_b, host_w)
        return net

    @classmethod
    def _spec(cls, **options: Any) -> DenseSpec:
        """The :class:`DenseSpec` for the facade's options."""
        return DenseSpec()

    def _configure(self, **options: Any) -> None:
        """Store facade-specific options (after :meth:`_setup`)."""

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.sizes}, xp={self.backend.name!r}, dtype={self.dtype!r})"

    # -- conversions -----------------------------------------------------------
    def _from_host(self, array: Any) -> Any:
        return self.backend.asarray(to_numpy(array).astype(self.dtype), dtype=self.backend.dtype(self.dtype))

    def _on_backend(self, array: Any, name: str, rows: int) -> Any:
        """``array`` (any backend, any real dtype) as a 2-D ``(rows, m)`` array of the network's dtype and device."""
        shape = tuple(getattr(array, "shape", ()))
        if len(shape) != 2 or shape[0] != rows:
            raise ValueError(f"{name} must have shape ({rows}, m) (one sample per column); got {shape}")
        return dataforms.as_network_array(array, name, self.backend, self.dtype)

    def _device_data(self, data: Any, name: str, *, training: bool) -> dataforms.DeviceData:
        return dataforms.to_device(
            data, name, self.sizes[0], self.sizes[-1], self.backend, self.dtype, training=training
        )

    # -- the math, from _math/chain.py ------------------------------------------
    def feedforward(self, a: Any) -> Any:
        """Output activations ``(sizes[-1], m)`` for inputs ``a`` of shape ``(sizes[0], m)``."""
        a = self._on_backend(a, "a", self.sizes[0])
        return self.chain.forward(self.xp, self.weights, self.biases, a)[0]

    def backprop(self, x: Any, y: Any) -> tuple[list[Any], list[Any]]:
        """Gradient of the cost (without regularisation) summed over a mini-batch.

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
        if self._backprop is None:
            self._backprop = self.chain.backprop(self.xp, self.spec.cost)
        nabla_w, nabla_b = self._backprop(self.weights, self.biases, x, y, None, self.ones_column(x.shape[1]), None)
        return nabla_b, nabla_w

    # -- the training protocol (portable_nn._train.protocol; the rest in TrainableNetwork) ----
    def _params(self) -> tuple[tuple[Array, ...], tuple[Array, ...]]:
        return tuple(self.weights), tuple(self.biases)

    def _hold(self, weights: tuple[Array, ...], biases: tuple[Array, ...]) -> None:
        self._weights = self._wrap("weights", weights)
        self._biases = self._wrap("biases", biases)

    def update_rule(self, lmbda: float, n: int, mu: float = 0.0, regularization: str = "l2") -> UpdateRule:
        """Chapter 3's rule: the decay of ``lmbda`` over ``n`` training samples is ``lmbda/n``."""
        return UpdateRule(lmbda / n, mu, regularization)

    def training_step(self, rule: UpdateRule, divisor: float | None) -> tuple[Step, Epoch]:
        """The step (and compiled epoch, on JAX) for these settings, built once per network."""
        key = (rule, divisor)
        if key not in self._compiled:
            step = make_step(self.xp, self.chain, self.spec.cost, rule, divisor=divisor, dtype=self.float_dtype)
            self._compiled[key] = (compile_function(self.backend, step), epoch_function(self.backend, step))
        return self._compiled[key]

    def _apply_step(
        self, data: dataforms.DeviceData, eta: float, *, lmbda: float = 0.0, n: int = 1, regularization: str = "l2"
    ) -> None:
        """One SGD step on all of ``data`` (the book's ``update_mini_batch``)."""
        step, _ = self.training_step(self.update_rule(lmbda, n, 0.0, regularization), data.divisor)
        idx = self.xp.arange(data.n, dtype=self.backend.index_dtype, device=self.backend.device)
        self.set_training_state(
            step(self.training_state(False), data.inputs, data.targets, idx, self.ones_column(data.n), eta)
        )

    # -- evaluation (portable_nn._train.evaluation) -------------------------------------
    def _total_cost(self, data: dataforms.DeviceData, lmbda: float, regularization: str) -> float:
        """Mean cost over ``data`` plus the regularisation term (the book's ``total_cost``; one host copy)."""
        decay = self.update_rule(lmbda, data.n, 0.0, regularization).decay
        return self._evaluator.total_cost(*self._params(), data, self.spec.cost, decay, regularization)

    # -- files ------------------------------------------------------------------------
    def save(self, path: str | os.PathLike[str]) -> Path:
        """Save to ``.npz`` or ``.json`` (atomic write); loads onto any backend with :func:`portable_nn.load`."""
        from .._io.serialization import save

        return save(self, path)
