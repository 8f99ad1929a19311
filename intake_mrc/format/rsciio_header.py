"""The main header in the field layout RosettaSciIO shows (``original_metadata.std_header``).

RosettaSciIO names the 1024 bytes after the older MRC/FEI layout: ``Xlen``, ``MAPC``, ``NEXT``,
``CREATID``, the padding ``EXTRA`` (30 bytes at 98) and ``EXTRA2`` (28 bytes at 132),
``NINT``/``NREAL``, ``TILTANGLES``, ``CMAP``, ``STAMP``, ``LABELS``. HyperSpy users and scripts
look for these keys, so the same keys are given here, with two corrections:

* the file's own byte order (RosettaSciIO assumes little-endian unless told);
* ``ISPG`` is the 4-byte space group of MRC2014 (bytes 88-91). RosettaSciIO reads two 2-byte
  fields there (``ISPG``, ``NSYMBT``), so its ``NSYMBT`` is the high half of ISPG (0 for every
  file); here ``NSYMBT`` is the extended-header length, equal to ``NEXT``.

Bytes fields (``EXTRA``, ``EXTRA2``, ``CMAP``, ``STAMP``, ``LABELS``) are hex strings, as
RosettaSciIO stores them, so the dict serialises to JSON. Pure function over bytes.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .header import HEADER_NBYTES

# (name, numpy kind without byte order) in file order; "V<n>" are raw bytes.
_FIELDS: list[tuple[str, str]] = [
    ("NX", "u4"),
    ("NY", "u4"),
    ("NZ", "u4"),
    ("MODE", "u4"),
    ("NXSTART", "i4"),
    ("NYSTART", "i4"),
    ("NZSTART", "i4"),
    ("MX", "u4"),
    ("MY", "u4"),
    ("MZ", "u4"),
    ("Xlen", "f4"),
    ("Ylen", "f4"),
    ("Zlen", "f4"),
    ("ALPHA", "f4"),
    ("BETA", "f4"),
    ("GAMMA", "f4"),
    ("MAPC", "u4"),
    ("MAPR", "u4"),
    ("MAPS", "u4"),
    ("AMIN", "f4"),
    ("AMAX", "f4"),
    ("AMEAN", "f4"),
    ("ISPG", "i4"),
    ("NEXT", "u4"),
    ("CREATID", "u2"),
    ("EXTRA", "V30"),
    ("NINT", "u2"),
    ("NREAL", "u2"),
    ("EXTRA2", "V28"),
    ("IDTYPE", "u2"),
    ("LENS", "u2"),
    ("ND1", "u2"),
    ("ND2", "u2"),
    ("VD1", "u2"),
    ("VD2", "u2"),
    ("TILTANGLES", "(6,)f4"),
    ("XORIGIN", "f4"),
    ("YORIGIN", "f4"),
    ("ZORIGIN", "f4"),
    ("CMAP", "V4"),
    ("STAMP", "V4"),
    ("RMS", "f4"),
    ("NLABL", "u4"),
    ("LABELS", "V800"),
]

_BYTES_FIELDS = ("EXTRA", "EXTRA2", "CMAP", "STAMP", "LABELS")


def _dtype(byte_order: str) -> np.dtype:
    fields = []
    for name, kind in _FIELDS:
        count = ""
        if kind.startswith("("):
            count, kind = kind.split(")")
            count += ")"
        fields.append((name, count + (kind if kind[0] == "V" else byte_order + kind)))
    dtype = np.dtype(fields)
    assert dtype.itemsize == HEADER_NBYTES
    return dtype


def rsciio_std_header(raw: bytes, byte_order: str) -> dict[str, Any]:
    """The header as RosettaSciIO's ``std_header`` keys, plain Python values."""
    if len(raw) < HEADER_NBYTES:
        raise ValueError(f"{len(raw)} header bytes, need {HEADER_NBYTES}")
    record = np.frombuffer(raw[:HEADER_NBYTES], _dtype(byte_order))[0]
    out: dict[str, Any] = {}
    for name, _ in _FIELDS:
        value = record[name]
        if name in _BYTES_FIELDS:
            out[name] = bytes(value).hex()
        elif isinstance(value, np.ndarray):
            out[name] = value.tolist()
        else:
            out[name] = value.item()
        if name == "ISPG":
            out["NSYMBT"] = None  # filled from NEXT below, same key order as RosettaSciIO
    out["NSYMBT"] = out["NEXT"]
    return out
