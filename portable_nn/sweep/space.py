"""The search space: the options a trial takes, their defaults, and ``--param`` specifications.

``parse_space(["eta=0.1,0.5", "lmbda=0..10"])`` gives one :class:`ParamSpec`
per swept option; :func:`grid_points` expands lists of values into settings;
:func:`trial_config` turns one setting into the full configuration of a
training, whose :func:`config_key` is the trial's identity (what a restart
compares).  Imports neither Dask nor Optuna (only :meth:`ParamSpec.distribution`
imports Optuna, when a sweep runs).
"""

from __future__ import annotations

import itertools
import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from .._base.runconfig import ACTIVATIONS, CHAPTER3, INITS, RENAMED_VALUES, canonical_value

__all__ = [
    "ALIASES",
    "CHOICES",
    "DEFAULTS",
    "METRICS",
    "PARAMETERS",
    "SEARCHES",
    "ParamSpec",
    "SweepSpecError",
    "check_options",
    "config_key",
    "grid_points",
    "hidden_sizes",
    "parse_param",
    "parse_space",
    "trial_config",
    "valid_value",
]

SEARCHES = ("grid", "random", "tpe")
METRICS = ("validation-accuracy", "best-validation-accuracy")

#: Every option a trial takes, with chapter 3's values (:data:`portable_nn._base.runconfig.CHAPTER3`) used when it is
#: not in the space; the names ``train`` uses (``momentum``, ``batch-size``, ``sizes``) are aliases.
DEFAULTS: dict[str, Any] = {
    "model": "network2",
    "hidden": CHAPTER3["sizes"][1],
    "cost": CHAPTER3["cost"],
    "init": CHAPTER3["init"],
    "activation": CHAPTER3["activation"],
    "eta": CHAPTER3["eta"],
    "lmbda": CHAPTER3["lmbda"],
    "mu": CHAPTER3["momentum"],
    "batch": CHAPTER3["batch_size"],
    "epochs": CHAPTER3["epochs"],
    "backend": CHAPTER3["backend"],
    "dtype": CHAPTER3["dtype"],
}
#: Names accepted in ``--param NAME=...`` (aliases map to :data:`DEFAULTS` keys).
ALIASES = {
    "lambda": "lmbda",
    "momentum": "mu",
    "mini_batch_size": "batch",
    "mini-batch-size": "batch",
    "batch-size": "batch",
    "batch_size": "batch",
    "hidden_sizes": "hidden",
    "sizes": "hidden",
}
#: The values of each categorical option.
CHOICES: dict[str, tuple[str, ...]] = {
    "model": ("network", "network2"),
    "cost": ("cross-entropy", "quadratic", "log-likelihood"),
    "init": INITS,
    "activation": ACTIVATIONS,
    "backend": ("numpy", "cupy", "torch", "array_api_strict", "jax"),
    "dtype": ("float64", "float32"),
}
_FLOATS = {"eta": (0.0, False), "lmbda": (0.0, True), "mu": (0.0, True)}  # name: (lower bound, inclusive)
_INTS = {"batch": 1, "epochs": 1}
PARAMETERS = tuple(DEFAULTS)
#: Largest seed (NumPy's generators take seeds in [0, 2**32)).
MAX_SEED = 2**32 - 1


class SweepSpecError(ValueError):
    """A search specification that cannot run; the message is one line naming the problem."""


@dataclass(frozen=True)
class ParamSpec:
    """One dimension of the search space.

    ``choices`` for a list of values (every search), or ``low``/``high``
    (and ``log``) for a range (random and TPE only; ints for ``batch``,
    ``epochs`` and a one-layer ``hidden``).
    """

    name: str
    choices: tuple[Any, ...] | None = None
    low: float | None = None
    high: float | None = None
    log: bool = False
    integer: bool = False

    @property
    def is_range(self) -> bool:
        """Whether this is a ``low..high`` range rather than a list of values."""
        return self.choices is None

    def distribution(self) -> Any:
        """The Optuna distribution of this dimension."""
        import optuna

        if self.choices is not None:
            return optuna.distributions.CategoricalDistribution(list(self.choices))
        assert self.low is not None and self.high is not None
        if self.integer:
            return optuna.distributions.IntDistribution(int(self.low), int(self.high), log=self.log)
        return optuna.distributions.FloatDistribution(self.low, self.high, log=self.log)

    def contains(self, value: Any) -> bool:
        """Whether ``value`` (from a results file) lies in this dimension."""
        if self.choices is not None:
            return any(type(value) is type(c) and value == c for c in self.choices)
        assert self.low is not None and self.high is not None
        number = isinstance(value, (int, float)) and not isinstance(value, bool)
        return number and (isinstance(value, int) or not self.integer) and self.low <= value <= self.high

    def values(self) -> tuple[Any, ...]:
        """The listed values, or a range's two ends (what :mod:`.checks` tries before the first trial)."""
        if self.choices is not None:
            return self.choices
        assert self.low is not None and self.high is not None
        ends = (int(self.low), int(self.high)) if self.integer else (self.low, self.high)
        return ends

    def describe(self) -> str:
        """The dimension as it would be written on the command line."""
        if self.choices is not None:
            return f"{self.name}=" + ",".join(str(c) for c in self.choices)
        kind = ":log" if self.log else ""
        return f"{self.name}={self.low:g}..{self.high:g}{kind}"


def _canonical_name(name: str) -> str:
    key = name.strip().lower()
    key = ALIASES.get(key, key)
    if key not in DEFAULTS:
        raise SweepSpecError(f"unknown parameter {name!r}; choose from {', '.join(PARAMETERS)}")
    return key


def _hidden(text: str) -> int | str:
    try:
        layers = [int(part) for part in text.lower().split("x")]
    except ValueError:
        raise SweepSpecError(f"hidden={text!r}: expected a layer width like 30, or widths like 100x30") from None
    if min(layers) < 1:
        raise SweepSpecError(f"hidden={text!r}: layer widths must be positive")
    return layers[0] if len(layers) == 1 else "x".join(str(n) for n in layers)


def _integer(name: str, text: str) -> int:
    try:
        number = int(text)
    except ValueError:
        raise SweepSpecError(f"{name}={text!r}: expected an integer") from None
    if number < _INTS[name]:
        raise SweepSpecError(f"{name}={text!r}: must be at least {_INTS[name]}")
    return number


def _real(name: str, text: str) -> float:
    lower, inclusive = _FLOATS[name]
    try:
        real = float(text)
    except ValueError:
        raise SweepSpecError(f"{name}={text!r}: expected a number") from None
    if not math.isfinite(real) or real < lower or (real == lower and not inclusive):
        bound = ">=" if inclusive else ">"
        raise SweepSpecError(f"{name}={text!r}: expected a finite number {bound} {lower:g}")
    if name == "mu" and real >= 1.0:
        raise SweepSpecError(f"mu={text!r}: momentum must be below 1")
    return real


def _value(name: str, text: str) -> Any:
    """One value of parameter ``name`` from its text, checked."""
    text = text.strip()
    if name in CHOICES:
        text = canonical_value(name, text)
        if text not in CHOICES[name]:
            raise SweepSpecError(f"{name}={text!r}: choose from {', '.join(CHOICES[name])}")
        return text
    if name == "hidden":
        return _hidden(text)
    if name in _INTS:
        return _integer(name, text)
    return _real(name, text)


def valid_value(name: str, value: Any) -> bool:
    """Whether ``value`` (from a file) is a value option ``name`` can take, of the type a sweep writes."""
    if name not in DEFAULTS:
        return False
    if name in CHOICES:
        # an old spelling is read from files written before the rename (``init="default"``)
        return isinstance(value, str) and (value in CHOICES[name] or value in RENAMED_VALUES.get(name, {}))
    if name == "hidden":
        if isinstance(value, bool) or not isinstance(value, (int, str)):
            return False
        try:
            return _hidden(str(value)) == value
        except SweepSpecError:
            return False
    if name in _INTS:
        return isinstance(value, int) and not isinstance(value, bool) and value >= _INTS[name]
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return False
    try:
        _real(name, repr(float(value)))
    except (SweepSpecError, OverflowError):
        return False
    return True


def parse_param(text: str) -> ParamSpec:
    """One ``NAME=v1,v2,...`` or ``NAME=LOW..HIGH[:log]`` specification.

    Raises :class:`SweepSpecError` with a one-line message for anything
    malformed: no ``=``, an unknown name, an empty or repeated value, a
    value of the wrong type or out of range, a range over a categorical
    option or with ``LOW >= HIGH``.
    """
    if "=" not in text:
        raise SweepSpecError(f"--param {text!r}: expected NAME=v1,v2,... or NAME=LOW..HIGH[:log]")
    raw_name, _, rest = text.partition("=")
    name = _canonical_name(raw_name)
    rest = rest.strip()
    if not rest:
        raise SweepSpecError(f"--param {text!r}: no values after '='")
    if ".." in rest:
        return _parse_range(text, name, rest)
    parts = rest.split(",")
    if any(not p.strip() for p in parts):
        raise SweepSpecError(f"--param {text!r}: empty value in the list")
    values = tuple(_value(name, p) for p in parts)
    if len(set(values)) != len(values):
        raise SweepSpecError(f"--param {text!r}: a value is repeated")
    return ParamSpec(name, choices=values)


def _parse_range(text: str, name: str, rest: str) -> ParamSpec:
    body, _, kind = rest.partition(":")
    if kind not in ("", "log"):
        raise SweepSpecError(f"--param {text!r}: a range is LOW..HIGH or LOW..HIGH:log")
    if name in CHOICES or (name == "hidden" and "x" in body.lower()):
        raise SweepSpecError(f"--param {text!r}: {name} takes a list of values, not a range")
    low_text, _, high_text = body.partition("..")
    low, high = _value(name, low_text), _value(name, high_text)
    if not low < high:
        raise SweepSpecError(f"--param {text!r}: LOW must be below HIGH")
    if kind == "log" and low <= 0:
        raise SweepSpecError(f"--param {text!r}: a log range needs LOW > 0")
    integer = name in _INTS or name == "hidden"
    return ParamSpec(name, low=float(low), high=float(high), log=kind == "log", integer=integer)


def parse_space(space: Sequence[str] | Mapping[str, Any]) -> dict[str, ParamSpec]:
    """The search space from ``--param`` strings or a mapping ``{name: values}``.

    A mapping's values are a list of values, a single value, a
    :class:`ParamSpec`, or a string in the command-line syntax after ``=``.
    Raises :class:`SweepSpecError` for a parameter given twice.
    """
    specs: list[ParamSpec] = []
    if isinstance(space, Mapping):
        for name, values in space.items():
            if isinstance(values, ParamSpec):
                specs.append(values)
            elif isinstance(values, (list, tuple)):
                specs.append(parse_param(f"{name}=" + ",".join(str(v) for v in values)))
            else:
                specs.append(parse_param(f"{name}={values}"))
    else:
        specs = [parse_param(text) for text in space]
    result: dict[str, ParamSpec] = {}
    for spec in specs:
        if spec.name in result:
            raise SweepSpecError(f"parameter {spec.name} is given twice; put all its values in one --param")
        result[spec.name] = spec
    return result


def grid_points(space: Mapping[str, ParamSpec]) -> list[dict[str, Any]]:
    """Every combination of the listed values, in row-major order of the space (the first name varies slowest)."""
    ranges = [spec.name for spec in space.values() if spec.is_range]
    if ranges:
        raise SweepSpecError(f"grid search needs lists of values; {', '.join(ranges)} is a range (use random or tpe)")
    names = list(space)
    return [dict(zip(names, combo)) for combo in itertools.product(*(space[n].choices or () for n in names))]


def check_options(search: str, trials: int | None, metric: str, space: Mapping[str, ParamSpec]) -> None:
    """The search, trial count and metric fit together and with ``space`` (:class:`SweepSpecError` if not)."""
    if search not in SEARCHES:
        raise SweepSpecError(f"--search must be one of {', '.join(SEARCHES)}; got {search!r}")
    if metric not in METRICS:
        raise SweepSpecError(f"--metric must be one of {', '.join(METRICS)}; got {metric!r}")
    if not space:
        raise SweepSpecError("the search space is empty; give at least one --param NAME=v1,v2,...")
    if search != "grid" and (trials is None or trials < 1):
        raise SweepSpecError(f"--search {search} needs --trials N (N >= 1)")
    if trials is not None and (isinstance(trials, bool) or not isinstance(trials, int) or trials < 1):
        raise SweepSpecError(f"--trials must be an integer of at least 1; got {trials!r}")


def trial_config(
    params: Mapping[str, Any], *, seed: int, train_size: int, validation_size: int, data: str = ""
) -> dict[str, Any]:
    """Every option of one training: defaults, overridden by ``params``, plus seed, data sizes and data identity.

    ``data`` is the SHA-256 of the arrays the trial trains and validates on
    (:func:`portable_nn.sweep.trial.data_digest`), so the same setting on
    other data is another trial.
    """
    config = dict(DEFAULTS)
    config.update(params)
    config.update(seed=int(seed), train_size=int(train_size), validation_size=int(validation_size), data=str(data))
    return config


def config_key(config: Mapping[str, Any]) -> str:
    """The identity of a training (what restart compares): canonical JSON of its config."""
    return json.dumps(dict(config), sort_keys=True, separators=(",", ":"))


def hidden_sizes(hidden: Any) -> list[int]:
    """The layer sizes ``[784, ..., 10]`` of a ``hidden`` value (``30`` or ``"100x30"``)."""
    layers = [int(part) for part in str(hidden).split("x")]
    return [784, *layers, 10]
