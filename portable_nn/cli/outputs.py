"""``train``'s and ``plot``'s output files: checked before any work, written before anything is printed.

Every output is checked on its *real* target (symbolic links resolved): the
suffix, that it is not a directory or special file and can be created
(:func:`portable_nn._base.atomic.check_writable`), that no two outputs are the same
file and that no output is one of the command's inputs.  Writing happens
after training and before the final lines are printed, so a terminal that
went away can never cost the model; a write that fails goes to a fallback
location (:func:`portable_nn._base.atomic.fallback_path`).
"""

from __future__ import annotations

import importlib.util
import os
import shutil
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from .._base.atomic import OutputPathError, check_writable, fallback_path
from .common import CommandError, describe

#: The suffixes each output option accepts (on the given name and on the real target).
OUTPUT_SUFFIXES = {"--save": (".npz", ".json"), "--history": (".json", ".csv"), "--plot": (".png",)}


def check_output(option: str, path: Path, suffixes: Sequence[str], inputs: Sequence[Path] = ()) -> Path:
    """``path`` resolved, when it can be written as ``option``'s file; ``CommandError`` (status 2) if not.

    The suffix is checked on the name given and on the real target of a link;
    an output that is (through links or hard links) one of ``inputs`` is refused.
    """
    allowed = " or ".join(suffixes)
    if path.suffix.lower() not in suffixes:
        raise CommandError(f"{option} must end in {allowed}; got {str(path)!r}", 2)
    for source in inputs:
        if _same_file(source, path):
            raise CommandError(f"{option} {path} is the input file {source}; choose another name", 2)
    target = Path(os.path.realpath(path))
    if target.suffix.lower() not in suffixes:
        raise CommandError(f"{option} {path} is a link to {target}, which does not end in {allowed}", 2)
    try:
        return check_writable(path, f"{option} file")
    except OutputPathError as exc:
        raise CommandError(str(exc), 2) from exc


def _same_file(a: Path, b: Path) -> bool:
    try:
        return os.path.realpath(a) == os.path.realpath(b) or (a.exists() and b.exists() and os.path.samefile(a, b))
    except OSError:
        return False


def check_outputs(requested: dict[str, Path | None], inputs: Sequence[Path]) -> dict[str, Path]:
    """Every requested output (``{"--save": path or None, ...}``) resolved and checked before training starts."""
    outputs = {
        option: check_output(option, path, OUTPUT_SUFFIXES[option], inputs)
        for option, path in requested.items()
        if path is not None
    }
    if "--plot" in outputs and importlib.util.find_spec("matplotlib") is None:
        raise CommandError('--plot needs matplotlib: pip install "portable-nn[plot]" (or leave out --plot)')
    seen: dict[Path, str] = {}
    for option, path in outputs.items():
        if path in seen:
            raise CommandError(f"{seen[path]} and {option} name the same file {path}; give each its own", 2)
        seen[path] = option
    return outputs


def _model_bytes(count: int, dtype: str, fmt: str) -> int:
    return count * (25 if fmt == ".json" else (8 if dtype == "float64" else 4)) + 4096


def check_space(outputs: dict[str, Path], count: int, dtype: str) -> str:
    """``"; model file about N MB"``; ``CommandError`` if its directory has not even that much room."""
    path = outputs.get("--save")
    if path is None:
        return ""
    needed = _model_bytes(count, dtype, path.suffix.lower())
    free = shutil.disk_usage(path.parent).free
    if free < needed:
        raise CommandError(f"--save {path}: the model needs about {needed:,} bytes but {path.parent} has {free:,} free")
    return f"; model file about {needed / 1e6:.1f} MB"


@dataclass
class WriteReport:
    """What :func:`write_outputs` did: lines to print (stdout, stderr), the exit status, whether it was cut short."""

    status: int = 0
    lines: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    written: list[str] = field(default_factory=list)
    interrupted: bool = False


#: ``{option: (kind, write)}``: ``write(path)`` writes the file and returns its path.
Writers = dict[str, tuple[str, Callable[[Path], Path]]]


def write_outputs(outputs: dict[str, Path], writers: Writers) -> WriteReport:
    """Write each output (nothing is printed here); a failed write goes to a fallback location (status 1).

    A ``KeyboardInterrupt`` (a second stop signal) abandons the write under
    way and the rest: those files are left as they were, and the report says so.
    """
    report = WriteReport()
    for option, path in outputs.items():
        kind, write = writers[option]
        if report.interrupted:
            report.errors.append(f"portable-nn train: {option}: not written (interrupted); {path} was left as it was")
            continue
        try:
            report.lines.append(f"saved {kind} to {write(path)}")
            report.written.append(option)
        except KeyboardInterrupt:
            report.interrupted = True
            report.errors.append(
                f"portable-nn train: {option}: interrupted while writing; {path} was left as it was"
            )  # fmt: skip
        except ValueError as exc:  # save() refuses non-finite weights; the old file stays
            report.status = 1
            report.errors.append(f"portable-nn train: error: {option}: {exc}; {path} was left as it was")
        except OSError as exc:
            report.status = 1
            report.errors.append(_rescue(option, path, kind, write, exc, report))
    return report


def _rescue(
    option: str, path: Path, kind: str, write: Callable[[Path], Path], exc: OSError, report: WriteReport
) -> str:
    reason = exc.strerror or str(exc)
    try:
        rescue = write(fallback_path(path, f"{option} file"))
    except OSError as again:
        return (
            f"portable-nn train: error: could not write {option} {path} ({reason}), nor a fallback ({describe(again)})"
        )
    report.written.append(option)
    return f"portable-nn train: error: could not write {option} {path} ({reason}); saved the {kind} to {rescue} instead"
