"""Downloading the MNIST files: mirrors in order, pinned SHA-256, atomic writes.

A file is streamed to a temporary ``.part`` file next to its destination,
hashed while it arrives, and renamed into place only when its length and
SHA-256 digest are right; anything else deletes the temporary file, so an
interrupted or tampered download never leaves a file that later loads.
"""

from __future__ import annotations

import hashlib
import os
import sys
import urllib.error
import urllib.request
from collections.abc import Sequence
from http.client import HTTPException
from pathlib import Path

from .atomic import atomic_write

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

_CHUNK = 1 << 16


class DownloadError(OSError):
    """No mirror delivered a file with the pinned digest."""


def _progress(name: str, done: int, total: int | None) -> None:
    if total:
        width = 30
        filled = int(width * done / total)
        bar = "#" * filled + "." * (width - filled)
        sys.stderr.write(f"\r{name} [{bar}] {done / total:4.0%} of {total / 1e6:.1f} MB")
    else:
        sys.stderr.write(f"\r{name} {done / 1e6:.1f} MB")
    sys.stderr.flush()


def _fetch_one(url: str, dest: Path, sha256: str, timeout: float, show_progress: bool) -> None:
    """Stream ``url`` into ``dest`` atomically; raise on any failure, leaving nothing behind."""
    digest = hashlib.sha256()
    done = 0
    with atomic_write(dest, "wb") as out, urllib.request.urlopen(url, timeout=timeout) as response:
        length = response.headers.get("Content-Length")
        total = int(length) if length is not None and length.isdigit() else None
        while chunk := response.read(_CHUNK):
            out.write(chunk)
            digest.update(chunk)
            done += len(chunk)
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
) -> Path:
    """Download ``name`` into ``dest_dir`` from the first mirror that serves it intact.

    Parameters
    ----------
    name:
        File name, e.g. ``"train-images-idx3-ubyte.gz"``.
    sha256:
        Expected digest; defaults to the pinned :data:`SHA256` entry.
    progress:
        Show a progress bar on stderr (default: when stderr is a terminal).

    Raises
    ------
    DownloadError
        Every mirror failed; the message lists each failure.
    """
    dest_dir = Path(dest_dir)
    dest_dir.mkdir(parents=True, exist_ok=True)
    expected = sha256 if sha256 is not None else SHA256[name]
    show = sys.stderr.isatty() if progress is None else progress
    failures = []
    for mirror in mirrors:
        url = mirror.rstrip("/") + "/" + name
        try:
            _fetch_one(url, dest_dir / name, expected, timeout, show)
            return dest_dir / name
        except (urllib.error.URLError, HTTPException, OSError) as exc:
            failures.append(f"  {url}: {exc}")
    raise DownloadError(f"could not download {name}:\n" + "\n".join(failures))
