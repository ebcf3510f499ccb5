"""The downloader against a local HTTP server on 127.0.0.1 serving generated files."""

from __future__ import annotations

import hashlib
import http.server
import threading
from pathlib import Path

import pytest
from test_idx import make_mnist_dir

from portable_nn import download, load_mnist
from portable_nn.download import DownloadError, download_file
from portable_nn.mnist import FILES


class _Handler(http.server.BaseHTTPRequestHandler):
    """Serves ``server.files`` under ``/good/``; ``/error/`` answers 500; ``/cut/`` stops halfway."""

    def do_GET(self):
        mirror, _, name = self.path.strip("/").partition("/")
        self.server.requests.append(self.path)
        body = self.server.files.get(name)
        if mirror == "error" or body is None:
            self.send_error(500 if mirror == "error" else 404)
            return
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body[: len(body) // 2] if mirror == "cut" else body)

    def log_message(self, *args):
        pass


@pytest.fixture
def server():
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    httpd.files, httpd.requests = {}, []
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
    with pytest.raises(DownloadError, match=r"put the four MNIST files .* into .*offline"):
        load_mnist(tmp_path / "offline", mirrors=(server.url + "/error/",))
    assert _leftovers(tmp_path / "offline") == []
