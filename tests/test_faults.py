"""Fault injection in front of the real HTTP and S3 test servers: transient failures are
retried and give byte-identical data; permanent ones fail clearly in bounded time; truncated
or un-ranged answers are never taken as data."""

from __future__ import annotations

import time

import numpy as np
import pytest
from conftest import free_port
from faultproxy import FaultProxy
from mrcwriter import write_mrc

import intake_mrc
from intake_mrc import StorageError, TruncatedFileError

RNG = np.random.default_rng(11)
# Generous bounds for a loaded CI machine; the reader's own worst case is far below.
PERMANENT_FAILURE_SECONDS = 15


@pytest.fixture(scope="module")
def stack_file(tmp_path_factory):
    data = RNG.integers(0, 60000, size=(30, 64, 64)).astype(np.uint16)  # 240 KiB
    path = write_mrc(tmp_path_factory.mktemp("faults") / "faulty.mrc", data)
    return path, data


@pytest.fixture(scope="module")
def http_proxy(http_server):
    proxy = FaultProxy(http_server.url, free_port()).start()
    yield proxy
    proxy.stop()


@pytest.fixture(scope="module")
def s3_proxy(s3_server):
    proxy = FaultProxy(s3_server["endpoint"], free_port()).start()
    yield proxy
    proxy.stop()


@pytest.fixture
def http_url(stack_file, http_upload, http_proxy, http_server):
    (url,) = http_upload(stack_file[0], prefix="faults")
    return url.replace(http_server.url, http_proxy.url)


@pytest.fixture
def s3_target(stack_file, s3_upload, s3_server, s3_proxy):
    (url,) = s3_upload(stack_file[0], prefix="faults")
    options = {**s3_server["storage_options"], "client_kwargs": {"endpoint_url": s3_proxy.url}}
    return url, options


HTTP_OPTIONS = {"client_kwargs": {"timeout": 1.0}}


@pytest.mark.parametrize("mode", ["503", "reset", "truncate", "stall"])
def test_http_transient_faults_are_retried(http_url, http_proxy, stack_file, mode):
    _, data = stack_file
    http_proxy.stall_seconds = 3.0
    f = intake_mrc.open_mrc(http_url, storage_options=HTTP_OPTIONS, chunks=7)
    http_proxy.set(mode, failures=2)
    np.testing.assert_array_equal(f.to_dask().compute(), data)
    assert http_proxy.faults == 2
    http_proxy.set(mode, failures=1)
    np.testing.assert_array_equal(f.read(), data)


@pytest.mark.parametrize("mode", ["500", "reset", "truncate"])
def test_http_permanent_faults_fail_in_bounded_time(http_url, http_proxy, mode):
    f = intake_mrc.open_mrc(http_url, storage_options=HTTP_OPTIONS)
    http_proxy.set(mode)
    start = time.monotonic()
    with pytest.raises((StorageError, TruncatedFileError)) as info:
        f.to_dask()[3].compute()
    assert time.monotonic() - start < PERMANENT_FAILURE_SECONDS
    assert "faulty.mrc" in str(info.value)
    assert http_proxy.requests == 4  # exactly our 3 retries (+1): no nested retry storm
    http_proxy.set(None)


def test_http_server_ignoring_range_is_refused(http_url, http_proxy, stack_file):
    http_proxy.set("ignore-range")
    with pytest.raises(StorageError, match="ignores Range"):
        intake_mrc.open_mrc(http_url)
    http_proxy.set(None)
    f = intake_mrc.open_mrc(http_url)
    http_proxy.set("ignore-range")
    with pytest.raises(StorageError, match="ignores Range"):
        f.to_dask()[5].compute()
    with pytest.raises(StorageError, match="ignores Range"):
        f.read()
    http_proxy.set(None)


@pytest.mark.parametrize("mode", ["503", "truncate"])
def test_s3_transient_faults_are_retried(s3_target, s3_proxy, stack_file, mode):
    url, options = s3_target
    _, data = stack_file
    f = intake_mrc.open_mrc(url, storage_options=options, chunks=10)
    s3_proxy.set(mode, failures=2)
    np.testing.assert_array_equal(f.to_dask().compute(), data)
    assert s3_proxy.faults == 2


@pytest.mark.parametrize("mode", ["500", "503"])
def test_s3_permanent_faults_fail_in_bounded_time(s3_target, s3_proxy, mode):
    url, options = s3_target
    f = intake_mrc.open_mrc(url, storage_options=options)
    s3_proxy.set(mode)
    start = time.monotonic()
    with pytest.raises(StorageError) as info:
        f.to_dask()[3].compute()
    elapsed = time.monotonic() - start
    requests = s3_proxy.requests
    s3_proxy.set(None)
    assert elapsed < PERMANENT_FAILURE_SECONDS
    assert "faulty.mrc" in str(info.value)
    assert requests == 4  # exactly our 3 retries (+1): botocore and s3fs do not retry


def test_s3_ignoring_range_is_refused(s3_target, s3_proxy):
    url, options = s3_target
    f = intake_mrc.open_mrc(url, storage_options=options)
    s3_proxy.set("ignore-range")
    with pytest.raises(StorageError, match="ignores Range"):
        f.to_dask()[2].compute()
    s3_proxy.set(None)


def test_unreachable_server_fails_fast():
    port = free_port()  # nothing listens there
    start = time.monotonic()
    with pytest.raises(StorageError, match=f"127.0.0.1:{port}"):
        intake_mrc.open_mrc(f"http://127.0.0.1:{port}/x.mrc")
    assert time.monotonic() - start < PERMANENT_FAILURE_SECONDS


def test_s3_glob_is_one_listing_and_reads_need_no_listing(s3_upload, s3_server, s3_proxy):
    from conftest import RSCIIO

    from intake_mrc.catalog import glob_catalog

    s3_upload(*sorted(RSCIIO.glob("20241021_00405_*")), RSCIIO / "HAADFscan.mrc", prefix="counted")
    options = {**s3_server["storage_options"], "client_kwargs": {"endpoint_url": s3_proxy.url}}
    s3_proxy.set(None)
    cat = glob_catalog("s3://intake-mrc-test/counted/", storage_options=options)
    assert sorted(cat) == ["HAADFscan", "de_20241021_00405"]
    assert s3_proxy.requests == 1  # one listing, no request per file
    s3_proxy.set(None)
    arr = cat["de_20241021_00405"].read()  # info file + movie header: no listing
    assert s3_proxy.requests == 2 and arr.shape == (4, 8, 4, 8)
