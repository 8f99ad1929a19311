"""The Direct Electron naming convention: which files belong to which acquisition.

Pure functions over names. An acquisition's *stem* is ``{id}`` or ``{id}_{suffix}`` (the id
is the dataset name ``YYYYMMDD_NNNNN``); its files are ``{stem}_movie.mrc``,
``{stem}_info.txt``, ``{stem}_{n}_{name}_{calc}.mrc`` (virtual detector n),
``{stem}_ext{n}_{name}.mrc`` (external detector n), ``{stem}_final.mrc`` and
``{stem}_scan_coordinates.csv``. A file goes to the longest stem that prefixes it, so
acquisitions with suffixes in one folder never share files.

Beyond dataset ids, any ``{stem}_movie.mrc`` names an acquisition (``Custom_movie.mrc`` with
``Custom_info.txt``); in a listing such a stem groups files only when both its movie and its
info file are there. Virtual images may be numbered ``{n}`` or ``virt{n}``
(``..._virt0_BF_sum.mrc``). Two detectors with one name are both kept, in detector order,
the later ones renamed as RosettaSciIO does (``BF``, ``BF_1``, ``BF_2``...).
"""

from __future__ import annotations

import posixpath
import re
from collections.abc import Mapping
from dataclasses import dataclass, field

DATASET_ID = re.compile(r"(?P<date>\d{8})_(?P<number>\d+)(?=_|$)")
_STEM_FILES = {"_movie.mrc": "movie", "_info.txt": "info"}
_EXTERNAL = re.compile(r"ext(?P<n>\d+)_(?P<name>.+)\.mrc\Z", re.IGNORECASE)
_VIRTUAL = re.compile(
    r"(?:virt)?(?P<n>\d+)_(?P<name>[^_]+)(?:_(?P<calc>.+))?\.mrc\Z", re.IGNORECASE
)


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
    """(stem, role) for a movie or info file named ``{stem}_movie.mrc`` / ``{stem}_info.txt``
    (any non-empty stem), else None."""
    for ending, role in _STEM_FILES.items():
        if name.lower().endswith(ending):
            stem = name[: -len(ending)]
            if stem:
                return stem, role
    return None


def dedupe(names: list[str]) -> list[str]:
    """Names made unique as RosettaSciIO makes them: the first keeps its name, later ones
    get ``_1``, ``_2``... (skipping names already taken)."""
    seen: dict[str, int] = {}
    out: list[str] = []
    for name in names:
        if name not in seen:
            seen[name] = 1
            out.append(name)
            continue
        count = seen[name]
        new = f"{name}_{count}"
        while new in seen:
            count += 1
            new = f"{name}_{count}"
        seen[name] = count + 1
        seen[new] = 1
        out.append(new)
    return out


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
        else:
            rest.append((folder, name, path))
    # A stem that is not a dataset id names an acquisition only with both its movie and
    # its info file: any other "x_movie.mrc" stays a plain MRC file, as before.
    for key, group in list(groups.items()):
        if dataset_id_of(group.stem) is None and (group.movie is None or group.info is None):
            del groups[key]
            ungrouped.extend(p for p in (group.movie, group.info) if p is not None)
            ungrouped.extend(group.others)
    # A file goes to the longest stem of its folder that prefixes it (``{stem}_``): the
    # candidates are its own prefixes up to an underscore, so 100,000 names group in well
    # under a second.
    stems = {(folder, stem) for folder, stem in groups}
    found_images: dict[tuple[str, str], list[tuple[str, int, str, str]]] = {}
    for folder, name, path in rest:
        stem = next(
            (
                name[:cut]
                for cut in _underscores_from_right(name)
                if (folder, name[:cut]) in stems
            ),
            None,
        )
        if stem is None:
            stem = dataset_id_of(name)
            if stem is None:
                ungrouped.append(path)
                continue
        group = groups.setdefault((folder, stem), AcquisitionFiles(stem, folder))
        role, n, detector = classify(name[len(stem) + 1 :])
        if role in ("virtual", "external") and detector is not None and n is not None:
            found_images.setdefault((folder, stem), []).append((role, n, detector, path))
        elif role in ("final", "scan_coordinates") and getattr(group, role) is None:
            setattr(group, role, path)
        else:
            group.others.append(path)
    for key, images in found_images.items():
        group = groups[key]
        # Detector order (then name and path), whatever the listing order was; a repeated
        # detector name is kept under RosettaSciIO's de-duplicated name.
        for role in ("virtual", "external"):
            mine = sorted((n, d, p) for r, n, d, p in images if r == role)
            names = dedupe([d for _, d, _ in mine])
            table = getattr(group, role)
            for unique, (n, _, p) in zip(names, mine, strict=True):
                table[unique] = p
                if role == "virtual":
                    group.virtual_index[unique] = n
    return sorted(groups.values(), key=lambda g: (g.folder, g.stem)), ungrouped


def _underscores_from_right(name: str) -> list[int]:
    return [i for i in range(len(name) - 1, 0, -1) if name[i] == "_"]
