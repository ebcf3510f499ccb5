"""How much of a NumPy conv epoch is the C allocator's: ch6-conv1, batch 100, per checkout and malloc setting.

    python benchmarks/conv_allocator.py --checkout /tmp/before --checkout . --data-dir ../shared/data/mnist

At batch 100 one step of ``ch6-conv1`` allocates about 27 MB of temporaries (im2col patches, feature
maps, pooling masks).  glibc returns the top of its heap to the OS whenever more than its trim
threshold (twice the largest freed mmap chunk, here about 11.5 MB) lies free there, and takes it back
with page faults at the next step, unless a live block higher up happens to pin it.  Whether one does
depends on everything the process allocated before: the same code runs in one mode or the other after
an unrelated ``import``.  Each case below runs in a fresh process (one warm-up epoch, then ``--rounds``
epochs of ``--n`` images) and reports min and median seconds per epoch and the minor page faults of one
epoch: as it is, after importing a few unrelated standard modules, and with glibc told to keep its heap
(``MALLOC_MMAP_THRESHOLD_=32 MiB``: every temporary from the heap; ``MALLOC_TRIM_THRESHOLD_=256 MiB``:
nothing returned to the OS between steps).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks import machine

WORKER = r"""
import json, os, resource, sys, time
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
sys.path.insert(0, os.getcwd())
if os.environ.get("EXTRA_IMPORTS"):
    import email.mime.text, http.client, xml.dom.minidom  # unrelated modules: another heap layout
import numpy as np
from portable_nn import Dataset, network3
try:
    from portable_nn._data.mnist import load_mnist
except ImportError:  # the layout before the sub-packages
    from portable_nn.mnist import load_mnist
(x, y), _ = load_mnist(os.environ["DATA_DIR"], download=False, dtype="uint8")
n, rounds = int(os.environ["N"]), int(os.environ["ROUNDS"])
data = Dataset(np.ascontiguousarray(x[:n]), np.ascontiguousarray(y[:n]), divisor=255.0)
net = network3.preset_network("ch6-conv1", 100, seed=0)
net.SGD(data, 1, 100, 0.1, None, None, quiet=True)
seconds = [net.SGD(data, 1, 100, 0.1, None, None, quiet=True)[0].seconds for _ in range(rounds)]
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
net.SGD(data, 1, 100, 0.1, None, None, quiet=True)
faults = resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before
print(json.dumps({"seconds": seconds, "faults": faults}))
"""

CASES = (
    ("as it is", {}),
    ("after unrelated imports", {"EXTRA_IMPORTS": "1"}),
    (
        "glibc told to keep its heap",
        {"MALLOC_MMAP_THRESHOLD_": str(32 << 20), "MALLOC_TRIM_THRESHOLD_": str(256 << 20)},
    ),
)


def run(checkout: Path, extra: dict[str, str], args: argparse.Namespace) -> dict[str, object]:
    env = {**machine.worker_env(checkout), "DATA_DIR": args.data_dir, "N": str(args.n), "ROUNDS": str(args.rounds)}
    env.update(extra)
    proc = subprocess.run(
        [sys.executable, "-c", WORKER], cwd=checkout, env=env, capture_output=True, text=True, timeout=900
    )
    if proc.returncode != 0:
        raise RuntimeError(proc.stderr[-2000:])
    return dict(json.loads(proc.stdout.strip().splitlines()[-1]))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--checkout", type=Path, action="append", required=True, help="a checkout (repeat)")
    parser.add_argument("--data-dir", required=True)
    parser.add_argument("--n", type=int, default=2000, help="images per epoch")
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args(argv)
    print(f"ch6-conv1, NumPy, float32, batch 100, {args.n} images per epoch, {args.rounds} epochs per case")
    print("| checkout | case | min s | median s | minor page faults per epoch |")
    print("|---|---|---|---|---|")
    for checkout in args.checkout:
        for name, extra in CASES:
            result = run(checkout.resolve(), extra, args)
            seconds = result["seconds"]
            assert isinstance(seconds, list)
            low, mid = min(seconds), statistics.median(seconds)
            print(f"| {checkout} | {name} | {low:.3f} | {mid:.3f} | {result['faults']:,} |", flush=True)
    print(f"1-minute load at the end: {machine.load1():.2f}")
    return 0


if __name__ == "__main__":
    os.environ.setdefault("PYTHONHASHSEED", "0")
    raise SystemExit(main())
