"""The opened MRC file: header + extended header + a lazily read array.

``MRCFile.open`` reads the main and extended headers by byte ranges (one request, a second
only for an extended header longer than the first read) and builds the ``FrameArray``;
nothing else is read until ``read()`` or a dask compute.

Axes are named and scaled by the physical axis MAPC/MAPR/MAPS say each stored axis runs
along; ``axis_order="xyz"`` presents the spatial axes as (z, y, x) by a lazy transpose, the
``FrameArray`` always keeps the stored order.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any, Literal

import dask.array as da
import numpy as np
import yaml

from .arguments import check_navigation_shape
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
    PHYSICAL_AXES,
    MainHeader,
    SignedBytes,
    axis_labels,
    check_extent,
    detect_compression,
    first_voxel_angstrom,
    grid_start,
    has_map_id,
    imod_origin_sign,
    parse_main_header,
)
from .format.mrcfile_names import MRCHeader
from .storage import MMAP_MODES, ByteStore, DecompressedStore, open_store

# The first request asks for this much: the main header plus most extended headers.
FIRST_READ_NBYTES = HEADER_NBYTES + 64 * 1024

# f.header is a dict subclass (for mrcfile's attribute names): YAML writes it as the plain
# mapping it is, in every dumper, instead of refusing it or tagging it with a Python class.
for _name in ("SafeDumper", "Dumper", "CSafeDumper", "CDumper"):
    _dumper = getattr(yaml, _name, None)
    if _dumper is not None:
        yaml.add_representer(MRCHeader, yaml.SafeDumper.represent_dict, Dumper=_dumper)

AxisOrder = Literal["file", "xyz"]
AXIS_ORDERS = ("file", "xyz")
# Lengths in axes are in nm; voxel_size is in Å (mrcfile's unit).
_ANGSTROM_PER_UNIT = {"nm": 10.0, "Å": 1.0, "A": 1.0, "um": 1e4, "µm": 1e4, "pm": 0.01}
# Axes whose coordinates are pixel positions when their spacing is unknown.
SPATIAL_AXIS_NAMES = frozenset({"x", "y", "z", "kx", "ky"})


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


def open_decompressed(
    store: ByteStore, head: bytes, compression: str
) -> tuple[DecompressedStore, bytes]:
    """The decompressed view of a gzip/bzip2 file and its first bytes, limited to the size
    its header declares (header, extended header and data): nothing past it is ever
    decompressed, whatever the stream holds."""
    # The first read holds the compressed file's first bytes (all of them when short):
    # decompression starts there, and they are not fetched again.
    decompressed = DecompressedStore(store, compression, head)
    head = decompressed.head(FIRST_READ_NBYTES)
    try:
        layout = parse_main_header(head, decompressed.name, None).layout
    except MRCFormatError:
        decompressed.set_limit(len(head))  # refused: nothing past the header is needed
    else:
        decompressed.set_limit(layout.offset + layout.nbytes)
    return decompressed, head



def voxel_size_of_axes(
    axes: list[dict[str, Any]], header: tuple[float | None, float | None, float | None]
) -> tuple[float | None, float | None, float | None]:
    """(x, y, z) spacing in Å from a file's axes, None where unknown (never 0, never negative).

    The axes are the one source: an axis named x, y or z gives its scale when its unit is a
    length (so a DE movie's specimen pixel size from the info file counts, and an axis of
    unknown spacing gives None). A direction without an axis in the array (z of a single
    image or an image stack) takes ``header`` (CELLA/M, or FEI records). Also used by the
    catalog index, so that it says what ``open_mrc`` says."""
    out: list[float | None] = []
    for name, from_header in zip(PHYSICAL_AXES, header, strict=True):
        axis = next((a for a in axes if a["name"] == name), None)
        if axis is None:
            out.append(from_header)
            continue
        factor = _ANGSTROM_PER_UNIT.get(axis["units"] or "")
        value = None if factor is None else axis["scale"] * factor
        if value is not None and not (math.isfinite(value) and value > 0):
            value = None
        if value is not None and from_header is not None:
            # The header's own number rather than its round trip through nm.
            value = from_header if math.isclose(value, from_header, rel_tol=1e-9) else value
        out.append(value)
    return (out[0], out[1], out[2])

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
        axis_order: AxisOrder = "file",
    ):
        if axis_order not in AXIS_ORDERS:
            raise ValueError(f"axis_order must be one of {AXIS_ORDERS}, not {axis_order!r}")
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
        reshaped = navigation_shape is not None or axes is not None
        stored_axes = axes if axes is not None else self._default_axes(reshaped)
        self.axis_order: AxisOrder = axis_order
        # Output axis j is stored axis axis_permutation[j]; None: the stored order.
        self.axis_permutation = self._permutation(axis_order, reshaped)
        order = self.axis_permutation or range(len(stored_axes))
        self.axes = [stored_axes[i] for i in order]
        self.metadata: dict[str, Any] = metadata or {}
        # Direct Electron movies fill these (lazily opened images); empty otherwise.
        self.virtual_images: Mapping[str, MRCFile] = {}
        self.external_images: Mapping[str, MRCFile] = {}
        self.metadata.setdefault("mrc", self._mrc_metadata())
        self.metadata["mrc"]["axis_order"] = axis_order
        self.metadata["mrc"]["stored_axes"] = [a["name"] for a in stored_axes]
        note = axis_labels(header.fields)[1]
        if note and note not in self.notes:
            self.notes.append(note)

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
        axis_order: AxisOrder = "file",
    ) -> MRCFile:
        """Open a file: read its headers and check them against its size when known."""
        if mmap_mode not in MMAP_MODES:
            raise ValueError(f"mmap_mode must be one of {MMAP_MODES}, not {mmap_mode!r}")
        store = store or open_store(urlpath_or_file, storage_options)
        head = store.head(FIRST_READ_NBYTES)
        compression = detect_compression(head)
        if compression and not has_map_id(head):
            store, head = open_decompressed(store, head, compression)
        header = parse_main_header(
            head, store.name, store.known_size(), signed_bytes, default_unsigned_bytes
        )
        extended = cls._read_extended(store, header, head)
        nav = None
        notes = []
        if isinstance(navigation_shape, str):
            if navigation_shape != "auto":
                raise MRCFormatError(
                    f"navigation_shape must be (x, y, ...), 'auto' or None, "
                    f"not {navigation_shape!r}",
                    store.name,
                    "navigation_shape",
                )
            nav = fei_scan_shape(extended, header.layout.n_frames)
            notes.append(
                f"navigation shape from the FEI scan size: {nav}"
                if nav
                else "navigation_shape='auto': the FEI scan size does not fit the frames"
            )
        elif navigation_shape is not None:
            nav = tuple(reversed(check_navigation_shape(navigation_shape, store.name)))
        out = cls(store, header, extended, nav, chunks, mmap_mode, axis_order=axis_order)
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
        """The array's shape, in ``axis_order`` (``frame_array.shape`` is the stored one)."""
        stored = self.frame_array.shape
        if self.axis_permutation is None:
            return stored
        return tuple(stored[i] for i in self.axis_permutation)

    @property
    def dtype(self) -> np.dtype:
        return self.frame_array.dtype

    @property
    def ndim(self) -> int:
        return self.frame_array.ndim

    @property
    def header(self) -> MRCHeader:
        """The main header fields as plain Python values (a dict, ``f.header["nx"]``), also
        by mrcfile's attribute names with mrcfile's value types (``f.header.nx``,
        ``f.header.cella.x``, ``f.header.label``)."""
        return MRCHeader(self.main_header.fields, self.main_header.raw, self.main_header.byte_order)

    @property
    def extended_header(self) -> np.ndarray | bytes | None:
        """FEI records (structured array, one per section), raw bytes, or None."""
        return None if self._extended is None else self._extended.value

    @property
    def extended_header_type(self) -> str | None:
        return None if self._extended is None else self._extended.kind

    @property
    def voxel_size(self) -> tuple[float | None, float | None, float | None]:
        """(x, y, z) spacing in Å, None where unknown (never 0, never negative); the rule
        is :func:`voxel_size_of_axes` on this file's axes and header."""
        return voxel_size_of_axes(self.axes, self._header_voxel_size())

    def _header_voxel_size(self) -> tuple[float | None, float | None, float | None]:
        """(x, y, z) spacing in Å from CELLA/M; from FEI records where the cell says nothing."""
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
        """Axes in the stored order, named and scaled by the physical axis each runs along
        (MAPC/MAPR/MAPS), lengths in nm, offsets from ORIGIN or NXSTART/NYSTART/NZSTART."""
        fields = self.main_header.fields
        columns, rows, sections = axis_labels(fields)[0]
        spacing = dict(zip(PHYSICAL_AXES, self._header_voxel_size(), strict=True))
        first = first_voxel_angstrom(fields, self._header_voxel_size())
        start = grid_start(fields)

        def spatial(label: str, size: int, name: str | None = None) -> dict[str, Any]:
            step = spacing[label]
            if step is None:  # unknown spacing: coordinates are positions in the grid
                return _axis(name or label, size, offset=float(start[label]))
            offset = first[label]
            return _axis(name or label, size, step / 10, "nm", offset=(offset or 0.0) / 10)

        shape = self.frame_array.shape
        signal = [spatial(rows, shape[-2]), spatial(columns, shape[-1])]
        nav_shape = shape[:-2]
        if reshaped:
            names = (
                ["y", "x"] if len(nav_shape) == 2 else [f"nav{i}" for i in range(len(nav_shape))]
            )
            if len(nav_shape) == 2:
                signal[0]["name"], signal[1]["name"] = "ky", "kx"
            nav = [_axis(n, s, navigate=True) for n, s in zip(names, nav_shape, strict=False)]
        elif len(nav_shape) == 2:  # volume stack
            nav = [_axis("volume", nav_shape[0], navigate=True), spatial(sections, nav_shape[1])]
        elif len(nav_shape) == 1:
            if fields["ispg"] == 0:
                nav = [_axis("frame", nav_shape[0], navigate=True)]
            else:
                nav = [spatial(sections, nav_shape[0])]
        else:
            nav = []
        return nav + signal

    def _permutation(self, axis_order: AxisOrder, reshaped: bool) -> tuple[int, ...] | None:
        """Stored axis of each output axis for ``axis_order="xyz"``: the spatial axes (the
        last three of a volume, the frame's two otherwise) sorted as z, y, x."""
        if axis_order == "file":
            return None
        columns, rows, sections = axis_labels(self.main_header.fields)[0]
        ndim = self.frame_array.ndim
        volume = not reshaped and self.main_header.fields["ispg"] != 0 and ndim >= 3
        tail = [sections, rows, columns] if volume else [rows, columns]
        head = ndim - len(tail)
        order = sorted(range(len(tail)), key=lambda i: "zyx".index(tail[i]))
        permutation = tuple(range(head)) + tuple(head + i for i in order)
        return None if permutation == tuple(range(ndim)) else permutation

    def dimension_names(self) -> list[str]:
        """The axes' names made distinct (``_`` appended), as xarray and zarr need them."""
        names: list[str] = []
        for axis in self.axes:
            name = axis["name"]
            while name in names:
                name += "_"
            names.append(name)
        return names

    def coordinates(self) -> dict[str, tuple[np.ndarray, str]]:
        """``{dimension: (offset + scale * index, units)}`` per axis; units "pixel" for a
        spatial axis of unknown spacing, "index" for other axes without a unit."""
        out = {}
        for name, axis in zip(self.dimension_names(), self.axes, strict=True):
            values = axis["offset"] + axis["scale"] * np.arange(axis["size"], dtype=np.float64)
            units = axis["units"] or (
                "pixel" if axis["name"].rstrip("_") in SPATIAL_AXIS_NAMES else "index"
            )
            out[name] = (values, units)
        return out

    def _mrc_metadata(self) -> dict[str, Any]:
        header = self.main_header
        sign, origin_rule = imod_origin_sign(header.fields)
        notes = header.notes + ([] if self._extended is None else self._extended.notes)
        if sign < 0 and any(v != 0 for v in header.fields["origin"]):
            notes = notes + [f"origin: {origin_rule}"]
        return {
            "byte_order": header.byte_order,
            "byte_order_rule": header.byte_order_rule,
            "signed_bytes_rule": header.signed_bytes_rule,
            "origin_rule": origin_rule,
            "data_offset": header.layout.offset,
            "extended_header_type": self.extended_header_type,
            "notes": notes,
        }

    # -- data -----------------------------------------------------------------------------

    def to_dask(self, chunks: Any = None) -> da.Array:
        """A lazy dask array; each chunk holds whole frames and reads its own byte runs.
        ``chunks`` describes the stored order (frames are never split); with
        ``axis_order="xyz"`` the array is then transposed, lazily."""
        try:
            array = to_dask(self.frame_array, self.chunks if chunks is None else chunks)
        except MRCFormatError:
            raise
        except ValueError as error:  # a chunk specification dask or we refuse
            raise ValueError(f"{self.name}: {error}") from None
        return self._ordered(array)

    def _ordered(self, array: Any) -> Any:
        """A stored-order array in ``axis_order`` (a transposed view, no data moved)."""
        if self.axis_permutation is None:
            return array
        return array.transpose(self.axis_permutation)

    @property
    def data(self) -> da.Array:
        """The lazy dask array (``to_dask()``), under mrcfile's name for the data."""
        return self.to_dask()

    def read(self) -> np.ndarray:
        """The whole array in memory (with ``axis_order="xyz"``, a transposed view of the
        buffer read in the stored order)."""
        # Check the data extent before allocating what the header claims (the size may have
        # been unknown at open: a remote file, a compressed one not decompressed yet).
        check_extent(self.main_header.layout, self.store.size(), self.name, self.main_header.fields)
        return self._ordered(self.frame_array.read())

    def __array__(self, dtype: Any = None, copy: bool | None = None) -> np.ndarray:
        """``np.asarray(f)``: the data read. ``copy=False`` gives the memory map where the
        file allows one and raises ``ValueError`` otherwise (numpy 2 semantics)."""
        if copy is False:
            try:
                out = self.memmap()
            except ValueError:
                raise ValueError(
                    f"{self.name}: cannot give the data without reading them into a new array "
                    "(copy=False needs a local, uncompressed file that is memory-mapped as "
                    "stored)"
                ) from None
            if dtype is not None and np.dtype(dtype) != out.dtype:
                raise ValueError(f"{self.name}: copy=False cannot convert to {dtype}")
            return out
        out = self.read()
        if dtype is not None and np.dtype(dtype) != out.dtype:
            return out.astype(dtype)
        return out

    def to_xarray(self, name: str | None = None, chunks: Any = None) -> Any:
        """A dask-backed ``xarray.DataArray`` named after the file: dimensions named by the
        axes, coordinates ``offset + scale * index`` with ``units`` attributes, the header
        and DE metadata as flat attrs (needs ``pip install intake-mrc[xarray]``).
        ``chunks`` as for ``to_dask`` (default: the file's)."""
        from .xarray_backend import to_dataarray

        return to_dataarray(self, name, chunks)

    def to_dataset(self, images: bool = True, name: str | None = None) -> Any:
        """An ``xarray.Dataset``: the array and, for a DE movie, its virtual and external
        images (``virtual:<name>``, ``external:<name>``) on the scan's dimensions."""
        from .xarray_backend import to_dataset

        return to_dataset(self, images=images, name=name)

    # -- mrcfile habits: ``with open_mrc(path) as f:`` ----------------------------------

    def __enter__(self) -> MRCFile:
        return self

    def __exit__(self, *exc_info: Any) -> None:
        self.close()

    def close(self) -> None:
        """Nothing to release: files are opened for each read and closed after it, so the
        dask array stays usable after the ``with`` block (unlike mrcfile's ``data``)."""

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
        return self._ordered(mapped.view(self.dtype).reshape(self.frame_array.shape))

    def to_hyperspy(self, lazy: bool = True) -> Any:
        """A HyperSpy signal (Signal2D for images, stacks and 4D-STEM; DE virtual images as
        navigators); needs ``pip install 'intake-mrc[hyperspy]'``. See ``intake_mrc.rsciio``."""
        from .rsciio import to_hyperspy  # the front end, imported only when asked for

        return to_hyperspy(self, lazy=lazy)

    def to_references(self, frames_per_chunk: int | None = None, **kwargs: Any) -> dict[str, Any]:
        """Kerchunk version-1 references (zarr metadata + ``[url, offset, length]`` per chunk
        of whole frames); see :func:`intake_mrc.references.to_references` for options."""
        from .references import to_references

        return to_references(self, frames_per_chunk, **kwargs)

    def preview(self, output: str | None = None, **kwargs: Any) -> Any:
        """Draw the data (an image, a stack's sum, a volume's central slice, or a 4D-STEM
        navigator beside a diffraction pattern) with a scale bar, reading only what the
        picture needs; writes a PNG to ``output`` when given. Returns an
        ``intake_mrc.preview.Preview`` (what was drawn and from what). Needs
        ``pip install 'intake-mrc[preview]'``."""
        from .preview import preview

        return preview(self, output, **kwargs)

    def _repr_html_(self) -> str:
        """Notebooks: a small table, and a thumbnail when the file is local or small."""
        from .preview import html_summary

        return html_summary(self)

    def __repr__(self) -> str:
        return f"<MRCFile {self.name!r} shape={self.shape} dtype={self.dtype}>"
