"""A small aiohttp reverse proxy on 127.0.0.1 that misbehaves on demand, in front of the real
S3 (moto) and HTTP (aiohttp static) test servers: 5xx answers, connection resets, stalls,
truncated bodies, and ignoring Range."""

from __future__ import annotations

import asyncio
import threading

from aiohttp import ClientSession, web

HOP_BY_HOP = {
    "connection",
    "keep-alive",
    "transfer-encoding",
    "content-length",
    "content-encoding",
    "host",
    "upgrade",
}


class FaultProxy:
    """``mode`` is one of None, "503", "500", "reset", "stall", "truncate", "ignore-range";
    ``failures`` is how many requests misbehave before it behaves (None: all of them)."""

    def __init__(self, upstream: str, port: int):
        self.upstream = upstream.rstrip("/")
        self.port = port
        self.url = f"http://127.0.0.1:{port}"
        self.mode: str | None = None
        self.failures: int | None = None
        self.stall_seconds = 5.0
        self.requests = 0
        self.faults = 0
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def set(self, mode: str | None, failures: int | None = None) -> None:
        self.mode, self.failures, self.requests, self.faults = mode, failures, 0, 0

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
        misbehave = self._misbehave()
        if misbehave:
            self.faults += 1
        mode = self.mode if misbehave else None
        if mode in ("503", "500"):
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
            return web.Response(status=upstream.status, headers=out_headers, body=payload)

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)

        async def start() -> None:
            self._session = ClientSession(auto_decompress=False)
            app = web.Application()
            app.router.add_route("*", "/{tail:.*}", self._handle)
            self._runner = web.AppRunner(app, access_log=None, handle_signals=False)
            await self._runner.setup()
            await web.TCPSite(self._runner, "127.0.0.1", self.port).start()

        self._loop.run_until_complete(start())
        self._ready.set()
        self._loop.run_forever()

    def start(self) -> FaultProxy:
        self._thread.start()
        self._ready.wait(10)
        return self

    def stop(self) -> None:
        async def shutdown() -> None:
            await self._session.close()
            await self._runner.cleanup()

        asyncio.run_coroutine_threadsafe(shutdown(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)
