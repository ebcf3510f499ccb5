"""``portable-nn plot``: a history file's curves, or a sweep directory's results, drawn to a PNG.

The output gets the checks of ``train``'s outputs, on its real target (links
resolved): a ``.png`` suffix, a writable regular file, and never one of the
inputs (the history file, or any file of the sweep directory).
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from ..history import plot_history, plot_title, read_history
from .common import CommandError, say
from .outputs import check_output

#: Most directory entries looked at when protecting a sweep directory's files from the plot.
_MAX_ENTRIES = 10_000


def _sweep_files(directory: Path) -> list[Path]:
    """The regular files of a sweep directory (the inputs a plot must never overwrite)."""
    files = []
    with os.scandir(directory) as entries:
        for n, entry in enumerate(entries):
            if n >= _MAX_ENTRIES:
                break
            files.append(Path(entry.path))
    return files


def cmd_plot(args: argparse.Namespace) -> int:
    """``portable-nn plot HISTORY -o PNG`` (or ``plot SWEEP_DIR -o PNG``)."""
    source: Path = args.history
    if source.is_dir():  # a sweep's --out directory
        output = check_output("-o/--output", args.output, (".png",), _sweep_files(source))
        from ..sweep_cli import plot_sweep

        say(f"wrote plot to {plot_sweep(source, output)}")
        return 0
    output = check_output("-o/--output", args.output, (".png",), [source])
    rows, settings = read_history(source), None
    try:
        settings = plot_title(source)
        path = plot_history(rows, output, settings or source.name)
    except ValueError as exc:
        raise CommandError(f"{source}: {exc}") from exc
    say(f"wrote plot to {path}")
    return 0
