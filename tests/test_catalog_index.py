"""Header-indexed catalogs: entry metadata from every header and DE info file, checked
against mrcfile and the shared data READMEs, locally and over the S3 and HTTP test servers;
failures on single files recorded in their entries, not fatal, and never naming secrets."""

from __future__ import annotations

import shutil

import mrcfile
import numpy as np
import pytest
from conftest import MRCFILE_TESTS, RSCIIO, S3_KEY, S3_SECRET
from dewriter import write_acquisition
from mrcwriter import fei2_records, write_mrc

from intake_mrc import open_mrc
from intake_mrc.catalog import glob_catalog, list_files, plan_entries
from intake_mrc.catalog_index import fetch_heads, index_headers

FIELDS = ("shape", "dtype", "mode", "voxel_size_angstrom", "extended_header_type", "compression")
DE_FIELDS = ("scan_size", "frames_per_second", "acquisition_time", "camera", "detectors")


def indexed(urlpath, storage_options=None, **kwargs):
    urls, sizes = list_files(urlpath, storage_options)
    entries = plan_entries(urls, sizes)
    failed = index_headers(entries, storage_options, **kwargs)
    return {e.name: e for e in entries}, failed


def mrcfile_facts(path):
    """What mrcfile (the independent oracle) says of a file."""
    with mrcfile.open(str(path), permissive=True) as m:
        voxel = [float(v) for v in (m.voxel_size.x, m.voxel_size.y, m.voxel_size.z)]
        return {
            "shape": list(m.data.shape),
            "dtype": str(m.data.dtype.newbyteorder("=")),
            "mode": int(m.header.mode),
            "voxel": voxel,
            "exttyp": bytes(m.header.exttyp).decode().strip(),
        }


def check_against_mrcfile(entry, path):
    facts = mrcfile_facts(path)
    meta = entry.metadata
    assert "index_errors" not in meta, meta.get("index_errors")
    # A DE movie's shape is its scan's (checked against open_mrc below); the header's
    # frame stack is kept as stored_shape, and its pixel sizes come from the info file.
    de = "stored_shape" in meta
    assert meta["stored_shape" if de else "shape"] == facts["shape"]
    assert meta["dtype"] == facts["dtype"]
    assert meta["mode"] == facts["mode"]
    for ours, theirs in zip(meta["voxel_size_angstrom"], facts["voxel"], strict=True):
        if de:
            break
        # mrcfile reports 0 where the cell says nothing (DE's negative cells); we say None.
        if ours is None:
            assert theirs <= 0 or not np.isfinite(theirs)
        else:
            assert ours == pytest.approx(theirs, rel=1e-6)
    if facts["exttyp"] in ("FEI1", "FEI2"):
        assert meta["extended_header_type"] == facts["exttyp"]
    # And what open_mrc itself says of the file.
    f = open_mrc(str(path))
    assert meta["extended_header_type"] == f.extended_header_type
    assert meta["shape"] == list(f.shape)
    assert meta["voxel_size_angstrom"] == list(f.voxel_size)


def test_local_headers_match_mrcfile():
    entries, failed = indexed(str(RSCIIO))
    haadf = entries["HAADFscan"]
    check_against_mrcfile(haadf, RSCIIO / "HAADFscan.mrc")
    # The README: 5.679 nm pixels from the cell (908.661 Å / 16), FEI2 extended header.
    assert haadf.metadata["voxel_size_angstrom"][0] == pytest.approx(56.79, abs=0.01)
    assert haadf.metadata["extended_header_type"] == "FEI2"
    de = entries["de_20241021_00405"]
    check_against_mrcfile(de, RSCIIO / "20241021_00405_movie.mrc")
    assert failed == 0
    mrc_entries, failed = indexed(str(MRCFILE_TESTS))
    assert failed == 0
    by_file = {e.metadata["files"]["data"]: e for e in mrc_entries.values()}
    for name in ("EMD-3001.map", "EMD-3197.map"):
        check_against_mrcfile(by_file[name], MRCFILE_TESTS / name)
        # gzip (from a prefix) and bzip2 (a second, larger request) say the same.
        for packed, kind in (
            (name.lower().replace("-", "_") + ".gz", "gzip"),
            (name + ".bz2", "bz2"),
        ):
            meta = by_file[packed].metadata
            assert meta["compression"] == kind
            for key in FIELDS[:-1]:
                assert meta[key] == by_file[name].metadata[key]


def test_de_fields_from_the_info_file():
    entries, _ = indexed(str(RSCIIO))
    meta = entries["de_20241021_00405"].metadata
    # README: raster 8 (x) by 4 (y), 700 fps, Camera Model DESim; Timestamp 1729539410.
    assert meta["scan_size"] == [8, 4]
    assert meta["frames_per_second"] == 700
    assert meta["acquisition_time"] == "2024-10-21T19:36:50+00:00"
    assert meta["camera"] == "DESim"
    assert meta["detectors"] == {"virtual": ["Virt #0", "Virt #1"], "external": ["Ext #1"]}
    # What open_mrc says (uint16 movie, 32 frames of 4 x 8 on the 8 x 4 scan; README:
    # specimen pixel size 0.1 x 0.2 nm), with the header's frame stack beside it.
    assert meta["shape"] == [4, 8, 4, 8] and meta["dtype"] == "uint16"
    assert meta["stored_shape"] == [32, 4, 8]
    assert meta["voxel_size_angstrom"] == [1.0, 2.0, None]
    movie = open_mrc(str(RSCIIO / "20241021_00405_movie.mrc"))
    assert meta["shape"] == list(movie.shape)
    assert meta["voxel_size_angstrom"] == list(movie.voxel_size)
    assert entries["HAADFscan"].metadata.get("scan_size") is None  # not a DE entry


def test_headers_over_s3_and_http_match_local(s3_upload, s3_server, http_upload, tmp_path):
    files = [p for p in RSCIIO.iterdir() if p.name.startswith("20241021_00405")]
    files += [RSCIIO / "HAADFscan.mrc", MRCFILE_TESTS / "emd_3197.map.gz"]
    local = tmp_path / "copy"
    local.mkdir()
    for p in files:
        shutil.copy(p, local / p.name)
    want, _ = indexed(str(local))
    s3_upload(*files, prefix="indexed")
    options = s3_server["storage_options"]
    on_s3, failed = indexed("s3://intake-mrc-test/indexed/", options)
    assert failed == 0
    urls = http_upload(*files, prefix="indexed")
    on_http, failed = indexed(urls[0].rsplit("/", 1)[0] + "/")
    assert failed == 0
    for remote in (on_s3, on_http):
        assert sorted(remote) == sorted(want)
        for name, entry in want.items():
            for key in FIELDS + DE_FIELDS:
                assert remote[name].metadata.get(key) == entry.metadata.get(key), (name, key)
    assert on_s3["HAADFscan"].metadata["extended_header_type"] == "FEI2"


def test_glob_catalog_with_headers_reads_the_same(tmp_path):
    cat = glob_catalog(str(RSCIIO), headers=True)
    reader = cat["HAADFscan"]
    assert reader.metadata["shape"] == [16, 16]
    assert reader.read().shape == (16, 16)
    plain = glob_catalog(str(RSCIIO))
    assert "shape" not in plain["HAADFscan"].metadata


def test_failures_are_recorded_per_file(tmp_path):
    root = tmp_path / "mixed"
    write_acquisition(root, scan=(3, 2), frame=(4, 4))
    write_mrc(root / "good.mrc", np.zeros((2, 3, 4), np.float32))
    truncated = (root / "good.mrc").read_bytes()[:-5]
    (root / "truncated.mrc").write_bytes(truncated)
    (root / "garbage.mrc").write_bytes(b"\x00" * 2000)
    (root / "empty.mrc").write_bytes(b"")
    (root / "20250102_00007_movie.mrc").write_bytes((root / "good.mrc").read_bytes())
    (root / "20250102_00007_info.txt").write_bytes(b"\x00\x01binary")
    fei = fei2_records(2, pixel_size_m=2e-10)
    write_mrc(root / "fei.mrc", np.zeros((2, 3, 4), np.int16), extended=fei, exttyp=b"FEI2")
    entries, failed = indexed(str(root))
    assert failed == 4
    assert entries["good"].metadata["shape"] == [2, 3, 4]
    assert entries["fei"].metadata["voxel_size_angstrom"][:2] == pytest.approx([2.0, 2.0])
    assert "truncated.mrc" in entries["truncated"].metadata["index_errors"]["data"]
    assert "shorter" in entries["truncated"].metadata["index_errors"]["data"] or (
        "truncated" in entries["truncated"].metadata["index_errors"]["data"]
    )
    assert "MODE" in entries["garbage"].metadata["index_errors"]["data"] or (
        "NX" in entries["garbage"].metadata["index_errors"]["data"]
    )
    assert "1024-byte" in entries["empty"].metadata["index_errors"]["data"]
    bad_info = entries["de_20250102_00007"].metadata
    assert set(bad_info["index_errors"]) == {"info"}
    assert "NUL" in bad_info["index_errors"]["info"]
    assert bad_info["shape"] == [2, 3, 4]  # the movie's header is still indexed
    good_de = entries["de_20250101_00001"].metadata
    assert good_de["scan_size"] == [3, 2] and good_de["frames_per_second"] == 1000
    assert good_de["camera"] == "TestCam" and "index_errors" not in good_de


def test_heads_from_a_filesystem_without_async_match_local(tmp_path):
    # memory:// is a synchronous fsspec filesystem: read on threads, like local files.
    import fsspec

    data = [bytes(range(i, i + 200)) for i in range(3)]
    local = [tmp_path / f"{i}.mrc" for i in range(3)]
    memory = [f"memory://{tmp_path.name}/{i}.mrc" for i in range(3)]
    fs = fsspec.filesystem("memory")
    try:
        for raw, path, url in zip(data, local, memory, strict=True):
            path.write_bytes(raw)
            fs.pipe_file(url, raw)
        ends = [10, 300, 50, 10]
        from_disk = fetch_heads([*map(str, local), str(tmp_path / "missing.mrc")], ends)
        from_memory = fetch_heads([*memory, f"memory://{tmp_path.name}/missing.mrc"], ends)
    finally:
        fs.rm(f"memory://{tmp_path.name}", recursive=True)
    assert from_disk[:3] == from_memory[:3] == [data[0][:10], data[1], data[2][:50]]
    assert isinstance(from_disk[3], FileNotFoundError)
    assert isinstance(from_memory[3], FileNotFoundError)


def test_remote_failures_recorded_without_credentials(http_upload, http_server):
    # Listing from an info file naming files that the server does not have; the URL
    # carries a user and password, which no recorded error may show.
    urls = http_upload(RSCIIO / "20241021_00405_info.txt", prefix="noimages", listing=False)
    info_url = urls[0].replace("http://", f"http://user:{S3_SECRET.replace('/', '')}@")
    entries, failed = indexed(info_url)
    assert failed == 1
    errors = entries["de_20241021_00405"].metadata["index_errors"]
    assert set(errors) == {"data"}
    assert "20241021_00405_movie.mrc" in errors["data"] and "no such file" in errors["data"]
    # (The entry's own URL and folder keep what the user gave: catalog.py's business.)
    assert S3_SECRET.replace("/", "") not in errors["data"] and "user:" not in errors["data"]
    assert entries["de_20241021_00405"].metadata["scan_size"] == [8, 4]


def test_secrets_never_in_s3_errors(s3_upload, s3_server):
    s3_upload(RSCIIO / "HAADFscan.mrc", prefix="idx-secret")
    options = dict(s3_server["storage_options"])
    urls, sizes = list_files("s3://intake-mrc-test/idx-secret/", options)
    entries = plan_entries(urls + ["s3://intake-mrc-test/idx-secret/gone.mrc"], sizes)
    assert index_headers(entries, options) == 1
    text = repr([e.metadata for e in entries])
    assert "gone.mrc" in text and S3_KEY not in text and S3_SECRET not in text


def test_cli_headers_into_an_index(tmp_path, capsys):
    from intake_mrc.catalog_sqlite import open_index
    from intake_mrc.cli import main as cli_main

    out = tmp_path / "shared.sqlite"
    assert cli_main(["catalog", str(RSCIIO), "-o", str(out), "--headers"]) == 0
    captured = capsys.readouterr()
    assert "wrote 2 entries" in captured.out
    assert captured.err == ""  # no progress bar drawn when stderr is not a terminal
    cat = open_index(str(out))
    assert list(cat.search(shape=[16, 16], extended_header_type="FEI2")) == ["HAADFscan"]
    assert list(cat.search(camera="DESim", scan_x=8, scan_y=4)) == ["de_20241021_00405"]
    assert cat["HAADFscan"].metadata["voxel_size_angstrom"][0] == pytest.approx(56.79, abs=0.01)


def test_bounded_concurrency_over_one_client(tmp_path):
    """At most ``concurrency`` requests in flight, over one pooled client (connections are
    reused: no more client ports than requests in flight)."""
    import asyncio

    from aiohttp import web
    from conftest import free_port
    from loopserver import LoopbackServer

    root = tmp_path / "many"
    root.mkdir()
    for i in range(30):
        write_mrc(root / f"s{i:02d}.mrc", np.zeros((1, 2, 2), np.float32))
    seen = {"now": 0, "max": 0, "ports": set(), "requests": 0}

    def app() -> web.Application:
        @web.middleware
        async def count(request, handler):
            seen["now"] += 1
            seen["requests"] += 1
            seen["max"] = max(seen["max"], seen["now"])
            seen["ports"].add(request.transport.get_extra_info("peername")[1])
            try:
                await asyncio.sleep(0.02)  # latency, so that requests overlap
                return await handler(request)
            finally:
                seen["now"] -= 1

        application = web.Application(middlewares=[count])
        application.router.add_static("/", str(root))
        return application

    server = LoopbackServer(app, free_port()).start()
    try:
        urls = [f"{server.url}/s{i:02d}.mrc" for i in range(30)]
        entries = plan_entries(urls)
        assert index_headers(entries, concurrency=4) == 0
    finally:
        server.stop()
    assert all(e.metadata["shape"][-2:] == [2, 2] for e in entries)
    assert seen["requests"] == 30
    assert 2 <= seen["max"] <= 4
    assert len(seen["ports"]) <= 4


def test_de_shapes_are_what_open_mrc_says(tmp_path):
    # Repeats, an ROI, a custom scan (grid from its CSV: not read by the index) and a movie
    # whose frames do not fill its scan (open_mrc refuses it: an index error, not a shape).
    root = tmp_path / "de"
    write_acquisition(root, "20250101_00001", scan=(3, 2), frame=(4, 4), repeats=2)
    write_acquisition(root, "20250101_00002", scan=(6, 5), roi=(2, 3), frame=(4, 4))
    coordinates = np.array([[0, 0], [1, 0], [0, 1], [1, 1], [0, 0]])
    write_acquisition(
        root, "20250101_00003", scan=(2, 2), frame=(4, 4), scan_type="Random",
        coordinates=coordinates,
    )
    write_acquisition(root, "20250101_00004", scan=(3, 2), frame=(4, 4), n_frames=5)
    entries, failed = indexed(str(root))
    assert failed == 1
    for dataset in ("20250101_00001", "20250101_00002"):
        meta = entries[f"de_{dataset}"].metadata
        path = root / f"{dataset}_movie.mrc"
        movie = open_mrc(str(path))
        assert meta["shape"] == list(movie.shape), dataset
        assert meta["voxel_size_angstrom"] == list(movie.voxel_size), dataset
        assert meta["stored_shape"] == mrcfile_facts(path)["shape"], dataset
    assert entries["de_20250101_00001"].metadata["shape"] == [2, 2, 3, 4, 4]
    custom = entries["de_20250101_00003"].metadata
    assert custom["shape"] is None and custom["stored_shape"] == [5, 4, 4]
    short = entries["de_20250101_00004"].metadata
    assert "5 frames" in short["index_errors"]["info"]
    assert short["shape"] == [5, 4, 4]  # the header's, as nothing better is known


@pytest.mark.parametrize("navigation_shape", [[-3, -2], [2.0, 3.0], [True, 6]])
def test_de_hostile_navigation_shape_is_an_index_error(tmp_path, navigation_shape):
    # A catalog's navigation_shape is checked as open_mrc checks it: a shape whose product
    # fits the frames but holds negative, float or bool sizes is an error, not a shape.
    root = tmp_path / "de"
    write_acquisition(root, "20250101_00001", scan=(3, 2), frame=(4, 4))
    urls, sizes = list_files(str(root))
    entries = plan_entries(urls, sizes)
    for entry in entries:
        entry.kwargs["navigation_shape"] = navigation_shape
    assert index_headers(entries) == 1
    meta = entries[0].metadata
    assert "navigation_shape" in meta["index_errors"]["info"]
    assert meta["shape"] == [6, 4, 4]  # the header's, as nothing better is known
    with pytest.raises(Exception, match="navigation_shape"):
        open_mrc(entries[0].url, **entries[0].kwargs)


@pytest.mark.parametrize(
    "values",
    [
        {"Scan - Size X": 10**30, "Scan - Size Y": 10**30},
        {"Scan - Size X": -3, "Scan - Size Y": -2},
        {"Scan - Size X": 3, "Scan - Size Y": 0},
        {"Specimen Pixel Size X (nanometers)": "nan", "Specimen Pixel Size Y (nanometers)": "inf"},
        {"Specimen Pixel Size X (nanometers)": -1, "Specimen Pixel Size Y (nanometers)": 0},
    ],
)
@pytest.mark.parametrize("partial_scan", ["error", "pad"])
def test_de_hostile_info_values_are_not_fatal(tmp_path, values, partial_scan):
    # Huge, negative or zero scan sizes and NaN/negative pixel sizes in an info file: the
    # index records an error or a shape open_mrc agrees with, never crashes or plans a grid.
    root = tmp_path / "de"
    write_acquisition(root, "20250101_00001", scan=(3, 2), frame=(4, 4))
    info = root / "20250101_00001_info.txt"
    lines = info.read_text().splitlines()
    keys = {line.split("=", 1)[0].strip() for line in lines if "=" in line}
    assert set(values) <= keys
    lines = [
        f"{line.split('=', 1)[0].strip()} = {values[line.split('=', 1)[0].strip()]}"
        if "=" in line and line.split("=", 1)[0].strip() in values
        else line
        for line in lines
    ]
    info.write_text("\n".join(lines) + "\n")
    urls, sizes = list_files(str(root))
    entries = plan_entries(urls, sizes)
    for entry in entries:
        entry.kwargs["partial_scan"] = partial_scan
    index_headers(entries)
    meta = entries[0].metadata
    try:
        movie = open_mrc(entries[0].url, **entries[0].kwargs)
    except Exception:  # noqa: BLE001 - open_mrc refuses: the index says why
        assert "info" in meta["index_errors"]
    else:
        assert meta["shape"] == list(movie.shape)
        assert meta["voxel_size_angstrom"] == list(movie.voxel_size)
        for v in meta["voxel_size_angstrom"]:
            assert v is None or (np.isfinite(v) and v > 0)
