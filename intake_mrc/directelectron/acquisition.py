"""A Direct Electron acquisition: the movie with its info file, scan geometry and the
virtual and external detector images, found next to the movie by the naming convention.

Discovery never leaves the movie's own folder or prefix: names taken from the info file's
``Autosave ... File Path`` keys are reduced to their base names and must start with the
acquisition's dataset id.
"""

from __future__ import annotations

import functools
import math
import os
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import replace
from typing import Any

from ..errors import MetadataError, MRCFormatError
from ..mrc import MRCFile
from ..storage import ByteStore, open_store
from ..storage.local import LinkOutsideFolderError
from .info import MAX_INFO_NBYTES, DEInfo, parse_info, summary
from .naming import (
    basename,
    classify,
    dataset_id_of,
    dedupe,
    group_acquisitions,
    saved_file_names,
    stem_of,
)
from .scan import (
    CSV_BLOCK_NBYTES,
    PartialScan,
    ScanGeometry,
    custom_geometry,
    movie_axes,
    navigation_geometry,
    parse_scan_coordinates,
)

# A scan-coordinates CSV may be this large, or CSV_NBYTES_PER_FRAME per frame if more
# (a row is "x,y" plus the columns newer DE-Server versions add).
MAX_CSV_NBYTES = 256 * 2**20
CSV_NBYTES_PER_FRAME = 64


class LazyImages(Mapping[str, MRCFile]):
    """Name -> image. Which images exist is resolved on first use (discovery may list the
    movie's folder); each image is opened (header read) on first access and kept."""

    def __init__(
        self, resolve: Callable[[], tuple[dict[str, Callable[[], MRCFile]], dict[str, str]]]
    ):
        self._resolve = resolve
        self._resolved: tuple[dict[str, Callable[[], MRCFile]], dict[str, str]] | None = None
        self._opened: dict[str, MRCFile] = {}

    def _table(self) -> tuple[dict[str, Callable[[], MRCFile]], dict[str, str]]:
        if self._resolved is None:
            self._resolved = self._resolve()
        return self._resolved

    @property
    def sources(self) -> dict[str, str]:
        """Name -> file name or URL, without opening anything."""
        return self._table()[1]

    def __iter__(self) -> Iterator[str]:
        return iter(self._table()[0])

    def __len__(self) -> int:
        return len(self._table()[0])

    def __getitem__(self, name: str) -> MRCFile:
        if name not in self._opened:
            table = self._table()[0]
            if name not in table:
                raise KeyError(f"no image {name!r}; the images are {sorted(table)}")
            self._opened[name] = table[name]()
        return self._opened[name]

    def __repr__(self) -> str:
        # Names and where they are, without user, password or query string of any URL.
        from ..storage import redact_url

        return f"LazyImages({ {k: redact_url(v) for k, v in self.sources.items()}!r})"

    def __reduce__(self) -> Any:
        # Pickling resolves which images exist (one folder listing at most); the openers
        # are partials of module functions over stores, so they pickle with their file.
        openers, sources = self._table()
        return (_resolved_images, (openers, sources, dict(self._opened)))


def _resolved_images(
    openers: dict[str, Callable[[], MRCFile]], sources: dict[str, str], opened: dict[str, MRCFile]
) -> LazyImages:
    images = LazyImages(lambda: (openers, sources))
    images._opened.update(opened)
    return images


def _read_text_source(
    source: Any, storage_options: dict[str, Any] | None, limit: int
) -> tuple[bytes | str, str]:
    """Content and display name of a path, URL, store or open file (text or binary)."""
    if isinstance(source, ByteStore):
        return source.read_all(limit), source.name
    if hasattr(source, "read"):
        name = str(getattr(source, "name", "<file object>"))
        content = source.read(limit + 1)
        if len(content) > limit:
            raise MetadataError(f"larger than {limit} bytes", name, "info")
        return content, name
    store = open_store(source, storage_options)
    return store.read_all(limit), store.name


def _stream_source(
    source: Any, storage_options: dict[str, Any] | None, limit: int, what: str
) -> tuple[Iterable[bytes], str]:
    """Blocks of a path, URL, store or open file (text or binary), and its display name:
    read as they are parsed, so memory holds one block, never the whole file."""
    if hasattr(source, "read") and not isinstance(source, ByteStore):
        name = str(getattr(source, "name", "<file object>"))

        def from_file() -> Iterator[bytes]:
            total = 0
            while block := source.read(CSV_BLOCK_NBYTES):
                if isinstance(block, str):
                    block = block.encode("utf-8", errors="replace")
                total += len(block)
                if total > limit:
                    raise MetadataError(f"larger than {limit} bytes", name, what)
                yield block

        return from_file(), name
    store = source if isinstance(source, ByteStore) else open_store(source, storage_options)
    size = store.size()
    if size > limit:
        raise MetadataError(f"{size} bytes, larger than {limit} bytes", store.name, what)

    def from_store() -> Iterator[bytes]:
        for start in range(0, size, CSV_BLOCK_NBYTES):
            yield store.read_runs([start], [min(CSV_BLOCK_NBYTES, size - start)]).tobytes()

    return from_store(), store.name


def load_info(source: Any, storage_options: dict[str, Any] | None = None) -> DEInfo:
    """Parse an info file given as a path, URL, store or open file object."""
    try:
        content, name = _read_text_source(source, storage_options, MAX_INFO_NBYTES)
    except MRCFormatError as error:
        raise MetadataError(str(error), getattr(error, "source", None), "info") from None
    except FileNotFoundError as error:
        raise MetadataError(f"metadata file not found: {error}", None, "info") from None
    return parse_info(content, name)


def _discover(
    movie: ByteStore, stem: str | None, info: DEInfo | None
) -> tuple[dict[str, str], dict[str, str], list[str]]:
    """Virtual and external image names (name -> file name) next to the movie, and notes.

    The folder's listing when the storage can list; otherwise the files the info file says
    were saved (only names of this acquisition, in the movie's own folder)."""
    if stem is None:
        return {}, {}, []
    notes: list[str] = []
    listing = movie.list_folder()
    if listing is None:
        notes.append("folder cannot be listed: images taken from the info file's Autosave keys")
        if info is None:
            return {}, {}, notes
        listing, ignored = saved_file_names(info.raw, dataset_id_of(stem) or stem)
        notes += [
            f"ignored {key!r}: not a file of this acquisition in its folder" for key in ignored
        ]
    # Only names of this stem (and of longer stems that extend it) can belong to it. The
    # movie and info names are added when missing (an info file given from elsewhere): a
    # stem that is not a dataset id groups only with both.
    mine = [name for name in listing if name.startswith(stem + "_")]
    mine += [n for n in (f"{stem}_movie.mrc", f"{stem}_info.txt") if n not in mine]
    group = next((g for g in group_acquisitions(mine)[0] if g.stem == stem), None)
    return (group.virtual, group.external, notes) if group else ({}, {}, notes)


# The shapes a virtual image may take, in order of preference: the movie's whole navigation
# (one value per frame: repeats included) and its scan grid alone (y, x: one value per scan
# point, e.g. summed over repeats). Empty shapes are skipped.
ScanShapes = tuple[tuple[int, ...], ...]


def _image_table(
    given: Any,
    discovered: dict[str, str],
    movie: ByteStore,
    storage_options: dict[str, Any] | None,
    nav_shape: ScanShapes | None,
) -> tuple[dict[str, Callable[[], MRCFile]], dict[str, str]]:
    """Openers and display names: the user's list when given (honoured as is), else the
    files discovered next to the movie. Images with one value per scan point take the
    scan's shape."""
    openers: dict[str, Callable[[], MRCFile]]
    if given is not None:
        named = _as_named(given)
        openers = {
            n: functools.partial(_open_given, t, storage_options, nav_shape)
            for n, t in named.items()
        }
        sources = {name: str(target) for name, target in named.items()}
    else:
        openers = {
            n: functools.partial(_open_sibling, movie, f, nav_shape) for n, f in discovered.items()
        }
        sources = dict(discovered)
    return openers, sources


def _open_given(
    target: Any, storage_options: dict[str, Any] | None, nav_shape: ScanShapes | None
) -> MRCFile:
    return _open_image(open_store(target, storage_options), nav_shape)


def _open_sibling(movie: ByteStore, name: str, nav_shape: ScanShapes | None) -> MRCFile:
    return _open_image(movie.sibling(name), nav_shape)


def _open_image(store: ByteStore | None, nav_shapes: ScanShapes | None) -> MRCFile:
    image = MRCFile.open(None, store=store)
    for nav_shape in nav_shapes or ():
        if nav_shape and math.prod(image.shape) == math.prod(nav_shape):
            return _reshaped(image, nav_shape)
    return image


def _reshaped(image: MRCFile, nav_shape: tuple[int, ...]) -> MRCFile:
    """A virtual image (one value per scan point) re-cut to the movie's navigation shape:
    ``(y, x)`` as it is; ``(repeats, y, x)`` (and more axes) as a stack of ``(y, x)``
    frames; a line ``(n,)`` as one row ``(1, n)`` (an MRC image has two axes; the HyperSpy
    and xarray front ends give it the movie's ``(n,)``).

    The stored pixels are contiguous, so re-cutting rows is a change of layout, not of
    data; 4-bit images (rows padded to bytes) keep their stored shape."""
    layout = image.frame_array.layout
    if layout.mode == 101 or not nav_shape:
        return image
    *stack, ny, nx = (1,) + nav_shape if len(nav_shape) == 1 else nav_shape
    stack_shape = tuple(stack) if len(nav_shape) > 2 else ()
    flat = replace(layout, n_frames=math.prod(stack_shape), ny=ny, nx=nx)
    header = replace(image.main_header, layout=flat, shape=stack_shape + (ny, nx))
    return MRCFile(
        image.store,
        header,
        image._extended,
        stack_shape,
        image.chunks,
        image.frame_array.mmap_mode,
    )


def _as_named(images: Any) -> dict[str, Any]:
    """User-given images (list of paths or dict name -> path) as a dict name -> path."""
    if images is None:
        return {}
    if isinstance(images, Mapping):
        return dict(images)
    names: list[str] = []
    items = list(images)
    for i, item in enumerate(items):
        # A DE name gives the detector's name; anything else is numbered.
        name = basename(str(item)) if isinstance(item, str | os.PathLike) else ""
        dataset_id = dataset_id_of(name)
        role, _, detector = classify(name[len(dataset_id) + 1 :]) if dataset_id else ("", 0, None)
        names.append(detector if role in ("virtual", "external") and detector else f"image {i}")
    # Two files with one detector name are both kept (BF, BF_1), never one dropped.
    return dict(zip(dedupe(names), items, strict=True))


def _custom_scan(
    info: DEInfo,
    movie: ByteStore,
    stem: str | None,
    scan_file: Any,
    storage_options: dict[str, Any] | None,
    n_frames: int,
    frame_nbytes: int,
) -> ScanGeometry:
    """The geometry of a Random or XY-file scan from its scan-coordinates CSV (streamed)."""
    missing = MetadataError(
        f"custom scan ({info.get('Scan - Type')}) but no scan-coordinates file",
        info.source,
        "Scan - Type",
    )
    try:
        source: Any = scan_file
        if isinstance(scan_file, str) and scan_file == "auto":
            source = movie.sibling(f"{stem}_scan_coordinates.csv") if stem else None
        if source is None:
            raise missing
        limit = max(MAX_CSV_NBYTES, CSV_NBYTES_PER_FRAME * n_frames)
        blocks, csv_name = _stream_source(source, storage_options, limit, "csv")
    except LinkOutsideFolderError as error:
        raise MetadataError(
            f"custom scan ({info.get('Scan - Type')}): the scan-coordinates file is {error}",
            info.source,
            "Scan - Type",
        ) from None
    except FileNotFoundError:
        raise missing from None
    coordinates = parse_scan_coordinates(blocks, csv_name, max_rows=n_frames)
    return custom_geometry(info, n_frames, coordinates, csv_name, frame_nbytes)


def open_de_movie(
    store: ByteStore,
    *,
    metadata_file: Any = "auto",
    virtual_images: Any = None,
    external_images: Any = None,
    scan_file: Any = "auto",
    navigation_shape: tuple[int, ...] | None = None,
    partial_scan: PartialScan = "error",
    storage_options: dict[str, Any] | None = None,
    chunks: Any = "auto",
    mmap_mode: str | None = "c",
    signed_bytes: Any = "auto",
    axis_order: Any = "file",
) -> MRCFile:
    """Open a DE movie with its metadata; see :func:`intake_mrc.open_mrc` for arguments."""
    info: DEInfo | None = None
    notes: list[str] = []
    found = stem_of(store.basename)
    # {stem}_movie.mrc: the DE name (a dataset id or any other stem), or None.
    stem = found[0] if found and found[1] == "movie" else None
    if isinstance(metadata_file, str) and metadata_file == "auto":
        if stem is not None:
            try:
                sibling = store.sibling(f"{stem}_info.txt")
                info = load_info(sibling) if sibling is not None else None
            except (FileNotFoundError, MetadataError) as error:
                if isinstance(error, MetadataError) and "not found" not in str(error):
                    raise
                why = (
                    ": a symbolic link out of the movie's folder, not followed"
                    if isinstance(error, LinkOutsideFolderError)
                    else ""
                )
                notes.append(f"no info file {stem}_info.txt next to the movie{why}")
    elif metadata_file is not None:
        info = load_info(metadata_file, storage_options)

    movie = MRCFile.open(
        None,
        store=store,
        chunks=chunks,
        mmap_mode=mmap_mode,
        signed_bytes=signed_bytes,
        default_unsigned_bytes=info is not None,
        axis_order=axis_order,
    )
    layout = movie.frame_array.layout
    # One frame as handed out: what padding a position with zeros costs.
    frame_nbytes = layout.ny * layout.nx * layout.out_dtype.itemsize
    geometry: ScanGeometry | None = None
    if navigation_shape is not None or info is not None:
        # (MRCFile checks that a user's shape holds the frames.)
        geometry = navigation_geometry(
            info, layout.n_frames, navigation_shape, partial_scan, frame_nbytes, store.name
        )
        if geometry is None and info is not None:
            geometry = _custom_scan(
                info, store, stem, scan_file, storage_options, layout.n_frames, frame_nbytes
            )
    if geometry is None:
        movie.notes.extend(notes)
        return movie
    metadata: dict[str, Any] = {
        "scan": {
            "kind": geometry.kind,
            "navigation_shape": geometry.navigation_shape,
            "notes": geometry.notes + notes,
        }
    }
    axes = None
    if info is not None:
        metadata["direct_electron"] = {
            "summary": summary(info),
            "values": info.values,
            "raw": info.raw,
            "info_file": info.source,
            "notes": info.notes,
        }
        axes = movie_axes(info, geometry, layout.ny, layout.nx)
    out = MRCFile(
        store,
        movie.main_header,
        movie._extended,
        geometry.navigation_shape,
        chunks,
        mmap_mode,
        geometry.frame_table,
        axes,
        metadata,
        axis_order,
    )
    grid = tuple(a["size"] for a in geometry.axes if a["name"] in ("y", "x"))
    # Virtual images follow the movie's navigation (the user's shape, a raster scan with its
    # repeats, a line) when they hold one value per frame, else the scan grid. A custom
    # scan's grid is not in frame order, and a movie without a scan has no grid: only the
    # grid applies there.
    per_frame = geometry.kind in ("raster", "user") and geometry.frame_table is None
    scan_nav: ScanShapes = (geometry.navigation_shape, grid) if per_frame else (grid,)

    @functools.cache
    def discovered() -> tuple[dict[str, str], dict[str, str]]:
        # Runs on first use of either image dict; not at all when both lists were given.
        virtual, external, found_notes = _discover(store, stem, info)
        out.metadata["scan"]["notes"].extend(found_notes)
        return virtual, external

    def images(given: Any, which: int, nav: ScanShapes | None) -> LazyImages:
        return LazyImages(
            lambda: _image_table(
                given, discovered()[which] if given is None else {}, store, storage_options, nav
            )
        )

    out.virtual_images = images(virtual_images, 0, scan_nav)
    out.external_images = images(external_images, 1, None)
    return out
