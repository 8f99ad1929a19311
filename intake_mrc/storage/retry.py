"""Retries: which failures are transient (worth another attempt) and which mean the object
ends before the range asked."""

from __future__ import annotations

import asyncio

# Retries of transient failures (network errors, 5xx, 429, cut transfers) by our layer, for
# every fsspec protocol: attempts = RETRIES + 1, sleeping BACKOFF * 2**k between them.
RETRIES = 3
BACKOFF = 0.1


def _is_transient(error: BaseException) -> bool:
    """Whether a failed fetch is worth retrying (network trouble, 5xx, throttling)."""
    if isinstance(error, FileNotFoundError | PermissionError | IsADirectoryError):
        return False
    status = getattr(error, "status", None) or getattr(error, "code", None)
    if isinstance(status, int):
        return status >= 500 or status == 429
    return isinstance(error, OSError | TimeoutError | asyncio.TimeoutError | ConnectionError) or (
        type(error).__module__.startswith(("aiohttp", "botocore", "aiobotocore"))
    )


def _past_end(error: BaseException) -> bool:
    """A server's answer that a range starts past the end of the object (HTTP 416)."""
    status = getattr(error, "status", None) or getattr(error, "code", None)
    return status == 416 or "InvalidRange" in str(error)
