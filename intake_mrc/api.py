"""``open_mrc``: the one function most users call. It wires storage, format, arrays and the
Direct Electron model together."""

from __future__ import annotations

from typing import Any

from .directelectron.acquisition import open_de_movie
from .directelectron.naming import stem_of
from .directelectron.scan import PartialScan
from .format.header import SignedBytes
from .mrc import AxisOrder, MRCFile
from .storage import ByteStore, open_store


def open_mrc(
    urlpath_or_file: Any,
    storage_options: dict[str, Any] | None = None,
    navigation_shape: tuple[int, ...] | str | None = None,
    chunks: Any = "auto",
    mmap_mode: str | None = "c",
    signed_bytes: SignedBytes = "auto",
    metadata_file: Any = "auto",
    virtual_images: Any = None,
    external_images: Any = None,
    scan_file: Any = "auto",
    partial_scan: PartialScan = "error",
    axis_order: AxisOrder = "file",
) -> MRCFile:
    """Open an MRC file lazily: only the header and extended header are read.

    ``urlpath_or_file`` is a local path, an fsspec URL (``s3://``, ``https://``,
    ``memory://``, chained ``simplecache::s3://...``), an open binary file object or an
    ``intake_mrc.storage.ByteStore``.
    ``navigation_shape`` is in RosettaSciIO's (x, y) order: the array becomes
    ``reversed(navigation_shape) + (ny, nx)``; "auto" takes it from the FEI1/FEI2 "Scan
    size" box when that holds exactly the frames (Velox 4D-STEM), else keeps the stack (for
    DE movies, "auto" is the info file's scan). ``chunks`` is what dask accepts for the
    stack axes (frames are never split). ``mmap_mode`` ("c", "r", "r+" or None) applies to local
    files. ``signed_bytes`` decides mode-0 signedness ("auto" follows the IMOD flags; DE
    movies with an info file are unsigned; with IMOD's stamp and signed flag, the stored
    int8 + 128 as uint8, as IMOD reads them; "signed" keeps the stored int8).
    ``axis_order``: "file" (default) keeps the stored order (sections, rows, columns), as
    mrcfile does, with each axis named and scaled by the physical axis MAPC/MAPR/MAPS give
    it; "xyz" presents the spatial axes as (z, y, x), X fastest, by a lazy transpose.

    Direct Electron: ``metadata_file`` is the ``_info.txt`` (path, URL, open text or binary
    file), "auto" to look for ``{stem}_info.txt`` next to a movie named ``{stem}_movie.mrc``
    (one request), or None. ``virtual_images``/``external_images`` (lists of paths/URLs or
    dicts name -> path) override discovery; ``scan_file`` is the scan-coordinates CSV of a
    Random or XY-file scan ("auto": next to the movie). ``partial_scan="pad"`` zero-fills
    the positions an interrupted raster scan did not reach (the default is an error).
    """
    # A ByteStore is taken as is (front ends with their own storage, e.g. obspec stores).
    store = (
        urlpath_or_file
        if isinstance(urlpath_or_file, ByteStore)
        else open_store(urlpath_or_file, storage_options)
    )
    found = stem_of(store.basename)
    is_de_movie = found is not None and found[1] == "movie"  # any {stem}_movie.mrc
    if is_de_movie or not (metadata_file is None or metadata_file == "auto"):
        return open_de_movie(
            store,
            metadata_file=metadata_file,
            virtual_images=virtual_images,
            external_images=external_images,
            scan_file=scan_file,
            navigation_shape=None if navigation_shape == "auto" else navigation_shape,
            partial_scan=partial_scan,
            storage_options=storage_options,
            chunks=chunks,
            mmap_mode=mmap_mode,
            signed_bytes=signed_bytes,
            axis_order=axis_order,
        )
    # Direct Electron arguments given for a file that is not opened as a DE movie would be
    # dropped without a word: say so instead.
    given = [
        name
        for name, value in (
            ("virtual_images", virtual_images),
            ("external_images", external_images),
            ("scan_file", None if scan_file == "auto" else scan_file),
        )
        if value
    ]
    if given:
        raise ValueError(
            f"{store.name}: {', '.join(given)} apply to Direct Electron movies (named "
            "{stem}_movie.mrc, or opened with metadata_file=...); this file is neither"
        )
    return MRCFile.open(
        None,
        store=store,
        navigation_shape=navigation_shape,
        chunks=chunks,
        mmap_mode=mmap_mode,
        signed_bytes=signed_bytes,
        axis_order=axis_order,
    )
