"""Reproduce the book's chapter-3 results with ``portable_nn.network2``: chapter3.md and its figures.

    python examples/chapter3.py --data-dir ../shared/data/mnist            # everything, ~10 min on 2 cores
    python examples/chapter3.py --data-dir ../shared/data/mnist --quick    # a smoke run, epochs cut short
    python examples/chapter3.py --data-dir ../shared/data/mnist --doc      # update the committed docs/chapter3.md

Results go to ``--out DIR`` (default ``./portable-nn-runs/chapter3/``); only
``--doc`` writes ``docs/``.  Every number and figure in docs/chapter3.md comes
from the run that wrote it.
The settings are the book's (chapter 3, "Improving the way neural networks
learn"); the MNIST copy in ../shared/data/mnist differs from the book's
pickle by at most one grey level per pixel.
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from _outputs import add_output_options, check_data_dir, output_dir

import portable_nn
from portable_nn import network2


@dataclass
class Run:
    """One training of the book's, with what it printed."""

    label: str
    sizes: list[int]
    eta: float
    lmbda: float
    epochs: int
    init: str
    evaluation: str  # "test" or "validation"
    book: float | None  # the book's accuracy in percent
    train_size: int = 50_000
    monitor_training_cost: bool = False
    results: list[portable_nn.EpochResult] = field(default_factory=list)
    seconds: float = 0.0


def train(run: Run, data: tuple, backend: str, seed: int) -> Run:
    training, validation, test = data
    evaluation = test if run.evaluation == "test" else validation
    net = network2.Network(run.sizes, cost=network2.CrossEntropyCost, xp=backend, seed=seed)
    if run.init == "large":
        net.large_weight_initializer()
    start = time.perf_counter()
    net.SGD(
        training[: run.train_size],
        run.epochs,
        10,
        run.eta,
        lmbda=run.lmbda,
        evaluation_data=evaluation,
        monitor_evaluation_accuracy=True,
        monitor_training_cost=run.monitor_training_cost,
        quiet=True,
        on_epoch=run.results.append,
    )
    run.seconds = time.perf_counter() - start
    best = max(r.correct for r in run.results)
    print(
        f"{run.label}: best {100 * best / run.results[-1].n_test:.2f}%, "
        f"final {100 * run.results[-1].accuracy:.2f}% in {run.seconds:.0f} s",
        flush=True,
    )
    return run


def plot(runs: list[Run], path: Path, series: str, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.2))
    for run in runs:
        epochs = [r.epoch for r in run.results]
        if series == "training_cost":
            values = [r.training_cost for r in run.results]
        else:
            values = [100 * r.accuracy for r in run.results]
        ax.plot(epochs, values, label=run.label)
    ax.set_xlabel("epoch")
    ax.set_ylabel(
        "cost on the training data" if series == "training_cost" else f"accuracy (%) on {runs[0].evaluation} data"
    )
    ax.set_title(title)
    ax.grid(True, alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data-dir", default=None, help="directory of the four MNIST IDX files")
    parser.add_argument("--backend", default="numpy")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--quick", action="store_true", help="a few epochs per row (smoke run, not for the docs)")
    add_output_options(parser, "chapter3")
    args = parser.parse_args(argv)
    check_data_dir(args.data_dir)
    out = output_dir(args, "chapter3") / "chapter3.md"
    cut = (lambda e: max(1, e // 30)) if args.quick else (lambda e: e)

    started = time.perf_counter()
    load_before = os.getloadavg()
    data = portable_nn.load_data_wrapper(args.data_dir, download=False)
    table = [
        Run("[784,30,10] cross-entropy", [784, 30, 10], 0.5, 0.0, cut(30), "large", "test", 95.49),
        Run("[784,100,10] cross-entropy", [784, 100, 10], 0.5, 0.0, cut(30), "large", "test", 96.82),
        Run("[784,100,10] λ=5.0, η=0.5", [784, 100, 10], 0.5, 5.0, cut(30), "large", "validation", 97.92),
        Run("[784,100,10] λ=5.0, η=0.1, 60 epochs", [784, 100, 10], 0.1, 5.0, cut(60), "large", "validation", 98.04),
    ]
    overfit = [
        Run("1,000 images, λ=0", [784, 30, 10], 0.5, 0.0, cut(400), "large", "test", None, 1000, True),
        Run("1,000 images, λ=0.1", [784, 30, 10], 0.5, 0.1, cut(400), "large", "test", None, 1000, True),
    ]
    inits = [
        Run("old: N(0,1) weights", [784, 30, 10], 0.1, 5.0, cut(30), "large", "validation", None),
        Run("new: N(0,1/n_in) weights", [784, 30, 10], 0.1, 5.0, cut(30), "default", "validation", None),
    ]
    for run in [*table, *overfit, *inits]:
        train(run, data, args.backend, args.seed)

    stem = out.with_suffix("")
    plot(overfit, Path(f"{stem}_overfitting_cost.png"), "training_cost", "Cost on 1,000 training images")
    plot(overfit, Path(f"{stem}_overfitting_accuracy.png"), "accuracy", "Test accuracy, trained on 1,000 images")
    plot(inits, Path(f"{stem}_initialization.png"), "accuracy", "Old vs new weight initialisation, [784,30,10]")

    net = network2.Network([2, 2], xp=args.backend)
    lines = [
        "# Chapter 3 reproduced with `portable_nn.network2`",
        "",
        f"Generated by `python examples/chapter3.py{' --quick' * args.quick}{' --doc' * args.doc}` on "
        f"{datetime.date.today().isoformat()} in {(time.perf_counter() - started) / 60:.1f} minutes: every number "
        "and figure below comes from that run.",
        "",
        f"Backend {net.backend.describe()}, float64, seed {args.seed}, mini-batch 10, cross-entropy cost, "
        f"{platform.processor() or platform.machine()} with {os.cpu_count()} logical cores, Python "
        f"{sys.version.split()[0]}, NumPy {np.__version__}.  Load average (1, 5, 15 min) at the start "
        f"{', '.join(f'{v:.1f}' for v in load_before)}, at the end {', '.join(f'{v:.1f}' for v in os.getloadavg())}: "
        "the machine is shared, so s/epoch is what this run saw, not a benchmark (see docs/benchmarks.md).",
        "The data is the local MNIST copy (`../shared/data/mnist`), which differs from the book's pickle by at "
        "most one grey level per pixel (about 3% of pixels); training uses the first 50,000 training images, "
        "validation the last 10,000, as in the book.",
        "",
        "## The book's headline numbers",
        "",
        "Accuracy on the data the book quotes (test or validation). *Best* is the best epoch, *final* the last.",
        "",
        "| setting | epochs | init | data | book | ours, best (epoch) | ours, final | Δ best − book | s/epoch |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for run in table:
        best = max(run.results, key=lambda r: r.correct)
        final = run.results[-1]
        lines.append(
            f"| {run.label} | {run.epochs} | {run.init} | {run.evaluation} | {run.book:.2f}% | "
            f"{100 * best.accuracy:.2f}% ({best.epoch}) | {100 * final.accuracy:.2f}% | "
            f"{100 * best.accuracy - run.book:+.2f} pp | {np.mean([r.seconds for r in run.results]):.2f} |"
        )
    lines += [
        "",
        "s/epoch is the training time of an epoch (evaluation excluded), mean over the run.",
        "",
        "## Overfitting and L2 regularisation",
        "",
        "1,000 training images, `[784,30,10]`, η=0.5, evaluated on the 10,000 test images after every epoch.",
        "",
        "| setting | epochs | test accuracy, best (epoch) | final | training cost, final |",
        "| --- | --- | --- | --- | --- |",
    ]
    for run in overfit:
        best = max(run.results, key=lambda r: r.correct)
        lines.append(
            f"| {run.label} | {run.epochs} | {100 * best.accuracy:.2f}% ({best.epoch}) | "
            f"{100 * run.results[-1].accuracy:.2f}% | {run.results[-1].training_cost:.4f} |"
        )
    lines += [
        "",
        f"![training cost]({stem.name}_overfitting_cost.png)",
        f"![test accuracy]({stem.name}_overfitting_accuracy.png)",
        "",
        "## Old vs new weight initialisation",
        "",
        "`[784,30,10]`, λ=5.0, η=0.1, validation accuracy per epoch.",
        "",
        "| initialisation | epoch 0 | best (epoch) | final |",
        "| --- | --- | --- | --- |",
    ]
    for run in inits:
        best = max(run.results, key=lambda r: r.correct)
        lines.append(
            f"| {run.label} | {100 * run.results[0].accuracy:.2f}% | {100 * best.accuracy:.2f}% ({best.epoch}) | "
            f"{100 * run.results[-1].accuracy:.2f}% |"
        )
    lines += ["", f"![initialisation]({stem.name}_initialization.png)", ""]
    out.write_text("\n".join(lines))
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
