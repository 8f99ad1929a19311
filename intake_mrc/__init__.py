"""intake-mrc: MRC electron-microscopy data through fsspec, as chunked dask arrays."""

from __future__ import annotations

from .api import open_mrc
from .catalog import glob_catalog, write_catalog
from .errors import MetadataError, MRCFormatError, StorageError, TruncatedFileError
from .mrc import MRCFile

__all__ = [
    "MRCFile",
    "MRCFormatError",
    "MetadataError",
    "StorageError",
    "TruncatedFileError",
    "glob_catalog",
    "open_mrc",
    "write_catalog",
]
__version__ = "0.1.0"
