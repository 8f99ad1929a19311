"""Read kerchunk references back the way a user without intake_mrc would, in a separate
process: fsspec's reference filesystem + zarr, and xarray's zarr engine.

Usage: python refs_reader.py CASES.json. Each case: {"refs": path to the references (JSON
file or parquet folder), "expected": .npy of ``open_mrc(...).read()``, "zarr_format",
"remote_protocol", "remote_options", "dims", "coords" (optional: dim -> values)}. Prints
one line per case and "checked N"; exits non-zero at the first difference. intake_mrc is made
unimportable here, and the end asserts it was never imported.
"""

from __future__ import annotations

import importlib.abc
import json
import sys


class _NoIntakeMRC(importlib.abc.MetaPathFinder):
    """Makes intake_mrc unimportable here, so that nothing (not even an installed plugin
    entry point) can quietly help the readers."""

    def find_spec(self, name, path=None, target=None):  # noqa: ANN001 - importlib protocol
        if name == "intake_mrc" or name.startswith("intake_mrc."):
            raise ModuleNotFoundError(f"{name} is blocked in this process", name=name)
        return None


sys.meta_path.insert(0, _NoIntakeMRC())

import fsspec  # noqa: E402
import numpy as np  # noqa: E402
import xarray as xr  # noqa: E402
import zarr  # noqa: E402
from zarr.storage import FsspecStore  # noqa: E402


def _options(case: dict) -> dict:
    options = {"fo": case["refs"]}
    if case.get("remote_protocol"):
        options["remote_protocol"] = case["remote_protocol"]
    if case.get("remote_options"):
        # zarr 3 reads asynchronously: the target filesystem must be asynchronous too.
        options["remote_options"] = {**case["remote_options"], "asynchronous": True}
    if not case["refs"].endswith(".json"):
        options["lazy"] = True  # the parquet form
    return options


def check(case: dict) -> str:
    expected = np.load(case["expected"])
    zarr_format = case.get("zarr_format", 2)
    fs = fsspec.filesystem("reference", asynchronous=True, **_options(case))
    group = zarr.open_group(FsspecStore(fs, read_only=True), mode="r", zarr_format=zarr_format)
    got = group["data"][...]
    # zarr v2 hands out the stored byte order (">f4"); the values are what matter.
    assert got.dtype.newbyteorder("=") == expected.dtype, (got.dtype, expected.dtype)
    assert got.shape == expected.shape, (got.shape, expected.shape)
    assert np.array_equal(got, expected, equal_nan=expected.dtype.kind in "fc")
    ds = xr.open_dataset(
        "reference://",
        engine="zarr",
        backend_kwargs={
            "consolidated": False,
            "zarr_format": zarr_format,
            "storage_options": {**_options(case), "asynchronous": True},
        },
    )
    data = ds["data"]
    assert data.dtype.newbyteorder("=") == expected.dtype, (data.dtype, expected.dtype)
    assert list(data.dims) == case["dims"], (data.dims, case["dims"])
    assert np.array_equal(data.values, expected, equal_nan=expected.dtype.kind in "fc")
    for dim, values in (case.get("coords") or {}).items():
        assert np.allclose(ds[dim].values, values), dim
    return f"{case['expected']}: {data.dims} {data.dtype} equal"


def main() -> int:
    with open(sys.argv[1], encoding="utf-8") as f:
        cases = json.load(f)
    for case in cases:
        print(check(case), flush=True)
    assert "intake_mrc" not in sys.modules, "the reading process imported intake_mrc"
    print(f"checked {len(cases)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
