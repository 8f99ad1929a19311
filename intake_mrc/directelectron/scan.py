"""Scan geometry of a DE acquisition: which navigation grid the movie's frames fill.

Pure functions over a parsed info file (and the scan-coordinates CSV for non-raster scans):
they return the navigation shape, a frame table where frames are not a plain reshape, and
the axes with physical scales from the info file.
"""

from __future__ import annotations

import io
import math
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np

from ..arguments import check_navigation_shape
from ..array import FrameTable, PaddedFrameTable
from ..errors import MetadataError
from .info import DEInfo

PartialScan = Literal["error", "pad"]
# A navigation grid may not hold more than this many positions (a lying info file or CSV
# cannot make the reader plan more).
MAX_GRID_POSITIONS = 2**26
# A grid with positions that no frame fills (an interrupted raster scan padded with zeros,
# a sparse custom scan) may hold at most this many times the frames that exist, so that
# what a read hands out stays within a few times the data in the file ...
MAX_FILL_FACTOR = 4
# ... except small grids: this many bytes of output (or of frame table) are always allowed.
SMALL_GRID_NBYTES = 16 * 2**20
# Scan coordinates: the largest coordinate accepted (far beyond any scan), and the CSV
# parsed in blocks of this many bytes, lines of at most MAX_CSV_LINE_CHARS.
MAX_COORDINATE = 2**31 - 1
CSV_BLOCK_NBYTES = 4 * 2**20
MAX_CSV_LINE_CHARS = 64 * 1024
_CELL = re.compile(rb"\s*[+-]?[0-9]+\s*\Z")


def _axis(
    name: str, size: int, scale: float | None, units: str | None, navigate: bool
) -> dict[str, Any]:
    known = scale is not None and math.isfinite(scale) and scale > 0
    return {
        "name": name,
        "size": int(size),
        "scale": float(scale) if known else 1.0,
        "units": units if known else None,
        "offset": 0.0,
        "navigate": navigate,
    }


@dataclass
class ScanGeometry:
    kind: str  # "raster", "custom" or "movie"
    navigation_shape: tuple[int, ...]
    axes: list[dict[str, Any]]  # navigation axes, numpy order
    frame_table: FrameTable | None = None
    notes: list[str] = field(default_factory=list)


def is_diffraction(info: DEInfo) -> bool:
    """Frames are diffraction patterns: a STEM scan, or a positive camera length."""
    if info.enabled("Scan - Enable"):
        return True
    if info.integer("Instrument Project TEMorSTEM Mode") == 1:
        return True
    camera_length = info.number("Instrument Project Camera Length (centimeters)")
    return camera_length is not None and camera_length > 0


def signal_axes(info: DEInfo, ky: int, kx: int) -> list[dict[str, Any]]:
    """Frame axes: diffraction (mrad, DE's unit) or real space (nm)."""
    if is_diffraction(info):
        return [
            _axis("ky", ky, info.number("Diffraction Pixel Size Y"), "mrad", False),
            _axis("kx", kx, info.number("Diffraction Pixel Size X"), "mrad", False),
        ]
    return [
        _axis("y", ky, info.number("Specimen Pixel Size Y (nanometers)"), "nm", False),
        _axis("x", kx, info.number("Specimen Pixel Size X (nanometers)"), "nm", False),
    ]


def _scan_size(info: DEInfo) -> tuple[int, int]:
    """(nx, ny) of the scan: the ROI when enabled, else the full scan."""
    if info.enabled("Scan - ROI Enable"):
        nx, ny = info.integer("Scan - ROI Size X"), info.integer("Scan - ROI Size Y")
        what = "Scan - ROI Size X/Y"
    else:
        nx, ny = info.integer("Scan - Size X"), info.integer("Scan - Size Y")
        what = "Scan - Size X/Y"
    if not nx or not ny or nx <= 0 or ny <= 0:
        raise MetadataError(f"{what} missing or not positive ({nx}, {ny})", info.source, what)
    return nx, ny


def _scan_axes(info: DEInfo, ny: int, nx: int) -> list[dict[str, Any]]:
    return [
        _axis("y", ny, info.number("Specimen Pixel Size Y (nanometers)"), "nm", True),
        _axis("x", nx, info.number("Specimen Pixel Size X (nanometers)"), "nm", True),
    ]


def check_grid(
    shape: tuple[int, ...],
    n_frames: int,
    frame_nbytes: int,
    source: str | None,
    field: str,
    what: str,
) -> None:
    """Refuse a grid that would hand out far more than the file holds: more than
    MAX_GRID_POSITIONS positions, or more than MAX_FILL_FACTOR times the frames that exist
    unless its output (and frame table) stays under SMALL_GRID_NBYTES."""
    positions = math.prod(shape)
    per_position = max(int(frame_nbytes), 8)  # a frame of output, or a table entry
    if positions <= MAX_GRID_POSITIONS and (
        positions <= MAX_FILL_FACTOR * n_frames or positions * per_position <= SMALL_GRID_NBYTES
    ):
        return
    raise MetadataError(
        f"{what}: a {' x '.join(map(str, shape))} grid ({positions} positions) for "
        f"{n_frames} frames of {frame_nbytes} bytes would hand out {positions * frame_nbytes} "
        f"bytes from {n_frames * frame_nbytes}; a grid may hold at most {MAX_FILL_FACTOR} times "
        f"the frames (intake_mrc.directelectron.scan.MAX_FILL_FACTOR) and "
        f"{MAX_GRID_POSITIONS} positions (MAX_GRID_POSITIONS)",
        source,
        field,
    )


def raster_geometry(
    info: DEInfo, n_frames: int, partial_scan: PartialScan, frame_nbytes: int = 1
) -> ScanGeometry:
    """The (repeats,) ny, nx grid of a raster scan; with ``partial_scan="pad"`` an
    interrupted scan (fewer frames) is padded lazily, within ``check_grid``'s bounds.
    ``frame_nbytes`` is one output frame's size."""
    nx, ny = _scan_size(info)
    repeats = info.integer("Scan - Repeats", default=1)
    if repeats is None or repeats < 1:
        raise MetadataError(f"Scan - Repeats is {repeats}", info.source, "Scan - Repeats")
    expected = repeats * ny * nx
    nav = (repeats, ny, nx) if repeats > 1 else (ny, nx)
    axes = _scan_axes(info, ny, nx)
    if repeats > 1:
        period = info.number("Scan - Time Per Scan (seconds)")
        axes.insert(0, _axis("repeat", repeats, period, "s", True))
    geometry = ScanGeometry("raster", nav, axes)
    if n_frames == expected:
        return geometry
    if n_frames < expected and partial_scan == "pad":
        check_grid(
            nav,
            n_frames,
            frame_nbytes,
            info.source,
            "Scan - Size X/Y",
            "partial_scan='pad' cannot pad the interrupted scan",
        )
        geometry.frame_table = PaddedFrameTable(nav, n_frames)
        geometry.notes.append(
            f"interrupted scan: {n_frames} of {expected} frames; missing positions read as 0"
        )
        return geometry
    raise MetadataError(
        f"the movie has {n_frames} frames but the scan (repeats {repeats} x "
        f"{ny} x {nx}) needs {expected}"
        + (
            "; pass partial_scan='pad' to zero-fill an interrupted scan"
            if n_frames < expected
            else ""
        )
        + ", or give navigation_shape",
        info.source,
        "Scan - Size X/Y",
    )


class ScanCoordinateParser:
    """Streaming parser of a scan-coordinates CSV: ``x,y`` integer rows (more columns allowed
    and ignored, blank lines skipped). Feed bytes in blocks of any size; ``finish`` gives an
    (n, 2) int32 array. Memory stays at the result plus one block: each block of whole
    lines is parsed by numpy's C reader, and only a block that it refuses (or whose values
    are out of range) is parsed again line by line, to name the line at fault."""

    def __init__(self, source: str | None = None, max_rows: int | None = None):
        self.source = source
        self.max_rows = max_rows
        self._carry = b""
        self._line = 0  # lines before the carried part
        self._rows = 0
        self._blocks: list[np.ndarray] = []

    def feed(self, data: bytes) -> None:
        if b"\x00" in data:
            raise MetadataError("binary data, not a scan-coordinates CSV", self.source, "csv")
        data = self._carry + data
        end = data.rfind(b"\n") + 1
        self._carry = data[end:]
        if len(self._carry) > MAX_CSV_LINE_CHARS:
            raise MetadataError(
                f"line {self._line + 1}: longer than {MAX_CSV_LINE_CHARS} characters",
                self.source,
                "csv",
            )
        if end:
            self._parse(data[:end])

    def finish(self) -> np.ndarray:
        if self._carry:
            self._parse(self._carry + b"\n")
            self._carry = b""
        if not self._rows:
            raise MetadataError("no positions", self.source, "csv")
        out = np.concatenate(self._blocks) if len(self._blocks) > 1 else self._blocks[0]
        self._blocks = []
        return out

    def _parse(self, lines: bytes) -> None:
        """Whole lines (ending in a newline)."""
        first_line = self._line + 1
        self._line += lines.count(b"\n")
        if not lines.strip():
            return
        try:
            rows = np.loadtxt(
                io.BytesIO(lines),
                delimiter=",",
                usecols=(0, 1),
                dtype=np.int64,
                comments=None,
                ndmin=2,
            )
        except (ValueError, OverflowError):
            rows = None
        if rows is None or (rows.size and (rows.min() < 0 or rows.max() > MAX_COORDINATE)):
            rows = self._parse_slowly(lines, first_line)
        if not rows.size:
            return
        self._rows += len(rows)
        if self.max_rows is not None and self._rows > self.max_rows:
            raise MetadataError(
                f"more than {self.max_rows} positions for {self.max_rows} frames",
                self.source,
                "csv",
            )
        self._blocks.append(rows.astype(np.int32))

    def _parse_slowly(self, lines: bytes, first_line: int) -> np.ndarray:
        """The same rows, line by line: the first bad line raises MetadataError by number."""
        rows: list[tuple[int, int]] = []
        for number, line in enumerate(lines.split(b"\n")[:-1], start=first_line):
            if not line.strip():
                continue
            cells = line.split(b",")
            if len(cells) < 2 or not (_CELL.match(cells[0]) and _CELL.match(cells[1])):
                shown = line[:60].decode("utf-8", errors="replace")
                raise MetadataError(
                    f"line {number}: expected integer 'x,y', got {shown!r}", self.source, "csv"
                )
            # Digits only (no '1_0', no other scripts): int() of a bounded text.
            x_text, y_text = cells[0].strip(), cells[1].strip()
            if max(len(x_text), len(y_text)) > 20:
                big = (x_text if len(x_text) > 20 else y_text)[:24].decode()
                raise MetadataError(
                    f"line {number}: coordinate too large ({big}...): at most {MAX_COORDINATE}",
                    self.source,
                    "csv",
                )
            x, y = int(x_text), int(y_text)
            if x < 0 or y < 0:
                raise MetadataError(
                    f"line {number}: negative position ({x}, {y})", self.source, "csv"
                )
            if x > MAX_COORDINATE or y > MAX_COORDINATE:
                raise MetadataError(
                    f"line {number}: coordinate too large ({x}, {y}): at most {MAX_COORDINATE}",
                    self.source,
                    "csv",
                )
            rows.append((x, y))
        return np.array(rows, dtype=np.int64).reshape(-1, 2)


def parse_scan_coordinates(
    content: str | bytes | Iterable[bytes],
    source: str | None = None,
    max_rows: int | None = None,
) -> np.ndarray:
    """``x,y`` integer rows (more columns allowed and ignored) into an (n, 2) int32 array.
    ``content`` is the whole text, or an iterable of bytes blocks (streamed)."""
    parser = ScanCoordinateParser(source, max_rows)
    if isinstance(content, str):
        content = content.encode("utf-8", errors="replace")
    if isinstance(content, bytes):
        whole = content
        content = (whole[i : i + CSV_BLOCK_NBYTES] for i in range(0, len(whole), CSV_BLOCK_NBYTES))
    for block in content:
        parser.feed(block)
    return parser.finish()


def custom_geometry(
    info: DEInfo,
    n_frames: int,
    coordinates: np.ndarray,
    source: str | None = None,
    frame_nbytes: int = 1,
) -> ScanGeometry:
    """A dense (ny, nx[, visits]) grid from per-frame positions; -1 where nothing was taken.
    The grid is bounded by ``check_grid``; the table is int32 (positions < 2**31)."""
    if len(coordinates) != n_frames:
        raise MetadataError(
            f"{len(coordinates)} positions for a movie of {n_frames} frames", source, "csv"
        )
    x, y = coordinates[:, 0], coordinates[:, 1]
    max_x, max_y = int(x.max()), int(y.max())
    try:
        size_x, size_y = _scan_size(info)
    except MetadataError:
        size_x = size_y = None
    if size_x is not None and size_y is not None and (max_x >= size_x or max_y >= size_y):
        raise MetadataError(
            f"positions reach ({max_x}, {max_y}) outside the {size_x} x {size_y} scan",
            source,
            "csv",
        )
    nx, ny = max_x + 1, max_y + 1
    what = "the scan coordinates do not fit the frames"
    check_grid((ny, nx), n_frames, frame_nbytes, source, "csv", what)
    # ny * nx <= MAX_GRID_POSITIONS < 2**31: flat positions and frame numbers fit int32.
    flat = y.astype(np.int32) * np.int32(nx) + x.astype(np.int32)
    frames = np.arange(n_frames, dtype=np.int32)
    table = np.full(ny * nx, -1, dtype=np.int32)
    table[flat] = frames
    visits = 1
    if np.count_nonzero(table >= 0) != n_frames:
        # Repeated positions: visit k at a position is the k-th frame taken there (frames
        # in time order).
        order = np.argsort(flat, kind="stable").astype(np.int32)
        sorted_flat = flat[order]
        del flat
        starts = np.r_[0, np.flatnonzero(np.diff(sorted_flat)) + 1]
        counts = np.diff(np.r_[starts, sorted_flat.size])
        visits = int(counts.max())
        check_grid((ny, nx, visits), n_frames, frame_nbytes, source, "csv", what)
        rank = np.arange(sorted_flat.size) - np.repeat(starts, counts)
        table = np.full(ny * nx * visits, -1, dtype=np.int32)
        table[sorted_flat.astype(np.int64) * visits + rank] = order
    axes = _scan_axes(info, ny, nx)
    if visits > 1:
        axes.append(_axis("visit", visits, None, None, True))
        nav: tuple[int, ...] = (ny, nx, visits)
    else:
        nav = (ny, nx)
    notes = [
        f"custom scan: {n_frames} frames on a {ny} x {nx} grid"
        + (f", up to {visits} visits per position" if visits > 1 else "")
    ]
    return ScanGeometry("custom", nav, axes, table.reshape(nav), notes)


def movie_geometry(info: DEInfo, n_frames: int) -> ScanGeometry:
    """A movie without a scan: a time axis from the frame rate."""
    fps = info.number("Frames Per Second")
    period = 1.0 / fps if fps and fps > 0 else None
    return ScanGeometry("movie", (n_frames,), [_axis("time", n_frames, period, "s", True)])


def scan_type(info: DEInfo) -> str:
    return str(info.get("Scan - Type", default="Raster")).strip().lower()


def needs_coordinates(info: DEInfo) -> bool:
    return info.enabled("Scan - Enable") and scan_type(info) in ("random", "xy file")


def info_geometry(
    info: DEInfo, n_frames: int, partial_scan: PartialScan, frame_nbytes: int = 1
) -> ScanGeometry:
    """The geometry the info file alone gives (a raster scan, or a movie without a scan);
    a Random or XY-file scan (``needs_coordinates``) needs its scan-coordinates file."""
    if info.enabled("Scan - Enable"):
        return raster_geometry(info, n_frames, partial_scan, frame_nbytes)
    return movie_geometry(info, n_frames)


def user_axes(nav: tuple[int, ...]) -> list[dict[str, Any]]:
    """Navigation axes of a user-given shape: (y, x) for two axes, nav0.. otherwise; no
    physical scale (the info's scan steps describe the scan's own grid, not this one)."""
    names = ["y", "x"] if len(nav) == 2 else [f"nav{i}" for i in range(len(nav))]
    return [
        {"name": n, "size": int(s), "scale": 1.0, "units": None, "offset": 0.0, "navigate": True}
        for n, s in zip(names, nav, strict=True)
    ]


def navigation_geometry(
    info: DEInfo | None,
    n_frames: int,
    navigation_shape: Any,
    partial_scan: PartialScan,
    frame_nbytes: int,
    source: str | None,
) -> ScanGeometry | None:
    """A DE movie's navigation, as the reader and the catalog index both decide it: the
    user's ``navigation_shape`` wins (checked: positive integers; its axes are left to
    :func:`movie_axes`), else the info file's raster scan or frame series. None for a Random
    or XY-file scan, whose grid needs the scan-coordinates file. ``info`` may be None only
    when ``navigation_shape`` is given."""
    if navigation_shape is not None:
        nav = tuple(reversed(check_navigation_shape(navigation_shape, source)))
        return ScanGeometry("user", nav, [])
    assert info is not None
    if needs_coordinates(info):
        return None
    return info_geometry(info, n_frames, partial_scan, frame_nbytes)


def movie_axes(
    info: DEInfo, geometry: ScanGeometry, ny: int, nx: int
) -> list[dict[str, Any]] | None:
    """Every axis of a DE movie: the geometry's navigation axes (plain ones for the user's
    grid, as the info's scan steps describe the scan's own grid) then the frame's, which
    keep the info's pixel sizes. None when the geometry names no axes."""
    if geometry.axes:
        navigation = geometry.axes
    elif geometry.kind == "user":
        navigation = user_axes(geometry.navigation_shape)
    else:
        return None
    return navigation + signal_axes(info, ny, nx)
