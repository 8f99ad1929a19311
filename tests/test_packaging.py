"""Packaging: the licence file matches pyproject's licence, py.typed ships, one version,
metadata with classifiers and URLs, extras for the optional parts; the shipped legacy
catalog opens and reads without a warning. (The demo reading catalogs/remote-samples.yaml
from its own server: test_catalog.py::test_demo_end_to_end.)"""

from __future__ import annotations

import importlib.metadata
import importlib.resources
import tomllib
import warnings
from pathlib import Path

import intake

import intake_mrc

ROOT = Path(__file__).resolve().parents[1]
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())


def test_licence_file_matches_pyproject():
    project = PYPROJECT["project"]
    assert project["license"] == "BSD-3-Clause" and project["license-files"] == ["LICENSE"]
    text = (ROOT / "LICENSE").read_text()
    assert text.startswith("BSD 3-Clause License")
    assert "Copyright (c)" in text and "intake-mrc developers" in text
    assert "Neither the name of the copyright holder" in text  # clause 3: BSD-3, not BSD-2
    metadata = importlib.metadata.metadata("intake-mrc")
    assert metadata["License-Expression"] == "BSD-3-Clause"


def test_typed_versioned_and_described():
    assert importlib.resources.files("intake_mrc").joinpath("py.typed").is_file()
    assert "py.typed" in PYPROJECT["tool"]["setuptools"]["package-data"]["intake_mrc"]
    assert "version" not in PYPROJECT["project"]  # one source: intake_mrc.__version__
    assert importlib.metadata.version("intake-mrc") == intake_mrc.__version__
    metadata = importlib.metadata.metadata("intake-mrc")
    classifiers = metadata.get_all("Classifier")
    assert "Typing :: Typed" in classifiers
    assert "Programming Language :: Python :: 3.11" in classifiers
    assert metadata.get_all("Project-URL")
    extras = set(PYPROJECT["project"]["optional-dependencies"])
    assert {"xarray", "hyperspy", "references", "demo", "test"} <= extras


def test_shipped_legacy_catalog_opens_without_warnings(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        cat = intake.open_catalog(str(ROOT / "catalogs" / "shared-data-legacy.yaml"))
        assert sorted(cat) == ["de_20241021_00405", "emd_3197", "shared_folder_glob", "velox_haadf"]
        assert cat.velox_haadf.read().max() == 9399
        assert int(cat.de_20241021_00405.to_dask()[3, 7, 0, 0].compute()) == 31
        assert cat.emd_3197.read().shape == (20, 20, 20)
        assert sorted(cat.shared_folder_glob) == ["HAADFscan", "de_20241021_00405"]
        # Another copy, by the root keyword: still no warning.
        copy = tmp_path / "copy" / "rsciio_mrc"
        copy.mkdir(parents=True)
        (copy / "HAADFscan.mrc").write_bytes(
            (ROOT / "tests/data/rsciio_mrc/HAADFscan.mrc").read_bytes()
        )
        moved = cat.velox_haadf(root=str(tmp_path / "copy"))
        assert moved.urlpath == str(copy / "HAADFscan.mrc")
        assert moved.read().shape == (16, 16)
