"""``intake_mrc.rsciio`` (RosettaSciIO's ``file_reader``) and ``MRCFile.to_hyperspy``, with
RosettaSciIO's reader and HyperSpy as oracles on the shared files, locally and over the S3
and HTTP test servers; and the places where RosettaSciIO is wrong and we are not."""

from __future__ import annotations

import pickle

import numpy as np
import pytest
from conftest import RSCIIO
from mrcwriter import write_mrc

import intake_mrc
from intake_mrc import rsciio as ours

hs = pytest.importorskip("hyperspy.api")
rsciio_mrc = pytest.importorskip("rsciio.mrc._api")

MOVIE = RSCIIO / "20241021_00405_movie.mrc"
DE_SET = sorted(RSCIIO.glob("20241021_00405_*"))


def axes_view(axes):
    return [(a["name"], a["size"], a["navigate"], a["index_in_array"]) for a in axes]


@pytest.mark.parametrize(
    "name", ["HAADFscan.mrc", "20241021_00405_final.mrc", "20241021_00405_0_Virt 0_sum.mrc"]
)
def test_images_match_rosettasciio(name):
    theirs = rsciio_mrc.file_reader(str(RSCIIO / name))[0]
    mine = ours.file_reader(RSCIIO / name)[0]
    np.testing.assert_array_equal(mine["data"], theirs["data"])
    assert mine["data"].shape == theirs["data"].shape  # NZ=1, ISPG=1: 2-D, not (1, ny, nx)
    assert [a["size"] for a in mine["axes"]] == [a["size"] for a in theirs["axes"]]
    assert [a["navigate"] for a in mine["axes"]] == [False, False]
    # RosettaSciIO's header keys, same values (EXTRA/EXTRA2 raw bytes as hex)...
    for key, value in theirs["original_metadata"]["std_header"].items():
        if key in ("ISPG", "NSYMBT"):
            continue  # RosettaSciIO reads ISPG as two 2-byte fields (see below)
        got = mine["original_metadata"]["std_header"][key]
        if key in ("CMAP", "STAMP", "LABELS"):
            # RosettaSciIO reads these as NUL-stripped strings; we keep every byte.
            assert bytes.fromhex(got).rstrip(b"\0") == bytes.fromhex(value), key
            continue
        assert got == (value.tolist() if isinstance(value, np.ndarray) else value), key
    assert len(bytes.fromhex(mine["original_metadata"]["std_header"]["EXTRA"])) == 30
    assert len(bytes.fromhex(mine["original_metadata"]["std_header"]["EXTRA2"])) == 28
    assert (
        mine["original_metadata"]["std_header"]["ISPG"]
        == intake_mrc.open_mrc(RSCIIO / name).header["ispg"]
    )
    assert mine["metadata"]["General"]["original_filename"] == name
    assert isinstance(ours.load(RSCIIO / name), hs.signals.Signal2D)


def test_haadf_scale_as_rosettasciio():
    s = hs.load(RSCIIO / "HAADFscan.mrc", file_format=ours)
    theirs = hs.load(RSCIIO / "HAADFscan.mrc")
    assert [a.scale for a in s.axes_manager.signal_axes] == [
        a.scale for a in theirs.axes_manager.signal_axes
    ]
    assert s.axes_manager.signal_axes[0].units == "nm"


def check_de_signal(s):
    assert isinstance(s, hs.signals.Signal2D) and s._lazy
    assert s.axes_manager.navigation_shape == (8, 4)
    assert s.axes_manager.signal_shape == (8, 4)
    nav = s.axes_manager.navigation_axes
    assert [a.scale for a in nav] == [0.1, 0.2] and nav[0].units == "nm"
    y, x = np.mgrid[0:4, 0:8]
    assert (s.data.compute() == (y * 8 + x)[:, :, None, None]).all()
    navigators = s.metadata._HyperSpy.navigators
    assert len(navigators) == 3 and all(k in navigators for k in ("Ext 1", "Virt 0", "Virt 1"))
    assert isinstance(navigators["Virt 1"], hs.signals.Signal2D)
    navigator = s.navigator
    assert isinstance(navigator, hs.signals.Signal2D)
    np.testing.assert_array_equal(np.asarray(navigator.data), y * 8 + x)
    assert s.metadata.Acquisition_instrument.TEM.detector == "DESim"
    assert s.metadata.Signal.Noise_properties.Variance_linear_model.gain_factor == 51
    assert s.metadata.Signal.quantity == "Intensity (ADU)"  # "Image Processing - Mode" Integrating
    assert s.original_metadata.de_metadata["Dataset Name"] == "20241021_00405"


def test_de_movie_to_hyperspy_local():
    check_de_signal(intake_mrc.open_mrc(MOVIE).to_hyperspy(lazy=True))
    check_de_signal(hs.load(MOVIE, file_format=ours, lazy=True))


def test_de_movie_to_hyperspy_s3(s3_upload, s3_server):
    urls = s3_upload(*DE_SET, prefix="hs405")
    movie = next(u for u in urls if u.endswith("_movie.mrc"))
    options = s3_server["storage_options"]
    check_de_signal(intake_mrc.open_mrc(movie, storage_options=options).to_hyperspy())
    check_de_signal(ours.load(movie, lazy=True, storage_options=options))


def test_de_movie_to_hyperspy_http(http_upload):
    urls = http_upload(*DE_SET, prefix="hs405")
    movie = next(u for u in urls if u.endswith("_movie.mrc"))
    check_de_signal(intake_mrc.open_mrc(movie).to_hyperspy())
    haadf = http_upload(RSCIIO / "HAADFscan.mrc", prefix="hshaadf")[0]
    s = ours.load(haadf, lazy=False)
    np.testing.assert_array_equal(s.data, hs.load(RSCIIO / "HAADFscan.mrc").data)


def test_user_navigation_shape_reshapes_images():
    mine = ours.file_reader(MOVIE, lazy=True, navigation_shape=(16, 2))[0]
    assert mine["data"].shape == (2, 16, 4, 8)
    navigators = mine["metadata"]["_HyperSpy"]["navigators"]
    assert navigators["_sig_Virt 0"]["data"].shape == (2, 16)
    assert mine["metadata"]["_HyperSpy"]["_sig_navigator"]["data"].shape == (2, 16)
    # The frames keep the info file's diffraction pixel size under a user's grid.
    assert [a["scale"] for a in mine["axes"][2:]] == [0.1, 0.1]
    f = intake_mrc.open_mrc(MOVIE, navigation_shape=(16, 2))
    np.testing.assert_array_equal(f.virtual_images["Virt 1"].read(), np.arange(32).reshape(2, 16))


def test_image_stack_is_signal2d_and_volume_stack_navigates(tmp_path):
    stack = np.arange(3 * 4 * 5, dtype=np.float32).reshape(3, 4, 5)
    path = write_mrc(tmp_path / "stack.mrc", stack, voxel_size=(0.5, 0.5, 2.0))
    s = intake_mrc.open_mrc(path).to_hyperspy(lazy=True)
    assert isinstance(s, hs.signals.Signal2D)
    assert s.axes_manager.navigation_shape == (3,) and s.axes_manager.signal_shape == (5, 4)
    np.testing.assert_array_equal(s.data.compute(), stack)
    assert s.axes_manager.signal_axes[0].scale == pytest.approx(0.05)  # 0.5 Å in nm


def test_de_pixel_sizes_and_negative_cell_where_rosettasciio_is_wrong():
    theirs = rsciio_mrc.file_reader(str(MOVIE))[0]
    mine = ours.file_reader(MOVIE)[0]
    # The info file says 0.2 nm (y) and 0.1 nm (x) per scan step, 0.1 per frame pixel:
    # RosettaSciIO sets every one of them to 1.
    assert [a["scale"] for a in theirs["axes"]] == [1, 1, 1, 1]
    assert [a["scale"] for a in mine["axes"]] == [0.2, 0.1, 0.1, 0.1]
    # DE writes a negative cell (-80 x -40 Å): RosettaSciIO turns it into -1 nm pixels.
    virt_theirs = rsciio_mrc.file_reader(str(RSCIIO / "20241021_00405_0_Virt 0_sum.mrc"))[0]
    assert [a["scale"] for a in virt_theirs["axes"]] == [-1, -1]
    virt_mine = ours.file_reader(RSCIIO / "20241021_00405_0_Virt 0_sum.mrc")[0]
    assert [a["scale"] for a in virt_mine["axes"]] == [1.0, 1.0]
    assert [a["units"] for a in virt_mine["axes"]] == [None, None]
    # 51 ADUs per electron (DE-Server 2.7.4's key): RosettaSciIO looks only for 2.7.2's key
    # and stores 1/gain in a place HyperSpy's variance model does not read.
    assert theirs["metadata"]["Signal"]["Noise_properties"] == {"gain_factor": 1.0}
    model = mine["metadata"]["Signal"]["Noise_properties"]["Variance_linear_model"]
    assert model["gain_factor"] == 51.0


def test_endianness_argument_cannot_break_the_read():
    with pytest.warns(UserWarning, match="endianness='>' ignored"):
        mine = ours.file_reader(RSCIIO / "HAADFscan.mrc", endianness=">")[0]
    assert mine["data"].max() == 9399  # README: values 3923..9399


def test_original_metadata_serialises():
    import json

    for name in ("HAADFscan.mrc", "20241021_00405_movie.mrc"):
        d = ours.file_reader(RSCIIO / name, lazy=True)[0]
        json.dumps(d["original_metadata"])
        json.dumps({k: v for k, v in d["metadata"].items() if k != "_HyperSpy"})


def test_signal_dict_pickles():
    d = ours.file_reader(MOVIE, lazy=True)[0]
    back = pickle.loads(pickle.dumps(d["data"]))
    np.testing.assert_array_equal(back.compute(), d["data"].compute())


def _custom_scan(folder, repeats):
    from dewriter import write_acquisition

    # A 4 (x) by 3 (y) grid visited `repeats` times, in an order that is not a raster.
    coords = [(x, y) for x in range(4) for y in range(3)] * repeats
    return write_acquisition(folder, scan=(4, 3), scan_type="Random", coordinates=np.array(coords))[
        "paths"
    ]


def test_custom_scan_axes_where_rosettasciio_misnames_them(tmp_path):
    paths = _custom_scan(tmp_path, repeats=2)
    theirs = rsciio_mrc.file_reader(
        str(paths["movie"]), metadata_file=str(paths["info"]), scan_file=str(paths["csv"])
    )[0]
    mine = ours.file_reader(paths["movie"])[0]  # info and CSV found beside the movie
    np.testing.assert_array_equal(mine["data"], theirs["data"])  # same (3, 4, 2, ky, kx)
    assert mine["data"].shape == (3, 4, 2, 4, 6)
    # RosettaSciIO calls scan y "time", scan x "y" and the visit axis "x".
    assert [a["name"] for a in theirs["axes"]][:3] == ["time", "y", "x"]
    assert [(a["name"], a["size"]) for a in mine["axes"]][:3] == [("y", 3), ("x", 4), ("visit", 2)]
    assert [a["scale"] for a in mine["axes"]] == [0.5, 0.25, 1.0, 1.25, 0.75]


def test_virtual_image_names_where_rosettasciio_pairs_them_wrongly(monkeypatch):
    # RosettaSciIO takes the names in directory-listing order and the files sorted: any
    # listing order other than the sorted one mislabels them. The shared folder lists
    # "Virt 1" first on ext4 here; reversing the listing makes that certain anywhere.
    real_glob = rsciio_mrc.glob.glob
    monkeypatch.setattr(rsciio_mrc.glob, "glob", lambda p: sorted(real_glob(p), reverse=True))
    theirs = hs.load(MOVIE, lazy=True)
    theirs_virt0 = theirs.metadata._HyperSpy.navigators["Virt 0"].metadata.General
    assert theirs_virt0.original_filename == "20241021_00405_1_Virt 1_sum.mrc"
    monkeypatch.undo()
    mine = ours.file_reader(MOVIE, lazy=True)[0]["metadata"]["_HyperSpy"]["navigators"]
    for name in ("Virt 0", "Virt 1", "Ext 1"):
        assert f"_{name}" in mine[f"_sig_{name}"]["metadata"]["General"]["original_filename"]


def test_hspy_save_and_reload(tmp_path):
    # What RosettaSciIO's zspy save tests check (original_metadata serialises), through
    # HyperSpy's own HDF5 format.
    pytest.importorskip("h5py")
    s = hs.load(MOVIE, file_format=ours)
    s.save(tmp_path / "movie.hspy")
    back = hs.load(tmp_path / "movie.hspy")
    np.testing.assert_array_equal(back.data, s.data)
    assert back.original_metadata.std_header.EXTRA == s.original_metadata.std_header.EXTRA
    assert back.metadata.Signal.Noise_properties.Variance_linear_model.gain_factor == 51
    assert [a.scale for a in back.axes_manager.navigation_axes] == [0.1, 0.2]


@pytest.fixture(scope="module")
def stem_stack(tmp_path_factory):
    """A stand-in for RosettaSciIO's missing 4DSTEMscan.mrc (256 frames, an image stack):
    256 frames of 16 x 16, frame k filled with k."""
    data = np.repeat(np.arange(256, dtype=np.uint16), 16 * 16).reshape(256, 16, 16)
    return write_mrc(tmp_path_factory.mktemp("stack") / "4DSTEMscan.mrc", data, ispg=0)


@pytest.mark.parametrize(
    "kwargs",
    [
        {},
        {"navigation_shape": (16, 16)},
        {"navigation_shape": (8, 32)},
        {"navigation_shape": (8, 32), "chunks": (16, 4, 16, 16), "lazy": True},
        {"metadata_file": RSCIIO / "info.txt"},  # Raster 8 x 32, CRLF lines
        {"metadata_file": RSCIIO / "info.txt", "navigation_shape": (256,)},
        {"metadata_file": RSCIIO / "info.txt", "navigation_shape": (8, 16, 2)},
    ],
    ids=str,
)
def test_deselected_cases_on_a_stand_in_file(stem_stack, kwargs):
    # The deselected RosettaSciIO tests' arguments, on a file of the same layout: same
    # shapes, chunks, data and DE metadata as RosettaSciIO's reader gives.
    theirs = hs.load(stem_stack, **kwargs)
    mine = hs.load(stem_stack, file_format=ours, **kwargs)
    assert type(mine).__name__ == type(theirs).__name__
    assert mine.data.shape == theirs.data.shape
    assert mine.axes_manager.navigation_shape == theirs.axes_manager.navigation_shape
    assert mine.axes_manager.signal_shape == theirs.axes_manager.signal_shape == (16, 16)
    if kwargs.get("lazy"):
        assert mine.data.chunks == theirs.data.chunks == ((16, 16), (4, 4), (16,), (16,))
    np.testing.assert_array_equal(np.asarray(mine.data), np.asarray(theirs.data))
    if "metadata_file" in kwargs:
        for key in ("detector", "magnification", "frames_per_second"):
            assert (
                mine.metadata.Acquisition_instrument.TEM[key]
                == (theirs.metadata.Acquisition_instrument.TEM[key])
            )


def test_navigator_is_the_bright_field_not_just_the_first_image(tmp_path):
    from dewriter import write_acquisition

    acq = write_acquisition(tmp_path, scan=(5, 3), virtual_names=("ADF", "BF"))
    s = intake_mrc.open_mrc(acq["paths"]["movie"]).to_hyperspy(lazy=True)
    assert s.axes_manager.navigation_shape == (5, 3)
    np.testing.assert_array_equal(np.asarray(s.navigator.data), acq["virtual"]["BF"][1])
    assert s.navigator.metadata.General.title == "BF"
    # Without a bright field, virtual image 0 (as RosettaSciIO picks it).
    acq = write_acquisition(tmp_path / "b", scan=(5, 3), virtual_names=("ADF", "DF"))
    s = intake_mrc.open_mrc(acq["paths"]["movie"]).to_hyperspy(lazy=True)
    np.testing.assert_array_equal(np.asarray(s.navigator.data), acq["virtual"]["ADF"][1])


@pytest.mark.parametrize(
    "kwargs", [{"distributed": True}, {"distributed": False}, {"mmap_mode": "r"}], ids=str
)
def test_deprecated_arguments_warn_as_rosettasciio(stem_stack, kwargs):
    # RosettaSciIO's own deselected tests (test_distributed_deprecation_warning,
    # test_deprecated_mmap_mode) on the stand-in file, with RosettaSciIO's reader as oracle:
    # the same warning class and message, the same data.
    from rsciio.exceptions import VisibleDeprecationWarning

    def read(reader):
        with pytest.warns(VisibleDeprecationWarning) as record:
            d = reader(str(stem_stack), navigation_shape=(8, 32), **kwargs)[0]
        messages = [str(w.message) for w in record if w.category is VisibleDeprecationWarning]
        return d, messages

    theirs, their_messages = read(rsciio_mrc.file_reader)
    mine, my_messages = read(ours.file_reader)
    assert my_messages == their_messages and len(mine) == len(theirs)
    assert next(iter(kwargs)) in my_messages[0]
    np.testing.assert_array_equal(np.asarray(mine["data"]), np.asarray(theirs["data"]))
    assert ours.VisibleDeprecationWarning is VisibleDeprecationWarning
    # Through HyperSpy, as users call it.
    with pytest.warns(VisibleDeprecationWarning, match=next(iter(kwargs))):
        s = hs.load(stem_stack, file_format=ours, navigation_shape=(8, 32), **kwargs)
    assert s.data.shape == (32, 8, 16, 16)


def test_deprecated_arguments_are_keyword_only_as_in_rosettasciio(stem_stack):
    # RosettaSciIO's positional order, then nothing more: its deprecated arguments exist
    # only as keywords (its decorator looks at kwargs).
    args = (str(stem_stack), True, "<", (8, 32), "auto", "auto", None, None)
    theirs = rsciio_mrc.file_reader(*args)[0]
    mine = ours.file_reader(*args)[0]
    assert mine["data"].shape == theirs["data"].shape == (32, 8, 16, 16)
    for reader in (rsciio_mrc.file_reader, ours.file_reader):
        with pytest.raises(TypeError):
            reader(*args, "auto", "r")  # scan_file, then mmap_mode as a 10th positional


def test_endianess_spelling_warns_and_is_used_where_rosettasciio_raises(stem_stack):
    from rsciio.exceptions import VisibleDeprecationWarning

    # RosettaSciIO 0.15's decorator pops the argument, then renames what it popped.
    with pytest.raises(KeyError, match="endianess"):
        rsciio_mrc.file_reader(str(stem_stack), endianess="<")
    with pytest.warns(VisibleDeprecationWarning, match="Use `endianness` instead"):
        mine = ours.file_reader(stem_stack, endianess="<")[0]
    assert mine["data"].shape == (256, 16, 16)
    # ... and is the endianness it stands for: a contradicting one warns as endianness does.
    with pytest.warns(UserWarning, match="endianness='>' ignored"):
        ours.file_reader(stem_stack, endianess=">")


def test_fei2_records_fill_acquisition_instrument():
    import mrcfile

    with mrcfile.open(RSCIIO / "HAADFscan.mrc") as m:  # mrcfile's record layout: the oracle
        rec = m.indexed_extended_header[0]
    mine = ours.file_reader(RSCIIO / "HAADFscan.mrc")[0]
    tem = mine["metadata"]["Acquisition_instrument"]["TEM"]
    # The sample's README: HT 300 kV, camera length 0.0911 m, detector "HAADF", a Spectra.
    assert tem["beam_energy"] == 300.0
    assert tem["camera_length"] == pytest.approx(91.1)
    assert tem["detector"] == "HAADF" and tem["microscope"] == "Spectra"
    assert tem["acquisition_mode"] == "STEM"  # Instrument mode 2
    assert tem["convergence_angle"] == pytest.approx(float(rec["Convergence angle"]) * 1e3)
    assert tem["dwell_time"] == float(rec["Dwell time"])
    stage = tem["Stage"]
    assert stage["tilt_alpha"] == float(rec["Alpha tilt"])
    assert stage["tilt_beta"] == float(rec["Beta tilt"])
    assert stage["x"] == pytest.approx(float(rec["X-Stage"]) * 1e3)  # m -> mm
    assert stage["z"] == pytest.approx(float(rec["Z-Stage"]) * 1e3)
    assert tem["Detector"]["Camera"]["name"] == "BM-Ceta"
    # Bitmask 1 bit 31 is clear: the stored 0 is not a magnification.
    assert float(rec["Magnification"]) == 0 and "magnification" not in tem
    # Timestamp 44900.509... days since 1899-12-30.
    assert mine["metadata"]["General"]["date"] == "2022-12-05"
    # RosettaSciIO decodes no FEI1/FEI2 record: nothing there.
    theirs = rsciio_mrc.file_reader(str(RSCIIO / "HAADFscan.mrc"))[0]
    assert "Acquisition_instrument" not in theirs["metadata"]
    s = ours.load(RSCIIO / "HAADFscan.mrc", lazy=False)
    assert s.metadata.Acquisition_instrument.TEM.beam_energy == 300.0
    assert s.metadata.Acquisition_instrument.TEM.Stage.tilt_alpha == stage["tilt_alpha"]


def test_fei1_tilt_series_validity_bits_and_per_section_values(tmp_path):
    import mrcfile

    n = 3
    records = np.zeros(n, dtype=mrcfile.dtypes.get_ext_header_dtype(b"FEI1", "<"))
    records["Metadata size"] = records.dtype.itemsize
    records["Metadata version"] = 1
    records["HT"] = 200e3
    records["Alpha tilt"] = [-60.0, 0.0, 60.0]
    records["X-Stage"] = 1e-6
    records["Magnification"] = 50000.0
    records["Camera length"] = 0.25
    records["Instrument mode"] = 1
    records["Camera name"] = b"Falcon"
    # Valid: HT (bit 5), Alpha tilt (7), X-Stage (9), Instrument mode (25); Magnification's
    # bit 31 clear: its value is not to be trusted. Bitmask 2: camera length (bit 0) valid
    # in sections 0 and 1 only; camera name (bit 19).
    records["Bitmask 1"] = (1 << 5) | (1 << 7) | (1 << 9) | (1 << 25)
    records["Bitmask 2"] = [(1 << 0) | (1 << 19), (1 << 0) | (1 << 19), 1 << 19]
    data = np.zeros((n, 4, 4), np.float32)
    path = write_mrc(tmp_path / "tilts.mrc", data, extended=records, exttyp=b"FEI1")
    with mrcfile.open(path) as m:
        assert m.indexed_extended_header["Alpha tilt"].tolist() == [-60.0, 0.0, 60.0]
    tem = ours.file_reader(path)[0]["metadata"]["Acquisition_instrument"]["TEM"]
    assert tem["beam_energy"] == 200.0 and tem["acquisition_mode"] == "TEM"
    assert tem["Stage"]["tilt_alpha"] == [-60.0, 0.0, 60.0]  # one per section
    assert tem["Stage"]["x"] == pytest.approx(1e-3)
    assert "tilt_beta" not in tem["Stage"] and "magnification" not in tem
    assert "camera_length" not in tem  # not valid in every section
    assert tem["detector"] == "Falcon" == tem["Detector"]["Camera"]["name"]
    s = intake_mrc.open_mrc(path).to_hyperspy()
    assert list(s.metadata.Acquisition_instrument.TEM.Stage.tilt_alpha) == [-60.0, 0.0, 60.0]


def test_fei1_hostile_values_with_every_validity_bit_set(tmp_path):
    """NaN, inf and values that overflow when scaled (1e308 m in mm), all marked valid,
    give no metadata entry; a garbage mode and timestamp are ignored."""
    import mrcfile

    n = 2
    records = np.zeros(n, dtype=mrcfile.dtypes.get_ext_header_dtype(b"FEI1", "<"))
    for name in records.dtype.names:
        if records[name].dtype.kind == "f":
            records[name] = [np.nan, np.inf]
    records["X-Stage"] = 1e308  # finite in metres, inf in millimetres
    records["Alpha tilt"] = 30.0
    records["Timestamp"] = np.nan
    records["Instrument mode"] = 7
    records["Metadata size"] = records.dtype.itemsize
    for mask in ("Bitmask 1", "Bitmask 2", "Bitmask 3", "Bitmask 4"):
        records[mask] = 0xFFFFFFFF
    data = np.zeros((n, 4, 4), np.float32)
    path = write_mrc(tmp_path / "hostile.mrc", data, extended=records, exttyp=b"FEI1")
    out = ours.file_reader(path)[0]
    tem = out["metadata"]["Acquisition_instrument"]["TEM"]
    assert tem["Stage"] == {"tilt_alpha": 30.0}
    assert "acquisition_mode" not in tem and "beam_energy" not in tem
    assert "date" not in out["metadata"]["General"]
