"""intake-mrc: MRC electron-microscopy data through fsspec, as chunked dask arrays."""

from __future__ import annotations

from .api import open_mrc
from .errors import MetadataError, MRCFormatError, StorageError, TruncatedFileError
from .mrc import MRCFile

__all__ = [
    "MRCFile",
    "MRCFormatError",
    "MetadataError",
    "StorageError",
    "TruncatedFileError",
    "open_mrc",
]
__version__ = "0.1.0"
