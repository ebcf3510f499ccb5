"""Signal handlers for a block of code, put back afterwards (the command line's ``train`` and ``sweep``).

``SIGHUP`` (a closed terminal or SSH session) and ``SIGTERM`` stop a run the
way Ctrl-C does: what was completed is kept.
"""

from __future__ import annotations

import signal
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from types import FrameType

#: The signals that mean "stop": SIGINT (Ctrl-C), SIGTERM, SIGHUP, where the platform has them.
STOP_SIGNALS: tuple[signal.Signals, ...] = tuple(
    getattr(signal, name) for name in ("SIGINT", "SIGTERM", "SIGHUP") if hasattr(signal, name)
)

Handler = Callable[[int, FrameType | None], object]


@contextmanager
def handling(signals: tuple[signal.Signals, ...], handler: Handler) -> Iterator[None]:
    """``handler`` for each of ``signals`` inside the ``with`` block; the previous handlers come back after it."""
    previous = {sig: signal.signal(sig, handler) for sig in signals}
    try:
        yield
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)
