"""Reading through fsspec: the S3 server, the HTTP server, memory:// and chained URLs;
request counts and bytes on the wire; a dask.distributed cluster of processes."""

from __future__ import annotations

import fsspec
import numpy as np
import pytest
from conftest import MRCFILE_TESTS, RSCIIO, sha256
from mrcwriter import fei2_records, write_mrc

import intake_mrc
from intake_mrc import StorageError, TruncatedFileError

RNG = np.random.default_rng(3)


@pytest.fixture
def stack(tmp_path):
    data = RNG.integers(0, 60000, size=(40, 64, 48)).astype(np.uint16)
    return write_mrc(tmp_path / "stack.mrc", data), data


def test_s3_read_and_chunks(stack, s3_upload, s3_server):
    path, data = stack
    (url,) = s3_upload(path)
    f = intake_mrc.open_mrc(url, storage_options=s3_server["storage_options"], chunks=7)
    assert f.shape == data.shape
    np.testing.assert_array_equal(f.read(), data)
    np.testing.assert_array_equal(f.to_dask().compute(), data)
    np.testing.assert_array_equal(f.to_dask()[13].compute(), data[13])


def test_http_header_is_one_request_and_frame_has_no_extra_bytes(stack, http_upload, http_server):
    path, data = stack
    (url,) = http_upload(path)
    http_server.requests.clear()
    http_server.encodings.clear()
    f = intake_mrc.open_mrc(url, chunks=10)
    assert len(http_server.requests) == 1
    assert http_server.encodings == ["identity"]
    assert http_server.requests[0][2] is not None  # a ranged GET, not a whole download
    http_server.requests.clear()
    frame = f.to_dask()[17].compute()
    np.testing.assert_array_equal(frame, data[17])
    frame_nbytes = data[17].nbytes
    assert len(http_server.requests) == 1
    assert http_server.bytes_requested() == frame_nbytes
    np.testing.assert_array_equal(f.read(), data)


def test_http_extended_header_second_request(tmp_path, http_upload, http_server):
    records = fei2_records(100, record_nbytes=1024)  # 100 KiB > the first read
    path = write_mrc(
        tmp_path / "fei.mrc", np.zeros((100, 4, 4), np.float32), extended=records, exttyp=b"FEI2"
    )
    (url,) = http_upload(path)
    http_server.requests.clear()
    f = intake_mrc.open_mrc(url)
    assert len(http_server.requests) == 2
    assert f.extended_header.shape == (100,)


def test_http_percent_encoded_names(http_upload):
    urls = http_upload(RSCIIO / "20241021_00405_0_Virt 0_sum.mrc")
    f = intake_mrc.open_mrc(urls[0])
    assert f.read().ravel().tolist() == list(range(32))


def test_memory_and_chained_urls(stack, s3_upload, s3_server, tmp_path):
    path, data = stack
    with fsspec.open("memory://stack/stack.mrc", "wb") as out:
        out.write(path.read_bytes())
    f = intake_mrc.open_mrc("memory://stack/stack.mrc")
    np.testing.assert_array_equal(f.to_dask().compute(), data)
    (url,) = s3_upload(path, prefix="chained")
    options = {
        "s3": s3_server["storage_options"],
        "simplecache": {"cache_storage": str(tmp_path / "cache")},
    }
    g = intake_mrc.open_mrc("simplecache::" + url, storage_options=options)
    np.testing.assert_array_equal(g.read(), data)


def test_fsspec_open_file_object(stack, s3_upload, s3_server):
    path, data = stack
    (url,) = s3_upload(path, prefix="fileobj")
    fs = fsspec.filesystem("s3", **s3_server["storage_options"])
    with fs.open(url, "rb") as fileobj:
        f = intake_mrc.open_mrc(fileobj)
        np.testing.assert_array_equal(f.to_dask().compute(), data)


def test_compressed_maps_remote(http_upload, s3_upload, s3_server):
    import mrcfile

    with mrcfile.open(MRCFILE_TESTS / "EMD-3001.map") as oracle:
        expected = oracle.data.copy()
    (gz,) = http_upload(MRCFILE_TESTS / "emd_3001.map.gz")
    (bz,) = s3_upload(MRCFILE_TESTS / "EMD-3001.map.bz2")
    np.testing.assert_array_equal(intake_mrc.open_mrc(gz).read(), expected)
    f = intake_mrc.open_mrc(bz, storage_options=s3_server["storage_options"])
    np.testing.assert_array_equal(f.to_dask(chunks=5).compute(), expected)


def test_truncated_remote_file_is_an_error(stack, http_upload, tmp_path):
    path, _ = stack
    short = tmp_path / "short.mrc"
    short.write_bytes(path.read_bytes()[:-100])
    (url,) = http_upload(short)
    # The header's answer states the object's size (Content-Range): refused at open.
    with pytest.raises(TruncatedFileError, match="short.mrc"):
        intake_mrc.open_mrc(url)


def test_missing_remote_file(http_server, s3_server):
    with pytest.raises(FileNotFoundError, match="nothere"):
        intake_mrc.open_mrc(f"{http_server.url}/nothere.mrc")
    with pytest.raises((FileNotFoundError, StorageError), match="nothere"):
        intake_mrc.open_mrc(
            "s3://intake-mrc-test/nothere.mrc", storage_options=s3_server["storage_options"]
        )


def test_distributed_cluster_against_s3(stack, s3_upload, s3_server):
    distributed = pytest.importorskip("distributed")
    path, data = stack
    before = sha256(path)
    (url,) = s3_upload(path, prefix="dist")
    f = intake_mrc.open_mrc(url, storage_options=s3_server["storage_options"], chunks=8)
    with (
        distributed.LocalCluster(
            n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None
        ) as cluster,
        distributed.Client(cluster) as client,
    ):
        total = client.compute(f.to_dask().astype(np.float64).sum()).result()
    assert total == data.astype(np.float64).sum()
    assert sha256(path) == before


def test_each_chunk_is_one_contiguous_request(stack, http_upload, http_server):
    path, data = stack
    (url,) = http_upload(path, prefix="contiguous")
    f = intake_mrc.open_mrc(url, chunks=10)
    http_server.requests.clear()
    np.testing.assert_array_equal(f.to_dask().compute(), data)
    assert len(http_server.requests) == 4  # 40 frames in chunks of 10: one range each
    assert http_server.bytes_requested() == data.nbytes


def test_chained_http_cache(stack, http_upload, tmp_path):
    path, data = stack
    (url,) = http_upload(path, prefix="chained-http")
    options = {"simplecache": {"cache_storage": str(tmp_path / "c")}}
    f = intake_mrc.open_mrc("simplecache::" + url, storage_options=options)
    np.testing.assert_array_equal(f.to_dask()[7].compute(), data[7])


def test_distributed_custom_scan_against_s3(tmp_path, s3_upload, s3_server):
    distributed = pytest.importorskip("distributed")
    from dewriter import write_acquisition

    coords = np.array([[3, 1], [0, 0], [2, 2], [1, 0], [0, 0]])
    acq = write_acquisition(tmp_path, scan=(4, 3), scan_type="Random", coordinates=coords)
    urls = s3_upload(*acq["all"], prefix="dist-custom")
    movie = next(u for u in urls if u.endswith("_movie.mrc"))
    f = intake_mrc.open_mrc(movie, storage_options=s3_server["storage_options"], chunks=(1, 2, 1))
    expected = f.read()
    with (
        distributed.LocalCluster(
            n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None
        ) as cluster,
        distributed.Client(cluster) as client,
    ):
        got = client.compute(f.to_dask()).result()
    np.testing.assert_array_equal(got, expected)
    assert got[0, 0, :, 0, 0].tolist() == [1, 4]


def test_lying_header_fails_before_a_huge_allocation(tmp_path, http_upload):
    """A remote header claiming 8 TB of frames: the header's answer states the object's
    size (Content-Range total), so the open fails before anything is allocated."""
    import tracemalloc

    path = write_mrc(tmp_path / "liar.mrc", np.zeros((40, 64, 64), np.float32))
    raw = bytearray(path.read_bytes())
    raw[0:12] = np.array([2**20, 2**20, 2], "<i4").tobytes()  # NX, NY, NZ: 8 TB
    path.write_bytes(bytes(raw))
    (url,) = http_upload(path, prefix="liar")
    tracemalloc.start()
    with pytest.raises(TruncatedFileError, match="liar.mrc"):
        intake_mrc.open_mrc(url)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert peak < 64 * 2**20


def test_remote_nsymbt_past_the_end_names_the_field(tmp_path, http_upload):
    import tracemalloc

    path = write_mrc(tmp_path / "longext.mrc", np.zeros((40, 64, 64), np.float32))
    raw = bytearray(path.read_bytes())
    raw[92:96] = np.array([2**31 - 1], "<i4").tobytes()  # NSYMBT: 2 GiB
    path.write_bytes(bytes(raw))
    (url,) = http_upload(path, prefix="longext")
    tracemalloc.start()
    with pytest.raises(intake_mrc.MRCFormatError, match="longext.mrc") as info:
        intake_mrc.open_mrc(url)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert info.value.field == "nsymbt"
    assert peak < 600 * 2**20


def test_small_compressed_map_is_fetched_once(http_upload, http_server):
    import pickle

    import mrcfile

    (url,) = http_upload(MRCFILE_TESTS / "emd_3197.map.gz", prefix="gz-once")
    http_server.requests.clear()
    f = intake_mrc.open_mrc(url)
    data = f.to_dask(chunks=5).compute()
    assert len(http_server.requests) == 1  # the first read held the whole 29 kB file
    with mrcfile.open(MRCFILE_TESTS / "EMD-3197.map") as oracle:
        np.testing.assert_array_equal(data, oracle.data)
    # The store pickles without its data; a worker fetches and decompresses for itself.
    clone = pickle.loads(pickle.dumps(f.store))
    assert len(pickle.dumps(f.store)) < 1024
    assert clone.read_runs([1024], [16]).tobytes() == f.store.read_runs([1024], [16]).tobytes()


def test_local_cluster_of_processes_reads_http_and_s3(
    stack, tmp_path, http_upload, s3_upload, s3_server
):
    """A dask.distributed LocalCluster of 2 worker processes, sharing nothing with the test
    but the loopback servers: files opened in the client (HTTP and S3) are summed by
    ``client.compute`` and read whole by ``client.submit`` (the MRCFile pickled to a
    worker, DE movie with its images too); mrcfile's values are the oracle."""
    import os

    import mrcfile
    from dewriter import write_acquisition

    distributed = pytest.importorskip("distributed")
    path, _ = stack
    with mrcfile.open(path) as m:
        expected_sum = int(m.data.sum(dtype=np.int64))
        expected = m.data.copy()
    (http_url,) = http_upload(path, prefix="cluster")
    (s3_url,) = s3_upload(path, prefix="cluster")
    acq = write_acquisition(tmp_path / "de", scan=(5, 3))
    de_urls = s3_upload(*acq["all"], prefix="cluster-de")
    de_movie = next(u for u in de_urls if u.endswith("_movie.mrc"))
    options = s3_server["storage_options"]
    files = [
        intake_mrc.open_mrc(http_url, chunks=8),
        intake_mrc.open_mrc(s3_url, storage_options=options, chunks=8),
    ]
    de = intake_mrc.open_mrc(de_movie, storage_options=options)
    cluster = client = None
    try:
        cluster = distributed.LocalCluster(
            n_workers=2,
            threads_per_worker=1,
            processes=True,
            host="127.0.0.1",
            dashboard_address=None,
            worker_dashboard_address=None,
        )
        client = distributed.Client(cluster, timeout="60s")
        sums = client.compute([f.to_dask().sum() for f in files])
        assert [int(s.result(timeout=120)) for s in sums] == [expected_sum, expected_sum]

        def read_everything(f):  # runs in a worker process on the pickled MRCFile
            import os

            return (
                os.getpid(),
                np.asarray(f),
                {k: f.virtual_images[k].read() for k in f.virtual_images},
            )

        pid, got, _ = client.submit(read_everything, files[0], pure=False).result(timeout=120)
        assert pid != os.getpid()  # read in another process
        np.testing.assert_array_equal(got, expected)
        _, movie, images = client.submit(read_everything, de, pure=False).result(timeout=120)
        np.testing.assert_array_equal(movie, de.read())
        assert sorted(images) == sorted(acq["virtual"])
        for name, (_, image) in acq["virtual"].items():
            np.testing.assert_array_equal(images[name], image)
    finally:
        if client is not None:
            client.close(timeout=30)
        if cluster is not None:
            cluster.close(timeout=30)


def test_compressed_remote_file_is_read_once_byte_for_byte(tmp_path, monkeypatch):
    """A gzip file over fsspec: the first read (the header's) is where decompression
    starts; no compressed byte range is fetched twice."""
    import gzip

    from fsspec.implementations.memory import MemoryFileSystem

    data = np.random.default_rng(5).integers(0, 65535, size=(16, 128, 128), dtype=np.uint16)
    raw = gzip.compress(write_mrc(tmp_path / "g.mrc", data).read_bytes(), 1)
    url = "memory://intake-mrc-once/g.mrc.gz"
    fs = fsspec.filesystem("memory")
    fs.pipe_file(url, raw)
    fetched: list[tuple[int, int]] = []
    cat_file = MemoryFileSystem.cat_file

    def counting(self, path, start=None, end=None, **kwargs):
        out = cat_file(self, path, start=start, end=end, **kwargs)
        fetched.append((start or 0, (start or 0) + len(out)))
        return out

    monkeypatch.setattr(MemoryFileSystem, "cat_file", counting)
    try:
        np.testing.assert_array_equal(intake_mrc.open_mrc(url).read(), data)
    finally:
        fs.rm(url)
    assert sum(end - start for start, end in fetched) == len(raw), fetched
