"""Stopping a training run cleanly on SIGINT (Ctrl-C), SIGTERM and SIGHUP (terminal or SSH session closed).

The first signal asks training to stop at the next mini-batch; the network
is then put back to the end of the last completed epoch and saved.  A second
signal stops at once: a save under way is abandoned (the old file stays, no
temporary is left), and the final message says which files were written.
"""

from __future__ import annotations

import signal
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType

from .._base.signals import STOP_SIGNALS, handling
from .common import warn

#: The signals that stop training: those of the platform among SIGINT, SIGTERM and SIGHUP.


class StopRequest:
    """The stop signals ask training to stop at the next mini-batch; a second one stops at once."""

    def __init__(self) -> None:
        self.signal_name: str | None = None
        self.signum = 0

    @property
    def status(self) -> int:
        """The exit status for the signal received: 128 + its number (130 SIGINT, 143 SIGTERM, 129 SIGHUP)."""
        return 128 + (self.signum or signal.SIGINT)

    def _handler(self, signum: int, frame: FrameType | None) -> None:
        if self.signal_name is not None:
            raise KeyboardInterrupt
        self.signum = signum
        self.signal_name = signal.Signals(signum).name
        warn(f"\n{self.signal_name}: stopping at the next mini-batch (again to stop at once)")

    @contextmanager
    def installed(self) -> Iterator[StopRequest]:
        """Handle :data:`STOP_SIGNALS` inside the ``with`` block; the previous handlers come back after it."""
        with handling(STOP_SIGNALS, self._handler):
            yield self

    def check(self) -> None:
        """Raise ``KeyboardInterrupt`` once a stop signal has arrived."""
        if self.signal_name is not None:
            raise KeyboardInterrupt
