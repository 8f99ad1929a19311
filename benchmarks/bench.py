"""Side-by-side benchmarks of intake_mrc (numbers, not assertions).

    python benchmarks/bench.py [--size-mib 512] [--latency-ms 30] [--only local,remote,...]

* local:     full read of a float32 file: numpy.fromfile, intake_mrc read() and
             to_dask().compute(), mrcfile.open (page cache warm, best of 3).
* remote:    over HTTP (aiohttp static on 127.0.0.1) behind a proxy adding --latency-ms per
             request: requests for a header-only open, bytes for one frame, full read time
             against one request per frame.
* reduction: peak memory (tracemalloc) of a mean over a file of many chunks.
* glob:      grouping 100,000 listed names into catalog entries and writing the YAML.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import socket
import sys
import tempfile
import threading
import time
import tracemalloc
from pathlib import Path

import numpy as np

import intake_mrc
from intake_mrc.format.writer import encode_mrc


def best_of(fn, n=3):
    times = []
    for _ in range(n):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def write_file(folder: Path, size_mib: int, frame=(256, 256)) -> tuple[Path, tuple]:
    n = max(1, size_mib * 2**20 // (frame[0] * frame[1] * 4))
    path = folder / "bench.mrc"
    data = np.random.default_rng(0).normal(size=(n,) + frame).astype(np.float32)
    path.write_bytes(encode_mrc(data))
    return path, data.shape


def bench_local(path: Path) -> None:
    base = best_of(lambda: np.fromfile(path, dtype=np.float32, offset=1024))
    read = best_of(lambda: intake_mrc.open_mrc(path).read())
    lazy = best_of(lambda: intake_mrc.open_mrc(path).to_dask().compute())
    print(f"local full read, {path.stat().st_size / 2**20:.0f} MiB (best of 3):")
    print(f"  numpy.fromfile            {base:.3f} s   1.00x")
    print(f"  intake_mrc read()         {read:.3f} s   {read / base:.2f}x")
    print(f"  intake_mrc dask compute   {lazy:.3f} s   {lazy / base:.2f}x")
    try:
        import mrcfile

        def via_mrcfile():
            with mrcfile.open(path) as m:
                np.asarray(m.data)

        slow = best_of(via_mrcfile)
        print(f"  mrcfile.open              {slow:.3f} s   {slow / base:.2f}x")
    except ImportError:
        pass


class LatencyProxy:
    """aiohttp static files on 127.0.0.1, each request delayed, counting requests/bytes."""

    def __init__(self, root: Path, latency: float):
        self.root, self.latency = root, latency
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self.requests = 0
        self.bytes = 0
        self.loop = asyncio.new_event_loop()
        ready = threading.Event()
        threading.Thread(target=self._run, args=(ready,), daemon=True).start()
        ready.wait(10)

    def _run(self, ready: threading.Event) -> None:
        from aiohttp import web

        asyncio.set_event_loop(self.loop)

        @web.middleware
        async def delay(request, handler):
            self.requests += 1
            await asyncio.sleep(self.latency)
            response = await handler(request)
            rng = request.headers.get("Range", "")
            if rng.startswith("bytes="):
                a, b = rng[6:].split("-")
                self.bytes += int(b) - int(a) + 1
            return response

        app = web.Application(middlewares=[delay])
        app.router.add_static("/", str(self.root))
        runner = web.AppRunner(app, access_log=None)
        self.loop.run_until_complete(runner.setup())
        self.loop.run_until_complete(web.TCPSite(runner, "127.0.0.1", self.port).start())
        ready.set()
        self.loop.run_forever()

    def reset(self) -> None:
        self.requests = self.bytes = 0


def bench_remote(path: Path, shape: tuple, latency_ms: float) -> None:
    import fsspec

    proxy = LatencyProxy(path.parent, latency_ms / 1000)
    url = f"{proxy.url}/{path.name}"
    proxy.reset()
    f = intake_mrc.open_mrc(url)
    print(f"remote over HTTP with {latency_ms:g} ms per request:")
    print(f"  header-only open: {proxy.requests} request(s)")
    proxy.reset()
    frame_nbytes = shape[1] * shape[2] * 4
    f.to_dask()[shape[0] // 2].compute()
    print(
        f"  one frame: {proxy.requests} request(s), {proxy.bytes} bytes for a "
        f"{frame_nbytes}-byte frame ({100 * (proxy.bytes / frame_nbytes - 1):.1f}% extra)"
    )
    n_frames = min(shape[0], 200)
    fs = fsspec.filesystem("http")

    def per_frame():
        for i in range(n_frames):
            fs.cat_file(url, start=1024 + i * frame_nbytes, end=1024 + (i + 1) * frame_nbytes)

    slow = best_of(per_frame, 1)
    full = best_of(lambda: intake_mrc.open_mrc(url).read(), 1)
    lazy = best_of(lambda: intake_mrc.open_mrc(url).to_dask().compute(), 1)
    per_frame_full = slow / n_frames * shape[0]
    print(
        f"  one request per frame: {slow:.2f} s for {n_frames} frames "
        f"(-> {per_frame_full:.2f} s for all {shape[0]})"
    )
    print(
        f"  intake_mrc read(): {full:.2f} s ({per_frame_full / full:.1f}x faster); "
        f"to_dask().compute(): {lazy:.2f} s ({per_frame_full / lazy:.1f}x faster)"
    )


def bench_reduction(path: Path) -> None:
    f = intake_mrc.open_mrc(path, chunks=8, mmap_mode=None)
    arr = f.to_dask()
    chunk_nbytes = arr.blocks[0].nbytes
    tracemalloc.start()
    arr.mean().compute()
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    print(
        f"reduction (mean) over {arr.npartitions} chunks of {chunk_nbytes / 2**20:.1f} MiB "
        f"({arr.nbytes / 2**20:.0f} MiB): peak {peak / 2**20:.1f} MiB traced "
        f"= {peak / chunk_nbytes:.1f} chunks"
    )


def bench_glob(n_acquisitions: int = 20_000) -> None:
    from intake_mrc.catalog import catalog_yaml, plan_entries

    names = []
    for i in range(n_acquisitions):
        stem = f"bucket/run/20250101_{i:05d}"
        names += [
            f"{stem}_movie.mrc",
            f"{stem}_info.txt",
            f"{stem}_0_Virt #0_sum.mrc",
            f"{stem}_ext1_Ext #1.mrc",
            f"{stem}_final.mrc",
        ]
    start = time.perf_counter()
    entries = plan_entries(names)
    grouped = time.perf_counter() - start
    start = time.perf_counter()
    text = catalog_yaml(entries)
    written = time.perf_counter() - start
    print(
        f"catalog glob of {len(names)} listed files: grouped into {len(entries)} entries in "
        f"{grouped:.2f} s; YAML ({len(text) / 2**20:.1f} MiB) written in {written:.2f} s"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size-mib", type=int, default=512)
    parser.add_argument("--latency-ms", type=float, default=30)
    parser.add_argument("--only", default="local,remote,reduction,glob")
    args = parser.parse_args()
    which = set(args.only.split(","))
    print(f"python {sys.version.split()[0]}, numpy {np.__version__}, {os.cpu_count()} cores")
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        if which & {"local", "reduction"}:
            path, shape = write_file(folder, args.size_mib)
            if "local" in which:
                bench_local(path)
            if "reduction" in which:
                bench_reduction(path)
        if "remote" in which:
            (folder / "remote").mkdir()
            small, shape = write_file(folder / "remote", min(args.size_mib, 64))
            bench_remote(small, shape, args.latency_ms)
    if "glob" in which:
        bench_glob()


if __name__ == "__main__":
    main()
