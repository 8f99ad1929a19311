"""The three views of the main header (ours, mrcfile's names, RosettaSciIO's keys) come from
one declaration, header.HEADER_FIELDS; the derived two are checked against the dtypes mrcfile
and RosettaSciIO's MRC reader build themselves (oracles, not copies)."""

from __future__ import annotations

import sys

import mrcfile.dtypes
import numpy as np
import pytest
from rsciio.mrc._api import get_std_dtype_list

from intake_mrc.format.header import HEADER_FIELDS, header_dtype, record_dtype
from intake_mrc.format.mrcfile_names import mrcfile_header_dtype
from intake_mrc.format.rsciio_header import rsciio_header_dtype


def order(dtype: np.dtype) -> str:
    """'<' or '>' of a number dtype, native order resolved."""
    native = "<" if sys.byteorder == "little" else ">"
    return native if dtype.byteorder in "=|" else dtype.byteorder


def offsets(dtype: np.dtype) -> dict[str, int]:
    return {name: dtype.fields[name][1] for name in dtype.names}


@pytest.mark.parametrize("byte_order", "<>")
def test_our_layout_is_the_declaration(byte_order):
    dtype = header_dtype(byte_order)
    assert dtype.names == tuple(f.name for f in HEADER_FIELDS)
    assert offsets(dtype) == {f.name: f.offset for f in HEADER_FIELDS}
    assert dtype.itemsize == 1024
    assert all(dtype[f.name].itemsize == f.nbytes for f in HEADER_FIELDS)


@pytest.mark.parametrize("byte_order", "<>")
def test_mrcfile_layout_is_mrcfiles(byte_order):
    ours = mrcfile_header_dtype(byte_order)
    theirs = mrcfile.dtypes.HEADER_DTYPE.newbyteorder(byte_order)
    assert ours.names == theirs.names
    assert offsets(ours) == offsets(theirs)
    assert ours.itemsize == theirs.itemsize == 1024
    assert ours == theirs  # every format too, nested cella/cellb/origin included
    assert ours["cella"].names == ("x", "y", "z") and ours["cellb"].names[0] == "alpha"


# Where our RosettaSciIO view differs from RosettaSciIO's own dtype, on purpose (module
# docstring of rsciio_header): (their format, ours) by key.
CORRECTIONS = {
    "NXSTART": ("u4", "i4"),
    "NYSTART": ("u4", "i4"),
    "NZSTART": ("u4", "i4"),
    "CMAP": ("S4", "V4"),
    "STAMP": ("S4", "V4"),
    "LABELS": ("S800", "V800"),
}


@pytest.mark.parametrize("byte_order", "<>")
def test_rsciio_layout_is_rosettasciios(byte_order):
    ours = rsciio_header_dtype(byte_order)
    theirs = np.dtype(get_std_dtype_list(byte_order))
    assert ours.itemsize == theirs.itemsize == 1024
    # RosettaSciIO splits MRC2014's 4-byte ISPG into ISPG and NSYMBT (2 bytes each); ours
    # keeps ISPG whole (NSYMBT is then a key of the dict, not a field of the record).
    assert [n for n in theirs.names if n != "NSYMBT"] == list(ours.names)
    assert offsets(ours) == {n: o for n, o in offsets(theirs).items() if n != "NSYMBT"}
    assert (theirs["ISPG"].itemsize, theirs["NSYMBT"].itemsize, ours["ISPG"].itemsize) == (2, 2, 4)
    assert ours["ISPG"].str == f"{byte_order}i4"
    for name in ours.names:
        if name == "ISPG":
            continue
        mine, other = ours[name], theirs[name]
        assert (mine.itemsize, mine.shape) == (other.itemsize, other.shape), name
        if name in CORRECTIONS:
            assert (other.base.str[1:], mine.base.str[1:]) == CORRECTIONS[name], name
        else:
            assert mine.base.str[1:] == other.base.str[1:], name
        if mine.base.kind in "iuf":
            # Our numbers are in the file's byte order (RosettaSciIO's TILTANGLES are native).
            assert order(mine.base) == byte_order, name
            if name != "TILTANGLES":
                assert order(other.base) == byte_order, name


def test_layouts_must_tile_the_header():
    with pytest.raises(ValueError, match="expected 8"):
        record_dtype([("a", 0, "V8"), ("b", 12, "V1012")])
    with pytest.raises(ValueError, match="end at byte 1020"):
        record_dtype([("a", 0, "V8"), ("b", 8, "V1012")])


def test_map_id_is_read_where_mrcfile_declares_it():
    from intake_mrc.format.header import MAP_ID_END, MAP_ID_OFFSET, has_map_id, map_id

    offset = mrcfile.dtypes.HEADER_DTYPE.fields["map"][1]
    assert (MAP_ID_OFFSET, MAP_ID_END) == (offset, offset + 4)
    head = bytearray(1024)
    assert not has_map_id(head) and map_id(head) == b"\x00" * 4
    for fourth in (b" ", b"\x00"):
        head[offset : offset + 4] = b"MAP" + fourth
        assert has_map_id(head) and map_id(head) == b"MAP" + fourth
    assert not has_map_id(bytes(head[: offset + 2]))  # too short to hold it
