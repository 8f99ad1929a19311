"""Storage access: byte ranges from local files, fsspec URLs and open file objects.

A ``ByteStore`` answers "the bytes [start, start + length) for many runs at once" and checks
every answer's length. It knows nothing of MRC. Stores pickle small (a path and filesystem
options, never data or open handles) so that dask tasks can carry them to other processes.
"""

from __future__ import annotations

import asyncio
import bz2
import gzip
import io
import logging
import os
import threading
import time
from collections.abc import Iterator, Sequence
from typing import Any, BinaryIO
from urllib.parse import quote, unquote, urlsplit, urlunsplit

import fsspec
import numpy as np
from fsspec.implementations.local import LocalFileSystem

from .errors import MRCFormatError, StorageError, TruncatedFileError

log = logging.getLogger(__name__)

# Remote runs are split into parts of at most this many bytes, fetched concurrently.
REMOTE_PART_NBYTES = 8 * 2**20
# One concurrent batch of remote parts holds at most this many bytes in flight.
REMOTE_BATCH_NBYTES = 256 * 2**20
MMAP_MODES = (None, "c", "r", "r+")

# Retries of transient failures (network errors, 5xx, 429, cut transfers) by our layer, for
# every fsspec protocol: attempts = RETRIES + 1, sleeping BACKOFF * 2**k between them.
RETRIES = 3
BACKOFF = 0.1
# Network defaults where the user set none: seconds to connect and between bytes received.
CONNECT_TIMEOUT = 10
READ_TIMEOUT = 30
# botocore's own attempts per request (it retries 5xx and throttling inside one call);
# with our layer on top, a permanent failure costs (RETRIES + 1) * 2 requests.
S3_ATTEMPTS_PER_CALL = 2


def redact_url(url: str) -> str:
    """The URL without user, password and query string: safe for messages and logs."""
    parts = []
    for piece in str(url).split("::"):
        split = urlsplit(piece)
        if split.scheme and split.netloc:
            host = split.hostname or ""
            if split.port:
                host += f":{split.port}"
            piece = urlunsplit((split.scheme, host, split.path, "", ""))
        parts.append(piece)
    return "::".join(parts)


def _is_transient(error: BaseException) -> bool:
    """Whether a failed fetch is worth retrying (network trouble, 5xx, throttling)."""
    if isinstance(error, FileNotFoundError | PermissionError | IsADirectoryError):
        return False
    status = getattr(error, "status", None) or getattr(error, "code", None)
    if isinstance(status, int):
        return status >= 500 or status == 429
    return isinstance(error, OSError | TimeoutError | asyncio.TimeoutError | ConnectionError) or (
        type(error).__module__.startswith(("aiohttp", "botocore", "aiobotocore"))
    )


def _past_end(error: BaseException) -> bool:
    """A server's answer that a range starts past the end of the object (HTTP 416)."""
    status = getattr(error, "status", None) or getattr(error, "code", None)
    return status == 416 or "InvalidRange" in str(error)


class ByteStore:
    """Interface: ranged reads of one file. Subclasses implement ``head``, ``size`` and
    ``read_runs_into``; the folder methods serve Direct Electron discovery."""

    name: str = "<bytes>"

    def head(self, nbytes: int) -> bytes:
        """Up to ``nbytes`` from the start, in one request; fewer only if the file is shorter."""
        raise NotImplementedError

    def known_size(self) -> int | None:
        """The file length if known without a request."""
        return None

    def size(self) -> int:
        """The file length, asking the server if needed (remote stores override)."""
        known = self.known_size()
        if known is None:
            raise NotImplementedError
        return known

    def read_runs(self, starts: Sequence[int], lengths: Sequence[int]) -> np.ndarray:
        """The runs' bytes concatenated in order, as a new writable uint8 array."""
        total = int(sum(lengths))
        out = np.empty(total, dtype=np.uint8)
        self.read_runs_into(starts, lengths, out)
        return out

    def read_runs_into(
        self, starts: Sequence[int], lengths: Sequence[int], out: np.ndarray
    ) -> None:
        raise NotImplementedError

    def token(self) -> str:
        """A string that changes when the file changes (for dask names)."""
        return self.name

    def memmap(self, offset: int, nbytes: int, mode: str) -> np.ndarray | None:
        """A memory map of [offset, offset + nbytes), or None where the store cannot map."""
        return None

    def read_all(self, limit: int) -> bytes:
        """The whole (small) file; ``MRCFormatError`` when it is larger than ``limit``."""
        data = self.head(limit + 1)
        if len(data) > limit:
            raise MRCFormatError(
                f"larger than {limit} bytes, too large for this file type", self.name
            )
        return data

    @property
    def basename(self) -> str:
        return self.name.replace("\\", "/").rstrip("/").rsplit("/", 1)[-1]

    def sibling(self, name: str) -> ByteStore | None:
        """The store of the file ``name`` in this file's folder (None if unknown)."""
        return None

    def list_folder(self) -> list[str] | None:
        """The names of the files in this file's folder, in one listing; None if the
        storage cannot list."""
        return None


class LocalStore(ByteStore):
    """A file on a local disk, read with positioned reads into caller buffers."""

    def __init__(self, path: str):
        self.path = os.path.abspath(path)
        self.name = self.path
        try:
            stat = os.stat(self.path)
        except FileNotFoundError:
            raise FileNotFoundError(f"{self.path}: no such file") from None
        if not os.path.isfile(self.path):
            raise IsADirectoryError(f"{self.path}: not a regular file")
        self._size = stat.st_size
        self._mtime = stat.st_mtime_ns

    def known_size(self) -> int:
        return self._size

    def token(self) -> str:
        return f"{self.path}:{self._size}:{self._mtime}"

    def head(self, nbytes: int) -> bytes:
        with open(self.path, "rb") as f:
            return f.read(nbytes)

    def read_runs_into(
        self, starts: Sequence[int], lengths: Sequence[int], out: np.ndarray
    ) -> None:
        view = memoryview(out).cast("B")
        pos = 0
        with open(self.path, "rb", buffering=0) as f:
            for start, length in zip(starts, lengths, strict=False):
                start, length = int(start), int(length)
                f.seek(start)
                got = 0
                while got < length:
                    n = f.readinto(view[pos + got : pos + length])
                    if not n:
                        raise TruncatedFileError(
                            f"file ends at byte {start + got}, reading [{start}, {start + length})",
                            self.name,
                            "data",
                        )
                    got += n
                pos += length

    def sibling(self, name: str) -> LocalStore:
        return LocalStore(os.path.join(os.path.dirname(self.path), name))

    def list_folder(self) -> list[str]:
        folder = os.path.dirname(self.path)
        return sorted(e.name for e in os.scandir(folder) if e.is_file())

    def memmap(self, offset: int, nbytes: int, mode: str) -> np.ndarray:
        if offset + nbytes > self._size:
            raise TruncatedFileError(
                f"file is {self._size} bytes, cannot map [{offset}, {offset + nbytes})",
                self.name,
                "data",
            )
        return np.memmap(self.path, dtype=np.uint8, mode=mode, offset=offset, shape=(nbytes,))


class FsspecStore(ByteStore):
    """Any fsspec filesystem: S3, HTTP, memory, chained caches. Concurrent ranged reads."""

    def __init__(
        self,
        fs: fsspec.AbstractFileSystem,
        path: str,
        name: str,
        retries: int = RETRIES,
        backoff: float = BACKOFF,
        part_nbytes: int = REMOTE_PART_NBYTES,
    ):
        self.fs = fs
        self.path = path
        self.name = name
        self.retries = retries
        self.backoff = backoff
        self.part_nbytes = part_nbytes
        self._size: int | None = None

    def known_size(self) -> int | None:
        return self._size

    def size(self) -> int:
        if self._size is None:
            try:
                self._size = int(self.fs.size(self.path))
            except FileNotFoundError:
                raise FileNotFoundError(f"{self.name}: no such file") from None
            except Exception as error:  # noqa: BLE001 - reported with the file's name
                raise StorageError(f"cannot get the size: {_describe(error)}", self.name) from None
        return self._size

    def token(self) -> str:
        return f"{self.fs.protocol}:{self.path}:{self._size}"

    @property
    def _is_http(self) -> bool:
        protocol = self.fs.protocol
        return bool(
            {"http", "https"} & set(protocol if isinstance(protocol, tuple) else (protocol,))
        )

    @property
    def basename(self) -> str:
        name = self.path.rstrip("/").rsplit("/", 1)[-1]
        return unquote(name) if self._is_http else name

    def sibling(self, name: str) -> FsspecStore:
        folder = self.path.rstrip("/").rsplit("/", 1)[0]
        path = folder + "/" + (quote(name) if self._is_http else name)
        display = self.name.rsplit("/", 1)[0] + "/" + name
        return FsspecStore(self.fs, path, display, self.retries, self.backoff, self.part_nbytes)

    def list_folder(self) -> list[str] | None:
        folder = self.path.rstrip("/").rsplit("/", 1)[0]
        try:
            entries = self.fs.ls(folder, detail=True)
        except Exception as error:  # noqa: BLE001 - a server that cannot list
            log.debug("cannot list %s: %s", redact_url(folder), type(error).__name__)
            return None
        names = []
        for entry in entries:
            if entry.get("type") == "directory":
                continue
            name = str(entry["name"]).rstrip("/").rsplit("/", 1)[-1]
            names.append(unquote(name) if self._is_http else name)
        return sorted(names)

    def head(self, nbytes: int) -> bytes:
        data = self._with_retries(lambda: self.fs.cat_file(self.path, start=0, end=nbytes))
        if len(data) > nbytes:
            raise StorageError(
                f"asked for bytes [0, {nbytes}) and got {len(data)}: the server ignores Range "
                "requests or compresses its answers",
                self.name,
            )
        if len(data) < nbytes:
            self._size = len(data)
        return data

    def _with_retries(self, call: Any) -> Any:
        for attempt in range(self.retries + 1):
            try:
                return call()
            except FileNotFoundError:
                raise FileNotFoundError(f"{self.name}: no such file") from None
            except Exception as error:  # noqa: BLE001 - classified below
                if not _is_transient(error) or attempt == self.retries:
                    raise StorageError(
                        f"read failed after {attempt + 1} attempt(s): {_describe(error)}",
                        self.name,
                    ) from None
                log.debug("retrying %s after %s", self.name, type(error).__name__)
                time.sleep(self.backoff * 2**attempt)
        raise AssertionError("unreachable")

    def _batches(
        self, starts: Sequence[int], lengths: Sequence[int]
    ) -> Iterator[tuple[list[int], list[int]]]:
        """Runs cut into parts of at most ``part_nbytes``, grouped into batches of at most
        REMOTE_BATCH_NBYTES in flight; made lazily, so a huge claimed range costs nothing
        before its first batch is fetched."""
        batch: tuple[list[int], list[int]] = ([], [])
        batch_nbytes = 0
        for run_start, length in zip(starts, lengths, strict=True):
            start, end = int(run_start), int(run_start) + int(length)
            while start < end:
                stop = min(end, start + self.part_nbytes)
                batch[0].append(start)
                batch[1].append(stop)
                batch_nbytes += stop - start
                start = stop
                if batch_nbytes >= REMOTE_BATCH_NBYTES:
                    yield batch
                    batch, batch_nbytes = ([], []), 0
        if batch[0]:
            yield batch

    @staticmethod
    def _copy(answers: list[bytes], view: memoryview, pos: int) -> int:
        for answer in answers:
            view[pos : pos + len(answer)] = answer
            pos += len(answer)
        return pos

    def read_runs(self, starts: Sequence[int], lengths: Sequence[int]) -> np.ndarray:
        # The first batch is fetched (and its lengths checked) before the output is
        # allocated: a header that lies about sizes fails here, not in a huge allocation.
        batches = self._batches(starts, lengths)
        first = next(batches, None)
        if first is None:
            return np.empty(0, dtype=np.uint8)
        answers = self._fetch_batch(*first)
        out = np.empty(int(sum(lengths)), dtype=np.uint8)
        view = memoryview(out).cast("B")
        pos = self._copy(answers, view, 0)
        for batch in batches:
            pos = self._copy(self._fetch_batch(*batch), view, pos)
        return out

    def read_runs_into(
        self, starts: Sequence[int], lengths: Sequence[int], out: np.ndarray
    ) -> None:
        view = memoryview(out).cast("B")
        pos = 0
        for batch in self._batches(starts, lengths):
            pos = self._copy(self._fetch_batch(*batch), view, pos)

    def _fetch_batch(self, starts: list[int], ends: list[int]) -> list[bytes]:
        """The ranges' bytes, fetched concurrently, each length checked; transient failures
        and short answers retried with backoff."""
        results: list[Any] = [None] * len(starts)
        pending = list(range(len(starts)))
        last_error: BaseException | None = None
        for attempt in range(self.retries + 1):
            try:
                answers = self.fs.cat_ranges(
                    [self.path] * len(pending),
                    [starts[i] for i in pending],
                    [ends[i] for i in pending],
                    on_error="return",
                )
            except Exception as error:  # noqa: BLE001 - the whole call failed: retry all
                answers = [error] * len(pending)
            still = []
            for i, answer in zip(pending, answers, strict=False):
                want = ends[i] - starts[i]
                if isinstance(answer, BaseException):
                    if isinstance(answer, FileNotFoundError):
                        raise FileNotFoundError(f"{self.name}: no such file") from None
                    if _past_end(answer):
                        raise TruncatedFileError(
                            f"the file ends before byte {starts[i]} (range not satisfiable): "
                            "shorter than its header says",
                            self.name,
                            "data",
                        ) from None
                    if not _is_transient(answer):
                        raise StorageError(
                            f"reading [{starts[i]}, {ends[i]}) failed: {_describe(answer)}",
                            self.name,
                        ) from None
                    last_error = answer
                    still.append(i)
                elif len(answer) > want:
                    raise StorageError(
                        f"asked for {want} bytes at {starts[i]} and got {len(answer)}: the "
                        "server ignores Range requests or compresses its answers",
                        self.name,
                    )
                elif len(answer) < want:
                    last_error = TruncatedFileError(
                        f"got {len(answer)} of {want} bytes at byte {starts[i]}: the file is "
                        "shorter than its header says, or the transfer was cut",
                        self.name,
                        "data",
                    )
                    still.append(i)
                else:
                    results[i] = answer
            pending = still
            if not pending:
                break
            if attempt < self.retries:
                time.sleep(self.backoff * 2**attempt)
        if pending:
            if isinstance(last_error, TruncatedFileError):
                raise last_error
            raise StorageError(
                f"reading {len(pending)} range(s) failed after {self.retries + 1} attempts: "
                f"{_describe(last_error)}",
                self.name,
            )
        return results


class FileObjectStore(ByteStore):
    """An open binary file object (seek + read). Usable from threads, not other processes."""

    def __init__(self, fileobj: BinaryIO, name: str):
        self.fileobj = fileobj
        self.name = name
        if isinstance(fileobj, io.TextIOBase) or "b" not in getattr(fileobj, "mode", "b"):
            raise MRCFormatError("file object is open in text mode; open it with 'rb'", name)
        self._lock = threading.Lock()
        with self._lock:
            pos = fileobj.tell()
            self._size = fileobj.seek(0, io.SEEK_END)
            fileobj.seek(pos)

    def __reduce__(self) -> Any:
        raise TypeError(
            f"{self.name}: an open file object cannot be sent to another process; "
            "pass a path or URL to use a distributed cluster"
        )

    def known_size(self) -> int:
        return self._size

    def token(self) -> str:
        return f"fileobj:{id(self.fileobj)}:{self._size}"

    def head(self, nbytes: int) -> bytes:
        return self._read(0, nbytes)

    def sibling(self, name: str) -> ByteStore | None:
        # A file object opened from a local path has neighbours on that disk.
        if os.path.isfile(self.name):
            return LocalStore(os.path.join(os.path.dirname(os.path.abspath(self.name)), name))
        return None

    def list_folder(self) -> list[str] | None:
        if os.path.isfile(self.name):
            return LocalStore(self.name).list_folder()
        return None

    def _read(self, start: int, length: int) -> bytes:
        with self._lock:
            self.fileobj.seek(start)
            return self.fileobj.read(length)

    def read_runs_into(
        self, starts: Sequence[int], lengths: Sequence[int], out: np.ndarray
    ) -> None:
        view = memoryview(out).cast("B")
        pos = 0
        for start, length in zip(starts, lengths, strict=False):
            data = self._read(int(start), int(length))
            if len(data) != length:
                raise TruncatedFileError(
                    f"got {len(data)} of {length} bytes at byte {start}", self.name, "data"
                )
            view[pos : pos + length] = data
            pos += length


class DecompressedStore(ByteStore):
    """A gzip or bzip2 file: no random access, so the whole file is decompressed in memory
    (once per process: a dask graph holds this store once, so tasks share it) and ranges
    are served from there."""

    def __init__(self, inner: ByteStore, compression: str, whole: bytes | None = None):
        self.inner = inner
        self.compression = compression
        self.name = f"{inner.name} ({compression})"
        # ``whole``: the compressed file when an earlier read already holds all of it.
        self._compressed = whole
        self._data_cache: bytes | None = None
        self._lock = threading.Lock()

    def __getstate__(self) -> dict[str, Any]:
        # Workers fetch and decompress for themselves; no data travels in the graph.
        return {"inner": self.inner, "compression": self.compression, "name": self.name}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__init__(state["inner"], state["compression"])  # type: ignore[misc]

    def _data(self) -> bytes:
        with self._lock:
            if self._data_cache is None:
                raw = self._compressed
                if raw is None:
                    raw = self.inner.read_runs([0], [self.inner.size()]).tobytes()
                try:
                    decompress = gzip.decompress if self.compression == "gzip" else bz2.decompress
                    self._data_cache = decompress(raw)
                except (OSError, EOFError, ValueError) as error:
                    raise MRCFormatError(
                        f"cannot decompress ({self.compression}): {error}", self.inner.name
                    ) from None
                self._compressed = None
            return self._data_cache

    def known_size(self) -> int:
        return len(self._data())

    def token(self) -> str:
        return f"{self.inner.token()}:{self.compression}"

    def head(self, nbytes: int) -> bytes:
        return self._data()[:nbytes]

    def read_runs_into(
        self, starts: Sequence[int], lengths: Sequence[int], out: np.ndarray
    ) -> None:
        data = self._data()
        view = memoryview(out).cast("B")
        pos = 0
        for start, length in zip(starts, lengths, strict=False):
            start, length = int(start), int(length)
            if start + length > len(data):
                raise TruncatedFileError(
                    f"decompressed data end at byte {len(data)}, reading "
                    f"[{start}, {start + length})",
                    self.name,
                    "data",
                )
            view[pos : pos + length] = data[start : start + length]
            pos += length


def _describe(error: BaseException | None) -> str:
    """A short description of an exception, free of URLs with credentials."""
    if error is None:
        return "unknown error"
    text = str(error).splitlines()[0] if str(error) else ""
    for marker in ("X-Amz-", "Signature=", "AWSAccessKeyId", "token="):
        if marker in text:
            text = "(details withheld: they contain credentials)"
    return f"{type(error).__name__}: {text}"[:300]


def _http_options(storage_options: dict[str, Any]) -> dict[str, Any]:
    """HTTP options: identity encoding (so byte ranges mean file bytes) and bounded
    timeouts; a number given as ``client_kwargs["timeout"]`` is seconds per read."""
    import aiohttp

    options = dict(storage_options)
    headers = dict(options.get("headers") or {})
    headers.setdefault("Accept-Encoding", "identity")
    options["headers"] = headers
    client = dict(options.get("client_kwargs") or {})
    timeout = client.get("timeout", READ_TIMEOUT)
    if isinstance(timeout, int | float):
        client["timeout"] = aiohttp.ClientTimeout(
            total=None, sock_connect=min(timeout, CONNECT_TIMEOUT), sock_read=timeout
        )
    options["client_kwargs"] = client
    return options


def _s3_options(storage_options: dict[str, Any]) -> dict[str, Any]:
    """S3 options with botocore's retries and timeouts bounded unless the user set them."""
    options = dict(storage_options)
    config = dict(options.get("config_kwargs") or {})
    config.setdefault("retries", {"total_max_attempts": S3_ATTEMPTS_PER_CALL, "mode": "standard"})
    config.setdefault("connect_timeout", CONNECT_TIMEOUT)
    config.setdefault("read_timeout", READ_TIMEOUT)
    options["config_kwargs"] = config
    return options


_PROTOCOL_DEFAULTS = {
    "http": _http_options,
    "https": _http_options,
    "s3": _s3_options,
    "s3a": _s3_options,
}


def _with_defaults(url: str, storage_options: dict[str, Any]) -> dict[str, Any]:
    """Protocol defaults for a plain or chained URL (per-protocol options when chained)."""
    protocols = [part.split("://")[0] if "://" in part else "file" for part in url.split("::")]
    if len(protocols) == 1:
        fix = _PROTOCOL_DEFAULTS.get(protocols[0])
        return fix(storage_options) if fix else storage_options
    options = dict(storage_options)
    for protocol in protocols:
        fix = _PROTOCOL_DEFAULTS.get(protocol)
        if fix:
            options[protocol] = fix(dict(options.get(protocol) or {}))
    return options


def open_store(
    urlpath_or_file: Any,
    storage_options: dict[str, Any] | None = None,
    retries: int = RETRIES,
) -> ByteStore:
    """A store for a local path, an fsspec URL (chained URLs too) or an open binary file.

    ``retries`` bounds our retries of transient failures for remote stores."""
    storage_options = dict(storage_options or {})
    if hasattr(urlpath_or_file, "read") and hasattr(urlpath_or_file, "seek"):
        fs = getattr(urlpath_or_file, "fs", None)
        path = getattr(urlpath_or_file, "path", None)
        if isinstance(fs, fsspec.AbstractFileSystem) and isinstance(path, str):
            # An fsspec file: reopen by path so that dask tasks can pickle the store.
            if isinstance(fs, LocalFileSystem):
                return LocalStore(path)
            return FsspecStore(fs, path, redact_url(fs.unstrip_protocol(path)), retries)
        name = getattr(urlpath_or_file, "name", None)
        return FileObjectStore(urlpath_or_file, str(name) if name else "<file object>")
    if isinstance(urlpath_or_file, os.PathLike):
        urlpath_or_file = os.fspath(urlpath_or_file)
    if not isinstance(urlpath_or_file, str):
        raise TypeError(
            f"expected a path, URL or binary file object, not {type(urlpath_or_file).__name__}"
        )
    url = urlpath_or_file
    if "://" not in url and "::" not in url:
        return LocalStore(url)
    fs, path = fsspec.core.url_to_fs(url, **_with_defaults(url, storage_options))
    if isinstance(fs, LocalFileSystem):
        return LocalStore(path)
    return FsspecStore(fs, path, redact_url(url), retries)
