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


@dataclass(frozen=True)
class HeaderField:
    """One field of the main header: where it starts, what one element is, how many."""

    name: str
    offset: int  # bytes from the start of the file
    kind: str  # numpy type of one element without byte order: 'i4', 'f4', 'u1', 'S4', 'V8'
    count: int = 1  # elements: CELLA holds 3 floats, LABEL 10 lines of 80 bytes

    @property
    def element(self) -> np.dtype:
        return np.dtype(self.kind)

    @property
    def nbytes(self) -> int:
        return self.element.itemsize * self.count

    def element_in(self, byte_order: str) -> np.dtype:
        """One element in the given byte order ('<' or '>'); text and raw bytes have none."""
        return self.element.newbyteorder(byte_order)

    def format_in(self, byte_order: str) -> Any:
        """The field's numpy format in the given byte order (a subarray when count > 1)."""
        element = self.element_in(byte_order)
        return element if self.count == 1 else (element, (self.count,))


# The 1024-byte MRC2014 header, in file order: the one declaration of every field's offset and
# type. mrcfile's names (mrcfile_names.py) and RosettaSciIO's keys (rsciio_header.py) are
# derived from it. extra1/extra2/extra3 are the padding around EXTTYP, NVERSION and IMOD's words.
HEADER_FIELDS: tuple[HeaderField, ...] = (
    HeaderField("nx", 0, "i4"),
    HeaderField("ny", 4, "i4"),
    HeaderField("nz", 8, "i4"),
    HeaderField("mode", 12, "i4"),
    HeaderField("nxstart", 16, "i4"),
    HeaderField("nystart", 20, "i4"),
    HeaderField("nzstart", 24, "i4"),
    HeaderField("mx", 28, "i4"),
    HeaderField("my", 32, "i4"),
    HeaderField("mz", 36, "i4"),
    HeaderField("cella", 40, "f4", 3),
    HeaderField("cellb", 52, "f4", 3),
    HeaderField("mapc", 64, "i4"),
    HeaderField("mapr", 68, "i4"),
    HeaderField("maps", 72, "i4"),
    HeaderField("dmin", 76, "f4"),
    HeaderField("dmax", 80, "f4"),
    HeaderField("dmean", 84, "f4"),
    HeaderField("ispg", 88, "i4"),
    HeaderField("nsymbt", 92, "i4"),
    HeaderField("extra1", 96, "V8"),
    HeaderField("exttyp", 104, "S4"),
    HeaderField("nversion", 108, "i4"),
    HeaderField("extra2", 112, "V40"),
    HeaderField("imod_stamp", 152, "i4"),
    HeaderField("imod_flags", 156, "i4"),
    HeaderField("extra3", 160, "V36"),
    HeaderField("origin", 196, "f4", 3),
    HeaderField("map", 208, "S4"),
    HeaderField("machst", 212, "u1", 4),
    HeaderField("rms", 216, "f4"),
    HeaderField("nlabl", 220, "i4"),
    HeaderField("label", 224, "S80", 10),
)

HEADER_FIELD: dict[str, HeaderField] = {f.name: f for f in HEADER_FIELDS}
# Where MRC2014 puts the 'MAP ' id (bytes 208-211).
MAP_ID_OFFSET = HEADER_FIELD["map"].offset
MAP_ID_END = MAP_ID_OFFSET + 4


def map_id(head: bytes) -> bytes:
    """The four bytes of the map id (fewer when ``head`` is shorter)."""
    return bytes(head[MAP_ID_OFFSET:MAP_ID_END])


def has_map_id(head: bytes) -> bool:
    """'MAP' at byte 208; writers differ in the fourth byte (space or NUL)."""
    return map_id(head)[:3] == b"MAP"


def record_dtype(fields: list[tuple[str, int, Any]]) -> np.dtype:
    """A structured dtype of the whole header from (name, offset, numpy format) in file order.

    Raises ValueError unless the fields tile the 1024 bytes without gap or overlap: the
    derived layouts (mrcfile's, RosettaSciIO's) are checked by the same rule as ours."""
    names = [name for name, _, _ in fields]
    offsets = [offset for _, offset, _ in fields]
    formats = [fmt for _, _, fmt in fields]
    end = 0
    for name, offset, fmt in fields:
        if offset != end:
            raise ValueError(f"header field {name!r} at byte {offset}, expected {end}")
        end = offset + np.dtype(fmt).itemsize
    if end != HEADER_NBYTES:
        raise ValueError(f"header fields end at byte {end}, not {HEADER_NBYTES}")
    return np.dtype(
        {"names": names, "formats": formats, "offsets": offsets, "itemsize": HEADER_NBYTES}
    )


@functools.cache  # two dtypes in all; building one took ~0.2 ms, three times per header
def header_dtype(byte_order: str) -> np.dtype:
    """The structured dtype of the main header in the given byte order ('<' or '>')."""
    return record_dtype([(f.name, f.offset, f.format_in(byte_order)) for f in HEADER_FIELDS])


IMOD_STAMP = 1146047817
IMOD_FLAG_SIGNED_BYTES = 1
# IMOD's MRC_FLAGS_INV_ORIGIN (bit 2): ORIGIN stored with the sign inverted from IMOD's own
# definition, i.e. in the MRC2014 sense. 16 (bit 4) is IMOD's 4-bit-bytes flag, not this.
IMOD_FLAG_INVERTED_ORIGIN = 4

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
    machst = HEADER_FIELD["machst"]
    stamp = head[machst.offset : machst.offset + machst.nbytes]
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

    ORIGIN when any of its values is non-zero (MRC2014; EM software writes it), negated where
    IMOD's own definition applies (``imod_origin_sign``); otherwise the grid start times the
    spacing (CCP4 maps, which leave ORIGIN at 0), as ChimeraX and IMP read them. None where
    that needs a spacing that is unknown."""
    sign = imod_origin_sign(fields)[0]
    origin = [sign * float(v) for v in fields["origin"]]
    if any(v != 0 and math.isfinite(v) for v in origin):
        return {
            k: (v if math.isfinite(v) else None) for k, v in zip(PHYSICAL_AXES, origin, strict=True)
        }
    start = grid_start(fields)
    return {
        k: (None if step is None else start[k] * step)
        for k, step in zip(PHYSICAL_AXES, spacing, strict=True)
    }


def imod_origin_sign(fields: dict[str, Any]) -> tuple[float, str | None]:
    """(+1 or -1, rule): the sign that turns ORIGIN into the first voxel's coordinate.

    MRC2014 (and Chimera, mrcfile) store the first voxel's coordinate. IMOD defines the
    origin the other way round (the origin's coordinate relative to the first voxel, its
    alterheader manual) and marks files storing the MRC2014 sense with imodFlags bit 2
    (value 4). IMOD's reader (mrc_head_read) negates ORIGIN when that flag is set or NVERSION
    is an MRC2014 version: so a file with IMOD's stamp, without the flag and with a
    pre-MRC2014 NVERSION holds IMOD's origin, the first voxel at -ORIGIN. The rule is None
    without IMOD's stamp."""
    if fields["imod_stamp"] != IMOD_STAMP:
        return 1.0, None
    version = fields["nversion"]
    if fields["imod_flags"] & IMOD_FLAG_INVERTED_ORIGIN:
        return 1.0, (
            "IMOD stamp with the inverted-origin flag (imodFlags 4): ORIGIN is stored in the "
            "MRC2014 sense (the first voxel's coordinate) and used as stored"
        )
    if 20140 <= version < 21000:  # IMOD's test: an MRC2014 version number
        return 1.0, (
            f"IMOD stamp without the inverted-origin flag, NVERSION {version} (MRC2014): "
            "ORIGIN used as stored, as IMOD reads it"
        )
    return -1.0, (
        f"IMOD stamp without the inverted-origin flag (imodFlags 4) and NVERSION {version}: "
        "ORIGIN holds IMOD's origin (the origin relative to the first voxel), so the first "
        "voxel is at -ORIGIN, as IMOD reads it"
    )


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
        # As validate says it: without the 'MAP ' id, nothing shows this is MRC at all.
        what = "truncated" if has_map_id(head) else "not an MRC file"
        raise TruncatedFileError(
            f"{what}: {len(head)} bytes, shorter than the 1024-byte MRC header", source, "header"
        )
    notes: list[str] = []
    byte_order, rule = detect_byte_order(head, file_size)
    if not rule.startswith("machine stamp"):
        notes.append(f"byte order: {rule}")
    raw = np.frombuffer(head[:HEADER_NBYTES], header_dtype(byte_order))[0]
    fields = header_fields(raw)
    map_ok = fields["map"] in ("MAP", "MAP\x00")
    map_at = MAP_ID_OFFSET

    def fail(message: str, field_name: str) -> MRCFormatError:
        if not map_ok and not rule.startswith("machine stamp"):
            # No id, no stamp and no byte order that makes sense: say that first.
            message = f"not an MRC file: no 'MAP ' id at byte {map_at}, {message}"
        elif not map_ok:
            message += f" (no 'MAP ' id at byte {map_at}: probably not an MRC file)"
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
