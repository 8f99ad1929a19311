"""Licences of what the repository holds: the GPL fixtures (tests/data/rsciio_mrc) carry the
GPL text and are found by tools/check_sdist.py, whose check fails on an sdist holding them
(CI's sdist step builds the real sdist and runs it); project URLs are labelled as references,
none as the project's own home or source."""

from __future__ import annotations

import importlib.util
import io
import string
import tarfile
import tomllib
from pathlib import Path, PurePosixPath

from conftest import MRCFILE_TESTS, RSCIIO, SHARED

ROOT = Path(__file__).resolve().parents[1]
_spec = importlib.util.spec_from_file_location("check_sdist", ROOT / "tools" / "check_sdist.py")
check_sdist = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(check_sdist)


def _relative(folder: Path) -> PurePosixPath:
    return PurePosixPath(folder.relative_to(ROOT).as_posix())


def test_gpl_fixtures_carry_the_gpl_text_and_their_note():
    text = (RSCIIO / "COPYING.txt").read_text(encoding="utf-8")
    assert text.lstrip().startswith("GNU GENERAL PUBLIC LICENSE")
    assert "Version 3, 29 June 2007" in text[:200]
    assert "END OF TERMS AND CONDITIONS" in text
    readme = (RSCIIO / "README.md").read_text(encoding="utf-8")
    assert "GPL-3.0-or-later" in readme and "`COPYING.txt`" in readme


def test_gpl_folders_are_found_from_their_readmes():
    folders = check_sdist.gpl_folders(ROOT)
    assert _relative(RSCIIO) in folders
    # a table row naming the GPL is not a licence declaration of the folder
    assert _relative(SHARED) not in folders
    assert _relative(MRCFILE_TESTS) not in folders
    assert PurePosixPath(".") not in folders  # the repository itself is BSD-3-Clause


def test_declares_gpl_reads_licence_sections_only():
    assert check_sdist.declares_gpl("# x\n## License\nRosettaSciIO is GPL-3.0-or-later.\n")
    assert check_sdist.declares_gpl("## Licence notes\n\nGNU General Public License v3\n")
    assert not check_sdist.declares_gpl("## License\nBSD-3-Clause\n## Other\nGPL-3.0 tools\n")
    assert not check_sdist.declares_gpl("| folder | licence |\n| a | GPL-3.0 |\n")


def test_check_fails_on_an_sdist_with_a_gpl_file(tmp_path, capsys):
    def sdist(name: str, members: list[str]) -> Path:
        path = tmp_path / name
        with tarfile.open(path, "w:gz") as tar:
            for member in members:
                info = tarfile.TarInfo(member)
                info.size = 1
                tar.addfile(info, io.BytesIO(b"x"))
        return path

    clean = sdist("clean.tar.gz", ["intake_mrc-0.1/intake_mrc/api.py", "intake_mrc-0.1/LICENSE"])
    assert check_sdist.main(["--sdist", str(clean)]) == 0
    bad = sdist(
        "bad.tar.gz",
        ["intake_mrc-0.1/intake_mrc/api.py", "intake_mrc-0.1/tests/data/rsciio_mrc/HAADFscan.mrc"],
    )
    assert check_sdist.main(["--sdist", str(bad)]) == 1
    assert "tests/data/rsciio_mrc/HAADFscan.mrc" in capsys.readouterr().out


def test_manifest_prunes_the_gpl_folder():
    lines = [
        line.split()
        for line in (ROOT / "MANIFEST.in").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    assert ["prune", "tests"] in lines and ["prune", "tests/data/rsciio_mrc"] in lines
    # nothing grafted or included after the prunes brings tests back
    last_prune = max(i for i, words in enumerate(lines) if words[0] == "prune")
    assert not any("tests" in " ".join(words[1:]) for words in lines[last_prune + 1 :])


# PEP 753's well-known labels and aliases (normalized), which indexes show as the project's.
WELL_KNOWN = {
    "homepage", "source", "sourcecode", "repository", "github", "gitlab", "bitbucket",
    "download", "changelog", "changes", "whatsnew", "history", "releasenotes",
    "documentation", "docs", "issues", "bugs", "issue", "tracker", "issuetracker",
    "bugtracker", "funding", "sponsor", "donate", "donation",
}  # fmt: skip


def test_project_urls_are_labelled_as_references():
    urls = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["urls"]
    assert urls
    table = str.maketrans("", "", string.punctuation + string.whitespace)
    for label in urls:
        assert label.startswith("Reference: ")
        assert label.translate(table).lower() not in WELL_KNOWN
        assert len(label) <= 32  # core metadata's limit for a Project-URL label
