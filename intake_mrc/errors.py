"""Exceptions raised by intake_mrc.

Every error names the file (with credentials stripped from the URL) and the problem, so one
line of a log says what went wrong and where.
"""

from __future__ import annotations


class MRCFormatError(ValueError):
    """A file is not valid MRC, or its header contradicts its contents."""

    def __init__(self, message: str, source: str | None = None, field: str | None = None):
        self.source = source
        self.field = field
        prefix = f"{source}: " if source else ""
        super().__init__(prefix + message)


class TruncatedFileError(MRCFormatError):
    """The file holds fewer bytes than its header says it must."""


class MetadataError(MRCFormatError):
    """A Direct Electron metadata file (info file or scan coordinates) is missing or invalid."""


class StorageError(OSError):
    """Bytes could not be fetched: the server failed, the object is missing, or the answer
    was short or not the requested range."""

    def __init__(self, message: str, source: str | None = None):
        self.source = source
        prefix = f"{source}: " if source else ""
        super().__init__(prefix + message)


class ObjectChangedError(StorageError):
    """The remote object changed (another version, ETag, modification time or size) since it
    was opened: reading on would mix versions. Open it again to read the new version."""


class CredentialsError(StorageError):
    """The server refused the request for want of (valid) credentials: permanent, not retried."""


class RangeNotSupportedError(StorageError):
    """The server ignores byte ranges (it answers a ranged request with the whole object)."""
