"""The identity of a remote object's version: what makes dask names change when the data can
differ (the endpoint, the path, and the version seen when the header was read)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Identity:
    """A version of an object, as one answer states it. Fields a server does not send are
    None; a field sent at open must come back unchanged in every later answer."""

    size: int | None = None
    etag: str | None = None
    last_modified: str | None = None
    version_id: str | None = None

    def token(self, endpoint: str, path: str) -> str:
        return "|".join(
            str(v)
            for v in (endpoint, path, self.size, self.etag, self.last_modified, self.version_id)
        )

    def differs(self, other: Identity) -> str:
        """What differs in ``other`` (a later answer), or "" when it is the same version."""
        for field in ("version_id", "etag", "last_modified"):
            mine, theirs = getattr(self, field), getattr(other, field)
            if mine is not None and theirs != mine:
                return f"{field.replace('_', ' ')} {mine!r} at open, now {theirs!r}"
        if self.size is not None and other.size is not None and other.size != self.size:
            return f"size {self.size} at open, now {other.size}"
        return ""
