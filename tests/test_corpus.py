"""A corpus of bad and odd files, built here from files mrcfile writes: each one either reads
exactly the data that were written, or raises MRCFormatError (or a subclass) naming the file
and the field, within a second and with memory bounded by the file's size."""

from __future__ import annotations

import bz2
import gc
import gzip
import time
import tracemalloc
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
from conftest import MRCFILE_TESTS, sha256
from dewriter import write_acquisition
from mrcwriter import fei2_records, write_mrc

import intake_mrc
from intake_mrc import MetadataError, MRCFormatError, TruncatedFileError

DATA = np.arange(4 * 6 * 5, dtype=np.float32).reshape(4, 6, 5) - 50
BE_DATA = DATA.astype(">f4")


def base(tmp: Path, data: np.ndarray = DATA, **kw) -> bytes:
    return write_mrc(tmp / "base.mrc", data, **kw).read_bytes()


def patch(raw: bytes, offset: int, value: bytes) -> bytes:
    return raw[:offset] + value + raw[offset + len(value) :]


def i4(value: int, order: str = "<") -> bytes:
    return np.array([value], dtype=order + "i4").tobytes()


def f4(*values: float) -> bytes:
    return np.array(values, dtype="<f4").tobytes()


@dataclass
class Case:
    name: str
    build: Callable[[Path], bytes]
    expect: np.ndarray | type[Exception]  # the data, or the error class
    field: str | None = None


def fei_file(tmp: Path, record_size: int | None = None) -> bytes:
    records = fei2_records(4, record_nbytes=1024)
    raw = base(tmp, extended=records, exttyp=b"FEI2")
    if record_size is not None:
        raw = patch(raw, 1024, i4(record_size))
    return raw


CASES = [
    Case("valid", lambda t: base(t), DATA),
    Case("map id MAP\\0", lambda t: patch(base(t), 208, b"MAP\0"), DATA),
    Case("map id missing", lambda t: patch(base(t), 208, b"\0\0\0\0"), DATA),
    Case("machst 44 00", lambda t: patch(base(t), 212, b"\x44\x00\x00\x00"), DATA),
    Case("machst 44 11", lambda t: patch(base(t), 212, b"\x44\x11\x00\x00"), DATA),
    Case("machst 44 20 20 20", lambda t: patch(base(t), 212, b"\x44\x20\x20\x20"), DATA),
    Case("machst zeros", lambda t: patch(base(t), 212, b"\0\0\0\0"), DATA),
    Case("machst random", lambda t: patch(base(t), 212, b"\xab\xcd\xef\x01"), DATA),
    Case(
        "big endian, garbage stamp",
        lambda t: patch(base(t, BE_DATA), 212, b"\x00\x7f\x00\x00"),
        DATA,
    ),
    Case("big endian, little stamp", lambda t: patch(base(t, BE_DATA), 212, b"DD\0\0"), DATA),
    Case("big endian", lambda t: base(t, BE_DATA), DATA),
    Case("nversion 0", lambda t: patch(base(t), 108, i4(0)), DATA),
    Case("nsymbt past end", lambda t: patch(base(t), 92, i4(10**6)), MRCFormatError, "nsymbt"),
    Case("nsymbt negative", lambda t: patch(base(t), 92, i4(-80)), MRCFormatError, "nsymbt"),
    Case("nsymbt left over", lambda t: patch(base(t), 92, i4(160)), TruncatedFileError, "nz"),
    Case("FEI2 padded records", lambda t: fei_file(t), DATA),
    Case("FEI2 metadata size 0", lambda t: fei_file(t, 0), DATA),
    Case("FEI2 metadata size huge", lambda t: fei_file(t, 2**30), DATA),
    Case("FEI2 metadata size too small", lambda t: fei_file(t, 100), DATA),
    Case("truncated in header", lambda t: base(t)[:500], TruncatedFileError, "header"),
    Case("truncated after header", lambda t: base(t)[:1024], TruncatedFileError, "nz"),
    Case("truncated in extended header", lambda t: fei_file(t)[:3000], MRCFormatError, "nsymbt"),
    Case("truncated by one byte", lambda t: base(t)[:-1], TruncatedFileError, "nz"),
    Case("truncated mid frame", lambda t: base(t)[: 1024 + 200], TruncatedFileError, "nz"),
    Case("trailing bytes", lambda t: base(t) + b"\0" * 100, DATA),
    Case("sampling zero", lambda t: patch(base(t), 28, i4(0) * 3), DATA),
    Case("cell zero", lambda t: patch(base(t), 40, f4(0, 0, 0)), DATA),
    Case("cell negative", lambda t: patch(base(t), 40, f4(-80, -40, 0)), DATA),
    Case("cell NaN", lambda t: patch(base(t), 40, f4(np.nan, np.inf, 1)), DATA),
    Case("axes permuted", lambda t: patch(base(t), 64, i4(3) + i4(1) + i4(2)), DATA),
    Case("gzip", lambda t: gzip.compress(base(t)), DATA),
    Case("bzip2", lambda t: bz2.compress(base(t)), DATA),
    Case("gzip of truncated", lambda t: gzip.compress(base(t)[:-8]), TruncatedFileError, "nz"),
    Case("gzip garbage", lambda t: b"\x1f\x8b" + b"\x00garbage" * 200, MRCFormatError),
    Case("nx zero", lambda t: patch(base(t), 0, i4(0)), MRCFormatError, "nx"),
    Case("ny negative", lambda t: patch(base(t), 4, i4(-6)), MRCFormatError, "ny"),
    Case("nz zero", lambda t: patch(base(t), 8, i4(0)), MRCFormatError, "nz"),
    Case(
        "size overflows int32",
        lambda t: patch(base(t), 0, i4(65536) + i4(65536)),
        TruncatedFileError,
        "nz",
    ),
    Case(
        "size overflows int64",
        lambda t: patch(base(t), 0, i4(2**31 - 1) * 3),
        TruncatedFileError,
        "nz",
    ),
    Case(
        "volume stack mz zero",
        lambda t: patch(patch(base(t), 88, i4(401)), 36, i4(0)),
        MRCFormatError,
        "mz",
    ),
    Case(
        "volume stack nz not multiple",
        lambda t: patch(patch(base(t), 88, i4(401)), 36, i4(3)),
        MRCFormatError,
        "mz",
    ),
    Case("mode 5", lambda t: patch(base(t), 12, i4(5)), MRCFormatError, "mode"),
    Case("mode -1", lambda t: patch(base(t), 12, i4(-1)), MRCFormatError, "mode"),
    Case("mode huge", lambda t: patch(base(t), 12, i4(2**31 - 1)), MRCFormatError, "mode"),
    Case("random 1 KiB", lambda t: np.random.default_rng(1).bytes(1024), MRCFormatError),
    Case("random 10 KiB", lambda t: np.random.default_rng(2).bytes(10240), MRCFormatError),
    Case("empty", lambda t: b"", TruncatedFileError, "header"),
    Case("PNG", lambda t: (MRCFILE_TESTS / "emd_3197.png").read_bytes(), MRCFormatError, "mode"),
]


def run_case(path: Path) -> np.ndarray:
    f = intake_mrc.open_mrc(path)
    data = f.read()
    np.testing.assert_array_equal(f.to_dask(chunks=1).compute(scheduler="sync"), data)
    return data


@pytest.fixture(scope="module", autouse=True)
def warm_imports(tmp_path_factory):
    """Time and memory bounds are about reading, not about first-use imports."""
    run_case(write_mrc(tmp_path_factory.mktemp("warm") / "w.mrc", DATA))


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_corpus(tmp_path, case):
    path = tmp_path / "case.mrc"
    raw = case.build(tmp_path)
    path.write_bytes(raw)
    path.chmod(0o444)
    before = sha256(path)
    # Garbage left by earlier tests is collected here, not inside the timed read.
    gc.collect()
    tracemalloc.start()
    start = time.monotonic()
    try:
        if isinstance(case.expect, np.ndarray):
            np.testing.assert_array_equal(run_case(path), case.expect)
        else:
            with pytest.raises(case.expect) as info:
                run_case(path)
            assert isinstance(info.value, MRCFormatError)
            assert "case.mrc" in str(info.value)
            if case.field:
                assert info.value.field == case.field
    finally:
        elapsed = time.monotonic() - start
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
    # Generous for a shared, loaded machine (reads here take milliseconds; the bombs this
    # guards against take minutes).
    assert elapsed < 2.0
    assert peak < 16 * max(len(raw), 1024) + 2 * 2**20
    assert sha256(path) == before


def test_corpus_is_large_enough():
    assert len(CASES) >= 40


def test_odd_values_are_reported(tmp_path):
    path = tmp_path / "odd.mrc"
    path.write_bytes(patch(patch(base(tmp_path), 40, f4(-80, -40, 0)), 64, i4(3) + i4(1) + i4(2)))
    f = intake_mrc.open_mrc(path)
    assert f.voxel_size == (None, None, None)
    assert (f.header["mapc"], f.header["mapr"], f.header["maps"]) == (3, 1, 2)
    garbage = tmp_path / "garbage.mrc"
    garbage.write_bytes(patch(base(tmp_path, BE_DATA), 212, b"\x00\x7f\x00\x00"))
    g = intake_mrc.open_mrc(garbage)
    assert (
        g.main_header.byte_order == ">" and "unrecognised" in g.metadata["mrc"]["byte_order_rule"]
    )
    fei = tmp_path / "fei.mrc"
    fei.write_bytes(fei_file(tmp_path, 0))
    h = intake_mrc.open_mrc(fei)
    assert isinstance(h.extended_header, bytes) and "Metadata size" in " ".join(h.notes)


# -- Direct Electron metadata ------------------------------------------------------------


@pytest.mark.parametrize(
    "change,error",
    [
        ({"Scan - Size X": ""}, "Scan - Size"),
        ({"Scan - Size Y": "-4"}, "Scan - Size"),
        ({"Scan - Repeats": "0"}, "Repeats"),
    ],
)
def test_info_with_missing_or_bad_keys(tmp_path, change, error):
    acq = write_acquisition(tmp_path, extra=change)
    with pytest.raises(MetadataError, match=error) as info:
        intake_mrc.open_mrc(acq["paths"]["movie"])
    assert "_info.txt" in str(info.value)


def test_info_binary_garbage_and_huge_line(tmp_path):
    acq = write_acquisition(tmp_path)
    info = acq["paths"]["info"]
    info.write_bytes(np.random.default_rng(5).bytes(20000))
    with pytest.raises(MetadataError):
        intake_mrc.open_mrc(acq["paths"]["movie"])
    with open(info, "wb") as out:  # a 100 MB line
        out.write(b"Key = ")
        chunk = b"v" * 2**20
        for _ in range(100):
            out.write(chunk)
    tracemalloc.start()
    start = time.monotonic()
    with pytest.raises(MetadataError, match="too large"):
        intake_mrc.open_mrc(acq["paths"]["movie"])
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert time.monotonic() - start < 1.0 and peak < 32 * 2**20


def test_info_repeated_keys_keep_the_last(tmp_path):
    acq = write_acquisition(tmp_path, scan=(5, 3))
    info = acq["paths"]["info"]
    info.write_text(info.read_text() + f"{'Scan - Size X':<64}= 3\n{'Scan - Size Y':<64}= 5\n")
    f = intake_mrc.open_mrc(acq["paths"]["movie"])
    assert f.shape == (5, 3, 4, 6)
    assert any("repeated" in n for n in f.metadata["direct_electron"]["notes"])


@pytest.mark.parametrize("scan_type", ["Random", "XY File"])
@pytest.mark.parametrize(
    "csv,match",
    [
        ("0,0\n99,0\n", "outside"),
        ("0,0\n9,0\n", "outside"),
        ("0,0\n0,-3\n", "negative"),
        ("0,0\n-1,0\n", "negative"),
        ("0,0\n1,1.5\n", "integer"),
        ("0.5,1\n1,1\n", "integer"),
        ("0,0\nx,y\n", "integer"),
        ("0,0\n1,x\n", "integer"),
        ("0,0\n", "positions for a movie"),
        ("\x00\x01", "binary"),
    ],
)
def test_scan_csv_corpus(tmp_path, csv, match, scan_type):
    acq = write_acquisition(
        tmp_path, scan=(4, 3), scan_type=scan_type, coordinates=np.array([[0, 0], [1, 1]])
    )
    acq["paths"]["csv"].write_text(csv)
    with pytest.raises(MetadataError, match=match) as info:
        intake_mrc.open_mrc(acq["paths"]["movie"])
    assert "scan_coordinates.csv" in str(info.value)
