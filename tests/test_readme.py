"""README.md's ```python blocks run as written against the local test servers.

Placeholders, mapped here (and only here):
* ``s3://bucket/...``: the moto server on 127.0.0.1; copies of every tests/data file are
  uploaded under ``s3://bucket/``, ``s3://bucket/run/`` and ``s3://bucket/session-1/``, and
  fsspec's configuration (``fsspec.config.conf["s3"]``) gives s3fs the server's endpoint and
  test keys; ``{"anon": True}`` (a public bucket) and ``{...}`` (the README's "your
  options") become ``{}``, as the loopback server is not public.
* Local names (``EMD-3001.map``, ``20241021_00405_movie.mrc``, ``stack.mrc``, ``map.mrc``):
  the working directory holds copies of tests/data files under those names.
* ``url``: an s3:// URL of a sample map; ``f``: the file opened by the block before it.

Blocks that need what the test servers cannot give are listed in NOT_RUN with the reason;
every other block must run. A new block must be put in one list or the other."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import fsspec
import numpy as np
import pytest
from conftest import MRCFILE_TESTS, RSCIIO

import intake_mrc

ROOT = Path(__file__).resolve().parents[1]
BLOCKS = re.findall(r"```python\n(.*?)```", (ROOT / "README.md").read_text(), re.S)

# First line of a block -> why the test servers cannot run it.
NOT_RUN = {
    "import hyperspy.api as hs": "HyperSpy is not in the test extra",
    "refs = intake_mrc.open_mrc(\"stack.mrc\").to_references()": "reads movie.refs.json "
    "written by the CLI example above it (tests/test_references.py runs the same calls)",
    "from obspec_utils.registry import ObjectStoreRegistry": "VirtualiZarr needs Python 3.12 "
    "(tests/test_virtualizarr.py)",
    "viewer.open(": "needs a napari viewer (tests/test_napari.py tests the reader)",
    "intake_mrc.write_catalog(\"s3://bucket/portal/\"": "names a bucket prefix of its own "
    "(tests/test_catalog_sqlite.py runs the same calls)",
}


def _first_line(block: str) -> str:
    return block.strip().splitlines()[0].strip()


def _skipped(block: str) -> str | None:
    first = _first_line(block)
    return next((why for start, why in NOT_RUN.items() if first.startswith(start)), None)


@pytest.fixture
def readme_world(tmp_path, monkeypatch, s3fs_root, s3_server):
    names = {
        "EMD-3001.map": MRCFILE_TESTS / "EMD-3001.map",
        "EMD-3197.map": MRCFILE_TESTS / "EMD-3197.map",
        "stack.mrc": MRCFILE_TESTS / "EMD-3197.map",
        "map.mrc": MRCFILE_TESTS / "EMD-3197.map",
    }
    for path in RSCIIO.iterdir():
        names.setdefault(path.name, path)
    for name, path in names.items():
        shutil.copy(path, tmp_path / name)
    s3fs_root.mkdir("bucket")
    for prefix in ("bucket", "bucket/run", "bucket/session-1"):
        for name in names:
            s3fs_root.put_file(str(tmp_path / name), f"{prefix}/{name}")
    s3fs_root.invalidate_cache()
    options = s3_server["storage_options"]
    monkeypatch.setitem(fsspec.config.conf, "s3", dict(options))
    monkeypatch.chdir(tmp_path)
    return {"np": np, "intake_mrc": intake_mrc, "url": "s3://bucket/EMD-3197.map"}


def test_every_block_is_run_or_named():
    assert BLOCKS
    used = {start for start in NOT_RUN if any(_first_line(b).startswith(start) for b in BLOCKS)}
    assert used == set(NOT_RUN), "NOT_RUN names a block the README no longer has"


def test_readme_python_blocks_run(readme_world):
    namespace = dict(readme_world)
    ran = 0
    for block in BLOCKS:
        if _skipped(block):
            continue
        code = block.replace("{...}", "{}").replace('{"anon": True}', "{}")
        try:
            exec(compile(code, "README.md block", "exec"), namespace)
        except Exception as error:  # noqa: BLE001 - name the block that failed
            pytest.fail(f"README block starting {_first_line(block)!r} failed: {error!r}")
        ran += 1
    assert ran == sum(not _skipped(b) for b in BLOCKS) >= 8
