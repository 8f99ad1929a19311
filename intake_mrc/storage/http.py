"""HTTP(S) objects read by our own ranged GETs over aiohttp (one client session per event
loop), so that status, Content-Range, ETag and the body's streaming are under our control.

Requests pin the version seen at open with ``If-Match`` (strong ETags) or
``If-Unmodified-Since`` (no ETag), and every answer's validators are compared. Redirects are
followed here (not by aiohttp) so that the user's headers and credentials never reach
another origin (scheme, host, port).
"""

from __future__ import annotations

import asyncio
import atexit
import os
import weakref
from typing import Any
from urllib.parse import urljoin, urlsplit

import aiohttp
import fsspec

from ..errors import StorageError
from .identity import Identity
from .ranged import Answer, RangedStore, Transient, parse_content_range
from .settings import ReadSettings
from .urls import _describe

# Headers that describe the request itself and may go to any origin on a redirect.
_SAFE_HEADERS = {"range", "accept-encoding", "if-match", "if-unmodified-since", "user-agent"}
_REDIRECTS = (301, 302, 303, 307, 308)

_sessions: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, aiohttp.ClientSession] = (
    weakref.WeakKeyDictionary()
)


def _close_sessions() -> None:
    """At exit: close the sessions whose loops still run (no "unclosed session" noise)."""
    for loop, session in list(_sessions.items()):
        if loop.is_running() and not session.closed:
            try:
                asyncio.run_coroutine_threadsafe(session.close(), loop).result(2)
            except Exception:  # noqa: BLE001 - best effort at exit
                pass


atexit.register(_close_sessions)


def _origin(url: str) -> tuple[str, str, int | None]:
    split = urlsplit(url)
    scheme = split.scheme.lower()
    port = split.port or {"http": 80, "https": 443}.get(scheme)
    return scheme, (split.hostname or "").lower(), port


async def _session() -> aiohttp.ClientSession:
    """The session of the running loop (made on first use, in that loop)."""
    loop = asyncio.get_running_loop()
    session = _sessions.get(loop)
    if session is None or session.closed:
        connector = aiohttp.TCPConnector(limit=64, ttl_dns_cache=300)
        # auto_decompress off: byte ranges mean stored bytes; no cookies kept between
        # requests (a cookie set by one server is not sent anywhere).
        session = aiohttp.ClientSession(
            connector=connector,
            auto_decompress=False,
            cookie_jar=aiohttp.DummyCookieJar(),
            trust_env=bool(os.environ.get("INTAKE_MRC_TRUST_ENV")),
        )
        no_hidden_retry(session)
        _sessions[loop] = session
    return session


def no_hidden_retry(session: Any) -> None:
    """Turn off aiohttp's silent second attempt of a request whose reused connection was
    closed by the server: our layer owns retries, so requests are counted exactly. aiohttp
    has no public switch; its own test client sets this attribute the same way."""
    if hasattr(session, "_retry_connection"):
        session._retry_connection = False


class HTTPStore(RangedStore):
    """A file on a web server that honours Range (see ``RangedStore`` for the checks)."""

    def __init__(
        self,
        fs: fsspec.AbstractFileSystem,
        path: str,
        name: str,
        settings: ReadSettings,
        identity: Identity | None = None,
        headers: dict[str, str] | None = None,
        auth: Any = None,
    ):
        super().__init__(fs, path, name, settings, identity)
        if headers is None:
            headers = dict(getattr(fs, "kwargs", {}).get("headers") or {})
        if auth is None:
            auth = (getattr(fs, "client_kwargs", None) or {}).get("auth")
        self.headers = {k: str(v) for k, v in headers.items()}
        self.headers["Accept-Encoding"] = "identity"
        self.auth = auth

    def sibling(self, name: str) -> HTTPStore:
        store = super(RangedStore, self).sibling(name)
        return HTTPStore(
            store.fs, store.path, store.name, self.settings, None, self.headers, self.auth
        )

    def _endpoint(self) -> str:
        scheme, host, port = _origin(self.path)
        return f"{scheme}://{host}:{port}"

    def _credentials_hint(self) -> str:
        return (
            "give credentials for this server, e.g. storage_options={'headers': "
            "{'Authorization': ...}} or user:password in the URL"
        )

    async def _open(self, start: int, end: int | None) -> Answer:
        session = await _session()
        headers = dict(self.headers)
        if end is not None:
            headers["Range"] = f"bytes={start}-{end - 1}"
        if self.identity is not None:
            etag = self.identity.etag
            if etag and not etag.startswith("W/"):
                headers["If-Match"] = etag
            elif not etag and self.identity.last_modified:
                headers["If-Unmodified-Since"] = self.identity.last_modified
        settings = self.settings
        timeout = aiohttp.ClientTimeout(
            total=None,
            sock_connect=settings.connect_timeout or None,
            sock_read=settings.read_timeout or None,
        )
        url, origin, auth = self.path, _origin(self.path), self.auth
        for _ in range(settings.max_redirects + 1):
            try:
                response = await session.get(
                    url, headers=headers, allow_redirects=False, timeout=timeout, auth=auth
                )
            except (aiohttp.ClientSSLError, aiohttp.InvalidURL) as error:
                # Certificates and malformed URLs do not get better by trying again.
                raise StorageError(_describe(error), self.name) from None
            except (aiohttp.ClientError, OSError) as error:
                raise Transient(_describe(error)) from None
            if response.status in _REDIRECTS and "Location" in response.headers:
                target = urljoin(url, response.headers["Location"])
                response.release()
                if urlsplit(target).scheme.lower() not in ("http", "https"):
                    raise StorageError("redirected to a URL that is not HTTP(S)", self.name)
                if _origin(target) != origin:
                    # Another origin: only headers describing the request go along; no
                    # Authorization, Cookie, API keys, nor the URL's user and password.
                    headers = {k: v for k, v in headers.items() if k.lower() in _SAFE_HEADERS}
                    auth = None
                    origin = _origin(target)
                url = target
                continue
            return self._answer(response)
        raise StorageError(f"more than {settings.max_redirects} redirects", self.name)

    @staticmethod
    def _answer(response: aiohttp.ClientResponse) -> Answer:
        head = response.headers
        length = head.get("Content-Length")
        content_length = int(length) if length and length.strip().isdigit() else None
        content_range = head.get("Content-Range")
        size = None
        if response.status == 206:
            parsed = parse_content_range(content_range)
            size = parsed[2] if parsed else None
        elif response.status == 200:
            size = content_length
        identity = Identity(
            size=size, etag=head.get("ETag"), last_modified=head.get("Last-Modified")
        )
        content = response.content

        async def read(n: int) -> bytes:
            try:
                return await content.read(n)
            except (aiohttp.ClientError, OSError) as error:
                raise Transient(_describe(error)) from None

        return Answer(
            status=response.status,
            content_range=content_range,
            content_length=content_length,
            identity=identity if response.status in (200, 206) else None,
            retry_after=head.get("Retry-After"),
            error=response.reason or "",
            read=read,
            at_eof=content.at_eof,
            close=response.close,
            release=response.release,
        )
