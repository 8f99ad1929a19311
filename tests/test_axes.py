"""Axes follow MAPC/MAPR/MAPS, origins follow ORIGIN or NXSTART/NYSTART/NZSTART, voxel_size
agrees with the axes, ``axis_order="xyz"`` is a lazy transpose. mrcfile's header values are
the oracle; the expected axis labels are derived here from them, independently of the code."""

from __future__ import annotations

import mrcfile
import numpy as np
import pytest
from conftest import MRCFILE_TESTS, RSCIIO, SHARED
from mrcwriter import write_mrc

import intake_mrc

RNG = np.random.default_rng(11)


def oracle_labels(header) -> list[str]:
    """Physical axis of (sections, rows, columns) by MAPS, MAPR, MAPC."""
    return ["xyz"[int(header.maps) - 1], "xyz"[int(header.mapr) - 1], "xyz"[int(header.mapc) - 1]]


def oracle_spacing_nm(header) -> dict[str, float]:
    cell = (header.cella.x, header.cella.y, header.cella.z)
    sampling = (header.mx, header.my, header.mz)
    return {k: float(c) / float(m) / 10 for k, c, m in zip("xyz", cell, sampling, strict=True)}


def test_emd_3001_axes_named_and_scaled_by_mapc_mapr_maps():
    path = MRCFILE_TESTS / "EMD-3001.map"
    f = intake_mrc.open_mrc(path)
    with mrcfile.open(path) as m:
        labels = oracle_labels(m.header)
        spacing = oracle_spacing_nm(m.header)
        starts = (int(m.header.nzstart), int(m.header.nystart), int(m.header.nxstart))
        assert tuple(m.header.origin.tolist()) == (0, 0, 0)  # so the grid start gives offsets
        expected_voxel = tuple(float(v) for v in m.voxel_size.tolist())
    assert labels == ["y", "x", "z"]  # the file's 3,1,2
    assert [a["name"] for a in f.axes] == labels
    for axis, label, start in zip(f.axes, labels, starts, strict=True):
        assert axis["units"] == "nm"
        assert axis["scale"] == pytest.approx(spacing[label], rel=1e-6)
        assert axis["offset"] == pytest.approx(start * spacing[label], rel=1e-6)
    assert f.voxel_size == pytest.approx(expected_voxel, rel=1e-6)
    assert f.metadata["mrc"]["axis_order"] == "file"
    assert f.metadata["mrc"]["stored_axes"] == labels


@pytest.mark.parametrize("name", ["EMD-3001.map", "emd_3001.map.gz"])
def test_axis_order_xyz_is_a_lazy_transpose(name):
    f = intake_mrc.open_mrc(MRCFILE_TESTS / name, axis_order="xyz")
    with mrcfile.open(MRCFILE_TESTS / "EMD-3001.map") as m:
        labels = oracle_labels(m.header)
        expected = np.transpose(m.data, [labels.index(k) for k in "zyx"])
        spacing = oracle_spacing_nm(m.header)
    assert [a["name"] for a in f.axes] == ["z", "y", "x"]
    assert [a["scale"] for a in f.axes] == pytest.approx([spacing[k] for k in "zyx"])
    assert f.shape == expected.shape == tuple(a["size"] for a in f.axes)
    assert f.frame_array.shape == (25, 43, 73)  # the stored order is untouched
    np.testing.assert_array_equal(f.read(), expected)
    arr = f.to_dask(chunks=5)
    assert arr.shape == expected.shape
    np.testing.assert_array_equal(arr.compute(), expected)
    np.testing.assert_array_equal(arr[3, :, 7].compute(), expected[3, :, 7])
    assert f.metadata["mrc"]["axis_order"] == "xyz"
    if name.endswith(".map"):
        np.testing.assert_array_equal(f.memmap(), expected)


def test_axis_order_standard_file_is_unchanged_and_bad_value_refused(tmp_path):
    data = RNG.normal(size=(4, 5, 6)).astype(np.float32)
    path = write_mrc(tmp_path / "v.mrc", data, ispg=1, voxel_size=(1.0, 2.0, 3.0))
    f = intake_mrc.open_mrc(path, axis_order="xyz")
    assert f.axis_permutation is None and [a["name"] for a in f.axes] == ["z", "y", "x"]
    np.testing.assert_array_equal(f.read(), data)
    assert f.voxel_size == pytest.approx((1.0, 2.0, 3.0))
    with pytest.raises(ValueError, match="axis_order"):
        intake_mrc.open_mrc(path, axis_order="zyx")


def test_swapped_image_axes_and_not_a_permutation(tmp_path):
    data = RNG.normal(size=(3, 4, 5)).astype(np.float32)
    path = write_mrc(
        tmp_path / "s.mrc",
        data,
        voxel_size=(1.0, 2.0, 3.0),
        ispg=0,
        header={"mapc": 2, "mapr": 1},
    )
    f = intake_mrc.open_mrc(path)  # an image stack: columns run along y, rows along x
    assert [a["name"] for a in f.axes] == ["frame", "x", "y"]
    assert [a["scale"] for a in f.axes[1:]] == pytest.approx([0.1, 0.2])
    g = intake_mrc.open_mrc(path, axis_order="xyz")
    assert [a["name"] for a in g.axes] == ["frame", "y", "x"]
    np.testing.assert_array_equal(g.to_dask().compute(), data.transpose(0, 2, 1))
    bad = write_mrc(tmp_path / "b.mrc", data, ispg=0, header={"mapc": 1, "mapr": 1, "maps": 3})
    h = intake_mrc.open_mrc(bad, axis_order="xyz")
    assert [a["name"] for a in h.axes] == ["frame", "y", "x"]
    assert any("not a permutation" in note for note in h.notes)
    np.testing.assert_array_equal(h.read(), data)


def test_origin_wins_over_grid_start_and_grid_start_used_otherwise(tmp_path):
    data = RNG.normal(size=(4, 5, 6)).astype(np.float32)
    header = {"nxstart": 3, "nystart": -2, "nzstart": 1}
    plain = write_mrc(tmp_path / "n.mrc", data, ispg=1, voxel_size=(2.0, 4.0, 5.0), header=header)
    f = intake_mrc.open_mrc(plain)
    assert [a["offset"] for a in f.axes] == pytest.approx([0.5, -0.8, 0.6])  # z, y, x in nm
    with mrcfile.open(plain, mode="r+") as m:
        m.header.origin = (10.0, 20.0, 30.0)  # Å, per x, y, z
    g = intake_mrc.open_mrc(plain)
    assert [a["offset"] for a in g.axes] == pytest.approx([3.0, 2.0, 1.0])
    coords = g.coordinates()
    assert coords["x"][0] == pytest.approx(1.0 + 0.2 * np.arange(6))
    assert coords["x"][1] == "nm"
    # EMDB: NXSTART = -2 with 11.4 Å voxels
    emd = intake_mrc.open_mrc(MRCFILE_TESTS / "EMD-3197.map")
    assert emd.axes[2]["name"] == "x" and emd.axes[2]["offset"] == pytest.approx(-2.28)


def test_unknown_spacing_stays_none_and_coordinates_are_grid_positions(tmp_path):
    data = RNG.normal(size=(4, 5, 6)).astype(np.float32)
    header = {"nxstart": 3, "cella": (-80.0, 0.0, float("nan"))}
    path = write_mrc(tmp_path / "u.mrc", data, ispg=1, header=header)
    f = intake_mrc.open_mrc(path)
    assert f.voxel_size == (None, None, None)
    assert all(a["units"] is None and a["scale"] == 1.0 for a in f.axes)
    assert f.axes[2]["offset"] == 3.0
    assert f.coordinates()["x"][1] == "pixel"


def test_de_movie_voxel_size_from_its_axes():
    f = intake_mrc.open_mrc(RSCIIO / "20241021_00405_movie.mrc")
    by_name = {a["name"]: a for a in f.axes}
    assert (by_name["x"]["scale"], by_name["y"]["scale"]) == (0.1, 0.2)
    assert f.header["cella"][0] < 0  # DE's negative cell: not a size
    assert f.voxel_size == pytest.approx((1.0, 2.0, None)) and f.voxel_size[2] is None


def test_voxel_size_and_axes_agree_on_every_shared_file():
    checked = 0
    for path in sorted(SHARED.rglob("*")):
        if not path.is_file() or ".png" in path.name or path.suffix in (".txt", ".md", ".csv"):
            continue
        for order in ("file", "xyz"):
            f = intake_mrc.open_mrc(path, axis_order=order)
            for k, value in zip("xyz", f.voxel_size, strict=True):
                assert value is None or value > 0
                axis = next((a for a in f.axes if a["name"] == k), None)
                if axis is not None:
                    known = axis["units"] == "nm"
                    assert (value is not None) == known, (path.name, k)
                    if known:
                        assert value == pytest.approx(axis["scale"] * 10)
            checked += 1
    assert checked == 24


PERMUTATIONS = [(1, 2, 3), (1, 3, 2), (2, 1, 3), (2, 3, 1), (3, 1, 2), (3, 2, 1)]
VOLUME = np.arange(4 * 5 * 6, dtype=np.int16).reshape(4, 5, 6) * 7 - 50


@pytest.fixture(scope="module")
def permuted_volumes(tmp_path_factory):
    folder = tmp_path_factory.mktemp("permuted")
    paths = {}
    for mapping in PERMUTATIONS:
        header = dict(zip(("mapc", "mapr", "maps"), mapping, strict=True))
        paths[mapping] = write_mrc(
            folder / f"p{''.join(map(str, mapping))}.mrc", VOLUME, ispg=1, header=header
        )
    return paths


def axis_key(draw_int: int, kind: int, n: int):
    """An OUTER key for one axis of size n: an int, a strided slice or an index array."""
    if kind == 0:
        return draw_int % n - (n if draw_int % 2 else 0)  # negative ints too
    if kind == 1:
        return slice(draw_int % n, None, 1 + draw_int % 3)
    return np.array(sorted({draw_int % n, (draw_int * 7) % n}))


def test_xyz_indexing_matches_numpy_for_every_axis_permutation(permuted_volumes):
    from hypothesis import given, settings
    from hypothesis import strategies as st

    from intake_mrc.xarray_backend import MRCBackendArray

    @settings(max_examples=60, deadline=None)
    @given(
        st.sampled_from(PERMUTATIONS),
        st.lists(st.tuples(st.integers(0, 1000), st.integers(0, 2)), min_size=3, max_size=3),
    )
    def check(mapping, draws):
        f = intake_mrc.open_mrc(permuted_volumes[mapping], axis_order="xyz")
        stored = ["xyz"[mapping[2] - 1], "xyz"[mapping[1] - 1], "xyz"[mapping[0] - 1]]
        expected = VOLUME.transpose([stored.index(k) for k in "zyx"])
        assert [a["name"] for a in f.axes] == ["z", "y", "x"]
        key = tuple(axis_key(d, k, n) for (d, k), n in zip(draws, expected.shape, strict=True))
        picked = [np.atleast_1d(np.arange(n)[k]) for k, n in zip(key, expected.shape, strict=True)]
        want = expected[np.ix_(*picked)]
        want = want.squeeze(axis=tuple(i for i, k in enumerate(key) if isinstance(k, int)))
        np.testing.assert_array_equal(MRCBackendArray(f)._raw_getitem(key), want)
        np.testing.assert_array_equal(f.to_dask()[key[0]].compute(), expected[key[0]])

    check()


def imod_stamped(path, stamp: bool, flags: int):
    """The file with IMOD's stamp and flags at bytes 152-159 (mrcfile has no field there)."""
    raw = bytearray(path.read_bytes())
    raw[152:160] = np.array([1146047817 if stamp else 0, flags], "<i4").tobytes()
    path.write_bytes(bytes(raw))
    return path


# (IMOD stamp, imodFlags, NVERSION) -> sign of the first voxel's coordinate, by IMOD's rule:
# its alterheader manual defines the origin as the origin's coordinates relative to the first
# voxel ("the opposite way" to Chimera, i.e. to MRC2014), flag 4 marks an origin stored with
# the sign inverted from that definition, and its reader (mrc_head_read) inverts ORIGIN when
# the flag is set or NVERSION is an MRC2014 version.
IMOD_ORIGIN_CASES = [
    (True, 4, 20140, +1),  # IMOD 4.7+ with INVERT_MRC_ORIGIN: MRC2014 sense, flagged
    (True, 1 | 4, 0, +1),  # the flag alone decides (signed-bytes flag beside it)
    (True, 0, 0, -1),  # older IMOD: its own definition
    (True, 1, 0, -1),
    (True, 0, 20140, +1),  # IMOD reads an MRC2014 version as MRC2014 whatever the flag
    (False, 4, 0, +1),  # no stamp: the flags mean nothing, MRC2014's sense
]


@pytest.mark.parametrize("stamp,flags,nversion,sign", IMOD_ORIGIN_CASES)
def test_imod_inverted_origin_flag(tmp_path, stamp, flags, nversion, sign):
    data = RNG.normal(size=(4, 5, 6)).astype(np.float32)
    origin = (10.0, -20.0, 30.0)  # Å, per x, y, z
    path = write_mrc(
        tmp_path / "imod.mrc",
        data,
        ispg=1,
        voxel_size=(2.0, 4.0, 5.0),
        header={"origin": origin, "nversion": nversion},
    )
    imod_stamped(path, stamp, flags)
    with mrcfile.open(path) as m:  # the stored values, which mrcfile hands out as they are
        assert tuple(m.header.origin.tolist()) == origin and int(m.header.nversion) == nversion
    f = intake_mrc.open_mrc(path)
    first_nm = {k: sign * v / 10 for k, v in zip("xyz", origin, strict=True)}
    assert [a["offset"] for a in f.axes] == pytest.approx([first_nm[k] for k in "zyx"])
    assert f.coordinates()["x"][0][:2] == pytest.approx([first_nm["x"], first_nm["x"] + 0.2])
    assert f.header["origin"] == list(origin)  # the header itself stays as stored
    rule = f.metadata["mrc"]["origin_rule"]
    assert (rule is None) == (not stamp)
    inverted = [n for n in f.notes if n.startswith("origin:")]
    assert bool(inverted) == (sign < 0)
    if sign < 0:
        assert "-ORIGIN" in rule and "-ORIGIN" in inverted[0]
    da = f.to_xarray()
    assert float(da["x"][0]) == pytest.approx(first_nm["x"])
    assert (da.attrs.get("origin_rule") is None) == (not stamp)
    g = intake_mrc.open_mrc(path, axis_order="xyz")
    assert [a["offset"] for a in g.axes] == pytest.approx([first_nm[k] for k in "zyx"])


def test_imod_origin_rule_over_http_and_in_hyperspy(tmp_path, http_upload):
    pytest.importorskip("hyperspy.api")
    from intake_mrc import rsciio

    data = RNG.normal(size=(3, 5, 6)).astype(np.float32)
    path = write_mrc(
        tmp_path / "old_imod.mrc",
        data,
        ispg=1,
        voxel_size=(2.0, 2.0, 2.0),
        header={"origin": (100.0, 50.0, 0.0), "nversion": 0},
    )
    imod_stamped(path, True, 0)
    (url,) = http_upload(path, prefix="imod-origin")
    f = intake_mrc.open_mrc(url)
    assert [a["offset"] for a in f.axes] == pytest.approx([0.0, -5.0, -10.0])
    axes = rsciio.file_reader(url)[0]["axes"]
    assert [a["offset"] for a in axes] == pytest.approx([0.0, -5.0, -10.0])
