"""README.md's code blocks run as written, in README order, in one working folder, against the
local test servers, and what their comments state is asserted.

By fence:
* ```python: executed statement by statement in one namespace, as in a notebook. Every
  statement carrying a comment has an entry, keyed by the comment's whole text, in CHECKS
  (the comment states a result: asserted, against an oracle where there is one: mrcfile,
  RosettaSciIO, the DE info file) or in NOTES (advice, not a result). A changed comment
  fails the test until its entry is updated. The VirtualiZarr block needs Python 3.12+
  (virtualizarr 2.8): test_virtualizarr_block runs it there (.ci/run's virtualizarr step,
  where a skip is a failure) and skips on 3.11 only.
* ```bash: a block of `intake-mrc ...` commands runs as written with bash (the venv's bin
  first on PATH) in the same working folder, between the Python blocks around it (a command
  writes movie.refs.json, the next Python block reads it); BASH_CHECKS asserts its exit code
  and what it wrote. The two install commands at the top are run by .ci/run itself
  (test_install_commands_are_what_ci_runs); the `napari ...` lines need napari's GUI (NAMED).
* ```text: the command-line synopsis, checked against the parser's commands and options.
* ``` without a language: the file tree (NAMED).
A block that is not run must be named in NAMED with the reason.

Placeholders, mapped here (and only here):
* ``s3://bucket/...``: the moto server on 127.0.0.1, given by the environment as a user's own
  endpoint and keys would be (``AWS_ENDPOINT_URL_S3``, ``AWS_ACCESS_KEY_ID``,
  ``AWS_SECRET_ACCESS_KEY``), in this process and in the commands'. The bucket is public-read,
  so ``{"anon": True}`` works as written. It holds copies of the sample files under
  ``s3://bucket/``, ``run/``, ``session-1/`` and ``portal/``.
* ``https://host/`` (commands): the aiohttp server on 127.0.0.1, without index pages.
* ``{...}`` (the README's "your storage options") becomes ``{}``; ``url`` is the DE movie on S3.
* Local names (``EMD-3001.map``, ``20241021_00405_movie.mrc``, ``stack.mrc``, ``map.mrc``,
  ``big_stack.mrc``, ``data/session-2/``, ``catalogs/``): the working folder holds copies of
  tests/data files under those names.
"""

from __future__ import annotations

import ast
import io
import json
import os
import re
import shutil
import subprocess
import sys
import textwrap
import tokenize
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import dask.array as da
import numpy as np
import pytest
from conftest import MRCFILE_TESTS, RSCIIO, S3_KEY, S3_SECRET

import intake_mrc

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
PNG = b"\x89PNG\r\n\x1a\n"
DE = "20241021_00405"
MOVIE = f"{DE}_movie.mrc"


@dataclass
class Block:
    lang: str
    code: str  # dedented
    line: int  # README line of the fence

    @property
    def first(self) -> str:
        return self.code.strip().splitlines()[0].strip()


def readme_blocks(text: str | None = None) -> list[Block]:
    text = README.read_text() if text is None else text
    blocks = []
    for match in re.finditer(r"^( *)```(\w*)\n(.*?)^\1```", text, re.M | re.S):
        indent, lang, body = match.groups()
        line = text.count("\n", 0, match.start()) + 1
        blocks.append(Block(lang, textwrap.dedent(body), line))
    return blocks


BLOCKS = readme_blocks()

# First line of a block that is not run -> why.
NAMED = {
    'python3 -m venv .venv && . .venv/bin/activate && pip install -e ".[demo]"': "the demo "
    "command: .ci/run's demo step runs it as written (test_install_commands_are_what_ci_runs)",
    'python3 -m venv .venv && . .venv/bin/activate && pip install -e ".[test]"': "the test "
    "command: .ci/run's tests step runs it as written (test_install_commands_are_what_ci_runs)",
    "napari ": "`napari FILE` opens napari's window (Qt, a display; napari is not in the test "
    "extra); the reader it calls runs in the npe2 block below it",
    "intake_mrc/": "a file tree, not code",
}
VIRTUALIZARR = "import os\nfrom obspec_utils.registry import ObjectStoreRegistry"


def _named(block: Block) -> str | None:
    return next((why for start, why in NAMED.items() if block.first.startswith(start)), None)


def _commands(code: str) -> list[str]:
    """The commands of a bash block: continuation lines joined, comments and blanks dropped."""
    joined = code.replace("\\\n", " ")
    lines = (line.split(" #")[0].strip() for line in joined.splitlines())
    return [line for line in lines if line and not line.startswith("#")]


# --- oracles -------------------------------------------------------------------------------


def _mrcfile(name: str):
    import mrcfile

    with mrcfile.open(name, permissive=True) as mrc:
        return mrc.data.copy(), mrc.header.copy(), mrc.voxel_size.copy(), mrc.extended_header


def _info(name: str = f"{DE}_info.txt") -> dict[str, str]:
    lines = Path(name).read_text().splitlines()
    pairs = (line.split("=", 1) for line in lines if "=" in line)  # `Key    = value`
    return {key.strip(): value.strip() for key, value in pairs}


def _movie() -> np.ndarray:
    """The DE movie as the info file says it is laid out: raster scan, row-major."""
    data = _mrcfile(MOVIE)[0]
    info = _info()
    ny, nx = int(info["Scan - Size Y"]), int(info["Scan - Size X"])
    return data.reshape(ny, nx, *data.shape[-2:])


def _literal(comment: str, pattern: str) -> Any:
    match = re.search(pattern, comment)
    assert match, f"{pattern!r} not found in the comment {comment!r}"
    return ast.literal_eval(match.group(1))


def _plain(value: Any) -> bool:
    if isinstance(value, list):
        return all(_plain(v) for v in value)
    return value is None or type(value) in (int, float, str, bool, bytes)


# --- checks of what the Python blocks' comments state --------------------------------------
# fn(value, ns, comment, world): value is the statement's value (an expression's, or what a
# plain assignment bound), ns the namespace after it ran.

Check = Callable[[Any, dict, str, dict], None]


def _check_shape_dtype(value, ns, comment, world):
    shape, dtype = value
    data = _mrcfile("stack.mrc")[0]
    assert shape == data.shape and dtype == data.dtype.newbyteorder("=") and dtype.isnative


def _check_header(value, ns, comment, world):
    header = _mrcfile("stack.mrc")[1]
    assert isinstance(value, dict) and all(_plain(v) for v in value.values()), value
    assert (value["nx"], value["mode"], value["cella"]) == (
        int(header.nx),
        int(header.mode),
        [float(header.cella[axis]) for axis in "xyz"],
    )


def _check_extended_header(value, ns, comment, world):
    assert value is None and len(_mrcfile("stack.mrc")[3]) == 0  # EMD-3197 has none


def _check_voxel_size(value, ns, comment, world):
    voxel = _mrcfile("stack.mrc")[2]
    assert value == pytest.approx(tuple(float(voxel[axis]) for axis in "xyz"))


def _check_axes(value, ns, comment, world):
    keys = {"name", "size", "scale", "units", "offset", "navigate"}
    assert all(set(axis) == keys for axis in value), value
    assert [axis["size"] for axis in value] == list(_mrcfile("stack.mrc")[0].shape)


def _check_metadata(value, ns, comment, world):
    assert {"byte_order_rule", "signed_bytes_rule", "notes"} <= set(value["mrc"])
    assert "direct_electron" not in value  # a map; the DE block checks a movie's


def _check_to_dask(value, ns, comment, world):
    arr, data = ns["arr"], _mrcfile("stack.mrc")[0]
    assert isinstance(arr, da.Array) and arr.shape == data.shape
    assert arr.chunks[-2:] == ((data.shape[-2],), (data.shape[-1],))  # whole frames
    np.testing.assert_array_equal(arr.compute(), data)


def _check_read(value, ns, comment, world):
    assert isinstance(value, np.ndarray) and value.flags.c_contiguous
    np.testing.assert_array_equal(value, _mrcfile("stack.mrc")[0])


def _check_file_order(value, ns, comment, world):
    assert ns["f"].metadata["mrc"]["axis_order"] == "file"


def _check_names_and_shape(variable: str, transpose: tuple[int, ...]) -> Check:
    def check(value, ns, comment, world):
        names = _literal(comment, r"^(\[.*?\])")
        shape = _literal(comment, r"shape (\(.*?\))")
        f, data = ns[variable], _mrcfile("EMD-3001.map")[0]
        assert value == names and f.shape == shape
        np.testing.assert_array_equal(f.read(), data.transpose(transpose))
        if "no data moved" in comment:
            assert f.axis_permutation is None
        if "X fastest" in comment:
            assert names[-1] == "x"

    return check


def _check_finds_info(value, ns, comment, world):
    assert "Scan - Size X" in ns["f"].metadata["direct_electron"]["raw"]


def _check_de_shape(value, ns, comment, world):
    info, header = _info(), _mrcfile(MOVIE)[1]
    scan = (int(info["Scan - Size Y"]), int(info["Scan - Size X"]))
    assert value == (*scan, int(header.ny), int(header.nx))
    np.testing.assert_array_equal(ns["f"].read(), _movie())


def _check_de_metadata(value, ns, comment, world):
    assert {"summary", "values", "raw"} <= set(value)
    assert value["values"]["Frame Count"] == int(_info()["Frame Count"])  # a number, not text


def _check_virtual_image(value, ns, comment, world):
    stored = _mrcfile(f"{DE}_0_Virt 0_sum.mrc")[0]
    assert value.shape == ns["f"].shape[:2]
    np.testing.assert_array_equal(value, stored.reshape(value.shape))


def _check_external_images(value, ns, comment, world):
    names = re.findall(r'"([^"]+)": MRCFile', comment)
    assert list(value)[: len(names)] == names
    assert all(isinstance(v, intake_mrc.MRCFile) for v in value.values())
    files = sorted(p.name for p in Path().glob(f"{DE}_ext*.mrc"))
    assert sorted(name.split("_", 3)[-1][: -len(".mrc")] for name in files) == sorted(value)


def _check_to_xarray(value, ns, comment, world):
    assert isinstance(ns["da"].data, da.Array)
    np.testing.assert_array_equal(ns["da"].values, _movie())
    ds = ns["f"].to_dataset()
    assert {"virtual:Virt 0", "virtual:Virt 1", "external:Ext 1"} <= set(ds.data_vars)


def _check_mrcfile_habits(value, ns, comment, world):
    data = _mrcfile("map.mrc")[0]
    np.testing.assert_array_equal(ns["arr"], data)
    assert isinstance(ns["lazy"], da.Array)
    np.testing.assert_array_equal(ns["lazy"].compute(), data)
    np.testing.assert_array_equal(ns["mrc"].read(), data)


def _rsciio_movie() -> np.ndarray:
    from rsciio.mrc import file_reader

    return np.asarray(file_reader(MOVIE, lazy=False)[0]["data"])


def _check_signal(value, ns, comment, world):
    assert value._lazy
    np.testing.assert_array_equal(np.asarray(value.data.compute()), _rsciio_movie())


def _check_navigator(value, ns, comment, world):
    # the sample names no bright-field detector: its navigator is virtual image 0
    names = list(ns["s"].metadata._HyperSpy.navigators.keys())
    assert not any("bright" in name.lower() or name.upper() == "BF" for name in names)
    stored = _mrcfile(f"{DE}_0_Virt 0_sum.mrc")[0]
    np.testing.assert_array_equal(np.asarray(value.data), stored.reshape(value.data.shape))
    assert value.data.shape == _movie().shape[:2]


def _check_navigators(value, ns, comment, world):
    f = intake_mrc.open_mrc(MOVIE)
    names = set(f.virtual_images) | set(f.external_images)
    # HyperSpy's tree makes keys attribute names ("Virt_0"); each signal's title is the name
    assert {value[key].metadata.General.title for key in value.keys()} == names
    assert set(value.keys()) == {name.replace(" ", "_") for name in names}


def _check_catalog_list(value, ns, comment, world):
    listed = _literal(comment.replace(", ...]", "]"), r"^(\[.*?\])")
    assert set(listed) <= set(value), value


def _check_catalog_read(value, ns, comment, world):
    assert isinstance(value, da.Array)
    np.testing.assert_array_equal(value.compute(), _movie())
    f = ns["cat"][f"de_{DE}"].to_mrcfile()
    assert isinstance(f, intake_mrc.MRCFile) and f.shape == value.shape


def _check_intake_catalog(value, ns, comment, world):
    assert {f"de_{DE}", "HAADFscan"} <= set(value)
    assert value[f"de_{DE}"].metadata["files"]["movie"].endswith(MOVIE)


def _check_intake_read(value, ns, comment, world):
    assert isinstance(value, da.Array) and value.shape == _literal(comment, r"(\(.*?\))")
    np.testing.assert_array_equal(value.compute(), _movie())


def _check_intake_metadata(value, ns, comment, world):
    files = value["files"]
    assert {"movie", "info", "virtual"} <= set(files) and files["info"].endswith(f"{DE}_info.txt")
    assert (value["date"], value["acquisition_number"]) == ("2024-10-21", 405)  # from the name


def _check_open_index(value, ns, comment, world):
    from intake_mrc.catalog_sqlite import open_index

    world["s3"].put_file("portal.sqlite", "bucket/portal.sqlite")
    assert list(open_index("s3://bucket/portal.sqlite")) == list(value)
    assert f"de_{DE}" in value


def _entries(cat) -> dict[str, dict]:
    return {name: cat.metadata_of(name) for name in cat}


def _check_search(value, ns, comment, world):
    # the oracle: every entry's metadata, filtered in Python
    expected = [
        name
        for name, m in _entries(ns["cat"]).items()
        if m["kind"] == "direct_electron"
        and "2024-10-01" <= m["date"] <= "2024-10-31"
        and m["shape"] == [4, 8, 4, 8]
    ]
    assert list(ns["hits"]) == expected == [f"de_{DE}"]


def _check_pixel_search(value, ns, comment, world):
    expected = [
        name
        for name, m in _entries(ns["cat"]).items()
        if (m.get("voxel_size_angstrom") or [None])[0] is not None
        and 50 <= m["voxel_size_angstrom"][0] <= 60
    ]
    assert value == expected == _literal(comment, r"^(\[.*?\])")


def _check_index_read(value, ns, comment, world):
    import intake

    np.testing.assert_array_equal(value.compute(), _movie())
    intake_mrc.write_catalog("s3://bucket/portal/", "portal.yaml", headers=True)
    from_yaml = intake.open_catalog("portal.yaml")[f"de_{DE}"]
    from_index = ns["hits"][f"de_{DE}"]
    assert type(from_index) is type(from_yaml)
    assert from_index.metadata == from_yaml.metadata
    assert repr(from_index.kwargs) == repr(from_yaml.kwargs)


def _check_metadata_of(value, ns, comment, world):
    built = ns["hits"][f"de_{DE}"].metadata  # the reader's also holds the entry's description
    assert value == {key: built[key] for key in value} and value["shape"] == [4, 8, 4, 8]


def _check_pointer_v2(value, ns, comment, world):
    import intake

    from intake_mrc.catalog_sqlite import IndexCatalog, open_index

    assert isinstance(value, IndexCatalog) and len(Path("catalogs/portal.yaml").read_bytes()) < 1000
    assert list(value) == list(open_index("catalogs/portal.sqlite")) and f"de_{DE}" in value
    # the same reader as the YAML form of the same listing
    intake_mrc.write_catalog("s3://bucket/portal/", "portal-full.yaml", headers=True)
    from_yaml = intake.open_catalog("portal-full.yaml")[f"de_{DE}"]
    assert type(value[f"de_{DE}"]) is type(from_yaml)
    assert repr(value[f"de_{DE}"].kwargs) == repr(from_yaml.kwargs)
    np.testing.assert_array_equal(value[f"de_{DE}"].read().compute(), _movie())


def _check_pointer_legacy(value, ns, comment, world):
    from intake_mrc.legacy import MRCIndexCatalog, MRCSource

    assert isinstance(value, MRCIndexCatalog) and sorted(value) == sorted(ns["portal"])
    source = value[f"de_{DE}"]
    assert isinstance(source, MRCSource)
    np.testing.assert_array_equal(np.asarray(source.read()), _movie())


def _check_references(value, ns, comment, world):
    json.dumps(value)
    zarray = value["refs"]["data/.zarray"]
    zarray = json.loads(zarray) if isinstance(zarray, str) else zarray
    assert tuple(zarray["shape"]) == _mrcfile("stack.mrc")[0].shape


def _check_reference_dataset(value, ns, comment, world):
    dims = re.search(r"\(([\w, ]+) for a DE 4D-STEM movie\)", comment).group(1).split(", ")
    assert list(value.dims) == dims
    np.testing.assert_array_equal(value.values, _movie())
    f = intake_mrc.open_mrc(MOVIE)
    for axis in f.axes:
        coordinate = value[axis["name"]]
        expected = axis["offset"] + axis["scale"] * np.arange(axis["size"])
        np.testing.assert_allclose(coordinate.values, expected)
        assert coordinate.attrs["units"] == axis["units"]
    assert {"axes", "units", "voxel_size"} <= {key.split("_angstrom")[0] for key in value.attrs}


def _check_preview_file(value, ns, comment, world):
    assert Path("emd.png").read_bytes()[:8] == PNG
    assert intake_mrc.open_mrc("EMD-3197.map").preview().png[:8] == PNG


def _check_preview_what(value, ns, comment, world):
    kind, source, frames_read = value
    assert (kind, frames_read) == ("central slice", 1) and source.startswith("central slice")


def _check_repr_html(value, ns, comment, world):
    html = value._repr_html_()
    assert "<table" in html and "data:image/png;base64," in html


def _check_literal(value, ns, comment, world):
    assert value == ast.literal_eval(comment)  # the whole comment is the value


def _check_napari_kind(value, ns, comment, world):
    assert value == _literal(comment, r"^(\(.*?\)):")
    assert isinstance(ns["data"], da.Array)
    np.testing.assert_array_equal(ns["data"].compute(), _mrcfile("EMD-3197.map")[0])


def _check_napari_scale(value, ns, comment, world):
    scale = _literal(comment, r"^(\[.*?\])")
    voxel = _mrcfile("EMD-3197.map")[2]
    assert value == pytest.approx(scale, abs=5e-3)
    assert value == pytest.approx([float(voxel[axis]) / 10 for axis in "zyx"])  # Å -> nm


def _check_virtual_dataset(value, ns, comment, world):
    assert list(value["data"].dims) == ["y", "x", "ky", "kx"]
    assert value["data"].shape == _movie().shape


def _check_kerchunk_file(value, ns, comment, world):
    import xarray as xr

    ds = xr.open_dataset(
        "reference://",
        engine="zarr",
        mask_and_scale=False,  # VirtualiZarr writes fill_value 0 (README)
        backend_kwargs={
            "consolidated": False,
            "zarr_format": 2,
            "storage_options": {"fo": "movie.json", "asynchronous": True},
        },
    )
    np.testing.assert_array_equal(ds["data"].values, _movie())


CHECKS: dict[str, Check] = {
    "numpy shape, native-byte-order dtype": _check_shape_dtype,
    "main header fields as plain Python values": _check_header,
    "FEI1/FEI2/old-FEI records (structured array), raw bytes, or None": _check_extended_header,
    "(x, y, z) in Å; None for an axis whose spacing is unknown": _check_voxel_size,
    "per axis, in array order: name, size, scale, units, offset, navigate": _check_axes,
    "byte-order and signedness decisions, notes, DE metadata": _check_metadata,
    "lazy; chunks=\"auto\" (dask's array.chunk-size, contiguous blocks)": _check_to_dask,
    "numpy array, read into one buffer": _check_read,
    'axis_order="file" (default)': _check_file_order,
    "['y', 'x', 'z'], shape (25, 43, 73): no data moved": _check_names_and_shape("f", (0, 1, 2)),
    "['z', 'y', 'x'], shape (73, 25, 43): X fastest": _check_names_and_shape("g", (2, 0, 1)),
    "finds _info.txt beside it": _check_finds_info,
    '(ny, nx, ky, kx) from "Scan - Size X/Y" (or the ROI)': _check_de_shape,
    '{"summary", "values" (numbers as numbers), "raw", ...}': _check_de_metadata,
    "lazily opened, reshaped to the scan": _check_virtual_image,
    '{"Ext 1": MRCFile, ...}: keys are the detector names': _check_external_images,
    "dask-backed; f.to_dataset() with DE images": _check_to_xarray,
    'was: mrcfile.open("map.mrc") the data, read (mrc.read() too) a dask array, not a memory '
    "map": _check_mrcfile_habits,
    "local": _check_signal,
    "hs.load takes local paths only": _check_signal,
    "from an opened file": _check_signal,
    "the DE virtual bright field (else virtual image 0)": _check_navigator,
    "every virtual and external image, by its DE name": _check_navigators,
    '["de_20241021_00405", "HAADFscan", ...]': _check_catalog_list,
    "dask array; .to_mrcfile() gives the MRCFile": _check_catalog_read,
    "written by the first command above": _check_intake_catalog,
    "a dask array, (4, 8, 4, 8) for this DE movie": _check_intake_read,
    '"files" (movie, info, virtual, ...), "date", ...': _check_intake_metadata,
    "milliseconds, whatever the size; also s3://... (cached)": _check_open_index,
    "indexed SQL over the file, nothing else read": _check_search,
    "['HAADFscan']: x pixel size in Å, low to high": _check_pixel_search,
    "the same reader, kwargs and metadata as the YAML form": _check_index_read,
    "an entry's metadata without building its reader": _check_metadata_of,
    "intake 2: an IndexCatalog": _check_pointer_v2,
    "legacy: a catalog of MRCSource entries": _check_pointer_legacy,
    "a JSON-able dict": _check_references,
    "dims from f.axes (y, x, ky, kx for a DE 4D-STEM movie), coordinates offset + scale * "
    "index with units; attrs: axes, units, voxel size": _check_reference_dataset,
    "or .preview() for bytes": _check_preview_file,
    "what was drawn, from what, how many frames": _check_preview_what,
    "in a notebook: a table and a thumbnail": _check_repr_html,
    "('image', 'dask.array.core'): a lazy dask array": _check_napari_kind,
    "['z', 'y', 'x'], ['nm', 'nm', 'nm']": _check_literal,
    "[1.14, 1.14, 1.14]: 11.4 Å voxels, in nm": _check_napari_scale,
    # the VirtualiZarr block
    "the info file beside it is read too": _check_virtual_dataset,
    "or vds.vz.to_icechunk(session.store)": _check_kerchunk_file,
}

# Comments that give advice rather than a result -> where the claim is tested, if anywhere.
NOTES = {
    'pip install "intake-mrc[xarray]"': "install advice",
    "was: import mrcfile": "what the line replaces",
    "elsewhere, no intake_mrc:": "tests/test_references.py reads references back in a process "
    "where intake_mrc cannot be imported",
    "or: intake-mrc catalog s3://bucket/portal/ -o portal.sqlite --headers": "the same index "
    "from the command line: tests/test_catalog_sqlite.py::test_cli_writes_an_index",
    "napari does this when it starts": "napari's start-up (napari is not in the test extra)",
    'or {"s3://bucket": S3Store(...)}': "tests/test_virtualizarr.py runs the S3 registry",
}


# --- running the blocks --------------------------------------------------------------------


def _statements(code: str) -> list[tuple[ast.stmt, str]]:
    """Top-level statements with the text of their comments (a comment on its own line goes
    with the statement before it)."""
    body = ast.parse(code).body
    comments = {
        token.start[0]: token.string.lstrip("#").strip()
        for token in tokenize.generate_tokens(io.StringIO(code).readline)
        if token.type == tokenize.COMMENT
    }
    last = len(code.splitlines())
    out = []
    for i, node in enumerate(body):
        start = node.lineno if i else 1
        end = body[i + 1].lineno - 1 if i + 1 < len(body) else last
        text = " ".join(comments[n] for n in sorted(comments) if start <= n <= end)
        out.append((node, " ".join(text.split())))
    return out


def _python_code(block: Block) -> str:
    return block.code.replace("{...}", "{}")


def run_python(block: Block, ns: dict, world: dict, used: set[str]) -> None:
    code = _python_code(block)
    name = f"README.md block at line {block.line}"
    for node, comment in _statements(code):
        if isinstance(node, ast.Expr):
            value = eval(compile(ast.Expression(node.value), name, "eval"), ns)
        else:
            exec(compile(ast.Module([node], []), name, "exec"), ns)
            target = node.targets[0] if isinstance(node, ast.Assign) else None
            value = ns[target.id] if isinstance(target, ast.Name) else None
        if not comment or comment in NOTES:
            used.add(comment)
            continue
        assert comment in CHECKS, f"{name}: no check for the comment {comment!r}"
        CHECKS[comment](value, ns, comment, world)
        used.add(comment)


def _bash(script: str, world: dict) -> subprocess.CompletedProcess:
    script = script.replace("https://host/", world["http"])
    return subprocess.run(
        ["bash", "-euo", "pipefail", "-c", script],
        env=world["env"],
        capture_output=True,
        text=True,
        timeout=300,
    )


def run_bash(block: Block, world: dict) -> None:
    run = _bash(block.code, world)
    check = next(fn for start, fn in BASH_CHECKS.items() if block.first.startswith(start))
    if check is not _check_validate:  # the one block whose stated exit code is 1
        assert run.returncode == 0, f"README.md block at line {block.line}: {run.stderr}"
    check(run, world)


def _check_catalog_commands(run, world):
    import intake

    expected = _movie()
    cat = intake.open_catalog("catalogs/session-1.yaml")
    assert {f"de_{DE}", "HAADFscan"} <= set(cat)
    np.testing.assert_array_equal(np.asarray(cat[f"de_{DE}"].read()), expected)
    # --relative: the catalog still reads after the folder moved
    assert "{CATALOG_DIR}" in Path("data/session-2/catalog.yaml").read_text()
    shutil.move("data/session-2", "moved")
    cat = intake.open_catalog("moved/catalog.yaml")
    np.testing.assert_array_equal(np.asarray(cat[f"de_{DE}"].read()), expected)
    shutil.move("moved", "data/session-2")
    # from an info file on a server without index pages
    cat = intake.open_catalog("c.yaml")
    np.testing.assert_array_equal(np.asarray(cat[f"de_{DE}"].read()), expected)
    assert "(4, 8, 4, 8)" in run.stdout  # intake-mrc info's shape


def _check_refs_commands(run, world):
    import xarray as xr

    refs = json.loads(Path("movie.refs.json").read_text())
    assert refs["version"] == 1 and "data/.zarray" in refs["refs"]
    chunks = [v for k, v in refs["refs"].items() if re.fullmatch(r"data/[\d.]+", k)]
    assert chunks and all(v[0] == f"s3://bucket/run/{MOVIE}" for v in chunks)
    ds = xr.open_dataset(
        "reference://",
        engine="zarr",
        backend_kwargs={
            "consolidated": False,
            "zarr_format": 2,
            "storage_options": {"fo": "big.refs.parq", "lazy": True, "remote_protocol": "file"},
        },
    )
    np.testing.assert_array_equal(ds["data"].values, _mrcfile("big_stack.mrc")[0])


def _check_preview_command(run, world):
    assert Path("movie.png").read_bytes()[:8] == PNG
    assert run.stdout.startswith("wrote movie.png: 4D-STEM")  # the caption


def _check_validate(run, world):
    import mrcfile

    # one command, so its exit code is the block's; stated in the comment: exit 1
    assert len(_commands(run.args[-1])) == 1 and run.returncode == 1, run.stderr
    problems = run.stdout.splitlines()
    assert problems and all(line.startswith("EMD-3197.map: ") for line in problems)
    assert "EMD-3197.map: NVERSION is 0, " in run.stdout
    # mrcfile's validation agrees: HAADFscan.mrc clean, EMD-3197.map's NVERSION wrong
    assert mrcfile.validate("HAADFscan.mrc", print_file=io.StringIO())
    out = io.StringIO()
    assert not mrcfile.validate("EMD-3197.map", print_file=out) and "nversion = 0" in out.getvalue()


BASH_CHECKS: dict[str, Callable[[subprocess.CompletedProcess, dict], None]] = {
    "intake-mrc catalog s3://bucket/session-1/": _check_catalog_commands,
    "intake-mrc refs s3://bucket/run/": _check_refs_commands,
    "intake-mrc preview s3://": _check_preview_command,
    "intake-mrc validate HAADFscan.mrc EMD-3197.map": _check_validate,
}


def _runnable_bash(block: Block) -> bool:
    commands = _commands(block.code)
    return bool(commands) and all(c.startswith("intake-mrc ") for c in commands)


# --- the world the blocks run in ------------------------------------------------------------


@pytest.fixture
def readme_world(tmp_path, monkeypatch, s3fs_root, s3_server, http_server, http_root):
    import s3fs

    names = {
        "EMD-3001.map": MRCFILE_TESTS / "EMD-3001.map",
        "EMD-3197.map": MRCFILE_TESTS / "EMD-3197.map",
        "stack.mrc": MRCFILE_TESTS / "EMD-3197.map",
        "map.mrc": MRCFILE_TESTS / "EMD-3197.map",
        "big_stack.mrc": MRCFILE_TESTS / "EMD-3197.map",
    }
    samples = sorted(
        p for p in RSCIIO.iterdir() if p.suffix == ".mrc" or p.name.endswith("info.txt")
    )
    for path in samples:
        names.setdefault(path.name, path)
    for name, path in names.items():
        shutil.copy(path, tmp_path / name)
    (tmp_path / "catalogs").mkdir()
    session_2 = tmp_path / "data" / "session-2"
    session_2.mkdir(parents=True)
    for path in samples:
        if path.name.startswith(DE) or path.name == "HAADFscan.mrc":
            shutil.copy(path, session_2 / path.name)
    # the bucket: public-read, as a bucket opened with {"anon": True} is
    if not s3fs_root.exists("bucket"):
        s3fs_root.mkdir("bucket", acl="public-read")
    for prefix in ("bucket", "bucket/run", "bucket/session-1", "bucket/portal"):
        for name in names:
            s3fs_root.put_file(str(tmp_path / name), f"{prefix}/{name}", ACL="public-read")
    s3fs_root.invalidate_cache()
    # the HTTP server, without index pages: https://host/data/... -> /nolist/readme/data/...
    (http_root / "readme" / "data").mkdir(parents=True, exist_ok=True)
    for path in samples:
        shutil.copy(path, http_root / "readme" / "data" / path.name)
    environment = {
        "AWS_ENDPOINT_URL_S3": s3_server["endpoint"],
        "AWS_ACCESS_KEY_ID": S3_KEY,
        "AWS_SECRET_ACCESS_KEY": S3_SECRET,
    }
    for key, value in environment.items():
        monkeypatch.setenv(key, value)
    bin_dir = str(Path(sys.executable).parent)
    env = {**os.environ, "PATH": bin_dir + os.pathsep + os.environ.get("PATH", "")}
    env.pop("PYTHONPATH", None)
    monkeypatch.chdir(tmp_path)
    s3fs.S3FileSystem.clear_instance_cache()
    yield {
        "env": env,
        "http": f"{http_server.url}/nolist/readme/",
        "s3": s3fs_root,
        "namespace": {"__name__": "__readme__", "url": f"s3://bucket/{MOVIE}"},
    }
    # no filesystem made here (the endpoint came from the environment) outlives the test
    s3fs.S3FileSystem.clear_instance_cache()


# --- the tests -----------------------------------------------------------------------------


def test_every_block_is_run_or_named():
    assert len(BLOCKS) >= 20
    for block in BLOCKS:
        where = f"README.md block at line {block.line} ({block.lang or 'no language'})"
        if block.lang == "python":
            assert not _named(block), f"{where}: every Python block runs"
        elif block.lang == "bash":
            runnable = _runnable_bash(block)
            assert runnable or _named(block), f"{where}: neither run nor named in NAMED"
            if runnable:
                assert any(block.first.startswith(s) for s in BASH_CHECKS), f"{where}: no check"
        elif block.lang == "text":
            assert block.first == "intake-mrc --version", f"{where}: only the synopsis is text"
        else:
            assert block.lang == "" and _named(block), f"{where}: unknown block"
    for start in NAMED:
        assert any(b.first.startswith(start) for b in BLOCKS), f"NAMED {start!r}: no such block"
    for start in BASH_CHECKS:
        assert any(b.first.startswith(start) for b in BLOCKS), f"{start!r}: no such block"
    napari = [b for b in BLOCKS if b.lang == "bash" and b.first.startswith("napari ")]
    assert napari and all(c.startswith("napari ") for b in napari for c in _commands(b.code))
    assert sum(b.first.startswith(VIRTUALIZARR.split("\n")[0]) for b in BLOCKS) == 1


def test_every_comment_has_a_check_or_a_note():
    comments = {c for b in BLOCKS if b.lang == "python" for _, c in _statements(_python_code(b))}
    comments.discard("")
    assert comments == set(CHECKS) | set(NOTES)


def test_readme_runs_in_order(readme_world):
    """Every Python and `intake-mrc` block, in README order, in one folder and namespace."""
    ns, used, ran = readme_world["namespace"], set(), []
    for block in BLOCKS:
        if block.lang == "python" and not block.code.startswith(VIRTUALIZARR):
            run_python(block, ns, readme_world, used)
            ran.append(block.line)
        elif block.lang == "bash" and _runnable_bash(block):
            run_bash(block, readme_world)
            ran.append(block.line)
    python = [b for b in BLOCKS if b.lang == "python"]
    bash = [b for b in BLOCKS if b.lang == "bash" and _runnable_bash(b)]
    assert len(ran) == len(python) - 1 + len(bash)
    virtualizarr = {
        c
        for b in python
        if b.code.startswith(VIRTUALIZARR)
        for _, c in _statements(_python_code(b))
    }
    assert used | virtualizarr | {""} >= set(CHECKS) | set(NOTES) | {""}


def test_virtualizarr_block(readme_world):
    """The VirtualiZarr block (Python 3.12+): CI's virtualizarr step runs this test."""
    if sys.version_info < (3, 12):
        pytest.skip("virtualizarr 2.8 needs Python 3.12: .ci/run's virtualizarr step runs this")
    (block,) = [b for b in BLOCKS if b.lang == "python" and b.code.startswith(VIRTUALIZARR)]
    run_python(block, readme_world["namespace"], readme_world, set())


def test_cli_synopsis_matches_the_parser():
    import argparse

    from intake_mrc.cli import build_parser

    (block,) = [b for b in BLOCKS if b.lang == "text" and b.first == "intake-mrc --version"]
    parser = build_parser()
    (sub,) = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    listed = set()
    for line in _commands(block.code):
        words = line.split()
        assert words[0] == "intake-mrc", line
        if words[1].startswith("-") or words[1] == "COMMAND":
            options = parser._option_string_actions
            assert words[1] in options or words[1] == "COMMAND", line
            continue
        assert words[1] in sub.choices, f"no command {words[1]!r}"
        listed.add(words[1])
        known = sub.choices[words[1]]._option_string_actions
        for option in re.findall(r"--[\w-]+", line):
            assert option in known, f"{line!r}: {option} is not an option of {words[1]}"
    assert listed == set(sub.choices), "every command is in the synopsis"


def test_install_commands_are_what_ci_runs():
    """The README's two commands are the ones .ci/run takes from README.md and runs."""
    ci = (ROOT / ".ci" / "run").read_text()
    patterns = re.findall(r'grep -m1 -E "([^"]+)" README\.md', ci)
    lines = README.read_text().splitlines()
    taken = [next(line for line in lines if re.search(p, line)) for p in patterns]
    blocks = {b.code.strip() for b in BLOCKS if b.lang == "bash" and _named(b)}
    test = 'python3 -m venv .venv && . .venv/bin/activate && pip install -e ".[test]" && '
    demo = 'python3 -m venv .venv && . .venv/bin/activate && pip install -e ".[demo]" && '
    assert sorted(taken) == sorted([demo + "intake-mrc demo", test + "python -m pytest -q"])
    assert set(taken) <= blocks
    assert BLOCKS[0].code.strip() == demo + "intake-mrc demo"
    assert BLOCKS[1].code.strip() == test + "python -m pytest -q"
