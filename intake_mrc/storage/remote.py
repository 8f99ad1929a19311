"""Remote stores: any fsspec filesystem (S3, HTTP, memory, chained caches), read by
concurrent ranged requests whose answers are length-checked and retried when transient.

Reads are pinned to the version seen at open, as far as the filesystem states one: the
version fields of ``fs.info`` (ETag, VersionId, generation, Last-Modified, mtime, created...,
and the size) are recorded before the first read and compared again after every read that
reached the remote object (fsspec's caching layers compare ``ukey`` the same way). A read
served from a cache layer's local copy (a whole-file cache, ``simplecache::`` /
``filecache::``, holding the file; a ``blockcache::`` holding every block read) reached
nothing remote and costs no check; any other read costs one ``info`` after it. When the
innermost layer is a version-aware s3fs and the object has a version id, every GET names
that version instead (S3 serves the opened version; no check is needed). An object that
changed raises ``ObjectChangedError``.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Iterator, Sequence
from typing import Any
from urllib.parse import quote, unquote

import fsspec
import numpy as np
from dask.base import tokenize

from ..errors import ObjectChangedError, StorageError, TruncatedFileError
from .base import ByteStore
from .retry import BACKOFF, RETRIES, _is_transient, _past_end
from .urls import _describe, redact_url

log = logging.getLogger(__name__)

# Remote runs are split into parts of at most this many bytes, fetched concurrently.
REMOTE_PART_NBYTES = 8 * 2**20
# One concurrent batch of remote parts holds at most this many bytes in flight.
REMOTE_BATCH_NBYTES = 256 * 2**20

# Fields of an fsspec ``info`` that name a version of an object, compared with case,
# dashes and underscores ignored (S3 ETag/VersionId/LastModified, GCS generation/md5Hash,
# HTTP ETag/Last-Modified/Content-MD5/Digest, local and SFTP mtime, memory:// created...).
# Other fields (atime, storage class, listing details) may change without the data.
_VERSION_FIELDS = {
    "etag",
    "versionid",
    "generation",
    "metageneration",
    "md5hash",
    "contentmd5",
    "digest",
    "crc32c",
    "lastmodified",
    "mtime",
    "modified",
    "created",
    "updated",
    "timecreated",
    "contentsha256",
}


def version_fields(info: dict[str, Any]) -> tuple[tuple[str, str], ...]:
    """The fields of ``info`` that state the object's version, as sorted text pairs (empty
    when the filesystem states none: then only the size is compared)."""
    out = []
    for key, value in info.items():
        if value is None or value == "":
            continue
        if re.sub(r"[^a-z0-9]", "", str(key).lower()) in _VERSION_FIELDS:
            out.append((str(key), str(value)))
    return tuple(sorted(out))


def _is_expired(error: BaseException) -> bool:
    """s3fs's FileExpired (an ``IfMatch`` refused by the server or an ETag that moved)."""
    return type(error).__name__ == "FileExpired"


def _changed_error(name: str) -> ObjectChangedError:
    return ObjectChangedError(
        "the object changed since it was opened (the server refused the pinned version); "
        "open it again to read the new version",
        name,
    )


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
        # The object's info as the filesystem states it at open (all fields but the name):
        # part of the dask name, as for our own HTTP and S3 reads.
        self._version: tuple[tuple[str, str], ...] | None = None
        # The fields of that info that name a version (ETag, VersionId, mtime, created...),
        # compared again after every read that reached the remote object.
        self._pinned: tuple[tuple[str, str], ...] | None = None
        # The path reads use: ``path?versionId=...`` when the innermost layer is a
        # version-aware s3fs and the object has a version id (then S3 itself serves that
        # version, and no check after a read is needed).
        self._read_path = path

    def known_size(self) -> int | None:
        return self._size

    def size(self) -> int:
        if self._size is None:
            self._stat()
        assert self._size is not None
        return self._size

    def _fresh_info(self) -> dict[str, Any]:
        """The object's ``info`` from the filesystem, not from a listing cache. Below a cache
        layer, from the layer it caches: fsspec's cache layers state ``info`` by listing the
        folder, which a web server may not allow (a HEAD answers)."""
        from fsspec.implementations.cached import CachingFileSystem

        fs = self.fs
        while isinstance(fs, CachingFileSystem) and isinstance(
            getattr(fs, "fs", None), fsspec.AbstractFileSystem
        ):
            fs = fs.fs
        try:
            fs.invalidate_cache(self.path)
        except Exception:  # noqa: BLE001 - a filesystem without a cache to drop
            pass
        try:
            return fs.info(self.path)
        except FileNotFoundError as error:
            # fsspec's HTTP info says "not found" for any failure (a refused connection
            # too): its cause tells another failure from a missing object.
            cause = error.__cause__
            if (
                cause is not None
                and not isinstance(cause, FileNotFoundError)
                and getattr(cause, "status", None) not in (404, 410)
            ):
                raise cause from None
            raise

    def _stat(self) -> None:
        """Size and version from one ``info`` of the object: the version reads are pinned to."""
        try:
            info = self._with_retries(self._fresh_info)
            size = int(info["size"])
        except (FileNotFoundError, StorageError):
            raise
        except Exception as error:  # noqa: BLE001 - reported with the file's name
            raise StorageError(f"cannot get the size: {_describe(error)}", self.name) from None
        self._size = size
        # Every field but the name, as text (datetimes included: memory:// states "created").
        self._version = tuple(sorted((str(k), str(v)) for k, v in info.items() if k != "name"))
        self._pinned = version_fields(info)
        self._read_path = self._version_path(info)

    def _version_path(self, info: dict[str, Any]) -> str:
        """``path?versionId=V`` when the innermost layer is a version-aware s3fs (it then
        sends VersionId with every GET: reads are pinned at no cost), else ``path``."""
        version_id = info.get("VersionId")
        if not version_id or version_id == "null" or "?versionId=" in self.path:
            return self.path
        inner: Any = self.fs
        for _ in range(16):  # the layers of a chained URL, outermost first
            below = getattr(inner, "fs", None)
            if not isinstance(below, fsspec.AbstractFileSystem) or below is inner:
                break
            inner = below
        protocols = inner.protocol if isinstance(inner.protocol, tuple) else (inner.protocol,)
        if {"s3", "s3a"} & set(protocols) and getattr(inner, "version_aware", False):
            return f"{self.path}?versionId={version_id}"
        return self.path

    def _pin(self) -> None:
        """Record the object's version before the first read (once per open)."""
        if self._pinned is None:
            self._stat()

    def _reads_local_copy(self, ranges: list[tuple[int, int]]) -> bool:
        """Whether a read of ``ranges`` is served from a cache layer's local copy: a
        whole-file cache holding the file, or a block cache holding every block the ranges
        touch (nothing remote is reached: no check is needed, and none is paid for). Those
        copies were made by reads checked after them, so they hold the pinned version."""
        from fsspec.implementations.cached import CachingFileSystem, WholeFileCacheFileSystem

        if not isinstance(self.fs, CachingFileSystem):
            return False
        try:
            found = self.fs._check_file(self._read_path)
            if not found or isinstance(self.fs, WholeFileCacheFileSystem):
                return bool(found)
            detail = found[0]
            blocks, blocksize = detail.get("blocks"), detail.get("blocksize")
            if blocks is True:
                return True
            if not blocksize or not isinstance(blocks, set | list | tuple):
                return False
            need = {
                k
                for start, end in ranges
                if end > start
                for k in range(start // blocksize, (end - 1) // blocksize + 1)
            }
            return need <= set(blocks)
        except Exception:  # noqa: BLE001 - unknown: check
            return False

    def _check_unchanged(self) -> None:
        """The object's version now, compared with the one pinned at open."""
        try:
            info = self._with_retries(self._fresh_info)
        except FileNotFoundError:
            raise ObjectChangedError(
                "the object was deleted since it was opened", self.name
            ) from None
        now, size = version_fields(info), info.get("size")
        changed = ""
        if now != self._pinned:
            before, after = dict(self._pinned or ()), dict(now)
            for key in sorted(set(before) | set(after)):
                if before.get(key) != after.get(key):
                    changed = f"{key} {before.get(key)!r} at open, now {after.get(key)!r}"
                    break
        elif self._size is not None and size is not None and int(size) != self._size:
            changed = f"size {self._size} at open, now {size}"
        if changed:
            raise ObjectChangedError(
                f"the object changed since it was opened ({changed}); open it again to read "
                "the new version",
                self.name,
            )

    def _checked(self, read: Any, ranges: list[tuple[int, int]]) -> Any:
        """``read()`` of ``ranges``, pinned: the version recorded before the first read, and
        compared after any read that reached the remote object (unless S3 serves a named
        version)."""
        self._pin()
        remote = self._read_path == self.path and not self._reads_local_copy(ranges)
        result = read()
        if remote:
            self._check_unchanged()
        return result

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
        # The whole name quoted (a "/" in it too): the basename of an HTTP URL is unquoted.
        path = folder + "/" + (quote(name, safe="") if self._is_http else name)
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
        data = self._checked(
            lambda: self._with_retries(
                lambda: self.fs.cat_file(self._read_path, start=0, end=nbytes)
            ),
            [(0, min(nbytes, self._size or nbytes))],
        )
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
                if _is_expired(error):
                    raise _changed_error(self.name) from None
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
        answers = self._checked_batch(first)
        out = np.empty(int(sum(lengths)), dtype=np.uint8)
        view = memoryview(out).cast("B")
        pos = self._copy(answers, view, 0)
        for batch in batches:
            pos = self._copy(self._checked_batch(batch), view, pos)
        return out

    def read_runs_into(
        self, starts: Sequence[int], lengths: Sequence[int], out: np.ndarray
    ) -> None:
        view = memoryview(out).cast("B")
        pos = 0
        for batch in self._batches(starts, lengths):
            pos = self._copy(self._checked_batch(batch), view, pos)

    def _checked_batch(self, batch: tuple[list[int], list[int]]) -> list[bytes]:
        """One batch of ranges fetched, pinned (``_checked``)."""
        starts, ends = batch
        return self._checked(
            lambda: self._fetch_batch(starts, ends), list(zip(starts, ends, strict=True))
        )

    def _fetch_batch(self, starts: list[int], ends: list[int]) -> list[bytes]:
        """The ranges' bytes, fetched concurrently, each length checked; transient failures
        and short answers retried with backoff."""
        results: list[Any] = [None] * len(starts)
        pending = list(range(len(starts)))
        last_error: BaseException | None = None
        for attempt in range(self.retries + 1):
            try:
                answers = self.fs.cat_ranges(
                    [self._read_path] * len(pending),
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
                    if _is_expired(answer):
                        raise _changed_error(self.name) from None
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
