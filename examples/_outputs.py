"""Where the examples write, checked before any work starts.

Results go to ``--out DIR`` (default ``./portable-nn-runs/<example>/``, created
on first use and git-ignored); ``--doc`` updates the committed pages in
``docs/`` on purpose.  A missing ``--data-dir`` or a ``--out`` whose parent
does not exist ends the example at once with one ``NAME: error: ...`` line
(exit status 2), never with a traceback after minutes of training.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import NoReturn

DOCS = Path(__file__).resolve().parents[1] / "docs"
RUNS = Path("portable-nn-runs")


def fail(message: str) -> NoReturn:
    """One line on stderr, exit status 2 (a usage error)."""
    print(f"{Path(sys.argv[0]).name}: error: {message}", file=sys.stderr)
    raise SystemExit(2)


def add_output_options(parser: argparse.ArgumentParser, example: str) -> None:
    """``--out DIR`` and ``--doc`` on ``parser``."""
    group = parser.add_mutually_exclusive_group()
    group.add_argument(
        "--out",
        type=Path,
        default=None,
        help=f"directory for the results (default ./{RUNS / example}/, created; the committed docs/ are untouched)",
    )
    group.add_argument("--doc", action="store_true", help="update the committed pages in docs/ (on purpose)")


def output_dir(args: argparse.Namespace, example: str) -> Path:
    """The directory this run writes to, created and checked writable now (``--doc``: ``docs/``)."""
    if args.doc:
        out = DOCS
    elif args.out is None:
        out = RUNS / example
        try:
            out.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            fail(f"cannot create the default output directory {out} ({exc.strerror}); name one with --out DIR")
    else:
        out = args.out
        if out.exists() and not out.is_dir():
            fail(f"--out {out}: exists and is not a directory")
        if not out.exists():
            if not out.parent.is_dir():
                fail(f"--out {out}: its directory {out.parent} does not exist")
            try:
                out.mkdir()
            except OSError as exc:
                fail(f"--out {out}: cannot create it ({exc.strerror})")
    if not os.access(out, os.W_OK | os.X_OK):
        fail(f"--out {out}: directory is not writable")
    return out


def check_data_dir(data_dir: str | Path | None) -> None:
    """A ``--data-dir`` that is given must be an existing directory (it is never created)."""
    if data_dir is not None and not Path(data_dir).is_dir():
        what = "is not a directory" if Path(data_dir).exists() else "does not exist"
        fail(f"--data-dir {data_dir} {what} (point it at the four MNIST IDX files)")
