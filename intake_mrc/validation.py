"""``validate``: the problems of one MRC file, as lines of text (front end of
``intake-mrc validate``).

It wires the pure checks of ``format.validate`` (mrcfile's MRC2014 checks) to a store, adds
what our reader finds (extended headers that do not fit, Direct Electron metadata that does
not fit the movie, data that do not fit the file), and, for local files, the data statistics
against the header's DMIN/DMAX/DMEAN/RMS. Remote files are checked from their header alone
(the one ranged read the reader makes, plus the size from the listing or one HEAD
request): no data are fetched.
"""

from __future__ import annotations

from typing import Any, Literal

from .errors import MetadataError, MRCFormatError
from .format.header import detect_compression, has_map_id
from .format.validate import header_problems, statistics_problems

Statistics = Literal["auto", "always", "never"]


def is_local(urlpath: Any) -> bool:
    text = str(urlpath)
    return "://" not in text and "::" not in text or text.startswith("file://")


def validate(
    urlpath: Any,
    storage_options: dict[str, Any] | None = None,
    statistics: Statistics = "auto",
) -> list[str]:
    """The file's problems, one string each; an empty list when it is valid MRC2014.

    ``statistics``: "auto" compares the header's statistics with the data for local files
    only (that reads every byte), "always" also for remote files, "never" skips it. Errors
    reaching the file (missing, forbidden) raise, as ``open_mrc`` does."""
    from .api import open_mrc

    # The reader first: one ranged read gives the header it parsed, which the checks take
    # (the header was fetched twice before). Only a file it refuses is read again raw.
    try:
        f = open_mrc(urlpath, storage_options)
    except (MetadataError, MRCFormatError) as error:
        return _refused(urlpath, storage_options, error)
    problems = header_problems(f.main_header.raw, f.store.size())
    extended = getattr(f, "_extended", None)
    problems.extend(f"extended header: {note}" for note in getattr(extended, "notes", []))
    wanted = statistics == "always" or (statistics == "auto" and is_local(urlpath))
    if wanted and f.dtype.kind != "c":
        problems.extend(statistics_problems(f.header, *_data_statistics(f)))
    return problems


def _refused(
    urlpath: Any, storage_options: dict[str, Any] | None, error: MRCFormatError
) -> list[str]:
    """The problems of a file the reader refuses: the header checks on its raw first bytes,
    and the reader's own words when they add something (DE metadata that does not fit)."""
    from .mrc import FIRST_READ_NBYTES, open_decompressed
    from .storage import open_store

    store = open_store(urlpath, storage_options)
    head = store.head(FIRST_READ_NBYTES)
    compression = detect_compression(head)
    if compression and not has_map_id(head):
        try:
            # Decompressed no further than the header declares (its size() stops there).
            store, head = open_decompressed(store, head, compression)
        except MRCFormatError as decompress_error:  # not decompressible
            return [_without_source(decompress_error)]
    problems = header_problems(head, store.size())
    if problems and problems[0].startswith("not an MRC file"):
        return problems
    if isinstance(error, MetadataError):
        return problems + [_without_source(error)]
    # The header checks already name what the reader refuses; keep its words only when
    # they add something.
    return problems if problems else [_without_source(error)]


def _data_statistics(f: Any) -> tuple[float, float, float, float]:
    """Minimum, maximum, mean and standard deviation in one pass over the chunks."""
    import dask
    import dask.array as da

    arr = f.to_dask()
    stats = dask.compute(arr.min(), arr.max(), arr.mean(dtype="f8"), da.std(arr.astype("f8")))
    return tuple(float(v) for v in stats)  # type: ignore[return-value]


def _without_source(error: MRCFormatError) -> str:
    text = str(error)
    prefix = f"{error.source}: " if error.source else ""
    return text[len(prefix) :] if prefix and text.startswith(prefix) else text


__all__ = ["validate"]
