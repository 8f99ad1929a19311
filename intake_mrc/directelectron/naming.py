"""The Direct Electron naming convention: which files belong to which acquisition.

Pure functions over names. An acquisition's *stem* is ``{id}`` or ``{id}_{suffix}`` (the id
is the dataset name ``YYYYMMDD_NNNNN``); its files are ``{stem}_movie.mrc``,
``{stem}_info.txt``, ``{stem}_{n}_{name}_{calc}.mrc`` (virtual detector n),
``{stem}_ext{n}_{name}.mrc`` (external detector n), ``{stem}_final.mrc`` and
``{stem}_scan_coordinates.csv``. A file goes to the longest stem that prefixes it, so
acquisitions with suffixes in one folder never share files.
"""

from __future__ import annotations

import posixpath
import re
from collections.abc import Mapping
from dataclasses import dataclass, field

DATASET_ID = re.compile(r"(?P<date>\d{8})_(?P<number>\d+)(?=_|$)")
_STEM_FILES = {"_movie.mrc": "movie", "_info.txt": "info"}
_EXTERNAL = re.compile(r"ext(?P<n>\d+)_(?P<name>.+)\.mrc\Z", re.IGNORECASE)
_VIRTUAL = re.compile(r"(?P<n>\d+)_(?P<name>[^_]+)(?:_(?P<calc>.+))?\.mrc\Z", re.IGNORECASE)


def basename(path: str) -> str:
    """The last component of a path, URL or Windows path (both separators)."""
    return path.rstrip("/\\").replace("\\", "/").rpartition("/")[2]


def dataset_id_of(name: str) -> str | None:
    """The dataset id (``YYYYMMDD_NNNNN``) a name starts with, or None."""
    match = DATASET_ID.match(name)
    return match.group(0) if match else None


def saved_file_names(info_raw: Mapping[str, str], dataset_id: str) -> tuple[list[str], list[str]]:
    """The base names an info file's ``Autosave ... File Path`` keys give (Windows paths
    reduced to their last part), kept only when they name a file of this acquisition; and
    the keys ignored because they point anywhere else."""
    names: list[str] = []
    ignored: list[str] = []
    for key, value in info_raw.items():
        if not (key.startswith("Autosave ") and key.endswith(" File Path") and value.strip()):
            continue
        name = basename(value.strip())
        if name not in ("", ".", "..") and name.startswith(dataset_id):
            names.append(name)
        else:
            ignored.append(key)
    return names, ignored


@dataclass
class AcquisitionFiles:
    """The files of one acquisition, as the paths given (not opened)."""

    stem: str
    folder: str
    movie: str | None = None
    info: str | None = None
    final: str | None = None
    scan_coordinates: str | None = None
    virtual: dict[str, str] = field(default_factory=dict)  # name -> path
    virtual_index: dict[str, int] = field(default_factory=dict)  # name -> detector number
    external: dict[str, str] = field(default_factory=dict)
    others: list[str] = field(default_factory=list)

    @property
    def dataset_id(self) -> str:
        match = DATASET_ID.match(self.stem)
        return match.group(0) if match else self.stem

    @property
    def suffix(self) -> str | None:
        rest = self.stem[len(self.dataset_id) + 1 :]
        return rest or None

    def described(self) -> dict[str, object]:
        """What the names say: date, acquisition number, suffix (for catalog metadata)."""
        match = DATASET_ID.match(self.stem)
        out: dict[str, object] = {"dataset_id": self.dataset_id, "suffix": self.suffix}
        if match:
            date = match["date"]
            out["date"] = f"{date[:4]}-{date[4:6]}-{date[6:]}"
            out["acquisition_number"] = int(match["number"])
        return out

    def files(self) -> dict[str, object]:
        return {
            "movie": self.movie,
            "info": self.info,
            "final": self.final,
            "scan_coordinates": self.scan_coordinates,
            "virtual": dict(self.virtual),
            "external": dict(self.external),
            "others": list(self.others),
        }


def stem_of(name: str) -> tuple[str, str] | None:
    """(stem, role) for a movie or info file named by the convention, else None."""
    for ending, role in _STEM_FILES.items():
        if name.lower().endswith(ending) and DATASET_ID.match(name):
            stem = name[: -len(ending)]
            if stem:
                return stem, role
    return None


def classify(rest: str) -> tuple[str, int | None, str | None]:
    """The role of a file from the part of its name after ``{stem}_``:
    (role, detector number, detector name)."""
    lower = rest.lower()
    if lower == "final.mrc":
        return "final", None, None
    if lower == "scan_coordinates.csv":
        return "scan_coordinates", None, None
    if match := _EXTERNAL.match(rest):
        return "external", int(match["n"]), match["name"]
    if match := _VIRTUAL.match(rest):
        return "virtual", int(match["n"]), match["name"]
    return "other", None, None


def group_acquisitions(paths: list[str]) -> tuple[list[AcquisitionFiles], list[str]]:
    """Group DE files by stem (per folder). Returns the acquisitions and the paths that
    follow no DE name."""
    groups: dict[tuple[str, str], AcquisitionFiles] = {}
    rest: list[tuple[str, str, str]] = []
    ungrouped: list[str] = []
    for path in paths:
        folder, name = posixpath.dirname(path.replace("\\", "/")), basename(path)
        found = stem_of(name)
        if found:
            stem, role = found
            group = groups.setdefault((folder, stem), AcquisitionFiles(stem, folder))
            if getattr(group, role) is None:
                setattr(group, role, path)
            else:
                group.others.append(path)
        elif DATASET_ID.match(name):
            rest.append((folder, name, path))
        else:
            ungrouped.append(path)
    # Candidate stems per (folder, dataset id), longest first: a file goes to the longest
    # stem that prefixes it. Indexed so that 100,000 names group in well under a second.
    stems_by_id: dict[tuple[str, str], list[str]] = {}
    for folder, stem in groups:
        key = (folder, dataset_id_of(stem) or stem)
        stems_by_id.setdefault(key, []).append(stem)
    for stems in stems_by_id.values():
        stems.sort(key=len, reverse=True)
    for folder, name, path in rest:
        dataset_id = dataset_id_of(name) or name
        candidates = stems_by_id.get((folder, dataset_id), [])
        stem = next((s for s in candidates if name.startswith(s + "_")), dataset_id)
        group = groups.setdefault((folder, stem), AcquisitionFiles(stem, folder))
        role, n, detector = classify(name[len(stem) + 1 :])
        if role == "virtual" and detector is not None:
            group.virtual[detector] = path
            group.virtual_index[detector] = n  # type: ignore[assignment]
        elif role == "external" and detector is not None:
            group.external[detector] = path
        elif role in ("final", "scan_coordinates") and getattr(group, role) is None:
            setattr(group, role, path)
        else:
            group.others.append(path)
    for group in groups.values():
        # Virtual images in detector order, whatever the listing order was.
        order = sorted(group.virtual, key=lambda k: (group.virtual_index[k], k))
        group.virtual = {k: group.virtual[k] for k in order}
        group.external = dict(sorted(group.external.items()))
    return sorted(groups.values(), key=lambda g: (g.folder, g.stem)), ungrouped
