"""Extended headers: FEI1/FEI2 per-section metadata, the old 128-byte FEI layout, raw others.

Pure functions over bytes. The FEI layouts are declared as data (field name, type code) in
the order of the EPU/Velox specification; docs/FORMAT.md section 2 has the rules
followed here.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

# Type codes: d float64, i int32, q int64, ? bool, B little-endian uint32 bitmask
# (always little-endian, whatever the file's byte order), sN an N-byte string.
_FEI1_FIELDS = """
Metadata size:i Metadata version:i Bitmask 1:B Timestamp:d Microscope type:s16
D-Number:s16 Application:s16 Application version:s16 HT:d Dose:d Alpha tilt:d Beta tilt:d
X-Stage:d Y-Stage:d Z-Stage:d Tilt axis angle:d Dual axis rotation:d Pixel size X:d
Pixel size Y:d Unused range:s48 Defocus:d STEM Defocus:d Applied defocus:d Instrument mode:i
Projection mode:i Objective lens mode:s16 High magnification mode:s16 Probe mode:i
EFTEM On:? Magnification:d Bitmask 2:B Camera length:d Spot index:i Illuminated area:d
Intensity:d Convergence angle:d Illumination mode:s16 Wide convergence angle range:?
Slit inserted:? Slit width:d Acceleration voltage offset:d Drift tube voltage:d
Energy shift:d Shift offset X:d Shift offset Y:d Shift X:d Shift Y:d Integration time:d
Binning Width:i Binning Height:i Camera name:s16 Readout area left:i Readout area top:i
Readout area right:i Readout area bottom:i Ceta noise reduction:? Ceta frames summed:i
Direct detector electron counting:? Direct detector align frames:?
Camera param reserved 0:i Camera param reserved 1:i Camera param reserved 2:i
Camera param reserved 3:i Bitmask 3:B Camera param reserved 4:i Camera param reserved 5:i
Camera param reserved 6:i Camera param reserved 7:i Camera param reserved 8:i
Camera param reserved 9:i Phase Plate:? STEM Detector name:s16 Gain:d Offset:d
STEM param reserved 0:i STEM param reserved 1:i STEM param reserved 2:i
STEM param reserved 3:i STEM param reserved 4:i Dwell time:d Frame time:d Scan size left:i
Scan size top:i Scan size right:i Scan size bottom:i Full scan FOV X:d Full scan FOV Y:d
Element:s16 Energy interval lower:d Energy interval higher:d Method:i Is dose fraction:?
Fraction number:i Start frame:i End frame:i Input stack filename:s80 Bitmask 4:B
Alpha tilt min:d Alpha tilt max:d
"""
_FEI2_EXTRA_FIELDS = """
Scan rotation:d Diffraction pattern rotation:d Image rotation:d Scan mode enumeration:i
Acquisition time stamp:q Detector commercial name:s16 Start tilt angle:d End tilt angle:d
Tilt per image:d Tilt speed:d Beam center X pixel:i Beam center Y pixel:i
CFEG flash timestamp:q Phase plate position index:i Objective aperture name:s16
"""

# The old FEI tomography layout: 128-byte records of float32, no EXTTYP.
_OLD_FEI_FIELDS = [
    "a_tilt",
    "b_tilt",
    "x_stage",
    "y_stage",
    "z_stage",
    "x_shift",
    "y_shift",
    "defocus",
    "exp_time",
    "mean_int",
    "tilt_axis",
    "pixel_size",
    "magnification",
]
OLD_FEI_NBYTES = (131072, 1048576)


def _parse_field_table(table: str) -> list[tuple[str, str]]:
    # Names contain spaces; each entry ends at a token "lastword:code".
    out = []
    tokens = table.split()
    name_parts: list[str] = []
    for token in tokens:
        if ":" in token:
            last, code = token.rsplit(":", 1)
            name_parts.append(last)
            out.append((" ".join(name_parts), code))
            name_parts = []
        else:
            name_parts.append(token)
    return out


def _build_dtype(fields: list[tuple[str, str]], byte_order: str) -> np.dtype:
    kinds = {"d": "f8", "i": "i4", "q": "i8"}
    spec = []
    for name, code in fields:
        if code in kinds:
            spec.append((name, byte_order + kinds[code]))
        elif code == "B":
            spec.append((name, "<u4"))
        elif code == "?":
            spec.append((name, "?"))
        else:
            spec.append((name, "S" + code[1:]))
    return np.dtype(spec)


_FEI1 = _parse_field_table(_FEI1_FIELDS)
_FEI2 = _FEI1 + _parse_field_table(_FEI2_EXTRA_FIELDS)


def fei_dtype(exttyp: str, byte_order: str) -> np.dtype:
    """The record dtype for 'FEI1' (768 bytes) or 'FEI2' (888 bytes) in a byte order."""
    return _build_dtype(_FEI1 if exttyp == "FEI1" else _FEI2, byte_order)


def old_fei_dtype(byte_order: str) -> np.dtype:
    """The 128-byte record of the old FEI tomography extended header."""
    return np.dtype(
        {
            "names": _OLD_FEI_FIELDS,
            "formats": [byte_order + "f4"] * len(_OLD_FEI_FIELDS),
            "itemsize": 128,
        }
    )


@dataclass
class ExtendedHeader:
    """A decoded extended header: records (structured array) or raw bytes, and notes."""

    kind: str  # "FEI1", "FEI2", "old FEI", or the EXTTYP of a raw header
    records: np.ndarray | None  # one record per section, native byte order
    raw: bytes
    record_nbytes: int | None = None
    notes: list[str] = field(default_factory=list)

    @property
    def value(self) -> np.ndarray | bytes:
        """What ``MRCFile.extended_header`` hands out."""
        return self.records if self.records is not None else self.raw


def _native(array: np.ndarray) -> np.ndarray:
    """A copy with every numeric field in native byte order."""
    native = np.dtype(
        [(name, array.dtype.fields[name][0].newbyteorder("=")) for name in array.dtype.names]
    )
    return array.astype(native) if array.dtype.names else array


def _decode_fei(raw: bytes, exttyp: str, byte_order: str, n_sections: int) -> ExtendedHeader:
    dtype = fei_dtype(exttyp, byte_order)
    notes: list[str] = []
    if len(raw) < 4:
        return ExtendedHeader(exttyp, None, raw, notes=[f"{exttyp} header too short to decode"])
    record_nbytes = int(np.frombuffer(raw[:4], byte_order + "i4")[0])
    if not dtype.itemsize <= record_nbytes <= len(raw):
        swapped = int(np.frombuffer(raw[:4], ("<" if byte_order == ">" else ">") + "i4")[0])
        if dtype.itemsize <= swapped <= len(raw):
            record_nbytes = swapped
        else:
            notes.append(
                f"{exttyp} 'Metadata size' is {record_nbytes}; a record needs at least "
                f"{dtype.itemsize} bytes within the {len(raw)}-byte extended header: kept raw"
            )
            return ExtendedHeader(exttyp, None, raw, notes=notes)
    n_records = min(n_sections, len(raw) // record_nbytes)
    if n_records < n_sections:
        notes.append(
            f"{exttyp} header holds {n_records} records of {record_nbytes} bytes "
            f"for {n_sections} sections"
        )
    padded = np.dtype(
        {
            "names": dtype.names,
            "formats": [dtype.fields[n][0] for n in dtype.names],
            "offsets": [dtype.fields[n][1] for n in dtype.names],
            "itemsize": record_nbytes,
        }
    )
    records = np.frombuffer(raw, padded, count=n_records)
    return ExtendedHeader(exttyp, _native(records), raw, record_nbytes, notes)


def decode_extended_header(
    raw: bytes, exttyp: str, byte_order: str, n_sections: int
) -> ExtendedHeader | None:
    """Decode the extended header bytes by EXTTYP (or, for the old FEI layout, by length)."""
    if not raw:
        return None
    if exttyp in ("FEI1", "FEI2"):
        return _decode_fei(raw, exttyp, byte_order, n_sections)
    if exttyp.strip() == "" and len(raw) in OLD_FEI_NBYTES:
        count = min(n_sections, len(raw) // 128)
        records = np.frombuffer(raw, old_fei_dtype(byte_order), count=count)
        return ExtendedHeader("old FEI", _native(records), raw, 128)
    return ExtendedHeader(exttyp.strip() or "unspecified", None, raw)


def fei_pixel_size_m(ext: ExtendedHeader | None) -> tuple[float | None, float | None]:
    """Pixel size X, Y in metres from the first FEI record (or old FEI), when positive."""
    if ext is None or ext.records is None or len(ext.records) == 0:
        return None, None
    first = ext.records[0]
    if ext.kind == "old FEI":
        size = float(first["pixel_size"])
        size = size if size > 0 and np.isfinite(size) else None
        return size, size
    values = []
    for name in ("Pixel size X", "Pixel size Y"):
        v = float(first[name])
        values.append(v if np.isfinite(v) and 0 < v < 1 else None)
    return values[0], values[1]


def fei_scan_shape(ext: ExtendedHeader | None, n_frames: int) -> tuple[int, int] | None:
    """(y, x) scan shape from the first FEI record's "Scan size" box (right and bottom are
    exclusive), when it holds exactly ``n_frames`` points of a stack of more than one."""
    if ext is None or ext.records is None or len(ext.records) == 0 or n_frames < 2:
        return None
    if ext.kind not in ("FEI1", "FEI2"):
        return None
    first = ext.records[0]
    width = int(first["Scan size right"]) - int(first["Scan size left"])
    height = int(first["Scan size bottom"]) - int(first["Scan size top"])
    if width > 0 and height > 0 and width * height == n_frames:
        return (height, width)
    return None


def _validity_bits(fields: list[tuple[str, str]]) -> dict[str, tuple[str, int]]:
    """Field -> (its Bitmask field, bit): bit i of a Bitmask marks the i-th field after it
    as valid; FEI1's 48-byte "Unused range" spans bits 16-21 of Bitmask 1, so Defocus is
    bit 22 and Magnification bit 31 (checked on the Velox sample: the fields whose bit is
    clear hold 0 there)."""
    out: dict[str, tuple[str, int]] = {}
    mask, bit = None, 0
    for name, _code in fields:
        if name.startswith("Bitmask"):
            mask, bit = name, 0
            continue
        if mask is not None:
            out[name] = (mask, bit)
        bit += 6 if name == "Unused range" else 1
    return out


_VALIDITY = {"FEI1": _validity_bits(_FEI1), "FEI2": _validity_bits(_FEI2)}


def fei_valid(records: np.ndarray, kind: str, name: str) -> np.ndarray:
    """Per record, whether its Bitmask marks field ``name`` as valid (FEI1/FEI2 records)."""
    mask, bit = _VALIDITY[kind][name]
    return (records[mask].astype(np.uint64) >> np.uint64(bit)) & np.uint64(1) == 1


def record_summary(record: np.void) -> dict[str, Any]:
    """One FEI record as a dict of plain Python values (strings decoded, numbers as numbers)."""
    out: dict[str, Any] = {}
    for name in record.dtype.names:
        value = record[name]
        if isinstance(value, bytes | np.bytes_):
            out[name] = bytes(value).decode("latin-1").rstrip("\x00 ")
        else:
            out[name] = value.item()
    return out
