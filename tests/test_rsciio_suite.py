"""RosettaSciIO's own MRC tests (``rsciio/tests/test_mrc.py``, shipped in the rosettasciio
package) run with ``intake_mrc.rsciio.file_reader`` standing in for ``rsciio.mrc.file_reader``,
and once more with RosettaSciIO's reader as the baseline, each in a pytest subprocess.

The test file is copied into a temporary folder with ``data/mrc/`` beside it linking the
shared files (``RSCIIO``); a conftest written there swaps the reader and counts its calls.
Every test that passes with RosettaSciIO's reader must pass with ours.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from conftest import RSCIIO

pytest.importorskip("hyperspy.api")
rsciio_tests = pytest.importorskip("rsciio.tests")

# Tests whose data files are not in the shared folder, deselected by name:
# 4DSTEMscan.mrc (Velox, >= 4 MiB, left out of the snapshot), and the ROI_Random_Scan_* and
# Custom_* DE sets (never copied). The two Custom_* error tests "pass" on RosettaSciIO's
# reader only because the file is missing, so they are deselected too.
DESELECTED = [
    "test_4DSTEM_image",  # also matches test_4DSTEM_image_navigation_shape_16_16 / _8_32
    "test_distributed_deprecation_warning",
    "test_deprecated_mmap_mode",
    "test_mrc_chunks_equal",
    "test_mrc_metadata[",  # the four navigation_shape cases, all on 4DSTEMscan.mrc
    "test_mrc_random_scan_pattern",
    "test_repeated_mrc_custom",  # also matches _error and _no_scan_file
]

CONFTEST = """
import json, os
import pytest
import rsciio.mrc
import rsciio.mrc._api

CALLS = {"n": 0}
if os.environ["INTAKE_MRC_SUITE_READER"] == "intake_mrc":
    from intake_mrc.rsciio import file_reader as reader
else:
    reader = rsciio.mrc._api.file_reader


def counting_reader(*args, **kwargs):
    CALLS["n"] += 1
    return reader(*args, **kwargs)


rsciio.mrc.file_reader = counting_reader
rsciio.mrc._api.file_reader = counting_reader


def pytest_sessionfinish(session):
    with open("calls.json", "w") as out:
        json.dump({"calls": CALLS["n"], "reader": reader.__module__}, out)
"""


def _prepare(folder: Path) -> None:
    folder.mkdir()
    source = Path(rsciio_tests.__file__).parent / "test_mrc.py"
    (folder / "test_mrc.py").write_bytes(source.read_bytes())
    (folder / "conftest.py").write_text(CONFTEST)
    (folder / "pytest.ini").write_text("[pytest]\n")  # rootdir here, no config from above
    data = folder / "data" / "mrc"
    data.mkdir(parents=True)
    for path in RSCIIO.iterdir():
        if path.is_file() and path.name != "README.md":
            (data / path.name).symlink_to(path)


def _start(folder: Path, reader: str) -> subprocess.Popen:
    deselect = [f"--deselect=test_mrc.py::{name}" for name in DESELECTED]
    env = dict(os.environ, INTAKE_MRC_SUITE_READER=reader)
    return subprocess.Popen(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--junitxml=out.xml"]
        + deselect
        + ["test_mrc.py"],
        cwd=folder,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def _outcomes(folder: Path) -> dict[str, str]:
    out = {}
    for case in ET.parse(folder / "out.xml").iter("testcase"):
        name = case.get("classname", "").rpartition(".")[2] + "::" + case.get("name", "")
        kinds = {child.tag for child in case}
        out[name] = next((k for k in ("failure", "error", "skipped") if k in kinds), "passed")
    return out


def test_rosettasciio_mrc_suite_passes_with_intake_mrc(tmp_path):
    runs = {}
    for reader in ("rsciio", "intake_mrc"):
        _prepare(tmp_path / reader)
    # Both runs at once: the machine has two cores and each run is mostly imports.
    processes = {reader: _start(tmp_path / reader, reader) for reader in ("rsciio", "intake_mrc")}
    for reader, process in processes.items():
        log, _ = process.communicate(timeout=600)
        runs[reader] = (_outcomes(tmp_path / reader), log)
        calls = json.loads((tmp_path / reader / "calls.json").read_text())
        assert calls["calls"] >= 10, (reader, calls)  # one per hs.load at least
        expected_module = "intake_mrc.rsciio" if reader == "intake_mrc" else "rsciio.mrc._api"
        assert calls["reader"] == expected_module
    baseline, base_log = runs["rsciio"]
    ours, our_log = runs["intake_mrc"]
    passed_baseline = {name for name, outcome in baseline.items() if outcome == "passed"}
    passed_ours = {name for name, outcome in ours.items() if outcome == "passed"}
    # The baseline proves the harness: RosettaSciIO passes its own selected tests.
    assert "test_mrc::test_mrc_metadata_auto" in passed_baseline, base_log[-3000:]
    assert len(passed_baseline) >= 25, base_log[-3000:]
    assert passed_baseline <= passed_ours, (sorted(passed_baseline - passed_ours), our_log[-6000:])
    # Same selection in both runs, nothing deselected by name ran, and ours fails nothing.
    assert set(baseline) == set(ours)
    assert not any(name.split("::")[1].startswith(tuple(DESELECTED)) for name in ours)
    # Ours fails only where RosettaSciIO's reader fails too (its zspy save tests need
    # zarr 2; with zarr 3 in the environment they fail in RosettaSciIO's own writer).
    failed = {n for n, o in ours.items() if o in ("failure", "error")}
    failed_baseline = {n for n, o in baseline.items() if o in ("failure", "error")}
    assert failed <= failed_baseline, (sorted(failed - failed_baseline), our_log[-6000:])
    assert all(n.startswith("TestLoadSave::") for n in failed), sorted(failed)
