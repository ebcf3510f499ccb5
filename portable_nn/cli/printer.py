"""The lines ``portable-nn train`` prints while it trains: one per epoch, a progress bar, the summary.

It also keeps the last completed epoch's parameters, so an interrupt that
lands mid-epoch (or between the training core committing an epoch and this
printer hearing of it) saves exactly the epoch the summary describes.
"""

from __future__ import annotations

import sys
from typing import Any

from .._train.loop import EpochResult
from .common import say, stderr_usable


class EpochPrinter:
    """Per-epoch lines, an optional tqdm bar within each epoch, and the final summary."""

    def __init__(self, net: Any, epochs: int, n_train: int, quiet: bool) -> None:
        self.net, self.epochs, self.n_train, self.quiet = net, epochs, n_train, quiet
        self.history: list[EpochResult] = []
        #: The last completed epoch and the parameters it ended with, assigned in one statement so a
        #: second Ctrl-C (which raises anywhere) can never leave them out of step with each other.
        self.committed: tuple[EpochResult, Any] | None = None  # (result, the network's State then)
        self.bar: Any = None
        self.use_bar = not quiet and stderr_usable() and sys.stderr.isatty() and _tqdm() is not None

    def start_epoch(self) -> None:
        if self.use_bar:
            self.bar = _tqdm()(
                total=self.n_train,
                desc=f"epoch {len(self.history) + 1}/{self.epochs}",
                unit="img",
                leave=False,
                file=sys.stderr,
            )

    def on_batch(self, m: int) -> None:
        if self.bar is not None:
            try:
                self.bar.update(m)
            except OSError:  # the terminal went away: no more bar
                self.bar, self.use_bar = None, False

    def on_epoch(self, result: EpochResult) -> None:
        # Arrays are never updated in place (every step rebinds), so keeping references is a snapshot.
        self.committed = (result, self.net.training_state(False))
        self.close()
        self.history.append(result)
        if not self.quiet:
            extras = ""
            if result.training_cost is not None:
                extras += f"; training cost {result.training_cost:.4f}"
            if result.training_correct is not None:
                extras += f"; training {result.training_correct} / {result.n_train}"
            if result.evaluation_cost is not None:
                extras += f"; evaluation cost {result.evaluation_cost:.4f}"
            say(
                f"epoch {result.epoch + 1}/{self.epochs}: {result.correct} / {result.n_test} "
                f"({100 * (result.accuracy or 0.0):.2f}%) {result.seconds:.2f} s {self.net.backend.describe()}" + extras
            )
        if len(self.history) < self.epochs:
            self.start_epoch()

    def close(self) -> None:
        if self.bar is not None:
            bar, self.bar = self.bar, None
            try:
                bar.close()
            except OSError:
                self.use_bar = False

    def restore_committed(self) -> None:
        """Put the network and the history back to the end of the last completed epoch.

        An interrupt can land between the training core committing an epoch's
        parameters and ``on_epoch`` being called (or inside it); the network may
        then hold parameters that no printed line or history row describes.
        """
        if self.committed is None:
            self.history.clear()
            return
        result, state = self.committed
        self.net.set_training_state(state)
        if result not in self.history:
            self.history.append(result)
        del self.history[self.history.index(result) + 1 :]

    def summary(self) -> str:
        if not self.history:
            return "no epoch completed"
        best = max(self.history, key=lambda r: r.correct or 0)
        last = self.history[-1]
        total = sum(r.seconds for r in self.history)
        final = f"{last.correct} / {last.n_test} ({100 * (last.accuracy or 0.0):.2f}%)"
        top = f"{best.correct} / {best.n_test} ({100 * (best.accuracy or 0.0):.2f}%)"
        return (
            f"final: {final} after epoch {last.epoch + 1}; best: epoch {best.epoch + 1}, {top}; "
            f"{len(self.history)} epoch(s) in {total:.1f} s on {self.net.backend.describe()}"
        )


def _tqdm() -> Any:
    try:
        from tqdm import tqdm
    except ModuleNotFoundError as exc:
        if exc.name is None or exc.name.split(".")[0] != "tqdm":
            raise  # tqdm is there but broken: a bug to show, not a missing extra
        return None
    return tqdm
