"""One-off costs users pay outside the epochs: ingestion into ``SGD``, and the README main job.

Each job runs in its own process (started by :func:`benchmarks.workers.run_job`)
and prints one JSON object on its last stdout line.

    python -m benchmarks.oneoff ingestion --data-dir DIR --rounds 3
    python -m benchmarks.oneoff readme --data-dir DIR [--epochs 30]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any


def ingestion(data_dir: str, rounds: int) -> dict[str, Any]:
    """Seconds ``SGD`` spends outside its epoch, per data form and call.

    Each round loads the book's pairs afresh (``load_data_wrapper``), builds a
    plain Python list of the same ``(x, y)`` arrays (views into one array, as
    the book's loader makes them) and a list of separately allocated copies
    (the general case: nothing to share), and for each form calls
    ``Network([784, 30, 10], seed=0).SGD(data, 1, 10, 3.0, quiet=True)`` on a
    fresh network twice: the first call on that data object, then a second on
    the same object.  Ingestion = wall time of the call - ``EpochResult.seconds``.
    """
    from portable_nn import Network, load_data_wrapper

    cells: dict[str, list[float]] = {}
    load_seconds = []
    n_pairs = 0
    for _ in range(rounds):
        start = time.perf_counter()
        training_data, _validation, _test = load_data_wrapper(data_dir, download=False)
        load_seconds.append(time.perf_counter() - start)
        n_pairs = len(training_data)
        forms = {
            "loader": training_data,
            "plain list": [(x, y) for x, y in training_data],
            "separate arrays": [(x.copy(), y.copy()) for x, y in training_data],
        }
        for form, data in forms.items():
            for call in ("first call", "second call"):
                net = Network([784, 30, 10], "numpy", seed=0)
                start = time.perf_counter()
                history = net.SGD(data, 1, 10, 3.0, quiet=True)
                wall = time.perf_counter() - start
                cells.setdefault(f"{form}, {call}", []).append(wall - history[0].seconds)
        del training_data, forms
    return {"cells": cells, "load_data_wrapper": load_seconds, "n_pairs": n_pairs}


def _console_script() -> list[str]:
    """``portable-nn`` next to this interpreter (the venv's), else on PATH, else ``python -m portable_nn``."""
    beside = Path(sys.executable).parent / "portable-nn"
    if beside.exists():
        return [str(beside)]
    found = shutil.which("portable-nn")
    return [found] if found else [sys.executable, "-m", "portable_nn"]


def readme_job(data_dir: str, epochs: int | None) -> dict[str, Any]:
    """Run the README's main job as a child process; its peak RSS, wall time and epoch times.

    ``portable-nn train --data-dir DIR --seed 0 --save model.npz --history h.json --quiet``
    (``--epochs`` only when given).  Peak RSS is ``getrusage(RUSAGE_CHILDREN)``
    of this process, whose only child is that command.  Also times
    ``portable-nn --version`` (interpreter start + the CLI's imports).
    """
    script = _console_script()
    with tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        subprocess.run([*script, "--version"], capture_output=True, check=True, cwd=tmp)
        startup = time.perf_counter() - start
        cmd = [*script, "train", "--data-dir", data_dir, "--seed", "0", "--save", "model.npz"]
        if epochs is not None:
            cmd += ["--epochs", str(epochs)]
        cmd += ["--history", "h.json", "--quiet"]
        start = time.perf_counter()
        proc = subprocess.run(cmd, capture_output=True, text=True, cwd=tmp, check=False)
        wall = time.perf_counter() - start
        rss_mb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
        if proc.returncode != 0:
            return {"error": f"exit status {proc.returncode}: {proc.stderr.strip()[-500:]}"}
        from portable_nn.history import read_history  # the file holds the rows and the run's settings

        history = read_history(Path(tmp) / "h.json")
    shown = [Path(script[0]).name, *script[1:]]
    return {
        "command": " ".join([*shown, *cmd[len(script) :]]),
        "wall": wall,
        "epoch_seconds": [row["seconds"] for row in history],
        "final_accuracy": history[-1]["accuracy"] if history else None,
        "rss_mb": rss_mb,
        "startup": startup,
        "summary": proc.stdout.strip().splitlines()[-1:] or [""],
    }


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("job", choices=("ingestion", "readme"))
    parser.add_argument("--data-dir", required=True)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--epochs", type=int, default=None)
    args = parser.parse_args(argv)
    if args.job == "ingestion":
        reply = ingestion(args.data_dir, args.rounds)
    else:
        reply = readme_job(args.data_dir, args.epochs)
    reply["pid"] = os.getpid()
    print(json.dumps(reply))
    return 0


if __name__ == "__main__":
    sys.exit(main())
