"""Reading local files: every mode, both byte orders, shapes, mmap, chunks; mrcfile and raw
numpy are the oracles."""

from __future__ import annotations

import pickle

import mrcfile
import numpy as np
import pytest
from conftest import MRCFILE_TESTS, RSCIIO, SHARED, sha256
from mrcwriter import fei2_records, write_mrc, write_raw_mode

import intake_mrc
from intake_mrc import MRCFormatError

RNG = np.random.default_rng(7)
MRCFILE_DTYPES = ["i1", "i2", "f4", "c8", "u2", "f2"]


def sample(dtype: str, shape=(5, 6, 7)) -> np.ndarray:
    if dtype == "c8":
        return (RNG.normal(size=shape) + 1j * RNG.normal(size=shape)).astype("c8")
    if dtype[0] == "f":
        return RNG.normal(size=shape).astype(dtype)
    info = np.iinfo(dtype)
    return RNG.integers(info.min, info.max, size=shape, endpoint=True).astype(dtype)


@pytest.mark.parametrize("byte_order", ["<", ">"])
@pytest.mark.parametrize("dtype", MRCFILE_DTYPES)
def test_modes_match_mrcfile(tmp_path, dtype, byte_order):
    data = sample(dtype).astype(np.dtype(dtype).newbyteorder(byte_order))
    path = write_mrc(tmp_path / "m.mrc", data)
    before = sha256(path)
    f = intake_mrc.open_mrc(path)
    with mrcfile.open(path) as oracle:
        expected = oracle.data.copy()
    assert f.dtype.isnative and f.dtype == np.dtype(dtype)
    assert f.shape == expected.shape
    np.testing.assert_array_equal(f.read(), expected)
    np.testing.assert_array_equal(f.to_dask(chunks=2).compute(), expected)
    assert f.header["mode"] == {"i1": 0, "i2": 1, "f4": 2, "c8": 4, "u2": 6, "f2": 12}[dtype]
    assert sha256(path) == before


@pytest.mark.parametrize("byte_order", ["<", ">"])
def test_mode_3_complex_int16(tmp_path, byte_order):
    pairs = RNG.integers(-30000, 30000, size=(3, 4, 5, 2)).astype(f"{byte_order}i2")
    path = write_raw_mode(tmp_path / "c.mrc", 3, (3, 4, 5), pairs.tobytes(), byte_order)
    f = intake_mrc.open_mrc(path)
    expected = pairs[..., 0].astype(np.float32) + 1j * pairs[..., 1].astype(np.float32)
    assert f.dtype == np.complex64
    np.testing.assert_array_equal(f.read(), expected)
    np.testing.assert_array_equal(f.to_dask(chunks=1)[1:, 2].compute(), expected[1:, 2])


@pytest.mark.parametrize("nx", [6, 7])
def test_mode_101_four_bit(tmp_path, nx):
    values = RNG.integers(0, 16, size=(2, 3, nx)).astype(np.uint8)
    padded = np.zeros((2, 3, nx + nx % 2), dtype=np.uint8)
    padded[..., :nx] = values
    packed = (padded[..., 0::2] | (padded[..., 1::2] << 4)).astype(np.uint8)
    path = write_raw_mode(tmp_path / "p.mrc", 101, (2, 3, nx), packed.tobytes())
    f = intake_mrc.open_mrc(path)
    assert f.shape == (2, 3, nx)
    np.testing.assert_array_equal(f.read(), values)
    np.testing.assert_array_equal(f.to_dask(chunks=1)[:, 1:, 1:].compute(), values[:, 1:, 1:])


def test_imod_unsigned_bytes_and_override(tmp_path):
    data = RNG.integers(0, 255, size=(2, 3, 4)).astype(np.uint8).view(np.int8)
    path = write_mrc(tmp_path / "u.mrc", data, header={"nversion": 20140})
    raw = bytearray(path.read_bytes())
    raw[152:156] = np.array([1146047817], "<i4").tobytes()
    path.write_bytes(bytes(raw))
    f = intake_mrc.open_mrc(path)
    assert f.dtype == np.uint8 and "IMOD" in f.metadata["mrc"]["signed_bytes_rule"]
    np.testing.assert_array_equal(f.read(), data.view(np.uint8))
    g = intake_mrc.open_mrc(path, signed_bytes="signed")
    np.testing.assert_array_equal(g.read(), data)


@pytest.mark.parametrize(
    "ispg,mz,shape",
    [(0, 1, (6, 3, 4)), (1, 6, (6, 3, 4)), (401, 3, (2, 3, 3, 4)), (401, 2, (3, 2, 3, 4))],
)
def test_shapes_match_mrcfile(tmp_path, ispg, mz, shape):
    data = sample("f4", (6, 3, 4))
    path = write_mrc(tmp_path / "s.mrc", data, ispg=ispg, mz=mz)
    f = intake_mrc.open_mrc(path)
    with mrcfile.open(path) as oracle:
        assert oracle.data.shape == shape
        np.testing.assert_array_equal(f.read(), oracle.data)
    assert f.shape == shape
    assert [a["size"] for a in f.axes] == list(shape)


def test_single_image_is_2d_and_voxel_size(tmp_path):
    path = write_mrc(tmp_path / "i.mrc", sample("f4", (3, 4)), voxel_size=(1.5, 2.5, 0.0))
    f = intake_mrc.open_mrc(path)
    assert f.shape == (3, 4)
    assert f.voxel_size[0] == pytest.approx(1.5) and f.voxel_size[1] == pytest.approx(2.5)
    assert f.voxel_size[2] is None
    assert [a["name"] for a in f.axes] == ["y", "x"]
    assert f.axes[1]["scale"] == pytest.approx(0.15) and f.axes[1]["units"] == "nm"


def test_navigation_shape_reshapes_in_rsciio_order(tmp_path):
    data = sample("u2", (12, 3, 4))
    path = write_mrc(tmp_path / "v.mrc", data)
    f = intake_mrc.open_mrc(path, navigation_shape=(4, 3))  # x=4, y=3
    assert f.shape == (3, 4, 3, 4)
    np.testing.assert_array_equal(f.read(), data.reshape(3, 4, 3, 4))
    np.testing.assert_array_equal(f.to_dask(chunks=(1, 2)).compute(), data.reshape(3, 4, 3, 4))
    with pytest.raises(MRCFormatError, match="navigation"):
        intake_mrc.open_mrc(path, navigation_shape=(5, 3))


def test_fei2_extended_header_padded_records(tmp_path):
    records = fei2_records(3, pixel_size_m=2.5e-10, record_nbytes=1024)
    path = write_mrc(tmp_path / "e.mrc", sample("f4", (3, 4, 5)), extended=records, exttyp=b"FEI2")
    f = intake_mrc.open_mrc(path)
    ext = f.extended_header
    assert f.extended_header_type == "FEI2" and ext.shape == (3,)
    assert ext["Metadata size"].tolist() == [1024] * 3
    assert ext["Dose"].tolist() == [0, 1e20, 2e20]
    assert f.voxel_size[0] == pytest.approx(2.5)  # cell is zero: from the FEI records
    with mrcfile.open(path) as oracle:
        np.testing.assert_array_equal(f.read(), oracle.data)


def test_chunks_are_whole_frames_and_pickle_small(tmp_path):
    data = sample("f4", (10, 8, 8))
    path = write_mrc(tmp_path / "c.mrc", data)
    f = intake_mrc.open_mrc(path, chunks=3)
    arr = f.to_dask()
    assert arr.chunks == ((3, 3, 3, 1), (8,), (8,))
    graph = dict(arr.__dask_graph__())
    per_task = [len(pickle.dumps(v)) for v in graph.values()]
    assert max(per_task) < 1024
    assert not any(isinstance(v, np.ndarray) for v in graph.values())
    with pytest.raises(ValueError, match="whole frames"):
        f.to_dask(chunks=(2, 4, 8))
    np.testing.assert_array_equal(arr.compute(), data)


def test_mmap_modes_never_touch_the_file(tmp_path):
    data = sample("f4", (4, 3, 5))
    path = write_mrc(tmp_path / "mm.mrc", data)
    before = sha256(path)
    f = intake_mrc.open_mrc(path, mmap_mode="c")
    block = f.to_dask(chunks=4).blocks[0].compute(scheduler="sync")
    mapped = f.memmap()
    mapped[0, 0, 0] = 1e9
    assert sha256(path) == before
    np.testing.assert_array_equal(block, data)
    r = intake_mrc.open_mrc(path, mmap_mode="r").memmap()
    with pytest.raises(ValueError):
        r[0, 0, 0] = 1
    w = intake_mrc.open_mrc(path, mmap_mode="r+").memmap()
    w[0, 0, 0] = 42
    w.flush()
    del w
    assert sha256(path) != before
    with mrcfile.open(path) as oracle:
        assert oracle.data[0, 0, 0] == 42


def test_file_object_and_text_mode(tmp_path):
    data = sample("i2", (3, 4, 5))
    path = write_mrc(tmp_path / "fo.mrc", data)
    with open(path, "rb") as fileobj:
        f = intake_mrc.open_mrc(fileobj)
        np.testing.assert_array_equal(f.to_dask(chunks=1).compute(), data)
    with open(path) as text, pytest.raises(MRCFormatError, match="text mode"):
        intake_mrc.open_mrc(text)


def test_old_fei_extended_header(tmp_path):
    records = np.zeros(1024, dtype=[("v", "<f4", 13), ("pad", "V76")])
    records["v"][:, 0] = np.arange(1024) * 0.5  # a_tilt
    records["v"][:, 11] = 2.1e-10  # pixel_size in metres
    path = write_mrc(
        tmp_path / "tomo.mrc",
        sample("f4", (3, 4, 5)),
        extended=records.tobytes(),
        exttyp=b"\0\0\0\0",
    )
    f = intake_mrc.open_mrc(path)
    assert f.extended_header_type == "old FEI" and f.header["nsymbt"] == 131072
    assert f.extended_header.shape == (3,)
    assert f.extended_header["a_tilt"].tolist() == [0.0, 0.5, 1.0]
    assert f.voxel_size[0] == pytest.approx(2.1)


def test_haadf_velox_pixel_size():
    f = intake_mrc.open_mrc(RSCIIO / "HAADFscan.mrc")
    assert f.extended_header_type == "FEI2" and f.extended_header.shape == (1,)
    assert f.extended_header["Pixel size X"][0] == pytest.approx(5.679e-9, rel=1e-3)
    assert f.axes[0]["scale"] == pytest.approx(5.679, rel=1e-3) and f.axes[0]["units"] == "nm"
    data = f.read()
    assert (data.min(), data.max()) == (3923, 9399)


def test_emdb_maps_match_mrcfile_and_report_axes():
    pairs = [
        ("EMD-3001.map", "EMD-3001.map"),
        ("emd_3001.map.gz", "EMD-3001.map"),
        ("EMD-3001.map.bz2", "EMD-3001.map"),
        ("EMD-3197.map", "EMD-3197.map"),
        ("emd_3197.map.gz", "EMD-3197.map"),
        ("EMD-3197.map.bz2", "EMD-3197.map"),
    ]
    for name, plain in pairs:
        f = intake_mrc.open_mrc(MRCFILE_TESTS / name)
        with mrcfile.open(MRCFILE_TESTS / plain) as oracle:
            np.testing.assert_array_equal(f.read(), oracle.data)
            assert f.header["ispg"] == oracle.header.ispg
    f = intake_mrc.open_mrc(MRCFILE_TESTS / "EMD-3001.map")
    assert (f.header["mapc"], f.header["mapr"], f.header["maps"]) == (3, 1, 2)
    assert (f.header["mx"], f.header["my"], f.header["mz"]) == (40, 12, 72)
    assert f.header["nsymbt"] == 160 and isinstance(f.extended_header, bytes)
    assert intake_mrc.open_mrc(MRCFILE_TESTS / "EMD-3197.map").voxel_size == pytest.approx(
        (11.4, 11.4, 11.4)
    )


def test_every_shared_file_opens_or_fails_clearly():
    opened = failed = 0
    for path in sorted(p for p in SHARED.rglob("*") if p.is_file()):
        try:
            f = intake_mrc.open_mrc(path)
            f.read()
            opened += 1
        except intake_mrc.MRCFormatError as error:
            assert path.name in str(error)
            failed += 1
    assert opened == 12  # 6 rsciio MRC files, 6 EMDB maps (plain, gzip, bzip2)
    # 3 READMEs (tests/data and its 2 folders), 5 info files, 2 PNGs, the GPL text (COPYING.txt)
    assert failed == 11


def test_velox_navigation_shape_from_fei_scan_size(tmp_path):
    records = fei2_records(12, record_nbytes=888)
    records["Scan size left"], records["Scan size right"] = 0, 4
    records["Scan size top"], records["Scan size bottom"] = 0, 3
    data = sample("u2", (12, 5, 6))
    path = write_mrc(tmp_path / "velox4d.mrc", data, extended=records, exttyp=b"FEI2")
    f = intake_mrc.open_mrc(path, navigation_shape="auto")
    assert f.shape == (3, 4, 5, 6)
    np.testing.assert_array_equal(f.read(), data.reshape(3, 4, 5, 6))
    assert intake_mrc.open_mrc(path).shape == (12, 5, 6)  # default: mrcfile's shape
    records["Scan size right"] = 5
    other = write_mrc(tmp_path / "nofit.mrc", data, extended=records, exttyp=b"FEI2")
    g = intake_mrc.open_mrc(other, navigation_shape="auto")
    assert g.shape == (12, 5, 6) and any("does not fit" in n for n in g.notes)


@pytest.mark.parametrize(
    "key",
    [
        (slice(None, None, -1),),
        ([0, 5, 9],),
        (slice(1, 8, 3), slice(None, None, 2)),
        (3, slice(2, 5), slice(1, 7, 2)),
        (Ellipsis, 4),
        (-1, -1, -1),
        (np.array([True, False] * 5),),
    ],
)
def test_slicing_fused_into_reads_matches_numpy(tmp_path, key):
    data = sample("i2", (10, 8, 7))
    path = write_mrc(tmp_path / "s.mrc", data)
    for mmap_mode in ("c", None):
        arr = intake_mrc.open_mrc(path, chunks=4, mmap_mode=mmap_mode).to_dask()
        np.testing.assert_array_equal(arr[key].compute(), data[key])
        np.testing.assert_array_equal(
            intake_mrc.open_mrc(path, mmap_mode=mmap_mode).frame_array[key], data[key]
        )


@pytest.mark.parametrize(
    ("chunks", "message"),
    [
        (0, "at least 1"),
        ((0,), "at least 1"),
        (-5, "at least 1"),
        ({9: 1}, "no axis 9"),
        ({-4: 1}, "no axis -4"),
    ],
)
def test_bad_chunks_are_named(tmp_path, chunks, message):
    # chunks=0 was a bare ZeroDivisionError; an axis that does not exist was ignored.
    path = write_mrc(tmp_path / "c.mrc", sample("f4", (10, 8, 8)))
    f = intake_mrc.open_mrc(path, chunks=chunks)
    with pytest.raises(ValueError, match=message) as error:
        f.to_dask()
    assert str(path) in str(error.value)
    assert intake_mrc.open_mrc(path, chunks={0: -1, -1: -1}).to_dask().chunks[0] == (10,)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"virtual_images": ["v.mrc"]},
        {"external_images": {"E": "e.mrc"}},
        {"scan_file": "scan.csv"},
    ],
)
def test_de_arguments_for_a_plain_file_are_refused_not_dropped(tmp_path, kwargs):
    path = write_mrc(tmp_path / "plain.mrc", sample("f4", (4, 3, 5)))
    with pytest.raises(ValueError, match="Direct Electron movies") as error:
        intake_mrc.open_mrc(path, **kwargs)
    assert str(path) in str(error.value) and next(iter(kwargs)) in str(error.value)
    # Empty or default values are no request: the file opens.
    assert intake_mrc.open_mrc(path, virtual_images=[], scan_file=None).shape == (4, 3, 5)
