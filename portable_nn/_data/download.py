"""Downloading the MNIST files: mirrors in order, pinned SHA-256, atomic writes.

A file is streamed to a temporary ``.part`` file next to its destination,
hashed while it arrives, and renamed into place only when its length and
SHA-256 digest are right; anything else deletes the temporary file, so an
interrupted or tampered download never leaves a file that later loads.

A download is bounded in size and time: it stops as soon as more bytes arrive
than expected (the pinned :data:`SIZES`, or
:data:`portable_nn._base.limits.DOWNLOAD_BYTES`), and a whole call gives up after
``deadline`` seconds (default :data:`DEFAULT_DEADLINE_S`), so a hostile or
broken mirror can neither fill the disk nor hang the program.
"""

from __future__ import annotations

import hashlib
import os
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Sequence
from http.client import HTTPException, HTTPResponse
from pathlib import Path

from .._base import limits
from .._base.atomic import atomic_write

#: Public mirrors of the canonical files, tried in order.
MIRRORS = (
    "https://storage.googleapis.com/cvdf-datasets/mnist/",
    "https://ossci-datasets.s3.amazonaws.com/mnist/",
)

#: SHA-256 of the canonical gzip files.
SHA256 = {
    "train-images-idx3-ubyte.gz": "440fcabf73cc546fa21475e81ea370265605f56be210a4024d2ca8f203523609",
    "train-labels-idx1-ubyte.gz": "3552534a0a558bbed6aed32b30c495cca23d567ec52cac8be1a0730e8010255c",
    "t10k-images-idx3-ubyte.gz": "8d422c7b0a1c1c79245a5bcf07fe86e33eeafee792b84584aec276f5a2dbc4e6",
    "t10k-labels-idx1-ubyte.gz": "f7ae60f92e00ec6debd23a6088c31dbd2371eca3ffa0defaefb259924204aec6",
}

#: Exact sizes in bytes of the canonical gzip files; a download of one stops as soon as more arrives.
SIZES = {
    "train-images-idx3-ubyte.gz": 9_912_422,
    "train-labels-idx1-ubyte.gz": 28_881,
    "t10k-images-idx3-ubyte.gz": 1_648_877,
    "t10k-labels-idx1-ubyte.gz": 4_542,
}

#: Seconds a whole :func:`download_file` call may take, all mirrors together.
DEFAULT_DEADLINE_S = 600.0

_CHUNK = 1 << 16


class DownloadError(OSError):
    """No mirror delivered a file with the pinned digest (or the deadline passed).

    The message lists every URL tried and why it failed.
    """


def _progress(name: str, done: int, total: int | None) -> None:
    if total:
        width = 30
        filled = min(width, int(width * done / total))
        bar = "#" * filled + "." * (width - filled)
        sys.stderr.write(f"\r{name} [{bar}] {done / total:4.0%} of {total / 1e6:.1f} MB")
    else:
        sys.stderr.write(f"\r{name} {done / 1e6:.1f} MB")
    sys.stderr.flush()


class _Opener:
    """``urlopen`` in a helper thread, so the deadline holds while a server trickles its response headers.

    ``urlopen`` reads the status line and headers itself, each receive waiting
    up to ``timeout``; a server sending one byte just inside that keeps it
    there indefinitely.  Waiting for the thread with the time left bounds it;
    a response that arrives after the deadline is closed by the thread.
    """

    def __init__(self, url: str, timeout: float) -> None:
        self.url, self.timeout = url, timeout
        self.lock = threading.Lock()
        self.done = threading.Event()
        self.abandoned = False
        self.response: HTTPResponse | None = None
        self.error: BaseException | None = None

    def _run(self) -> None:
        response: HTTPResponse | None = None
        error: BaseException | None = None
        try:
            response = urllib.request.urlopen(self.url, timeout=self.timeout)
        except BaseException as exc:  # handed to the caller's thread
            error = exc
        try:
            with self.lock:
                if not self.abandoned:
                    self.response, self.error = response, error
                    return
                if response is not None:
                    response.close()
                if isinstance(error, urllib.error.HTTPError):
                    error.close()
        finally:
            error = None  # no frame -> exception -> traceback -> frame cycle keeps a socket for the collector
            self.done.set()

    def open(self, deadline_at: float) -> HTTPResponse:
        """The response once its headers are in; ``DownloadError`` if ``deadline_at`` passes first."""
        threading.Thread(target=self._run, name="portable_nn-download", daemon=True).start()
        finished = self.done.wait(max(0.0, deadline_at - time.monotonic()))
        with self.lock:
            if not finished and self.response is None and self.error is None:
                self.abandoned = True
                raise DownloadError(f"{self.url}: no response headers within the deadline; aborted")
            response, error, self.response, self.error = self.response, self.error, None, None
        if error is not None:
            try:
                raise error
            finally:
                error = None
        assert response is not None
        return response


def _fetch_one(
    url: str, dest: Path, sha256: str, *, timeout: float, show_progress: bool, max_bytes: int, deadline_at: float
) -> None:
    """Stream ``url`` into ``dest`` atomically; raise on any failure, leaving nothing behind.

    Stops as soon as more than ``max_bytes`` arrive (or are announced) and when
    ``time.monotonic()`` passes ``deadline_at`` (checked between reads; each
    socket operation waits at most ``min(timeout, time left)``).
    """
    digest = hashlib.sha256()
    done = 0
    left = deadline_at - time.monotonic()
    if left <= 0:
        raise DownloadError(f"{url}: not started, the deadline has passed")
    response = _Opener(url, min(timeout, left)).open(deadline_at)
    with atomic_write(dest, "wb") as out, response:
        length = response.headers.get("Content-Length")
        total = int(length) if length is not None and length.isdigit() else None
        if total is not None and total > max_bytes:
            raise DownloadError(f"{url}: the server announces {total} bytes, more than the {max_bytes} bytes expected")
        # read1: return what one receive delivers, so a trickling server cannot stall a read past the deadline
        read = getattr(response, "read1", response.read)
        while chunk := read(_CHUNK):
            done += len(chunk)
            if done > max_bytes:
                raise DownloadError(f"{url}: received more than the {max_bytes} bytes expected; aborted")
            if time.monotonic() > deadline_at:
                raise DownloadError(f"{url}: not finished within the deadline ({done} bytes received); aborted")
            out.write(chunk)
            digest.update(chunk)
            if show_progress:
                _progress(dest.name, done, total)
        if show_progress:
            sys.stderr.write("\n")
        if total is not None and done != total:
            raise DownloadError(f"{url}: transfer interrupted after {done} of {total} bytes")
        if digest.hexdigest() != sha256:
            raise DownloadError(f"{url}: SHA-256 {digest.hexdigest()} does not match the pinned {sha256}")


def download_file(
    name: str,
    dest_dir: str | os.PathLike[str],
    *,
    mirrors: Sequence[str] = MIRRORS,
    sha256: str | None = None,
    timeout: float = 30.0,
    progress: bool | None = None,
    max_bytes: int | None = None,
    deadline: float = DEFAULT_DEADLINE_S,
) -> Path:
    """Download ``name`` into ``dest_dir`` from the first mirror that serves it intact.

    Each mirror's file is streamed into a temporary file, hashed as it
    arrives and renamed to ``dest_dir / name`` only when complete and the
    digest matches; on any failure the temporary is removed and an existing
    file of that name is left untouched.

    Parameters
    ----------
    name:
        File name, e.g. ``"train-images-idx3-ubyte.gz"``.
    sha256:
        Expected digest; defaults to the pinned :data:`SHA256` entry.
    timeout:
        Seconds each connect or receive may wait.
    progress:
        Show a progress bar on stderr (default: when stderr is a terminal).
    max_bytes:
        Most bytes accepted; a download stops as soon as more arrive (or a
        larger ``Content-Length`` is announced).  Default: the pinned
        :data:`SIZES` entry when the pinned digest is used, otherwise
        :data:`portable_nn._base.limits.DOWNLOAD_BYTES` (256 MiB,
        ``$PORTABLE_NN_MAX_DOWNLOAD_BYTES``).
    deadline:
        Seconds the whole call may take, all mirrors together (default 600).
        Kept while the response headers arrive (however slowly) and checked
        between received chunks, so a server that trickles bytes fails after
        it; once it passes, no further mirror is tried.

    Raises
    ------
    DownloadError
        Every mirror failed, or the deadline passed; the message lists each
        failure.
    ValueError
        ``deadline`` or ``timeout`` is not positive, ``max_bytes`` is not a
        positive integer, or ``name`` has no pinned digest and ``sha256`` is
        not given.
    """
    if not deadline > 0:
        raise ValueError(f"download_file: deadline must be a positive number of seconds; got {deadline!r}")
    if not timeout > 0:
        raise ValueError(f"download_file: timeout must be a positive number of seconds; got {timeout!r}")
    deadline_at = time.monotonic() + deadline
    if max_bytes is None and sha256 is None and name in SIZES:
        cap = SIZES[name]
    else:
        cap = limits.DOWNLOAD_BYTES.value(max_bytes)
    dest_dir = Path(dest_dir)
    dest_dir.mkdir(parents=True, exist_ok=True)
    if sha256 is None and name not in SHA256:
        raise ValueError(f"download_file: no pinned SHA-256 for {name!r}; pass sha256= (known: {', '.join(SHA256)})")
    expected = sha256 if sha256 is not None else SHA256[name]
    show = sys.stderr.isatty() if progress is None else progress
    failures = []
    for mirror in mirrors:
        url = mirror.rstrip("/") + "/" + name
        if time.monotonic() >= deadline_at:
            failures.append(f"  {url}: not tried, the {deadline:g} s deadline has passed")
            continue
        try:
            _fetch_one(
                url,
                dest_dir / name,
                expected,
                timeout=timeout,
                show_progress=show,
                max_bytes=cap,
                deadline_at=deadline_at,
            )
            return dest_dir / name
        except (urllib.error.URLError, HTTPException, OSError) as exc:
            text = str(exc)
            failures.append(f"  {text}" if text.startswith(url) else f"  {url}: {text}")
    raise DownloadError(f"could not download {name}:\n" + "\n".join(failures))
