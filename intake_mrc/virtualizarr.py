"""VirtualiZarr parser: ``MRCParser`` turns an MRC file into a VirtualiZarr ``ManifestStore``.

    from obspec_utils.registry import ObjectStoreRegistry
    from obstore.store import LocalStore
    from virtualizarr import open_virtual_dataset
    from intake_mrc.virtualizarr import MRCParser

    registry = ObjectStoreRegistry({"file://": LocalStore()})
    vds = open_virtual_dataset("file:///data/movie.mrc", parser=MRCParser(), registry=registry)
    vds.vz.to_kerchunk("refs.json", format="json")   # or vds.vz.to_icechunk(session.store)

It follows VirtualiZarr 2's parser protocol (``parser(url=..., registry=...) ->
ManifestStore``; see ``virtualizarr.parsers.typing.Parser``). The header (and a DE movie's
info file, found next to it) is read through the registry's obspec store by a small
``ByteStore`` adapter, so the format, Direct Electron and geometry code are intake_mrc's own
(``open_mrc``, ``intake_mrc.references.frame_references``): the same chunks, dtype with byte
order, dimension names and refusals as ``MRCFile.to_references``. The registry code lives
here only (VirtualiZarr #888 may drop the registry from the protocol).

Needs ``pip install "intake-mrc[virtualizarr]"`` (virtualizarr 2.8+, Python 3.12+).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any
from urllib.parse import unquote

import numpy as np

from .errors import StorageError, TruncatedFileError
from .storage import ByteStore, redact_url


def _is_not_found(error: BaseException) -> bool:
    return isinstance(error, FileNotFoundError) or "NotFound" in type(error).__name__


class ObspecByteStore(ByteStore):
    """Ranged reads from an obspec store (obstore's S3, HTTP, local...), one object."""

    def __init__(self, store: Any, path: str, url: str):
        self.obspec = store
        self.path = path
        self.url = url
        self.name = redact_url(url)
        self._size: int | None = None

    def _call(self, what: str, call: Any) -> Any:
        try:
            return call()
        except Exception as error:  # noqa: BLE001 - classified and named here
            if _is_not_found(error):
                raise FileNotFoundError(f"{self.name}: no such file") from None
            raise StorageError(f"{what}: {type(error).__name__}", self.name) from None

    def size(self) -> int:
        if self._size is None:
            meta = self._call("cannot get the size", lambda: self.obspec.head(self.path))
            self._size = int(meta["size"])
        return self._size

    def known_size(self) -> int | None:
        return self._size

    def token(self) -> str:
        return f"obspec:{self.url}:{self._size}"

    def head(self, nbytes: int) -> bytes:
        length = min(nbytes, self.size())
        if length == 0:
            return b""
        return bytes(self._get(0, length))

    def _get(self, start: int, length: int) -> Any:
        data = self._call(
            "cannot read",
            lambda: self.obspec.get_range(self.path, start=start, length=length),
        )
        if len(data) != length:
            raise TruncatedFileError(
                f"asked for {length} bytes at {start}, got {len(data)}", self.name, "data"
            )
        return data

    def read_runs_into(
        self, starts: Sequence[int], lengths: Sequence[int], out: np.ndarray
    ) -> None:
        view = memoryview(out).cast("B")
        pos = 0
        for start, length in zip(starts, lengths, strict=True):
            view[pos : pos + int(length)] = memoryview(self._get(int(start), int(length)))
            pos += int(length)

    @property
    def basename(self) -> str:
        return self.path.rstrip("/").rsplit("/", 1)[-1]

    def sibling(self, name: str) -> ObspecByteStore:
        folder = self.path.rstrip("/").rsplit("/", 1)[0] if "/" in self.path else ""
        url_folder = self.url.rsplit("/", 1)[0]
        path = f"{folder}/{name}" if folder else name
        return ObspecByteStore(self.obspec, path, f"{url_folder}/{name}")


class MRCParser:
    """A VirtualiZarr parser for MRC files (and Direct Electron movies with their info file).

    ``navigation_shape`` (x, y), ``signed_bytes``, ``metadata_file``, ``scan_file`` are
    ``open_mrc``'s; ``frames_per_chunk`` as in ``MRCFile.to_references`` (None: whole frames
    up to 64 MiB per chunk); ``array_name`` names the data variable. What byte ranges cannot
    describe (compressed files, modes 3 and 101, scans with holes) raises
    ``intake_mrc.references.NotReferenceableError``."""

    def __init__(
        self,
        navigation_shape: tuple[int, ...] | str | None = None,
        signed_bytes: str = "auto",
        metadata_file: Any = "auto",
        scan_file: Any = "auto",
        frames_per_chunk: int | None = None,
        array_name: str = "data",
    ):
        self.navigation_shape = navigation_shape
        self.signed_bytes = signed_bytes
        self.metadata_file = metadata_file
        self.scan_file = scan_file
        self.frames_per_chunk = frames_per_chunk
        self.array_name = array_name

    def __call__(self, url: str, registry: Any) -> Any:
        from virtualizarr.manifests import (
            ChunkManifest,
            ManifestArray,
            ManifestGroup,
            ManifestStore,
        )
        from virtualizarr.manifests.utils import create_v3_array_metadata

        from .api import open_mrc
        from .references import _attributes, _chunk_table, _plan, frame_references

        obspec, path = registry.resolve(url)
        if url.startswith("file://"):
            # open_virtual_dataset percent-encodes local paths (Path.as_uri) and the registry
            # does not decode them: the object's name, and the URL kerchunk/fsspec and
            # obstore's LocalStore read, is the decoded path.
            path = unquote(path)
            url = "file://" + unquote(url[len("file://") :])
        f = open_mrc(
            ObspecByteStore(obspec, path, url),
            navigation_shape=self.navigation_shape,
            signed_bytes=self.signed_bytes,  # type: ignore[arg-type]
            metadata_file=self.metadata_file,
            scan_file=self.scan_file,
            mmap_mode=None,
        )
        geometry = frame_references(f, url=url)  # refuses what ranges cannot describe
        layout = f.frame_array.layout
        if layout.offset + layout.nbytes > f.store.size():
            raise TruncatedFileError(
                f"data need bytes up to {layout.offset + layout.nbytes}, the file has "
                f"{f.store.size()}",
                f.name,
                "nz",
            )
        nav_chunks = _plan(geometry, self.frames_per_chunk, f.name)
        table = _chunk_table(geometry, nav_chunks)
        grid = tuple(n // c for n, c in zip(geometry.frame_grid.shape, nav_chunks, strict=True))
        firsts = np.zeros(grid, dtype=np.int64)
        for index, (first, _) in table.items():
            firsts[index] = first
        per_chunk = int(np.prod(nav_chunks, dtype=np.int64))
        chunk_grid = grid + (1, 1)
        paths = np.full(chunk_grid, url, dtype=np.dtypes.StringDType())
        offsets = (geometry.offset + firsts * geometry.frame_nbytes).astype(np.uint64)
        lengths = np.full(grid, per_chunk * geometry.frame_nbytes, dtype=np.uint64)
        manifest = ChunkManifest.from_arrays(
            paths=paths,
            offsets=offsets.reshape(chunk_grid),
            lengths=lengths.reshape(chunk_grid),
        )
        metadata = create_v3_array_metadata(
            shape=geometry.shape,
            data_type=geometry.dtype,
            chunk_shape=nav_chunks + geometry.frame_shape,
            dimension_names=list(geometry.dimension_names),
            attributes=_attributes(f),
        )
        arrays = {self.array_name: ManifestArray(metadata=metadata, chunkmanifest=manifest)}
        return ManifestStore(group=ManifestGroup(arrays=arrays), registry=registry)
