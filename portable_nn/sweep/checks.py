"""Every setting of a search space checked before the first trial, so a sweep that cannot work stops at once.

:func:`check_space` refuses, with one :class:`SweepSpecError` line: a seed
outside [0, 2**32); chapter-3 options swept with ``model=network``, which
ignores them (the trials would be identical trainings under different names);
a ``hidden`` value whose network exceeds the parameter limit
(:func:`portable_nn._base.validation.max_parameters`).  :func:`setting_problems`
then builds the smallest network of every combination of the categorical
options (model, cost, init, activation, backend, dtype): a backend that is not
installed or cannot run, or a combination a network refuses, is found here,
in the driver for a local cluster and on every worker (``client.run``) for an
existing one.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence
from typing import Any

from .space import DEFAULTS, MAX_SEED, ParamSpec, SweepSpecError, hidden_sizes

__all__ = ["CHAPTER3_ONLY", "categorical_settings", "check_space", "setting_problems"]

#: Options ``model=network`` (chapter 1: quadratic cost, N(0, 1) weights, sigmoid, no regularisation) ignores.
CHAPTER3_ONLY = ("cost", "init", "activation", "lmbda", "mu")
_CATEGORICAL = ("model", "cost", "init", "activation", "backend", "dtype")


def _values(specs: Mapping[str, ParamSpec], name: str) -> tuple[Any, ...]:
    spec = specs.get(name)
    return (DEFAULTS[name],) if spec is None else spec.values()


def check_space(specs: Mapping[str, ParamSpec], *, seed: int, sizes: Sequence[int]) -> None:
    """Check seed, sizes, chapter-1 options and parameter counts; :class:`SweepSpecError` names the first problem.

    ``sizes``: the train, validation and test sizes.
    """
    if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed <= MAX_SEED:
        raise SweepSpecError(f"--seed must be an integer in [0, {MAX_SEED}]; got {seed!r}")
    if any(isinstance(n, bool) or not isinstance(n, int) or n < 1 for n in sizes):
        raise SweepSpecError(f"train, validation and test sizes must be integers of at least 1; got {list(sizes)}")
    models = _values(specs, "model")
    if "network" in models:
        only_chapter1 = models == ("network",)
        ignored = [
            n
            for n in CHAPTER3_ONLY
            if n in specs and (only_chapter1 or specs[n].is_range or len(specs[n].values()) > 1)
        ]
        if ignored:
            raise SweepSpecError(
                f"model=network (chapter 1) ignores {', '.join(ignored)}: those trials would be the same training; "
                "sweep them with model=network2 only"
            )
    from .._base.validation import check_sizes

    for hidden in _values(specs, "hidden"):
        try:
            check_sizes(hidden_sizes(hidden))
        except ValueError as exc:
            raise SweepSpecError(f"hidden={hidden}: {exc}") from None


def categorical_settings(specs: Mapping[str, ParamSpec]) -> list[dict[str, Any]]:
    """Every distinct combination of the categorical options (chapter-3 options fixed for ``model=network``)."""
    settings: list[dict[str, Any]] = []
    for combo in itertools.product(*(_values(specs, n) for n in _CATEGORICAL)):
        setting: dict[str, Any] = dict(zip(_CATEGORICAL, combo))
        if setting["model"] == "network":
            setting.update({n: DEFAULTS[n] for n in CHAPTER3_ONLY if n in setting})
        if setting not in settings:
            settings.append(setting)
    return settings


def setting_problems(settings: Sequence[Mapping[str, Any]], seed: int, names: Sequence[str] = ()) -> list[str]:
    """One line per setting whose smallest network (``[784, 1, 10]``) cannot be built here (runs on workers too).

    Each line names the setting by its options in ``names`` (the swept ones; all when empty).
    """
    from .trial import build_network

    problems = []
    for setting in settings:
        config = {**DEFAULTS, **setting, "hidden": 1, "seed": seed}
        try:
            build_network(config)
        except Exception as exc:  # the network's own error, e.g. BackendUnavailableError
            shown = " ".join(f"{k}={v}" for k, v in setting.items() if not names or k in names) or "the defaults"
            first = str(exc).strip().splitlines()
            problems.append(f"{shown}: {type(exc).__name__}: {first[0] if first else ''}")
    return problems
