"""Pure parsing: bytes in, facts out (no files, no servers)."""

from __future__ import annotations

import numpy as np
import pytest

from intake_mrc.errors import MRCFormatError, TruncatedFileError
from intake_mrc.format.decode import decode_rows
from intake_mrc.format.header import (
    DataLayout,
    data_shape,
    detect_byte_order,
    detect_compression,
    header_dtype,
    parse_main_header,
)


def make_header(byte_order="<", stamp=b"DD\0\0", **values) -> bytes:
    raw = np.zeros(1, header_dtype(byte_order))
    defaults = dict(nx=4, ny=3, nz=2, mode=2, mx=4, my=3, mz=2, mapc=1, mapr=2, maps=3)
    for key, value in {**defaults, **values}.items():
        raw[key] = value
    raw["map"] = b"MAP "
    raw["machst"] = list(stamp)
    return raw.tobytes()


def test_header_layout_offsets():
    dtype = header_dtype("<")
    assert dtype.itemsize == 1024
    offsets = {n: dtype.fields[n][1] for n in dtype.names}
    assert offsets["mode"] == 12 and offsets["cella"] == 40 and offsets["nsymbt"] == 92
    assert offsets["exttyp"] == 104 and offsets["nversion"] == 108
    assert offsets["imod_stamp"] == 152 and offsets["imod_flags"] == 156
    assert offsets["origin"] == 196 and offsets["map"] == 208 and offsets["machst"] == 212
    assert offsets["rms"] == 216 and offsets["nlabl"] == 220 and offsets["label"] == 224


@pytest.mark.parametrize(
    "stamp,order,expected",
    [
        (b"DD\0\0", "<", "<"),
        (b"DA\0\0", "<", "<"),
        (b"\x11\x11\0\0", ">", ">"),
        (b"D\0\0\0", "<", "<"),
        (b"\0\0\0\0", ">", ">"),
        (b"\xab\xcd\xef\x01", ">", ">"),
        (b"\xab\xcd\xef\x01", "<", "<"),
        (b"DD\0\0", ">", ">"),
    ],
)
def test_byte_order_rules(stamp, order, expected):
    head = make_header(order, stamp)
    size = 1024 + 4 * 3 * 2 * 4
    assert detect_byte_order(head, size)[0] == expected
    header = parse_main_header(head, "x.mrc", size)
    assert header.layout.nx == 4 and header.layout.n_frames == 2


@pytest.mark.parametrize(
    "ispg,nz,mz,shape",
    [
        (0, 1, 1, (3, 4)),
        (0, 5, 1, (5, 3, 4)),
        (1, 1, 1, (1, 3, 4)),
        (1, 6, 6, (6, 3, 4)),
        (401, 6, 3, (2, 3, 3, 4)),
    ],
)
def test_shape_rule(ispg, nz, mz, shape):
    assert data_shape(dict(nx=4, ny=3, nz=nz, mz=mz, ispg=ispg)) == shape


def test_volume_stack_bad_mz():
    with pytest.raises(MRCFormatError, match="MZ"):
        data_shape(dict(nx=4, ny=3, nz=6, mz=0, ispg=401), "v.mrc")


@pytest.mark.parametrize(
    "values,field",
    [
        ({"mode": 7}, "mode"),
        ({"nx": 0}, "nx"),
        ({"ny": -3}, "ny"),
        ({"nsymbt": -1}, "nsymbt"),
        ({"nsymbt": 10_000}, "nsymbt"),
    ],
)
def test_bad_fields_name_the_field(values, field):
    with pytest.raises(MRCFormatError) as info:
        parse_main_header(make_header(**values), "bad.mrc", 1024 + 96)
    assert info.value.field == field
    assert "bad.mrc" in str(info.value)


def test_truncated_data_and_header():
    with pytest.raises(TruncatedFileError):
        parse_main_header(make_header(), "t.mrc", 1024 + 95)
    with pytest.raises(TruncatedFileError):
        parse_main_header(make_header()[:500], "t.mrc", 500)


def test_absurd_sizes_refused_without_file_size():
    with pytest.raises(MRCFormatError, match="beyond any real file"):
        parse_main_header(make_header(nx=2**31 - 1, ny=2**31 - 1, nz=2**31 - 1), "h.mrc", None)


def test_compression_magic():
    assert detect_compression(b"\x1f\x8b\x08") == "gzip"
    assert detect_compression(b"BZh91AY") == "bz2"
    assert detect_compression(make_header()) is None


def test_mode_0_signedness():
    imod = dict(mode=0, imod_stamp=1146047817)
    assert parse_main_header(make_header(mode=0), None, 1048).layout.out_dtype == np.int8
    assert parse_main_header(make_header(**imod), None, 1048).layout.out_dtype == np.uint8
    # IMOD's signed flag: stored int8 = value - 128; auto reads value (uint8) as IMOD does.
    flagged = parse_main_header(make_header(**imod, imod_flags=1), None, 1048)
    assert flagged.layout.out_dtype == np.uint8 and flagged.layout.shift_bytes
    assert "b3dShiftBytes" in flagged.signed_bytes_rule
    raw = parse_main_header(make_header(**imod, imod_flags=1), None, 1048, "signed")
    assert raw.layout.out_dtype == np.int8 and not raw.layout.shift_bytes
    assert (
        parse_main_header(make_header(mode=0), None, 1048, "unsigned").layout.out_dtype == np.uint8
    )


def test_decode_4bit_low_nibble_first_with_row_padding():
    layout = DataLayout(0, 1, 2, 3, 101, "<", np.dtype("u1"))
    raw = np.array([0x21, 0x03, 0x54, 0x06], dtype=np.uint8)  # rows: [1,2,3], [4,5,6]
    assert decode_rows(raw, layout).tolist() == [[1, 2, 3], [4, 5, 6]]


def test_decode_imod_shifted_bytes():
    layout = DataLayout(0, 1, 1, 4, 0, "<", np.dtype("u1"), shift_bytes=True)
    stored = np.array([-128, -1, 0, 127], dtype=np.int8)
    assert decode_rows(stored.view(np.uint8).copy(), layout).tolist() == [[0, 127, 128, 255]]
    read_only = np.frombuffer(stored.tobytes(), dtype=np.uint8)
    assert decode_rows(read_only, layout).tolist() == [[0, 127, 128, 255]]


def test_decode_complex_int16_big_endian():
    layout = DataLayout(0, 1, 1, 2, 3, ">", np.dtype("c8"))
    raw = np.array([1, -2, 3, 4], dtype=">i2").view(np.uint8).copy()
    assert decode_rows(raw, layout).tolist() == [[1 - 2j, 3 + 4j]]
