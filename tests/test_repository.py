"""The repository stands alone: the sample data in tests/data are the files their READMEs
describe (SHA-256), and no code, test, catalog or document names a path of one machine."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from conftest import MRCFILE_TESTS, RSCIIO, SHARED, sha256

ROOT = Path(__file__).resolve().parents[1]


def readme_sums(folder: Path) -> dict[str, str]:
    """The ``sha256  name`` lines of a folder README's code block (the "not copied" ones after
    the comment line excluded)."""
    text = (folder / "README.md").read_text(encoding="utf-8")
    block = text.split("## SHA-256", 1)[1].split("```")[1]
    block = block.split("# not copied", 1)[0]
    sums = {}
    for line in block.splitlines():
        match = re.fullmatch(r"([0-9a-f]{64})  (.+)", line.strip())
        if match:
            sums[match.group(2)] = match.group(1)
    return sums


@pytest.mark.parametrize("folder", [RSCIIO, MRCFILE_TESTS], ids=lambda p: p.name)
def test_sample_files_match_their_readme(folder):
    sums = readme_sums(folder)
    files = {p.name for p in folder.iterdir() if p.is_file() and p.name != "README.md"}
    assert files == set(sums), "files and README sums differ"
    for name, digest in sums.items():
        assert sha256(folder / name) == digest, name


def test_sample_data_inside_the_repository_and_small():
    assert SHARED == ROOT / "tests" / "data"
    total = sum(p.stat().st_size for p in SHARED.rglob("*") if p.is_file())
    assert total < 4 * 2**20  # a few MB: large upstream files stay out


def _text_files():
    for top in ("intake_mrc", "tests", "catalogs", "docs", "benchmarks", ".ci"):
        for path in (ROOT / top).rglob("*"):
            if path.is_file() and path.suffix in {".py", ".yaml", ".yml", ".md", ".toml", ""}:
                if SHARED in path.parents and path.name != "README.md":
                    continue  # binary sample files
                if "__pycache__" in path.parts:
                    continue
                yield path
    yield ROOT / "README.md"
    yield ROOT / "pyproject.toml"


def test_no_absolute_path_of_a_machine():
    # Built from parts so that this file does not match itself.
    pattern = re.compile("(" + "|".join(["/wo" + "rk/", "/ho" + "me/", "/Us" + "ers/"]) + ")")
    offenders = []
    for path in _text_files():
        for n, line in enumerate(path.read_text(encoding="utf-8", errors="replace").splitlines()):
            if pattern.search(line):
                offenders.append(f"{path.relative_to(ROOT)}:{n + 1}: {line.strip()}")
    assert offenders == []


def test_shipped_local_catalogs_point_inside_the_repository():
    for name in ("shared-data.yaml", "shared-data-legacy.yaml"):
        text = (ROOT / "catalogs" / name).read_text(encoding="utf-8")
        assert "../tests/data" in text
        assert "shared/data" not in text
