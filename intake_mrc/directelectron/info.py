"""Direct Electron ``_info.txt`` files: ``Key = Value`` lines into raw strings and numbers.

Pure parsing (text or bytes in). Keys are padded to 64 characters, values may be empty,
lines may end in CRLF, and key names changed between DE-Server versions: ``DEInfo.get``
takes fallbacks.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from ..errors import MetadataError

# An info file is about 40 kB; anything far larger is not one.
MAX_INFO_NBYTES = 4 * 2**20
MAX_LINE_CHARS = 64 * 1024

_INT = re.compile(r"[+-]?\d+\Z")
_FLOAT = re.compile(r"[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?\Z")

# Key names that changed between DE-Server versions: the first found wins.
KEY_ALIASES: dict[str, tuple[str, ...]] = {
    "ADUs Per Electron": ("ADUs Per Electron", "ADUs Per Electron Bin1x"),
}


def convert_value(text: str) -> Any:
    """A number when the text is one, else the text."""
    if _INT.match(text):
        return int(text)
    if _FLOAT.match(text):
        return float(text)
    return text


@dataclass
class DEInfo:
    """A parsed info file: ``raw`` strings, ``values`` with numbers as numbers, notes."""

    raw: dict[str, str]
    values: dict[str, Any]
    source: str | None = None
    notes: list[str] = field(default_factory=list)

    def get(self, key: str, *fallbacks: str, default: Any = None) -> Any:
        """The value of the first key present among ``key``, its known aliases, fallbacks."""
        for name in KEY_ALIASES.get(key, (key,)) + fallbacks:
            if name in self.values and self.values[name] != "":
                return self.values[name]
        return default

    def number(self, key: str, *fallbacks: str, default: float | None = None) -> float | None:
        value = self.get(key, *fallbacks)
        return float(value) if isinstance(value, int | float) else default

    def integer(self, key: str, *fallbacks: str, default: int | None = None) -> int | None:
        value = self.get(key, *fallbacks)
        if isinstance(value, int):
            return value
        if isinstance(value, float) and value.is_integer():
            return int(value)
        return default

    def enabled(self, key: str) -> bool:
        return str(self.get(key, default="")).strip().lower() in ("enable", "enabled", "true", "1")


def parse_info(content: str | bytes, source: str | None = None) -> DEInfo:
    """Parse an info file's content. Raises ``MetadataError`` for what is not one."""
    if isinstance(content, bytes):
        if len(content) > MAX_INFO_NBYTES:
            raise MetadataError(
                f"{len(content)} bytes is far too large for a DE info file", source, "info"
            )
        if b"\x00" in content:
            raise MetadataError("binary data (NUL bytes), not a DE info file", source, "info")
        text = content.decode("utf-8", errors="replace")
    else:
        text = content
        if len(text) > MAX_INFO_NBYTES:
            raise MetadataError("far too large for a DE info file", source, "info")
        if "\x00" in text:
            raise MetadataError("binary data (NUL bytes), not a DE info file", source, "info")
    raw: dict[str, str] = {}
    notes: list[str] = []
    skipped = 0
    repeated: list[str] = []
    for line in text.splitlines():
        if not line.strip():
            continue
        if len(line) > MAX_LINE_CHARS or "=" not in line:
            skipped += 1
            continue
        key, value = line.split("=", 1)
        key, value = key.strip(), value.strip()
        if not key:
            skipped += 1
            continue
        if key in raw:
            repeated.append(key)
        raw[key] = value
    if not raw:
        raise MetadataError("no 'Key = Value' lines: not a DE info file", source, "info")
    if skipped:
        notes.append(f"{skipped} line(s) without 'Key = Value' were skipped")
    if repeated:
        notes.append(f"repeated keys (the last value kept): {sorted(set(repeated))[:10]}")
    values = {key: convert_value(value) for key, value in raw.items()}
    return DEInfo(raw=raw, values=values, source=source, notes=notes)


def summary(info: DEInfo) -> dict[str, Any]:
    """The keys a reader needs first, with fallbacks resolved (for metadata and the CLI)."""
    keys = [
        "Dataset Name",
        "Camera Model",
        "Instrument Project TEMorSTEM Mode",
        "Scan - Enable",
        "Scan - Type",
        "Scan - Size X",
        "Scan - Size Y",
        "Scan - ROI Enable",
        "Scan - ROI Size X",
        "Scan - ROI Size Y",
        "Scan - Repeats",
        "Image Size X (pixels)",
        "Image Size Y (pixels)",
        "Frame Count",
        "Frames Per Second",
        "Specimen Pixel Size X (nanometers)",
        "Specimen Pixel Size Y (nanometers)",
        "Diffraction Pixel Size X",
        "Diffraction Pixel Size Y",
        "Instrument Project Camera Length (centimeters)",
        "Instrument Project Magnification",
        "ADUs Per Electron",
        "Timestamp (seconds since Epoch)",
    ]
    return {key: info.get(key) for key in keys if info.get(key) is not None}
