"""The main header in the field layout RosettaSciIO shows (``original_metadata.std_header``).

RosettaSciIO names the 1024 bytes after the older MRC/FEI layout: ``Xlen``, ``MAPC``, ``NEXT``,
``CREATID``, the padding ``EXTRA`` (30 bytes at 98) and ``EXTRA2`` (28 bytes at 132),
``NINT``/``NREAL``, ``TILTANGLES``, ``CMAP``, ``STAMP``, ``LABELS``. HyperSpy users and scripts
look for these keys, so the same keys are given here, with three corrections:

* the file's own byte order (RosettaSciIO assumes little-endian unless told);
* ``ISPG`` is the 4-byte space group of MRC2014 (bytes 88-91). RosettaSciIO reads two 2-byte
  fields there (``ISPG``, ``NSYMBT``), so its ``NSYMBT`` is the high half of ISPG (0 for every
  file); here ``NSYMBT`` is the extended-header length, equal to ``NEXT``;
* ``NXSTART``/``NYSTART``/``NZSTART`` are signed, as in MRC2014 (RosettaSciIO reads every
  integer unsigned; many EMDB maps start at a negative grid index).

The layout is not declared here: it is derived from ours (``header.HEADER_FIELDS``) by the
tables below (our name -> RosettaSciIO's key, which integers it reads unsigned, which fields it
keeps as raw bytes) and the FEI words it reads where MRC2014 has EXTTYP, NVERSION and IMOD's.

Bytes fields (``EXTRA``, ``EXTRA2``, ``CMAP``, ``STAMP``, ``LABELS``) are hex strings, as
RosettaSciIO stores them, so the dict serialises to JSON. Pure function over bytes.
"""

from __future__ import annotations

import functools
from typing import Any

import numpy as np

from .header import HEADER_FIELD, HEADER_FIELDS, HEADER_NBYTES, record_dtype

# RosettaSciIO's key for each of our fields (header.HEADER_FIELDS), one key per element where
# it splits a field of three floats.
_RSCIIO_KEYS: dict[str, str | tuple[str, ...]] = {
    "nx": "NX",
    "ny": "NY",
    "nz": "NZ",
    "mode": "MODE",
    "nxstart": "NXSTART",
    "nystart": "NYSTART",
    "nzstart": "NZSTART",
    "mx": "MX",
    "my": "MY",
    "mz": "MZ",
    "cella": ("Xlen", "Ylen", "Zlen"),
    "cellb": ("ALPHA", "BETA", "GAMMA"),
    "mapc": "MAPC",
    "mapr": "MAPR",
    "maps": "MAPS",
    "dmin": "AMIN",
    "dmax": "AMAX",
    "dmean": "AMEAN",
    "ispg": "ISPG",
    "nsymbt": "NEXT",
    "origin": ("XORIGIN", "YORIGIN", "ZORIGIN"),
    "map": "CMAP",
    "machst": "STAMP",
    "rms": "RMS",
    "nlabl": "NLABL",
    "label": "LABELS",
}
# Integers RosettaSciIO reads unsigned. It reads every integer so; the grid starts (negative in
# many EMDB maps) and ISPG keep MRC2014's sign here.
_RSCIIO_UNSIGNED = frozenset(
    ("nx", "ny", "nz", "mode", "mx", "my", "mz", "mapc", "mapr", "maps", "nsymbt", "nlabl")
)
# Fields RosettaSciIO keeps as raw bytes (given here as hex strings).
_RSCIIO_RAW = frozenset(("map", "machst", "label"))
# Where MRC2014 has EXTTYP, NVERSION and IMOD's words (our extra1 through extra3), RosettaSciIO
# reads the older FEI words: (key, numpy type without byte order, count), in file order.
_RSCIIO_FEI_SPAN = ("extra1", "extra3")
_RSCIIO_FEI_WORDS: list[tuple[str, str, int]] = [
    ("CREATID", "u2", 1),
    ("EXTRA", "V30", 1),
    ("NINT", "u2", 1),
    ("NREAL", "u2", 1),
    ("EXTRA2", "V28", 1),
    ("IDTYPE", "u2", 1),
    ("LENS", "u2", 1),
    ("ND1", "u2", 1),
    ("ND2", "u2", 1),
    ("VD1", "u2", 1),
    ("VD2", "u2", 1),
    ("TILTANGLES", "f4", 6),
]


def _fei_words(offset: int, byte_order: str) -> list[tuple[str, int, Any]]:
    """The FEI words from ``offset`` on, as (key, offset, numpy format)."""
    out: list[tuple[str, int, Any]] = []
    for key, kind, count in _RSCIIO_FEI_WORDS:
        element = np.dtype(kind).newbyteorder(byte_order)
        out.append((key, offset, element if count == 1 else (element, (count,))))
        offset += element.itemsize * count
    return out


@functools.cache  # two dtypes in all, one per byte order
def rsciio_header_dtype(byte_order: str) -> np.dtype:
    """The header under RosettaSciIO's keys in the given byte order, derived from ours.

    Every byte of ours is covered once: record_dtype raises if the FEI words do not fill our
    extra1 through extra3 exactly."""
    first, last = (HEADER_FIELD[name].offset for name in _RSCIIO_FEI_SPAN)
    fields: list[tuple[str, int, Any]] = []
    for f in HEADER_FIELDS:
        if f.name == _RSCIIO_FEI_SPAN[0]:
            fields += _fei_words(f.offset, byte_order)
            continue
        if first < f.offset <= last:
            continue  # read as FEI words
        keys = _RSCIIO_KEYS[f.name]
        element = f.element_in(byte_order)
        if f.name in _RSCIIO_UNSIGNED:
            element = np.dtype(f"u{element.itemsize}").newbyteorder(byte_order)
        if f.name in _RSCIIO_RAW:
            fields.append((keys, f.offset, f"V{f.nbytes}"))
        elif isinstance(keys, tuple):
            assert len(keys) == f.count, f.name
            size = element.itemsize
            fields += [(key, f.offset + i * size, element) for i, key in enumerate(keys)]
        else:
            assert f.count == 1, f.name
            fields.append((keys, f.offset, element))
    return record_dtype(fields)


def rsciio_std_header(raw: bytes, byte_order: str) -> dict[str, Any]:
    """The header as RosettaSciIO's ``std_header`` keys, plain Python values."""
    if len(raw) < HEADER_NBYTES:
        raise ValueError(f"{len(raw)} header bytes, need {HEADER_NBYTES}")
    record = np.frombuffer(raw[:HEADER_NBYTES], rsciio_header_dtype(byte_order))[0]
    out: dict[str, Any] = {}
    for name in record.dtype.names:
        value = record[name]
        if isinstance(value, np.void):  # raw bytes
            out[name] = bytes(value).hex()
        elif isinstance(value, np.ndarray):
            out[name] = value.tolist()
        else:
            out[name] = value.item()
        if name == "ISPG":
            out["NSYMBT"] = None  # filled from NEXT below, same key order as RosettaSciIO
    out["NSYMBT"] = out["NEXT"]
    return out
