"""``open_mrc``: the one function most users call. It wires storage, format and arrays."""

from __future__ import annotations

from typing import Any

from .format.header import SignedBytes
from .mrc import MRCFile


def open_mrc(
    urlpath_or_file: Any,
    storage_options: dict[str, Any] | None = None,
    navigation_shape: tuple[int, ...] | None = None,
    chunks: Any = "auto",
    mmap_mode: str | None = "c",
    signed_bytes: SignedBytes = "auto",
) -> MRCFile:
    """Open an MRC file lazily: only the header and extended header are read.

    ``urlpath_or_file`` is a local path, an fsspec URL (``s3://``, ``https://``,
    ``memory://``, chained ``simplecache::s3://...``) or an open binary file object.
    ``navigation_shape`` is in RosettaSciIO's (x, y) order: the array becomes
    ``reversed(navigation_shape) + (ny, nx)``. ``chunks`` is what dask accepts for the stack
    axes (frames are never split). ``mmap_mode`` ("c", "r", "r+" or None) applies to local
    files. ``signed_bytes`` decides mode-0 signedness ("auto" follows the IMOD flags).
    """
    return MRCFile.open(
        urlpath_or_file,
        storage_options=storage_options,
        navigation_shape=navigation_shape,
        chunks=chunks,
        mmap_mode=mmap_mode,
        signed_bytes=signed_bytes,
    )
