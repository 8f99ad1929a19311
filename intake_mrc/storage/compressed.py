"""Compressed files (gzip, bzip2): decompressed incrementally, once per process, and only
as far as they are read; ranges served from memory.

gzip and bzip2 have no random access, so a range is served by decompressing from the start
up to its end. The output grows with what the stream really yields (a header that claims
terabytes allocates nothing it does not decompress), and ``set_limit`` (the size the MRC
header declares, extended header included) stops decompression there: a small file that
expands to gigabytes past its declared data (a decompression bomb) costs only what the
header declares.
"""

from __future__ import annotations

import bz2
import threading
import zlib
from collections.abc import Sequence
from typing import Any

import numpy as np

from ..errors import MRCFormatError, TruncatedFileError
from .base import ByteStore

# Compressed bytes fetched from the inner store at a time, and decompressed bytes produced
# per step: memory beyond the output stays within these.
COMPRESSED_BLOCK_NBYTES = 4 * 2**20
OUTPUT_STEP_NBYTES = 8 * 2**20
_MAGIC = {"gzip": b"\x1f\x8b", "bz2": b"BZh"}


class _Inflater:
    """One compressed stream (several gzip members or bzip2 streams in a row) decompressed
    step by step, never more than asked for per step (``max_length``)."""

    def __init__(self, compression: str, read_block: Any):
        self.compression = compression
        self._read_block = read_block  # () -> next compressed bytes, b"" at the end
        self._pending = b""  # compressed bytes not yet given to the decompressor
        self._input_done = False
        self._decompressor = self._new()
        self.finished = False

    def _new(self) -> Any:
        if self.compression == "gzip":
            return zlib.decompressobj(wbits=16 + zlib.MAX_WBITS)
        return bz2.BZ2Decompressor()

    def _input(self) -> bytes:
        if self._pending:
            data, self._pending = self._pending, b""
            return data
        if self._input_done:
            return b""
        data = self._read_block()
        if not data:
            self._input_done = True
        return data

    def more(self, nbytes: int) -> bytes:
        """Up to ``nbytes`` more decompressed bytes; b"" once the stream has ended."""
        magic = _MAGIC[self.compression]
        while not self.finished:
            d = self._decompressor
            if d.eof:
                rest = d.unused_data + self._pending
                self._pending = b""
                while len(rest) < len(magic) and (more := self._input()):
                    rest += more
                if not rest.startswith(magic):
                    # The end, or bytes after the last member that start no other one
                    # (padding): not data.
                    self.finished = True
                    break
                self._pending = rest
                self._decompressor = self._new()
                continue
            if self.compression == "bz2" and not d.needs_input:
                data = b""  # the decompressor still holds input from the last step
            else:
                data = self._input()
            # With no input left, an empty call still yields output held from the last step.
            out = d.decompress(data, nbytes)
            if self.compression == "gzip" and not d.eof:
                # Input held back by max_length (at the end of a member, zlib puts what
                # follows in unused_data, and leaves a copy in unconsumed_tail).
                self._pending = d.unconsumed_tail + self._pending
            if out:
                return out
            if not data and not d.eof and self._input_done and not self._pending:
                # The compressed data end inside a member: what it yielded is all there is.
                self.finished = True
        return b""


class DecompressedStore(ByteStore):
    """A gzip or bzip2 file, decompressed into memory as far as it is read (once per
    process: a dask graph holds this store once, so tasks share it), never past
    ``set_limit``'s size."""

    def __init__(self, inner: ByteStore, compression: str, whole: bytes | None = None):
        self.inner = inner
        self.compression = compression
        self.name = f"{inner.name} ({compression})"
        # ``whole``: the compressed file's first bytes (all of it, or a prefix) when an
        # earlier read already holds them; reading continues after them.
        self._whole = whole
        self._limit: int | None = None
        self._lock = threading.Lock()
        self._data = bytearray()
        self._position = 0  # compressed bytes read from the inner store
        self._inflater: _Inflater | None = None

    def __getstate__(self) -> dict[str, Any]:
        # Workers fetch and decompress for themselves; no data travels in the graph.
        return {
            "inner": self.inner,
            "compression": self.compression,
            "name": self.name,
            "limit": self._limit,
        }

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__init__(state["inner"], state["compression"])  # type: ignore[misc]
        self._limit = state.get("limit")

    def set_limit(self, nbytes: int) -> None:
        """Decompress no further than ``nbytes`` (the size the header declares)."""
        with self._lock:
            self._limit = int(nbytes)

    def _read_block(self) -> bytes:
        if self._whole is not None:
            block, self._whole = self._whole, None
            self._position = len(block)
            return block
        size = self.inner.size()
        if self._position >= size:
            return b""
        length = min(COMPRESSED_BLOCK_NBYTES, size - self._position)
        block = self.inner.read_runs([self._position], [length]).tobytes()
        self._position += length
        return block

    def _ensure(self, nbytes: int | None) -> None:
        """Decompress until ``nbytes`` (None: all, within the limit) are there or the stream
        ends. Holds the lock."""
        want = self._limit if nbytes is None else nbytes
        if want is not None and self._limit is not None:
            want = min(want, self._limit)
        if self._inflater is None:
            self._inflater = _Inflater(self.compression, self._read_block)
        inflater = self._inflater
        try:
            while (want is None or len(self._data) < want) and not inflater.finished:
                step = OUTPUT_STEP_NBYTES if want is None else want - len(self._data)
                self._data += inflater.more(min(step, OUTPUT_STEP_NBYTES))
        except (OSError, EOFError, ValueError, zlib.error) as error:
            raise MRCFormatError(
                f"cannot decompress ({self.compression}): {error}", self.inner.name
            ) from None

    def _finished(self) -> bool:
        reached = self._limit is not None and len(self._data) >= self._limit
        return reached or (self._inflater is not None and self._inflater.finished)

    def known_size(self) -> int | None:
        """The decompressed size once known: the stream ended, or reached the limit."""
        with self._lock:
            if not self._finished():
                return None
            if self._limit is not None:
                return min(len(self._data), self._limit)
            return len(self._data)

    def size(self) -> int:
        """Decompresses up to the limit (all of it when no limit was set)."""
        with self._lock:
            self._ensure(None)
            if self._limit is not None:
                return min(len(self._data), self._limit)
            return len(self._data)

    def token(self) -> str:
        return f"{self.inner.token()}:{self.compression}"

    def head(self, nbytes: int) -> bytes:
        with self._lock:
            self._ensure(nbytes)
            return bytes(self._data[:nbytes])

    def read_runs(self, starts: Sequence[int], lengths: Sequence[int]) -> np.ndarray:
        # Decompressed (and checked) before the output is allocated: a header that claims
        # more than the stream holds fails here, not in a huge allocation.
        self._available(starts, lengths)
        return super().read_runs(starts, lengths)

    def _available(self, starts: Sequence[int], lengths: Sequence[int]) -> int:
        """Decompress as far as the runs reach; the bytes available (TruncatedFileError
        when the runs reach past them). Holds no lock on return."""
        end = max((int(s) + int(n) for s, n in zip(starts, lengths, strict=False)), default=0)
        with self._lock:
            self._ensure(end)
            available = len(self._data)
            if self._limit is not None:
                available = min(available, self._limit)
        if end > available:
            raise TruncatedFileError(
                f"decompressed data end at byte {available}, reading up to byte {end}: "
                "shorter than its header says",
                self.name,
                "data",
            )
        return available

    def read_runs_into(
        self, starts: Sequence[int], lengths: Sequence[int], out: np.ndarray
    ) -> None:
        if not len(starts):
            return
        self._available(starts, lengths)
        view = memoryview(out).cast("B")
        with self._lock:
            data = memoryview(self._data)
            try:
                pos = 0
                for start, length in zip(starts, lengths, strict=False):
                    start, length = int(start), int(length)
                    view[pos : pos + length] = data[start : start + length]
                    pos += length
            finally:
                data.release()
