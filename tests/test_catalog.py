"""intake front ends: both intake APIs, both YAML forms, the catalog glob on disk, on the S3
server and by info-file listing over HTTP, written catalogs read back, the CLI, the demo."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import time
from pathlib import Path

import intake
import numpy as np
import pytest
import yaml
from conftest import RSCIIO, S3_KEY, S3_SECRET
from dewriter import write_acquisition
from mrcwriter import write_mrc

from intake_mrc.catalog import (
    catalog_yaml,
    glob_catalog,
    list_files,
    plan_entries,
    scrub_secrets,
    write_catalog,
)
from intake_mrc.cli import main as cli_main
from intake_mrc.directelectron.naming import group_acquisitions
from intake_mrc.readers import (
    MRC,
    MRCDaskReader,
    MRCFileReader,
    MRCNumpyReader,
    MRCXarrayReader,
)

SHARED_SET = sorted(RSCIIO.glob("20241021_00405_*")) + [RSCIIO / "HAADFscan.mrc"]


@pytest.fixture
def folder(tmp_path):
    """Two DE acquisitions (one with a suffix), a plain stack, and a non-MRC file."""
    root = tmp_path / "session"
    write_acquisition(root, scan=(5, 3), frame=(6, 4))
    write_acquisition(
        root, suffix="B", scan=(2, 2), frame=(3, 3), virtual_names=("Virt #0",), external_names=()
    )
    (root / "sub").mkdir()
    write_mrc(root / "sub" / "stack.mrc", np.arange(24, dtype=np.float32).reshape(2, 3, 4))
    (root / "notes.txt").write_text("not data")
    return root


def check_entries(cat, names=("de_20250101_00001", "de_20250101_00001_B", "stack")):
    assert sorted(cat) == sorted(names)
    first = cat["de_20250101_00001"]
    arr = first.to_dask()  # both APIs: v2 readers and legacy sources define it
    assert arr.shape == (3, 5, 4, 6)
    assert int(arr[2, 4, 0, 0].compute()) == 14
    suffixed = cat["de_20250101_00001_B"].to_dask()
    assert suffixed.shape == (2, 2, 3, 3)
    assert cat["stack"].to_dask().sum().compute() == sum(range(24))
    assert np.asarray(cat["stack"].read()).shape == (2, 3, 4)


def test_intake2_readers_and_datatype_recognition():
    url = str(RSCIIO / "HAADFscan.mrc")
    assert MRC in intake.readers.datatypes.recommend(url=url)
    data = MRC(url=url)
    dask_arr = MRCDaskReader(data).read()
    assert dask_arr.shape == (16, 16) and dask_arr.max().compute() == 9399
    assert MRCNumpyReader(data).read().min() == 3923
    xarr = MRCXarrayReader(data).read()
    assert xarr.dims == ("y", "x") and xarr["x"].attrs["units"] == "nm"
    assert float(xarr["x"][1]) == pytest.approx(5.679, abs=1e-3)
    discovered = MRCNumpyReader(data).discover()
    assert discovered.shape == (16, 16) and hasattr(discovered, "dask")  # nothing read
    opened = MRCFileReader(data).read()
    assert opened.extended_header_type == "FEI2" and opened.shape == (16, 16)


def test_discover_is_header_only(http_upload, http_server):
    (url,) = http_upload(RSCIIO / "HAADFscan.mrc", prefix="discover")
    http_server.requests.clear()
    lazy = MRCNumpyReader(MRC(url=url)).discover()
    # The 65 KiB first read and the rest of the 888 KiB FEI2 extended header; no pixels.
    assert len(http_server.requests) == 2
    assert http_server.bytes_requested() < 1024 + 909312 + 65 * 1024
    assert lazy.shape == (16, 16)


def test_legacy_driver_registered():
    source = intake.open_mrc(str(RSCIIO / "20241021_00405_movie.mrc"), chunks=(2, 4))
    info = source.discover()
    assert info["shape"] == (4, 8, 4, 8) and source.npartitions == 4
    assert source.read_partition(3).shape == (2, 4, 4, 8)
    assert source.to_dask().chunks[0] == (2, 2)
    assert source.read()[3, 7, 0, 0] == 31
    assert source.metadata["direct_electron"]["Dataset Name"] == "20241021_00405"
    assert len(list(source.read_chunked())) == 4


@pytest.mark.parametrize("form", ["v2", "legacy"])
def test_glob_on_disk_written_and_read_back(folder, tmp_path, form):
    path = tmp_path / f"cat-{form}.yaml"
    assert write_catalog(str(folder), str(path), form=form) == 3
    text = path.read_text()
    assert ("version: 2" in text) == (form == "v2")
    if form == "legacy":
        assert 'driver: "intake_mrc.legacy.MRCSource"' in text
    cat = intake.open_catalog(str(path))
    check_entries(cat)
    meta = cat["de_20250101_00001"].metadata
    assert meta["date"] == "2025-01-01" and meta["acquisition_number"] == 1
    assert sorted(meta["files"]["virtual"]) == ["Virt #0", "Virt #1"]
    assert all("_B_" not in v for v in meta["files"]["virtual"].values())


@pytest.mark.parametrize("form", ["v2", "legacy"])
def test_relative_catalog_moves_with_its_data(folder, tmp_path, form):
    path = folder / "catalogs" / f"session-{form}.yaml"
    assert write_catalog(str(folder), str(path), form=form, relative=True) == 3
    assert str(folder) not in path.read_text()
    moved = tmp_path / "moved"
    shutil.move(str(folder), str(moved))
    check_entries(intake.open_catalog(str(moved / "catalogs" / path.name)))


def test_glob_catalog_object_and_legacy_glob_driver(folder):
    check_entries(glob_catalog(str(folder)))
    check_entries(intake.open_mrc_glob(str(folder)))
    check_entries(glob_catalog(str(folder / "**" / "*")))


def test_glob_on_s3_one_listing_no_reads(folder, s3_upload, s3_server, s3fs_root, tmp_path):
    files = [p for p in folder.rglob("*") if p.is_file()]
    for p in files:
        s3_upload(p, prefix="glob/" + str(p.parent.relative_to(folder)).replace(".", "top"))
    options = s3_server["storage_options"]
    cat = glob_catalog("s3://intake-mrc-test/glob/", storage_options=options)
    check_entries(cat)
    path = tmp_path / "s3.yaml"
    write_catalog("s3://intake-mrc-test/glob/", str(path), options)
    text = path.read_text()
    assert S3_KEY not in text and S3_SECRET not in text
    assert s3_server["endpoint"] in text
    # Read back with credentials from the environment only (set by the S3 fixture).
    check_entries(intake.open_catalog(str(path)))


def test_glob_by_info_file_over_http(http_upload, tmp_path):
    urls = http_upload(*SHARED_SET, prefix="byinfo", listing=False)
    info_url = next(u for u in urls if u.endswith("_info.txt"))
    listed, _ = list_files(info_url)
    # The info file names DE-Server's original files ("#"); upstream renamed the copies, so
    # the listing names what the info file says, which is all a server without listing has.
    assert any("Virt%20%230_total_sum.mrc" in u for u in listed)
    assert any(u.endswith("20241021_00405_movie.mrc") for u in listed)
    (entry,) = plan_entries(listed)
    assert entry.name == "de_20241021_00405"
    cat = glob_catalog(info_url)
    arr = cat["de_20241021_00405"].read()
    assert arr.shape == (4, 8, 4, 8) and int(arr[3, 7, 0, 0].compute()) == 31


def test_glob_on_http_with_listing(http_upload):
    urls = http_upload(*SHARED_SET, prefix="listed")
    folder_url = urls[0].rsplit("/", 1)[0] + "/"
    cat = glob_catalog(folder_url)
    assert sorted(cat) == ["HAADFscan", "de_20241021_00405"]
    assert cat["de_20241021_00405"].read().shape == (4, 8, 4, 8)


def test_entry_arguments_settable_in_yaml(tmp_path):
    doc = {
        "sources": {
            "velox": {
                "driver": "intake_mrc.legacy.MRCSource",
                "args": {
                    "urlpath": str(RSCIIO / "20241021_00405_movie.mrc"),
                    "metadata_file": None,
                    "navigation_shape": [4, 8],
                    "chunks": [2, -1],
                    "mmap_mode": None,
                    "virtual_images": [],
                },
            }
        }
    }
    path = tmp_path / "args.yaml"
    path.write_text(yaml.safe_dump(doc))
    source = intake.open_catalog(str(path))["velox"]
    arr = source.to_dask()
    assert arr.shape == (8, 4, 4, 8) and arr.chunks[0] == (2, 2, 2, 2)


def test_names_are_stable_identifiers():
    names = [
        "a/20250101_00001_movie.mrc",
        "b/20250101_00001_movie.mrc",
        "a/1st map.mrc",
        "a/x-y.map.gz",
        "c/x-y.map.gz",
    ]
    entries = plan_entries(names)
    got = sorted(e.name for e in entries)
    assert got == sorted(
        ["a_de_20250101_00001", "b_de_20250101_00001", "mrc_1st_map", "a_x_y", "c_x_y"]
    )
    assert all(n.isidentifier() for n in got)
    # Stable: the same names whatever the listing order.
    assert sorted(e.name for e in plan_entries(list(reversed(names)))) == got


def test_scrub_secrets():
    options = {
        "key": "K",
        "secret": "S",
        "token": "T",
        "anon": False,
        "client_kwargs": {"endpoint_url": "http://x", "aws_session_token": "Z"},
        "headers": {"Authorization": "Bearer z", "Accept": "x"},
    }
    assert scrub_secrets(options) == {
        "anon": False,
        "client_kwargs": {"endpoint_url": "http://x"},
        "headers": {"Accept": "x"},
    }
    text = catalog_yaml(plan_entries(["x/a.mrc"]), options)
    for secret in ("K", "S", "Bearer", "Z"):
        assert f": {secret}" not in text and secret + "\n" not in text


def test_hundred_thousand_names_group_in_seconds():
    names = []
    for i in range(20_000):
        stem = f"bucket/run/20250101_{i:05d}"
        names += [
            f"{stem}_movie.mrc",
            f"{stem}_info.txt",
            f"{stem}_0_Virt #0_sum.mrc",
            f"{stem}_ext1_Ext #1.mrc",
            f"{stem}_final.mrc",
        ]
    start = time.perf_counter()
    groups, ungrouped = group_acquisitions(names)
    entries = plan_entries(names)
    elapsed = time.perf_counter() - start
    assert len(groups) == 20_000 and not ungrouped and len(entries) == 20_000
    assert elapsed < 30  # generous bound for CI; the benchmark measures the real number


def test_cli_info_catalog_and_errors(folder, tmp_path, capsys):
    assert cli_main(["info", str(RSCIIO / "20241021_00405_movie.mrc")]) == 0
    out = capsys.readouterr().out
    assert "(4, 8, 4, 8)" in out and "DESim" in out and "Virt 0" in out
    assert cli_main(["info", "--json", str(RSCIIO / "HAADFscan.mrc")]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["extended_header"]["type"] == "FEI2" and info["shape"] == [16, 16]
    assert info["extended_header"]["first_record"]["Application"] == "Velox"
    out_path = tmp_path / "catalogs" / "cli.yaml"  # the folder does not exist yet
    assert cli_main(["catalog", str(folder), "-o", str(out_path)]) == 0
    assert "wrote 3 entries" in capsys.readouterr().out
    check_entries(intake.open_catalog(str(out_path)))
    assert cli_main(["info", str(tmp_path / "missing.mrc")]) == 1
    err = capsys.readouterr().err
    assert err.startswith("intake-mrc: error:") and "Traceback" not in err
    assert len(err.strip().splitlines()) == 1
    png = tmp_path / "image.mrc"
    shutil.copy(RSCIIO.parent / "mrcfile_tests" / "emd_3197.png", png)
    assert cli_main(["info", str(png)]) == 1
    assert "not an MRC file" in capsys.readouterr().err


def test_cli_never_prints_credentials(s3_upload, s3_server, tmp_path):
    (url,) = s3_upload(RSCIIO / "HAADFscan.mrc", prefix="cli-secret")
    options = json.dumps(s3_server["storage_options"])
    for args in (
        ["info", url, "--storage-options", options],
        ["info", "--json", url, "--storage-options", options],
        [
            "catalog",
            url.rsplit("/", 1)[0],
            "-o",
            str(tmp_path / "c.yaml"),
            "--storage-options",
            options,
        ],
        ["info", url.replace("HAADF", "nothere"), "--storage-options", options],
    ):
        run = subprocess.run(
            [sys.executable, "-m", "intake_mrc.cli", *args],
            capture_output=True,
            text=True,
            timeout=120,
        )
        for text in (
            run.stdout,
            run.stderr,
            (tmp_path / "c.yaml").read_text() if (tmp_path / "c.yaml").exists() else "",
        ):
            assert S3_KEY not in text and S3_SECRET not in text


def test_demo_end_to_end(tmp_path, capsys):
    from intake_mrc.demo import run

    results = run(tmp_path / "out")
    out = capsys.readouterr().out
    assert (tmp_path / "out" / "catalog.yaml").exists()
    assert results["de_20261126_00042"]["bright_field_max_difference"] == 0
    assert results["tomogram_bin4"]["shape"] == (32, 32, 32)
    picture = results["de_20261126_00042"]["preview"]  # the demo writes and names a preview
    assert picture.endswith(".png") and open(picture, "rb").read(4) == b"\x89PNG"
    assert f"preview: {picture}" in out
    assert "stopped the S3 server" in out
    # catalogs/remote-samples.yaml, default root, against the demo's own loopback server
    assert results["remote_samples"] == {
        "velox_haadf": (16, 16),
        "de_20241021_00405": (4, 8, 4, 8),
        "emd_3197": (20, 20, 20),
        "emd_3001_gzip": (25, 43, 73),
    }
    assert "serving the sample files of tests/data from s3://intake-mrc-samples/" in out
    remote = intake.open_catalog(str(CATALOGS / "remote-samples.yaml"))
    assert remote.user_parameters["root"].default == "s3://intake-mrc-samples"
    text = (tmp_path / "out" / "catalog.yaml").read_text()
    assert "demo-secret-key" not in text and "demo-access-key" not in text


CATALOGS = Path(__file__).resolve().parents[1] / "catalogs"


def test_shipped_catalogs_open_against_shared_data(monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)  # templates must not depend on the working directory
    cat = intake.open_catalog(str(CATALOGS / "shared-data.yaml"))
    assert sorted(cat) == ["de_20241021_00405", "emd_3001_gzip", "emd_3197", "velox_haadf"]
    assert int(cat["de_20241021_00405"].read()[3, 7, 0, 0].compute()) == 31
    assert cat["emd_3197"].read().dims == ("z", "y", "x")
    assert cat["emd_3001_gzip"].read().shape == (25, 43, 73)
    legacy = intake.open_catalog(str(CATALOGS / "shared-data-legacy.yaml"))
    assert legacy["velox_haadf"].read().max() == 9399
    assert legacy["de_20241021_00405"].to_dask().chunks[0] == (2, 2)
    assert sorted(legacy["shared_folder_glob"]) == ["HAADFscan", "de_20241021_00405"]


def test_shipped_catalogs_point_at_s3_and_http(s3_upload, s3_server, http_upload):
    for sub in ("rsciio_mrc", "mrcfile_tests"):
        files = [p for p in (RSCIIO.parent / sub).iterdir() if not p.name.endswith(".md")]
        s3_upload(*files, prefix=f"samples/{sub}")
        http_upload(*files, prefix=f"samples/{sub}")
    options = s3_server["storage_options"]
    cat = intake.open_catalog(str(CATALOGS / "remote-samples.yaml"))
    remote = cat(root="s3://intake-mrc-test/samples", options=options)
    assert int(remote["de_20241021_00405"].read()[2, 1, 0, 0].compute()) == 17
    assert remote["velox_haadf"].read().shape == (16, 16)
    http_url = http_upload(RSCIIO / "HAADFscan.mrc", prefix="samples/rsciio_mrc")[0]
    root = http_url.rsplit("/", 2)[0]
    over_http = cat(root=root)
    assert over_http["de_20241021_00405"].read().shape == (4, 8, 4, 8)
    legacy = intake.open_catalog(str(CATALOGS / "shared-data-legacy.yaml"))
    assert legacy.velox_haadf(root=root).read().shape == (16, 16)


def test_names_differing_in_punctuation_say_which_is_which():
    # Files in one folder whose names differ only in punctuation: the names spell the
    # punctuation out, with no hash and no folder of this machine in them.
    names = [
        "/data/run/img-2d.mrc",
        "/data/run/img_2d.mrc",
        "/data/run/a b.mrc",
        "/data/run/a_b.mrc",
        "/data/run/EMD-3001.map",
        "/data/run/EMD-3001.map.bz2",
    ]
    got = {e.url.rsplit("/", 1)[-1]: e.name for e in plan_entries(names)}
    assert got == {
        "img-2d.mrc": "img_dash_2d_dot_mrc",
        "img_2d.mrc": "img_2d_dot_mrc",
        "a b.mrc": "a_space_b_dot_mrc",
        "a_b.mrc": "a_b_dot_mrc",
        "EMD-3001.map": "EMD_3001_map",
        "EMD-3001.map.bz2": "EMD_3001_map_bz2",
    }
    assert sorted(e.name for e in plan_entries(list(reversed(names)))) == sorted(got.values())
