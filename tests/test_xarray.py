"""xarray: ``f.to_xarray()``, the ``engine="mrc"`` backend (entry point), the intake reader;
mrcfile is the oracle for values, netCDF4 for attrs that must be storable, the HTTP test
server's request log for laziness."""

from __future__ import annotations

import json
import math

import mrcfile
import numpy as np
import pytest
import xarray as xr
from conftest import MRCFILE_TESTS, RSCIIO
from mrcwriter import write_mrc

import intake_mrc
from intake_mrc.xarray_backend import MRCBackendEntrypoint

RNG = np.random.default_rng(21)


def test_backend_registered_by_entry_point_and_guesses_by_extension():
    assert "mrc" in xr.backends.list_engines()
    entry = MRCBackendEntrypoint()
    assert entry.guess_can_open("a/b/EMD-3001.map") and entry.guess_can_open("x.MRC")
    assert entry.guess_can_open("s3://bucket/x.map.gz")
    assert entry.guess_can_open("https://h/x.mrcs?sig=abc")
    assert not entry.guess_can_open("x.nc") and not entry.guess_can_open("x.mrc.txt")
    path = MRCFILE_TESTS / "EMD-3197.map"
    da = xr.open_dataarray(path)  # no engine: chosen by extension
    assert da.name == "EMD-3197.map"


@pytest.mark.parametrize("axis_order", ["file", "xyz"])
def test_dataarray_matches_mrcfile_with_named_dims_and_coordinates(axis_order):
    path = MRCFILE_TESTS / "EMD-3001.map"
    f = intake_mrc.open_mrc(path, axis_order=axis_order)
    with mrcfile.open(path) as m:
        expected = m.data.copy()
        nzstart = int(m.header.nzstart)
    if axis_order == "xyz":  # stored (y, x, z) by MAPC/MAPR/MAPS = 3, 1, 2
        expected = expected.transpose(2, 0, 1)
    from_file = f.to_xarray()
    from_backend = xr.open_dataarray(path, engine="mrc", axis_order=axis_order)
    chunked = xr.open_dataarray(path, engine="mrc", axis_order=axis_order, chunks={})
    for da in (from_file, from_backend, chunked):
        assert da.name == "EMD-3001.map"
        assert list(da.dims) == ([a["name"] for a in f.axes])
        assert set(da.dims) == {"x", "y", "z"}
        np.testing.assert_array_equal(da.values, expected)
        for axis in f.axes:
            coord = da[axis["name"]]
            assert coord.attrs["units"] == "nm"
            assert coord.values == pytest.approx(
                axis["offset"] + axis["scale"] * np.arange(axis["size"])
            )
        # sections run along y here: the first y is NZSTART * spacing
        assert float(da["y"][0]) == pytest.approx(nzstart * f.voxel_size[1] / 10)
        assert da.attrs["axis_order"] == axis_order
    assert f.to_xarray(chunks=5).chunks[list(f.dimension_names()).index("y")] == (5,) * 5
    sub = from_backend.isel(z=slice(2, 9, 3), x=[4, 1], y=5).values
    np.testing.assert_array_equal(sub, from_file.isel(z=slice(2, 9, 3), x=[4, 1], y=5).values)
    assert chunked.chunks is not None and from_backend.chunks is None


def test_attrs_are_json_and_netcdf_safe_and_unknown_sizes_are_nan(tmp_path):
    data = RNG.normal(size=(3, 4, 5)).astype(np.float32)
    path = write_mrc(tmp_path / "nocell.mrc", data, voxel_size=(1.5, 0.0, 0.0), ispg=0)
    da = xr.open_dataarray(path, engine="mrc")
    size = da.attrs["voxel_size_angstrom"]
    assert size[0] == pytest.approx(1.5) and math.isnan(size[1]) and math.isnan(size[2])
    assert 0.0 not in size
    json.dumps({k: v for k, v in da.attrs.items() if k != "voxel_size_angstrom"})
    assert da["y"].attrs["units"] == "pixel" and da["frame"].attrs["units"] == "index"


def test_netcdf_round_trip_of_attrs_and_images(tmp_path):
    # netCDF4 is in the test extra; an older venv needs `pip install -e ".[test]"` again.
    pytest.importorskip("netCDF4", reason="netCDF4 (test extra) not installed")
    data = RNG.normal(size=(3, 4, 5)).astype(np.float32)
    path = write_mrc(tmp_path / "nocell.mrc", data, voxel_size=(1.5, 0.0, 0.0), ispg=0)
    da = xr.open_dataarray(path, engine="mrc")
    out = tmp_path / "nocell.nc"
    da.to_netcdf(out)
    with xr.open_dataarray(out) as back:
        np.testing.assert_array_equal(back.values, data)
        assert back.attrs["mrc_mode"] == 2 and back.attrs["source"] == da.attrs["source"]
        assert math.isnan(back.attrs["voxel_size_angstrom"][1])
    ds = xr.open_dataset(RSCIIO / "20241021_00405_movie.mrc", engine="mrc", images=True)
    ds.to_netcdf(tmp_path / "de.nc")
    with xr.open_dataset(tmp_path / "de.nc") as back:
        for name in ds.data_vars:
            np.testing.assert_array_equal(back[name].values, ds[name].values)
        assert back.attrs["de_Camera Model"] == "DESim"


def test_de_movie_dataset_with_images_on_the_scan_dims(tmp_path):
    path = RSCIIO / "20241021_00405_movie.mrc"
    f = intake_mrc.open_mrc(path)
    ds = f.to_dataset()
    lazy = xr.open_dataset(path, engine="mrc", images=True)
    only = xr.open_dataarray(path, engine="mrc")  # one variable unless images are asked for
    assert only.name == "20241021_00405_movie.mrc" and only.dims == ("y", "x", "ky", "kx")
    for dataset in (ds, lazy):
        assert set(dataset.data_vars) == {
            "20241021_00405_movie.mrc",
            "virtual:Virt 0",
            "virtual:Virt 1",
            "external:Ext 1",
        }
        movie = dataset["20241021_00405_movie.mrc"]
        assert movie.dims == ("y", "x", "ky", "kx")
        assert dataset["x"].attrs["units"] == "nm" and dataset["kx"].attrs["units"] == "mrad"
        assert float(dataset["y"][1]) == pytest.approx(0.2)
        # frame k holds k, the virtual image the sum position: y * 8 + x
        np.testing.assert_array_equal(movie.values[:, :, 0, 0], np.arange(32).reshape(4, 8))
        np.testing.assert_array_equal(
            dataset["virtual:Virt 0"].values, f.virtual_images["Virt 0"].read()
        )
        assert dataset["external:Ext 1"].dims == ("y", "x")
        np.testing.assert_array_equal(
            dataset["external:Ext 1"].values,
            f.external_images["Ext 1"].read().reshape(4, 8),
        )
        assert dataset.attrs["de_Scan - Size X"] == 8
        assert json.loads(dataset.attrs["direct_electron_values_json"])["Scan - Size Y"] == 4


SHARED_MAPS = [
    (RSCIIO / "HAADFscan.mrc", RSCIIO / "HAADFscan.mrc"),
    (RSCIIO / "20241021_00405_final.mrc", RSCIIO / "20241021_00405_final.mrc"),
    (RSCIIO / "20241021_00405_0_Virt 0_sum.mrc", RSCIIO / "20241021_00405_0_Virt 0_sum.mrc"),
    (MRCFILE_TESTS / "EMD-3197.map", MRCFILE_TESTS / "EMD-3197.map"),
    (MRCFILE_TESTS / "emd_3197.map.gz", MRCFILE_TESTS / "EMD-3197.map"),
    (MRCFILE_TESTS / "EMD-3001.map.bz2", MRCFILE_TESTS / "EMD-3001.map"),
]


def test_shared_files_match_mrcfile_locally_and_over_http(http_upload):
    urls = http_upload(*[path for path, _ in SHARED_MAPS], prefix="xr-shared")
    for (path, plain), url in zip(SHARED_MAPS, urls, strict=True):
        with mrcfile.open(plain, permissive=True) as m:
            expected = m.data.copy()
        for source in (path, url):
            da = xr.open_dataarray(source, engine="mrc", chunks={})
            assert da.name == path.name and da.shape == expected.shape, source
            np.testing.assert_array_equal(da.values, expected)
            assert all("units" in da[d].attrs for d in da.dims)


def test_backend_reads_only_what_is_indexed_over_http(tmp_path, http_upload, http_server):
    data = RNG.integers(0, 60000, size=(12, 32, 24)).astype(np.uint16)
    path = write_mrc(tmp_path / "lazy.mrc", data, ispg=0)
    (url,) = http_upload(path, prefix="xr")
    frame_nbytes = data[0].nbytes
    for chunks in (None, {}):
        http_server.requests.clear()
        da = xr.open_dataarray(url, engine="mrc", chunks=chunks)
        assert len(http_server.requests) == 1  # the header
        http_server.requests.clear()
        np.testing.assert_array_equal(da.isel(frame=7).values, data[7])
        assert http_server.bytes_requested() == frame_nbytes, chunks
        http_server.requests.clear()
        np.testing.assert_array_equal(da.isel(frame=2, y=slice(3, 5)).values, data[2, 3:5])
        assert http_server.bytes_requested() <= frame_nbytes
    with pytest.raises(ValueError):
        xr.open_dataarray(url, engine="mrc", axis_order="zyx")


def test_s3_backend_with_storage_options(s3_upload, s3_server):
    (url,) = s3_upload(MRCFILE_TESTS / "EMD-3001.map", prefix="xr")
    options = s3_server["storage_options"]
    da = xr.open_dataarray(url, engine="mrc", storage_options=options, chunks={})
    also = xr.open_dataarray(
        url, engine="mrc", backend_kwargs={"storage_options": options}, axis_order="xyz"
    )
    with mrcfile.open(MRCFILE_TESTS / "EMD-3001.map") as m:
        np.testing.assert_array_equal(da.values, m.data)
        np.testing.assert_array_equal(also.values, m.data.transpose(2, 0, 1))
    assert da.name == "EMD-3001.map" and "secret" not in json.dumps(da.attrs).lower()


def test_intake_reader_builds_the_same_dataarray():
    from intake_mrc.readers import MRC, MRCXarrayReader

    path = str(MRCFILE_TESTS / "EMD-3001.map")
    da = MRCXarrayReader(MRC(url=path)).read()
    expected = intake_mrc.open_mrc(path).to_xarray()
    xr.testing.assert_identical(da, expected)
    assert da.name == "EMD-3001.map"


def test_same_name_for_open_mfdataset_and_file_objects():
    plain = MRCFILE_TESTS / "EMD-3197.map"
    ds = xr.open_mfdataset(
        [plain, MRCFILE_TESTS / "emd_3197.map.gz"],
        engine="mrc",
        name="data",
        combine="nested",
        concat_dim="run",
    )
    with mrcfile.open(plain) as m:
        expected = m.data.copy()
    assert ds["data"].dims == ("run", "z", "y", "x")
    np.testing.assert_array_equal(ds["data"].values, np.stack([expected, expected]))
    with open(plain, "rb") as fileobj:
        da = xr.open_dataarray(fileobj, engine="mrc")
        np.testing.assert_array_equal(da.values, expected)


def test_de_partial_scan_dataset_over_s3(tmp_path, s3_upload, s3_server):
    from dewriter import write_acquisition

    acq = write_acquisition(tmp_path / "de", scan=(5, 3), frame=(6, 4), n_frames=11)
    urls = s3_upload(*acq["all"], prefix="xr-de")
    (movie_url,) = [u for u in urls if u.endswith("_movie.mrc")]
    ds = xr.open_dataset(
        movie_url,
        engine="mrc",
        storage_options=s3_server["storage_options"],
        partial_scan="pad",
        images=True,
        chunks={},
    )
    movie = ds[f"{acq['stem']}_movie.mrc"]
    assert movie.dims == ("y", "x", "ky", "kx") and movie.shape == (3, 5, 4, 6)
    assert ds["x"].values == pytest.approx(0.25 * np.arange(5))
    assert ds["y"].values == pytest.approx(0.5 * np.arange(3))
    assert ds["kx"].attrs["units"] == "mrad" and ds["kx"].values[1] == pytest.approx(0.75)
    index = np.arange(15).reshape(3, 5)
    expected = np.where(index < 11, index, 0)  # frame k holds k; not scanned reads 0
    np.testing.assert_array_equal(movie.values[:, :, 2, 3], expected)
    for name, (_, image) in acq["virtual"].items():
        assert ds[f"virtual:{name}"].dims == ("y", "x")
        np.testing.assert_array_equal(ds[f"virtual:{name}"].values, image)
    np.testing.assert_array_equal(ds["external:Ext #1"].values, np.full((3, 5), 100.0))
