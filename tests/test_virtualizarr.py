"""VirtualiZarr 2 parser: ``open_virtual_dataset(url, parser=MRCParser(), registry=...)`` gives
a virtual dataset that writes to kerchunk JSON and to Icechunk and reads back equal to
``open_mrc(...).read()``. Needs Python 3.12+ and ``intake-mrc[virtualizarr]``: CI runs this
module in its own 3.12 venv (.ci/run); elsewhere it is skipped, which is not a pass."""

from __future__ import annotations

import json

import numpy as np
import pytest

virtualizarr = pytest.importorskip("virtualizarr", minversion="2.8")

import xarray as xr  # noqa: E402
from conftest import MRCFILE_TESTS, RSCIIO, S3_KEY, S3_SECRET  # noqa: E402
from dewriter import write_acquisition  # noqa: E402
from mrcwriter import write_mrc, write_raw_mode  # noqa: E402
from obspec_utils.registry import ObjectStoreRegistry  # noqa: E402
from obstore.store import HTTPStore, LocalStore, S3Store  # noqa: E402
from virtualizarr import open_virtual_dataset  # noqa: E402
from virtualizarr.parsers.typing import Parser  # noqa: E402

import intake_mrc  # noqa: E402
from intake_mrc.references import NotReferenceableError  # noqa: E402
from intake_mrc.virtualizarr import MRCParser  # noqa: E402

DE_MOVIE = RSCIIO / "20241021_00405_movie.mrc"


def _local_registry() -> ObjectStoreRegistry:
    return ObjectStoreRegistry({"file://": LocalStore()})


def _from_kerchunk(refs: dict, remote_options: dict | None = None) -> np.ndarray:
    options = {"fo": refs, "asynchronous": True}
    if remote_options is not None:
        options["remote_options"] = {**remote_options, "asynchronous": True}
    # VirtualiZarr's kerchunk output carries fill_value 0: no masking of real zeros.
    ds = xr.open_dataset(
        "reference://",
        engine="zarr",
        mask_and_scale=False,
        backend_kwargs={"consolidated": False, "zarr_format": 2, "storage_options": options},
    )
    return ds["data"].values


def test_parser_follows_the_protocol():
    assert isinstance(MRCParser(), Parser)


@pytest.mark.parametrize(
    "path",
    [
        DE_MOVIE,
        RSCIIO / "HAADFscan.mrc",
        MRCFILE_TESTS / "EMD-3001.map",
        RSCIIO / "20241021_00405_0_Virt 0_sum.mrc",  # a space in the name
    ],
    ids=lambda p: p.name,
)
def test_local_virtual_dataset_to_kerchunk_reads_back_equal(path):
    expected = intake_mrc.open_mrc(path)
    vds = open_virtual_dataset(str(path), parser=MRCParser(), registry=_local_registry())
    assert list(vds["data"].dims) == expected.dimension_names()
    assert vds["data"].shape == expected.shape
    refs = vds.vz.to_kerchunk(format="dict")
    got = _from_kerchunk(refs)
    assert got.dtype.newbyteorder("=") == expected.dtype
    np.testing.assert_array_equal(got, expected.read())


def test_big_endian_and_one_frame_per_chunk(tmp_path):
    data = np.arange(2 * 3 * 4, dtype=">f4").reshape(2, 3, 4)
    path = write_mrc(tmp_path / "be.mrc", data)
    vds = open_virtual_dataset(
        str(path), parser=MRCParser(frames_per_chunk=1), registry=_local_registry()
    )
    refs = vds.vz.to_kerchunk(format="dict")["refs"]
    zarray = refs["data/.zarray"]
    zarray = json.loads(zarray) if isinstance(zarray, str) else zarray
    assert zarray["dtype"] == ">f4" and zarray["chunks"] == [1, 3, 4]
    assert refs["data/1.0.0"][1:] == [1024 + 48, 48]
    np.testing.assert_array_equal(_from_kerchunk({"version": 1, "refs": refs}), data)


def test_icechunk_round_trip(tmp_path):
    icechunk = pytest.importorskip("icechunk")
    path = DE_MOVIE
    vds = open_virtual_dataset(str(path), parser=MRCParser(), registry=_local_registry())
    prefix = f"file://{path.parent}/"
    config = icechunk.RepositoryConfig.default()
    config.set_virtual_chunk_container(
        icechunk.VirtualChunkContainer(prefix, icechunk.local_filesystem_store(str(path.parent)))
    )
    repo = icechunk.Repository.create(
        icechunk.local_filesystem_storage(str(tmp_path / "repo")),
        config,
        authorize_virtual_chunk_access={prefix: icechunk.credentials.LocalFileSystemAccess},
    )
    session = repo.writable_session("main")
    vds.vz.to_icechunk(session.store)
    session.commit("MRC movie, virtual")
    read = repo.readonly_session("main")
    ds = xr.open_zarr(read.store, consolidated=False, zarr_format=3)
    expected = intake_mrc.open_mrc(path)
    assert list(ds["data"].dims) == expected.dimension_names()
    np.testing.assert_array_equal(ds["data"].values, expected.read())


def test_s3_and_http(tmp_path, s3_upload, s3_server, http_upload):
    files = [DE_MOVIE, RSCIIO / "20241021_00405_info.txt"]
    (movie_s3, _) = s3_upload(*files, prefix="vz")
    bucket = movie_s3.split("/")[2]
    s3 = S3Store(
        bucket,
        endpoint=s3_server["endpoint"],
        access_key_id=S3_KEY,
        secret_access_key=S3_SECRET,
        region="us-east-1",
        client_options={"allow_http": True},
    )
    registry = ObjectStoreRegistry({f"s3://{bucket}": s3})
    vds = open_virtual_dataset(movie_s3, parser=MRCParser(), registry=registry)
    expected = intake_mrc.open_mrc(DE_MOVIE)
    assert vds["data"].shape == (4, 8, 4, 8)  # the info file was found beside it
    refs = vds.vz.to_kerchunk(format="dict")
    read_options = {
        "key": S3_KEY,
        "secret": S3_SECRET,
        "client_kwargs": {"endpoint_url": s3_server["endpoint"]},
    }
    np.testing.assert_array_equal(_from_kerchunk(refs, read_options), expected.read())

    (movie_http, _) = http_upload(*files, prefix="vz")
    base = movie_http.rsplit("/", 1)[0]
    http = HTTPStore.from_url(base, client_options={"allow_http": True})
    registry = ObjectStoreRegistry({base: http})
    vds = open_virtual_dataset(movie_http, parser=MRCParser(), registry=registry)
    assert vds["data"].shape == (4, 8, 4, 8)
    refs = vds.vz.to_kerchunk(format="dict")
    np.testing.assert_array_equal(_from_kerchunk(refs, {}), expected.read())


def test_what_ranges_cannot_describe_is_refused(tmp_path):
    gz = MRCFILE_TESTS / "emd_3197.map.gz"
    with pytest.raises(NotReferenceableError, match="compressed"):
        open_virtual_dataset(str(gz), parser=MRCParser(), registry=_local_registry())
    packed = write_raw_mode(tmp_path / "m101.mrc", 101, (2, 4, 8), bytes(2 * 4 * 4))
    with pytest.raises(NotReferenceableError, match="4-bit"):
        open_virtual_dataset(str(packed), parser=MRCParser(), registry=_local_registry())
    coords = np.array([(0, 0), (2, 1), (1, 0)])
    acq = write_acquisition(tmp_path / "de", scan=(3, 2), scan_type="Random", coordinates=coords)
    with pytest.raises(NotReferenceableError, match="hold no frame"):
        open_virtual_dataset(
            str(acq["paths"]["movie"]), parser=MRCParser(), registry=_local_registry()
        )
