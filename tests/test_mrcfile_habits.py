"""What mrcfile users type works the same: ``with``, ``np.asarray(f)``, ``.data``, header
fields by mrcfile's names; and IMOD's signed-bytes flag read as IMOD reads it. mrcfile and
numpy on the raw bytes are the oracles."""

from __future__ import annotations

import pickle

import dask.array as da
import mrcfile
import numpy as np
import pytest
import yaml
from conftest import MRCFILE_TESTS, RSCIIO
from mrcwriter import write_mrc

import intake_mrc

SAMPLES = [
    MRCFILE_TESTS / "EMD-3001.map",
    MRCFILE_TESTS / "EMD-3197.map",
    RSCIIO / "HAADFscan.mrc",
    RSCIIO / "20241021_00405_movie.mrc",
]


def assert_header_matches_mrcfile(header, path) -> None:
    with mrcfile.open(path, permissive=True) as m:
        oracle = m.header
        for name in oracle.dtype.names:
            ours, theirs = getattr(header, name), getattr(oracle, name)
            assert np.asarray(ours).tobytes() == np.asarray(theirs).tobytes(), name
        assert header.cella.x == oracle.cella.x and header.origin.z == oracle.origin.z
        assert header.label[0] == oracle.label[0]


@pytest.mark.parametrize("path", SAMPLES, ids=lambda p: p.name)
def test_with_asarray_data_and_header_names(path):
    with intake_mrc.open_mrc(path) as f, mrcfile.open(path, permissive=True) as m:
        expected = m.data
        assert isinstance(f.data, da.Array)
        np.testing.assert_array_equal(f.data.compute().reshape(expected.shape), expected)
        arr = np.asarray(f)
        assert arr.dtype == f.dtype and arr.ndim == f.ndim and arr.dtype != object
        np.testing.assert_array_equal(arr.reshape(expected.shape), expected)
        as_f8 = np.asarray(f, dtype=np.float64)
        assert as_f8.dtype == np.float64
        np.testing.assert_array_equal(as_f8.reshape(expected.shape), expected.astype(np.float64))
        assert f.header["nx"] == f.header.nx == m.header.nx
        assert f.header["labels"] == [lab.decode().rstrip() for lab in m.header.label if lab][
            : int(m.header.nlabl) or None
        ] or not any(m.header.label)
    assert_header_matches_mrcfile(f.header, path)
    assert isinstance(f.header, dict) and "label" not in f.header  # the dict keeps its names
    assert pickle.loads(pickle.dumps(f.header)).cella.y == f.header.cella.y
    for dumper in (yaml.SafeDumper, yaml.Dumper):  # written as the plain mapping it is
        assert yaml.safe_load(yaml.dump(f.header, Dumper=dumper)) == dict(f.header)
    with pytest.raises(AttributeError):
        f.header.nx = 3
    with pytest.raises(AttributeError):
        _ = f.header.no_such_field


def test_asarray_copy_semantics(tmp_path):
    data = np.arange(24, dtype=np.float32).reshape(2, 3, 4)
    path = write_mrc(tmp_path / "c.mrc", data)
    f = intake_mrc.open_mrc(path)
    mapped = np.asarray(f, copy=False)  # numpy 2: a view of the file, no copy
    assert not mapped.flags.owndata  # a view of the memory map
    np.testing.assert_array_equal(mapped, data)
    copied = np.array(f, copy=True)
    copied[0, 0, 0] = 99
    np.testing.assert_array_equal(np.asarray(f), data)
    with pytest.raises(ValueError, match="copy=False"):
        np.asarray(f, dtype=np.float64, copy=False)
    gz = intake_mrc.open_mrc(MRCFILE_TESTS / "emd_3197.map.gz")
    with pytest.raises(ValueError, match="copy=False"):
        np.asarray(gz, copy=False)


def test_header_names_over_s3_and_http(s3_upload, s3_server, http_upload):
    path = MRCFILE_TESTS / "EMD-3001.map"
    (s3_url,) = s3_upload(path, prefix="habits")
    (http_url,) = http_upload(path, prefix="habits")
    for url, options in ((s3_url, s3_server["storage_options"]), (http_url, None)):
        with intake_mrc.open_mrc(url, storage_options=options) as f:
            assert_header_matches_mrcfile(f.header, path)
            with mrcfile.open(path) as m:
                np.testing.assert_array_equal(np.asarray(f), m.data)


def imod_file(tmp_path, values: np.ndarray, flags: int):
    """A mode-0 file as IMOD writes it: with the signed flag, value - 128 stored as int8."""
    stored = (values.astype(np.int16) - 128).astype(np.int8) if flags & 1 else values.view("i1")
    path = write_mrc(tmp_path / f"imod{flags}.mrc", stored, header={"nversion": 20140})
    raw = bytearray(path.read_bytes())
    raw[152:160] = np.array([1146047817, flags], "<i4").tobytes()
    path.write_bytes(bytes(raw))
    return path, stored


def test_imod_signed_flag_reads_as_imod_does(tmp_path):
    values = np.random.default_rng(5).integers(0, 256, size=(6, 3, 4)).astype(np.uint8)
    path, stored = imod_file(tmp_path, values, flags=1)
    f = intake_mrc.open_mrc(path, chunks=2)
    assert f.dtype == np.uint8
    assert "b3dShiftBytes" in f.metadata["mrc"]["signed_bytes_rule"]
    np.testing.assert_array_equal(f.read(), values)
    arr = f.to_dask()
    assert arr.numblocks == (3, 1, 1)
    np.testing.assert_array_equal(arr.compute(), values)
    np.testing.assert_array_equal(arr[4, 1:].compute(), values[4, 1:])  # per chunk, fused
    np.testing.assert_array_equal(f.frame_array[[5, 0], 2], values[[5, 0], 2])
    with pytest.raises(ValueError):
        f.memmap()  # the stored bytes are not the values
    raw = intake_mrc.open_mrc(path, signed_bytes="signed")
    assert raw.dtype == np.int8 and "signed" in raw.metadata["mrc"]["signed_bytes_rule"]
    np.testing.assert_array_equal(raw.read(), stored)
    np.testing.assert_array_equal(raw.to_dask().compute(), stored)
    with mrcfile.open(path) as m:  # mrcfile ignores the flag: the stored int8
        np.testing.assert_array_equal(raw.read(), m.data)
    plain, _ = imod_file(tmp_path, values, flags=0)
    np.testing.assert_array_equal(intake_mrc.open_mrc(plain).read(), values)


def test_imod_shift_over_http(tmp_path, http_upload, http_server):
    values = np.random.default_rng(6).integers(0, 256, size=(5, 4, 4)).astype(np.uint8)
    path, _ = imod_file(tmp_path, values, flags=1)
    (url,) = http_upload(path, prefix="imod")
    f = intake_mrc.open_mrc(url, chunks=1)
    np.testing.assert_array_equal(f.to_dask()[2].compute(), values[2])
    np.testing.assert_array_equal(f.read(), values)
