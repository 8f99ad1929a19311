"""Remote reads against raw fsspec, side by side in one run (issue 11, remote-read bullet).

Serves a float32 MRC stack (default 64 MiB, 1 MiB frames) from another process on
127.0.0.1 - over HTTP (aiohttp static files, which honour Range) and over S3 (the npm
``s3rver`` if it is installed, else skipped) - with a fixed latency added to every request
by a proxy in that process, and prints one markdown table of medians:

* anchor: raw fsspec ``cat_ranges`` over the same byte ranges (one range per frame, all in
  one call);
* ``read()`` and ``to_dask().compute()`` (default chunks, default scheduler), with their
  ratios to the anchor;
* ``to_dask(chunks=1).compute()`` (one-frame chunks) and sequential frame requests;
* a single frame's byte amplification and the requests of a header-only open.

Usage:  python benchmarks/remote_reads.py [--size-mib 64] [--latency-ms 0,30,100]
        [--repeats 3] [--protocols http,s3] [--s3rver PATH-TO-node_modules/.bin/s3rver]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

FRAME = (512, 512)  # float32: 1 MiB a frame
S3_KEY, S3_SECRET = "S3RVER", "S3RVER"  # s3rver's fixed credentials
BUCKET = "bench"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_port(port: int, seconds: float = 30) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"nothing listens on port {port}")


# -- the server process: static files or a proxy to s3rver, with latency, counting bytes


def _serve(port: int, root: str | None, upstream: str | None) -> None:
    from aiohttp import ClientSession, web

    counters = {"requests": 0, "bytes": 0}
    latency = {"s": 0.0}

    @web.middleware
    async def delay(request: web.Request, handler: Any) -> web.StreamResponse:
        if request.path == "/__stats":
            return web.json_response(counters)
        if request.path == "/__reset":
            counters.update(requests=0, bytes=0)
            return web.json_response(counters)
        if request.path == "/__latency":
            latency["s"] = float(request.query["ms"]) / 1000
            return web.json_response(latency)
        counters["requests"] += 1
        if latency["s"]:
            await asyncio.sleep(latency["s"])
        response = await handler(request)
        asked = request.headers.get("Range", "")
        if asked.startswith("bytes=") and "," not in asked and not asked[6:].startswith("-"):
            first, _, last = asked[6:].partition("-")
            counters["bytes"] += int(last) - int(first) + 1
        else:
            counters["bytes"] += response.content_length or 0
        return response

    app = web.Application(middlewares=[delay])
    if root is not None:
        app.router.add_static("/", root)
    else:
        hop = {"connection", "keep-alive", "transfer-encoding", "host", "content-length"}

        async def forward(request: web.Request) -> web.StreamResponse:
            headers = {k: v for k, v in request.headers.items() if k.lower() not in hop}
            body = await request.read()
            async with app["session"].request(
                request.method,
                upstream + request.path_qs,
                headers=headers,
                data=body,
                auto_decompress=False,
            ) as answer:
                out = web.StreamResponse(
                    status=answer.status,
                    headers={k: v for k, v in answer.headers.items() if k.lower() not in hop},
                )
                if answer.content_length is not None:
                    out.content_length = answer.content_length
                await out.prepare(request)
                async for piece in answer.content.iter_chunked(2**20):
                    await out.write(piece)
                await out.write_eof()
                return out

        async def start(app: web.Application) -> None:
            app["session"] = ClientSession(auto_decompress=False)

        app.on_startup.append(start)
        app.router.add_route("*", "/{tail:.*}", forward)
    web.run_app(app, host="127.0.0.1", port=port, print=None, access_log=None)


class Server:
    """The server process; ``latency_ms`` can be changed while it runs."""

    def __init__(self, root: str | None = None, upstream: str | None = None):
        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        command = [sys.executable, __file__, "--serve", str(self.port)]
        command += ["--root", root] if root else ["--upstream", str(upstream)]
        self._process = subprocess.Popen(command)
        _wait_port(self.port)

    def _get(self, path: str) -> dict[str, Any]:
        import json
        import urllib.request

        with urllib.request.urlopen(self.url + path) as r:
            return json.loads(r.read())

    def set_latency(self, ms: float) -> None:
        self._get(f"/__latency?ms={ms}")

    def stats(self, reset: bool = False) -> dict[str, int]:
        return self._get("/__reset" if reset else "/__stats")

    def stop(self) -> None:
        self._process.terminate()
        self._process.wait(10)


# -- measurements


def _median_seconds(fn: Any, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


# Ratios are throughput ratios: anchor seconds / our seconds (above 1: faster than fsspec).


def _write_stack(path: Path, size_mib: int) -> tuple[int, int]:
    """A float32 MRC of ``size_mib`` 1 MiB frames; (data offset, frame bytes)."""
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from intake_mrc.format.writer import encode_mrc

    data = np.random.default_rng(0).random((size_mib,) + FRAME, dtype=np.float32)
    path.write_bytes(encode_mrc(data))
    return path.stat().st_size - data.nbytes, data[0].nbytes


def _measure(
    label: str,
    url: str,
    options: dict[str, Any],
    raw_fs: Any,
    raw_path: str,
    offset: int,
    frame_nbytes: int,
    n_frames: int,
    repeats: int,
    server: Server,
) -> dict[str, Any]:
    import intake_mrc

    nbytes = frame_nbytes * n_frames
    starts = [offset + k * frame_nbytes for k in range(n_frames)]
    ends = [s + frame_nbytes for s in starts]

    def anchor() -> None:
        got = raw_fs.cat_ranges([raw_path] * n_frames, starts, ends, on_error="raise")
        assert sum(len(g) for g in got) == nbytes

    def sequential() -> None:
        for s, e in zip(starts, ends, strict=True):
            raw_fs.cat_file(raw_path, start=s, end=e)

    f = intake_mrc.open_mrc(url, storage_options=options)
    expect = f.read()
    runs = {
        "anchor": anchor,
        "read": f.read,
        "compute": lambda: f.to_dask().compute(),
        "chunks1": lambda: f.to_dask(chunks=1).compute(),
        # The documented setting for small chunks over latency: more threads than cores.
        "chunks1_w16": lambda: f.to_dask(chunks=1).compute(num_workers=16),
    }
    # Round robin, so that the load of a shared machine falls on every column alike.
    times: dict[str, list[float]] = {k: [] for k in runs}
    for _ in range(repeats):
        for key, fn in runs.items():
            start = time.perf_counter()
            fn()
            times[key].append(time.perf_counter() - start)
    out: dict[str, Any] = {"label": label}
    out.update({k: statistics.median(v) for k, v in times.items()})
    # Ratio per round (same moment), then the median: steadier than a ratio of medians.
    for key in ("read", "compute", "chunks1", "chunks1_w16"):
        out[key + "_ratio"] = statistics.median(
            a / b for a, b in zip(times["anchor"], times[key], strict=True)
        )
    out["sequential"] = _median_seconds(sequential, 1)
    np.testing.assert_array_equal(f.to_dask(chunks=1).compute(), expect)
    server.stats(reset=True)
    intake_mrc.open_mrc(url, storage_options=options)
    out["open_requests"] = server.stats()["requests"]
    server.stats(reset=True)
    f.to_dask(chunks=1)[n_frames // 2].compute()
    out["amplification"] = server.stats()["bytes"] / frame_nbytes
    out["nbytes"] = nbytes
    return out


def _row(r: dict[str, Any]) -> str:
    mbs = {
        k: r["nbytes"] / r[k] / 1e6 for k in ("anchor", "read", "compute", "chunks1", "chunks1_w16")
    }
    seq = r["nbytes"] / r["sequential"] / 1e6
    return (
        f"| {r['label']} | {mbs['anchor']:.0f} | {mbs['read']:.0f} "
        f"({r['read_ratio']:.2f}x) | {mbs['compute']:.0f} "
        f"({r['compute_ratio']:.2f}x) | {mbs['chunks1']:.0f} "
        f"({r['chunks1_ratio']:.2f}x) | {mbs['chunks1_w16']:.0f} "
        f"({r['chunks1_w16_ratio']:.2f}x) | {seq:.0f} | {r['amplification']:.3f} | "
        f"{r['open_requests']} |"
    )


HEADER = (
    "| protocol, latency | anchor: fsspec cat_ranges MB/s | read() MB/s (ratio) | "
    "to_dask().compute() MB/s (ratio) | chunks=1 compute MB/s (ratio) | "
    "chunks=1, num_workers=16 MB/s (ratio) | sequential frames MB/s | "
    "one-frame amplification | header-only open requests |\n"
    "|---|---|---|---|---|---|---|---|---|"
)


def _http_runs(root: Path, name: str, args: Any, layout: tuple[int, int]) -> list[dict]:
    import fsspec

    server = Server(root=str(root))
    rows = []
    try:
        url = f"{server.url}/{name}"
        raw_fs = fsspec.filesystem("http", skip_instance_cache=True)
        for ms in args.latency_ms:
            server.set_latency(ms)
            rows.append(
                _measure(
                    f"HTTP, {ms:g} ms",
                    url,
                    {},
                    raw_fs,
                    url,
                    *layout,
                    args.size_mib,
                    args.repeats,
                    server,
                )
            )
    finally:
        server.stop()
    return rows


def _s3_runs(path: Path, args: Any, layout: tuple[int, int]) -> list[dict]:
    import s3fs

    s3rver = args.s3rver or shutil.which("s3rver")
    if not s3rver or not Path(s3rver).exists():
        print("(S3 skipped: s3rver not found; npm install s3rver, pass --s3rver)", file=sys.stderr)
        return []
    folder = tempfile.mkdtemp(prefix="s3rver-")
    port = _free_port()
    node = subprocess.Popen(
        [
            s3rver,
            "-d",
            folder,
            "-p",
            str(port),
            "-a",
            "127.0.0.1",
            "--silent",
            "--allow-mismatched-signatures",
            "--configure-bucket",
            BUCKET,
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    rows = []
    try:
        _wait_port(port)
        direct = f"http://127.0.0.1:{port}"
        up = s3fs.S3FileSystem(
            key=S3_KEY, secret=S3_SECRET, endpoint_url=direct, skip_instance_cache=True
        )
        up.put_file(str(path), f"{BUCKET}/{path.name}")
        proxy = Server(upstream=direct)
        try:
            options = {"key": S3_KEY, "secret": S3_SECRET, "endpoint_url": proxy.url}
            raw_fs = s3fs.S3FileSystem(**options, skip_instance_cache=True)
            url = f"s3://{BUCKET}/{path.name}"
            for ms in args.latency_ms:
                proxy.set_latency(ms)
                rows.append(
                    _measure(
                        f"S3 (s3rver), {ms:g} ms",
                        url,
                        options,
                        raw_fs,
                        url,
                        *layout,
                        args.size_mib,
                        args.repeats,
                        proxy,
                    )
                )
        finally:
            proxy.stop()
    finally:
        node.terminate()
        node.wait(10)
        shutil.rmtree(folder, ignore_errors=True)
    return rows


def main(argv: list[str] | None = None) -> list[dict]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size-mib", type=int, default=64)
    parser.add_argument("--latency-ms", default="0,30,100")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--protocols", default="http,s3")
    parser.add_argument("--s3rver", default=None)
    args = parser.parse_args(argv)
    args.latency_ms = [float(x) for x in args.latency_ms.split(",")]
    protocols = args.protocols.split(",")
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "stack.mrc"
        layout = _write_stack(path, args.size_mib)
        rows = []
        if "http" in protocols:
            rows += _http_runs(Path(tmp), path.name, args, layout)
        if "s3" in protocols:
            rows += _s3_runs(path, args, layout)
    print(
        f"{args.size_mib} MiB float32, 1 MiB frames, medians of {args.repeats} runs, "
        f"{os.cpu_count()} cores\n"
    )
    print(HEADER)
    for r in rows:
        print(_row(r))
    return rows


if __name__ == "__main__":
    if len(sys.argv) > 2 and sys.argv[1] == "--serve":
        serve = argparse.ArgumentParser()
        serve.add_argument("--serve", type=int)
        serve.add_argument("--root")
        serve.add_argument("--upstream")
        a = serve.parse_args()
        _serve(a.serve, a.root, a.upstream)
    else:
        main()
