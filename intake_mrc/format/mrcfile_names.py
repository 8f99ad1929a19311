"""The main header under mrcfile's names, beside intake_mrc's dict of plain values.

mrcfile users write ``mrc.header.nx``, ``mrc.header.cella.x``, ``mrc.header.label[0]``,
``mrc.header.extra2``: 0-d numpy arrays of a structured record in the file's byte order.
``MRCHeader`` is the dict intake_mrc always gave (``header["labels"]``, ``header["cella"]``
as lists) and answers those attribute names with the same record mrcfile builds, read-only.
Pure: bytes in.
"""

from __future__ import annotations

from typing import Any

import numpy as np

# mrcfile's field names and layout of the 1024-byte header (the MRC2014 layout, with the
# IMOD words inside ``extra2``), numbers in the file's byte order.
_MRCFILE_FIELDS: list[tuple[str, Any]] = [
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
    ("cella", [("x", "f4"), ("y", "f4"), ("z", "f4")]),
    ("cellb", [("alpha", "f4"), ("beta", "f4"), ("gamma", "f4")]),
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
    ("extra2", "V84"),
    ("origin", [("x", "f4"), ("y", "f4"), ("z", "f4")]),
    ("map", "S4"),
    ("machst", ("u1", (4,))),
    ("rms", "f4"),
    ("nlabl", "i4"),
    ("label", ("S80", (10,))),
]


def _ordered(kind: Any, byte_order: str) -> Any:
    if isinstance(kind, list):
        return [(name, _ordered(k, byte_order)) for name, k in kind]
    if isinstance(kind, tuple):
        return (_ordered(kind[0], byte_order), kind[1])
    return byte_order + kind if kind[0] in "if" else kind


def mrcfile_header_dtype(byte_order: str) -> np.dtype:
    """mrcfile's header dtype in the given byte order ('<' or '>')."""
    dtype = np.dtype([(n, _ordered(k, byte_order)) for n, k in _MRCFILE_FIELDS])
    assert dtype.itemsize == 1024
    return dtype


class MRCHeader(dict):
    """The header fields as a dict of plain Python values, and as attributes by mrcfile's
    names with mrcfile's value types (``.nx``, ``.cella.x``, ``.label``, ``.extra2``,
    ``.machst``). Attributes mrcfile lacks (``imod_stamp``, ``labels``) come from the dict."""

    def __init__(self, fields: dict[str, Any], raw: bytes = b"", byte_order: str = "<"):
        super().__init__(fields)
        record = None
        if len(raw) >= 1024:
            array = np.frombuffer(raw[:1024], dtype=mrcfile_header_dtype(byte_order))
            record = array.reshape(()).view(np.recarray)  # 0-d, as mrcfile holds it
        # Stored outside the dict's items, so dict(header) and == stay the plain fields.
        object.__setattr__(self, "_record", record)
        object.__setattr__(self, "_raw", bytes(raw[:1024]))
        object.__setattr__(self, "_byte_order", byte_order)

    def __getattr__(self, name: str) -> Any:
        record = object.__getattribute__(self, "_record")
        if record is not None and name in record.dtype.names:
            return getattr(record, name)
        try:
            return self[name]
        except KeyError:
            raise AttributeError(f"MRC header has no field {name!r}") from None

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError("the header is read-only")

    def __dir__(self) -> list[str]:
        record = object.__getattribute__(self, "_record")
        names = set(self) | (set(record.dtype.names) if record is not None else set())
        return sorted(names | set(super().__dir__()))

    def __reduce__(self) -> Any:
        raw = object.__getattribute__(self, "_raw")
        return (type(self), (dict(self), raw, object.__getattribute__(self, "_byte_order")))
