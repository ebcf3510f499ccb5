"""``portable-nn``'s entry point: parse, dispatch to the command, turn expected errors into one line."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable, Sequence

from .._backend.backends import enable_jax_x64
from .._base import limits
from .._base.validation import max_parameters
from .common import DEBUG_ENV, EXPECTED_ERRORS, CommandError, describe, ensure_standard_streams, warn
from .parser import build_parser


def _check_environment() -> None:
    """The limits set in the environment parse (a typo is a usage error, not a silent default)."""
    try:
        for limit in (*limits.ALL, *limits.WORK):
            limit.value()
        max_parameters()
    except ValueError as exc:
        raise CommandError(str(exc), 2) from exc


def _commands() -> dict[str, Callable[[argparse.Namespace], int]]:
    from . import models, plot, train  # looked up at each call, so a test can replace a command

    def sweep(args: argparse.Namespace) -> int:
        from ..sweep_cli import cmd_sweep  # Dask and Optuna are imported only here

        return cmd_sweep(args)

    package = sys.modules[__package__ or "portable_nn.cli"]
    return {
        "train": getattr(package, "cmd_train", train.cmd_train),
        "evaluate": getattr(package, "cmd_evaluate", models.cmd_evaluate),
        "predict": getattr(package, "cmd_predict", models.cmd_predict),
        "plot": getattr(package, "cmd_plot", plot.cmd_plot),
        "sweep": sweep,
    }


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit status."""
    ensure_standard_streams()
    parser = build_parser()
    args = parser.parse_args(argv)
    debug = args.debug or os.environ.get(DEBUG_ENV, "") not in ("", "0")
    try:
        _check_environment()
        if getattr(args, "backend", None) == "jax":  # the command owns its process: --dtype float64 means float64
            enable_jax_x64()
        return _commands()[args.command](args)
    except CommandError as exc:
        if debug:
            raise
        message = describe(exc)
        if exc.status == 2:  # a usage error, reported the way argparse reports its own
            try:
                parser.print_usage(sys.stderr)
            except OSError:
                pass
            warn(f"portable-nn {args.command}: error: {message}")
            raise SystemExit(2) from None
        warn(f"portable-nn {args.command}: error: {message}")
        return exc.status
    except EXPECTED_ERRORS as exc:
        if debug:
            raise
        warn(f"portable-nn {args.command}: error: {describe(exc)}")
        return 1
    except KeyboardInterrupt:
        warn(f"portable-nn {args.command}: interrupted")
        return 130
