"""The opened MRC file: header + extended header + a lazily read array.

``MRCFile.open`` reads the main and extended headers by byte ranges (one request, a second
only for an extended header longer than the first read) and builds the ``FrameArray``;
nothing else is read until ``read()`` or a dask compute.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import dask.array as da
import numpy as np

from .array import FrameArray, to_dask
from .errors import MRCFormatError, TruncatedFileError
from .format.extended import (
    ExtendedHeader,
    decode_extended_header,
    fei_pixel_size_m,
    fei_scan_shape,
)
from .format.header import (
    HEADER_NBYTES,
    MainHeader,
    SignedBytes,
    check_extent,
    detect_compression,
    parse_main_header,
)
from .storage import MMAP_MODES, ByteStore, DecompressedStore, open_store

# The first request asks for this much: the main header plus most extended headers.
FIRST_READ_NBYTES = HEADER_NBYTES + 64 * 1024


def _axis(
    name: str,
    size: int,
    scale: float = 1.0,
    units: str | None = None,
    navigate: bool = False,
    offset: float = 0.0,
) -> dict[str, Any]:
    return {
        "name": name,
        "size": int(size),
        "scale": float(scale),
        "units": units,
        "offset": float(offset),
        "navigate": navigate,
    }


class MRCFile:
    """An MRC file opened for lazy reading. Build one with :func:`intake_mrc.open_mrc`."""

    def __init__(
        self,
        store: ByteStore,
        header: MainHeader,
        extended: ExtendedHeader | None,
        navigation_shape: tuple[int, ...] | None = None,
        chunks: Any = "auto",
        mmap_mode: str | None = "c",
        frame_table: np.ndarray | None = None,
        axes: list[dict[str, Any]] | None = None,
        metadata: dict[str, Any] | None = None,
    ):
        self.store = store
        self.main_header = header
        self._extended = extended
        self.chunks = chunks
        layout = header.layout
        if navigation_shape is None:
            nav = header.shape[:-2]
        else:
            nav = tuple(int(n) for n in navigation_shape)
            if frame_table is None and math.prod(nav) != layout.n_frames:
                raise MRCFormatError(
                    f"navigation shape {nav} (numpy order) holds {math.prod(nav)} frames, "
                    f"the file has {layout.n_frames}",
                    store.name,
                    "navigation_shape",
                )
        self.frame_array = FrameArray(store, layout, nav, frame_table, mmap_mode)
        self.axes = axes if axes is not None else self._default_axes(navigation_shape is not None)
        self.metadata: dict[str, Any] = metadata or {}
        # Direct Electron movies fill these (lazily opened images); empty otherwise.
        self.virtual_images: Mapping[str, MRCFile] = {}
        self.external_images: Mapping[str, MRCFile] = {}
        self.metadata.setdefault("mrc", self._mrc_metadata())

    @classmethod
    def open(
        cls,
        urlpath_or_file: Any,
        storage_options: dict[str, Any] | None = None,
        navigation_shape: tuple[int, ...] | str | None = None,
        chunks: Any = "auto",
        mmap_mode: str | None = "c",
        signed_bytes: SignedBytes = "auto",
        default_unsigned_bytes: bool = False,
        store: ByteStore | None = None,
    ) -> MRCFile:
        """Open a file: read its headers and check them against its size when known."""
        if mmap_mode not in MMAP_MODES:
            raise ValueError(f"mmap_mode must be one of {MMAP_MODES}, not {mmap_mode!r}")
        store = store or open_store(urlpath_or_file, storage_options)
        head = store.head(FIRST_READ_NBYTES)
        compression = detect_compression(head)
        if compression and head[208:211] != b"MAP":
            # A short first read already holds the whole compressed file: not read again.
            whole = head if store.known_size() == len(head) else None
            store = DecompressedStore(store, compression, whole)
            head = store.head(FIRST_READ_NBYTES)
        header = parse_main_header(
            head, store.name, store.known_size(), signed_bytes, default_unsigned_bytes
        )
        extended = cls._read_extended(store, header, head)
        nav = None
        notes = []
        if isinstance(navigation_shape, str):
            if navigation_shape != "auto":
                raise ValueError(
                    f"navigation_shape must be (x, y, ...), 'auto' or None, "
                    f"not {navigation_shape!r}"
                )
            nav = fei_scan_shape(extended, header.layout.n_frames)
            notes.append(
                f"navigation shape from the FEI scan size: {nav}"
                if nav
                else "navigation_shape='auto': the FEI scan size does not fit the frames"
            )
        elif navigation_shape is not None:
            nav = tuple(reversed(tuple(navigation_shape)))
        out = cls(store, header, extended, nav, chunks, mmap_mode)
        out.notes.extend(notes)
        return out

    @staticmethod
    def _read_extended(store: ByteStore, header: MainHeader, head: bytes) -> ExtendedHeader | None:
        nsymbt = header.extended_nbytes
        if nsymbt == 0:
            return None
        end = HEADER_NBYTES + nsymbt
        if len(head) >= end:
            raw = head[HEADER_NBYTES:end]
        else:
            # The store fetches (and length-checks) before it allocates, so a lying NSYMBT
            # costs one short answer; here the failure is named after the field.
            try:
                raw = store.read_runs([HEADER_NBYTES], [nsymbt]).tobytes()
            except TruncatedFileError:
                raise MRCFormatError(
                    f"NSYMBT={nsymbt} runs past the end of the file", store.name, "nsymbt"
                ) from None
        return decode_extended_header(
            raw, header.fields["exttyp"], header.byte_order, header.fields["nz"]
        )

    # -- what users look at -------------------------------------------------------------

    @property
    def name(self) -> str:
        return self.store.name

    @property
    def shape(self) -> tuple[int, ...]:
        return self.frame_array.shape

    @property
    def dtype(self) -> np.dtype:
        return self.frame_array.dtype

    @property
    def ndim(self) -> int:
        return self.frame_array.ndim

    @property
    def header(self) -> dict[str, Any]:
        """The main header fields as plain Python values."""
        return dict(self.main_header.fields)

    @property
    def extended_header(self) -> np.ndarray | bytes | None:
        """FEI records (structured array, one per section), raw bytes, or None."""
        return None if self._extended is None else self._extended.value

    @property
    def extended_header_type(self) -> str | None:
        return None if self._extended is None else self._extended.kind

    @property
    def voxel_size(self) -> tuple[float | None, float | None, float | None]:
        """(x, y, z) spacing in Å; from FEI records where the cell says nothing."""
        x, y, z = self.main_header.voxel_size
        fei_x, fei_y = fei_pixel_size_m(self._extended)
        if x is None and fei_x is not None:
            x = fei_x * 1e10
        if y is None and fei_y is not None:
            y = fei_y * 1e10
        return (x, y, z)

    @property
    def notes(self) -> list[str]:
        """What was odd about the file and what was decided (byte order, signedness...):
        the list kept in ``metadata["mrc"]["notes"]``, one place for both."""
        return self.metadata["mrc"]["notes"]

    def _default_axes(self, reshaped: bool) -> list[dict[str, Any]]:
        x, y, z = (None if v is None else v / 10 for v in self.voxel_size)  # Å -> nm
        shape = self.shape
        fields = self.main_header.fields
        signal = [
            _axis("y", shape[-2], y or 1.0, "nm" if y else None),
            _axis("x", shape[-1], x or 1.0, "nm" if x else None),
        ]
        nav_shape = shape[:-2]
        if reshaped:
            names = (
                ["y", "x"] if len(nav_shape) == 2 else [f"nav{i}" for i in range(len(nav_shape))]
            )
            if len(nav_shape) == 2:
                signal[0]["name"], signal[1]["name"] = "ky", "kx"
            nav = [_axis(n, s, navigate=True) for n, s in zip(names, nav_shape, strict=False)]
        elif len(nav_shape) == 2:  # volume stack
            nav = [
                _axis("volume", nav_shape[0], navigate=True),
                _axis("z", nav_shape[1], z or 1.0, "nm" if z else None),
            ]
        elif len(nav_shape) == 1:
            if fields["ispg"] == 0:
                nav = [_axis("frame", nav_shape[0], navigate=True)]
            else:
                nav = [_axis("z", nav_shape[0], z or 1.0, "nm" if z else None)]
        else:
            nav = []
        return nav + signal

    def _mrc_metadata(self) -> dict[str, Any]:
        header = self.main_header
        return {
            "byte_order": header.byte_order,
            "byte_order_rule": header.byte_order_rule,
            "signed_bytes_rule": header.signed_bytes_rule,
            "data_offset": header.layout.offset,
            "extended_header_type": self.extended_header_type,
            "notes": header.notes + ([] if self._extended is None else self._extended.notes),
        }

    # -- data -----------------------------------------------------------------------------

    def to_dask(self, chunks: Any = None) -> da.Array:
        """A lazy dask array; each chunk holds whole frames and reads its own byte runs."""
        try:
            return to_dask(self.frame_array, self.chunks if chunks is None else chunks)
        except MRCFormatError:
            raise
        except ValueError as error:  # a chunk specification dask or we refuse
            raise ValueError(f"{self.name}: {error}") from None

    def read(self) -> np.ndarray:
        """The whole array in memory."""
        if self.store.known_size() is None:
            # Check the data extent before allocating what the header claims.
            check_extent(self.main_header.layout, self.store.size(), self.name, self.header)
        return self.frame_array.read()

    def memmap(self) -> np.ndarray:
        """The data as a numpy memory map (local, uncompressed, undecoded files only), in
        ``mmap_mode`` ("c" copy-on-write, "r" read-only, "r+" writes reach the file)."""
        layout = self.main_header.layout
        mode = self.frame_array.mmap_mode or "c"
        mapped = self.store.memmap(layout.offset, layout.nbytes, mode)
        if mapped is None or layout.needs_decoding or self.frame_array.frame_table is not None:
            raise ValueError(
                f"{self.name}: cannot be memory-mapped (remote, compressed or "
                "stored in a form that needs decoding)"
            )
        return mapped.view(self.dtype).reshape(self.shape)

    def __repr__(self) -> str:
        return f"<MRCFile {self.name!r} shape={self.shape} dtype={self.dtype}>"
