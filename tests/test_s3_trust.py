"""S3 (moto servers on 127.0.0.1): dask names carry the endpoint and the object's version,
objects that change are detected, one layer owns retries, credential errors are permanent."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import time
from dataclasses import replace

import dask.array as da
import numpy as np
import pytest
from conftest import S3_KEY, S3_SECRET, free_port
from faultproxy import FaultProxy
from mrcwriter import write_mrc

import intake_mrc
from intake_mrc import CredentialsError, ObjectChangedError, StorageError

RNG = np.random.default_rng(4)
DATA = RNG.integers(0, 60000, size=(16, 64, 64)).astype(np.uint16)  # 128 KiB
# Generous per-request deadline (moto on a loaded machine); deadline tests set their own.
FAST = {"retries": 2, "backoff": 0.05, "request_timeout": 20.0}
BUCKET = "intake-mrc-trust"  # its own bucket: conftest creates intake-mrc-test


def _options(endpoint: str, **settings) -> dict:
    return {
        "key": S3_KEY,
        "secret": S3_SECRET,
        "client_kwargs": {"endpoint_url": endpoint},
        "intake_mrc": {**FAST, **settings},
    }


@pytest.fixture(scope="module")
def second_s3():
    """Another moto server in a process of its own (servers in one process share their
    buckets, so the same key could not hold other bytes there)."""
    import socket

    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
                break
            except OSError:
                time.sleep(0.1)
        else:
            raise RuntimeError("the second moto server did not start")
        yield f"http://127.0.0.1:{port}"
    finally:
        process.terminate()
        process.wait(10)


def _put(endpoint: str, key: str, data: bytes) -> None:
    import s3fs

    fs = s3fs.S3FileSystem(key=S3_KEY, secret=S3_SECRET, client_kwargs={"endpoint_url": endpoint})
    if not fs.exists(BUCKET):
        fs.mkdir(BUCKET)
    fs.pipe_file(f"{BUCKET}/{key}", data)
    fs.invalidate_cache()


@pytest.fixture
def mrc_bytes(tmp_path) -> bytes:
    return write_mrc(tmp_path / "s.mrc", DATA).read_bytes()


def test_same_key_on_two_endpoints_gets_two_names(s3_server, second_s3, mrc_bytes):
    other = bytearray(mrc_bytes)
    other[1024:] = (DATA ^ 1).tobytes()
    _put(s3_server["endpoint"], "ident/s.mrc", mrc_bytes)
    _put(second_s3, "ident/s.mrc", bytes(other))
    a = intake_mrc.open_mrc(f"s3://{BUCKET}/ident/s.mrc", _options(s3_server["endpoint"]))
    b = intake_mrc.open_mrc(f"s3://{BUCKET}/ident/s.mrc", _options(second_s3))
    xa, xb = a.to_dask(), b.to_dask()
    assert xa.name != xb.name
    assert int(np.abs(xb.astype(np.int64) - xa).sum().compute()) != 0
    both = da.stack([xa, xb]).compute()
    np.testing.assert_array_equal(both[0], DATA)
    np.testing.assert_array_equal(both[1], DATA ^ 1)


def test_object_changed_between_open_and_read(s3_server, mrc_bytes):
    endpoint = s3_server["endpoint"]
    _put(endpoint, "change/s.mrc", mrc_bytes)
    url = f"s3://{BUCKET}/change/s.mrc"
    f = intake_mrc.open_mrc(url, _options(endpoint))
    name = f.to_dask().name
    changed = bytearray(mrc_bytes)
    changed[1024:] = (DATA ^ 3).tobytes()  # same size, other bytes
    _put(endpoint, "change/s.mrc", bytes(changed))
    with pytest.raises(ObjectChangedError, match="change/s.mrc"):
        f.read()
    with pytest.raises(ObjectChangedError):
        f.to_dask()[0].compute()
    again = intake_mrc.open_mrc(url, _options(endpoint))
    assert again.to_dask().name != name
    np.testing.assert_array_equal(again.read(), DATA ^ 3)


def test_object_changed_during_a_multipart_read(s3_server, mrc_bytes):
    endpoint = s3_server["endpoint"]
    _put(endpoint, "during/s.mrc", mrc_bytes)
    proxy = FaultProxy(endpoint, free_port()).start()
    try:
        changed = bytearray(mrc_bytes)
        changed[1024:] = (DATA ^ 5).tobytes()
        options = _options(proxy.url, part_nbytes=16384, concurrency=1)
        f = intake_mrc.open_mrc(f"s3://{BUCKET}/during/s.mrc", options)
        proxy.set(None)
        proxy.before_request = lambda n: n == 3 and _put(endpoint, "during/s.mrc", changed)
        with pytest.raises(ObjectChangedError, match="during/s.mrc"):
            f.read()
        assert 3 <= proxy.requests <= 4
    finally:
        proxy.stop()


@pytest.fixture
def proxied(s3_server, mrc_bytes):
    _put(s3_server["endpoint"], "proxied/s.mrc", mrc_bytes)
    proxy = FaultProxy(s3_server["endpoint"], free_port()).start()
    yield proxy, f"s3://{BUCKET}/proxied/s.mrc"
    proxy.stop()


@pytest.mark.parametrize("retries", [None, 0, 2])
def test_permanent_503_costs_exactly_our_attempts(proxied, retries):
    proxy, url = proxied
    settings = {} if retries is None else {"retries": retries}
    options = _options(proxy.url, **settings)
    if retries is None:  # the documented defaults
        options["intake_mrc"] = {"backoff": 0.05}
    f = intake_mrc.open_mrc(url, options)
    proxy.set("503")
    start = time.monotonic()
    with pytest.raises(StorageError, match="HTTP 503"):
        f.to_dask()[2].compute()
    assert proxy.requests == (3 if retries is None else retries) + 1
    assert time.monotonic() - start < 10


def test_stalled_s3_fails_within_the_deadline(proxied):
    proxy, url = proxied
    f = intake_mrc.open_mrc(url, _options(proxy.url))
    # The deadline under test, set after an open that a loaded machine may make slow.
    f.store.settings = replace(f.store.settings, request_timeout=1.0)
    proxy.stall_seconds = 4
    proxy.set("stall")
    start = time.monotonic()
    with pytest.raises(StorageError, match="within 1 s"):
        f.to_dask()[2].compute()
    assert proxy.requests == 3
    assert time.monotonic() - start < 3 * 1.0 + 6


def test_access_denied_is_permanent_and_says_how(proxied):
    proxy, url = proxied
    f = intake_mrc.open_mrc(url, _options(proxy.url))
    proxy.set("403")
    with pytest.raises(CredentialsError, match="anon") as info:
        f.to_dask()[0].compute()
    assert proxy.requests == 1
    assert S3_SECRET not in str(info.value)


def test_missing_credentials_say_how_to_give_them(s3_server, mrc_bytes):
    _put(s3_server["endpoint"], "nocred/s.mrc", mrc_bytes)
    script = textwrap.dedent(
        """
        import sys, intake_mrc
        try:
            intake_mrc.open_mrc(sys.argv[1], storage_options={
                "client_kwargs": {"endpoint_url": sys.argv[2]}})
        except intake_mrc.CredentialsError as error:
            print("CredentialsError", error)
        """
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env.update(
        AWS_CONFIG_FILE=os.devnull,
        AWS_SHARED_CREDENTIALS_FILE=os.devnull,
        AWS_EC2_METADATA_DISABLED="true",
        PYTHONPATH=os.pathsep.join(sys.path),
    )
    done = subprocess.run(
        [sys.executable, "-c", script, f"s3://{BUCKET}/nocred/s.mrc", s3_server["endpoint"]],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
    )
    assert done.stdout.startswith("CredentialsError"), done.stdout + done.stderr
    assert "anon" in done.stdout and "nocred/s.mrc" in done.stdout


def test_chained_url_on_two_endpoints_gets_two_names(s3_server, second_s3, mrc_bytes):
    """simplecache::s3:// (read through fsspec, not our S3 client): the endpoint of the
    inner layer is part of the name too."""
    other = bytearray(mrc_bytes)
    other[1024:] = (DATA ^ 1).tobytes()
    _put(s3_server["endpoint"], "chain/s.mrc", mrc_bytes)
    _put(second_s3, "chain/s.mrc", bytes(other))

    def chained(endpoint: str) -> dict:
        return {"s3": {k: v for k, v in _options(endpoint).items() if k != "intake_mrc"}}

    url = f"simplecache::s3://{BUCKET}/chain/s.mrc"
    xa = intake_mrc.open_mrc(url, chained(s3_server["endpoint"])).to_dask()
    xb = intake_mrc.open_mrc(url, chained(second_s3)).to_dask()
    assert xa.name != xb.name
    both = da.stack([xa, xb]).compute()
    np.testing.assert_array_equal(both[0], DATA)
    np.testing.assert_array_equal(both[1], DATA ^ 1)


def test_rewritten_memory_object_gets_a_new_name(mrc_bytes):
    """Other fsspec filesystems: the version the filesystem states is part of the name."""
    import fsspec

    fs = fsspec.filesystem("memory")
    url = "memory://intake-mrc-trust/rewritten.mrc"
    fs.pipe_file(url, mrc_bytes)
    try:
        first = intake_mrc.open_mrc(url).to_dask()
        changed = bytearray(mrc_bytes)
        changed[1024:] = (DATA ^ 7).tobytes()  # same size, other bytes
        time.sleep(0.01)  # memory:// states its creation time
        fs.pipe_file(url, bytes(changed))
        second = intake_mrc.open_mrc(url).to_dask()
        assert first.name != second.name
        np.testing.assert_array_equal(second.compute(), DATA ^ 7)
    finally:
        fs.rm(url)
