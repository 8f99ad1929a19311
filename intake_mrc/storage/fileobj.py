"""Open binary file objects (seek + read), shared between threads under a lock."""

from __future__ import annotations

import io
import os
import threading
from collections.abc import Sequence
from typing import Any, BinaryIO

import numpy as np

from ..errors import MRCFormatError, TruncatedFileError
from .base import ByteStore
from .local import LocalStore


class FileObjectStore(ByteStore):
    """An open binary file object (seek + read). Usable from threads, not other processes."""

    def __init__(self, fileobj: BinaryIO, name: str):
        self.fileobj = fileobj
        self.name = name
        if isinstance(fileobj, io.TextIOBase) or "b" not in getattr(fileobj, "mode", "b"):
            raise MRCFormatError("file object is open in text mode; open it with 'rb'", name)
        self._lock = threading.Lock()
        with self._lock:
            pos = fileobj.tell()
            self._size = fileobj.seek(0, io.SEEK_END)
            fileobj.seek(pos)

    def __reduce__(self) -> Any:
        raise TypeError(
            f"{self.name}: an open file object cannot be sent to another process; "
            "pass a path or URL to use a distributed cluster"
        )

    def known_size(self) -> int:
        return self._size

    def token(self) -> str:
        return f"fileobj:{id(self.fileobj)}:{self._size}"

    def head(self, nbytes: int) -> bytes:
        return self._read(0, nbytes)

    def sibling(self, name: str) -> ByteStore | None:
        # A file object opened from a local path has neighbours on that disk.
        if os.path.isfile(self.name):
            # The same rules as for the path (symbolic links out of the folder not followed).
            return LocalStore(os.path.abspath(self.name)).sibling(name)
        return None

    def list_folder(self) -> list[str] | None:
        if os.path.isfile(self.name):
            return LocalStore(self.name).list_folder()
        return None

    def _read(self, start: int, length: int) -> bytes:
        with self._lock:
            self.fileobj.seek(start)
            return self.fileobj.read(length)

    def read_runs_into(
        self, starts: Sequence[int], lengths: Sequence[int], out: np.ndarray
    ) -> None:
        view = memoryview(out).cast("B")
        pos = 0
        for start, length in zip(starts, lengths, strict=False):
            data = self._read(int(start), int(length))
            if len(data) != length:
                raise TruncatedFileError(
                    f"got {len(data)} of {length} bytes at byte {start}", self.name, "data"
                )
            view[pos : pos + length] = data
            pos += length
