"""``open_store``: the store for a local path, an fsspec URL or an open file object.

Plain ``http(s)://`` and ``s3://`` URLs get our own checked ranged clients (``HTTPStore``,
``S3Store``); chained URLs (``simplecache::...``) and other protocols go through fsspec
(``FsspecStore``). An existing local path is always a local file, even when its name holds
``::`` or ``://``.
"""

from __future__ import annotations

import os
from dataclasses import replace
from typing import Any

import fsspec
from fsspec.implementations.local import LocalFileSystem

from ..errors import StorageError
from .base import ByteStore
from .fileobj import FileObjectStore
from .local import LocalStore
from .remote import FsspecStore
from .settings import SETTINGS_KEY, ReadSettings, split_settings
from .urls import S3_ATTEMPTS_PER_CALL, _with_defaults, ambiguous_chain, is_chained, redact_url


def _protocols(fs: fsspec.AbstractFileSystem) -> set[str]:
    protocol = fs.protocol
    return set(protocol if isinstance(protocol, tuple) else (protocol,))


def _remote_store(
    fs: fsspec.AbstractFileSystem, path: str, name: str, settings: ReadSettings, chained: bool
) -> ByteStore:
    protocols = _protocols(fs)
    if "s3" in protocols or "s3a" in protocols:
        # s3fs's own retry loop: one attempt (ours are the retries).
        fs.retries = S3_ATTEMPTS_PER_CALL
    if not chained:
        if {"http", "https"} & protocols:
            from .http import HTTPStore

            return HTTPStore(fs, path, name, settings)
        if {"s3", "s3a"} & protocols:
            from .s3 import S3Store

            return S3Store(fs, path, name, settings)
    return FsspecStore(fs, path, name, settings.retries, settings.backoff, settings.part_nbytes)


def _http_settings(settings: ReadSettings, options: dict[str, Any], given: bool) -> ReadSettings:
    """``client_kwargs={"timeout": seconds}`` (the older way) sets the connect and
    between-bytes timeouts unless our settings were given."""
    timeout = (options.get("client_kwargs") or {}).get("timeout")
    if isinstance(timeout, int | float) and not given:
        settings = replace(
            settings, read_timeout=float(timeout), connect_timeout=min(float(timeout), 10.0)
        )
    return settings


def url_to_fs(url: str, storage_options: dict[str, Any], defaults: bool = True) -> tuple[Any, str]:
    """The filesystem and path of ``url``, as fsspec's ``url_to_fs``, except that a plain S3
    or HTTP URL is never split at ``::`` (it is part of the key: ``s3://b/a::b.mrc`` reads
    the key ``a::b.mrc``), and a chain that would split a key there is refused
    (``StorageError``) instead of reading another object. ``defaults``: with our protocol
    defaults for reads (timeouts, one attempt per call: our layer retries)."""
    options = _with_defaults(url, storage_options) if defaults else storage_options
    why = ambiguous_chain(url)
    if why:
        raise StorageError(why, redact_url(url))
    if "::" in url and not is_chained(url):
        cls = fsspec.get_filesystem_class(url.split("://", 1)[0].lower())
        fs = cls(**{**cls._get_kwargs_from_urls(url), **options})
        return fs, cls._strip_protocol(url)
    return fsspec.core.url_to_fs(url, **options)


def open_store(
    urlpath_or_file: Any,
    storage_options: dict[str, Any] | None = None,
    retries: int | None = None,
) -> ByteStore:
    """A store for a local path, an fsspec URL (chained URLs too) or an open binary file.

    ``storage_options["intake_mrc"]`` holds our read settings (``ReadSettings``); ``retries``
    overrides their number of retries of transient failures."""
    given = (storage_options or {}).get(SETTINGS_KEY)
    storage_options, settings = split_settings(dict(storage_options or {}))
    if retries is not None:
        settings = replace(settings, retries=retries)
    if hasattr(urlpath_or_file, "read") and hasattr(urlpath_or_file, "seek"):
        fs = getattr(urlpath_or_file, "fs", None)
        path = getattr(urlpath_or_file, "path", None)
        if isinstance(fs, fsspec.AbstractFileSystem) and isinstance(path, str):
            # An fsspec file: reopen by path so that dask tasks can pickle the store.
            if isinstance(fs, LocalFileSystem):
                return LocalStore(path)
            return _remote_store(
                fs, path, redact_url(fs.unstrip_protocol(path)), settings, chained=False
            )
        name = getattr(urlpath_or_file, "name", None)
        return FileObjectStore(urlpath_or_file, str(name) if name else "<file object>")
    if isinstance(urlpath_or_file, os.PathLike):
        urlpath_or_file = os.fspath(urlpath_or_file)
    if not isinstance(urlpath_or_file, str):
        raise TypeError(
            f"expected a path, URL or binary file object, not {type(urlpath_or_file).__name__}"
        )
    url = urlpath_or_file
    # An existing local file wins over URL syntax: "a::b.mrc" is a legal Linux file name.
    if ("://" not in url and "::" not in url) or os.path.isfile(url):
        return LocalStore(url)
    if url.startswith("file://") and os.path.isfile(url[len("file://") :]):
        # fsspec would split "file:///d/a::b.mrc" at "::" (intake 2 writes {CATALOG_DIR}
        # as a file:// URL).
        return LocalStore(url[len("file://") :])
    chained = is_chained(url)
    if not chained and url.split("://", 1)[0].lower() in ("http", "https"):
        explicit = isinstance(given, dict) and "read_timeout" in given
        settings = _http_settings(settings, storage_options, given=explicit)
    fs, path = url_to_fs(url, storage_options)
    if isinstance(fs, LocalFileSystem):
        return LocalStore(path)
    return _remote_store(fs, path, redact_url(url), settings, chained)
