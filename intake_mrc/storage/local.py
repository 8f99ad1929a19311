"""Local files: positioned reads into caller buffers, and memory maps.

Every read opens the file and compares what it opened (``fstat``: its inode) with the file
stat'ed when the store was made: a file swapped after discovery or open (for a symbolic
link to a file elsewhere, or replaced by a rename) is ``ObjectChangedError``, not read. So
the symbolic-link rule of discovery (``resolves_inside``) cannot be raced."""

from __future__ import annotations

import os
import socket
from collections.abc import Sequence
from typing import Any

import numpy as np

from ..errors import ObjectChangedError, TruncatedFileError
from .base import ByteStore


class LinkOutsideFolderError(FileNotFoundError):
    """A symbolic link beside a file leads out of its folder: not followed by discovery."""


def resolves_inside(path: str, *folders: str) -> bool:
    """Whether ``path``, after every symbolic link, lies in one of ``folders`` (each taken
    after its own links) or below. The one rule for links met by DE discovery (the movie's
    folder) and by the catalog glob (the folder scanned): a link leading out is not
    followed, whatever it points to."""
    target = os.path.realpath(path)
    for folder in folders:
        root = os.path.realpath(folder)
        if os.path.commonpath([root, target]) == root:
            return True
    return False


class LocalStore(ByteStore):
    """A file on a local disk, read with positioned reads into caller buffers."""

    def __init__(self, path: str):
        self.path = os.path.abspath(path)
        self.name = self.path
        try:
            stat = os.stat(self.path)
        except FileNotFoundError:
            raise FileNotFoundError(f"{self.path}: no such file") from None
        if not os.path.isfile(self.path):
            raise IsADirectoryError(f"{self.path}: not a regular file")
        self._size = stat.st_size
        self._mtime = stat.st_mtime_ns
        # The file this store was made for (after its links): what every read must open.
        # The inode only: writes through a writable memmap change the modification time,
        # and a movie still being written grows (the same file). Compared on this machine
        # only: device and inode numbers of some network file systems (CIFS without server
        # inode numbers) differ between the machines a pickled store travels to.
        self._inode = stat.st_ino
        self._host = socket.gethostname()

    @property
    def basename(self) -> str:
        # The platform's own separators: on POSIX a backslash is a character of the name.
        return os.path.basename(self.path)

    def known_size(self) -> int:
        return self._size

    def token(self) -> str:
        return f"{self.path}:{self._size}:{self._mtime}"

    def _open(self, mode: str = "rb", buffering: int = -1) -> Any:
        """The file opened for reading, checked to be the one this store was made for."""
        f = open(self.path, mode, buffering=buffering)
        try:
            stat = os.fstat(f.fileno())
        except BaseException:
            f.close()
            raise
        inode = getattr(self, "_inode", stat.st_ino)  # stores pickled before the check
        if stat.st_ino != inode and getattr(self, "_host", None) == socket.gethostname():
            f.close()
            raise ObjectChangedError(
                "the file changed since it was opened (its name now leads to another file: "
                "replaced, or swapped for a symbolic link); open it again",
                self.name,
            )
        return f

    def head(self, nbytes: int) -> bytes:
        with self._open() as f:
            return f.read(nbytes)

    def read_runs_into(
        self, starts: Sequence[int], lengths: Sequence[int], out: np.ndarray
    ) -> None:
        view = memoryview(out).cast("B")
        pos = 0
        with self._open(buffering=0) as f:
            for start, length in zip(starts, lengths, strict=False):
                start, length = int(start), int(length)
                f.seek(start)
                got = 0
                while got < length:
                    n = f.readinto(view[pos + got : pos + length])
                    if not n:
                        raise TruncatedFileError(
                            f"file ends at byte {start + got}, reading [{start}, {start + length})",
                            self.name,
                            "data",
                        )
                    got += n
                pos += length

    def _inside_folder(self, path: str) -> bool:
        """Whether ``path`` (after every symbolic link) lies in this file's folder or below:
        the folder as given, or the one this file itself resolves to (a folder of links to
        an acquisition stored elsewhere keeps working; a link anywhere else does not)."""
        return resolves_inside(
            path, os.path.dirname(self.path), os.path.dirname(os.path.realpath(self.path))
        )

    def sibling(self, name: str) -> LocalStore:
        """The file ``name`` beside this one. A symbolic link is followed only when its
        target lies in this folder (or below): discovery never reads outside the folder."""
        folder = os.path.dirname(self.path)
        if name in ("", ".", "..") or "/" in name or os.sep in name:
            raise FileNotFoundError(f"{os.path.join(folder, name)}: not a name in {folder}")
        path = os.path.join(folder, name)
        if os.path.islink(path) and not self._inside_folder(path):
            raise LinkOutsideFolderError(
                f"{path}: a symbolic link to a file outside {folder}, not followed"
            )
        return LocalStore(path)

    def list_folder(self) -> list[str]:
        """Regular files, and symbolic links to regular files inside the folder (links
        that lead out of it are left out)."""
        folder = os.path.dirname(self.path)
        names = []
        for entry in os.scandir(folder):
            if not entry.is_file():  # follows links: a link to a folder or nothing is out
                continue
            if entry.is_symlink() and not self._inside_folder(entry.path):
                continue
            names.append(entry.name)
        return sorted(names)

    def memmap(self, offset: int, nbytes: int, mode: str) -> np.ndarray:
        if offset + nbytes > self._size:
            raise TruncatedFileError(
                f"file is {self._size} bytes, cannot map [{offset}, {offset + nbytes})",
                self.name,
                "data",
            )
        with self._open("r+b" if mode == "r+" else "rb") as f:
            return np.memmap(f, dtype=np.uint8, mode=mode, offset=offset, shape=(nbytes,))
