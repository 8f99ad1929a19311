"""Compressed files (gzip, bzip2): decompressed once per process, ranges served from memory."""

from __future__ import annotations

import bz2
import gzip
import threading
from collections.abc import Sequence
from typing import Any

import numpy as np

from ..errors import MRCFormatError, TruncatedFileError
from .base import ByteStore


class DecompressedStore(ByteStore):
    """A gzip or bzip2 file: no random access, so the whole file is decompressed in memory
    (once per process: a dask graph holds this store once, so tasks share it) and ranges
    are served from there."""

    def __init__(self, inner: ByteStore, compression: str, whole: bytes | None = None):
        self.inner = inner
        self.compression = compression
        self.name = f"{inner.name} ({compression})"
        # ``whole``: the compressed file when an earlier read already holds all of it.
        self._compressed = whole
        self._data_cache: bytes | None = None
        self._lock = threading.Lock()

    def __getstate__(self) -> dict[str, Any]:
        # Workers fetch and decompress for themselves; no data travels in the graph.
        return {"inner": self.inner, "compression": self.compression, "name": self.name}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__init__(state["inner"], state["compression"])  # type: ignore[misc]

    def _data(self) -> bytes:
        with self._lock:
            if self._data_cache is None:
                raw = self._compressed
                if raw is None:
                    raw = self.inner.read_runs([0], [self.inner.size()]).tobytes()
                try:
                    decompress = gzip.decompress if self.compression == "gzip" else bz2.decompress
                    self._data_cache = decompress(raw)
                except (OSError, EOFError, ValueError) as error:
                    raise MRCFormatError(
                        f"cannot decompress ({self.compression}): {error}", self.inner.name
                    ) from None
                self._compressed = None
            return self._data_cache

    def known_size(self) -> int:
        return len(self._data())

    def token(self) -> str:
        return f"{self.inner.token()}:{self.compression}"

    def head(self, nbytes: int) -> bytes:
        return self._data()[:nbytes]

    def read_runs_into(
        self, starts: Sequence[int], lengths: Sequence[int], out: np.ndarray
    ) -> None:
        data = self._data()
        view = memoryview(out).cast("B")
        pos = 0
        for start, length in zip(starts, lengths, strict=False):
            start, length = int(start), int(length)
            if start + length > len(data):
                raise TruncatedFileError(
                    f"decompressed data end at byte {len(data)}, reading "
                    f"[{start}, {start + length})",
                    self.name,
                    "data",
                )
            view[pos : pos + length] = data[start : start + length]
            pos += length
