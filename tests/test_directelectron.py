"""Direct Electron acquisitions: the shared DE set (expected values from its README), the
three DE-Server 2.7.2 info files, and acquisitions written here, read from disk, the S3
server and the HTTP server."""

from __future__ import annotations

import io

import numpy as np
import pytest
from conftest import RSCIIO, sha256
from dewriter import info_text, write_acquisition

import intake_mrc
from intake_mrc import MetadataError, MRCFormatError
from intake_mrc.directelectron.info import parse_info
from intake_mrc.directelectron.naming import group_acquisitions

SHARED_MOVIE = RSCIIO / "20241021_00405_movie.mrc"
SHARED_SET = sorted(RSCIIO.glob("20241021_00405_*"))


def check_shared_set(f):
    assert f.shape == (4, 8, 4, 8)
    data = f.to_dask().compute()
    y, x = np.mgrid[0:4, 0:8]
    # Frame k is filled with k, so the frame at scan (y, x) holds y * 8 + x.
    assert (data == (y * 8 + x)[:, :, None, None]).all()
    assert [a["name"] for a in f.axes] == ["y", "x", "ky", "kx"]
    assert f.axes[0]["scale"] == 0.2 and f.axes[1]["scale"] == 0.1
    assert f.axes[0]["units"] == "nm"
    summary = f.metadata["direct_electron"]["summary"]
    assert summary["Dataset Name"] == "20241021_00405"
    assert summary["Frames Per Second"] == 700 and summary["Camera Model"] == "DESim"
    assert summary["Scan - Size X"] == 8 and summary["Scan - Size Y"] == 4
    assert sorted(f.virtual_images) == ["Virt 0", "Virt 1"]
    assert sorted(f.external_images) == ["Ext 1"]
    virt = f.virtual_images["Virt 0"]
    assert virt.shape == (4, 8)
    np.testing.assert_array_equal(virt.read(), np.arange(32).reshape(4, 8))
    ext = f.external_images["Ext 1"].read()
    assert ext.min() == 0 and ext.max() == pytest.approx(0.0316, abs=1e-3)


def test_shared_de_set_local():
    before = sha256(SHARED_MOVIE)
    check_shared_set(intake_mrc.open_mrc(SHARED_MOVIE))
    assert sha256(SHARED_MOVIE) == before


def test_shared_de_set_s3(s3_upload, s3_server):
    urls = s3_upload(*SHARED_SET, prefix="de405")
    movie = next(u for u in urls if u.endswith("_movie.mrc"))
    check_shared_set(intake_mrc.open_mrc(movie, storage_options=s3_server["storage_options"]))


@pytest.mark.parametrize("listing", [True, False])
def test_shared_de_set_http(http_upload, listing):
    urls = http_upload(*SHARED_SET, prefix=f"de405-{listing}", listing=listing)
    movie = next(u for u in urls if u.endswith("_movie.mrc"))
    f = intake_mrc.open_mrc(movie)
    if listing:
        check_shared_set(f)
    else:
        # Without a listing, the info file names the files as DE-Server saved them
        # ("Virt #0_total_sum"), which upstream renamed: they are named, not faked.
        assert "Virt #0" in f.virtual_images.sources
        with pytest.raises(FileNotFoundError):
            f.virtual_images["Virt #0"].read()


@pytest.mark.parametrize(
    "name,temstem,camera_length,scan_enabled",
    [
        ("3DSTEM_scan_info.txt", 1, 20, "Disable"),
        ("3DTEM_scan_info.txt", 0, -1, "Disable"),
        ("3DTEMDiffracting_scan_info.txt", 0, 10, "Disable"),
        ("info.txt", None, None, "Enable"),
    ],
)
def test_shared_info_files(name, temstem, camera_length, scan_enabled):
    info = parse_info((RSCIIO / name).read_bytes(), name)
    assert info.get("Camera Model") == "CeleritasXS"
    assert info.get("Frames Per Second") == 40000
    assert info.get("ADUs Per Electron") == 300  # 2.7.2 calls it "... Bin1x"
    assert info.get("Scan - Enable") == scan_enabled
    assert info.get("Image Size X (pixels)") == 128
    if temstem is not None:
        assert info.get("Instrument Project TEMorSTEM Mode") == temstem
        assert info.get("Instrument Project Camera Length (centimeters)") == camera_length
    else:  # CRLF file: Raster 8 x 32
        assert info.get("Scan - Size X") == 8 and info.get("Scan - Size Y") == 32
        assert not any(v.endswith("\r") for v in info.raw.values())
    assert info.raw["Autosave Filename Suffix"] == ""


@pytest.mark.parametrize(
    "name,units",
    [
        ("3DTEM_scan_info.txt", "nm"),
        ("3DTEMDiffracting_scan_info.txt", "mrad"),
        ("3DSTEM_scan_info.txt", "mrad"),
    ],
)
def test_movie_without_scan_is_a_time_series(tmp_path, name, units):
    acq = write_acquisition(tmp_path, n_frames=6, virtual_names=(), external_names=())
    f = intake_mrc.open_mrc(acq["paths"]["movie"], metadata_file=RSCIIO / name)
    assert f.shape == (6, 4, 6)
    assert f.axes[0]["name"] == "time" and f.axes[0]["scale"] == pytest.approx(1 / 40000)
    assert f.axes[0]["units"] == "s"
    assert f.axes[1]["units"] == (units if units == "nm" else None)  # no diffraction size
    if units == "nm":
        assert f.axes[1]["scale"] == 10


@pytest.mark.parametrize("where", ["local", "s3", "http"])
def test_scan_and_frame_shapes_differ(tmp_path, where, s3_upload, s3_server, http_upload):
    acq = write_acquisition(tmp_path / "acq", scan=(5, 3), frame=(6, 4))
    movie, options = acq["paths"]["movie"], None
    if where == "s3":
        urls = s3_upload(*acq["all"], prefix=f"shapes-{tmp_path.name}")
        movie, options = (
            next(u for u in urls if u.endswith("movie.mrc")),
            s3_server["storage_options"],
        )
    elif where == "http":
        urls = http_upload(*acq["all"], prefix=f"shapes-{tmp_path.name}")
        movie = next(u for u in urls if u.endswith("movie.mrc"))
    f = intake_mrc.open_mrc(movie, storage_options=options)
    assert f.shape == (3, 5, 4, 6)
    data = f.to_dask().compute()
    assert data[2, 4, 0, 0] == 2 * 5 + 4 and data[1, 0, 3, 5] == 5
    assert (f.axes[0]["scale"], f.axes[1]["scale"]) == (0.5, 0.25)
    assert (f.axes[2]["scale"], f.axes[3]["scale"]) == (1.25, 0.75)
    assert f.axes[2]["units"] == "mrad"
    assert list(f.virtual_images) == ["Virt #0", "Virt #1"]
    np.testing.assert_array_equal(f.virtual_images["Virt #1"].read(), acq["virtual"]["Virt #1"][1])
    assert f.external_images["Ext #1"].read().max() == 100


def test_repeats_roi_and_user_override(tmp_path):
    acq = write_acquisition(tmp_path / "r", scan=(5, 3), repeats=2)
    f = intake_mrc.open_mrc(acq["paths"]["movie"])
    assert f.shape == (2, 3, 5, 4, 6)
    assert f.axes[0]["name"] == "repeat" and f.axes[0]["scale"] == 0.5
    assert f.to_dask()[1, 2, 4, 0, 0].compute() == 15 + 14
    roi = write_acquisition(tmp_path / "roi", scan=(16, 16), roi=(2, 3))
    g = intake_mrc.open_mrc(roi["paths"]["movie"])
    assert g.shape == (3, 2, 4, 6)
    h = intake_mrc.open_mrc(roi["paths"]["movie"], navigation_shape=(6, 1))
    assert h.shape == (1, 6, 4, 6)


def test_frame_count_that_does_not_fit(tmp_path):
    acq = write_acquisition(tmp_path, scan=(5, 3), n_frames=13)
    with pytest.raises(MetadataError, match="13 frames"):
        intake_mrc.open_mrc(acq["paths"]["movie"])
    f = intake_mrc.open_mrc(acq["paths"]["movie"], partial_scan="pad")
    data = f.read()
    assert f.shape == (3, 5, 4, 6)
    assert data[2, 2, 0, 0] == 12 and (data[2, 3:] == 0).all()
    assert "interrupted" in f.metadata["scan"]["notes"][0]
    more = write_acquisition(tmp_path / "more", scan=(5, 3), n_frames=16)
    with pytest.raises(MetadataError, match="16 frames"):
        intake_mrc.open_mrc(more["paths"]["movie"], partial_scan="pad")


@pytest.mark.parametrize("scan_type", ["Random", "XY File"])
def test_custom_scan_dense_grid(tmp_path, scan_type):
    coords = np.array([[3, 1], [0, 0], [2, 2], [1, 0]])
    acq = write_acquisition(tmp_path, scan=(4, 3), scan_type=scan_type, coordinates=coords)
    f = intake_mrc.open_mrc(acq["paths"]["movie"])
    assert f.shape == (3, 4, 4, 6)
    data = f.to_dask(chunks=(1, 2)).compute()
    assert data[1, 3, 0, 0] == 0 and data[0, 0, 0, 0] == 1
    assert data[2, 2, 0, 0] == 2 and data[0, 1, 0, 0] == 3
    filled = np.zeros((3, 4), bool)
    filled[coords[:, 1], coords[:, 0]] = True
    assert (data[~filled] == 0).all()


def test_custom_scan_with_repeated_positions_adds_visit_axis(tmp_path):
    coords = np.array([[0, 0], [1, 0], [0, 0], [1, 1], [0, 0]])
    acq = write_acquisition(tmp_path, scan=(2, 2), scan_type="Random", coordinates=coords)
    f = intake_mrc.open_mrc(acq["paths"]["movie"])
    assert f.shape == (2, 2, 3, 4, 6)
    assert f.axes[2]["name"] == "visit"
    data = f.read()
    assert data[0, 0, :, 0, 0].tolist() == [0, 2, 4]
    assert data[0, 1, :, 0, 0].tolist() == [1, 0, 0]
    assert data[1, 1, 0, 0, 0] == 3


def test_suffixes_in_one_folder_do_not_mix(tmp_path):
    plain = write_acquisition(tmp_path, scan=(5, 3), virtual_names=("Virt #0",))
    suffixed = write_acquisition(
        tmp_path,
        suffix="B",
        scan=(2, 2),
        frame=(3, 3),
        virtual_names=("Virt #0", "Virt #1"),
        external_names=(),
    )
    f = intake_mrc.open_mrc(plain["paths"]["movie"])
    g = intake_mrc.open_mrc(suffixed["paths"]["movie"])
    assert f.shape == (3, 5, 4, 6) and g.shape == (2, 2, 3, 3)
    assert list(f.virtual_images) == ["Virt #0"] and list(g.virtual_images) == [
        "Virt #0",
        "Virt #1",
    ]
    assert "_B_" in g.virtual_images.sources["Virt #0"]
    assert "_B_" not in f.virtual_images.sources["Virt #0"]
    assert g.virtual_images["Virt #1"].shape == (2, 2)
    assert list(g.external_images) == [] and list(f.external_images) == ["Ext #1"]
    groups, _ = group_acquisitions([str(p) for p in tmp_path.iterdir()])
    assert [g.stem for g in groups] == ["20250101_00001", "20250101_00001_B"]


def test_virtual_images_paired_by_name_whatever_the_order():
    names = [
        "x/20250101_00001_1_Virt #1_sum.mrc",
        "x/20250101_00001_movie.mrc",
        "x/20250101_00001_0_Virt #0_total_sum.mrc",
        "x/20250101_00001_10_Virt #10_sum.mrc",
        "x/20250101_00001_2_Annular_sum.mrc",
    ]
    (group,), _ = group_acquisitions(names)
    assert group.virtual == {
        "Virt #0": names[2],
        "Virt #1": names[0],
        "Annular": names[4],
        "Virt #10": names[3],
    }


def test_metadata_file_as_file_objects_and_url(tmp_path, http_upload):
    acq = write_acquisition(tmp_path / "a", virtual_names=(), external_names=())
    info = acq["paths"]["info"]
    movie = tmp_path / "renamed.mrc"
    movie.write_bytes(acq["paths"]["movie"].read_bytes())
    with open(info, "rb") as binary:
        assert intake_mrc.open_mrc(movie, metadata_file=binary).shape == (3, 5, 4, 6)
    text = io.StringIO(info.read_text())
    assert intake_mrc.open_mrc(movie, metadata_file=text).shape == (3, 5, 4, 6)
    (url,) = http_upload(info, prefix="info-url")
    f = intake_mrc.open_mrc(movie, metadata_file=url)
    assert f.metadata["direct_electron"]["values"]["Scan - Size X"] == 5
    with pytest.raises(MetadataError, match="not found"):
        intake_mrc.open_mrc(movie, metadata_file=tmp_path / "missing_info.txt")
    assert intake_mrc.open_mrc(movie).shape == (15, 4, 6)  # no DE name: plain stack


def test_given_image_lists_are_honoured(tmp_path):
    acq = write_acquisition(tmp_path)
    only = acq["virtual"]["Virt #1"][0]
    f = intake_mrc.open_mrc(
        acq["paths"]["movie"],
        virtual_images=[str(only)],
        external_images={"mine": acq["external"]["Ext #1"][0]},
    )
    assert list(f.virtual_images) == ["Virt #1"]
    assert list(f.external_images) == ["mine"]
    np.testing.assert_array_equal(f.virtual_images["Virt #1"].read(), acq["virtual"]["Virt #1"][1])


def test_hostile_autosave_paths_read_nothing_outside(tmp_path, http_upload, http_root):
    acq = write_acquisition(tmp_path, virtual_names=(), external_names=())
    secret = http_root / "secret_0_Virt #0_sum.mrc"
    secret.write_bytes(b"x" * 2000)
    values = parse_info(acq["paths"]["info"].read_text()).raw
    values["Autosave Virtual Image 0 File Path"] = "../../secret_0_Virt #0_sum.mrc"
    values["Autosave Virtual Image 1 File Path"] = "s3://other-bucket/20250101_00001_1_V_s.mrc"
    values["Autosave External Image 1 File Path"] = "..\\..\\etc\\passwd"
    acq["paths"]["info"].write_text(info_text(values))
    urls = http_upload(*acq["all"], prefix="hostile", listing=False)
    movie = next(u for u in urls if u.endswith("movie.mrc"))
    f = intake_mrc.open_mrc(movie)
    sources = dict(f.virtual_images.sources) | dict(f.external_images.sources)
    assert all(name.startswith("20250101_00001_") for name in sources.values())
    assert "secret" not in str(sources) and "passwd" not in str(sources)
    assert any("ignored" in note for note in f.metadata["scan"]["notes"])


def test_info_file_robustness():
    info = parse_info("A  = 1\r\nB = \r\nC = x = y\r\nno equals here\r\nA = 2\r\n", "i.txt")
    assert info.values == {"A": 2, "B": "", "C": "x = y"}
    assert any("repeated" in n for n in info.notes) and any("skipped" in n for n in info.notes)
    with pytest.raises(MetadataError):
        parse_info(b"\x00\x01\x02binary", "b.txt")
    with pytest.raises(MetadataError):
        parse_info("just text without pairs\n", "t.txt")
    with pytest.raises(MRCFormatError):
        parse_info("K = " + "v" * (5 * 2**20), "long.txt")


def test_de_movie_without_info_file_is_a_plain_stack(tmp_path):
    acq = write_acquisition(tmp_path, virtual_names=(), external_names=())
    acq["paths"]["info"].unlink()
    f = intake_mrc.open_mrc(acq["paths"]["movie"])
    assert f.shape == (15, 4, 6)
    assert any("no info file" in note for note in f.notes)
    assert f.notes is f.metadata["mrc"]["notes"]
    with pytest.raises(MetadataError, match="not found"):
        intake_mrc.open_mrc(acq["paths"]["movie"], metadata_file=acq["paths"]["info"])


def test_virtual_images_follow_repeats_and_line_scans(tmp_path):
    """Virtual images take the movie's navigation shape whatever its dimensions: one value
    per frame (repeats included) or per scan point; a line; each value where the movie has
    the frame it was computed from (frame k holds k, image n holds k * (n + 1))."""
    pytest.importorskip("hyperspy.api")
    from intake_mrc import rsciio

    per_frame = write_acquisition(tmp_path / "pf", scan=(5, 3), repeats=2, virtual_per_frame=True)
    f = intake_mrc.open_mrc(per_frame["paths"]["movie"])
    assert f.shape == (2, 3, 5, 4, 6)
    movie_values = f.to_dask()[..., 0, 0].compute()
    virt = f.virtual_images["Virt #1"]
    assert virt.shape == (2, 3, 5)
    np.testing.assert_array_equal(virt.read(), movie_values * 2)
    np.testing.assert_array_equal(virt.to_dask().compute(), per_frame["virtual"]["Virt #1"][1])
    d = rsciio.signal_dict(f)
    nav = d["metadata"]["_HyperSpy"]["navigators"]["_sig_Virt #1"]
    assert [a["name"] for a in nav["axes"]] == ["repeat", "y", "x"]
    assert d["metadata"]["_HyperSpy"]["_sig_navigator"]["data"].shape == (2, 3, 5)
    ds = f.to_dataset()
    assert ds["virtual:Virt #0"].dims == ("repeat", "y", "x")
    np.testing.assert_array_equal(ds["virtual:Virt #0"].values, movie_values)

    per_point = write_acquisition(tmp_path / "pp", scan=(5, 3), repeats=2)
    g = intake_mrc.open_mrc(per_point["paths"]["movie"])
    assert g.virtual_images["Virt #0"].shape == (3, 5)  # the scan grid, summed over repeats
    nav = rsciio.signal_dict(g)["metadata"]["_HyperSpy"]["navigators"]["_sig_Virt #0"]
    assert [a["name"] for a in nav["axes"]] == ["y", "x"]
    assert g.to_dataset()["virtual:Virt #0"].dims == ("y", "x")

    # A line: the user's 1-D navigation over the 15 frames; the image follows it.
    line = write_acquisition(tmp_path / "line", scan=(5, 3))
    h = intake_mrc.open_mrc(line["paths"]["movie"], navigation_shape=(15,))
    assert h.shape == (15, 4, 6)
    line_values = h.to_dask()[:, 0, 0].compute()
    image = h.virtual_images["Virt #0"]
    assert image.shape == (1, 15)  # an MRC image has two axes: one row
    np.testing.assert_array_equal(image.read()[0], line_values)
    d = rsciio.signal_dict(h)
    navigator = d["metadata"]["_HyperSpy"]["_sig_navigator"]
    assert navigator["data"].shape == (15,)
    np.testing.assert_array_equal(np.asarray(navigator["data"]), line_values)
    assert [a["name"] for a in navigator["axes"]] == ["nav0"]
    s = h.to_hyperspy()
    assert s.axes_manager.navigation_shape == (15,)
    np.testing.assert_array_equal(np.asarray(s.navigator.data), line_values)
    ds = h.to_dataset()
    assert ds["virtual:Virt #1"].dims == ("nav0",)
    np.testing.assert_array_equal(ds["virtual:Virt #1"].values, line_values * 2)

    # A line scan in the info file (1 row of 7): the movie keeps y of 1, so does the image.
    row = write_acquisition(tmp_path / "row", scan=(7, 1))
    r = intake_mrc.open_mrc(row["paths"]["movie"])
    assert r.shape == (1, 7, 4, 6) and r.virtual_images["Virt #0"].shape == (1, 7)
    assert r.to_dataset()["virtual:Virt #0"].dims == ("y", "x")
    np.testing.assert_array_equal(
        rsciio.signal_dict(r)["metadata"]["_HyperSpy"]["_sig_navigator"]["data"],
        r.to_dask()[:, :, 0, 0].compute(),
    )
