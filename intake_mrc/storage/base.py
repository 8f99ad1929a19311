"""The store interface: ranged reads of one file, checked lengths, small pickles."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from ..errors import MRCFormatError

MMAP_MODES = (None, "c", "r", "r+")


class ByteStore:
    """Interface: ranged reads of one file. Subclasses implement ``head``, ``size`` and
    ``read_runs_into``; the folder methods serve Direct Electron discovery."""

    name: str = "<bytes>"

    def head(self, nbytes: int) -> bytes:
        """Up to ``nbytes`` from the start, in one request; fewer only if the file is shorter."""
        raise NotImplementedError

    def known_size(self) -> int | None:
        """The file length if known without a request."""
        return None

    def size(self) -> int:
        """The file length, asking the server if needed (remote stores override)."""
        known = self.known_size()
        if known is None:
            raise NotImplementedError
        return known

    def read_runs(self, starts: Sequence[int], lengths: Sequence[int]) -> np.ndarray:
        """The runs' bytes concatenated in order, as a new writable uint8 array."""
        total = int(sum(lengths))
        out = np.empty(total, dtype=np.uint8)
        self.read_runs_into(starts, lengths, out)
        return out

    def read_runs_into(
        self, starts: Sequence[int], lengths: Sequence[int], out: np.ndarray
    ) -> None:
        raise NotImplementedError

    def token(self) -> str:
        """A string that changes when the file changes (for dask names)."""
        return self.name

    def memmap(self, offset: int, nbytes: int, mode: str) -> np.ndarray | None:
        """A memory map of [offset, offset + nbytes), or None where the store cannot map."""
        return None

    def read_all(self, limit: int) -> bytes:
        """The whole (small) file; ``MRCFormatError`` when it is larger than ``limit``."""
        data = self.head(limit + 1)
        if len(data) > limit:
            raise MRCFormatError(
                f"larger than {limit} bytes, too large for this file type", self.name
            )
        return data

    @property
    def basename(self) -> str:
        return self.name.replace("\\", "/").rstrip("/").rsplit("/", 1)[-1]

    def sibling(self, name: str) -> ByteStore | None:
        """The store of the file ``name`` in this file's folder (None if unknown)."""
        return None

    def list_folder(self) -> list[str] | None:
        """The names of the files in this file's folder, in one listing; None if the
        storage cannot list."""
        return None
