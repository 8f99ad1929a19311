"""What a catalog index shows of a Direct Electron acquisition, from its parsed info file:
scan size, frame rate, acquisition time, camera and the detectors whose images were saved.

Pure (a ``DEInfo`` in, plain values out). Values come from a file anyone may have written:
names are cut to a bounded length and count, numbers must be finite, nothing is evaluated.
"""

from __future__ import annotations

import math
import re
from datetime import UTC, datetime
from typing import Any

from .info import DEInfo

MAX_DETECTORS = 64
MAX_NAME_CHARS = 200
_VIRTUAL_NAME = re.compile(r"Scan - Virtual Detector (\d{1,3}) Name\Z")
_EXTERNAL_NAME = re.compile(r"Scan - External Detector (\d{1,3}) Name\Z")


def _positive_int(info: DEInfo, key: str) -> int | None:
    value = info.integer(key)
    return value if value is not None and value > 0 else None


def scan_size(info: DEInfo) -> list[int] | None:
    """[x, y] of the scan (the ROI when enabled), or None when the scan is off or unsized."""
    if not info.enabled("Scan - Enable"):
        return None
    prefix = "Scan - ROI Size" if info.enabled("Scan - ROI Enable") else "Scan - Size"
    nx, ny = _positive_int(info, f"{prefix} X"), _positive_int(info, f"{prefix} Y")
    return [nx, ny] if nx and ny else None


def _saved_detectors(info: DEInfo, pattern: re.Pattern[str], autosave: str) -> list[str]:
    """Names of the detectors whose ``Autosave {autosave} N`` is Save, in detector order."""
    found: list[tuple[int, str]] = []
    for key, value in info.raw.items():
        match = pattern.match(key)
        if not match or not value.strip():
            continue
        n = int(match.group(1))
        if info.raw.get(f"Autosave {autosave} {n}", "").strip().lower() == "save":
            found.append((n, value.strip()[:MAX_NAME_CHARS]))
    return [name for _, name in sorted(found)[:MAX_DETECTORS]]


def acquisition_time(info: DEInfo) -> str | None:
    """The acquisition's start as ISO 8601 in UTC, from ``Timestamp (seconds since Epoch)``."""
    seconds = info.number("Timestamp (seconds since Epoch)")
    if seconds is None or not math.isfinite(seconds) or not 0 < seconds < 2**33:
        return None
    return datetime.fromtimestamp(seconds, UTC).isoformat()


def catalog_fields(info: DEInfo) -> dict[str, Any]:
    """The fields a catalog entry of a DE acquisition carries for searching."""
    fps = info.number("Frames Per Second")
    camera = info.get("Camera Model", "Camera Name")
    return {
        "scan_size": scan_size(info),
        "frames_per_second": fps if fps is not None and math.isfinite(fps) and fps > 0 else None,
        "acquisition_time": acquisition_time(info),
        "camera": str(camera)[:MAX_NAME_CHARS] if camera not in (None, "") else None,
        "detectors": {
            "virtual": _saved_detectors(info, _VIRTUAL_NAME, "Virtual Image"),
            "external": _saved_detectors(info, _EXTERNAL_NAME, "External Image"),
        },
    }
