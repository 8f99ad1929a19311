"""Remote stores: any fsspec filesystem (S3, HTTP, memory, chained caches), read by
concurrent ranged requests whose answers are length-checked and retried when transient."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator, Sequence
from typing import Any
from urllib.parse import quote, unquote

import fsspec
import numpy as np
from dask.base import tokenize

from ..errors import StorageError, TruncatedFileError
from .base import ByteStore
from .retry import BACKOFF, RETRIES, _is_transient, _past_end
from .urls import _describe, redact_url

log = logging.getLogger(__name__)

# Remote runs are split into parts of at most this many bytes, fetched concurrently.
REMOTE_PART_NBYTES = 8 * 2**20
# One concurrent batch of remote parts holds at most this many bytes in flight.
REMOTE_BATCH_NBYTES = 256 * 2**20


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
        # The object's version as the filesystem states it (ETag, LastModified, VersionId,
        # mtime, created...): part of the dask name, as for our own HTTP and S3 reads.
        self._version: tuple[tuple[str, str], ...] | None = None

    def known_size(self) -> int | None:
        return self._size

    def size(self) -> int:
        if self._size is None:
            self._stat()
        assert self._size is not None
        return self._size

    def _stat(self) -> None:
        """Size and version from one ``info`` of the object."""
        try:
            info = self.fs.info(self.path)
            size = int(info["size"])
        except FileNotFoundError:
            raise FileNotFoundError(f"{self.name}: no such file") from None
        except Exception as error:  # noqa: BLE001 - reported with the file's name
            raise StorageError(f"cannot get the size: {_describe(error)}", self.name) from None
        self._size = size
        # Every field but the name, as text (datetimes included: memory:// states "created").
        self._version = tuple(sorted((str(k), str(v)) for k, v in info.items() if k != "name"))

    def token(self) -> str:
        """Protocol, filesystem (its options: the endpoint of every layer of a chained URL,
        hashed), path, size and version: the same key behind two endpoints, or an object
        rewritten between two opens, never shares a dask name."""
        if self._version is None:
            self._stat()
        return tokenize(self.fs.protocol, self.fs, self.path, self._size, self._version)

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
