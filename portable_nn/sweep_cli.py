"""``portable-nn sweep`` and the plot of a sweep directory: the names :mod:`portable_nn.cli` imports.

The code lives in :mod:`portable_nn.sweep.cli` and :mod:`portable_nn.sweep.plot`;
this module keeps ``from portable_nn.sweep_cli import add_sweep_parser, cmd_sweep,
plot_sweep`` and ``python -m portable_nn.sweep_cli sweep ...`` working.
Imports neither Dask nor Optuna.
"""

from __future__ import annotations

import sys

from .sweep.cli import add_sweep_parser, cmd_sweep, main
from .sweep.plot import plot_sweep

__all__ = ["add_sweep_parser", "cmd_sweep", "main", "plot_sweep"]

if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
