#!/usr/bin/env bash
# Everything a lent GPU is for, in one run of under 9 minutes, every log and the benchmark JSON in OUT_DIR.
#
#   benchmarks/gpu_check.sh OUT_DIR          # on the device machine: benchmarks/gpu_check.sh "$OUT"
#
# Steps (each with a time cap, each logged to OUT_DIR/<step>.log, summarised in OUT_DIR/summary.txt):
#   machine    nvidia-smi and the library versions (numpy, cupy, torch, jax)
#   install    a venv over the system site-packages; benchmarks/gpu_env.py installs only what is
#              missing, from the wheelhouse with --no-index, then the project (--no-deps --no-build-isolation -e .)
#   tests-gpu  what `nox -s tests-gpu` runs: the suite on numpy + cupy (+ torch:cuda, jax:gpu where they
#              see a GPU), required backends, fail-fast (-x); only the GPU tests (-k "$GPU_CHECK_TESTS_K")
#   train-gpu  examples/train_gpu.py for 3 epochs
#   bench      benchmarks/gpu_bench.py: seconds per epoch (float32, [784,30,10] and [784,100,10], batch
#              1/10/100/1000, ch6-conv1 at batch 10/100) on the GPU and this machine's CPU -> bench.json
# Without a CUDA device the GPU steps are skipped with the reason and the script still finishes (status 0).
# The exit status is 1 when a step that ran failed or ran out of time.
#
# The device machine gets the checkout only (it has no package index and no MNIST), so first, here:
#   mkdir -p .gpu-wheels .gpu-data
#   cp /work/shared/gpu/wheels/*.whl .gpu-wheels/                     # array-api-compat/-extra/-strict
#   python -m pip download --no-deps -d .gpu-wheels "setuptools>=70.1"   # editable installs without `wheel`
#   cp -r /work/shared/data/mnist .gpu-data/                           # the four IDX files (~11 MB)
# and carry both folders (both are git-ignored; see docs/gpu.md).
#
# Variables: GPU_CHECK_DATA (MNIST directory, default .gpu-data/mnist), GPU_CHECK_WHEELS (default
# .gpu-wheels), GPU_CHECK_PYTHON (default python3), GPU_CHECK_BUDGET (seconds for the whole run, default
# 510), GPU_CHECK_TESTS_K (pytest -k for tests-gpu, default "cupy or cuda or gpu"; "" for the whole
# suite), GPU_CHECK_TINY=1 (synthetic data and tiny sizes: the smoke run tests/test_gpu_offline.py makes).
set -uo pipefail

if [ $# -ne 1 ]; then
    echo "usage: benchmarks/gpu_check.sh OUT_DIR" >&2
    exit 2
fi
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
cd "$ROOT" || exit 2
OUT="$1"
PYTHON="${GPU_CHECK_PYTHON:-python3}"
TINY="${GPU_CHECK_TINY:-0}"
DATA="${GPU_CHECK_DATA:-.gpu-data/mnist}"
WHEELS="${GPU_CHECK_WHEELS:-.gpu-wheels}"
BUDGET="${GPU_CHECK_BUDGET:-510}"
# The GPU-parametrised tests (ids with cupy, torch:cuda, jax:gpu) and those named for the GPU: the rest
# is tests-cpu's, and the whole suite with four backends may not fit the cap.  "" runs everything.
TESTS_K="${GPU_CHECK_TESTS_K-cupy or cuda or gpu}"

# -- everything that can be wrong before any work starts ------------------------------------------
if ! mkdir -p "$OUT" 2>/dev/null || [ ! -w "$OUT" ]; then
    echo "gpu_check.sh: error: OUT_DIR $OUT cannot be created or written" >&2
    exit 2
fi
OUT="$(cd "$OUT" && pwd)"
if [ "$TINY" != 1 ] && [ ! -d "$DATA" ]; then
    echo "gpu_check.sh: error: no MNIST directory $DATA (set GPU_CHECK_DATA, or cp -r /work/shared/data/mnist .gpu-data/)" >&2
    exit 2
fi
if ! command -v "$PYTHON" >/dev/null 2>&1; then
    echo "gpu_check.sh: error: no Python interpreter $PYTHON (set GPU_CHECK_PYTHON)" >&2
    exit 2
fi
WORK="$(mktemp -d "${TMPDIR:-/tmp}/gpu-check.XXXXXXXX")"
trap 'rm -rf "$WORK"' EXIT
exec > >(tee "$OUT/gpu_check.log") 2>&1

START=$SECONDS
FAILED=0
: > "$OUT/summary.txt"
note() { echo "[$(date -u +%H:%M:%S)] $*"; }
left() { echo $((BUDGET - (SECONDS - START))); }
record() { printf '%-10s %-8s %5ss  %s\n' "$1" "$2" "$3" "$4" | tee -a "$OUT/summary.txt"; }

# step NAME CAP COMMAND...: run with a cap (never beyond the run's budget), log to OUT/NAME.log
step() {
    local name="$1" cap="$2"
    shift 2
    local remaining
    remaining=$(($(left) - 5))
    if [ "$remaining" -lt "$cap" ]; then cap=$remaining; fi
    if [ "$cap" -le 0 ]; then
        record "$name" "not-run" 0 "the run's budget of ${BUDGET}s was spent"
        FAILED=1
        return 1
    fi
    note "$name (cap ${cap}s): $*"
    local began=$SECONDS rc
    timeout --kill-after=10 "$cap" "$@" > "$OUT/$name.log" 2>&1
    rc=$?
    tail -n 15 "$OUT/$name.log"
    if [ $rc -eq 0 ]; then
        record "$name" ok $((SECONDS - began)) "$name.log"
    elif [ $rc -eq 124 ] || [ $rc -eq 137 ]; then
        record "$name" timeout $((SECONDS - began)) "cut at ${cap}s, see $name.log"
        FAILED=1
    else
        record "$name" failed $((SECONDS - began)) "exit status $rc, see $name.log"
        FAILED=1
    fi
    return $rc
}

skip() { record "$1" skipped 0 "$2"; note "SKIP $1: $2"; }

note "gpu_check.sh in $ROOT -> $OUT (budget ${BUDGET}s$([ "$TINY" = 1 ] && echo ', tiny smoke run'))"
git -C "$ROOT" log -1 --format='commit %H %s' 2>/dev/null | tee "$OUT/commit.txt"

# -- machine -------------------------------------------------------------------------------------------
GPU_REASON=""
if ! command -v nvidia-smi >/dev/null 2>&1; then
    GPU_REASON="no CUDA device: nvidia-smi is not installed"
    echo "$GPU_REASON" > "$OUT/nvidia-smi.txt"
elif ! nvidia-smi > "$OUT/nvidia-smi.txt" 2>&1 || ! nvidia-smi -L 2>/dev/null | grep -q '^GPU '; then
    GPU_REASON="no CUDA device: nvidia-smi lists no GPU (see nvidia-smi.txt)"
fi
cat "$OUT/nvidia-smi.txt"

# -- install (offline) -------------------------------------------------------------------------------
VENV="$WORK/venv"
if ! "$PYTHON" -m venv --system-site-packages "$VENV" > "$OUT/venv.log" 2>&1; then
    rm -rf "$VENV"  # no ensurepip (Debian without python3-venv): borrow the system pip
    "$PYTHON" -m venv --system-site-packages --without-pip "$VENV" >> "$OUT/venv.log" 2>&1 || {
        record venv failed 0 "see venv.log"
        exit 1
    }
fi
VPY="$VENV/bin/python"
export PIP_DISABLE_PIP_VERSION_CHECK=1
if [ -d "$WHEELS" ]; then
    step install 90 "$VPY" benchmarks/gpu_env.py install --wheelhouse "$WHEELS"
else
    note "no wheelhouse $WHEELS: missing packages come from pip's own configuration"
    step install 90 "$VPY" benchmarks/gpu_env.py install
fi
INSTALLED=$?
step versions 60 "$VPY" - <<'EOF'
import importlib, platform
print("python", platform.python_version(), platform.platform())
for name in ("numpy", "array_api_compat", "array_api_extra", "cupy", "torch", "jax", "jaxlib", "portable_nn"):
    try:
        module = importlib.import_module(name)
    except Exception as exc:
        print(f"{name}: not importable ({type(exc).__name__}: {exc})")
        continue
    print(f"{name} {getattr(module, '__version__', '?')}  {getattr(module, '__file__', '')}")
    try:
        if name == "cupy":
            rt = module.cuda.runtime
            print(f"  CUDA runtime {rt.runtimeGetVersion()}, driver {rt.driverGetVersion()}, devices {rt.getDeviceCount()}")
        if name == "torch":
            print(f"  torch.version.cuda {module.version.cuda}, cuda available {module.cuda.is_available()}")
            if module.cuda.is_available():
                print(f"  {module.cuda.get_device_name(0)}")
        if name == "jax":
            print(f"  devices {module.devices()}")
    except Exception as exc:
        print(f"  ({type(exc).__name__}: {exc})")
EOF
cat "$OUT/versions.log" > "$OUT/versions.txt"

# -- data ------------------------------------------------------------------------------------------
if [ "$TINY" = 1 ]; then
    DATA="$WORK/mnist"
    "$VPY" -c "import sys; sys.path.insert(0, '.'); from pathlib import Path; from benchmarks.data import write_synthetic_mnist; write_synthetic_mnist(Path(sys.argv[1]), 200, 50)" "$DATA"
fi
DATA="$(cd "$DATA" && pwd)"

# -- the GPU steps -----------------------------------------------------------------------------------
if [ "$INSTALLED" -ne 0 ]; then
    skip tests-gpu "the install failed (install.log)"
    skip train-gpu "the install failed (install.log)"
elif [ -n "$GPU_REASON" ]; then
    skip tests-gpu "$GPU_REASON"
    skip train-gpu "$GPU_REASON"
else
    BACKENDS="$("$VPY" benchmarks/gpu_env.py backends 2> "$OUT/backends.txt" | tail -n 1)"
    cat "$OUT/backends.txt"
    note "PORTABLE_NN_BACKENDS=$BACKENDS"
    TESTS=(-k "$TESTS_K")
    [ "$TINY" = 1 ] && TESTS+=(tests/test_backprop.py)
    step tests-gpu 240 env PORTABLE_NN_BACKENDS="$BACKENDS" PORTABLE_NN_REQUIRE_BACKENDS=1 \
        PORTABLE_NN_MNIST_DIR="$DATA" "$VPY" -m pytest -x -q -p no:cacheprovider --durations=15 "${TESTS[@]}"
    step train-gpu 60 "$VPY" examples/train_gpu.py --data-dir "$DATA" --epochs 3
fi

# -- benchmark rows (GPU rows skipped with the reason when there is no GPU) ---------------------------
if [ "$INSTALLED" -ne 0 ]; then
    skip bench "the install failed (install.log)"
elif [ "$TINY" = 1 ]; then
    step bench 60 "$VPY" benchmarks/gpu_bench.py --synthetic --tiny --out "$OUT/bench.json" --budget 30
else
    BENCH_BUDGET=$(($(left) - 30))
    [ "$BENCH_BUDGET" -gt 170 ] && BENCH_BUDGET=170
    step bench $((BENCH_BUDGET + 25)) "$VPY" benchmarks/gpu_bench.py --data-dir "$DATA" --out "$OUT/bench.json" \
        --budget "$BENCH_BUDGET"
fi

note "done in $((SECONDS - START)) s$([ -n "$GPU_REASON" ] && echo "; GPU steps skipped: $GPU_REASON")"
cat "$OUT/summary.txt"
exit $FAILED
