"""Requests that version pinning costs on fsspec paths (chained URLs), counted at a proxy.

Serves a small MRC stack from moto (S3, in this process, on 127.0.0.1) behind the tests'
counting proxy and prints, for each chain, the requests of a header-only open and of each
one-frame chunk read after it (the pinning check included). Counts, not times: moto is
never benchmarked.

Usage:  python benchmarks/pinning_requests.py [--chunks 4]
"""

from __future__ import annotations

import argparse
import pathlib
import sys
import tempfile

import numpy as np

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent.parent / "tests"))

from conftest import S3_KEY, S3_SECRET, free_port  # noqa: E402
from faultproxy import FaultProxy  # noqa: E402
from mrcwriter import write_mrc  # noqa: E402

import intake_mrc  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--chunks", type=int, default=4)
    args = parser.parse_args()

    import s3fs
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=free_port(), verbose=False)
    server.start()
    endpoint = f"http://127.0.0.1:{server._port}"
    fs = s3fs.S3FileSystem(key=S3_KEY, secret=S3_SECRET, client_kwargs={"endpoint_url": endpoint})
    for bucket in ("plain", "versioned"):
        fs.mkdir(bucket)
    fs.call_s3(
        "put_bucket_versioning",
        Bucket="versioned",
        VersioningConfiguration={"Status": "Enabled"},
    )
    data = np.arange(16 * 64 * 64, dtype=np.uint16).reshape(16, 64, 64)
    raw = write_mrc(pathlib.Path(tempfile.mkdtemp()) / "s.mrc", data).read_bytes()
    for bucket in ("plain", "versioned"):
        fs.pipe_file(f"{bucket}/s.mrc", raw)
    proxy = FaultProxy(endpoint, free_port()).start()
    try:
        print("| URL | s3 options | open | per chunk |")
        print("|---|---|---|---|")
        for chain, bucket, extra in (
            ("s3://", "plain", {}),
            ("simplecache::s3://", "plain", {}),
            ("filecache::s3://", "plain", {}),
            ("blockcache::s3://", "plain", {}),
            ("blockcache::s3://", "versioned", {"version_aware": True}),
            ("simplecache::s3://", "versioned", {"version_aware": True}),
        ):
            s3 = {"key": S3_KEY, "secret": S3_SECRET, "client_kwargs": {"endpoint_url": proxy.url}}
            options = {**s3, **extra} if chain == "s3://" else {"s3": {**s3, **extra}}
            proxy.set(None)
            f = intake_mrc.open_mrc(f"{chain}{bucket}/s.mrc", options)
            opened = proxy.requests
            frames = f.to_dask(chunks=1)
            proxy.set(None)
            for k in range(args.chunks):
                frames[k].compute()
            per_chunk = proxy.requests / args.chunks
            print(f"| `{chain}{bucket}/s.mrc` | {extra or '-'} | {opened} | {per_chunk:g} |")
    finally:
        proxy.stop()
        server.stop()


if __name__ == "__main__":
    main()
