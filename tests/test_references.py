"""Kerchunk references: they describe the data exactly (read back without intake_mrc, in a
separate process, local, HTTP and S3), chunk whole frames, and refuse what byte ranges
cannot describe."""

from __future__ import annotations

import io
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from conftest import MRCFILE_TESTS, RSCIIO, S3_KEY, S3_SECRET
from dewriter import write_acquisition
from mrcwriter import fei2_records, write_mrc, write_raw_mode

import intake_mrc
from intake_mrc.cli import main as cli_main
from intake_mrc.references import NotReferenceableError, chunk_options, to_references

READER = Path(__file__).with_name("refs_reader.py")
DE_MOVIE = RSCIIO / "20241021_00405_movie.mrc"


def _written_files(folder: Path) -> dict[str, tuple[Path, dict]]:
    """Files of every describable kind: name -> (path, open_mrc keywords)."""
    rng = np.random.default_rng(10)
    files = {
        "big_endian_f4": write_mrc(
            folder / "be.mrc",
            rng.normal(size=(3, 5, 7)).astype(">f4"),
            voxel_size=(2.0, 3.0, 4.0),
        ),
        "big_endian_i2_fei2": write_mrc(
            folder / "be_fei.mrc",
            rng.integers(-3000, 3000, (2, 4, 6)).astype(">i2"),
            extended=fei2_records(2, byte_order=">"),
            exttyp=b"FEI2",
        ),
        "int8": write_mrc(folder / "i1.mrc", rng.integers(-128, 127, (2, 3, 5)).astype("i1")),
        "uint8": write_mrc(folder / "u1.mrc", rng.integers(-128, 127, (2, 3, 5)).astype("i1")),
        "float16": write_mrc(folder / "f2.mrc", rng.normal(size=(4, 3, 2)).astype("f2")),
        "complex64": write_mrc(folder / "c8.mrc", (rng.normal(size=(2, 3, 4)) + 1j).astype("c8")),
        # scan (x, y) = (3, 2) with 5 x 4 frames: scan and frame shapes differ.
        "scan_reshape": write_mrc(
            folder / "stack.mrc", np.arange(6 * 4 * 5, dtype="u2").reshape(6, 4, 5)
        ),
    }
    kwargs = {name: {} for name in files}
    kwargs["scan_reshape"] = {"navigation_shape": (3, 2)}
    kwargs["uint8"] = {"signed_bytes": "unsigned"}
    return {name: (path, kwargs[name]) for name, path in files.items()}


def _custom_scan_without_holes(folder: Path) -> Path:
    # Every position of a 3 x 2 grid visited once, in a shuffled order.
    coords = np.array([(2, 1), (0, 0), (1, 1), (0, 1), (2, 0), (1, 0)])
    acq = write_acquisition(folder, scan=(3, 2), scan_type="Random", coordinates=coords)
    return acq["paths"]["movie"]


def _run_reader(cases: list[dict], folder: Path) -> str:
    path = folder / "cases.json"
    path.write_text(json.dumps(cases))
    # cwd outside the repository: nothing of it on the reader's path but the editable install,
    # which the reader blocks.
    done = subprocess.run(
        [sys.executable, str(READER), str(path)],
        cwd=folder,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


def _case(f, refs: dict, folder: Path, name: str, **extra) -> dict:
    refs_path = folder / f"{name}.json"
    refs_path.write_text(json.dumps(refs))
    expected = folder / f"{name}.npy"
    np.save(expected, f.read())
    coords = {
        axis_name: (axis["offset"] + axis["scale"] * np.arange(axis["size"])).tolist()
        for axis_name, axis in zip(
            json.loads(refs["refs"].get("data/.zattrs", "{}")).get("_ARRAY_DIMENSIONS", []),
            f.axes,
            strict=False,
        )
    }
    return {
        "refs": str(refs_path),
        "expected": str(expected),
        "dims": [a["name"] for a in f.axes],
        "coords": coords,
        **extra,
    }


def test_local_references_read_back_exactly_without_intake_mrc(tmp_path):
    cases = []
    sources = {
        "de_movie": (DE_MOVIE, {}),
        "haadf_fei2": (RSCIIO / "HAADFscan.mrc", {}),
        "emd_3197": (MRCFILE_TESTS / "EMD-3197.map", {}),
        "emd_3001": (MRCFILE_TESTS / "EMD-3001.map", {}),
        "virtual_image": (RSCIIO / "20241021_00405_0_Virt 0_sum.mrc", {}),
        "custom_scan": (_custom_scan_without_holes(tmp_path / "custom"), {}),
        **_written_files(tmp_path),
    }
    for name, (path, kwargs) in sources.items():
        f = intake_mrc.open_mrc(path, **kwargs)
        for zarr_format in (2, 3):
            refs = to_references(f, zarr_format=zarr_format)
            cases.append(
                _case(f, refs, tmp_path, f"{name}_v{zarr_format}", zarr_format=zarr_format)
            )
    # One frame per chunk, and a middle size, on the 4-D movie.
    f = intake_mrc.open_mrc(DE_MOVIE)
    for k in (1, 4):
        cases.append(_case(f, to_references(f, k), tmp_path, f"de_movie_{k}"))
    out = _run_reader(cases, tmp_path)
    assert f"checked {len(cases)}" in out


def test_references_describe_dtype_shape_chunks_and_attributes():
    f = intake_mrc.open_mrc(DE_MOVIE)
    refs = to_references(f, 1)["refs"]
    zarray = json.loads(refs["data/.zarray"])
    assert zarray["shape"] == [4, 8, 4, 8]  # scan (y, x) + frame (ky, kx)
    assert zarray["chunks"] == [1, 1, 4, 8]
    assert zarray["dtype"] == "<u2" and zarray["fill_value"] is None
    attrs = json.loads(refs["data/.zattrs"])
    assert attrs["_ARRAY_DIMENSIONS"] == ["y", "x", "ky", "kx"]
    assert attrs["units"] == ["nm", "nm", "mrad", "mrad"]
    assert [a["scale"] for a in attrs["axes"]] == [a["scale"] for a in f.axes]
    assert len(attrs["voxel_size_angstrom"]) == 3
    # Frame (y=2, x=3) is frame 19: 64 bytes each after the 1024-byte header.
    url, offset, length = refs["data/2.3.0.0"]
    assert url == "file://" + str(DE_MOVIE) and (offset, length) == (1024 + 19 * 64, 64)
    assert sum(isinstance(v, list) for v in refs.values()) == 32


def test_big_endian_dtype_and_v3_endian(tmp_path):
    path = write_mrc(tmp_path / "be.mrc", np.ones((2, 3, 4), dtype=">f4"))
    f = intake_mrc.open_mrc(path)
    assert json.loads(to_references(f)["refs"]["data/.zarray"])["dtype"] == ">f4"
    v3 = json.loads(to_references(f, zarr_format=3)["refs"]["data/zarr.json"])
    assert v3["codecs"] == [{"name": "bytes", "configuration": {"endian": "big"}}]
    assert v3["data_type"] == "float32" and v3["dimension_names"] == ["z", "y", "x"]


def test_default_chunks_group_small_frames_and_keep_large_frames_whole(monkeypatch):
    import intake_mrc.references as references

    f = intake_mrc.open_mrc(DE_MOVIE)  # 32 frames of 64 bytes: all in one chunk
    refs = to_references(f)["refs"]
    assert json.loads(refs["data/.zarray"])["chunks"] == [4, 8, 4, 8]
    monkeypatch.setattr(references, "MAX_CHUNK_NBYTES", 64 * 8)  # 8 frames fit
    refs = to_references(f)["refs"]
    assert json.loads(refs["data/.zarray"])["chunks"] == [1, 8, 4, 8]
    assert refs["data/1.0.0.0"][1:] == [1024 + 8 * 64, 8 * 64]
    monkeypatch.setattr(references, "MAX_CHUNK_NBYTES", 10)  # a frame is larger: one
    refs = to_references(f)["refs"]
    assert json.loads(refs["data/.zarray"])["chunks"] == [1, 1, 4, 8]


def test_chunk_options_tile_in_contiguous_full_blocks():
    assert chunk_options((4, 6)) == {
        1: (1, 1),
        2: (1, 2),
        3: (1, 3),
        6: (1, 6),
        12: (2, 6),
        24: (4, 6),
    }
    f = intake_mrc.open_mrc(MRCFILE_TESTS / "EMD-3197.map")  # 20 sections
    with pytest.raises(ValueError, match=r"possible: \[.*5.*\]"):
        to_references(f, 3)


@pytest.mark.parametrize(
    ("name", "reason"),
    [
        ("emd_3197.map.gz", "compressed"),
        ("EMD-3197.map.bz2", "compressed"),
    ],
)
def test_compressed_maps_are_refused(name, reason):
    f = intake_mrc.open_mrc(MRCFILE_TESTS / name)
    with pytest.raises(NotReferenceableError, match=reason):
        f.to_references()
    with pytest.raises(NotReferenceableError, match=reason):  # a URL given changes nothing
        f.to_references(url="https://example.org/" + name)


@pytest.mark.parametrize(("mode", "reason"), [(3, "complex int16"), (101, "4-bit")])
def test_modes_needing_decoding_are_refused(tmp_path, mode, reason):
    payload = bytes(2 * 4 * 8 * (4 if mode == 3 else 1))
    path = write_raw_mode(tmp_path / "m.mrc", mode, (2, 4, 8), payload)
    with pytest.raises(NotReferenceableError, match=reason):
        intake_mrc.open_mrc(path).to_references()


def test_custom_scan_with_holes_is_refused(tmp_path):
    coords = np.array([(0, 0), (2, 1), (1, 0)])  # 3 frames on a 3 x 2 grid: 3 holes
    acq = write_acquisition(tmp_path, scan=(3, 2), scan_type="Random", coordinates=coords)
    f = intake_mrc.open_mrc(acq["paths"]["movie"])
    with pytest.raises(NotReferenceableError, match="3 of 6 scan positions hold no frame"):
        f.to_references()


def test_custom_scan_order_needs_one_frame_per_chunk(tmp_path):
    f = intake_mrc.open_mrc(_custom_scan_without_holes(tmp_path))
    refs = f.to_references()["refs"]
    assert json.loads(refs["data/.zarray"])["chunks"][:2] == [1, 1]
    # Position (y=0, x=0) was visited by frame 1.
    assert refs["data/0.0.0.0"][1] == f.frame_array.layout.offset + 1 * 4 * 6 * 2
    with pytest.raises(NotReferenceableError, match="scan order"):
        f.to_references(2)


def test_urls_with_credentials_are_refused_and_not_echoed():
    f = intake_mrc.open_mrc(MRCFILE_TESTS / "EMD-3197.map")
    for url in (
        "https://user:hunter2@example.org/x.map",
        "https://example.org/x.map?X-Amz-Signature=hunter2",
        "https://example.org/x.map#access_token=hunter2",
        "https://user:pa::hunter2@example.org/x.map",
    ):
        with pytest.raises(NotReferenceableError, match="credentials") as error:
            f.to_references(url=url)
        assert "hunter2" not in str(error.value)
    refs = f.to_references(url="https://example.org/x.map")["refs"]
    assert refs["data/0.0.0"][0] == "https://example.org/x.map"


def test_file_objects_need_a_url():
    data = (MRCFILE_TESTS / "EMD-3197.map").read_bytes()
    f = intake_mrc.open_mrc(io.BytesIO(data))
    with pytest.raises(NotReferenceableError, match="url="):
        f.to_references()
    assert f.to_references(1, url="s3://bucket/EMD-3197.map")["refs"]["data/3.0.0"][1:] == [
        1024 + 3 * 1600,
        1600,
    ]


def test_remote_references_read_back_exactly(tmp_path, http_upload, s3_upload, s3_server):
    files = [DE_MOVIE, RSCIIO / "20241021_00405_info.txt", RSCIIO / "HAADFscan.mrc"]
    be = write_mrc(tmp_path / "be stack.mrc", np.arange(24, dtype=">i2").reshape(2, 3, 4))
    cases = []
    (movie_http, _, haadf_http) = http_upload(*files, prefix="refs")
    (be_http,) = http_upload(be, prefix="refs")
    s3 = s3_upload(*files, be, prefix="refs")
    s3_options = s3_server["storage_options"]
    s3_read = {
        "key": S3_KEY,
        "secret": S3_SECRET,
        "client_kwargs": {"endpoint_url": s3_server["endpoint"]},
    }
    http_read = {"headers": {"Accept-Encoding": "identity"}}
    for name, url, options, protocol, read_options in [
        ("http_movie", movie_http, {}, "http", http_read),
        ("http_haadf", haadf_http, {}, "http", http_read),
        ("http_be", be_http, {}, "http", http_read),
        ("s3_movie", s3[0], s3_options, "s3", s3_read),
        ("s3_haadf", s3[2], s3_options, "s3", s3_read),
        ("s3_be", s3[3], s3_options, "s3", s3_read),
    ]:
        f = intake_mrc.open_mrc(url, storage_options=options)
        refs = to_references(f)
        assert all(v[0] == url for v in refs["refs"].values() if isinstance(v, list))
        assert S3_SECRET not in json.dumps(refs)
        cases.append(
            _case(f, refs, tmp_path, name, remote_protocol=protocol, remote_options=read_options)
        )
    out = _run_reader(cases, tmp_path)
    assert f"checked {len(cases)}" in out


def test_cli_refs_json_and_parquet(tmp_path, capsys):
    out = tmp_path / "refs.json"
    assert cli_main(["refs", str(DE_MOVIE), "-o", str(out), "--frames-per-chunk", "1"]) == 0
    assert "wrote 32 chunk references" in capsys.readouterr().out
    refs = json.loads(out.read_text())
    assert refs["version"] == 1 and refs["refs"]["data/3.7.0.0"][1:] == [1024 + 31 * 64, 64]
    pytest.importorskip("fastparquet")
    folder = tmp_path / "refs.parq"
    assert cli_main(["refs", str(DE_MOVIE), "-o", str(folder), "--parquet"]) == 0
    f = intake_mrc.open_mrc(DE_MOVIE)
    # remote_protocol as the README says: without it fsspec guesses the protocol from the
    # first row it meets, in set order, which may be a padding row of a one-chunk
    # coordinate array (a NaN path: TypeError, depending on the hash seed)
    case = _case(f, to_references(f), tmp_path, "parquet", remote_protocol="file")
    case["refs"] = str(folder)
    assert "checked 1" in _run_reader([case], tmp_path)


def test_cli_refs_refusal_is_one_line(tmp_path, capsys):
    code = cli_main(["refs", str(MRCFILE_TESTS / "emd_3197.map.gz"), "-o", str(tmp_path / "r")])
    err = capsys.readouterr().err
    assert code == 1 and "compressed" in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "r").exists()


def test_transposed_axis_order_and_imod_shifted_bytes_are_refused(tmp_path):
    f = intake_mrc.open_mrc(MRCFILE_TESTS / "EMD-3001.map", axis_order="xyz")
    assert f.axis_permutation is not None
    with pytest.raises(NotReferenceableError, match="axis_order='file'"):
        f.to_references()
    data = np.arange(24, dtype=np.int8).reshape(2, 3, 4)
    path = write_mrc(tmp_path / "imod.mrc", data, header={"nversion": 20140})
    raw = bytearray(path.read_bytes())
    raw[152:160] = np.array([1146047817, 1], "<i4").tobytes()  # IMOD stamp, signed flag
    path.write_bytes(bytes(raw))
    with pytest.raises(NotReferenceableError, match="signed_bytes='signed'"):
        intake_mrc.open_mrc(path).to_references()
    refs = intake_mrc.open_mrc(path, signed_bytes="signed").to_references()
    assert json.loads(refs["refs"]["data/.zarray"])["dtype"] == "|i1"


@pytest.mark.parametrize("name", ["run#3.mrc", "dose?x=1.mrc", "a::b.mrc"])
def test_local_names_with_url_characters_are_described_not_refused(tmp_path, name):
    # '#', '?' and '::' are plain characters of a local path: nothing there is a credential,
    # and fsspec's reference filesystem reads the file:// URL as the path it is.
    data = np.arange(24, dtype="<f4").reshape(2, 3, 4)
    path = write_mrc(tmp_path / name, data)
    f = intake_mrc.open_mrc(path)
    refs = to_references(f)
    url, offset, length = refs["refs"]["data/0.0.0"]
    assert url == "file://" + str(path) and (offset, length) == (1024, 96)
    assert "checked 1" in _run_reader([_case(f, refs, tmp_path, "hash")], tmp_path)


def test_s3_keys_with_a_hash_are_described(tmp_path, s3_upload, s3_server):
    # In an S3 key '#' is a character of the key; only HTTP(S) URLs have fragments.
    path = write_mrc(tmp_path / "grid#2.mrc", np.arange(24, dtype=">i2").reshape(2, 3, 4))
    (url,) = s3_upload(path, prefix="refs-hash")
    f = intake_mrc.open_mrc(url, storage_options=s3_server["storage_options"])
    refs = to_references(f)
    assert refs["refs"]["data/0.0.0"][0] == url and url.endswith("grid#2.mrc")
    read = {
        "key": S3_KEY,
        "secret": S3_SECRET,
        "client_kwargs": {"endpoint_url": s3_server["endpoint"]},
    }
    case = _case(f, refs, tmp_path, "s3hash", remote_protocol="s3", remote_options=read)
    assert "checked 1" in _run_reader([case], tmp_path)
    # An HTTP(S) URL's fragment or query is still refused (it may carry a token).
    with pytest.raises(NotReferenceableError, match="credentials"):
        f.to_references(url="https://example.org/grid.mrc#token=x")


@pytest.mark.parametrize("zarr_format", [2, 3])
def test_references_for_a_mirror_do_not_name_the_private_source(tmp_path, zarr_format):
    private = tmp_path / "private-project-7"
    private.mkdir()
    path = write_mrc(private / "x.mrc", np.zeros((2, 3, 4), dtype="f4"))
    f = intake_mrc.open_mrc(path)
    assert "private-project-7" in json.dumps(f.to_references(zarr_format=zarr_format))
    mirror = "https://mirror.example.org/x.mrc"
    refs = f.to_references(url=mirror, zarr_format=zarr_format)
    assert "private-project-7" not in json.dumps(refs)
    group = "zarr.json" if zarr_format == 3 else ".zattrs"
    assert mirror in refs["refs"][group]


@pytest.mark.parametrize("value", ["0", "-3", "two"])
def test_cli_refs_frames_per_chunk_must_be_positive(tmp_path, capsys, value):
    with pytest.raises(SystemExit) as exit_:
        cli_main(
            ["refs", str(DE_MOVIE), "-o", str(tmp_path / "r.json"), "--frames-per-chunk", value]
        )
    assert exit_.value.code == 2 and "argument --frames-per-chunk" in capsys.readouterr().err
    assert not (tmp_path / "r.json").exists()


def test_parquet_form_is_zarr_v2_only_and_says_so(tmp_path, capsys):
    # --parquet --zarr-format 3 ended in "error: 'data/.zarray'" after making the folder.
    folder = tmp_path / "refs.parq"
    code = cli_main(["refs", str(DE_MOVIE), "-o", str(folder), "--parquet", "--zarr-format", "3"])
    assert code == 2 and "--zarr-format 2" in capsys.readouterr().err
    assert not folder.exists()
    from intake_mrc.references import write_references

    refs = to_references(intake_mrc.open_mrc(DE_MOVIE), zarr_format=3)
    with pytest.raises(ValueError, match="zarr v2"):
        write_references(refs, str(folder), parquet=True)
    assert not folder.exists()
