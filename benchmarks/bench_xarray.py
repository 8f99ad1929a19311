"""Cost of the xarray front end, as ratios against anchors measured in the same run.

    python benchmarks/bench_xarray.py [--mib 256]

1. What the engine adds to every xarray user: importing ``intake_mrc.xarray_backend`` after
   xarray (xarray imports every registered backend to list its engines), in a fresh process.
2. A full local read through ``xr.open_dataarray(engine="mrc")`` (lazy indexing, and
   ``chunks={}``) against ``MRCFile.read()`` and ``numpy.fromfile`` on the same file.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

IMPORT_PROBE = """
import time
import xarray
t = time.perf_counter()
import intake_mrc.xarray_backend
import sys
print(time.perf_counter() - t, "dask.array" in sys.modules)
"""


def best(fn, repeat: int = 3) -> float:
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return min(times)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--mib", type=int, default=256)
    args = parser.parse_args()

    runs = [subprocess.run([sys.executable, "-c", IMPORT_PROBE], capture_output=True, text=True)]
    runs += [
        subprocess.run([sys.executable, "-c", IMPORT_PROBE], capture_output=True, text=True)
        for _ in range(2)
    ]
    seconds = [float(r.stdout.split()[0]) for r in runs]
    dask_loaded = {r.stdout.split()[1] for r in runs}
    print(
        f"import intake_mrc.xarray_backend after xarray: median {statistics.median(seconds):.3f} s"
        f" (dask.array imported: {dask_loaded})"
    )

    import xarray as xr

    import intake_mrc
    from intake_mrc.format.writer import encode_mrc

    n = args.mib * 2**20 // (4 * 512 * 512)
    data = np.random.default_rng(0).random((n, 512, 512), dtype=np.float32)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "bench.mrc"
        path.write_bytes(encode_mrc(data))
        offset = path.stat().st_size - data.nbytes
        anchor = best(lambda: np.fromfile(path, dtype=np.float32, offset=offset))
        f = intake_mrc.open_mrc(path, mmap_mode=None)
        read = best(f.read)
        lazy = best(lambda: xr.open_dataarray(path, engine="mrc", mmap_mode=None).values)
        chunked = best(
            lambda: xr.open_dataarray(path, engine="mrc", mmap_mode=None, chunks={}).values
        )
        print(f"full read of {data.nbytes / 2**20:.0f} MiB float32, best of 3:")
        print(f"  numpy.fromfile       {anchor:.3f} s (1.00x)")
        print(f"  MRCFile.read()       {read:.3f} s ({read / anchor:.2f}x)")
        print(f"  xarray, chunks=None  {lazy:.3f} s ({lazy / anchor:.2f}x)")
        print(f"  xarray, chunks={{}}    {chunked:.3f} s ({chunked / anchor:.2f}x)")


if __name__ == "__main__":
    main()
