"""The engine of the HTTP and S3 stores: ranged GETs whose every answer is checked.

Subclasses open one ranged request and describe its answer (an ``Answer``); this module
decides what the answer means, the same way for every protocol:

* the object's identity (ETag, version id, last modified, size, endpoint) is taken from the
  first answer (the one that served the header) and every later answer must match it, or
  ``ObjectChangedError`` is raised: frames of two versions are never mixed;
* a 206 answer's Content-Range must name the range asked (start, end within it, the known
  total); a server that caps a range is asked for the remainder (bounded);
* a 200 answer to a ranged request (a server ignoring Range) is detected from its headers,
  or after at most the bytes asked plus one, and the connection is dropped: a body is never
  read past what was asked;
* every request has a total deadline; transient failures are retried by this layer only,
  honouring Retry-After up to a cap; credential errors are permanent.

All requests run on fsspec's event loop (one per process), so dask's threads share one
connection pool instead of making an event loop per chunk.
"""

from __future__ import annotations

import asyncio
import email.utils
import logging
import os
import re
import tempfile
import threading
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, fields
from typing import Any

import fsspec
import fsspec.asyn
import numpy as np

from ..errors import (
    MRCFormatError,
    ObjectChangedError,
    RangeNotSupportedError,
    StorageError,
    TruncatedFileError,
)
from .identity import Identity
from .local import LocalStore
from .remote import FsspecStore
from .settings import SETTINGS_KEY, ReadSettings

log = logging.getLogger(__name__)

# Largest piece read from a body at once (bounds the memory of one read call).
PIECE_NBYTES = 1 * 2**20
_CONTENT_RANGE = re.compile(r"^\s*bytes\s+(\d+)-(\d+)/(\d+|\*)\s*$", re.IGNORECASE)


class Transient(Exception):
    """A failure worth another attempt; ``retry_after`` is the server's wish, in seconds."""

    def __init__(self, reason: str, retry_after: float | None = None):
        super().__init__(reason)
        self.retry_after = retry_after


class _RangeIgnored(Exception):
    """The server answered a ranged request with the whole object."""

    def __init__(self, length: int | None):
        super().__init__(length)
        self.length = length


@dataclass
class Answer:
    """One server answer, as the engine needs it. ``read(n)`` gives at most ``n`` bytes of
    the body (b"" at its end); ``close()`` drops the connection (body not read to its end);
    ``release()`` gives a fully read connection back to the pool."""

    status: int
    content_range: str | None = None
    content_length: int | None = None
    identity: Identity | None = None
    retry_after: str | None = None
    error: str = ""
    read: Callable[[int], Awaitable[bytes]] | None = None
    at_eof: Callable[[], bool] = lambda: True
    close: Callable[[], None] = lambda: None
    release: Callable[[], None] = lambda: None


def parse_content_range(value: str | None) -> tuple[int, int, int | None] | None:
    """``bytes a-b/total`` -> (a, b, total or None for ``*``); None if malformed."""
    if not value:
        return None
    match = _CONTENT_RANGE.match(value)
    if not match:
        return None
    total = None if match.group(3) == "*" else int(match.group(3))
    return int(match.group(1)), int(match.group(2)), total


def parse_retry_after(value: str | None) -> float | None:
    """Seconds from a Retry-After header (delta seconds or an HTTP date)."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    import datetime

    now = datetime.datetime.now(datetime.UTC)
    if when.tzinfo is None:
        when = when.replace(tzinfo=datetime.UTC)
    return max(0.0, (when - now).total_seconds())


class RangedStore(FsspecStore):
    """A remote object read by our own ranged requests (see the module docstring).
    Subclasses implement ``_open(start, end, ranged)`` and ``_loop()``."""

    def __init__(
        self,
        fs: fsspec.AbstractFileSystem,
        path: str,
        name: str,
        settings: ReadSettings,
        identity: Identity | None = None,
    ):
        super().__init__(fs, path, name, settings.retries, settings.backoff, settings.part_nbytes)
        self.settings = settings
        # Pinned at the first answer (the header's); carried to dask workers by pickling,
        # so that every task reads the version that was opened.
        self.identity = identity
        if identity is not None:
            self._size = identity.size
        self._cache: LocalStore | None = None
        self._cache_lock = threading.Lock()

    # -- pickling: settings, identity and the filesystem travel; caches and locks do not
    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        state.pop("_cache_lock", None)
        state["_cache"] = None
        # Only the settings that differ from the defaults: graphs stay small.
        default = ReadSettings()
        state["settings"] = {
            f.name: getattr(self.settings, f.name)
            for f in fields(ReadSettings)
            if getattr(self.settings, f.name) != getattr(default, f.name)
        }
        for name in ("retries", "backoff", "part_nbytes"):  # copies of the settings
            state.pop(name, None)
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        state["settings"] = ReadSettings.from_options(state["settings"])
        self.__dict__.update(state)
        self.retries = self.settings.retries
        self.backoff = self.settings.backoff
        self.part_nbytes = self.settings.part_nbytes
        self._cache_lock = threading.Lock()

    # -- what subclasses provide
    def _loop(self) -> asyncio.AbstractEventLoop:
        return fsspec.asyn.get_loop()

    async def _open(self, start: int, end: int | None) -> Answer:
        """Send one GET for [start, end) (the whole object when ``end`` is None)."""
        raise NotImplementedError

    def _endpoint(self) -> str:
        raise NotImplementedError

    # -- identity
    def token(self) -> str:
        if self.identity is None:
            self.size()
        assert self.identity is not None
        return self.identity.token(self._endpoint(), self.path)

    def known_size(self) -> int | None:
        if self._cache is not None:
            return self._cache.known_size()
        return self._size

    def sibling(self, name: str) -> FsspecStore:
        store = super().sibling(name)
        return type(self)(store.fs, store.path, store.name, self.settings)

    def _check_identity(self, got: Identity | None) -> None:
        """Pin the first answer's identity; every later answer must match it."""
        if got is None:
            return
        if self.identity is None:
            self.identity = got
            if got.size is not None:
                self._size = got.size
            return
        changed = self.identity.differs(got)
        if changed:
            raise ObjectChangedError(
                f"the object changed since it was opened ({changed}); open it again to read "
                "the new version",
                self.name,
            )

    # -- the public store interface
    def _run(self, coro_fn: Callable[..., Awaitable[Any]], *args: Any) -> Any:
        return fsspec.asyn.sync(self._loop(), coro_fn, *args)

    def head(self, nbytes: int) -> bytes:
        if self._cache is None:
            out = np.empty(nbytes, dtype=np.uint8)
            try:
                got = self._run(self._fetch, 0, nbytes, memoryview(out), True)
                return out[:got].tobytes()
            except _RangeIgnored as ignored:
                self._use_cache(ignored)
        assert self._cache is not None
        return self._cache.head(nbytes)

    def size(self) -> int:
        if self._cache is not None:
            return self._cache.known_size()
        if self._size is None:
            self.head(1)
        if self._size is None:
            raise StorageError(
                "the server states no size for this object (no Content-Range total, no "
                "Content-Length)",
                self.name,
            )
        return self._size

    def read_runs(self, starts: Sequence[int], lengths: Sequence[int]) -> np.ndarray:
        total = int(sum(int(n) for n in lengths))
        self._check_bounds(starts, lengths)
        out = np.empty(total, dtype=np.uint8)
        self.read_runs_into(starts, lengths, out)
        return out

    def _check_bounds(self, starts: Sequence[int], lengths: Sequence[int]) -> None:
        """Ranges past the known end fail before anything is allocated or fetched."""
        size = self._size
        if size is None:  # a server that never states the size: lengths are still checked
            return
        for start, length in zip(starts, lengths, strict=True):
            if int(start) + int(length) > size:
                raise TruncatedFileError(
                    f"the file is {size} bytes, shorter than its header says (reading "
                    f"[{int(start)}, {int(start) + int(length)}))",
                    self.name,
                    "data",
                )

    def read_runs_into(
        self, starts: Sequence[int], lengths: Sequence[int], out: np.ndarray
    ) -> None:
        if self._cache is None:
            self._check_bounds(starts, lengths)
            parts: list[tuple[int, int, int]] = []  # (start, end, position in out)
            pos = 0
            step = self.settings.part_nbytes
            for run_start, length in zip(starts, lengths, strict=True):
                start, end = int(run_start), int(run_start) + int(length)
                for a in range(start, end, step):
                    b = min(end, a + step)
                    parts.append((a, b, pos + a - start))
                pos += end - start
            if not parts:
                return
            try:
                self._run(self._fetch_parts, parts, memoryview(out).cast("B"))
                return
            except _RangeIgnored as ignored:
                self._use_cache(ignored)
        assert self._cache is not None
        self._cache.read_runs_into(starts, lengths, out)

    def read_all(self, limit: int) -> bytes:
        data = self.head(limit + 1)
        if len(data) > limit:
            raise MRCFormatError(
                f"larger than {limit} bytes, too large for this file type", self.name
            )
        return data

    # -- fetching
    async def _fetch_parts(self, parts: list[tuple[int, int, int]], view: memoryview) -> None:
        semaphore = asyncio.Semaphore(self.settings.concurrency)

        async def one(start: int, end: int, pos: int) -> None:
            async with semaphore:
                await self._fetch(start, end, view[pos : pos + end - start], False)

        tasks = [asyncio.ensure_future(one(*part)) for part in parts]
        try:
            await asyncio.gather(*tasks)
        finally:
            for task in tasks:
                task.cancel()

    async def _fetch(self, start: int, end: int, view: memoryview, allow_short: bool) -> int:
        """[start, end) into ``view``; the number of bytes (fewer only when ``allow_short``
        and the object ends first). Retries, deadlines and continuations of capped ranges."""
        settings = self.settings
        pos, attempt, continuations = start, 0, 0
        while pos < end:
            try:
                async with asyncio.timeout(settings.request_timeout):
                    got, at_end = await self._attempt(pos, end, view[pos - start : end - start])
            except Transient as failure:
                reason, retry_after = str(failure), failure.retry_after
            except TimeoutError:
                reason, retry_after = (
                    f"no complete answer within {settings.request_timeout:g} s",
                    None,
                )
            else:
                pos += got
                if pos >= end:
                    break
                if at_end:
                    if allow_short:
                        return pos - start
                    raise TruncatedFileError(
                        f"the file ends at byte {pos}, reading [{start}, {end}): shorter than "
                        "its header says",
                        self.name,
                        "data",
                    )
                continuations += 1
                if continuations > settings.max_continuations:
                    raise StorageError(
                        f"the server capped every answer (asked for [{start}, {end}), got "
                        f"up to byte {pos} after {continuations} requests)",
                        self.name,
                    )
                continue
            if attempt >= settings.retries:
                raise StorageError(
                    f"reading [{pos}, {end}) failed after {attempt + 1} attempt(s): {reason}",
                    self.name,
                )
            if retry_after is not None:
                delay = min(retry_after, settings.retry_after_cap)
            else:
                delay = settings.backoff * 2**attempt
            log.debug("retrying %s in %.2f s after: %s", self.name, delay, reason)
            attempt += 1
            await asyncio.sleep(delay)
        return end - start

    async def _attempt(self, start: int, end: int, view: memoryview) -> tuple[int, bool]:
        """One request for [start, end): (bytes written to ``view``, object ends there)."""
        answer = await self._open(start, end)
        done = False
        try:
            result = await self._consume(answer, start, end, view)
            done = answer.at_eof()
            return result
        finally:
            # A body read to its end goes back to the pool; anything else drops the
            # connection, so an endless or oversized body is never read on.
            if done:
                answer.release()
            else:
                answer.close()

    async def _consume(
        self, answer: Answer, start: int, end: int, view: memoryview
    ) -> tuple[int, bool]:
        status = answer.status
        detail = f" ({answer.error})" if answer.error else ""
        if status == 412:
            raise ObjectChangedError(
                "the object changed since it was opened (the server refused the pinned "
                "version, HTTP 412); open it again to read the new version",
                self.name,
            )
        if status == 416:
            if self._size is not None and start < self._size:
                raise ObjectChangedError(
                    f"the object is now shorter than the {self._size} bytes it had when "
                    "opened; open it again",
                    self.name,
                )
            return 0, True
        if status in (401, 403):
            raise self._credentials_error(status, answer.error)
        if status in (404, 410):
            raise FileNotFoundError(f"{self.name}: no such file{detail}")
        if status == 429 or status >= 500:
            raise Transient(f"HTTP {status}{detail}", parse_retry_after(answer.retry_after))
        if status not in (200, 206):
            raise StorageError(f"unexpected answer HTTP {status}{detail}", self.name)
        want = end - start
        if status == 200:
            return await self._consume_whole(answer, start, want, view)
        parsed = parse_content_range(answer.content_range)
        if parsed is None:
            raise StorageError(
                f"asked for bytes [{start}, {end}) and got a 206 answer without a valid "
                f"Content-Range ({answer.content_range!r})",
                self.name,
            )
        first, last, total = parsed
        if first != start or last < first or last >= end:
            raise StorageError(
                f"asked for bytes {start}-{end - 1} and the server answered bytes "
                f"{first}-{last}/{total if total is not None else '*'}: not the range asked",
                self.name,
            )
        self._check_identity(answer.identity)
        if total is not None:
            if self._size is None:
                self._size = total
            elif total != self._size:
                raise ObjectChangedError(
                    f"the object is now {total} bytes, it was {self._size} when opened; "
                    "open it again",
                    self.name,
                )
        n = last - first + 1
        if answer.content_length is not None and answer.content_length != n:
            raise StorageError(
                f"Content-Range says {n} bytes and Content-Length {answer.content_length}",
                self.name,
            )
        await self._read_exactly(answer, view, n)
        return n, total is not None and last + 1 == total

    async def _consume_whole(
        self, answer: Answer, start: int, want: int, view: memoryview
    ) -> tuple[int, bool]:
        """A 200 answer: the whole object from byte 0. Taken only when it is exactly what
        was asked (a small file read from its start); otherwise the server ignores Range."""
        length = answer.content_length
        if start != 0 or (length is not None and length > want):
            raise _RangeIgnored(length)
        self._check_identity(answer.identity)
        if length is not None:
            await self._read_exactly(answer, view, length)
            got = length
        else:
            # No length: read at most one byte more than asked, to tell.
            spare = bytearray(1)
            got = await self._read_upto(answer, view, want)
            if got == want and await self._read_upto(answer, memoryview(spare), 1):
                raise _RangeIgnored(None)
        if self._size is None:
            self._size = got
        elif got != self._size:
            raise ObjectChangedError(
                f"the object is now {got} bytes, it was {self._size} when opened", self.name
            )
        return got, True

    async def _read_exactly(self, answer: Answer, view: memoryview, n: int) -> None:
        got = await self._read_upto(answer, view, n)
        if got < n:
            raise Transient(f"the transfer was cut after {got} of {n} bytes")

    @staticmethod
    async def _read_upto(answer: Answer, view: memoryview, n: int) -> int:
        assert answer.read is not None
        got = 0
        while got < n:
            piece = await answer.read(min(n - got, PIECE_NBYTES))
            if not piece:
                break
            view[got : got + len(piece)] = piece
            got += len(piece)
        return got

    def _credentials_error(self, status: int, detail: str) -> StorageError:
        from ..errors import CredentialsError

        return CredentialsError(
            f"access refused (HTTP {status}{', ' + detail if detail else ''}): "
            f"{self._credentials_hint()}",
            self.name,
        )

    def _credentials_hint(self) -> str:
        return "give credentials in storage_options"

    # -- servers that ignore Range
    def _use_cache(self, ignored: _RangeIgnored) -> None:
        size = f" ({ignored.length} bytes)" if ignored.length is not None else ""
        if self.settings.no_range != "cache":
            raise RangeNotSupportedError(
                f"the server ignores Range requests: it answered a ranged request with the "
                f"whole object{size}, which was not downloaded. Read it through a local cache "
                f"('simplecache::{self.name}' or 'filecache::...'), or pass "
                f"storage_options={{{SETTINGS_KEY!r}: {{'no_range': 'cache'}}}} to download it "
                "once to a local file",
                self.name,
            )
        with self._cache_lock:
            if self._cache is None:
                self._cache = self._run(self._download)

    async def _download(self) -> LocalStore:
        """The whole object, streamed once to a local file (bounded memory), within the
        total deadline of one request (``request_timeout``: a server dripping its body
        fails in bounded time, like every other request)."""
        folder = self.settings.cache_dir or tempfile.gettempdir()
        os.makedirs(folder, exist_ok=True)
        fd, path = tempfile.mkstemp(prefix="intake-mrc-", suffix=".download", dir=folder)
        deadline = self.settings.request_timeout
        try:
            with os.fdopen(fd, "wb") as f:
                total = asyncio.timeout(deadline)
                try:
                    async with total:
                        answer, written = await self._stream_to(f)
                except Transient as failure:  # cut, reset: reported, not retried
                    raise StorageError(
                        f"downloading the whole object failed: {failure}", self.name
                    ) from None
                except TimeoutError:
                    if not total.expired():  # no byte within read_timeout
                        raise StorageError(
                            "downloading the whole object failed: no data for "
                            f"{self.settings.read_timeout:g} s",
                            self.name,
                        ) from None
                    raise StorageError(
                        f"downloading the whole object did not complete within {deadline:g} s "
                        f"(request_timeout: raise it in storage_options[{SETTINGS_KEY!r}] for "
                        "a large object on a slow link)",
                        self.name,
                    ) from None
            if answer.content_length is not None and written != answer.content_length:
                raise StorageError(
                    f"download cut after {written} of {answer.content_length} bytes", self.name
                )
            self._check_identity(answer.identity)
            self._size = written
            log.info("%s: downloaded %d bytes to a local cache file", self.name, written)
            store = LocalStore(path)
            # The open file stays readable after unlinking on POSIX; keep the path
            # while the store lives, and remove it when the process ends.
            import atexit

            atexit.register(_remove_quietly, path)
            store.name = self.name
            return store
        except BaseException:
            _remove_quietly(path)
            raise

    async def _stream_to(self, f: Any) -> tuple[Answer, int]:
        """One GET of the whole object, its body written to ``f`` piece by piece: (the
        answer, bytes written). Between pieces, at most ``read_timeout``."""
        answer = await self._open(0, None)
        try:
            if answer.status != 200:
                raise StorageError(
                    f"downloading the whole object failed: HTTP {answer.status}", self.name
                )
            assert answer.read is not None
            written = 0
            while True:
                async with asyncio.timeout(self.settings.read_timeout or None):
                    piece = await answer.read(PIECE_NBYTES)
                if not piece:
                    break
                f.write(piece)
                written += len(piece)
        finally:
            answer.close()
        return answer, written


def _remove_quietly(path: str) -> None:
    try:
        os.remove(path)
    except OSError:
        pass
