"""Scan geometry of a DE acquisition: which navigation grid the movie's frames fill.

Pure functions over a parsed info file (and the scan-coordinates CSV for non-raster scans):
they return the navigation shape, a frame table where frames are not a plain reshape, and
the axes with physical scales from the info file.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np

from ..errors import MetadataError
from .info import DEInfo

PartialScan = Literal["error", "pad"]
# A custom-scan grid may not hold more than this many positions (a lying CSV cannot make
# the reader allocate more).
MAX_GRID_POSITIONS = 2**26


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
    frame_table: np.ndarray | None = None
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


def raster_geometry(info: DEInfo, n_frames: int, partial_scan: PartialScan) -> ScanGeometry:
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
        table = np.full(expected, -1, dtype=np.int64)
        table[:n_frames] = np.arange(n_frames)
        geometry.frame_table = table.reshape(nav)
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


def parse_scan_coordinates(
    content: str | bytes, source: str | None = None, max_rows: int | None = None
) -> np.ndarray:
    """``x,y`` integer rows (more columns allowed and ignored) into an (n, 2) array."""
    if isinstance(content, bytes):
        if b"\x00" in content:
            raise MetadataError("binary data, not a scan-coordinates CSV", source, "csv")
        content = content.decode("utf-8", errors="replace")
    rows: list[tuple[int, int]] = []
    for number, line in enumerate(content.splitlines(), start=1):
        if not line.strip():
            continue
        cells = line.split(",")
        try:
            x_text, y_text = cells[0].strip(), cells[1].strip()
            x, y = int(x_text), int(y_text)
        except (IndexError, ValueError):
            raise MetadataError(
                f"line {number}: expected integer 'x,y', got {line[:60]!r}", source, "csv"
            ) from None
        if x < 0 or y < 0:
            raise MetadataError(f"line {number}: negative position ({x}, {y})", source, "csv")
        rows.append((x, y))
        if max_rows is not None and len(rows) > max_rows:
            raise MetadataError(
                f"more than {max_rows} positions for {max_rows} frames", source, "csv"
            )
    if not rows:
        raise MetadataError("no positions", source, "csv")
    return np.asarray(rows, dtype=np.int64)


def custom_geometry(
    info: DEInfo, n_frames: int, coordinates: np.ndarray, source: str | None = None
) -> ScanGeometry:
    """A dense (ny, nx[, visits]) grid from per-frame positions; -1 where nothing was taken."""
    if len(coordinates) != n_frames:
        raise MetadataError(
            f"{len(coordinates)} positions for a movie of {n_frames} frames", source, "csv"
        )
    x, y = coordinates[:, 0], coordinates[:, 1]
    try:
        size_x, size_y = _scan_size(info)
    except MetadataError:
        size_x = size_y = None
    if size_x is not None and (x.max() >= size_x or y.max() >= size_y):
        raise MetadataError(
            f"positions reach ({int(x.max())}, {int(y.max())}) outside the {size_x} x {size_y} "
            "scan",
            source,
            "csv",
        )
    nx, ny = int(x.max()) + 1, int(y.max()) + 1
    flat = y * nx + x
    order = np.argsort(flat, kind="stable")
    sorted_flat = flat[order]
    starts = np.r_[0, np.flatnonzero(np.diff(sorted_flat)) + 1]
    counts = np.diff(np.r_[starts, sorted_flat.size])
    visits = int(counts.max())
    if ny * nx * visits > MAX_GRID_POSITIONS:
        raise MetadataError(
            f"a {ny} x {nx} x {visits} grid is too large for {n_frames} frames", source, "csv"
        )
    # Visit k at a position is the k-th frame taken there (frames in time order).
    rank = np.arange(sorted_flat.size) - np.repeat(starts, counts)
    table = np.full(ny * nx * visits, -1, dtype=np.int64)
    table[sorted_flat * visits + rank] = order
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
