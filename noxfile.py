"""Test sessions: ``nox -s tests-cpu tests-gpu`` (and ``nox -s lint``).

No session pins a Python version: each runs on the interpreter nox itself
runs on, so CI machines with a single Python work.

* ``tests-cpu`` -- the suite on numpy, array_api_strict (non-default device),
  PyTorch's CPU namespace and JAX (CPU, jit-compiled steps); every one is
  required (missing = failure).  On a Linux machine without CUDA (no
  ``nvidia-smi``) PyTorch comes from PyTorch's CPU-only index
  (``PORTABLE_NN_TORCH_INDEX``, default ``https://download.pytorch.org/whl/cpu``),
  added as an extra index only when it answers within 5 s; otherwise the
  plain requirement is installed and a note says so.
* ``tests-gpu`` -- the suite on CuPy, PyTorch on ``cuda`` and JAX on its GPU
  (where they import and see a GPU), compared with the NumPy reference, when a
  CUDA device is present; otherwise the session is skipped with the reason.
  The venv sees the system site-packages (CuPy, PyTorch, JAX preinstalled on
  a cluster node are used as they are); ``benchmarks/gpu_env.py`` installs
  only what is missing -- from ``PORTABLE_NN_WHEELHOUSE=DIR`` with
  ``--no-index`` on a machine without an index, else through pip's own
  configuration (``PIP_FIND_LINKS``, ``PIP_NO_INDEX``) -- and the project with
  ``--no-index --no-deps --no-build-isolation -e .``; a missing package it
  cannot install ends the session with its name.  A requested-but-broken
  CuPy fails instead of skipping.  See docs/gpu.md.
* ``lint`` -- ``ruff check``, ``ruff format --check``, ``mypy`` and the import layers contract (``lint-imports``).

``PORTABLE_NN_TORCH_SPEC`` overrides the PyTorch requirement installed for
``tests-cpu`` (default ``torch==2.13.0``; the value is split like a shell
line, so ``torch --index-url URL`` works); when it is set, no index is added.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import sys
import urllib.error
import urllib.request

import nox

nox.options.sessions = ["lint", "tests-cpu", "tests-gpu"]
nox.options.default_venv_backend = "venv"

TORCH_SPEC = os.environ.get("PORTABLE_NN_TORCH_SPEC", "")
TORCH_DEFAULT = "torch==2.13.0"
TORCH_CPU_INDEX = os.environ.get("PORTABLE_NN_TORCH_INDEX", "https://download.pytorch.org/whl/cpu")
JAX_SPEC = os.environ.get("PORTABLE_NN_JAX_SPEC", "jax>=0.4.30")


def _pytest(session: nox.Session, backends: str) -> None:
    session.run(
        "pytest",
        *session.posargs,
        env={"PORTABLE_NN_BACKENDS": backends, "PORTABLE_NN_REQUIRE_BACKENDS": "1"},
    )


@nox.session(name="tests-cpu")
def tests_cpu(session: nox.Session) -> None:
    """The suite on numpy, array_api_strict, torch (CPU) and JAX (CPU)."""
    session.install("-e", ".[test]")
    session.install(*_torch_requirement(session), *shlex.split(JAX_SPEC))
    _pytest(session, "numpy,array_api_strict,torch,jax")


def _index_answers(url: str, timeout: float = 5.0) -> bool:
    """Whether ``url`` answers an HTTP HEAD within ``timeout`` seconds (any status below 500)."""
    try:
        with urllib.request.urlopen(urllib.request.Request(url, method="HEAD"), timeout=timeout) as reply:
            return reply.status < 500
    except urllib.error.HTTPError as exc:
        return exc.code < 500
    except (OSError, ValueError):
        return False


def _torch_requirement(session: nox.Session) -> list[str]:
    """pip arguments for PyTorch: the override, else the pin -- from the CPU-only index on a Linux box without CUDA.

    PyPI's Linux ``torch`` wheel pulls the CUDA libraries (``nvidia-*``,
    triton: gigabytes); PyTorch's CPU index serves ``torch==X+cpu``, which
    ``torch==X`` matches and pip prefers.  An unreachable index makes pip retry
    (seconds to minutes) before it falls back, so the index is added only when
    it answers at once.
    """
    if TORCH_SPEC:
        return shlex.split(TORCH_SPEC)
    if not sys.platform.startswith("linux") or not TORCH_CPU_INDEX:
        return [TORCH_DEFAULT]
    if _cuda_major() is not None:
        session.log(f"CUDA driver present: {TORCH_DEFAULT} from the default index (CUDA build)")
        return [TORCH_DEFAULT]
    if not _index_answers(TORCH_CPU_INDEX.rstrip("/") + "/torch/"):
        session.log(
            f"note: PyTorch's CPU index {TORCH_CPU_INDEX} does not answer; installing {TORCH_DEFAULT} from the "
            "configured index (on PyPI that is the CUDA build: set PORTABLE_NN_TORCH_SPEC to choose)"
        )
        return [TORCH_DEFAULT]
    session.log(f"no CUDA: {TORCH_DEFAULT} from PyTorch's CPU-only index {TORCH_CPU_INDEX}")
    return [TORCH_DEFAULT, "--extra-index-url", TORCH_CPU_INDEX]


def _cuda_major() -> int | None:
    """The CUDA major version the driver supports, from ``nvidia-smi``; None without a GPU."""
    if shutil.which("nvidia-smi") is None:
        return None
    try:
        out = subprocess.run(["nvidia-smi"], capture_output=True, text=True, timeout=60, check=True).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    match = re.search(r"CUDA Version:\s*(\d+)", out)
    return int(match.group(1)) if match else None


# System site-packages: CuPy, PyTorch and JAX preinstalled on a GPU machine
# (which may have no package index) are used as they are; benchmarks/gpu_env.py
# installs only what is missing (wheelhouse: PORTABLE_NN_WHEELHOUSE=DIR).
@nox.session(name="tests-gpu", venv_params=["--system-site-packages"])
def tests_gpu(session: nox.Session) -> None:
    """The suite on CuPy, torch:cuda and jax:gpu (where present), numpy as the reference, when a CUDA device exists."""
    major = _cuda_major()
    if major is None:
        session.skip("no CUDA device: nvidia-smi is missing or reports no driver")
    extra = []
    probe = "import importlib.util; print(importlib.util.find_spec('cupy') is not None)"
    if session.run("python", "-c", probe, silent=True, log=False).strip() != "True":
        wheel = {12: "cupy-cuda12x", 13: "cupy-cuda13x"}.get(major)
        if wheel is None:
            session.error(f"no CuPy wheel for CUDA {major}; install CuPy by hand")
        extra = [f"--extra={wheel}"]
    session.run("python", "benchmarks/gpu_env.py", "install", *extra)
    listing = session.run("python", "benchmarks/gpu_env.py", "backends", silent=True)
    backends = str(listing).strip().splitlines()[-1]
    session.log(f"{listing}".strip())
    _pytest(session, backends)


@nox.session
def lint(session: nox.Session) -> None:
    """ruff check, ruff format --check, mypy on the package (``[tool.mypy]`` in pyproject.toml), and the import
    layers contract (``lint-imports``, ``[tool.importlinter]``: every import points down, no circle).

    The package is installed (``-e .``) so mypy sees NumPy's and
    array-api-compat's type information; optional back ends are not installed
    and are ignored by the mypy configuration.
    """
    session.install("ruff", "mypy", "import-linter>=2.1")
    session.install("-e", ".")
    session.run("ruff", "check", ".")
    session.run("ruff", "format", "--check", ".")
    session.run("mypy")
    session.run("lint-imports")
