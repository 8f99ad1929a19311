"""Reads through fsspec (chained URLs such as ``simplecache::s3://``, ``blockcache::``,
``memory://``) are pinned to the version seen at open: an object rewritten after open is
``ObjectChangedError`` naming the URL, never data of the new object mixed with the old
header (moto on 127.0.0.1, counted at a proxy)."""

from __future__ import annotations

import os
import pickle
import subprocess
import sys
import textwrap
import time

import numpy as np
import pytest
from conftest import S3_KEY, S3_SECRET, free_port
from faultproxy import FaultProxy
from hostileserver import HostileServer
from mrcwriter import write_mrc

import intake_mrc
from intake_mrc import ObjectChangedError

RNG = np.random.default_rng(12)
DATA = RNG.integers(0, 60000, size=(8, 64, 64)).astype(np.uint16)  # 64 KiB
BUCKET = "intake-mrc-pinning"
VERSIONED = "intake-mrc-pinning-versioned"
FAST = {"retries": 1, "backoff": 0.05}


@pytest.fixture(scope="module")
def mrc_bytes(tmp_path_factory) -> bytes:
    return write_mrc(tmp_path_factory.mktemp("pin") / "p.mrc", DATA).read_bytes()


def _changed(mrc_bytes: bytes, xor: int) -> bytes:
    """The same size, other pixel values."""
    out = bytearray(mrc_bytes)
    out[1024:] = (DATA ^ xor).tobytes()
    return bytes(out)


@pytest.fixture(scope="module")
def s3(s3_server):
    import s3fs

    fs = s3fs.S3FileSystem(
        key=S3_KEY, secret=S3_SECRET, client_kwargs={"endpoint_url": s3_server["endpoint"]}
    )
    for bucket in (BUCKET, VERSIONED):
        if not fs.exists(bucket):
            fs.mkdir(bucket)
    fs.call_s3(
        "put_bucket_versioning",
        Bucket=VERSIONED,
        VersioningConfiguration={"Status": "Enabled"},
    )
    return fs


@pytest.fixture
def proxy(s3_server):
    """A counting proxy in front of moto: the requests each read costs."""
    srv = FaultProxy(s3_server["endpoint"], free_port()).start()
    yield srv
    srv.stop()


def _put(s3, path: str, data: bytes) -> None:
    s3.pipe_file(path, data)
    s3.invalidate_cache()


def _chained(endpoint: str, **s3_options) -> dict:
    return {
        "s3": {
            "key": S3_KEY,
            "secret": S3_SECRET,
            "client_kwargs": {"endpoint_url": endpoint},
            **s3_options,
        },
        "intake_mrc": FAST,
    }


def test_memory_object_rewritten_after_open_is_detected(mrc_bytes):
    import fsspec

    fs = fsspec.filesystem("memory")
    url = "memory://intake-mrc-pinning/rewritten.mrc"
    fs.pipe_file(url, mrc_bytes)
    try:
        f = intake_mrc.open_mrc(url)
        frames = f.to_dask(chunks=2)
        np.testing.assert_array_equal(frames[0].compute(), DATA[0])
        time.sleep(0.01)  # memory:// states its creation time
        fs.pipe_file(url, _changed(mrc_bytes, 9))
        with pytest.raises(ObjectChangedError, match="memory://intake-mrc-pinning/rewritten"):
            f.read()
        with pytest.raises(ObjectChangedError, match="created"):
            frames[4].compute()
        np.testing.assert_array_equal(intake_mrc.open_mrc(url).read(), DATA ^ 9)
    finally:
        fs.rm(url)


def test_blockcache_s3_object_rewritten_after_open_is_detected(s3, s3_server, proxy, tmp_path):
    """A layer that reads blocks on demand: a chunk whose blocks are local costs nothing; one
    that fetches a block costs one HEAD more (the check), and a rewrite is detected there."""
    big = RNG.integers(0, 60000, size=(32, 64, 64)).astype(np.uint16)  # 32 blocks of 8 KiB
    raw = write_mrc(tmp_path / "big.mrc", big).read_bytes()
    _put(s3, f"{BUCKET}/block/p.mrc", raw)
    url = f"blockcache::s3://{BUCKET}/block/p.mrc"
    # 16 KiB blocks: the header read holds frames 0-7, the rest is fetched when read.
    f = intake_mrc.open_mrc(url, _chained(proxy.url, default_block_size=16384))
    frames = f.to_dask(chunks=1)
    proxy.set(None)
    np.testing.assert_array_equal(frames[2].compute(), big[2])
    assert proxy.requests == 0  # local blocks: no request, no check
    np.testing.assert_array_equal(frames[20].compute(), big[20])
    assert proxy.requests == 2  # the block, then one HEAD
    changed = bytearray(raw)
    changed[1024:] = (big ^ 3).tobytes()
    _put(s3, f"{BUCKET}/block/p.mrc", bytes(changed))
    with pytest.raises(ObjectChangedError, match="blockcache::s3://") as info:
        frames[25].compute()
    assert "ETag" in str(info.value)
    assert S3_SECRET not in str(info.value)
    # Blocks fetched before the rewrite stay the opened version (stale, not mixed).
    np.testing.assert_array_equal(frames[3].compute(), big[3])


def test_blockcache_http_object_rewritten_after_open_is_detected(tmp_path):
    """The same over HTTP (a server that answers GET only, no listing): the check is the
    inner layer's info (a HEAD, here a GET's headers), never a listing of the folder."""
    big = RNG.integers(0, 60000, size=(32, 64, 64)).astype(np.uint16)
    raw = write_mrc(tmp_path / "big.mrc", big).read_bytes()
    server = HostileServer(free_port(), raw).start()
    try:
        url = f"blockcache::{server.url}/data/big.mrc"
        f = intake_mrc.open_mrc(url, {"http": {"block_size": 16384}, "intake_mrc": FAST})
        frames = f.to_dask(chunks=1)
        server.set(None)
        np.testing.assert_array_equal(frames[2].compute(), big[2])
        assert server.requests == 0  # local blocks: no request, no check
        np.testing.assert_array_equal(frames[20].compute(), big[20])
        assert server.requests >= 2  # the block and the check
        changed = bytearray(raw)
        changed[1024:] = (big ^ 5).tobytes()
        server.replace(bytes(changed))
        with pytest.raises(ObjectChangedError, match=r"blockcache::http://127\.0\.0\.1"):
            frames[26].compute()
    finally:
        server.stop()


_WORKER = textwrap.dedent(
    """
    import pickle, sys
    import intake_mrc
    for graph in pickle.loads(sys.stdin.buffer.read()):
        try:
            print("data", int(graph.compute().sum()))
        except intake_mrc.ObjectChangedError as error:
            print("ObjectChangedError", error)
    """
)


def _compute_in_a_fresh_process(*arrays) -> list[str]:
    """Dask chunks computed elsewhere, as a distributed worker would (its own fsspec
    instances, so its own whole-file cache); one outcome per array."""
    import cloudpickle

    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    done = subprocess.run(
        [sys.executable, "-c", _WORKER],
        input=cloudpickle.dumps(arrays),
        capture_output=True,
        timeout=120,
        env=env,
    )
    assert done.returncode == 0, done.stderr.decode()
    return done.stdout.decode().strip().splitlines()[-len(arrays) :]


def test_simplecache_s3_pinned_in_process_and_checked_in_a_worker(s3, s3_server, proxy, mrc_bytes):
    _put(s3, f"{BUCKET}/simple/p.mrc", mrc_bytes)
    url = f"simplecache::s3://{BUCKET}/simple/p.mrc"
    f = intake_mrc.open_mrc(url, _chained(proxy.url))
    frames = f.to_dask(chunks=1)
    proxy.set(None)
    np.testing.assert_array_equal(frames[1].compute(), DATA[1])
    assert proxy.requests == 0  # the local copy made at open: no request, no check
    _put(s3, f"{BUCKET}/simple/p.mrc", _changed(mrc_bytes, 5))
    # This process holds the copy downloaded with the header: the opened version, whole.
    np.testing.assert_array_equal(frames[6].compute(), DATA[6])
    assert proxy.requests == 0
    # A worker downloads the object again: the new version is detected, not used; an
    # unchanged object is read there (the check can pass).
    _put(s3, f"{BUCKET}/simple/q.mrc", mrc_bytes)
    same = intake_mrc.open_mrc(f"simplecache::s3://{BUCKET}/simple/q.mrc", _chained(proxy.url))
    changed, unchanged = _compute_in_a_fresh_process(frames[2], same.to_dask(chunks=1)[2])
    assert changed.startswith("ObjectChangedError"), changed
    assert f"simplecache::s3://{BUCKET}/simple/p.mrc" in changed
    assert unchanged == f"data {int(DATA[2].astype(np.int64).sum())}", unchanged


@pytest.mark.parametrize("chain", ["blockcache", "simplecache"])
def test_version_aware_s3_layer_reads_the_opened_version_at_no_cost(
    s3, s3_server, proxy, mrc_bytes, chain
):
    """A versioned bucket read with version_aware=True: every GET names the version seen at
    open (S3 serves it, whatever was written since), and no check request is paid."""
    key = f"{VERSIONED}/{chain}/p.mrc"
    _put(s3, key, mrc_bytes)
    url = f"{chain}::s3://{key}"
    f = intake_mrc.open_mrc(url, _chained(proxy.url, version_aware=True))
    assert "?versionId=" in f.store._read_path
    frames = f.to_dask(chunks=1)
    _put(s3, key, _changed(mrc_bytes, 6))
    proxy.set(None)
    for k in (0, 7):
        np.testing.assert_array_equal(frames[k].compute(), DATA[k])
    assert proxy.requests == 0
    if chain == "simplecache":  # elsewhere too: a worker's own copy is the opened version
        (outcome,) = _compute_in_a_fresh_process(frames[3])
        assert outcome == f"data {int(DATA[3].astype(np.int64).sum())}", outcome
    np.testing.assert_array_equal(
        intake_mrc.open_mrc(url, _chained(proxy.url, version_aware=True)).read(), DATA ^ 6
    )


def test_pinned_store_pickles_its_version(s3, s3_server, mrc_bytes):
    _put(s3, f"{BUCKET}/pickle/p.mrc", mrc_bytes)
    f = intake_mrc.open_mrc(
        f"blockcache::s3://{BUCKET}/pickle/p.mrc", _chained(s3_server["endpoint"])
    )
    store = pickle.loads(pickle.dumps(f.store))
    assert store._pinned == f.store._pinned and any(k == "ETag" for k, _ in store._pinned)
