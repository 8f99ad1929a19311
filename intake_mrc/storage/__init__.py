"""Storage access: byte ranges from local files, fsspec URLs and open file objects.

A ``ByteStore`` answers "the bytes [start, start + length) for many runs at once" and checks
every answer's length. It knows nothing of MRC. Stores pickle small (a path and filesystem
options, never data or open handles) so that dask tasks can carry them to other processes.

One module per job: ``base`` (the interface), ``local``, ``remote`` (fsspec: S3, HTTP, ...),
``ranged`` (checked ranged GETs: identity, Content-Range, deadlines, retries) with ``http``
(aiohttp) and ``s3`` (aiobotocore), ``identity``, ``settings`` (``ReadSettings``),
``fileobj``, ``compressed``, ``retry`` (what is transient), ``urls`` (redaction and protocol
defaults) and ``opener`` (``open_store``).
"""

from .base import MMAP_MODES, ByteStore
from .compressed import DecompressedStore
from .fileobj import FileObjectStore
from .local import LocalStore
from .opener import open_store
from .remote import REMOTE_BATCH_NBYTES, REMOTE_PART_NBYTES, FsspecStore
from .retry import BACKOFF, RETRIES
from .settings import SETTINGS_KEY, ReadSettings
from .urls import CONNECT_TIMEOUT, READ_TIMEOUT, S3_ATTEMPTS_PER_CALL, redact_url

__all__ = [
    "BACKOFF",
    "CONNECT_TIMEOUT",
    "MMAP_MODES",
    "READ_TIMEOUT",
    "REMOTE_BATCH_NBYTES",
    "REMOTE_PART_NBYTES",
    "RETRIES",
    "S3_ATTEMPTS_PER_CALL",
    "SETTINGS_KEY",
    "ByteStore",
    "DecompressedStore",
    "FileObjectStore",
    "FsspecStore",
    "LocalStore",
    "ReadSettings",
    "open_store",
    "redact_url",
]
