"""Header-indexed catalogs: read every entry's MRC header and DE info file concurrently and
put what they say (shape, dtype, mode, voxel size, extended header type; for DE the scan
size, frame rate, acquisition time, camera and detectors) into the entry's metadata.

Front-end wiring only: the bytes are parsed by the format layer (``format.summary``) and the
DE model (``directelectron.info``, ``directelectron.fields``). Remote files are fetched by
ONE fsspec async filesystem per protocol (one HTTP session or one S3 client), with at most
``concurrency`` requests in flight, one small range request per MRC file (its first
``SUMMARY_HEAD_NBYTES``) and one bounded request per info file. A file that fails is
recorded in its entry's ``index_errors`` (redacted text), never fatal.
"""

from __future__ import annotations

import asyncio
import functools
import math
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import fsspec
import numpy as np
from fsspec.asyn import AsyncFileSystem

from .catalog import CatalogEntry
from .directelectron.fields import catalog_fields
from .directelectron.info import MAX_INFO_NBYTES, DEInfo, parse_info
from .directelectron.scan import movie_axes, navigation_geometry
from .errors import MetadataError, MRCFormatError, StorageError
from .format.header import detect_compression
from .format.summary import SUMMARY_HEAD_NBYTES, summarize_head
from .mrc import voxel_size_of_axes
from .progress import progress_bar
from .storage import BACKOFF, RETRIES, redact_url
from .storage.opener import url_to_fs
from .storage.retry import _is_transient
from .storage.urls import _describe, is_chained

# Requests in flight at once. At 30 ms per request this is ~2,000 headers a second; servers
# (S3 throttles near 5,500 GETs a second per prefix) and local ports take it comfortably.
INDEX_CONCURRENCY = 64
# A bzip2 file's first block (900 kB before compression) fits in this.
BZ2_HEAD_NBYTES = 1024 * 1024
# Local files are read by this many threads (positioned reads of a few kB each).
LOCAL_THREADS = 8

Tick = Callable[[int], None]


def _fetch_threaded(
    read: Callable[[str, int], bytes], paths: Sequence[str], ends: Sequence[int], tick: Tick
) -> list[Any]:
    """``read(path, end)`` of every file on ``LOCAL_THREADS`` threads (local files and fsspec
    filesystems without async); the exception a file raises is its result."""

    def one(item: tuple[str, int]) -> Any:
        try:
            return read(*item)
        except Exception as error:  # noqa: BLE001 - recorded per file
            return error
        finally:
            tick(1)

    with ThreadPoolExecutor(LOCAL_THREADS) as pool:
        return list(pool.map(one, zip(paths, ends, strict=True)))


def _read_local(path: str, end: int) -> bytes:
    with open(path, "rb") as f:
        return f.read(end)


def _cat_head(fs: Any, path: str, end: int) -> bytes:
    return fs.cat_file(path, start=0, end=end)


async def _fetch_async(
    fs: AsyncFileSystem, paths: Sequence[str], ends: Sequence[int], concurrency: int, tick: Tick
) -> list[Any]:
    """``concurrency`` workers over one filesystem's session; transient failures retried."""
    results: list[Any] = [None] * len(paths)
    todo = iter(range(len(paths)))

    async def fetch(i: int) -> Any:
        for attempt in range(RETRIES + 1):
            try:
                # By keyword: s3fs's third positional parameter is version_id.
                return await fs._cat_file(paths[i], start=0, end=ends[i])
            except Exception as error:  # noqa: BLE001 - classified, then recorded
                if not _is_transient(error) or attempt == RETRIES:
                    return error
                await asyncio.sleep(BACKOFF * 2**attempt)
        raise AssertionError("unreachable")

    async def worker() -> None:
        for i in todo:  # the shared iterator hands each index to one worker
            results[i] = await fetch(i)
            tick(1)

    await asyncio.gather(*(worker() for _ in range(max(1, min(concurrency, len(paths))))))
    return results


def fetch_heads(
    urls: Sequence[str],
    ends: Sequence[int],
    storage_options: dict[str, Any] | None = None,
    concurrency: int = INDEX_CONCURRENCY,
    tick: Tick | None = None,
) -> list[bytes | BaseException]:
    """The first ``ends[i]`` bytes of every URL (fewer when the file is shorter), or the
    exception that fetching it raised. One filesystem instance per protocol."""
    tick = tick or (lambda n: None)
    options = dict(storage_options or {})
    results: list[Any] = [None] * len(urls)
    groups: dict[str, list[int]] = {}
    for i, url in enumerate(urls):
        key = "" if "://" not in url and "::" not in url else url.split("://", 1)[0]
        groups.setdefault(key, []).append(i)
    for key, indices in groups.items():
        if key == "":
            local_paths = [urls[i] for i in indices]
            got = _fetch_threaded(_read_local, local_paths, [ends[i] for i in indices], tick)
        else:
            first = urls[indices[0]]
            group_options = options
            if key in ("s3", "s3a"):
                # botocore keeps 10 connections unless told: as many as requests in flight.
                config = dict(options.get("config_kwargs") or {})
                config.setdefault("max_pool_connections", concurrency)
                group_options = {**options, "config_kwargs": config}
            fs, _ = url_to_fs(first, group_options)
            if is_chained(first):  # chained URLs: each resolved through its own chain
                paths = [url_to_fs(urls[i], options)[1] for i in indices]
            else:
                paths = [fs._strip_protocol(urls[i]) for i in indices]
            sub_ends = [ends[i] for i in indices]
            if isinstance(fs, AsyncFileSystem):
                got = fsspec.asyn.sync(
                    fs.loop, _fetch_async, fs, paths, sub_ends, concurrency, tick
                )
            else:
                read = functools.partial(_cat_head, fs)
                got = _fetch_threaded(read, paths, sub_ends, tick)
        for i, answer in zip(indices, got, strict=True):
            results[i] = answer
    return results


def _error_text(error: BaseException, url: str) -> str:
    """One line naming the file (redacted) and the problem, free of credentials."""
    name = redact_url(url)
    if isinstance(error, MRCFormatError | StorageError):
        text = str(error)
        return text if text.startswith(name) else f"{name}: {text}"
    if isinstance(error, FileNotFoundError):
        return f"{name}: no such file"
    return f"{name}: {_describe(error)}"


def _checked(answer: Any, url: str, asked: int) -> bytes:
    if isinstance(answer, BaseException):
        raise answer
    if len(answer) > asked:
        raise StorageError(
            f"asked for {asked} bytes and got {len(answer)}: the server ignores Range requests "
            "or compresses its answers",
            redact_url(url),
        )
    return bytes(answer)


def _de_movie_fields(
    info: DEInfo, fields: dict[str, Any], kwargs: dict[str, Any]
) -> dict[str, Any]:
    """A DE movie's ``shape`` and ``voxel_size_angstrom`` as ``open_mrc`` gives them (the
    scan's navigation axes before the frame's, the info file's pixel sizes), with the
    header's frame stack kept as ``stored_shape``. A Random or XY-file scan's grid comes
    from its scan-coordinates file, which the index does not read: its shape is None."""
    stored = [int(n) for n in fields["shape"]]
    ny, nx = stored[-2:]
    n_frames = math.prod(stored[:-2])
    out: dict[str, Any] = {"stored_shape": stored}
    navigation = kwargs.get("navigation_shape")
    # The reader's rule (a catalog's navigation_shape is input: checked as open_mrc checks it)
    geometry = navigation_geometry(
        info,
        n_frames,
        navigation,
        kwargs.get("partial_scan", "error"),
        ny * nx * np.dtype(fields["dtype"]).itemsize,
        info.source,
    )
    if geometry is None:  # a Random or XY-file scan
        out["shape"] = None
        return out
    nav = geometry.navigation_shape
    if geometry.kind == "user" and math.prod(nav) != n_frames:
        raise MetadataError(
            f"navigation_shape {list(navigation)} does not hold the movie's {n_frames} frames",
            info.source,
        )
    axes = movie_axes(info, geometry, ny, nx) or []
    out["shape"] = [*nav, ny, nx]
    out["voxel_size_angstrom"] = list(
        voxel_size_of_axes(axes, tuple(fields["voxel_size_angstrom"]))
    )
    return out


def index_entry(
    entry: CatalogEntry,
    head: Any,
    info_bytes: Any = None,
    info_url: str | None = None,
    head_nbytes: int = SUMMARY_HEAD_NBYTES,
) -> None:
    """Put the header (and info-file) fields of one entry into its metadata; failures go to
    ``metadata["index_errors"]`` as {"data" | "info": text}."""
    errors: dict[str, str] = {}
    info: DEInfo | None = None
    if info_url is not None:
        try:
            data = _checked(info_bytes, info_url, MAX_INFO_NBYTES + 1)
            info = parse_info(data, redact_url(info_url))
            entry.metadata.update(catalog_fields(info))
        except Exception as error:  # noqa: BLE001 - recorded, not fatal
            errors["info"] = _error_text(error, info_url)
    try:
        data = _checked(head, entry.url, head_nbytes)
        size = entry.metadata.get("size_bytes")
        # DE movies with an info file hold unsigned bytes (as open_mrc decides)
        fields = summarize_head(
            data, redact_url(entry.url), size if isinstance(size, int) else None, info is not None
        )
        entry.metadata.update(fields)
    except Exception as error:  # noqa: BLE001 - recorded, not fatal
        errors["data"] = _error_text(error, entry.url)
    else:
        if info is not None:
            try:
                entry.metadata.update(_de_movie_fields(info, fields, entry.kwargs))
            except Exception as error:  # noqa: BLE001 - recorded, not fatal
                errors["info"] = _error_text(error, info_url or entry.url)
    if errors:
        entry.metadata["index_errors"] = errors


def index_headers(
    entries: Sequence[CatalogEntry],
    storage_options: dict[str, Any] | None = None,
    concurrency: int = INDEX_CONCURRENCY,
    progress: bool = False,
) -> int:
    """Read every entry's header (and DE info file) concurrently and put the fields into
    the entries' metadata. Returns the number of entries with a failure recorded.

    ``progress`` shows a bar on stderr when it is a terminal."""
    urls: list[str] = []
    ends: list[int] = []
    info_at: dict[int, int] = {}
    for entry in entries:
        urls.append(entry.url)
        ends.append(SUMMARY_HEAD_NBYTES)
    for i, entry in enumerate(entries):
        info = entry.kwargs.get("metadata_file")
        if isinstance(info, str) and info:
            info_at[i] = len(urls)
            urls.append(info)
            ends.append(MAX_INFO_NBYTES + 1)  # one byte more says "too large"
    with progress_bar(total=len(urls), desc="headers", unit="file", enabled=progress) as bar:
        answers = fetch_heads(urls, ends, storage_options, concurrency, bar.update)
    bz2: list[int] = []
    for i, entry in enumerate(entries):
        j = info_at.get(i)
        info = (None, None) if j is None else (answers[j], urls[j])
        index_entry(entry, answers[i], *info)
        if "data" in entry.metadata.get("index_errors", {}) and _is_bz2(answers[i]):
            bz2.append(i)
    if bz2:
        # bzip2 yields nothing before a whole block (up to 900 kB) has arrived: those few
        # files get a second, larger request.
        again = fetch_heads(
            [urls[i] for i in bz2], [BZ2_HEAD_NBYTES] * len(bz2), storage_options, concurrency
        )
        for i, head in zip(bz2, again, strict=True):
            entry = entries[i]
            errors = entry.metadata.pop("index_errors")
            j = info_at.get(i)
            info = (None, None) if j is None else (answers[j], urls[j])
            index_entry(entry, head, *info, head_nbytes=BZ2_HEAD_NBYTES)
            if "info" in errors and "index_errors" not in entry.metadata:
                entry.metadata["index_errors"] = {"info": errors["info"]}
    return sum("index_errors" in entry.metadata for entry in entries)


def _is_bz2(head: Any) -> bool:
    return isinstance(head, bytes) and detect_compression(head) == "bz2"


__all__ = ["INDEX_CONCURRENCY", "fetch_heads", "index_entry", "index_headers"]
