"""The GPU run's offline path, exercised on the CPU: only the GPU itself is new on the device.

``benchmarks/gpu_env.py`` (what ``nox -s tests-gpu`` and ``benchmarks/gpu_check.sh``
run) installs into a venv that sees the system site-packages, from a wheelhouse
with ``--no-index``; the test builds that wheelhouse from the distributions
installed here, so it needs no network and commits no wheels.  Also: the
``name:device`` entries of ``PORTABLE_NN_BACKENDS``, and the noxfile's choice of
PyTorch index for ``tests-cpu``.
"""

from __future__ import annotations

import base64
import hashlib
import http.server
import importlib.metadata
import importlib.util
import json
import os
import re
import shutil
import subprocess
import sys
import threading
import time
import types
import zipfile
from pathlib import Path

import pytest
from helpers import device_for, make_backend, requested_backends

from portable_nn import BackendUnavailableError

ROOT = Path(__file__).resolve().parents[1]
GPU_ENV = ROOT / "benchmarks" / "gpu_env.py"


def _load(name: str, path: Path) -> types.ModuleType:
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


gpu_env = _load("gpu_env", GPU_ENV)


# -- a wheelhouse made from what is installed here ------------------------------------------------
def _record_line(arcname: str, data: bytes) -> str:
    digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
    return f"{arcname},sha256={digest},{len(data)}"


def repack_wheel(name: str, directory: Path) -> Path:
    """A wheel of installed distribution ``name`` (its files under site-packages, fresh RECORD) in ``directory``."""
    dist = importlib.metadata.distribution(name)
    files = [f for f in dist.files or [] if not str(f).startswith("..") and "__pycache__" not in str(f)]
    dist_info = next(f for f in files if f.name == "METADATA").parent
    wheel_meta = Path(str(dist.locate_file(dist_info / "WHEEL"))).read_text()
    tags = [line.split(":", 1)[1].strip() for line in wheel_meta.splitlines() if line.startswith("Tag:")]
    interpreters, abis, platforms = (sorted({t.split("-")[i] for t in tags}) for i in range(3))
    stem = re.sub(r"[-_.]+", "_", dist.metadata["Name"])
    path = directory / f"{stem}-{dist.version}-{'.'.join(interpreters)}-{'.'.join(abis)}-{'.'.join(platforms)}.whl"
    skip = {"RECORD", "INSTALLER", "REQUESTED", "direct_url.json"}
    records = []
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as wheel:
        for f in files:
            if f.parent == dist_info and f.name in skip:
                continue
            data = Path(str(dist.locate_file(f))).read_bytes()
            wheel.writestr(str(f), data)
            records.append(_record_line(str(f), data))
        records.append(f"{dist_info}/RECORD,,")
        wheel.writestr(f"{dist_info}/RECORD", "\n".join(records) + "\n")
    return path


def _copy_project(dest: Path) -> Path:
    """The package, its metadata, gpu_env.py and a small test file, copied (the install must not touch the tree)."""
    ignore = shutil.ignore_patterns("__pycache__", "*.egg-info")
    shutil.copytree(ROOT / "portable_nn", dest / "portable_nn", ignore=ignore)
    for name in ("pyproject.toml", "README.md", "benchmarks/gpu_env.py", "tests/conftest.py", "tests/helpers.py"):
        (dest / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(ROOT / name, dest / name)
    shutil.copy2(ROOT / "tests" / "test_backprop.py", dest / "tests" / "test_backprop.py")
    return dest


def _clean_env() -> dict[str, str]:
    """This environment without PYTHONPATH (the venv must import its own install) and without pip's links/index."""
    drop = {"PYTHONPATH", "PIP_FIND_LINKS", "PIP_NO_INDEX", "PIP_INDEX_URL", "PIP_EXTRA_INDEX_URL", "VIRTUAL_ENV"}
    env = {k: v for k, v in os.environ.items() if k not in drop and not k.startswith("PORTABLE_NN_")}
    env["PIP_CONFIG_FILE"] = os.devnull  # no pip.conf find-links/index: only what the command line says
    return env


@pytest.fixture
def system_venv(tmp_path) -> Path:
    """A fresh venv over the base interpreter's site-packages (as on a GPU node), pip borrowed from there."""
    venv = tmp_path / "venv"
    subprocess.run(
        [sys.executable, "-m", "venv", "--system-site-packages", "--without-pip", str(venv)], check=True, timeout=60
    )
    python = venv / "bin" / "python"
    probe = subprocess.run([python, "-m", "pip", "--version"], capture_output=True, text=True, env=_clean_env())
    if probe.returncode != 0:
        pytest.skip(f"the base interpreter has no pip for a --without-pip venv: {probe.stderr.strip()}")
    return python


def _status(python: Path) -> dict:
    out = subprocess.run(
        [python, str(GPU_ENV), "status"], capture_output=True, text=True, check=True, env=_clean_env(), timeout=60
    )
    return json.loads(out.stdout)


def test_offline_install_from_a_wheelhouse_then_the_suite_runs(system_venv, tmp_path):
    missing = [name for name, row in _status(system_venv)["required"].items() if not row["ok"]]
    wheelhouse = tmp_path / "wheels"
    wheelhouse.mkdir()
    for name in missing:
        try:
            repack_wheel(name, wheelhouse)
        except importlib.metadata.PackageNotFoundError:
            pytest.skip(f"{name} is missing both in the base interpreter and here: no wheel to offer")
    project = _copy_project(tmp_path / "project")
    env = {**_clean_env(), "PORTABLE_NN_WHEELHOUSE": str(wheelhouse)}
    start = time.perf_counter()
    proc = subprocess.run(
        [system_venv, str(GPU_ENV), "install", "--project", str(project)],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "--no-index" in proc.stdout and "--no-build-isolation" in proc.stdout
    after = _status(system_venv)["required"]
    assert all(row["ok"] for row in after.values()), after
    where = subprocess.run(
        [system_venv, "-c", "import portable_nn; print(portable_nn.__file__)"],
        capture_output=True,
        text=True,
        env=_clean_env(),
        cwd=tmp_path,
    )
    assert Path(where.stdout.strip()).is_relative_to(project), where  # the editable install of the copy
    suite = subprocess.run(
        [system_venv, "-m", "pytest", "-q", "-p", "no:cacheprovider", "tests/test_backprop.py"],
        capture_output=True,
        text=True,
        cwd=project,
        env={**_clean_env(), "PORTABLE_NN_BACKENDS": "numpy,array_api_strict", "PORTABLE_NN_REQUIRE_BACKENDS": "1"},
        timeout=300,
    )
    assert suite.returncode == 0, suite.stdout[-3000:] + suite.stderr[-2000:]
    assert re.search(r"array_api_strict on .*: \d+ passed, 0 failed, 0 skipped", suite.stdout), suite.stdout
    print(f"offline install + suite: {time.perf_counter() - start:.1f} s, wheels {sorted(os.listdir(wheelhouse))}")


def test_a_package_missing_from_the_wheelhouse_is_named(system_venv, tmp_path):
    empty = tmp_path / "wheels"
    empty.mkdir()
    project = _copy_project(tmp_path / "project")
    proc = subprocess.run(
        [system_venv, str(GPU_ENV), "install", "--wheelhouse", str(empty), "--extra", "no-such-dist-for-portable-nn"],
        capture_output=True,
        text=True,
        env=_clean_env(),
        timeout=120,
    )
    assert proc.returncode == 2
    error = proc.stderr.strip().splitlines()[-1]
    assert error.startswith("gpu_env.py: error: missing package(s) ") and "no-such-dist-for-portable-nn" in error
    assert str(empty) in error and "Traceback" not in proc.stderr
    assert not list(project.glob("*.egg-info"))  # stopped before installing anything of the project


def test_a_wheelhouse_that_is_not_a_directory_is_refused(tmp_path):
    proc = subprocess.run(
        [sys.executable, str(GPU_ENV), "install", "--wheelhouse", str(tmp_path / "nothere")],
        capture_output=True,
        text=True,
        env=_clean_env(),
        timeout=60,
    )
    assert proc.returncode == 2 and "is not a directory" in proc.stderr and "Traceback" not in proc.stderr


def test_required_versions_match_pyproject():
    tomllib = pytest.importorskip("tomllib")
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    declared = {}
    for req in [*project["dependencies"], *project["optional-dependencies"]["test"]]:
        name, spec = re.match(r"([A-Za-z0-9_.-]+)(?:\[[^\]]*\])?(.*)", req).groups()
        declared[gpu_env.canonical(name)] = spec.strip()
    for name, spec in {**gpu_env.REQUIRED, **gpu_env.OPTIONAL}.items():
        if gpu_env.canonical(name) in declared:
            assert spec == declared[gpu_env.canonical(name)], name
    build = tomllib.loads((ROOT / "pyproject.toml").read_text())["build-system"]["requires"]
    assert build == ["setuptools>=64"]  # gpu_env.required(): >=64 with the wheel package, else >=70.1


def test_version_tuple():
    assert gpu_env.version_tuple("2.6.1rc1") == (2, 6, 1)
    assert gpu_env.version_tuple("2.13.0+cpu") == (2, 13, 0)
    assert gpu_env.version_tuple("65.5.0") >= gpu_env.version_tuple("64")


@pytest.mark.skipif(shutil.which("nvidia-smi") is not None, reason="a CUDA machine: the listing includes its GPUs")
def test_backends_listing_without_a_gpu():
    proc = subprocess.run([sys.executable, str(GPU_ENV), "backends"], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip().splitlines()[-1] == "numpy,cupy"  # CuPy always: a broken one must fail
    assert "torch:cuda left out" in proc.stderr and "jax:gpu left out" in proc.stderr


# -- PORTABLE_NN_BACKENDS entries with a device ------------------------------------------------
def test_backend_entries_name_a_device(monkeypatch):
    pytest.importorskip("torch")
    monkeypatch.setenv("PORTABLE_NN_BACKENDS", "numpy,torch:cpu,jax:cpu")
    assert requested_backends() == ("numpy", "torch:cpu", "jax:cpu")
    backend = make_backend("torch:cpu")
    assert backend.name == "torch" and str(backend.device) == "cpu"
    monkeypatch.setenv("PORTABLE_NN_BACKENDS", "numpy,tensorflow:gpu")
    with pytest.raises(pytest.UsageError, match="tensorflow:gpu"):
        requested_backends()


def test_a_device_the_machine_lacks_is_unavailable():
    torch = pytest.importorskip("torch")
    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    with pytest.raises(BackendUnavailableError, match="torch:cuda: no such device here"):
        device_for("torch:cuda")
    with pytest.raises(BackendUnavailableError, match="numpy:gpu"):
        device_for("numpy:gpu")


# -- tests-cpu: PyTorch's CPU index only when it answers ------------------------------------------
@pytest.fixture
def noxfile(monkeypatch):
    """The noxfile, imported with a stand-in ``nox`` module (nox itself need not be installed here)."""
    stub = types.ModuleType("nox")
    stub.options = types.SimpleNamespace()
    stub.Session = object
    stub.session = lambda *a, **k: a[0] if a and callable(a[0]) else (lambda f: f)
    monkeypatch.setitem(sys.modules, "nox", stub)
    return _load("noxfile_under_test", ROOT / "noxfile.py")


class _Session:
    def __init__(self) -> None:
        self.lines: list[str] = []

    def log(self, line: str) -> None:
        self.lines.append(line)


class _Quiet(http.server.BaseHTTPRequestHandler):
    def do_HEAD(self) -> None:
        self.send_response(200)
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


def test_tests_cpu_uses_the_cpu_index_only_when_it_answers(noxfile, monkeypatch):
    monkeypatch.setattr(noxfile, "_cuda_major", lambda: None)
    monkeypatch.setattr(noxfile.sys, "platform", "linux")
    monkeypatch.setattr(noxfile, "TORCH_SPEC", "")
    server = http.server.HTTPServer(("127.0.0.1", 0), _Quiet)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}/whl/cpu"
        monkeypatch.setattr(noxfile, "TORCH_CPU_INDEX", url)
        session = _Session()
        assert noxfile._torch_requirement(session) == ["torch==2.13.0", "--extra-index-url", url]
    finally:
        server.shutdown()
        server.server_close()
    monkeypatch.setattr(noxfile, "TORCH_CPU_INDEX", url)  # the server is gone: connection refused
    session = _Session()
    start = time.perf_counter()
    assert noxfile._torch_requirement(session) == ["torch==2.13.0"]
    assert time.perf_counter() - start < 6.0
    assert "does not answer" in session.lines[-1]
    monkeypatch.setattr(noxfile, "_cuda_major", lambda: 13)
    assert noxfile._torch_requirement(_Session()) == ["torch==2.13.0"]  # CUDA machine: the CUDA build
    monkeypatch.setattr(noxfile, "TORCH_SPEC", "torch --index-url https://example.invalid/x")
    assert noxfile._torch_requirement(_Session()) == ["torch", "--index-url", "https://example.invalid/x"]


# -- benchmarks/gpu_check.sh without a GPU: the GPU steps are skipped, the rest runs and finishes ----------
@pytest.mark.skipif(shutil.which("nvidia-smi") is not None, reason="a CUDA machine: the GPU steps would run")
def test_gpu_check_without_a_gpu_skips_the_gpu_steps_and_finishes(system_venv, tmp_path):
    if shutil.which("bash") is None or shutil.which("timeout") is None:
        pytest.skip("needs bash and coreutils' timeout")
    wheelhouse = tmp_path / "wheels"
    wheelhouse.mkdir()
    for name, row in _status(system_venv)["required"].items():
        if not row["ok"]:
            repack_wheel(name, wheelhouse)
    scratch, out = tmp_path / "tmp", tmp_path / "out"
    scratch.mkdir()
    env = {
        **_clean_env(),
        "GPU_CHECK_TINY": "1",
        "GPU_CHECK_PYTHON": sys.executable,
        "GPU_CHECK_WHEELS": str(wheelhouse),
        "TMPDIR": str(scratch),
    }
    start = time.perf_counter()
    proc = subprocess.run(
        ["bash", str(ROOT / "benchmarks" / "gpu_check.sh"), str(out)],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    seconds = time.perf_counter() - start
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-2000:]
    summary = (out / "summary.txt").read_text()
    for step in ("install", "versions", "bench"):
        assert re.search(rf"^{step} +ok ", summary, re.M), summary
    for step in ("tests-gpu", "train-gpu"):
        assert re.search(rf"^{step} +skipped .*no CUDA device", summary, re.M), summary
    report = json.loads((out / "bench.json").read_text())
    gpu_rows = [r for r in report["rows"] if r["gpu"]]
    assert gpu_rows and all(r["seconds_per_epoch"] is None and r["skipped"].startswith("skipped: ") for r in gpu_rows)
    assert any(r["seconds_per_epoch"] for r in report["rows"] if r["label"] == "portable_nn numpy (cpu)")
    assert all(v is None for v in [c["crossover_batch"] for c in report["crossover"].values()])
    assert "GPU steps skipped: no CUDA device" in (out / "gpu_check.log").read_text()
    assert list(scratch.iterdir()) == []  # the venv and the synthetic data are removed
    print(f"gpu_check.sh (tiny, no GPU): {seconds:.1f} s")


def test_gpu_check_refuses_a_missing_data_dir_before_any_work(tmp_path):
    if shutil.which("bash") is None:
        pytest.skip("needs bash")
    env = {**_clean_env(), "GPU_CHECK_DATA": str(tmp_path / "nothere"), "GPU_CHECK_PYTHON": sys.executable}
    proc = subprocess.run(
        ["bash", str(ROOT / "benchmarks" / "gpu_check.sh"), str(tmp_path / "out")],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == [
        f"gpu_check.sh: error: no MNIST directory {tmp_path / 'nothere'} "
        "(set GPU_CHECK_DATA, or cp -r /work/shared/data/mnist .gpu-data/)"
    ]
    assert not (tmp_path / "out" / "summary.txt").exists()


class _GpuSession(_Session):
    """A stand-in nox session for tests-gpu: records runs, answers the CuPy probe and the backends listing."""

    def __init__(self, has_cupy: bool, listing: str) -> None:
        super().__init__()
        self.runs: list[tuple[tuple[str, ...], dict]] = []
        self.has_cupy, self.listing = has_cupy, listing
        self.posargs: list[str] = []

    def run(self, *args: str, **kwargs: object) -> str:
        self.runs.append((args, kwargs))
        if args[:2] == ("python", "-c"):
            return f"{self.has_cupy}\n"
        if args[-1:] == ("backends",):
            return self.listing
        return ""

    def skip(self, reason: str) -> None:
        raise pytest.skip.Exception(reason)

    def error(self, reason: str) -> None:
        raise RuntimeError(reason)


def test_tests_gpu_installs_offline_then_runs_the_listed_backends(noxfile, monkeypatch):
    monkeypatch.setattr(noxfile, "_cuda_major", lambda: 13)
    session = _GpuSession(has_cupy=True, listing="note: jax ... left out\nnumpy,cupy,torch:cuda\n")
    noxfile.tests_gpu(session)
    commands = [args for args, _ in session.runs]
    assert ("python", "benchmarks/gpu_env.py", "install") in commands  # nothing extra: CuPy is there
    pytest_args, pytest_kwargs = session.runs[-1]
    assert pytest_args[0] == "pytest"
    expected = {"PORTABLE_NN_BACKENDS": "numpy,cupy,torch:cuda", "PORTABLE_NN_REQUIRE_BACKENDS": "1"}
    assert pytest_kwargs["env"] == expected
    session = _GpuSession(has_cupy=False, listing="numpy,cupy")
    noxfile.tests_gpu(session)
    assert ("python", "benchmarks/gpu_env.py", "install", "--extra=cupy-cuda13x") in [a for a, _ in session.runs]
    monkeypatch.setattr(noxfile, "_cuda_major", lambda: None)
    with pytest.raises(pytest.skip.Exception, match="no CUDA device"):
        noxfile.tests_gpu(_GpuSession(has_cupy=False, listing=""))
