"""The MRC2014 main header: layout, byte order, modes, shape and validation.

Pure functions over bytes, no I/O: given the first bytes of a file (and its length when known)
they say where the data are, how they are laid out, and what the header claims. Every rule here
is summarised in docs/FORMAT.md (in this repository), section 1.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np

from ..errors import MRCFormatError, TruncatedFileError

HEADER_NBYTES = 1024

# The 1024-byte header as data, in file order; built for either byte order below.
_HEADER_FIELDS: list[tuple[str, str]] = [
    ("nx", "i4"),
    ("ny", "i4"),
    ("nz", "i4"),
    ("mode", "i4"),
    ("nxstart", "i4"),
    ("nystart", "i4"),
    ("nzstart", "i4"),
    ("mx", "i4"),
    ("my", "i4"),
    ("mz", "i4"),
    ("cella", "(3,)f4"),
    ("cellb", "(3,)f4"),
    ("mapc", "i4"),
    ("mapr", "i4"),
    ("maps", "i4"),
    ("dmin", "f4"),
    ("dmax", "f4"),
    ("dmean", "f4"),
    ("ispg", "i4"),
    ("nsymbt", "i4"),
    ("extra1", "V8"),
    ("exttyp", "S4"),
    ("nversion", "i4"),
    ("extra2", "V40"),
    ("imod_stamp", "i4"),
    ("imod_flags", "i4"),
    ("extra3", "V36"),
    ("origin", "(3,)f4"),
    ("map", "S4"),
    ("machst", "(4,)u1"),
    ("rms", "f4"),
    ("nlabl", "i4"),
    ("label", "(10,)S80"),
]


@functools.cache  # two dtypes in all; building one took ~0.2 ms, three times per header
def header_dtype(byte_order: str) -> np.dtype:
    """The structured dtype of the main header in the given byte order ('<' or '>')."""
    fields = []
    for name, kind in _HEADER_FIELDS:
        count = ""
        if kind.startswith("("):
            count, kind = kind.split(")")
            count += ")"
        if kind[0] in "if":
            kind = byte_order + kind
        fields.append((name, count + kind))
    dtype = np.dtype(fields)
    assert dtype.itemsize == HEADER_NBYTES
    return dtype


IMOD_STAMP = 1146047817
IMOD_FLAG_SIGNED_BYTES = 1

# MODE -> (numpy type of the stored element without byte order, numpy type handed out).
# Mode 3 is stored as int16 pairs, mode 101 as two 4-bit pixels per byte.
MODES: dict[int, tuple[str, str]] = {
    0: ("i1", "i1"),
    1: ("i2", "i2"),
    2: ("f4", "f4"),
    3: ("i2", "c8"),
    4: ("c8", "c8"),
    6: ("u2", "u2"),
    12: ("f2", "f2"),
    101: ("u1", "u1"),
}

# Bytes of one stored pixel (mode 101 is handled by row_nbytes).
_PIXEL_NBYTES = {0: 1, 1: 2, 2: 4, 3: 4, 4: 8, 6: 2, 12: 2, 101: 1}

SignedBytes = Literal["auto", "signed", "unsigned"]

COMPRESSION_MAGIC = {b"\x1f\x8b": "gzip", b"BZh": "bz2"}


def detect_compression(head: bytes) -> str | None:
    """'gzip' or 'bz2' when the bytes start with that format's magic, else None."""
    for magic, name in COMPRESSION_MAGIC.items():
        if head.startswith(magic):
            return name
    return None


@dataclass(frozen=True)
class DataLayout:
    """Where the pixel data live and how they are stored: enough to read and decode them."""

    offset: int  # byte offset of the first pixel
    n_frames: int  # sections (NZ)
    ny: int
    nx: int
    mode: int
    byte_order: str  # '<' or '>', the file's
    out_dtype: np.dtype  # native byte order, what readers hand out
    # Mode 0 written by IMOD with its signed flag: stored int8 = value - 128 (b3dShiftBytes).
    shift_bytes: bool = False

    @property
    def row_nbytes(self) -> int:
        if self.mode == 101:
            return (self.nx + 1) // 2
        return self.nx * _PIXEL_NBYTES[self.mode]

    @property
    def frame_nbytes(self) -> int:
        return self.ny * self.row_nbytes

    @property
    def nbytes(self) -> int:
        return self.n_frames * self.frame_nbytes

    @property
    def stored_dtype(self) -> np.dtype:
        """The dtype of one stored element, in the file's byte order."""
        kind = MODES[self.mode][0]
        if self.mode == 0:
            kind = "i1" if self.shift_bytes else self.out_dtype.str[1:]
        return np.dtype(kind).newbyteorder(self.byte_order)

    @property
    def needs_decoding(self) -> bool:
        """False when the stored bytes already are the output array (native, no conversion)."""
        return (
            self.mode in (3, 101)
            or self.shift_bytes
            or (self.stored_dtype.itemsize > 1 and not self.stored_dtype.isnative)
        )


@dataclass
class MainHeader:
    """A parsed, validated main header and what follows from it."""

    fields: dict[str, Any]
    byte_order: str
    byte_order_rule: str
    layout: DataLayout
    shape: tuple[int, ...]
    voxel_size: tuple[float | None, float | None, float | None]
    signed_bytes_rule: str | None
    notes: list[str] = field(default_factory=list)
    raw: bytes = field(default=b"", repr=False)  # the 1024 header bytes as stored

    @property
    def extended_nbytes(self) -> int:
        return self.fields["nsymbt"]


def _plain(value: Any) -> Any:
    """A numpy field value as a plain Python value (text stripped, arrays as lists)."""
    if isinstance(value, np.ndarray):
        return [_plain(v) for v in value]
    if isinstance(value, bytes | np.bytes_):
        return bytes(value).decode("latin-1").rstrip("\x00 ")
    if isinstance(value, np.generic):
        return value.item()
    return value


def header_fields(raw: np.ndarray) -> dict[str, Any]:
    """The header record as a dict of plain Python values (padding fields dropped)."""
    out: dict[str, Any] = {}
    for name in raw.dtype.names:
        if name.startswith("extra"):
            continue
        value = raw[name]
        if name == "machst":
            out[name] = bytes(value.tolist()).hex(" ")
        elif name == "label":
            labels = [bytes(v).decode("latin-1").rstrip("\x00 ") for v in value]
            out["labels"] = labels[: max(0, min(int(raw["nlabl"]), 10))] or [
                lab for lab in labels if lab
            ]
        else:
            out[name] = _plain(value)
    return out


def _plausible(raw: np.ndarray, file_size: int | None) -> bool:
    """Whether a header read in some byte order describes a file of this length."""
    nx, ny, nz, mode, nsymbt = (int(raw[k]) for k in ("nx", "ny", "nz", "mode", "nsymbt"))
    if mode not in MODES or nx <= 0 or ny <= 0 or nz <= 0 or nsymbt < 0:
        return False
    if file_size is None:
        return True
    row = (nx + 1) // 2 if mode == 101 else nx * _PIXEL_NBYTES[mode]
    return HEADER_NBYTES + nsymbt + row * ny * nz <= file_size


def detect_byte_order(head: bytes, file_size: int | None) -> tuple[str, str]:
    """(byte order, rule that decided it) from the machine stamp, else from plausibility."""
    stamp = head[212:216]
    by_stamp = {0x44: "<", 0x11: ">"}.get(stamp[0])
    views = {bo: np.frombuffer(head[:HEADER_NBYTES], header_dtype(bo))[0] for bo in "<>"}
    if by_stamp is not None:
        if _plausible(views[by_stamp], file_size):
            return by_stamp, f"machine stamp {stamp.hex(' ')}"
        other = "<" if by_stamp == ">" else ">"
        if _plausible(views[other], file_size) and not _plausible(views[by_stamp], None):
            return other, (
                f"machine stamp {stamp.hex(' ')} says {by_stamp!r} but only {other!r} "
                "gives a known mode and sizes"
            )
        return by_stamp, f"machine stamp {stamp.hex(' ')}"
    fits = [bo for bo in "<>" if _plausible(views[bo], file_size)]
    if len(fits) == 1:
        return fits[0], f"unrecognised machine stamp {stamp.hex(' ')}; only {fits[0]!r} fits"
    if len(fits) == 2:
        return "<", f"unrecognised machine stamp {stamp.hex(' ')}; both orders fit, took '<'"
    # Neither fits: keep little-endian so that validation names the failing field.
    return "<", f"unrecognised machine stamp {stamp.hex(' ')}"


def decide_byte_dtype(
    fields: dict[str, Any], signed_bytes: SignedBytes, default_unsigned: bool = False
) -> tuple[np.dtype, str]:
    """int8 or uint8 for mode 0, and the reason (IMOD flags, MRC2014 default or the user).

    With IMOD's stamp and signed flag, the dtype is uint8 and the rule says that the stored
    values are shifted by +128 (see ``imod_shifts_bytes``)."""
    if signed_bytes == "signed":
        return np.dtype("i1"), "signed_bytes='signed'"
    if signed_bytes == "unsigned":
        return np.dtype("u1"), "signed_bytes='unsigned'"
    if signed_bytes != "auto":
        raise ValueError(
            f"signed_bytes must be 'auto', 'signed' or 'unsigned', not {signed_bytes!r}"
        )
    if imod_shifts_bytes(fields):
        # IMOD stores unsigned values minus 128 and adds 128 back when it reads (b3dShiftBytes).
        return np.dtype("u1"), (
            "IMOD stamp with the signed-bytes flag: stored int8 + 128 as uint8, as IMOD reads "
            "it (b3dShiftBytes); signed_bytes='signed' keeps the stored int8"
        )
    if fields["imod_stamp"] == IMOD_STAMP:
        return np.dtype("u1"), "IMOD stamp without the signed-bytes flag"
    if default_unsigned:
        return np.dtype("u1"), "writer known to store unsigned bytes"
    return np.dtype("i1"), "MRC2014 default (signed)"


def imod_shifts_bytes(fields: dict[str, Any]) -> bool:
    """Whether IMOD wrote these mode-0 bytes shifted by -128 (its stamp and signed flag)."""
    return fields["imod_stamp"] == IMOD_STAMP and bool(
        fields["imod_flags"] & IMOD_FLAG_SIGNED_BYTES
    )


def data_shape(fields: dict[str, Any], source: str | None = None) -> tuple[int, ...]:
    """mrcfile's shape rule: 4-D volume stacks, 2-D single images, else 3-D."""
    nx, ny, nz, mz, ispg = (fields[k] for k in ("nx", "ny", "nz", "mz", "ispg"))
    if 401 <= ispg <= 630:
        if mz <= 0 or nz % mz:
            raise MRCFormatError(
                f"volume stack (ISPG {ispg}) with NZ={nz} not divisible by MZ={mz}",
                source,
                "mz",
            )
        return (nz // mz, mz, ny, nx)
    if ispg == 0 and nz == 1:
        return (ny, nx)
    return (nz, ny, nx)


def voxel_size(fields: dict[str, Any]) -> tuple[float | None, float | None, float | None]:
    """Pixel spacing in Å per axis (x, y, z); None where the cell or sampling says nothing."""
    out: list[float | None] = []
    for cell, sampling in zip(
        fields["cella"], (fields["mx"], fields["my"], fields["mz"]), strict=False
    ):
        if sampling > 0 and math.isfinite(cell) and cell > 0:
            out.append(float(cell) / sampling)
        else:
            out.append(None)
    return (out[0], out[1], out[2])


PHYSICAL_AXES = ("x", "y", "z")


def axis_labels(fields: dict[str, Any]) -> tuple[tuple[str, str, str], str | None]:
    """The physical axis ('x', 'y' or 'z') that columns, rows and sections run along, from
    MAPC/MAPR/MAPS, and a note when those are not a permutation of 1, 2, 3 (then the file
    order is kept: columns x, rows y, sections z)."""
    mapping = (fields["mapc"], fields["mapr"], fields["maps"])
    if sorted(mapping) == [1, 2, 3]:
        return (
            PHYSICAL_AXES[mapping[0] - 1],
            PHYSICAL_AXES[mapping[1] - 1],
            PHYSICAL_AXES[mapping[2] - 1],
        ), None
    return PHYSICAL_AXES, (
        f"MAPC/MAPR/MAPS = {mapping[0]}, {mapping[1]}, {mapping[2]} is not a permutation of "
        "1, 2, 3: axes kept in file order (columns x, rows y, sections z)"
    )


def grid_start(fields: dict[str, Any]) -> dict[str, int]:
    """NXSTART/NYSTART/NZSTART (per column, row and section) by physical axis."""
    labels, _ = axis_labels(fields)
    starts = (fields["nxstart"], fields["nystart"], fields["nzstart"])
    return {label: int(start) for label, start in zip(labels, starts, strict=True)}


def first_voxel_angstrom(
    fields: dict[str, Any], spacing: tuple[float | None, float | None, float | None]
) -> dict[str, float | None]:
    """Coordinate (Å) of the first voxel along X, Y and Z.

    ORIGIN when any of its values is non-zero (MRC2014; EM software writes it); otherwise
    the grid start times the spacing (CCP4 maps, which leave ORIGIN at 0), as ChimeraX and
    IMP read them. None where that needs a spacing that is unknown."""
    origin = [float(v) for v in fields["origin"]]
    if any(v != 0 and math.isfinite(v) for v in origin):
        return {
            k: (v if math.isfinite(v) else None) for k, v in zip(PHYSICAL_AXES, origin, strict=True)
        }
    start = grid_start(fields)
    return {
        k: (None if step is None else start[k] * step)
        for k, step in zip(PHYSICAL_AXES, spacing, strict=True)
    }


def check_extent(
    layout: DataLayout, file_size: int, source: str | None, fields: dict[str, Any]
) -> int:
    """Raise if the data do not fit in the file; return the count of trailing bytes."""
    if layout.offset > file_size:
        raise MRCFormatError(
            f"NSYMBT={fields['nsymbt']} puts the data at byte {layout.offset}, "
            f"past the end of the {file_size}-byte file",
            source,
            "nsymbt",
        )
    end = layout.offset + layout.nbytes
    if end > file_size:
        raise TruncatedFileError(
            f"data need {layout.nbytes} bytes from byte {layout.offset} "
            f"(NX={fields['nx']}, NY={fields['ny']}, NZ={fields['nz']}, MODE={layout.mode}) "
            f"but the file is {file_size} bytes: truncated, or the header is wrong",
            source,
            "nz",
        )
    return file_size - end


# A header claiming more than this many bytes of data is refused when the file size is unknown.
MAX_CLAIMED_NBYTES = 1 << 50


def parse_main_header(
    head: bytes,
    source: str | None = None,
    file_size: int | None = None,
    signed_bytes: SignedBytes = "auto",
    default_unsigned_bytes: bool = False,
) -> MainHeader:
    """Parse and validate the main header from the first bytes of a file.

    ``file_size`` (when known) lets the data extent be checked now; otherwise readers check
    every returned buffer's length.
    """
    if len(head) < HEADER_NBYTES:
        if detect_compression(head):
            raise MRCFormatError("compressed data passed as an MRC header", source, "header")
        raise TruncatedFileError(
            f"file is {len(head)} bytes, shorter than the 1024-byte MRC header", source, "header"
        )
    notes: list[str] = []
    byte_order, rule = detect_byte_order(head, file_size)
    if not rule.startswith("machine stamp"):
        notes.append(f"byte order: {rule}")
    raw = np.frombuffer(head[:HEADER_NBYTES], header_dtype(byte_order))[0]
    fields = header_fields(raw)
    map_ok = fields["map"] in ("MAP", "MAP\x00")

    def fail(message: str, field_name: str) -> MRCFormatError:
        if not map_ok and not rule.startswith("machine stamp"):
            # No id, no stamp and no byte order that makes sense: say that first.
            message = f"not an MRC file: no 'MAP ' id at byte 208, {message}"
        elif not map_ok:
            message += " (no 'MAP ' id at byte 208: probably not an MRC file)"
        return MRCFormatError(message, source, field_name)

    mode = fields["mode"]
    if mode not in MODES:
        raise fail(f"unknown MODE {mode}", "mode")
    for name in ("nx", "ny", "nz"):
        if fields[name] <= 0:
            raise fail(f"{name.upper()} is {fields[name]}, must be positive", name)
    nsymbt = fields["nsymbt"]
    if nsymbt < 0:
        raise fail(f"NSYMBT (extended header length) is negative: {nsymbt}", "nsymbt")
    shape = data_shape(fields, source)

    out_kind = MODES[mode][1]
    signed_rule = None
    shift = False
    if mode == 0:
        out_dtype, signed_rule = decide_byte_dtype(fields, signed_bytes, default_unsigned_bytes)
        shift = signed_bytes == "auto" and imod_shifts_bytes(fields)
    else:
        out_dtype = np.dtype(out_kind)
    layout = DataLayout(
        offset=HEADER_NBYTES + nsymbt,
        n_frames=fields["nz"],
        ny=fields["ny"],
        nx=fields["nx"],
        mode=mode,
        byte_order=byte_order,
        out_dtype=out_dtype,
        shift_bytes=shift,
    )
    if file_size is None:
        if layout.offset + layout.nbytes > MAX_CLAIMED_NBYTES:
            raise fail(
                f"header claims {layout.nbytes} bytes of data "
                f"(NX*NY*NZ = {fields['nx']}*{fields['ny']}*{fields['nz']}), beyond any real file",
                "nz",
            )
    else:
        trailing = check_extent(layout, file_size, source, fields)
        if trailing:
            notes.append(f"{trailing} bytes after the end of the data are ignored")
    if not map_ok:
        notes.append(f"MAP id is {fields['map']!r}, not 'MAP '")
    return MainHeader(
        fields=fields,
        byte_order=byte_order,
        byte_order_rule=rule,
        layout=layout,
        shape=shape,
        voxel_size=voxel_size(fields),
        signed_bytes_rule=signed_rule,
        notes=notes,
        raw=bytes(head[:HEADER_NBYTES]),
    )
