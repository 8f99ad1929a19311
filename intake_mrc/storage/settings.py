"""Read settings of the HTTP and S3 stores: retries, deadlines, concurrency, part size and
what to do with a server that ignores byte ranges.

Users set them per open through ``storage_options={"intake_mrc": {...}}``; the key is taken
out before the options reach fsspec. Every field is documented in the README, with the total
number of requests and the total time a permanent failure costs.
"""

from __future__ import annotations

from dataclasses import dataclass, fields, replace
from typing import Any

from .retry import BACKOFF, RETRIES

# The storage_options key that holds these settings.
SETTINGS_KEY = "intake_mrc"

NO_RANGE_POLICIES = ("refuse", "cache")


@dataclass(frozen=True)
class ReadSettings:
    """How the HTTP and S3 stores fetch ranges.

    A permanent failure of one range costs exactly ``retries + 1`` requests and at most
    ``(retries + 1) * request_timeout + sum(backoff * 2**k) `` seconds, or the capped
    Retry-After waits instead of the backoff for 429 and 503 answers."""

    # Our retries of transient failures (network errors, timeouts, 5xx, 429, cut transfers);
    # the clients below us (botocore, s3fs, aiohttp) do not retry.
    retries: int = RETRIES
    # Seconds before the k-th retry: backoff * 2**k.
    backoff: float = BACKOFF
    # A Retry-After on 429/503 is waited for, but never longer than this many seconds.
    retry_after_cap: float = 5.0
    # Seconds to connect, and at most between two pieces of a body.
    connect_timeout: float = 10.0
    read_timeout: float = 30.0
    # Total seconds for one request, from sending it to the last byte of its body: a server
    # that drips bytes slowly fails in bounded time.
    request_timeout: float = 60.0
    # Ranges in flight at once for one read, and the largest range one request asks for.
    concurrency: int = 16
    part_nbytes: int = 8 * 2**20
    # A server that ignores Range: "refuse" (RangeNotSupportedError naming simplecache::) or
    # "cache" (download the object once, streamed to a local file, then read from there).
    no_range: str = "refuse"
    # Folder for "cache" downloads (default: the system's temporary folder).
    cache_dir: str | None = None
    # Redirects followed per request (headers are not sent to another origin).
    max_redirects: int = 5
    # How many times one range may be continued after a server capped its answer.
    max_continuations: int = 64

    def __post_init__(self) -> None:
        if self.retries < 0 or self.concurrency < 1 or self.part_nbytes < 1:
            raise ValueError("retries must be >= 0, concurrency and part_nbytes >= 1")
        for name in ("backoff", "retry_after_cap", "connect_timeout", "read_timeout"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must be >= 0")
        if self.request_timeout <= 0:
            raise ValueError("request_timeout must be > 0")
        if self.no_range not in NO_RANGE_POLICIES:
            raise ValueError(f"no_range must be one of {NO_RANGE_POLICIES}, not {self.no_range!r}")

    @classmethod
    def from_options(cls, options: Any) -> ReadSettings:
        """Settings from the user's dict (unknown names are an error, not ignored)."""
        if options is None:
            return cls()
        if isinstance(options, ReadSettings):
            return options
        if not isinstance(options, dict):
            raise TypeError(f"storage_options[{SETTINGS_KEY!r}] must be a dict")
        known = {f.name for f in fields(cls)}
        unknown = set(options) - known
        if unknown:
            raise ValueError(
                f"unknown storage_options[{SETTINGS_KEY!r}] setting(s) {sorted(unknown)}; "
                f"known: {sorted(known)}"
            )
        return replace(cls(), **options)


def split_settings(storage_options: dict[str, Any]) -> tuple[dict[str, Any], ReadSettings]:
    """(the options for fsspec, our settings) from the user's storage options."""
    options = dict(storage_options)
    settings = ReadSettings.from_options(options.pop(SETTINGS_KEY, None))
    return options, settings
