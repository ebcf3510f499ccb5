"""Install portable_nn for the GPU tests on a machine with no package index, and list its GPU backends.

Runs with the interpreter it installs into, before the project is there, so it
uses only the standard library (and pip, as ``python -m pip``).  ``nox -s
tests-gpu`` and ``benchmarks/gpu_check.sh`` both call it:

    python benchmarks/gpu_env.py status               # what is present, what is missing (nothing installed)
    python benchmarks/gpu_env.py install [--wheelhouse DIR] [--extra REQ ...]
    python benchmarks/gpu_env.py backends             # PORTABLE_NN_BACKENDS for this machine's GPU run

``install`` checks which requirements the interpreter already has (CuPy,
PyTorch, JAX, NumPy, pytest ... preinstalled on a cluster node are used as
they are), installs only the missing ones, then the project itself with
``pip install --no-index --no-deps --no-build-isolation -e .`` (nothing is
fetched for it).  Missing requirements come from

* a wheelhouse: ``--wheelhouse DIR`` or ``PORTABLE_NN_WHEELHOUSE=DIR``, installed
  with ``pip install --no-index --find-links DIR``; or else
* pip's own configuration (``PIP_FIND_LINKS``, ``PIP_NO_INDEX``, ``PIP_INDEX_URL``,
  pip.conf): ``pip install REQ`` as you would type it.

A requirement that is neither installed nor installable ends the run with
exit status 2 and one line naming it.
"""

from __future__ import annotations

import argparse
import importlib.metadata
import json
import os
import re
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

#: What the GPU test run needs: the package's dependencies and the suite's own
#: (the same lower bounds as pyproject.toml; tests/test_gpu_offline.py checks that).
REQUIRED: dict[str, str] = {
    "numpy": ">=1.26",
    "array-api-compat": ">=1.12",
    "array-api-extra": ">=0.8",
    "array-api-strict": ">=2.4",
    "pytest": ">=8",
    "hypothesis": ">=6.100",
    "setuptools": ">=70.1",  # the build backend, used in place (--no-build-isolation); see required()
}

#: Installed when present in the wheelhouse; without them their tests skip.
OPTIONAL: dict[str, str] = {"tqdm": ">=4.60", "matplotlib": ">=3.7", "Pillow": ">=10", "scipy": ""}

WHEELHOUSE_VARIABLE = "PORTABLE_NN_WHEELHOUSE"


def required() -> dict[str, str]:
    """:data:`REQUIRED` for this interpreter.

    An editable install builds a wheel, which setuptools does by itself from
    70.1 on; older ones (64 to 70.0, as some distributions ship) need the
    ``wheel`` package, so with ``wheel`` installed ``setuptools>=64`` is enough.
    """
    if installed("wheel", "")[0] is not None:
        return {**REQUIRED, "setuptools": ">=64"}
    return dict(REQUIRED)


def canonical(name: str) -> str:
    """PEP 503 name: ``Array_API.compat`` -> ``array-api-compat``."""
    return re.sub(r"[-_.]+", "-", name).lower()


def version_tuple(version: str) -> tuple[int, ...]:
    """The leading release numbers of a version string: ``"2.6.1rc1"`` -> ``(2, 6, 1)``."""
    numbers = []
    for part in version.split("+")[0].split("."):
        match = re.match(r"\d+", part)
        if match is None:
            break
        numbers.append(int(match.group()))
        if match.end() != len(part):
            break
    return tuple(numbers)


def installed(name: str, spec: str) -> tuple[str | None, bool]:
    """``(version or None, satisfies spec)`` for distribution ``name`` here; ``spec`` is ``">=X"`` or ``""``."""
    try:
        version = importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return None, False
    if not spec:
        return version, True
    return version, version_tuple(version) >= version_tuple(spec.removeprefix(">="))


def status(requirements: dict[str, str]) -> dict[str, dict[str, object]]:
    """Per requirement: its spec, the installed version (None when missing) and whether it satisfies the spec."""
    table: dict[str, dict[str, object]] = {}
    for name, spec in requirements.items():
        version, ok = installed(name, spec)
        table[name] = {"spec": spec, "version": version, "ok": ok}
    return table


def wheels_in(directory: Path) -> set[str]:
    """Canonical project names of the wheels (and sdists) in ``directory``."""
    names = set()
    for path in directory.iterdir():
        if path.suffix == ".whl" or path.name.endswith((".tar.gz", ".zip")):
            names.add(canonical(path.name.split("-")[0]))
    return names


def pip(*args: str) -> int:
    """Run ``python -m pip ARGS`` with this interpreter; its exit status."""
    command = [sys.executable, "-m", "pip", *args]
    print("+ " + " ".join(command), flush=True)
    return subprocess.run(command, check=False).returncode


def fail(message: str) -> int:
    print(f"gpu_env.py: error: {message}", file=sys.stderr, flush=True)
    return 2


def _install_missing(missing: list[str], wheelhouse: Path | None) -> int:
    """Install requirement strings ``missing`` from the wheelhouse or pip's configuration; exit status."""
    names = [canonical(re.split(r"[<>=!~ ]", req, maxsplit=1)[0]) for req in missing]
    if wheelhouse is not None:
        absent = [n for n in names if n not in wheels_in(wheelhouse)]
        if absent:
            return fail(
                f"missing package(s) {', '.join(absent)}: not installed in {sys.executable} "
                f"and no wheel for them in {wheelhouse}; add their wheels there"
            )
        code = pip("install", "--quiet", "--no-index", "--find-links", str(wheelhouse), *missing)
    else:
        code = pip("install", "--quiet", *missing)
    if code:
        where = f"the wheelhouse {wheelhouse}" if wheelhouse else "pip's index/find-links"
        return fail(
            f"missing package(s) {', '.join(names)} could not be installed from {where} (pip exit status {code}); "
            f"on a machine without an index put their wheels in a directory and set {WHEELHOUSE_VARIABLE}=DIR"
        )
    return 0


def install(wheelhouse: Path | None, extra: Sequence[str], project: Path) -> int:
    """Install what is missing, then the project in place without fetching anything; exit status."""
    if wheelhouse is not None and not wheelhouse.is_dir():
        return fail(f"wheelhouse {wheelhouse} is not a directory ({WHEELHOUSE_VARIABLE} or --wheelhouse)")
    table = status(required())
    for name, row in table.items():
        mark = "ok" if row["ok"] else ("too old" if row["version"] else "missing")
        print(f"  {name}{row['spec']}: {row['version'] or '-'} ({mark})")
    missing = [f"{name}{row['spec']}" for name, row in table.items() if not row["ok"]]
    missing += [req for req in extra if installed(canonical(re.split(r"[<>=!~ ]", req)[0]), "")[0] is None]
    if missing:
        print(f"installing {', '.join(missing)}", flush=True)
        code = _install_missing(missing, wheelhouse)
        if code:
            return code
    if wheelhouse is not None:
        available = wheels_in(wheelhouse)
        optional = [f"{n}{s}" for n, s in OPTIONAL.items() if installed(n, s)[0] is None and canonical(n) in available]
        if optional and pip("install", "--quiet", "--no-index", "--find-links", str(wheelhouse), *optional):
            return fail(f"optional package(s) {', '.join(optional)} in {wheelhouse} did not install")
    for name in OPTIONAL:
        if installed(name, "")[0] is None:
            print(f"  note: {name} is not installed: the tests that need it are skipped")
    code = pip("install", "--quiet", "--no-index", "--no-deps", "--no-build-isolation", "-e", str(project))
    if code:
        return fail(f"installing the project from {project} in place failed (pip exit status {code})")
    check = "import portable_nn, array_api_compat; print(portable_nn.__file__, array_api_compat.__version__)"
    return subprocess.run([sys.executable, "-c", check], check=False).returncode


def gpu_backends() -> tuple[list[str], list[str]]:
    """``(PORTABLE_NN_BACKENDS entries, notes)`` for the GPU run on this machine.

    numpy (the reference) and cupy always (a broken CuPy must fail, not skip);
    ``torch:cuda`` when PyTorch imports and sees a CUDA device; ``jax:gpu`` when
    JAX imports and has a GPU device.
    """
    entries, notes = ["numpy", "cupy"], []
    try:
        import torch

        if torch.cuda.is_available():
            entries.append("torch:cuda")
        else:
            notes.append(f"torch {torch.__version__} sees no CUDA device: torch:cuda left out")
    except Exception as exc:  # a broken install must not hide the other backends
        notes.append(f"torch does not import ({exc}): torch:cuda left out")
    try:
        import jax

        if any(d.platform == "gpu" for d in jax.devices()):
            entries.append("jax:gpu")
        else:
            notes.append(f"jax {jax.__version__} has no GPU device ({jax.devices()}): jax:gpu left out")
    except Exception as exc:
        notes.append(f"jax does not import or start ({exc}): jax:gpu left out")
    return entries, notes


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("status", help="print what is present and missing as JSON; install nothing")
    inst = sub.add_parser("install", help="install what is missing, then the project (no index needed)")
    inst.add_argument("--wheelhouse", type=Path, default=None, help=f"directory of wheels (or ${WHEELHOUSE_VARIABLE})")
    inst.add_argument("--extra", action="append", default=[], help="one more requirement, e.g. cupy-cuda13x")
    inst.add_argument("--project", type=Path, default=ROOT, help="the checkout to install in place")
    sub.add_parser("backends", help="print the PORTABLE_NN_BACKENDS list for this machine (last stdout line)")
    args = parser.parse_args(argv)
    if args.command == "status":
        print(json.dumps({"required": status(required()), "optional": status(OPTIONAL)}, indent=1))
        return 0
    if args.command == "install":
        env = os.environ.get(WHEELHOUSE_VARIABLE, "").strip()
        wheelhouse = args.wheelhouse or (Path(env) if env else None)
        return install(wheelhouse, args.extra, args.project)
    entries, notes = gpu_backends()
    for note in notes:
        print(f"note: {note}", file=sys.stderr)
    print(",".join(entries))
    return 0


if __name__ == "__main__":
    sys.exit(main())
