"""Kerchunk references: an MRC file described as a zarr store without copying a byte.

``to_references(f)`` returns kerchunk's version-1 reference set (a JSON-able dict): zarr
metadata for one array (``data`` by default) plus one coordinate array per axis, and one
``[url, offset, length]`` entry per chunk of whole frames. Read it back with fsspec's
``reference://`` filesystem and zarr (or xarray's zarr engine); intake_mrc is not needed
there. The layout (see docs in README.md, "zarr / kerchunk / VirtualiZarr") is zarr v2
(``.zarray``/``.zattrs``, ``_ARRAY_DIMENSIONS``) or zarr v3 (``zarr.json``).

What byte ranges cannot describe is refused with ``NotReferenceableError`` naming why:
compressed files, modes 3 and 101 (pixels need decoding), scan grids with positions that
hold no frame, open file objects without a URL, and URLs carrying credentials (user or
password; a query or fragment of a web URL; in local paths and object-store keys '?' and '#'
are characters of the name).

This module is a front end: the frame geometry comes from ``MRCFile.frame_array`` (its
``DataLayout`` and frame table), the URL from the store. ``frame_references`` is the one
place both this module and ``intake_mrc.virtualizarr`` take the geometry from.
"""

from __future__ import annotations

import base64
import json
import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import numpy as np

from .errors import MRCFormatError
from .format.header import check_extent
from .storage import DecompressedStore, FsspecStore, LocalStore, redact_url

if TYPE_CHECKING:
    from .mrc import MRCFile

# Default chunking: as many whole frames per chunk as fit in this many bytes (and at least
# one frame), which lands between 8 and 64 MiB for frames of 8 MiB or less.
MAX_CHUNK_NBYTES = 64 * 2**20
# Above this many chunks, kerchunk's parquet form reads faster than one JSON document.
PARQUET_ADVISED_CHUNKS = 100_000
# URL schemes whose paths are names, not web URLs: '?' and '#' are characters there.
LOCAL_SCHEMES = ("", "file", "local")
OBJECT_STORE_SCHEMES = ("s3", "s3a", "gs", "gcs", "az", "abfs", "abfss")


class NotReferenceableError(MRCFormatError):
    """The file (or its URL) cannot be described by byte-range references."""


@dataclass(frozen=True)
class FrameReferences:
    """Where every frame of an opened file is, in byte-range terms."""

    url: str  # where readers fetch the bytes (no credentials)
    frame_grid: np.ndarray  # navigation-shaped frame numbers (int64)
    offset: int  # byte offset of frame 0
    frame_nbytes: int
    dtype: np.dtype  # stored element type, in the file's byte order
    frame_shape: tuple[int, int]  # (ny, nx)
    dimension_names: tuple[str, ...]

    @property
    def shape(self) -> tuple[int, ...]:
        return tuple(self.frame_grid.shape) + self.frame_shape


def target_url(f: MRCFile, url: str | None = None) -> str:
    """The URL readers of the references fetch from: ``url`` when given, else the file's
    own (``file://`` + absolute path locally, the inner URL of a cache chain)."""
    store = f.store
    # Checked whatever the URL: ranges of a compressed file would point at compressed bytes.
    if isinstance(store, DecompressedStore):
        raise NotReferenceableError(
            "compressed (gzip/bzip2): the pixels have no byte ranges in the file; "
            "decompress it first",
            f.name,
        )
    if url is None:
        if isinstance(store, LocalStore):
            url = "file://" + store.path
        elif isinstance(store, FsspecStore):
            fs = store.fs
            # simplecache::/blockcache:: wrap the filesystem that holds the bytes.
            while getattr(fs, "fs", None) is not None and getattr(fs, "protocol", "") in (
                "simplecache",
                "blockcache",
                "filecache",
                ("simplecache",),
                ("blockcache",),
                ("filecache",),
            ):
                fs = fs.fs
            url = fs.unstrip_protocol(store.path)
        else:
            raise NotReferenceableError(
                "an open file object has no URL that other processes can read: pass url=",
                f.name,
            )
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    # Only URLs of web-like schemes have a query and a fragment (a token may hide there; a
    # fragment is never sent, but it is written to the file like the rest). In a local path
    # or an object-store key, '?' and '#' are characters of the name (`run#3.mrc`), and in a
    # local path so is '::'; fsspec's reference filesystem reads them as such.
    local = scheme in LOCAL_SCHEMES
    keyed = local or scheme in OBJECT_STORE_SCHEMES
    query = not keyed and bool(parts.query or parts.fragment)
    chained = not local and "::" in url
    if parts.username or parts.password or query or chained:
        what = "a chained URL" if chained else "user, password, a query string or fragment"
        raise NotReferenceableError(
            f"the URL holds {what}; references are written to disk and shared, so they "
            "carry a plain URL: pass url= without credentials and give them as storage "
            "options (remote_options) when reading",
            redact_url(url),
        )
    return url


def frame_references(f: MRCFile, url: str | None = None) -> FrameReferences:
    """The byte geometry of ``f``'s frames; refuses what byte ranges cannot describe."""
    frames = f.frame_array
    layout = frames.layout
    if layout.mode == 3:
        raise NotReferenceableError(
            "mode 3 (complex int16 pairs) must be converted to complex64 pixel by pixel; "
            "zarr has no complex int16 type",
            f.name,
            "mode",
        )
    if layout.mode == 101:
        raise NotReferenceableError(
            "mode 101 packs two 4-bit pixels per byte; zarr cannot unpack them", f.name, "mode"
        )
    if layout.shift_bytes:
        raise NotReferenceableError(
            "IMOD's signed bytes are handed out shifted by +128 (as IMOD reads them); zarr "
            "cannot shift: pass signed_bytes='signed' to describe the stored int8",
            f.name,
            "imod_flags",
        )
    if getattr(f, "axis_permutation", None) is not None:
        raise NotReferenceableError(
            f"axis_order={f.axis_order!r} transposes the stored axes, and zarr v2 chunks "
            "cannot: describe the file in axis_order='file' (the default)",
            f.name,
        )
    source = target_url(f, url)
    nav = frames.navigation_shape
    if frames.frame_table is not None:
        grid = np.asarray(frames.frame_table, dtype=np.int64)
        holes = int((grid < 0).sum())
        if holes:
            raise NotReferenceableError(
                f"{holes} of {grid.size} scan positions hold no frame (a custom scan grid "
                "with holes or a padded interrupted scan): zarr references cannot say "
                "reliably that they read as zero",
                f.name,
                "scan",
            )
    else:
        grid = np.arange(layout.n_frames, dtype=np.int64).reshape(nav)
    refs = FrameReferences(
        url=source,
        frame_grid=grid,
        offset=layout.offset,
        frame_nbytes=layout.frame_nbytes,
        dtype=layout.stored_dtype,
        frame_shape=(layout.ny, layout.nx),
        dimension_names=tuple(f.dimension_names()),
    )
    if refs.shape != tuple(f.shape) or len(refs.dimension_names) != len(f.shape):
        # The array handed out is not the stored frames in order (a transposed view):
        # byte ranges of frames cannot describe it.
        raise NotReferenceableError(
            f"the array {tuple(f.shape)} is not the stored frames {refs.shape} in order",
            f.name,
        )
    if refs.dtype.newbyteorder("=") != np.dtype(f.dtype).newbyteorder("="):
        raise NotReferenceableError(
            f"stored {refs.dtype} is handed out as {f.dtype}", f.name, "mode"
        )
    return refs


def chunk_options(navigation_shape: tuple[int, ...]) -> dict[int, tuple[int, ...]]:
    """Frames per chunk -> chunk shape over the navigation axes, for every regular grid of
    contiguous whole-frame blocks: ``(1, ..., 1, c, n_{j+1}, ..., n_k)`` with ``c`` a
    divisor of ``n_j`` (kerchunk chunks must be full size, edges included)."""
    options: dict[int, tuple[int, ...]] = {1: (1,) * len(navigation_shape)}
    trailing = 1
    for j in range(len(navigation_shape) - 1, -1, -1):
        n = navigation_shape[j]
        for c in _divisors(n):
            shape = (1,) * j + (c,) + tuple(navigation_shape[j + 1 :])
            options.setdefault(c * trailing, shape)
        trailing *= n
    return options


def _divisors(n: int) -> list[int]:
    small = [d for d in range(1, math.isqrt(n) + 1) if n % d == 0]
    return sorted(set(small + [n // d for d in small]))


def _plan(refs: FrameReferences, frames_per_chunk: int | None, name: str) -> tuple[int, ...]:
    nav = tuple(refs.frame_grid.shape)
    options = chunk_options(nav)
    scan_order = refs.frame_grid.size == 0 or bool(
        (refs.frame_grid.ravel() == np.arange(refs.frame_grid.size)).all()
    )
    if frames_per_chunk is None:
        if not scan_order:
            return options[1]
        fit = max(1, MAX_CHUNK_NBYTES // max(1, refs.frame_nbytes))
        return options[max(k for k in options if k <= fit)]
    k = int(frames_per_chunk)
    if k < 1:
        raise ValueError(f"{name}: frames_per_chunk must be at least 1, not {frames_per_chunk}")
    if k > 1 and not scan_order:
        raise NotReferenceableError(
            "frames are not stored in scan order (custom scan): only one frame per chunk", name
        )
    if k not in options:
        near = sorted(options, key=lambda v: (abs(v - k), v))[:5]
        raise ValueError(
            f"{name}: {k} frames per chunk do not tile the navigation shape {nav} in whole, "
            f"contiguous blocks; possible: {sorted(near)}"
        )
    return options[k]


def _json_safe(value: Any) -> Any:
    """Plain JSON values: NaN and infinities become None, numpy values Python ones."""
    if isinstance(value, dict):
        return {str(k): _json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_json_safe(v) for v in value]
    if isinstance(value, np.ndarray):
        return _json_safe(value.tolist())
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, bytes):
        return value.hex()
    return value


def _attributes(f: MRCFile, source: str | None = None) -> dict[str, Any]:
    """Axes, units, voxel size, mode and ``source`` (the file's name unless given)."""
    axes = [
        {k: axis[k] for k in ("name", "size", "scale", "offset", "units", "navigate")}
        for axis in f.axes
    ]
    return _json_safe(
        {
            "axes": axes,
            "units": [units for _, units in f.coordinates().values()],
            "voxel_size_angstrom": list(f.voxel_size),
            "mrc_mode": f.frame_array.layout.mode,
            "source": f.name if source is None else source,
        }
    )


def _inline(values: np.ndarray) -> str:
    return "base64:" + base64.b64encode(np.ascontiguousarray(values).tobytes()).decode("ascii")


def _v3_data_type(dtype: np.dtype) -> str:
    return np.dtype(dtype).newbyteorder("=").name


def _v3_array(
    shape: tuple[int, ...],
    chunks: tuple[int, ...],
    dtype: np.dtype,
    dims: list[str],
    attributes: dict[str, Any],
) -> dict[str, Any]:
    endian = {"<": "little", ">": "big"}.get(dtype.byteorder)
    if endian is None and dtype.itemsize > 1:
        endian = "little" if np.little_endian else "big"
    bytes_codec: dict[str, Any] = {"name": "bytes"}
    if endian and dtype.itemsize > 1:
        bytes_codec["configuration"] = {"endian": endian}
    fill: Any = [0.0, 0.0] if dtype.kind == "c" else (0.0 if dtype.kind == "f" else 0)
    return {
        "zarr_format": 3,
        "node_type": "array",
        "shape": list(shape),
        "data_type": _v3_data_type(dtype),
        "chunk_grid": {"name": "regular", "configuration": {"chunk_shape": list(chunks)}},
        "chunk_key_encoding": {"name": "default", "configuration": {"separator": "/"}},
        "fill_value": fill,
        "codecs": [bytes_codec],
        "attributes": attributes,
        "dimension_names": dims,
    }


def _v2_array(shape: tuple[int, ...], chunks: tuple[int, ...], dtype: np.dtype) -> dict[str, Any]:
    return {
        "zarr_format": 2,
        "shape": list(shape),
        "chunks": list(chunks),
        "dtype": dtype.str,
        "compressor": None,
        "filters": None,
        # null, not 0: xarray would take 0 as _FillValue and mask real zeros.
        "fill_value": None,
        "order": "C",
    }


def to_references(
    f: MRCFile,
    frames_per_chunk: int | None = None,
    *,
    url: str | None = None,
    array_name: str = "data",
    coordinates: bool = True,
    zarr_format: int = 2,
) -> dict[str, Any]:
    """Kerchunk version-1 references for ``f`` (see the module docstring).

    ``frames_per_chunk``: None picks whole frames up to 64 MiB per chunk (one frame when a
    frame is larger); a number must tile the navigation shape in contiguous blocks.
    ``url`` replaces the file's own URL (a public mirror, say). ``coordinates`` adds one
    inline float64 array per axis (offset + scale * index, with its units).
    ``zarr_format`` is 2 (``.zarray``, readable by zarr 2 and 3) or 3 (``zarr.json``)."""
    if zarr_format not in (2, 3):
        raise ValueError(f"zarr_format must be 2 or 3, not {zarr_format!r}")
    if not array_name or "/" in array_name or array_name.startswith("."):
        raise ValueError(f"array_name must be a plain name, not {array_name!r}")
    geometry = frame_references(f, url)
    # Nothing may point past the end of the file (one size request for remote files).
    check_extent(f.frame_array.layout, f.store.size(), f.name, f.header)
    nav_chunks = _plan(geometry, frames_per_chunk, f.name)
    shape = geometry.shape
    chunks = nav_chunks + geometry.frame_shape
    dims = list(geometry.dimension_names)
    if coordinates and array_name in dims:
        raise ValueError(f"array_name {array_name!r} is also an axis name")
    # With url= (a public mirror), the source named is that URL: the local path or private
    # bucket the references were made from is not written into a file meant to be shared.
    source = f.name if url is None else geometry.url
    attributes = _attributes(f, source)
    refs: dict[str, Any] = {}
    sep = "." if zarr_format == 2 else "/"
    if zarr_format == 2:
        refs[".zgroup"] = json.dumps({"zarr_format": 2})
        refs[".zattrs"] = json.dumps({"source": source})
        refs[f"{array_name}/.zarray"] = json.dumps(_v2_array(shape, chunks, geometry.dtype))
        refs[f"{array_name}/.zattrs"] = json.dumps({"_ARRAY_DIMENSIONS": dims, **attributes})
    else:
        refs["zarr.json"] = json.dumps(
            {"zarr_format": 3, "node_type": "group", "attributes": {"source": source}}
        )
        refs[f"{array_name}/zarr.json"] = json.dumps(
            _v3_array(shape, chunks, geometry.dtype, dims, attributes)
        )
    if coordinates:
        for dim, (values, units) in zip(dims, f.coordinates().values(), strict=True):
            values = np.asarray(values, dtype="<f8")
            attrs = {"units": units}
            if zarr_format == 2:
                refs[f"{dim}/.zarray"] = json.dumps(
                    _v2_array(values.shape, values.shape, np.dtype("<f8"))
                )
                refs[f"{dim}/.zattrs"] = json.dumps({"_ARRAY_DIMENSIONS": [dim], **attrs})
                refs[f"{dim}/0"] = _inline(values)
            else:
                refs[f"{dim}/zarr.json"] = json.dumps(
                    _v3_array(values.shape, values.shape, np.dtype("<f8"), [dim], attrs)
                )
                refs[f"{dim}/c/0"] = _inline(values)
    prefix = f"{array_name}/" if zarr_format == 2 else f"{array_name}/c/"
    for key, (first, count) in _chunk_table(geometry, nav_chunks).items():
        refs[prefix + sep.join(map(str, key + (0, 0)))] = [
            geometry.url,
            geometry.offset + first * geometry.frame_nbytes,
            count * geometry.frame_nbytes,
        ]
    return {"version": 1, "refs": refs}


def _chunk_table(
    geometry: FrameReferences, nav_chunks: tuple[int, ...]
) -> dict[tuple[int, ...], tuple[int, int]]:
    """Chunk grid index -> (first frame, frames), every chunk a contiguous run."""
    grid = geometry.frame_grid
    per_chunk = math.prod(nav_chunks)
    counts = tuple(n // c for n, c in zip(grid.shape, nav_chunks, strict=True))
    origins = grid[tuple(slice(None, None, c) for c in nav_chunks)] if grid.ndim else grid
    out: dict[tuple[int, ...], tuple[int, int]] = {}
    for index in np.ndindex(*counts):
        out[index] = (int(origins[index]), per_chunk)
    return out


def references_for(
    urlpath: Any,
    storage_options: dict[str, Any] | None = None,
    frames_per_chunk: int | None = None,
    *,
    url: str | None = None,
    array_name: str = "data",
    coordinates: bool = True,
    zarr_format: int = 2,
    **open_kwargs: Any,
) -> dict[str, Any]:
    """Open ``urlpath`` with :func:`intake_mrc.open_mrc` and return its references."""
    from .api import open_mrc

    f = open_mrc(urlpath, storage_options=storage_options, **open_kwargs)
    return to_references(
        f,
        frames_per_chunk,
        url=url,
        array_name=array_name,
        coordinates=coordinates,
        zarr_format=zarr_format,
    )


def n_chunks(refs: dict[str, Any]) -> int:
    """How many byte-range entries a reference set holds."""
    return sum(1 for value in refs["refs"].values() if isinstance(value, list))


def write_references(
    refs: dict[str, Any], path: str, parquet: bool = False, record_size: int = 100_000
) -> None:
    """Write ``refs`` as one JSON file, or as kerchunk's parquet form (a folder; needs pandas
    and pyarrow or fastparquet) that readers open lazily, for very many chunks."""
    if not parquet:
        with open(path, "w", encoding="utf-8") as out:
            json.dump(refs, out, separators=(",", ":"))
        return
    if "zarr.json" in refs["refs"]:
        # fsspec's LazyReferenceMapper reads .zarray for each array's chunk grid.
        raise ValueError(
            "kerchunk's parquet form holds zarr v2 metadata only: make the references with "
            "zarr_format=2, or write zarr v3 references as JSON"
        )
    import fsspec
    from fsspec.implementations.reference import LazyReferenceMapper

    fs = fsspec.filesystem("file")
    fs.makedirs(path, exist_ok=True)
    mapper = LazyReferenceMapper.create(root=path, fs=fs, record_size=record_size)
    for key, value in refs["refs"].items():
        mapper[key] = value.encode() if isinstance(value, str) else value
    mapper.flush()
