"""The downloader against a local HTTP server on 127.0.0.1 serving generated files."""

from __future__ import annotations

import gc
import hashlib
import http.server
import threading
import time
import warnings
from pathlib import Path

import pytest
from test_idx import make_mnist_dir

from portable_nn import load_mnist
from portable_nn._data import download
from portable_nn._data.download import DownloadError, download_file
from portable_nn._data.mnist import FILES


class _Handler(http.server.BaseHTTPRequestHandler):
    """Serves ``server.files`` under ``/good/``; ``/error/`` answers 500; ``/cut/`` stops halfway.

    ``/endless/`` streams bytes without a Content-Length, ``/liar/`` announces
    a Content-Length of 10 GB, ``/trickle/`` sends one byte every 20 ms,
    ``/slowheaders/`` sends its response headers one byte every 50 ms; each
    stops after :data:`_SERVER_LIMIT_S` seconds or when the client hangs up,
    so no test can loop for long.
    """

    def do_GET(self):
        mirror, _, name = self.path.strip("/").partition("/")
        self.server.requests.append(self.path)
        if mirror == "slowheaders":
            header = iter(b"HTTP/1.1 200 OK\r\nX-Padding: " + b"x" * 10_000)
            self._stream(lambda: bytes([next(header)]), pause=0.05)
            return
        body = self.server.files.get(name)
        if mirror == "error" or body is None:
            self.send_error(500 if mirror == "error" else 404)
            return
        self.send_response(200)
        if mirror == "endless":
            self.end_headers()
            self._stream(lambda: b"\x00" * 65536, pause=0.0)
            return
        self.send_header("Content-Length", str(10**10 if mirror == "liar" else len(body)))
        self.end_headers()
        if mirror == "trickle":
            self._stream(lambda: b"x", pause=0.02)
        else:
            self.wfile.write(body[: len(body) // 2] if mirror == "cut" else body)

    def _stream(self, chunk, pause):
        stop = time.monotonic() + _SERVER_LIMIT_S
        try:
            while time.monotonic() < stop:
                data = chunk()
                self.wfile.write(data)
                self.wfile.flush()
                self.server.sent += len(data)
                time.sleep(pause)
        except (BrokenPipeError, ConnectionResetError):
            pass

    def log_message(self, *args):
        pass


_SERVER_LIMIT_S = 5.0


@pytest.fixture
def server():
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    httpd.files, httpd.requests, httpd.sent = {}, [], 0
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    httpd.url = f"http://127.0.0.1:{httpd.server_address[1]}"
    yield httpd
    httpd.shutdown()
    httpd.server_close()


def _serve_payload(server, name="file.gz", size=200_000):
    body = bytes(range(256)) * (size // 256)
    server.files[name] = body
    return body, hashlib.sha256(body).hexdigest()


def _leftovers(directory: Path):
    return sorted(p.name for p in directory.iterdir())


def test_success(server, tmp_path):
    body, digest = _serve_payload(server)
    path = download_file("file.gz", tmp_path, mirrors=[server.url + "/good/"], sha256=digest, progress=True)
    assert path.read_bytes() == body
    assert _leftovers(tmp_path) == ["file.gz"]


def test_digest_mismatch_is_rejected_and_leaves_nothing(server, tmp_path):
    _serve_payload(server)
    with pytest.raises(DownloadError, match=r"SHA-256 .* does not match the pinned 0000"):
        download_file("file.gz", tmp_path, mirrors=[server.url + "/good/"], sha256="0" * 64)
    assert _leftovers(tmp_path) == []


def test_server_error_falls_back_to_second_mirror(server, tmp_path):
    body, digest = _serve_payload(server)
    mirrors = [server.url + "/error/", server.url + "/good/"]
    path = download_file("file.gz", tmp_path, mirrors=mirrors, sha256=digest)
    assert path.read_bytes() == body
    assert server.requests == ["/error/file.gz", "/good/file.gz"]


def test_interrupted_transfer_leaves_nothing(server, tmp_path):
    _, digest = _serve_payload(server)
    with pytest.raises(DownloadError, match=r"cut/file\.gz"):
        download_file("file.gz", tmp_path, mirrors=[server.url + "/cut/"], sha256=digest)
    assert _leftovers(tmp_path) == []


def test_existing_file_is_kept_when_a_download_fails(server, tmp_path):
    _, digest = _serve_payload(server)
    (tmp_path / "file.gz").write_bytes(b"previous")
    with pytest.raises(DownloadError):
        download_file("file.gz", tmp_path, mirrors=[server.url + "/cut/"], sha256=digest)
    assert (tmp_path / "file.gz").read_bytes() == b"previous"
    assert _leftovers(tmp_path) == ["file.gz"]


def test_load_mnist_downloads_missing_files_into_the_cache(server, tmp_path, monkeypatch):
    source = tmp_path / "source"
    source.mkdir()
    make_mnist_dir(source, n_train=6, n_test=2)
    digests = {}
    for stem in FILES.values():
        body = (source / (stem + ".gz")).read_bytes()
        server.files[stem + ".gz"] = body
        digests[stem + ".gz"] = hashlib.sha256(body).hexdigest()
    monkeypatch.setattr(download, "SHA256", digests)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.delenv("PORTABLE_NN_DATA", raising=False)
    (train_x, _), (test_x, _) = load_mnist(mirrors=(server.url + "/error/", server.url + "/good/"))
    assert train_x.shape == (6, 784) and test_x.shape == (2, 784)
    assert sorted(_leftovers(tmp_path / "cache" / "portable_nn" / "mnist")) == sorted(d for d in digests)


def test_no_network_error_says_where_to_put_the_files(server, tmp_path):
    (tmp_path / "offline").mkdir()  # a missing --data-dir is refused before any download (test_idx.py)
    with pytest.raises(DownloadError, match=r"put the four MNIST files .* into .*offline"):
        load_mnist(tmp_path / "offline", mirrors=(server.url + "/error/",))
    assert _leftovers(tmp_path / "offline") == []


class _CountingAtomicWrite:
    """Wraps :func:`atomic_write` to record the most bytes ever written to a temporary file."""

    def __init__(self, real):
        self.real, self.most = real, 0

    def __call__(self, path, mode="wb"):
        outer = self

        class _Counting:
            def __init__(self, handle):
                self.handle, self.written = handle, 0

            def write(self, data):
                self.written += len(data)
                outer.most = max(outer.most, self.written)
                return self.handle.write(data)

        class _Context:
            def __enter__(self):
                self.inner = outer.real(path, mode)
                return _Counting(self.inner.__enter__())

            def __exit__(self, *exc):
                return self.inner.__exit__(*exc)

        return _Context()


def test_endless_stream_stops_at_the_cap_without_writing_past_it(server, tmp_path, monkeypatch):
    _serve_payload(server)
    counting = _CountingAtomicWrite(download.atomic_write)
    monkeypatch.setattr(download, "atomic_write", counting)
    start = time.monotonic()
    with pytest.raises(DownloadError, match=r"endless/file\.gz: received more than the 300000 bytes expected"):
        download_file("file.gz", tmp_path, mirrors=[server.url + "/endless/"], sha256="0" * 64, max_bytes=300_000)
    assert time.monotonic() - start < _SERVER_LIMIT_S / 2  # stopped by the cap, not by the server giving up
    assert 0 < counting.most <= 300_000
    assert _leftovers(tmp_path) == []


def test_announced_length_over_the_cap_is_refused_before_reading(server, tmp_path):
    _, digest = _serve_payload(server)
    start = time.monotonic()
    with pytest.raises(DownloadError, match=r"liar/file\.gz: the server announces 10000000000 bytes, more than the "):
        download_file("file.gz", tmp_path, mirrors=[server.url + "/liar/"], sha256=digest)
    assert time.monotonic() - start < _SERVER_LIMIT_S / 2
    assert _leftovers(tmp_path) == []


def test_pinned_size_caps_a_canonical_file_and_env_caps_others(server, tmp_path, monkeypatch):
    body, digest = _serve_payload(server, name="t10k-labels-idx1-ubyte.gz", size=20_000)
    monkeypatch.setattr(download, "SHA256", {"t10k-labels-idx1-ubyte.gz": digest})
    # the pinned size (4542 bytes) is the cap when the pinned digest is used
    with pytest.raises(DownloadError, match=r"more than the 4542 bytes expected"):
        download_file("t10k-labels-idx1-ubyte.gz", tmp_path, mirrors=[server.url + "/good/"])
    assert _leftovers(tmp_path) == []
    # files without a pinned size are capped by $PORTABLE_NN_MAX_DOWNLOAD_BYTES
    server.files["other.bin"] = body
    monkeypatch.setenv("PORTABLE_NN_MAX_DOWNLOAD_BYTES", "10K")
    with pytest.raises(DownloadError, match=r"more than the 10240 bytes expected"):
        download_file("other.bin", tmp_path, mirrors=[server.url + "/good/"], sha256=digest)
    monkeypatch.setenv("PORTABLE_NN_MAX_DOWNLOAD_BYTES", "20000")
    assert download_file("other.bin", tmp_path, mirrors=[server.url + "/good/"], sha256=digest).read_bytes() == body


def test_trickling_server_fails_after_the_deadline_and_later_mirrors_are_skipped(server, tmp_path):
    _, digest = _serve_payload(server)
    mirrors = [server.url + "/trickle/", server.url + "/good/"]
    start = time.monotonic()
    with pytest.raises(DownloadError, match=r"trickle/file\.gz: not finished within the deadline") as info:
        download_file("file.gz", tmp_path, mirrors=mirrors, sha256=digest, deadline=0.5, timeout=2.0)
    elapsed = time.monotonic() - start
    assert 0.5 <= elapsed < 2.0
    assert "good/file.gz: not tried, the 0.5 s deadline has passed" in str(info.value)
    assert server.requests == ["/trickle/file.gz"]
    assert _leftovers(tmp_path) == []


def test_the_deadline_holds_while_response_headers_trickle(server, tmp_path):
    """Issue 17, class 10: each header byte came within ``timeout``, so the old code waited 60 s on ``deadline=8``."""
    _, digest = _serve_payload(server)
    start = time.monotonic()
    with pytest.raises(DownloadError, match=r"slowheaders/file\.gz: no response headers within the deadline"):
        download_file("file.gz", tmp_path, mirrors=[server.url + "/slowheaders/"], sha256=digest, deadline=0.5,
                      timeout=2.0)  # fmt: skip
    assert time.monotonic() - start < 1.5  # the server would go on for _SERVER_LIMIT_S (5 s)
    assert _leftovers(tmp_path) == []
    # The abandoned opener thread ends at its own socket timeout (2 s).  http.client leaves the socket of a
    # response whose headers timed out for the garbage collector (a ResourceWarning); collect it here.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ResourceWarning)
        for thread in threading.enumerate():
            if thread.name == "portable_nn-download":
                thread.join(timeout=10)
                assert not thread.is_alive()
        gc.collect()


@pytest.mark.parametrize(
    ("kwargs", "pattern"),
    [
        ({"deadline": 0}, r"deadline must be a positive number of seconds; got 0"),
        ({"timeout": -1.0}, r"timeout must be a positive number of seconds; got -1\.0"),
        ({"max_bytes": 0}, r"max_download_bytes: expected a positive integer number of bytes; got 0"),
    ],
)
def test_bad_arguments_are_refused(tmp_path, kwargs, pattern):
    with pytest.raises(ValueError, match=pattern):
        download_file("file.gz", tmp_path, mirrors=["http://127.0.0.1:9/"], sha256="0" * 64, **kwargs)


def test_unknown_name_without_a_digest_is_refused(tmp_path):
    with pytest.raises(ValueError, match=r"no pinned SHA-256 for 'mystery\.gz'; pass sha256="):
        download_file("mystery.gz", tmp_path, mirrors=["http://127.0.0.1:9/"])
