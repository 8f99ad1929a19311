"""DE naming as RosettaSciIO tests it and beyond: ``virt<digits>`` virtual images, repeated
detector names kept apart (``BF``, ``BF_1``), acquisitions whose stem is not a dataset id
(``Custom_movie.mrc``), a KeyError that lists the images, and DE files that pickle (so they
can go to ``client.submit``). RosettaSciIO's regexes and ``find_related_de_files`` are the
oracles where it has them; locally, on the S3 server and on the HTTP server."""

from __future__ import annotations

import pickle
import shutil

import numpy as np
import pytest
from conftest import RSCIIO
from dewriter import write_acquisition
from mrcwriter import write_mrc

import intake_mrc
from intake_mrc.directelectron.naming import classify, dedupe, group_acquisitions

rsciio_mrc = pytest.importorskip("rsciio.mrc._api")


@pytest.mark.parametrize(
    "name",
    [
        "20241021_00405_0_Virt 0_sum.mrc",
        "20241021_00405_1_Virt 1_sum.mrc",
        "20251103_23389_3_CentroidAmp_centroid_amplitude.mrc",
        "20241021_00405_virt0_BF_sum.mrc",
        "20241021_00405_virt12_ADF_total_sum.mrc",
    ],
)
def test_virtual_names_as_rosettasciio_parses_them(name):
    theirs = rsciio_mrc.VIRTUAL_RE.fullmatch(name)
    role, number, detector = classify(name.split("_", 2)[2])
    assert (role, detector) == ("virtual", theirs["name"])
    assert number == int(theirs["virtualImageNum"].removeprefix("virt"))
    stem = "_".join(name.split("_", 2)[:2])
    (group,), _ = group_acquisitions([f"d/{stem}_movie.mrc", f"d/{name}"])
    assert list(group.virtual) == [theirs["name"]]


def test_dedupe_as_rosettasciio():
    assert dedupe(["BF", "BF", "ADF", "BF"]) == ["BF", "BF_1", "ADF", "BF_2"]
    assert dedupe(["BF", "BF_1", "BF"]) == ["BF", "BF_1", "BF_2"]


@pytest.fixture
def two_bf(tmp_path):
    """The shared DE movie and info with two virtual images both named BF (RosettaSciIO's
    dedupe case), each holding different values, plus a virt-prefixed ADF image."""
    folder = tmp_path / "acq"
    folder.mkdir()
    stem = "20241021_00405"
    shutil.copy(RSCIIO / f"{stem}_movie.mrc", folder / f"{stem}_movie.mrc")
    shutil.copy(RSCIIO / f"{stem}_info.txt", folder / f"{stem}_info.txt")
    images = {}
    for n, (name, scale) in enumerate(
        [("1_BF_sum", 10.0), ("0_BF_sum", 1.0), ("virt2_ADF_sum", 5.0)]
    ):
        data = (np.arange(32, dtype=np.float32) * scale + n).reshape(1, 4, 8)
        images[name] = write_mrc(folder / f"{stem}_{name}.mrc", data), data.reshape(4, 8)
    return folder, images


def check_two_bf(f, images):
    # Detector order: BF from detector 0 keeps its name, detector 1 becomes BF_1.
    assert list(f.virtual_images) == ["BF", "BF_1", "ADF"]
    np.testing.assert_array_equal(f.virtual_images["BF"].read(), images["0_BF_sum"][1])
    np.testing.assert_array_equal(f.virtual_images["BF_1"].read(), images["1_BF_sum"][1])
    np.testing.assert_array_equal(f.virtual_images["ADF"].read(), images["virt2_ADF_sum"][1])


def test_repeated_detector_names_kept_apart(two_bf, s3_upload, s3_server, http_upload):
    folder, images = two_bf
    movie = folder / "20241021_00405_movie.mrc"
    check_two_bf(intake_mrc.open_mrc(movie), images)
    # RosettaSciIO finds the same three images under the same three names.
    theirs = rsciio_mrc.find_related_de_files(str(movie))
    assert sorted(theirs["virtual_image_names"]) == ["ADF", "BF", "BF_1"]
    urls = s3_upload(*folder.iterdir(), prefix="two-bf")
    s3_movie = next(u for u in urls if u.endswith("_movie.mrc"))
    check_two_bf(
        intake_mrc.open_mrc(s3_movie, storage_options=s3_server["storage_options"]), images
    )
    urls = http_upload(*folder.iterdir(), prefix="two-bf")
    check_two_bf(intake_mrc.open_mrc(next(u for u in urls if u.endswith("_movie.mrc"))), images)
    # A user's list with one name twice keeps both too.
    given = [folder / "20241021_00405_0_BF_sum.mrc", folder / "20241021_00405_1_BF_sum.mrc"]
    f = intake_mrc.open_mrc(movie, virtual_images=given)
    assert list(f.virtual_images) == ["BF", "BF_1"]
    np.testing.assert_array_equal(f.virtual_images["BF_1"].read(), images["1_BF_sum"][1])


def test_missing_image_key_lists_the_keys():
    f = intake_mrc.open_mrc(RSCIIO / "20241021_00405_movie.mrc")
    with pytest.raises(KeyError, match=r"'Virt #0'.*\['Virt 0', 'Virt 1'\]"):
        f.virtual_images["Virt #0"]
    with pytest.raises(KeyError, match=r"\['Ext 1'\]"):
        f.external_images["Ext #1"]


def custom_acquisition(folder):
    # "Custom": a stem that is no dataset id; a Random scan of 4 (x) by 3 (y), twice.
    coords = np.array([(x, y) for y in range(3) for x in range(4)][::-1] * 2)
    return write_acquisition(
        folder, dataset="Custom", scan=(4, 3), scan_type="Random", coordinates=coords
    )


@pytest.mark.parametrize("where", ["local", "s3", "http"])
def test_any_stem_movie_finds_info_csv_and_images(
    tmp_path, where, s3_upload, s3_server, http_upload
):
    acq = custom_acquisition(tmp_path / "custom")
    paths = acq["paths"]
    assert paths["movie"].name == "Custom_movie.mrc"
    movie, options = paths["movie"], None
    if where == "s3":
        urls = s3_upload(*acq["all"], prefix=f"custom-{tmp_path.name}")
        movie, options = (
            next(u for u in urls if u.endswith("_movie.mrc")),
            s3_server["storage_options"],
        )
    elif where == "http":
        urls = http_upload(*acq["all"], prefix=f"custom-{tmp_path.name}")
        movie = next(u for u in urls if u.endswith("_movie.mrc"))
    f = intake_mrc.open_mrc(movie, storage_options=options)  # no metadata_file, no scan_file
    assert f.shape == (3, 4, 2, 4, 6)
    assert f.metadata["scan"]["kind"] == "custom"
    theirs = rsciio_mrc.file_reader(
        str(paths["movie"]), metadata_file=str(paths["info"]), scan_file=str(paths["csv"])
    )[0]
    np.testing.assert_array_equal(f.read(), theirs["data"])
    assert list(f.virtual_images) == ["Virt #0", "Virt #1"]
    np.testing.assert_array_equal(f.virtual_images["Virt #1"].read(), acq["virtual"]["Virt #1"][1])


def test_plain_movie_name_without_info_stays_plain(tmp_path):
    path = write_mrc(tmp_path / "beam_movie.mrc", np.zeros((3, 4, 5), np.float32))
    f = intake_mrc.open_mrc(path)
    assert f.shape == (3, 4, 5) and "direct_electron" not in f.metadata
    groups, ungrouped = group_acquisitions([str(path), str(tmp_path / "beam_final.mrc")])
    assert groups == [] and sorted(ungrouped) == sorted(
        [str(path), str(tmp_path / "beam_final.mrc")]
    )


@pytest.mark.parametrize("where", ["local", "s3"])
def test_de_file_pickles_with_its_images(where, s3_upload, s3_server):
    # What client.submit(fn, f) needs. (A LocalCluster round trip took 11.7 s here: left
    # to tests/test_remote.py's cluster test, which already ships these stores.)
    movie, options = RSCIIO / "20241021_00405_movie.mrc", None
    if where == "s3":
        urls = s3_upload(*RSCIIO.glob("20241021_00405_*"), prefix="pickle405")
        movie = next(u for u in urls if u.endswith("_movie.mrc"))
        options = s3_server["storage_options"]
    f = intake_mrc.open_mrc(movie, storage_options=options)
    g = pickle.loads(pickle.dumps(f))
    np.testing.assert_array_equal(g.read(), f.read())
    assert (
        g.axes == f.axes
        and g.metadata["direct_electron"]["summary"] == f.metadata["direct_electron"]["summary"]
    )
    assert list(g.virtual_images) == ["Virt 0", "Virt 1"]
    np.testing.assert_array_equal(g.virtual_images["Virt 0"].read(), np.arange(32).reshape(4, 8))
    np.testing.assert_array_equal(
        g.external_images["Ext 1"].read(), f.external_images["Ext 1"].read()
    )
