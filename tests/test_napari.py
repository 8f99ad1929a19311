"""napari reader: get_reader picks MRC names only, the layers are lazy (dask) with physical
scale, labels, units and origin, small chunks of whole frames (napari slices without task
fusion), contrast limits from the header or three sampled frames, complex data become
amplitude and phase, URLs work, and the npe2 manifest validates and reads through npe2 (no
viewer, no Qt: tests/test_napari_viewer.py runs a real viewer where napari and Qt exist)."""

from __future__ import annotations

import struct
from pathlib import Path

import dask
import dask.array as da
import numpy as np
import pytest
from conftest import MRCFILE_TESTS, RSCIIO
from mrcwriter import write_mrc

import intake_mrc
from intake_mrc.format.writer import encode_mrc
from intake_mrc.napari import CHUNK_BYTES, get_reader, layer_data

MANIFEST = Path(intake_mrc.__file__).with_name("napari.yaml")
DE_MOVIE = RSCIIO / "20241021_00405_movie.mrc"


@pytest.mark.parametrize(
    ("path", "accepted"),
    [
        ("a.mrc", True),
        ("A.MRC", True),
        ("emd_3197.map.gz", True),
        ("s3://bucket/run/movie.mrcs", True),
        ("https://host/x.map?X-Amz-Signature=abc", True),
        ("image.png", False),
        ("https://host/x.png?name=a.mrc", False),
        ("folder.mrc/", False),
        (["a.mrc", "b.mrc"], False),  # napari stacks several files itself
        (["a.mrc"], True),
    ],
)
def test_get_reader_accepts_mrc_names_only(path, accepted):
    assert (get_reader(path) is not None) is accepted


def test_layers_are_lazy_with_physical_scale():
    reader = get_reader(str(DE_MOVIE))
    ((data, meta, kind),) = reader(str(DE_MOVIE))
    f = intake_mrc.open_mrc(DE_MOVIE)
    assert kind == "image" and isinstance(data, da.Array)
    np.testing.assert_array_equal(data.compute(), f.read())
    assert meta["axis_labels"] == ["y", "x", "ky", "kx"]
    assert meta["scale"] == [a["scale"] for a in f.axes]
    assert meta["units"] == ["nm", "nm", "mrad", "mrad"]
    assert meta["name"] == DE_MOVIE.name


def test_volume_origin_units_and_contrast_limits():
    path = MRCFILE_TESTS / "EMD-3197.map"
    ((data, meta, _),) = get_reader(str(path))(str(path))
    f = intake_mrc.open_mrc(path)
    assert meta["scale"] == pytest.approx([1.14, 1.14, 1.14])  # 11.4 Å
    assert meta["translate"] == [a["offset"] for a in f.axes]
    assert meta["contrast_limits"] == [f.header["dmin"], f.header["dmax"]]
    assert data.shape == (20, 20, 20)


def test_complex_data_become_amplitude_and_phase(tmp_path):
    values = (np.arange(24).reshape(2, 3, 4) + 1j).astype(np.complex64)
    path = write_mrc(tmp_path / "c.mrc", values)
    layers = get_reader(str(path))(str(path))
    assert [meta["name"] for _, meta, _ in layers] == ["c.mrc amplitude", "c.mrc phase"]
    np.testing.assert_allclose(layers[0][0].compute(), np.abs(values))
    np.testing.assert_allclose(layers[1][0].compute(), np.angle(values))


def test_urls_open_lazily(http_upload, http_server):
    (url,) = http_upload(MRCFILE_TESTS / "EMD-3197.map", prefix="napari")
    before = len(http_server.requests)
    ((data, meta, _),) = get_reader(url)(url)
    opened = len(http_server.requests) - before
    assert opened <= 2  # the header (and a size check), not the data
    np.testing.assert_array_equal(data[10].compute(), intake_mrc.open_mrc(url).read()[10])


def test_manifest_validates_and_reads_through_npe2(npe2pm):
    npe2 = pytest.importorskip("npe2")
    manifest = npe2.PluginManifest.from_file(MANIFEST)
    assert manifest.name == "intake-mrc"
    assert manifest.contributions.readers[0].command == "intake-mrc.get_reader"
    with npe2pm.tmp_plugin(manifest=MANIFEST):
        layers = npe2.read([str(DE_MOVIE)], stack=False, plugin_name="intake-mrc")
    assert layers[0][0].shape == (4, 8, 4, 8)


def _no_range_stack(path, frames=64, shape=(64, 64), dtype=np.float32):
    """A stack whose header says DMAX < DMIN (range not computed, as DE-Server writes)."""
    values = np.random.default_rng(3).normal(size=(frames, *shape)).astype(dtype)
    values[frames // 2, 0, 0] = 50  # only in the middle frame
    values[-2, 0, 0] = 1000  # in no sampled frame
    write_mrc(path, values, header={"dmin": 2.0, "dmax": 1.0})
    return values


def test_chunks_are_small_whole_frames(tmp_path):
    # napari turns task fusion off while it slices: a frame shown reads its whole chunk.
    path = write_mrc(tmp_path / "n.mrc", np.zeros((300, 32, 64), np.float32))  # 8 KiB frames
    with dask.config.set({"array.chunk-size": "128MiB"}):  # a user's large default
        ((data, _, _),) = get_reader(str(path))(str(path))
    assert data.chunks[1:] == ((32,), (64,))
    assert max(data.chunks[0]) * 32 * 64 * 4 <= CHUNK_BYTES
    assert len(data.chunks[0]) > 1


def test_contrast_limits_sampled_when_the_header_has_no_range(tmp_path):
    values = _no_range_stack(tmp_path / "s.mrc")
    ((_, meta, _),) = get_reader(str(tmp_path / "s.mrc"))(str(tmp_path / "s.mrc"))
    sampled = values[[0, 32, 63]]
    assert meta["contrast_limits"] == [float(sampled.min()), float(sampled.max())]
    assert meta["contrast_limits"][1] == 50  # the middle frame's, not frame 62's 1000
    # the DE movie of RosettaSciIO: DMIN 2 > DMAX 1; frame k holds k (y*8 + x)
    ((_, meta, _),) = get_reader(str(DE_MOVIE))(str(DE_MOVIE))
    assert meta["contrast_limits"] == [0.0, 31.0]


def test_contrast_limits_widened_for_flat_data_and_left_to_napari_for_uint8(tmp_path):
    flat = write_mrc(tmp_path / "flat.mrc", np.full((3, 4, 4), 7, np.int16))
    ((_, meta, _),) = get_reader(str(flat))(str(flat))
    assert meta["contrast_limits"] == [0.0, 7.0]  # napari's own rule for equal values
    u8 = tmp_path / "u8.mrc"  # mode 0 by our writer, read unsigned; DMAX < DMIN
    u8.write_bytes(encode_mrc(np.arange(48, dtype=np.uint8).reshape(3, 4, 4)))
    u8.write_bytes(u8.read_bytes()[:76] + struct.pack("<2f", 2, 1) + u8.read_bytes()[84:])
    f = intake_mrc.open_mrc(u8, signed_bytes="unsigned")
    ((data, meta, _),) = layer_data(f)
    assert data.dtype == np.uint8 and f.header["dmax"] < f.header["dmin"]
    assert "contrast_limits" not in meta  # napari takes 0..255 without reading


def test_no_range_url_reads_three_frames_and_napari_slicing_one_chunk(
    tmp_path, http_upload, http_server
):
    values = _no_range_stack(tmp_path / "remote.mrc", frames=256)  # 16 KiB frames, 4 MiB
    size = (tmp_path / "remote.mrc").stat().st_size
    (url,) = http_upload(tmp_path / "remote.mrc", prefix="napari-range")
    http_server.requests.clear()
    ((data, meta, _),) = get_reader(url)(url)
    opened = http_server.bytes_requested()
    assert opened <= 66560 + 3 * 16384  # the header's read-ahead and three frames
    assert meta["contrast_limits"] == [
        float(values[[0, 128, 255]].min()),
        float(values[[0, 128, 255]].max()),
    ]
    http_server.requests.clear()
    with dask.config.set({"optimization.fuse.active": False}):  # as napari slices
        frame = np.asarray(data[200])
    np.testing.assert_array_equal(frame, values[200])
    assert 16384 <= http_server.bytes_requested() <= CHUNK_BYTES < size / 4


def test_single_image_is_read_once_for_contrast_and_drawing(tmp_path, http_upload, http_server):
    values = np.random.default_rng(4).normal(size=(256, 256)).astype(np.float32)
    write_mrc(tmp_path / "image.mrc", values, header={"dmin": 2.0, "dmax": 1.0})  # no range
    (url,) = http_upload(tmp_path / "image.mrc", prefix="napari-image")
    http_server.requests.clear()
    ((data, meta, _),) = get_reader(url)(url)
    assert data.shape == (256, 256)
    assert meta["contrast_limits"] == [float(values.min()), float(values.max())]
    with dask.config.set({"optimization.fuse.active": False}):  # as napari slices
        np.testing.assert_array_equal(np.asarray(data), values)
    # the header's read-ahead (which may hold the start of the image) and the image, once
    assert http_server.bytes_requested() <= 66560 + values.nbytes
