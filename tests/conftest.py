"""Fixtures: a real S3 server (moto, server mode) and a real HTTP server with Range support
(aiohttp static files), both on 127.0.0.1, plus helpers that write MRC files with mrcfile."""

from __future__ import annotations

import hashlib
import os
import shutil
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest
from aiohttp import web
from loopserver import LoopbackServer

# The sample files live in the repository (tests/data/, each folder with a README giving its
# origin, licence and SHA-256 sums), so a clone with nothing beside it runs the whole suite.
SHARED = Path(__file__).resolve().parent / "data"
RSCIIO = SHARED / "rsciio_mrc"
MRCFILE_TESTS = SHARED / "mrcfile_tests"

S3_KEY = "AKIAFAKEKEY0000TEST1"
S3_SECRET = "fake/Secret/Value/For/Tests/0000000000"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def sha256(path: Path | str) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


@pytest.fixture(autouse=True)
def shared_data_untouched():
    """Every test: the sample files in tests/data hash the same after it as before it."""
    files = sorted(p for p in SHARED.rglob("*") if p.is_file())
    before = {p: sha256(p) for p in files}
    yield
    assert {p: sha256(p) for p in files} == before


@pytest.fixture(scope="session")
def s3_server() -> Iterator[dict]:
    os.environ.setdefault("AWS_ACCESS_KEY_ID", S3_KEY)
    os.environ.setdefault("AWS_SECRET_ACCESS_KEY", S3_SECRET)
    from moto.server import ThreadedMotoServer

    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    endpoint = f"http://127.0.0.1:{port}"
    options = {"key": S3_KEY, "secret": S3_SECRET, "client_kwargs": {"endpoint_url": endpoint}}
    yield {"endpoint": endpoint, "storage_options": options}
    server.stop()


@pytest.fixture(scope="session")
def s3fs_root(s3_server):
    import s3fs

    fs = s3fs.S3FileSystem(**s3_server["storage_options"])
    fs.mkdir("intake-mrc-test")
    return fs


@pytest.fixture
def s3_upload(s3fs_root, s3_server):
    """Upload local files to the S3 server; returns their s3:// URLs."""

    def upload(*paths: Path | str, prefix: str = "data") -> list[str]:
        urls = []
        for path in paths:
            key = f"intake-mrc-test/{prefix}/{Path(path).name}"
            s3fs_root.put_file(str(path), key)
            urls.append("s3://" + key)
        s3fs_root.invalidate_cache()
        return urls

    return upload


class RangeHTTPServer(LoopbackServer):
    """aiohttp static files on 127.0.0.1, recording every request's Range and encoding."""

    def __init__(self, root: Path):
        self.root = root
        self.requests: list[tuple[str, str, str | None]] = []
        self.encodings: list[str | None] = []
        super().__init__(self._app, free_port())

    def _app(self) -> web.Application:
        @web.middleware
        async def record(request, handler):
            self.requests.append((request.method, request.path, request.headers.get("Range")))
            self.encodings.append(request.headers.get("Accept-Encoding"))
            return await handler(request)

        app = web.Application(middlewares=[record])
        # /nolist/ serves the same files without directory pages, like most web servers.
        app.router.add_static("/nolist/", str(self.root), show_index=False)
        app.router.add_static("/", str(self.root), show_index=True)
        return app

    def bytes_requested(self) -> int:
        total = 0
        for method, _, rng in self.requests:
            if method == "GET" and rng and rng.startswith("bytes="):
                a, b = rng[6:].split("-")
                total += int(b) - int(a) + 1
        return total


@pytest.fixture(scope="session")
def http_root(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("http-root")


@pytest.fixture(scope="session")
def http_server(http_root) -> Iterator[RangeHTTPServer]:
    server = RangeHTTPServer(http_root).start()
    yield server
    server.stop()


@pytest.fixture
def http_upload(http_server, http_root):
    """Copy local files under the HTTP root; returns their http:// URLs (percent-encoded)."""
    from urllib.parse import quote

    def upload(*paths: Path | str, prefix: str = "data", listing: bool = True) -> list[str]:
        (http_root / prefix).mkdir(parents=True, exist_ok=True)
        base = http_server.url if listing else http_server.url + "/nolist"
        urls = []
        for path in paths:
            shutil.copy(path, http_root / prefix / Path(path).name)
            urls.append(f"{base}/{prefix}/{quote(Path(path).name)}")
        return urls

    return upload
