"""``open_store``: the store for a local path, an fsspec URL or an open file object."""

from __future__ import annotations

import os
from typing import Any

import fsspec
from fsspec.implementations.local import LocalFileSystem

from .base import ByteStore
from .fileobj import FileObjectStore
from .local import LocalStore
from .remote import FsspecStore
from .retry import RETRIES
from .urls import _with_defaults, redact_url


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
