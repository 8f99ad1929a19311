"""The source distribution carries no GPL files (run by .ci/run's sdist step).

tests/data/rsciio_mrc holds RosettaSciIO's GPL-3.0-or-later test fixtures in this
BSD-3-Clause repository; MANIFEST.in keeps them (and the rest of tests/) out of the sdist.
This script builds the sdist (``python -m build --sdist``, or takes one built already) and
fails when any member lies in tests/data/rsciio_mrc or in any folder of the repository whose
README declares a GPL licence (a "Licence"/"License" heading whose section names the GPL).
The top README is not read that way: the repository's own licence is LICENSE (pyproject's
``license``), and its Licences section names the GPL of that one folder.

Usage:  python tools/check_sdist.py [--sdist dist/intake_mrc-X.tar.gz]
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path, PurePosixPath

ROOT = Path(__file__).resolve().parents[1]
ALWAYS = (PurePosixPath("tests/data/rsciio_mrc"),)
_HEADING = re.compile(r"^(#+)\s+(.*)$")
_GPL = re.compile(r"\bL?GPL\b|GPL-\d|GNU (Lesser |Affero )?General Public License", re.I)


def declares_gpl(readme_text: str) -> bool:
    """True when a licence section of this README (heading with "licence"/"license", up to
    the next heading of the same or a higher level) names the GPL."""
    level = 0
    for line in readme_text.splitlines():
        heading = _HEADING.match(line)
        if heading:
            depth = len(heading.group(1))
            if level and depth <= level:
                level = 0
            if re.search(r"licen[cs]e", heading.group(2), re.I):
                level = depth
            continue
        if level and _GPL.search(line):
            return True
    return False


def gpl_folders(root: Path = ROOT) -> set[PurePosixPath]:
    """Folders (relative to ``root``) whose README declares a GPL licence, plus ALWAYS."""
    found = set(ALWAYS)
    for folder, subfolders, files in os.walk(root):
        # venvs, caches and build output are not the repository's
        subfolders[:] = [
            d
            for d in subfolders
            if not d.startswith(".") and d not in {"__pycache__", "build", "dist"}
        ]
        for name in files:
            if name.startswith("README") and Path(folder) != root:
                text = (Path(folder) / name).read_text(encoding="utf-8", errors="replace")
                if declares_gpl(text):
                    found.add(PurePosixPath(Path(folder).relative_to(root).as_posix()))
    return found


def offenders(members: list[str], folders: set[PurePosixPath]) -> list[str]:
    """Sdist members (``name-version/path``) inside one of ``folders``."""
    bad = []
    for member in members:
        parts = PurePosixPath(member).parts
        inner = PurePosixPath(*parts[1:]) if len(parts) > 1 else PurePosixPath(member)
        if any(inner == f or f in inner.parents for f in folders):
            bad.append(member)
    return bad


def build_sdist(out: Path) -> Path:
    done = subprocess.run(
        [sys.executable, "-m", "build", "--sdist", "--outdir", str(out), str(ROOT)],
        capture_output=True,
        text=True,
    )
    if done.returncode:
        sys.exit(f"python -m build --sdist failed:\n{done.stdout[-3000:]}{done.stderr[-3000:]}")
    (sdist,) = out.glob("*.tar.gz")
    return sdist


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sdist", type=Path, help="an sdist built already (else built here)")
    args = parser.parse_args(argv)
    folders = gpl_folders()
    with tempfile.TemporaryDirectory() as tmp:
        sdist = args.sdist or build_sdist(Path(tmp))
        with tarfile.open(sdist) as tar:
            members = [m.name for m in tar.getmembers() if m.isfile()]
    bad = offenders(members, folders)
    listed = ", ".join(sorted(str(f) for f in folders))
    if bad:
        print(f"{sdist.name}: {len(bad)} GPL file(s) inside (folders: {listed}):")
        for name in bad:
            print(f"  {name}")
        return 1
    print(f"{sdist.name}: {len(members)} files, none from a GPL folder ({listed})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
