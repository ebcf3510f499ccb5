"""Seconds per epoch of the book's one-conv-pool network (ch6-conv1), float32, in one run.

    python benchmarks/bench_conv.py --data-dir ../shared/data/mnist --n 5000 --rounds 3 --out docs/bench_conv.md

Rows: ``portable_nn.network3`` on NumPy and on PyTorch (the package's step),
the same architecture written directly in PyTorch eager (autograd,
``torch.nn.functional.conv2d``/``max_pool2d``, SGD by hand) and in JAX (one
``jax.jit`` of a whole epoch, ``lax.fori_loop``, ``lax.conv_general_dilated``).
Every row: conv 20 5x5 + 2x2 max-pool, sigmoid; FC 100 sigmoid; softmax +
log-likelihood; eta 0.1; the same ``n`` images in an order shuffled per epoch.
Batch 10 and batch 100.  Rows alternate across ``rounds`` (the machine is
shared); the table shows the fastest round, scaled to 50,000 images.  BLAS
and PyTorch run single-threaded unless ``--threads`` says otherwise (set
before NumPy is imported).  Finally a cProfile of 200 portable_nn NumPy steps
at batch 10: the per-call profile of a step.
"""

from __future__ import annotations

import argparse
import cProfile
import io
import os
import platform
import pstats
import sys
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _threads(argv: list[str]) -> str:
    for i, a in enumerate(argv):
        if a == "--threads" and i + 1 < len(argv):
            return argv[i + 1]
        if a.startswith("--threads="):
            return a.split("=", 1)[1]
    return "1"


THREADS = _threads(sys.argv)
for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, THREADS)

import numpy as np  # noqa: E402

sys.path.insert(0, str(ROOT))
from portable_nn import network3  # noqa: E402
from portable_nn._data.mnist import load_mnist  # noqa: E402


def portable(xp: str) -> Callable[[np.ndarray, np.ndarray, int, int], Callable[[], float]]:
    def prepare(images: np.ndarray, labels: np.ndarray, batch: int, seed: int) -> Callable[[], float]:
        from portable_nn import Dataset

        net = network3.preset_network("ch6-conv1", batch, xp=xp, seed=seed)
        data = Dataset(images, labels, divisor=255.0)

        def epoch() -> float:
            return net.SGD(data, 1, batch, 0.1, None, None, quiet=True)[0].seconds

        return epoch

    return prepare


def torch_eager(images: np.ndarray, labels: np.ndarray, batch: int, seed: int) -> Callable[[], float]:
    import torch
    import torch.nn.functional as F  # noqa: N812

    torch.set_num_threads(int(THREADS))
    g = torch.Generator().manual_seed(seed)
    x_all = torch.from_numpy(images.astype(np.float32) / np.float32(255.0))
    y_all = torch.from_numpy(labels)
    params = [
        (torch.randn((20, 1, 5, 5), generator=g) * (1 / 125) ** 0.5).requires_grad_(),
        torch.randn((20,), generator=g).requires_grad_(),
        (torch.randn((2880, 100), generator=g) * 0.1).requires_grad_(),
        torch.randn((100,), generator=g).requires_grad_(),
        torch.zeros((100, 10), requires_grad=True),
        torch.zeros((10,), requires_grad=True),
    ]
    rng = np.random.default_rng(seed)
    n = images.shape[0]

    def epoch() -> float:
        start = time.perf_counter()
        order = torch.from_numpy(rng.permutation(n))
        w1, b1, w2, b2, w3, b3 = params
        for k in range(0, n, batch):
            idx = order[k : k + batch]
            x = x_all[idx].view(-1, 1, 28, 28)
            a = torch.sigmoid(F.max_pool2d(F.conv2d(x, w1), 2) + b1.view(1, -1, 1, 1)).flatten(1)
            a = torch.sigmoid(a @ w2 + b2)
            loss = F.cross_entropy(a @ w3 + b3, y_all[idx])
            loss.backward()
            with torch.no_grad():
                for p in params:
                    p -= 0.1 * p.grad
                    p.grad = None
        return time.perf_counter() - start

    return epoch


def jax_jit(images: np.ndarray, labels: np.ndarray, batch: int, seed: int) -> Callable[[], float]:
    import jax
    import jax.numpy as jnp

    rng = np.random.default_rng(seed)
    x_all = jnp.asarray(images.astype(np.float32) / np.float32(255.0))
    y_all = jnp.asarray(np.eye(10, dtype=np.float32)[labels])
    params = (
        jnp.asarray(rng.normal(0, (1 / 125) ** 0.5, (20, 1, 5, 5)), dtype=jnp.float32),
        jnp.asarray(rng.normal(0, 1, (20,)), dtype=jnp.float32),
        jnp.asarray(rng.normal(0, 0.1, (2880, 100)), dtype=jnp.float32),
        jnp.asarray(rng.normal(0, 1, (100,)), dtype=jnp.float32),
        jnp.zeros((100, 10), jnp.float32),
        jnp.zeros((10,), jnp.float32),
    )
    n = images.shape[0]
    full = n - n % batch

    def loss(p, x, y):
        w1, b1, w2, b2, w3, b3 = p
        x = x.reshape(-1, 1, 28, 28)
        c = jax.lax.conv_general_dilated(x, w1, (1, 1), "VALID")
        pooled = jax.lax.reduce_window(c, -jnp.inf, jax.lax.max, (1, 1, 2, 2), (1, 1, 2, 2), "VALID")
        a = jax.nn.sigmoid(pooled + b1.reshape(1, -1, 1, 1)).reshape(x.shape[0], -1)
        a = jax.nn.sigmoid(a @ w2 + b2)
        return -jnp.mean(jnp.sum(y * jax.nn.log_softmax(a @ w3 + b3), axis=1))

    @jax.jit
    def run(p, rows):
        def body(i, p):
            idx = rows[i]
            g = jax.grad(loss)(p, x_all[idx], y_all[idx])
            return tuple(a - 0.1 * b for a, b in zip(p, g))

        return jax.lax.fori_loop(0, rows.shape[0], body, p)

    state = {"p": params}

    def epoch() -> float:
        start = time.perf_counter()
        order = rng.permutation(n)[:full].reshape(-1, batch)
        state["p"] = run(state["p"], jnp.asarray(order))
        jax.block_until_ready(state["p"])
        return time.perf_counter() - start

    epoch()  # compile outside the timing
    return epoch


ROWS: dict[str, Callable[..., Callable[[], float]]] = {
    "portable_nn numpy": portable("numpy"),
    "portable_nn torch": portable("torch"),
    "PyTorch eager (autograd, F.conv2d)": torch_eager,
    "JAX jit (whole epoch, lax.conv)": jax_jit,
}


def machine_paths_removed(text: str) -> str:
    """``text`` with this checkout's and this interpreter's absolute paths made relative.

    ``/home/me/portable_nn/portable_nn/conv.py`` -> ``portable_nn/conv.py``;
    ``/.../lib/python3.11/site-packages/numpy/...`` -> ``site-packages/numpy/...``;
    the standard library -> ``stdlib/...``: a generated page shows no machine's paths.
    """
    import site
    import sysconfig

    prefixes = {str(ROOT) + os.sep: ""}
    for path in {*site.getsitepackages(), sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"]}:
        prefixes[path.rstrip(os.sep) + os.sep] = "site-packages/"
    prefixes[sysconfig.get_paths()["stdlib"].rstrip(os.sep) + os.sep] = "stdlib/"
    for prefix in sorted(prefixes, key=len, reverse=True):  # the longest (most specific) first
        text = text.replace(prefix, prefixes[prefix])
    return text


def profile_step(images: np.ndarray, labels: np.ndarray, top: int) -> str:
    from portable_nn import Dataset

    net = network3.preset_network("ch6-conv1", 10, seed=0)
    data = Dataset(images[:2000], labels[:2000], divisor=255.0)
    net.SGD(data, 1, 10, 0.1, None, None, quiet=True)  # warm up
    profiler = cProfile.Profile()
    profiler.enable()
    net.SGD(data, 1, 10, 0.1, None, None, quiet=True)
    profiler.disable()
    out = io.StringIO()
    pstats.Stats(profiler, stream=out).sort_stats("tottime").print_stats(top)
    return machine_paths_removed(out.getvalue())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data-dir", default=str(ROOT.parent / "shared" / "data" / "mnist"))
    parser.add_argument("--n", type=int, default=5000, help="training images per timed epoch (scaled to 50,000)")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--batches", default="10,100")
    parser.add_argument("--threads", default="1", help="BLAS/torch threads (default 1)")
    parser.add_argument("--out", help="also write the report (markdown) here")
    parser.add_argument("--profile-top", type=int, default=25)
    args = parser.parse_args(argv)
    (train_x, train_y), _ = load_mnist(args.data_dir, download=False, dtype="uint8")  # pixels 0..255
    images, labels = train_x[: args.n], train_y[: args.n]
    scale = 50_000 / args.n
    batches = [int(b) for b in args.batches.split(",")]
    best: dict[tuple[str, int], float] = {}
    for batch in batches:
        epochs = {name: make(images, labels, batch, 0) for name, make in ROWS.items()}
        for epoch in epochs.values():
            epoch()  # warm-up round (compiles, caches device data)
        for _ in range(args.rounds):
            for name, epoch in epochs.items():
                seconds = epoch() * scale
                best[(name, batch)] = min(best.get((name, batch), float("inf")), seconds)
                print(f"batch {batch:4d}  {name:38s} {seconds:8.2f} s/epoch", flush=True)
    load = os.getloadavg()
    lines = [
        "# Convolutional network benchmark (ch6-conv1, float32)",
        "",
        f"`python benchmarks/bench_conv.py --n {args.n} --rounds {args.rounds} --threads {args.threads}`: "
        f"{platform.machine()}, {os.cpu_count()} cores (shared; load average {load[0]:.1f} at the end), "
        f"{args.threads} BLAS/torch thread(s).  Seconds per 50,000-image epoch (the fastest of {args.rounds} "
        f"alternating rounds over {args.n} images, scaled), training only.",
        "",
        "| implementation | " + " | ".join(f"batch {b}" for b in batches) + " |",
        "| --- | " + " | ".join("---" for _ in batches) + " |",
    ]
    for name in ROWS:
        lines.append(f"| {name} | " + " | ".join(f"{best[(name, b)]:.1f}" for b in batches) + " |")
    eager = "PyTorch eager (autograd, F.conv2d)"
    for name in ("portable_nn numpy", "portable_nn torch"):
        ratios = ", ".join(f"batch {b}: {best[(name, b)] / best[(eager, b)]:.2f}×" for b in batches)
        lines.append(f"\n{name} / PyTorch eager: {ratios}")
    lines += ["", "## Profile of portable_nn numpy, batch 10 (one epoch of 2,000 images, by own time)", "", "```"]
    lines += profile_step(train_x, train_y, args.profile_top).strip().splitlines()
    lines += ["```"]
    text = "\n".join(lines) + "\n"
    print(text)
    if args.out:
        from portable_nn._base.atomic import atomic_write

        with atomic_write(args.out, "w") as handle:
            handle.write(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
