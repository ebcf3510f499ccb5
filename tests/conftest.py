"""Backend fixtures and a per-backend summary of the run.

``PORTABLE_NN_BACKENDS=numpy,torch`` restricts the backends (an entry may
name a device: ``torch:cuda``, ``jax:gpu``, ``cupy:1``);
``PORTABLE_NN_REQUIRE_BACKENDS=1`` turns an unavailable backend into a test
failure instead of a skip (the nox GPU session sets it, so a broken CuPy
cannot pass as "skipped").  ``PORTABLE_NN_MNIST_DIR`` points the real-data
tests at a directory of MNIST IDX files (default ``../shared/data/mnist``).
"""

from __future__ import annotations

import os
from collections import Counter, defaultdict
from pathlib import Path

import pytest
from helpers import device_for, make_backend, requested_backends, x64_scope

from portable_nn import BackendUnavailableError

_COUNTS: dict[str, Counter] = defaultdict(Counter)
_BACKEND_OF: dict[str, str] = {}


@pytest.fixture(params=requested_backends())
def backend(request):
    """A resolved :class:`portable_nn.Backend` for every requested backend."""
    return make_backend(request.param)


@pytest.fixture(autouse=True)
def _jax_x64_unless_float32(request):
    """JAX test cases run in 64-bit mode unless parametrised with ``dtype="float32"`` (see ``x64_scope``)."""
    params = getattr(getattr(request.node, "callspec", None), "params", {})
    with x64_scope(params.get("backend", params.get("backend_name")), params.get("dtype")):
        yield


@pytest.fixture(scope="session")
def mnist_dir() -> Path:
    """Directory with the four MNIST IDX files, or skip with the reason."""
    default = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "mnist"
    path = Path(os.environ.get("PORTABLE_NN_MNIST_DIR", default))
    if not (path / "train-images-idx3-ubyte.gz").is_file() and not (path / "train-images-idx3-ubyte").is_file():
        pytest.skip(f"no MNIST IDX files in {path} (set PORTABLE_NN_MNIST_DIR)")
    return path


def pytest_collection_modifyitems(items):
    for item in items:
        callspec = getattr(item, "callspec", None)
        if callspec is not None:
            name = callspec.params.get("backend", callspec.params.get("backend_name"))
            if isinstance(name, str):
                _BACKEND_OF[item.nodeid] = name


def pytest_runtest_logreport(report):
    name = _BACKEND_OF.get(report.nodeid)
    if name is None:
        return
    if report.when == "call" or (report.when == "setup" and not report.passed):
        _COUNTS[name][report.outcome] += 1


def pytest_terminal_summary(terminalreporter):
    if not _COUNTS:
        return
    terminalreporter.section("tests per backend")
    for name in requested_backends():
        counts = _COUNTS.get(name, Counter())
        try:
            device = device_for(name)
        except BackendUnavailableError:
            device = None
        where = f" on {device}" if device is not None else ""
        terminalreporter.write_line(
            f"{name}{where}: {counts['passed']} passed, {counts['failed']} failed, {counts['skipped']} skipped"
        )
