"""Hostile servers on 127.0.0.1: every answer is checked, memory and time stay bounded, and
no answer becomes silently wrong data (issue 8, storage items)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from conftest import free_port
from hostileserver import HostileServer
from mrcwriter import write_mrc

import intake_mrc
from intake_mrc import (
    ObjectChangedError,
    RangeNotSupportedError,
    StorageError,
    TruncatedFileError,
)

RNG = np.random.default_rng(8)
DATA = RNG.integers(0, 60000, size=(24, 64, 64)).astype(np.uint16)  # 192 KiB + header
# Small settings so that every failure is quick; generous bounds for a loaded machine.
FAST = {"retries": 2, "backoff": 0.05, "request_timeout": 10.0, "read_timeout": 5.0}
# For the tests of deadlines: 1.5 s per request in total.
DEADLINE = {"intake_mrc": {**FAST, "request_timeout": 1.5}}
OPTIONS = {"intake_mrc": FAST}
SLACK = 6.0


@pytest.fixture(scope="module")
def mrc_bytes(tmp_path_factory) -> bytes:
    path = write_mrc(tmp_path_factory.mktemp("hostile") / "h.mrc", DATA)
    return Path(path).read_bytes()


@pytest.fixture(scope="module")
def server(mrc_bytes):
    srv = HostileServer(free_port(), mrc_bytes).start()
    yield srv
    srv.stop()


@pytest.fixture(scope="module")
def other_server(mrc_bytes):
    srv = HostileServer(free_port(), mrc_bytes).start()
    yield srv
    srv.stop()


@pytest.fixture
def url(server, mrc_bytes):
    server.set(None)
    server.replace(mrc_bytes)
    server.change_after, server.changed_data, server.honour_if_match = None, None, True
    return f"{server.url}/data/h.mrc"


def test_correct_server_reads_exactly(url, server):
    f = intake_mrc.open_mrc(url, storage_options=OPTIONS)
    assert server.requests == 1  # header-only open: one request
    np.testing.assert_array_equal(f.read(), DATA)
    np.testing.assert_array_equal(f.to_dask(chunks=5).compute(), DATA)


def test_shifted_content_range_is_refused(url, server):
    f = intake_mrc.open_mrc(url, storage_options=OPTIONS)
    server.set("shift")
    with pytest.raises(StorageError, match="not the range asked") as info:
        f.to_dask()[3].compute()
    assert "h.mrc" in str(info.value)
    with pytest.raises(StorageError, match="not the range asked"):
        intake_mrc.open_mrc(url, storage_options=OPTIONS)


def test_capped_ranges_are_continued(url, server):
    f = intake_mrc.open_mrc(url, storage_options=OPTIONS)
    server.set("cap")
    server.cap_nbytes = 64 * 1024
    np.testing.assert_array_equal(f.read(), DATA)  # 192 KiB in 64 KiB answers
    assert server.requests == 3
    server.cap_nbytes = 512  # 400 continuations would be needed: bounded, said clearly
    with pytest.raises(StorageError, match="capped"):
        f.read()


def test_answers_without_content_length(url, server):
    server.set("no-length")
    f = intake_mrc.open_mrc(url, storage_options=OPTIONS)
    np.testing.assert_array_equal(f.read(), DATA)
    server.set("star")  # no total either: the size is never stated
    f = intake_mrc.open_mrc(url, storage_options=OPTIONS)
    np.testing.assert_array_equal(f.to_dask(chunks=6).compute(), DATA)
    with pytest.raises(StorageError, match="states no size"):
        f.read()


@pytest.mark.parametrize("mode", ["ignore-range", "endless-200", "endless-200-length"])
def test_server_ignoring_range_is_refused_without_downloading(url, server, mode):
    server.set(mode)
    with pytest.raises(RangeNotSupportedError, match="simplecache::") as info:
        intake_mrc.open_mrc(url, storage_options=OPTIONS)
    assert "h.mrc" in str(info.value) and "no_range" in str(info.value)
    assert server.requests == 1


def test_endless_206_body_is_not_read_on(url, server):
    f = intake_mrc.open_mrc(url, storage_options=OPTIONS)
    server.set("endless-206")
    start = time.monotonic()
    np.testing.assert_array_equal(f.to_dask()[2].compute(), DATA[2])
    assert time.monotonic() - start < SLACK


def test_drip_fails_within_the_total_deadline(url, server):
    # Bytes come every second, within the 5 s between-bytes limit: only the total
    # deadline can stop this.
    f = intake_mrc.open_mrc(url, storage_options=OPTIONS)
    # The deadline under test, set after an open that a loaded machine may make slow.
    f.store.settings = replace(f.store.settings, request_timeout=1.5, read_timeout=5.0)
    server.set("drip")
    start = time.monotonic()
    with pytest.raises(StorageError, match="within 1.5 s") as info:
        f.to_dask()[1].compute()
    elapsed = time.monotonic() - start
    # 3 attempts of 1.5 s and backoff 0.05 + 0.1 s
    assert 3 * 1.5 <= elapsed < 3 * 1.5 + 0.15 + SLACK
    assert server.requests == 3
    assert "3 attempt(s)" in str(info.value)


def test_stall_fails_within_the_total_deadline(url, server):
    server.set("stall")
    start = time.monotonic()
    with pytest.raises(StorageError, match="h.mrc"):
        intake_mrc.open_mrc(url, storage_options=DEADLINE)
    assert time.monotonic() - start < 3 * 1.5 + SLACK
    assert server.requests == 3


def test_permanent_503_costs_exactly_retries_plus_one(url, server):
    f = intake_mrc.open_mrc(url, storage_options=OPTIONS)
    server.set("503")
    with pytest.raises(StorageError, match="HTTP 503"):
        f.to_dask()[0].compute()
    assert server.requests == 3  # retries=2
    server.set("503")
    with pytest.raises(StorageError, match="after 4 attempt"):
        intake_mrc.open_mrc(url)  # the defaults
    assert server.requests == 4  # 3 retries, 4 requests


def test_429_retry_after_is_honoured_up_to_the_cap(url, server):
    f = intake_mrc.open_mrc(url, storage_options=OPTIONS)
    server.set("429", failures=1)
    server.retry_after = "1"
    start = time.monotonic()
    np.testing.assert_array_equal(f.to_dask()[4].compute(), DATA[4])
    assert time.monotonic() - start >= 1.0  # waited as asked (backoff alone is 0.05 s)
    assert server.requests == 2
    capped = intake_mrc.open_mrc(
        url, storage_options={"intake_mrc": {**FAST, "retry_after_cap": 0.1}}
    )
    server.set("429", failures=2)
    server.retry_after = "3600"
    start = time.monotonic()
    np.testing.assert_array_equal(capped.to_dask()[4].compute(), DATA[4])
    assert time.monotonic() - start < 0.2 + SLACK
    assert server.requests == 3


def test_headers_are_not_sent_to_another_origin(url, server, other_server):
    secret = {"X-Api-Key": "k-123", "Authorization": "Bearer t-456", "Cookie": "s=789"}
    options = {"headers": secret, "intake_mrc": FAST}
    server.set("redirect")
    server.redirect_to = other_server.url
    other_server.set(None)
    f = intake_mrc.open_mrc(url, storage_options=options)
    np.testing.assert_array_equal(f.read(), DATA)
    assert other_server.requests >= 2
    for seen in other_server.headers_seen:
        assert not {"X-Api-Key", "Authorization", "Cookie"} & set(seen), seen
        assert "Range" in seen
    for seen in server.headers_seen:  # the origin the headers belong to gets them
        assert seen["X-Api-Key"] == "k-123"


def test_http_object_changed_between_open_and_read(url, server, mrc_bytes):
    f = intake_mrc.open_mrc(url, storage_options=OPTIONS)
    name = f.to_dask().name
    changed = bytearray(mrc_bytes)
    changed[-10:] = b"\1" * 10
    server.replace(bytes(changed))
    with pytest.raises(ObjectChangedError, match="h.mrc"):
        f.read()
    with pytest.raises(ObjectChangedError):
        f.to_dask()[0].compute()
    again = intake_mrc.open_mrc(url, storage_options=OPTIONS)
    assert again.to_dask().name != name  # a new version, a new dask name
    assert again.read()[-1, -1, -1] == 257


@pytest.mark.parametrize("honour_if_match", [True, False])
def test_http_object_changed_during_a_multipart_read(url, server, mrc_bytes, honour_if_match):
    small = {"intake_mrc": {**FAST, "part_nbytes": 16384, "concurrency": 1}}
    f = intake_mrc.open_mrc(url, storage_options=small)
    changed = bytearray(mrc_bytes)
    changed[2000:] = bytes(len(changed) - 2000)  # same size, other bytes
    server.honour_if_match = honour_if_match  # else only our ETag comparison can tell
    server.set(None)
    server.change_after, server.changed_data = 3, bytes(changed)
    with pytest.raises(ObjectChangedError, match="h.mrc"):
        f.read()
    # Stopped at the first answer of the new version (one more request may already have
    # been sent when it came).
    assert 4 <= server.requests <= 5


def test_dask_names_differ_between_endpoints(server, other_server, mrc_bytes, url):
    other = bytearray(mrc_bytes)
    other[1024:] = (np.frombuffer(other[1024:], np.uint16) ^ 1).astype(np.uint16).tobytes()
    other_server.set(None)
    other_server.replace(bytes(other))
    a = intake_mrc.open_mrc(url, storage_options=OPTIONS).to_dask()
    b = intake_mrc.open_mrc(f"{other_server.url}/data/h.mrc", storage_options=OPTIONS).to_dask()
    assert a.name != b.name
    assert int(np.abs(b.astype(np.int64) - a).sum().compute()) != 0
    import dask.array as da

    both = da.stack([a, b]).compute()
    np.testing.assert_array_equal(both[0], DATA)
    np.testing.assert_array_equal(both[1], DATA ^ 1)


def test_truncated_answers_are_retried_then_fail(url, server, mrc_bytes):
    server.replace(mrc_bytes[:-5000])
    with pytest.raises(TruncatedFileError, match="h.mrc"):
        intake_mrc.open_mrc(url, storage_options=OPTIONS)


# -- memory: measured in a subprocess (peak RSS), with the server in this process

_RSS_SCRIPT = textwrap.dedent(
    """
    import json, resource, sys
    import intake_mrc
    url, options, action = sys.argv[1], json.loads(sys.argv[2]), sys.argv[3]
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    outcome = "ok"
    try:
        f = intake_mrc.open_mrc(url, storage_options=options)
        if action == "frames":
            values = [int(f.to_dask()[k].compute()[0, 0]) for k in (0, 3, 127)]
            outcome = "ok " + " ".join(map(str, values))
    except Exception as error:
        outcome = type(error).__name__
    after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(json.dumps({"outcome": outcome, "grown_kib": after - before}))
    """
)


def _run_measured(url: str, options: dict, action: str = "open") -> dict:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    done = subprocess.run(
        [sys.executable, "-c", _RSS_SCRIPT, url, json.dumps(options), action],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize("mode", ["ignore-range", "endless-200"])
def test_huge_or_endless_body_stays_out_of_memory(server, mode):
    server.set(mode)
    path = "/huge/big.mrc" if mode == "ignore-range" else "/data/h.mrc"
    result = _run_measured(server.url + path, {"intake_mrc": FAST})
    assert result["outcome"] == "RangeNotSupportedError"
    assert result["grown_kib"] < 64 * 1024  # the body is 1.5 GiB (or endless)
    assert server.bytes_sent < 256 * 2**20  # and most of it was never sent


def test_opt_in_cache_streams_once_with_bounded_memory(server, tmp_path):
    server.set("ignore-range")
    server.huge_frames = 128  # 128 MiB, generated
    try:
        options = {"intake_mrc": {**FAST, "no_range": "cache", "cache_dir": str(tmp_path)}}
        result = _run_measured(server.url + "/huge/cached.mrc", options, "frames")
    finally:
        server.huge_frames = 1536
    assert result["outcome"] == "ok 0 3 127"
    assert result["grown_kib"] < 96 * 1024
    assert server.requests == 2  # the refused ranged answer, then one download
    assert list(tmp_path.iterdir()) == []  # the download is removed at exit


def test_opt_in_cache_download_has_the_total_deadline(url, server, tmp_path):
    # A server ignoring Range and dripping the whole body, a byte every 0.5 s: within the
    # 5 s between-bytes limit, so only the total deadline can stop the download.
    server.set("drip-200")
    settings = {**FAST, "no_range": "cache", "cache_dir": str(tmp_path)}
    options = {"intake_mrc": {**settings, "request_timeout": 1.5, "read_timeout": 5.0}}
    start = time.monotonic()
    with pytest.raises(StorageError, match="within 1.5 s") as info:
        intake_mrc.open_mrc(url, storage_options=options)
    assert "h.mrc" in str(info.value) and "request_timeout" in str(info.value)
    assert 1.5 <= time.monotonic() - start < 1.5 + SLACK
    assert server.requests == 2  # the refused ranged answer, then the one download
    assert server.bytes_sent < 16
    assert list(tmp_path.iterdir()) == []  # the partial download is removed


def test_local_path_with_double_colon_is_a_local_file(tmp_path):
    path = write_mrc(tmp_path / "run::one.mrc", DATA)
    np.testing.assert_array_equal(intake_mrc.open_mrc(str(path)).read(), DATA)
