"""A small aiohttp reverse proxy on 127.0.0.1 that misbehaves on demand, in front of the real
S3 (moto) and HTTP (aiohttp static) test servers: 5xx answers, connection resets, stalls,
truncated bodies, and ignoring Range."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from aiohttp import ClientSession, web
from loopserver import LoopbackServer

HOP_BY_HOP = {
    "connection",
    "keep-alive",
    "transfer-encoding",
    "content-length",
    "content-encoding",
    "host",
    "upgrade",
}


class FaultProxy(LoopbackServer):
    """``mode`` is one of None, "503", "500", "403", "reset", "stall", "truncate", "ignore-range";
    ``failures`` is how many requests misbehave before it behaves (None: all of them)."""

    def __init__(self, upstream: str, port: int):
        self.upstream = upstream.rstrip("/")
        self.mode: str | None = None
        self.failures: int | None = None
        self.stall_seconds = 5.0
        self.requests = 0
        self.faults = 0
        # Called with the request's number (from 1) before it is handled or forwarded.
        self.before_request: Callable[[int], object] | None = None
        super().__init__(self._app, port)

    def set(self, mode: str | None, failures: int | None = None) -> None:
        self.mode, self.failures, self.requests, self.faults = mode, failures, 0, 0
        self.before_request = None

    def _misbehave(self) -> bool:
        if self.mode is None:
            return False
        if self.failures is None:
            return True
        if self.faults < self.failures:
            return True
        return False

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        self.requests += 1
        if self.before_request is not None:
            self.before_request(self.requests)
        misbehave = self._misbehave()
        if misbehave:
            self.faults += 1
        mode = self.mode if misbehave else None
        if mode in ("503", "500", "403"):
            return web.Response(status=int(mode), text="injected failure")
        if mode == "reset":
            request.transport.abort()
            return web.Response(status=500)
        if mode == "stall":
            await asyncio.sleep(self.stall_seconds)
        headers = {k: v for k, v in request.headers.items() if k.lower() not in HOP_BY_HOP}
        if mode == "ignore-range":
            headers.pop("Range", None)
        body = await request.read()
        async with self._session.request(
            request.method,
            self.upstream + request.path_qs,
            headers=headers,
            data=body,
            auto_decompress=False,
        ) as upstream:
            payload = await upstream.read()
            out_headers = {k: v for k, v in upstream.headers.items() if k.lower() not in HOP_BY_HOP}
            if mode == "truncate" and len(payload) > 1:
                response = web.StreamResponse(status=upstream.status, headers=out_headers)
                response.content_length = len(payload)
                await response.prepare(request)
                await response.write(payload[: len(payload) // 2])
                request.transport.abort()
                return response
            if request.method == "HEAD" and "Content-Length" in upstream.headers:
                # A HEAD answer states the object's length without a body.
                out_headers["Content-Length"] = upstream.headers["Content-Length"]
                return web.Response(status=upstream.status, headers=out_headers)
            return web.Response(status=upstream.status, headers=out_headers, body=payload)

    def _app(self) -> web.Application:
        async def open_session(app: web.Application) -> None:
            self._session = ClientSession(auto_decompress=False)

        async def close_session(app: web.Application) -> None:
            await self._session.close()

        app = web.Application()
        app.on_startup.append(open_session)
        app.on_cleanup.append(close_session)
        app.router.add_route("*", "/{tail:.*}", self._handle)
        return app
