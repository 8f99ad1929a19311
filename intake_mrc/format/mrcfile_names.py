"""The main header under mrcfile's names, beside intake_mrc's dict of plain values.

mrcfile users write ``mrc.header.nx``, ``mrc.header.cella.x``, ``mrc.header.label[0]``,
``mrc.header.extra2``: 0-d numpy arrays of a structured record in the file's byte order.
``MRCHeader`` is the dict intake_mrc always gave (``header["labels"]``, ``header["cella"]``
as lists) and answers those attribute names with the same record mrcfile builds, read-only.
mrcfile's layout is derived from ours (``header.HEADER_FIELDS``), not declared again.
Pure: bytes in.
"""

from __future__ import annotations

import functools
from typing import Any

import numpy as np

from .header import HEADER_FIELD, HEADER_FIELDS, HEADER_NBYTES, record_dtype

# mrcfile's names are ours (header.HEADER_FIELDS) but for two habits. Fields of three floats are
# records of named floats (``cella.x``, ``cellb.alpha``, ``origin.z``):
_MRCFILE_SUBFIELDS: dict[str, tuple[str, ...]] = {
    "cella": ("x", "y", "z"),
    "cellb": ("alpha", "beta", "gamma"),
    "origin": ("x", "y", "z"),
}
# and our extra2 through extra3, with IMOD's stamp and flags between, are one raw ``extra2``.
_MRCFILE_EXTRA2 = ("extra2", "imod_stamp", "imod_flags", "extra3")


@functools.cache  # two dtypes in all, one per byte order
def mrcfile_header_dtype(byte_order: str) -> np.dtype:
    """mrcfile's header dtype in the given byte order ('<' or '>'), derived from ours."""
    fields: list[tuple[str, int, Any]] = []
    for f in HEADER_FIELDS:
        if f.name in _MRCFILE_EXTRA2[1:]:
            continue  # inside mrcfile's extra2
        if f.name == _MRCFILE_EXTRA2[0]:
            last = HEADER_FIELD[_MRCFILE_EXTRA2[-1]]
            fields.append((f.name, f.offset, f"V{last.offset + last.nbytes - f.offset}"))
        elif f.name in _MRCFILE_SUBFIELDS:
            names = _MRCFILE_SUBFIELDS[f.name]
            assert len(names) == f.count, f.name
            element = f.element_in(byte_order)
            fields.append((f.name, f.offset, [(name, element) for name in names]))
        else:
            fields.append((f.name, f.offset, f.format_in(byte_order)))
    return record_dtype(fields)


class MRCHeader(dict):
    """The header fields as a dict of plain Python values, and as attributes by mrcfile's
    names with mrcfile's value types (``.nx``, ``.cella.x``, ``.label``, ``.extra2``,
    ``.machst``). Attributes mrcfile lacks (``imod_stamp``, ``labels``) come from the dict."""

    def __init__(self, fields: dict[str, Any], raw: bytes = b"", byte_order: str = "<"):
        super().__init__(fields)
        record = None
        if len(raw) >= HEADER_NBYTES:
            array = np.frombuffer(raw[:HEADER_NBYTES], dtype=mrcfile_header_dtype(byte_order))
            record = array.reshape(()).view(np.recarray)  # 0-d, as mrcfile holds it
        # Stored outside the dict's items, so dict(header) and == stay the plain fields.
        object.__setattr__(self, "_record", record)
        object.__setattr__(self, "_raw", bytes(raw[:HEADER_NBYTES]))
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
