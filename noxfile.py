"""Test sessions: ``nox -s tests-cpu tests-gpu`` (and ``nox -s lint``).

No session pins a Python version: each runs on the interpreter nox itself
runs on, so CI machines with a single Python work.

* ``tests-cpu`` -- the suite on numpy, array_api_strict (non-default device),
  PyTorch's CPU namespace and JAX (CPU, jit-compiled steps); every one is
  required (missing = failure).
* ``tests-gpu`` -- the same suite on CuPy, compared with the NumPy reference,
  when a CUDA device is present; otherwise the session is skipped with the
  reason.  A requested-but-broken CuPy fails instead of skipping.
* ``lint`` -- ``ruff check``, ``ruff format --check`` and ``mypy``.

``PORTABLE_NN_TORCH_SPEC`` overrides the PyTorch requirement installed for
``tests-cpu`` (default ``torch==2.13.0``, the CPU wheel on our machines; on
other machines use e.g. ``torch --index-url https://download.pytorch.org/whl/cpu``).
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess

import nox

nox.options.sessions = ["lint", "tests-cpu", "tests-gpu"]
nox.options.default_venv_backend = "venv"

TORCH_SPEC = os.environ.get("PORTABLE_NN_TORCH_SPEC", "torch==2.13.0")
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
    session.install(*shlex.split(TORCH_SPEC), *shlex.split(JAX_SPEC))
    _pytest(session, "numpy,array_api_strict,torch,jax")


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


# System site-packages: a CuPy preinstalled on a GPU machine (which may have
# no internet) is used as it is; otherwise a wheel for the driver is installed.
@nox.session(name="tests-gpu", venv_params=["--system-site-packages"])
def tests_gpu(session: nox.Session) -> None:
    """The suite on CuPy (and numpy as the reference) when a CUDA device exists."""
    major = _cuda_major()
    if major is None:
        session.skip("no CUDA device: nvidia-smi is missing or reports no driver")
    session.install("-e", ".[test]")
    probe = "import importlib.util; print(importlib.util.find_spec('cupy') is not None)"
    if session.run("python", "-c", probe, silent=True, log=False).strip() != "True":
        wheel = {12: "cupy-cuda12x", 13: "cupy-cuda13x"}.get(major)
        if wheel is None:
            session.error(f"no CuPy wheel for CUDA {major}; install CuPy by hand")
        session.install(wheel)
    _pytest(session, "numpy,cupy")


@nox.session
def lint(session: nox.Session) -> None:
    """ruff check, ruff format --check, and mypy on the package (``[tool.mypy]`` in pyproject.toml).

    The package is installed (``-e .``) so mypy sees NumPy's and
    array-api-compat's type information; optional back ends are not installed
    and are ignored by the mypy configuration.
    """
    session.install("ruff", "mypy")
    session.install("-e", ".")
    session.run("ruff", "check", ".")
    session.run("ruff", "format", "--check", ".")
    session.run("mypy")
