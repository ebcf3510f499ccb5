"""What the benchmark ran on: hardware, libraries, BLAS kernels, environment and load."""

from __future__ import annotations

import importlib.util
import os
import platform
import subprocess
import time
from importlib import metadata
from pathlib import Path

#: Set on some machines, these pick a slower OpenBLAS kernel; workers run without them.
BLAS_ENV_VARS = ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")
ROOT = Path(__file__).resolve().parents[1]
#: Distributions whose versions the report lists when installed.
DISTRIBUTIONS = (
    "array-api-compat",
    "array-api-strict",
    "torch",
    "jax",
    "jaxlib",
    "cupy-cuda12x",
    "cupy-cuda13x",
    "threadpoolctl",
    "matplotlib",
)


def has(module: str) -> bool:
    """Whether ``module`` can be imported here (without importing it)."""
    return importlib.util.find_spec(module) is not None


def worker_env(root: str | os.PathLike[str] = ROOT) -> dict[str, str]:
    """Environment for every child process: the BLAS overrides removed, ``root`` (this checkout) importable first."""
    env = {k: v for k, v in os.environ.items() if k not in BLAS_ENV_VARS}
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(root), os.environ.get("PYTHONPATH", "")) if p)
    return env


def blas_env_note() -> str:
    """Which of :data:`BLAS_ENV_VARS` this (parent) process has; workers never have them."""
    found = [f"{k}={os.environ[k]}" for k in BLAS_ENV_VARS if k in os.environ]
    if found:
        return f"set here ({', '.join(found)}); unset in every worker process"
    return "not set (workers run without them either way)"


def blas_info() -> list[dict[str, str]]:
    """The thread pools loaded in this process, per :func:`threadpoolctl.threadpool_info`.

    Called inside a worker after its libraries are imported, so the OpenBLAS
    ``architecture`` entry is the kernel that process actually runs.
    """
    try:
        from threadpoolctl import threadpool_info
    except ImportError:
        return [{"error": "threadpoolctl not installed"}]
    keys = ("user_api", "internal_api", "version", "architecture", "num_threads", "filepath")
    return [{k: str(pool.get(k, "")) for k in keys} for pool in threadpool_info()]


def load1() -> float:
    """The 1-minute load average (``nan`` where the OS has none)."""
    try:
        return os.getloadavg()[0]
    except OSError:
        return float("nan")


def _proc_ticks() -> dict[int, tuple[str, int]]:
    ticks = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        name = stat[stat.index("(") + 1 : stat.rindex(")")]
        fields = stat[stat.rindex(")") + 2 :].split()
        ticks[int(entry.name)] = (name, int(fields[11]) + int(fields[12]))  # utime + stime
    return ticks


def busy_processes(top: int = 3, interval: float = 1.0) -> list[str]:
    """The ``top`` processes by CPU over ``interval`` seconds, from ``/proc`` (Linux only)."""
    if not Path("/proc/self/stat").exists():
        return ["unknown (no /proc)"]
    hz = os.sysconf("SC_CLK_TCK")
    before = _proc_ticks()
    time.sleep(interval)
    after = _proc_ticks()
    usage = [
        (100.0 * (ticks - before[pid][1]) / hz / interval, pid, name)
        for pid, (name, ticks) in after.items()
        if pid in before and pid != os.getpid()
    ]
    usage.sort(reverse=True)
    return [f"{name} (pid {pid}) {cpu:.0f}% CPU" for cpu, pid, name in usage[:top]]


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _memory() -> str:
    try:
        info = dict(line.split(":", 1) for line in Path("/proc/meminfo").read_text().splitlines())
    except (OSError, ValueError):
        return "unknown"
    total, available = (int(info[k].split()[0]) / 1024**2 for k in ("MemTotal", "MemAvailable"))
    return f"{total:.1f} GiB ({available:.1f} GiB available at start)"


def _numpy_blas_build() -> str:
    import numpy as np

    try:
        info = np.show_config(mode="dicts")["Build Dependencies"]["blas"]
        return f"{info.get('name')} {info.get('version', '')}".strip()
    except Exception:  # the layout of show_config differs between NumPy versions
        return "unknown"


def gpu() -> str:
    """``nvidia-smi``'s one-line description of the GPUs, or why there is none."""
    try:
        out = subprocess.run(
            ["nvidia-smi", "--query-gpu=name,memory.total,driver_version", "--format=csv,noheader"],
            capture_output=True,
            text=True,
            timeout=30,
            check=True,
        ).stdout.strip()
        return out or "none"
    except (OSError, subprocess.SubprocessError):
        return "none (no nvidia-smi)"


def cupy_works() -> bool:
    """Whether CuPy imports and ``portable_nn`` can run a kernel on its device."""
    if not has("cupy"):
        return False
    import portable_nn

    try:
        portable_nn.resolve_backend("cupy")
    except portable_nn.BackendUnavailableError:
        return False
    return True


def describe() -> list[tuple[str, str]]:
    """``(item, value)`` rows for the report's Machine section (parent-side facts)."""
    import numpy as np

    import portable_nn

    versions = [f"python {platform.python_version()}", f"numpy {np.__version__}"]
    versions.append(f"portable_nn {portable_nn.__version__}")
    for dist in DISTRIBUTIONS:  # versions from package metadata: the parent imports none of them
        try:
            versions.append(f"{dist} {metadata.version(dist)}")
        except metadata.PackageNotFoundError:
            pass
    return [
        ("CPU", f"{_cpu_model()}, {os.cpu_count()} logical cores"),
        ("memory", _memory()),
        ("OS", f"{platform.system()} {platform.release()}"),
        ("NumPy BLAS (build)", _numpy_blas_build()),
        ("OPENBLAS_CORETYPE / OPENBLAS_L2_SIZE", blas_env_note()),
        ("libraries", ", ".join(versions)),
        ("GPU", gpu()),
    ]
