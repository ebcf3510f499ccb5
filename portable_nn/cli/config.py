"""One frozen run configuration for ``portable-nn train``, built once from the parsed arguments.

:class:`RunConfig` holds every setting of a training run with its default
(the book's chapter-1 run: ``[784, 30, 10]``, 30 epochs, mini-batches of 10,
eta 3.0, 50,000 training images, 10,000 test images).  The parser's defaults
are read from :data:`DEFAULTS`; options whose default depends on
``--preset`` (epochs, eta, lmbda, dtype, training-set size) are ``None`` in
the parser and resolved here, once.  The parsed ``argparse.Namespace`` is
never edited.
"""

from __future__ import annotations

import argparse
import dataclasses
from dataclasses import dataclass
from pathlib import Path

from .._base import limits
from .._base.runconfig import CHAPTER1 as _BOOK
from .._base.validation import max_parameters
from ..network3 import PRESETS, NetworkSpec
from .common import CommandError

#: The monitored series ``--monitor`` accepts.
MONITORS = ("evaluation-cost", "training-cost", "training-accuracy")
#: The book's split: the first 50,000 training images train, the last 10,000 validate.
BOOK_TRAIN = 50_000
#: Training images of the expanded presets (each of the 50,000 and its four 1-pixel shifts).
EXPANDED_TRAIN = 250_000


@dataclass(frozen=True)
class RunConfig:
    """Every setting of one ``portable-nn train`` run (defaults: chapter 1's run, ``runconfig.CHAPTER1``)."""

    sizes: tuple[int, ...] = _BOOK["sizes"]
    epochs: int = _BOOK["epochs"]
    batch_size: int = _BOOK["batch_size"]
    eta: float = _BOOK["eta"]
    lmbda: float = _BOOK["lmbda"]
    seed: int | None = None
    #: ``None``: the default for the data (50,000, or 250,000 for expanded presets; fewer if the data has fewer).
    train_size: int | None = None
    test_size: int = 10_000
    #: Whether ``--test-size`` was given (then more than the data has is an error, not a clamp).
    test_size_given: bool = False
    eval_data: str = "test"
    cost: str = _BOOK["cost"]
    output: str = "sigmoid"
    activation: str = _BOOK["activation"]
    init: str = _BOOK["init"]
    regularization: str = "l2"
    momentum: float = _BOOK["momentum"]
    early_stopping: int = 0
    schedule: int = 0
    monitor: tuple[str, ...] = ()
    preset: str | None = None
    backend: str = _BOOK["backend"]
    dtype: str = _BOOK["dtype"]
    data_dir: Path | None = None
    download: bool = True
    #: ``--download``: a missing ``--data-dir`` / ``$PORTABLE_NN_DATA`` may be created (never otherwise).
    create_data_dir: bool = False
    save: Path | None = None
    history: Path | None = None
    plot: Path | None = None
    #: ``--checkpoint DIR`` (or ``--resume DIR``): where the per-epoch checkpoint is kept.
    checkpoint: Path | None = None
    #: ``--resume DIR``: continue from the checkpoint in ``checkpoint``.
    resume: bool = False
    quiet: bool = False

    @property
    def spec(self) -> NetworkSpec | None:
        """The chapter-6 network of ``--preset`` (``None`` for a chapter-1/3 network)."""
        return None if self.preset is None else PRESETS[self.preset](self.batch_size)

    @property
    def network_cost(self) -> str:
        """The cost the network is built with (softmax outputs use the log-likelihood)."""
        return "log-likelihood" if self.output == "softmax" else self.cost

    def settings(self) -> dict[str, object]:
        """The run's settings as plain JSON values (for the history file and plot titles)."""
        # every network's: the run, the update rule and the stop rules (chapter 6 has them too)
        keep: tuple[str, ...] = ("epochs", "batch_size", "eta", "lmbda", "seed", "backend", "dtype", "preset")
        keep += ("regularization", "momentum", "early_stopping", "schedule")
        chapter3 = ("cost", "output", "activation", "init")
        values: dict[str, object] = {name: getattr(self, name) for name in keep}
        if self.preset is None:
            values["sizes"] = list(self.sizes)
            values.update({name: getattr(self, name) for name in chapter3})
        return values


DEFAULTS = RunConfig()

#: Options a ``--preset`` fixes: (flag, field).  The update and stop rules (``--regularization``,
#: ``--momentum``, ``--early-stopping``, ``--schedule``) are every network's, chapter 6's included.
_CH3_FIELDS = (
    ("--sizes", "sizes"),
    ("--cost", "cost"),
    ("--output", "output"),
    ("--activation", "activation"),
    ("--init", "init"),
    ("--monitor", "monitor"),
    ("--eval-data", "eval_data"),
)


def config_from_args(args: argparse.Namespace) -> RunConfig:
    """The run configuration for parsed ``train`` arguments; ``CommandError`` (status 2) for a bad combination."""
    given = {
        field.name: getattr(args, field.name)
        for field in dataclasses.fields(RunConfig)
        if getattr(args, field.name, None) is not None and field.name not in ("download", "test_size_given", "resume")
    }
    given.update(_checkpoint_options(args))
    given["sizes"] = tuple(given.get("sizes", DEFAULTS.sizes))
    given["monitor"] = tuple(given.get("monitor", ()))
    spec = None if args.preset is None else PRESETS[args.preset](args.batch_size)
    if spec is not None:
        fixed = [flag for flag, name in _CH3_FIELDS if given[name] != getattr(DEFAULTS, name)]
        if fixed:
            raise CommandError(f"--preset {args.preset} fixes the network and its data; drop {', '.join(fixed)}", 2)
        if args.save is not None and args.save.suffix.lower() != ".npz":
            raise CommandError(f"--preset networks are saved as .npz; got --save {str(args.save)!r}", 2)
        given.setdefault("epochs", spec.epochs)
        given.setdefault("eta", spec.eta)
        given.setdefault("lmbda", spec.lmbda)
        given.setdefault("dtype", "float32")
    config = RunConfig(
        **given, download=not args.no_download, test_size_given=args.test_size is not None
    )  # fmt: skip
    _check_combination(config)
    return config


def _checkpoint_options(args: argparse.Namespace) -> dict[str, object]:
    """``checkpoint``/``resume`` from ``--checkpoint DIR`` and ``--resume DIR`` (which keeps checkpointing in DIR)."""
    resume_dir, checkpoint = getattr(args, "resume_dir", None), getattr(args, "checkpoint", None)
    for flag, path in (("--checkpoint", checkpoint), ("--resume", resume_dir)):
        if path is not None and path.exists() and not path.is_dir():
            raise CommandError(f"{flag} {path}: is a file; {flag} names a directory (it holds checkpoint.npz)", 2)
    if resume_dir is None:
        return {}
    if checkpoint is not None and checkpoint != resume_dir:
        raise CommandError(
            f"--resume {resume_dir} keeps checkpointing in {resume_dir}; drop --checkpoint {checkpoint}", 2
        )
    return {"checkpoint": resume_dir, "resume": True}


def _check_combination(config: RunConfig) -> None:
    if config.output == "softmax" and config.cost not in ("quadratic", "log-likelihood"):
        raise CommandError(f"--output softmax uses the log-likelihood cost; drop --cost {config.cost}", 2)
    if config.output == "sigmoid" and config.cost == "log-likelihood":
        raise CommandError("--cost log-likelihood needs --output softmax", 2)
    if config.eval_data == "validation" and config.train_size is not None and config.train_size > BOOK_TRAIN:
        raise CommandError(
            f"--train-size must be <= {BOOK_TRAIN} with --eval-data validation (the last 10,000 are validation)", 2
        )


def check_network_size(config: RunConfig) -> int:
    """The network's parameter count, checked against the parameter, layer and work limits before anything is built.

    Raises :class:`CommandError` (status 2) naming ``--sizes`` or ``--preset``
    and the environment variable that raises the limit.
    """
    spec = config.spec
    if spec is None:
        what = f"--sizes {','.join(map(str, config.sizes))}"
        if len(config.sizes) > limits.MAX_LAYERS:
            raise CommandError(f"--sizes: {len(config.sizes)} layer sizes; at most {limits.MAX_LAYERS} are allowed", 2)
        count = limits.parameter_count(list(config.sizes))
        work = limits.network_work(list(config.sizes))
    else:
        what = f"--preset {spec.name}"
        layers = spec.layers()
        count = limits.parameter_count(layers)
        work = limits.network_work(layers)
    try:
        max_count = max_parameters()
    except ValueError as exc:
        raise CommandError(str(exc), 2) from exc
    if count > max_count:
        raise CommandError(
            f"{what}: {count:,} parameters is more than the limit of {max_count:,}; "
            "set $PORTABLE_NN_MAX_PARAMETERS to allow more",
            2,
        )
    try:
        limits.check_work(work, what)
    except ValueError as exc:
        raise CommandError(str(exc), 2) from exc
    return count
