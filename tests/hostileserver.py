"""A hostile HTTP server on 127.0.0.1 (aiohttp): serves one MRC object and misbehaves on
demand - wrong or capped Content-Range, ignored Range (also on a huge body generated on the
fly, never stored), endless bodies with and without Content-Length, drips, stalls, permanent
503, 429 with Retry-After, redirects to another origin, answers without Content-Length, and
objects that change between requests."""

from __future__ import annotations

import asyncio
import hashlib
import re

from aiohttp import web
from loopserver import LoopbackServer

RANGE = re.compile(r"bytes=(\d+)-(\d+)")


def generated_mrc_header(nx: int, ny: int, nz: int) -> bytes:
    """A 1024-byte MRC2014 header for an int8 stack (mode 0) of nz frames of ny x nx."""
    import numpy as np

    header = bytearray(1024)
    header[0:16] = np.array([nx, ny, nz, 0], "<i4").tobytes()
    header[28:40] = np.array([nx, ny, nz], "<i4").tobytes()  # MX, MY, MZ
    header[40:52] = np.array([nx, ny, nz], "<f4").tobytes()  # cell
    header[64:76] = np.array([1, 2, 3], "<i4").tobytes()  # MAPC, MAPR, MAPS
    header[104:108] = b"MRCO"
    header[196:200] = np.array([20140], "<i4").tobytes()
    header[208:212] = b"MAP "
    header[212:216] = bytes([0x44, 0x44, 0, 0])
    return bytes(header)


class HostileServer(LoopbackServer):
    """``mode`` picks the misbehaviour (None: a correct server honouring Range and If-Match).
    ``requests`` counts requests; ``headers_seen`` keeps every request's headers."""

    def __init__(self, port: int, data: bytes = b""):
        self.data = data
        self.etag = self._etag(data)
        self.mode: str | None = None
        self.failures: int | None = None  # misbehave this many times, then behave
        self.requests = 0
        self.headers_seen: list[dict[str, str]] = []
        self.redirect_to: str | None = None
        self.cap_nbytes = 4096
        self.retry_after = "1"
        self.huge_frames = 1536  # generated body: 1 MiB frames
        self.change_after: int | None = None  # replace the data after this many requests
        self.changed_data: bytes | None = None
        self.honour_if_match = True
        self.stall_seconds = 5.0
        self.bytes_sent = 0
        super().__init__(self._app, port)

    @staticmethod
    def _etag(data: bytes) -> str:
        return '"' + hashlib.sha256(data).hexdigest()[:16] + '"'

    def set(self, mode: str | None, failures: int | None = None) -> None:
        self.mode, self.failures = mode, failures
        self.requests, self.headers_seen, self.bytes_sent = 0, [], 0

    def replace(self, data: bytes) -> None:
        self.data, self.etag = data, self._etag(data)

    def _misbehaving(self) -> str | None:
        if self.mode is None:
            return None
        if self.failures is None:
            return self.mode
        if self.failures > 0:
            self.failures -= 1
            return self.mode
        return None

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        self.requests += 1
        self.headers_seen.append(dict(request.headers))
        if self.change_after is not None and self.requests > self.change_after:
            if self.changed_data is not None:
                self.replace(self.changed_data)
                self.changed_data = None
        mode = self._misbehaving()
        if request.path.startswith("/huge"):
            return await self._huge(request, mode)
        if mode == "503":
            return web.Response(status=503, text="down")
        if mode == "429":
            return web.Response(status=429, headers={"Retry-After": self.retry_after})
        if mode == "redirect" and self.redirect_to:
            raise web.HTTPFound(self.redirect_to + request.path)
        if mode == "stall":  # longer than any client deadline in the tests, then gone
            await asyncio.sleep(self.stall_seconds)
            request.transport.abort()
            return web.Response(status=500)
        data = self.data
        if (
            self.honour_if_match
            and "If-Match" in request.headers
            and request.headers["If-Match"] != self.etag
        ):
            return web.Response(status=412)
        match = RANGE.fullmatch(request.headers.get("Range", ""))
        if match is None or mode in (
            "ignore-range",
            "endless-200",
            "endless-200-length",
            "drip-200",
        ):
            return await self._whole(request, data, mode)
        start, last = int(match.group(1)), int(match.group(2))
        if start >= len(data):
            return web.Response(status=416, headers={"Content-Range": f"bytes */{len(data)}"})
        last = min(last, len(data) - 1)
        total = str(len(data))
        if mode == "shift":
            start, last = start + 1, min(last + 1, len(data) - 1)
        if mode == "cap":
            last = min(last, start + self.cap_nbytes - 1)
        if mode == "star":
            total = "*"
        body = data[start : last + 1]
        headers = {
            "Content-Range": f"bytes {start}-{last}/{total}",
            "ETag": self.etag,
            "Accept-Ranges": "bytes",
        }
        if mode in ("no-length", "star", "endless-206", "drip"):
            response = web.StreamResponse(status=206, headers=headers)
            response.enable_chunked_encoding()
            await response.prepare(request)
            if mode == "drip":
                for i in range(min(len(body), 8)):  # then the connection is cut
                    await response.write(body[i : i + 1])
                    await asyncio.sleep(1.0)
                request.transport.abort()
                return response
            await response.write(body)
            self.bytes_sent += len(body)
            if mode == "endless-206":
                await self._endless(response)
            await response.write_eof()
            return response
        self.bytes_sent += len(body)
        return web.Response(status=206, headers=headers, body=body)

    async def _endless(self, response: web.StreamResponse) -> None:
        block = b"\0" * 65536
        try:
            while True:
                await response.write(block)
                self.bytes_sent += len(block)
        except (ConnectionError, RuntimeError, asyncio.CancelledError):
            return

    async def _whole(
        self, request: web.Request, data: bytes, mode: str | None
    ) -> web.StreamResponse:
        if mode == "endless-200":  # no Content-Length, never ends
            response = web.StreamResponse(status=200, headers={"ETag": self.etag})
            response.enable_chunked_encoding()
            await response.prepare(request)
            await self._endless(response)
            return response
        if mode == "drip-200":  # ignores Range; the body a byte every 0.5 s, then cut
            response = web.StreamResponse(status=200, headers={"ETag": self.etag})
            response.content_length = len(data)
            await response.prepare(request)
            try:
                for i in range(min(len(data), 24)):
                    await response.write(data[i : i + 1])
                    self.bytes_sent += 1
                    await asyncio.sleep(0.5)
            except (ConnectionError, RuntimeError, asyncio.CancelledError):
                return response  # the client hung up
            request.transport.abort()
            return response
        if mode == "endless-200-length":  # claims 1 TiB
            response = web.StreamResponse(status=200, headers={"ETag": self.etag})
            response.content_length = 2**40
            await response.prepare(request)
            await self._endless(response)
            return response
        self.bytes_sent += len(data)
        return web.Response(status=200, headers={"ETag": self.etag}, body=data)

    async def _huge(self, request: web.Request, mode: str | None) -> web.StreamResponse:
        """An int8 MRC of ``huge_frames`` 1 MiB frames (frame k holds k % 251), generated
        on the fly; with mode "ignore-range" every GET gets all of it (200)."""
        frame = 2**20
        header = generated_mrc_header(1024, 1024, self.huge_frames)
        size = len(header) + self.huge_frames * frame
        match = RANGE.fullmatch(request.headers.get("Range", ""))
        response = web.StreamResponse(status=200, headers={"ETag": '"huge"'})
        if match is not None and mode != "ignore-range":
            start, last = int(match.group(1)), min(int(match.group(2)), size - 1)
            response.set_status(206)
            response.headers["Content-Range"] = f"bytes {start}-{last}/{size}"
        else:
            start, last = 0, size - 1
        response.content_length = last - start + 1
        await response.prepare(request)
        pos = start
        try:
            while pos <= last:
                if pos < len(header):
                    piece = header[pos : min(last + 1, len(header))]
                else:
                    k = (pos - len(header)) // frame
                    frame_end = len(header) + (k + 1) * frame
                    piece = bytes([k % 251]) * (min(last + 1, frame_end) - pos)
                await response.write(piece)
                self.bytes_sent += len(piece)
                pos += len(piece)
        except (ConnectionError, RuntimeError, asyncio.CancelledError):
            return response
        await response.write_eof()
        return response

    def _app(self) -> web.Application:
        app = web.Application()
        app.router.add_route("GET", "/{tail:.*}", self._handle)
        return app
