"""napari reader: get_reader picks MRC names only, the layers are lazy (dask) with physical
scale, labels, units and origin, complex data become amplitude and phase, URLs work, and the
npe2 manifest validates and reads through npe2 (no viewer, no Qt)."""

from __future__ import annotations

from pathlib import Path

import dask.array as da
import numpy as np
import pytest
from conftest import MRCFILE_TESTS, RSCIIO
from mrcwriter import write_mrc

import intake_mrc
from intake_mrc.napari import get_reader

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
