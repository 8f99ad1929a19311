"""intake-mrc: MRC electron-microscopy data through fsspec, as chunked dask arrays.

Names are imported on first use (PEP 562), so that importing a submodule, as xarray does
with ``intake_mrc.xarray_backend`` whenever it lists its engines, does not import dask.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .api import open_mrc
    from .catalog import glob_catalog, write_catalog
    from .errors import (
        CredentialsError,
        MetadataError,
        MRCFormatError,
        ObjectChangedError,
        RangeNotSupportedError,
        StorageError,
        TruncatedFileError,
    )
    from .mrc import MRCFile

_WHERE = {
    "open_mrc": ".api",
    "glob_catalog": ".catalog",
    "write_catalog": ".catalog",
    "CredentialsError": ".errors",
    "MetadataError": ".errors",
    "ObjectChangedError": ".errors",
    "RangeNotSupportedError": ".errors",
    "MRCFormatError": ".errors",
    "StorageError": ".errors",
    "TruncatedFileError": ".errors",
    "MRCFile": ".mrc",
}

__all__ = [
    "CredentialsError",
    "MRCFile",
    "MRCFormatError",
    "MetadataError",
    "ObjectChangedError",
    "RangeNotSupportedError",
    "StorageError",
    "TruncatedFileError",
    "glob_catalog",
    "open_mrc",
    "write_catalog",
]
__version__ = "0.1.0"


def __getattr__(name: str) -> Any:
    if name in _WHERE:
        value = getattr(importlib.import_module(_WHERE[name], __name__), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
