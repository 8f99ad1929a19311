"""The catalog glob: one listing of a folder, glob or bucket prefix -> one intake entry per
acquisition (Direct Electron files grouped by id) or per other MRC file -> YAML.

Nothing here reads a file except the one DE info file named as the listing source for
servers that cannot list (HTTP). Entries carry every file's URL, so reading an entry needs
no listing either. Written catalogs never hold credentials: only allow-listed storage
options, URLs without user, password or HTTP query string (:mod:`intake_mrc.credentials`;
readers give their own credentials), and every value written so that intake renders it back
to itself (:mod:`intake_mrc.literal`).
"""

from __future__ import annotations

import hashlib
import os
import re
import warnings
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

import fsspec
from fsspec.implementations.local import LocalFileSystem

from .credentials import (
    HeldOptions,
    allowed_options,
    clean_url,
    has_secret_parts,
    warn_dropped,
)
from .directelectron.acquisition import load_info
from .directelectron.naming import (
    DATASET_ID,
    AcquisitionFiles,
    basename,
    dataset_id_of,
    group_acquisitions,
    saved_file_names,
)
from .errors import StorageError
from .literal import intake2_literal, jinja_literal, map_strings, not_a_reference
from .progress import listing_progress, progress_bar
from .storage import redact_url
from .storage.local import resolves_inside
from .storage.opener import url_to_fs
from .storage.urls import ambiguous_chain, is_chained
from .yamlwriter import to_yaml

# Why a listed key holding "::" is left out where its URL would read as a chain.
_CHAIN = (
    "the key holds '::', which fsspec's URLs use between chained layers: its URL would "
    "name another object, so it is left out of the catalog"
)

MRC_ENDINGS = (".mrc", ".mrcs", ".map", ".ccp4", ".rec", ".st", ".ali", ".preali")
COMPRESSED_ENDINGS = (".gz", ".bz2")
DE_TEXT_ENDINGS = ("_info.txt", "_scan_coordinates.csv")
_SECRET = re.compile(
    r"key|secret|token|password|passwd|session|credential|auth|signature", re.IGNORECASE
)


def scrub_secrets(options: Any) -> Any:
    """Storage options without anything that looks like a credential (any depth). Kept for
    callers; catalogs now keep only allow-listed options (``credentials.allowed_options``)."""
    if isinstance(options, dict):
        return {
            k: scrub_secrets(v)
            for k, v in options.items()
            if not (isinstance(k, str) and _SECRET.search(k))
        }
    if isinstance(options, list | tuple):
        return [scrub_secrets(v) for v in options]
    return options


def is_mrc_name(name: str) -> bool:
    lower = name.lower()
    for ending in COMPRESSED_ENDINGS:
        if lower.endswith(ending):
            lower = lower[: -len(ending)]
    return lower.endswith(MRC_ENDINGS)


def _wanted(name: str) -> bool:
    return is_mrc_name(name) or (
        DATASET_ID.match(name) is not None and name.lower().endswith(DE_TEXT_ENDINGS)
    )


@dataclass
class CatalogEntry:
    """One intake entry: the file to open, ``open_mrc`` arguments and metadata."""

    name: str
    url: str
    kwargs: dict[str, Any] = field(default_factory=dict)
    metadata: dict[str, Any] = field(default_factory=dict)
    description: str = ""


def identifier(text: str) -> str:
    """A Python identifier from a name: non-word characters become _, a leading digit
    gets a prefix."""
    ident = re.sub(r"\W+", "_", text).strip("_") or "entry"
    if ident[0].isdigit():
        ident = "de_" + ident if DATASET_ID.match(ident) else "mrc_" + ident
    return ident


def _file_stem(name: str) -> str:
    lower = name.lower()
    for ending in COMPRESSED_ENDINGS + MRC_ENDINGS:
        if lower.endswith(ending):
            name, lower = name[: -len(ending)], lower[: -len(ending)]
    return name


def _links_out(paths: Iterable[str], root: str, follow_symlinks: bool) -> set[str]:
    """The local ``paths`` that lead out of ``root`` through a symbolic link, each named in
    a warning (left out of the catalog unless ``follow_symlinks``)."""
    out = {p for p in paths if not resolves_inside(p, root)}
    if out and not follow_symlinks:
        for p in sorted(out):
            warnings.warn(
                f"{p}: a symbolic link leading out of {root}, left out of the catalog "
                "(follow_symlinks=True includes it)",
                stacklevel=3,
            )
    return set() if follow_symlinks else out


def list_files(
    urlpath: str,
    storage_options: dict[str, Any] | None = None,
    progress: bool = False,
    follow_symlinks: bool = False,
) -> tuple[list[str], dict[str, int]]:
    """URLs of the MRC and DE files under ``urlpath`` (a folder, a glob, a bucket prefix,
    or a DE info file whose Autosave keys list the files), and their sizes where listed.
    One listing request (paginated by the server) or one info-file read. ``progress``
    counts the objects seen on a terminal (``intake_mrc.progress``).

    Local symbolic links (to files or folders) that lead out of the folder scanned are left
    out, each named in a warning, unless ``follow_symlinks``: a link put in a shared folder
    never makes a catalog entry of a file elsewhere (the rule of DE discovery)."""
    options = dict(storage_options or {})
    if basename(clean_url(urlpath)).lower().endswith("_info.txt"):
        urls = _list_from_info(urlpath, options)
        if "://" not in urlpath and "::" not in urlpath:  # the info file itself was named
            folder = os.path.dirname(os.path.abspath(urlpath))
            out = _links_out([u for u in urls if u != urlpath], folder, follow_symlinks)
            urls = [u for u in urls if u not in out]
        return urls, {}
    # A prefix holding "::" after s3:// is part of the key, not a chain (see url_to_fs).
    fs, path = url_to_fs(urlpath, options, defaults=False)
    if isinstance(fs, LocalFileSystem) and not fsspec.core.has_magic(path) and os.path.isdir(path):
        return _list_local_tree(path, follow_symlinks)
    try:
        with listing_progress(fs, progress):
            if fsspec.core.has_magic(path):
                found = fs.glob(path, detail=True)
            else:
                # One (paginated) listing of everything below; a single file lists as itself.
                found = fs.find(path, detail=True) or {path: fs.info(path)}
    except FileNotFoundError:
        raise FileNotFoundError(f"{redact_url(urlpath)}: nothing there to list") from None
    except Exception as error:  # noqa: BLE001 - reported as one clear line
        raise StorageError(
            f"cannot list ({type(error).__name__}); for an HTTP server, give a DE info "
            "file URL instead",
            redact_url(urlpath),
        ) from None
    urls: list[str] = []
    sizes: dict[str, int] = {}
    protocol = fs.protocol if isinstance(fs.protocol, str) else fs.protocol[0]
    out: set[str] = set()
    if isinstance(fs, LocalFileSystem) and fsspec.core.has_magic(path):
        # A glob: the folder before its first wildcard is the folder scanned.
        root = os.path.dirname(re.split(r"[*?\[]", path, maxsplit=1)[0]) or "."
        out = _links_out(
            (p for p, i in found.items() if i.get("type") != "directory" and _wanted(basename(p))),
            root,
            follow_symlinks,
        )
    for p, info in sorted(found.items()):
        if info.get("type") == "directory" or not _wanted(basename(p)) or p in out:
            continue
        url = p if protocol in ("file", "local") else fs.unstrip_protocol(p)
        if "::" in p and protocol not in ("file", "local") and is_chained(url):
            # fsspec would split this URL at "::" and read another object: refused.
            warnings.warn(f"{redact_url(url)}: {ambiguous_chain(url) or _CHAIN}", stacklevel=2)
            continue
        urls.append(url)
        if info.get("size") is not None:
            sizes[url] = int(info["size"])
    return urls, sizes


def _list_local_tree(root: str, follow_symlinks: bool = False) -> tuple[list[str], dict[str, int]]:
    """``list_files`` for a local folder: one scandir per folder, a stat only for the files
    wanted (fsspec's find stats every entry; this is 4x faster on 100,000 files).
    Symbolic links to folders are followed once (a link cycle is not walked twice); links
    (to files or folders) leading out of ``root`` are left out with a warning unless
    ``follow_symlinks``."""
    found: list[tuple[str, int]] = []
    seen: set[tuple[int, int]] = set()
    stack = [root.rstrip("/") or "/"]
    while stack:
        folder = stack.pop()
        try:
            st = os.stat(folder)
            if (st.st_dev, st.st_ino) in seen:
                continue
            seen.add((st.st_dev, st.st_ino))
            with os.scandir(folder) as listing:
                items = list(listing)
        except OSError:
            continue  # unreadable folder: as fsspec's find, skip it
        for item in items:
            try:
                path = f"{folder}/{item.name}"
                is_dir = item.is_dir()
                if not is_dir and not _wanted(item.name):
                    continue
                if item.is_symlink() and _links_out([path], root, follow_symlinks):
                    continue  # leads out of the folder scanned: named in a warning
                if is_dir:
                    stack.append(path)
                else:
                    found.append((path, item.stat().st_size))
            except OSError:
                continue  # vanished or a dangling link
    found.sort()
    return [p for p, _ in found], dict(found)


def _list_from_info(info_url: str, storage_options: dict[str, Any]) -> list[str]:
    """The files an info file says were saved, as URLs next to it (base names only, and
    only names of this acquisition: a hostile path reads nothing elsewhere)."""
    info = load_info(info_url, storage_options)
    is_http = info_url.startswith(("http://", "https://"))
    # A query string (a pre-signed URL) belongs to the info file alone.
    path = info_url.split("?", 1)[0].split("#", 1)[0] if is_http else info_url
    folder = path.rsplit("/", 1)[0] if "/" in path else "."
    dataset_id = dataset_id_of(basename(path))
    names = saved_file_names(info.raw, dataset_id)[0] if dataset_id else []
    urls = [info_url] + [
        folder + "/" + (quote(name) if is_http else name) for name in names if _wanted(name)
    ]
    return sorted(set(urls))


def _decoded(url: str) -> str:
    """The URL with its file name percent-decoded where the protocol encodes (HTTP), and
    without query string (a pre-signed URL's signature is not part of the name)."""
    if not url.startswith(("http://", "https://")):
        return url
    from urllib.parse import unquote

    folder, _, name = url.split("?", 1)[0].split("#", 1)[0].rpartition("/")
    return f"{folder}/{unquote(name)}"


def plan_entries(
    urls: Iterable[str], sizes: dict[str, int] | None = None, progress: bool = False
) -> list[CatalogEntry]:
    """Group DE files by acquisition and make one entry per acquisition or MRC file."""
    urls = list(urls)
    sizes = sizes or {}
    # Group on decoded names (HTTP URLs are percent-encoded), keep the URLs to read.
    by_key = {_decoded(u): u for u in urls}
    groups, ungrouped = group_acquisitions(list(by_key))
    entries: list[CatalogEntry] = []
    iterator: Iterable[AcquisitionFiles] = groups
    if progress:
        iterator = progress_bar(groups, desc="grouping", unit=" acquisitions")
    for group in iterator:
        if group.movie is None:
            # No movie: its MRC files stand alone.
            ungrouped.extend(p for p in _group_paths(group) if is_mrc_name(basename(p)))
            continue
        url = by_key[group.movie]
        files = {
            "movie": url,
            "info": by_key.get(group.info or ""),
            "final": by_key.get(group.final or ""),
            "scan_coordinates": by_key.get(group.scan_coordinates or ""),
            "virtual": {k: by_key[v] for k, v in group.virtual.items()},
            "external": {k: by_key[v] for k, v in group.external.items()},
        }
        kwargs: dict[str, Any] = {
            "metadata_file": files["info"],
            "virtual_images": files["virtual"],
            "external_images": files["external"],
        }
        if files["scan_coordinates"]:
            kwargs["scan_file"] = files["scan_coordinates"]
        # Metadata names the grouped files (base names: the folder is the movie's); the
        # kwargs hold their full URLs.
        metadata = {
            "kind": "direct_electron",
            **group.described(),
            "folder": url.rsplit("/", 1)[0],
            "files": _file_names(files),
            "size_bytes": sizes.get(url),
        }
        description = f"Direct Electron acquisition {group.stem}"
        entries.append(CatalogEntry(group.stem, url, kwargs, metadata, description))
    for key in sorted(ungrouped):
        url = by_key[key]
        metadata = {
            "kind": "mrc",
            "folder": url.rsplit("/", 1)[0],
            "files": {"data": basename(key)},
            "size_bytes": sizes.get(url),
        }
        name = _file_stem(basename(key))
        entries.append(CatalogEntry(name, url, {}, metadata, f"MRC file {basename(key)}"))
    _name_entries(entries)
    return entries


def _file_names(files: dict[str, Any]) -> dict[str, Any]:
    """The roles' base names (decoded), leaving out what is absent."""
    out: dict[str, Any] = {}
    for role, value in files.items():
        if isinstance(value, dict):
            if value:
                out[role] = {k: basename(_decoded(v)) for k, v in value.items()}
        elif value:
            out[role] = basename(_decoded(value))
    return out


def _group_paths(group: AcquisitionFiles) -> list[str]:
    return [
        p
        for p in (
            group.movie,
            group.final,
            *group.virtual.values(),
            *group.external.values(),
            *group.others,
        )
        if p
    ]


def _name_entries(entries: list[CatalogEntry]) -> None:
    """Stable identifiers that say which file is which. A name that clashes moves on to the
    next of: the stem (``EMD_3001``), the whole file name (``EMD_3001_map`` beside
    ``EMD_3001_map_bz2``), the parent folder and the stem (``a_x_y`` beside ``c_x_y``), the
    parent and the whole name, then more folders. Names apart only in punctuation spell it
    out before folders are tried (``a_space_b_dot_mrc`` beside ``a_b_dot_mrc``). A short hash
    is added only when even that gives one identifier (``a-b.mrc`` and ``a_dash_b.mrc``)."""
    candidates = [_name_candidates(e) for e in entries]
    level = [0] * len(entries)
    while True:
        names = [c[min(lv, len(c) - 1)] for c, lv in zip(candidates, level, strict=True)]
        counts: dict[str, int] = {}
        for name in names:
            counts[name] = counts.get(name, 0) + 1
        clashing = [
            i for i, n in enumerate(names) if counts[n] > 1 and level[i] < len(candidates[i]) - 1
        ]
        if not clashing:
            break
        for i in clashing:
            level[i] += 1
    taken: set[str] = set()
    for entry, name in zip(entries, names, strict=True):
        if counts[name] > 1 or name in taken:
            name = f"{name}_{hashlib.sha1(entry.url.encode()).hexdigest()[:8]}"
        taken.add(name)
        entry.name = name


def _name_candidates(entry: CatalogEntry) -> list[str]:
    """Ever longer names for an entry, from its stem to its whole path."""
    parts = [p for p in _decoded(entry.url).split("/") if p and not p.endswith(":")]
    stem, whole = identifier(entry.name), identifier(parts[-1] if parts else entry.name)
    # Names apart only in punctuation (`img-2d.mrc`, `img_2d.mrc`) spell it out before
    # folders are tried: folders cannot tell files of one folder apart.
    out = [stem, whole, identifier(_spelled(parts[-1] if parts else entry.name))]
    folders = parts[:-1]
    for k in range(1, len(folders) + 1):
        prefix = "_".join(folders[-k:])
        out += [identifier(f"{prefix}_{stem}"), identifier(f"{prefix}_{whole}")]
    # Consecutive duplicates (a stem equal to its file name) are one step.
    return [n for i, n in enumerate(out) if i == 0 or n != out[i - 1]]


_SPELLED = {" ": "space", "-": "dash", ".": "dot", "+": "plus", "#": "hash", ",": "comma"}


def _spelled(name: str) -> str:
    """``name`` with every character an identifier cannot hold spelled as a word
    (``img-2d.mrc`` -> ``img_dash_2d_dot_mrc``; others by code point, ``u0024`` for ``$``)."""
    return "".join(
        c if (c.isalnum() or c == "_") else f"_{_SPELLED.get(c, f'u{ord(c):04x}')}_" for c in name
    )


def _token(text: str) -> str:
    return hashlib.sha1(text.encode()).hexdigest()[:16]


def _v2_value(text: str, relative_to: str | None) -> str:
    """A kwarg value intake 2 renders back to ``text`` (or to ``text`` relative to the
    catalog's folder, through ``{CATALOG_DIR}``)."""
    relative = _relative(text, relative_to)
    if relative is not None:
        return "{CATALOG_DIR}/" + intake2_literal(relative)
    return not_a_reference(intake2_literal(text))


def _legacy_value(text: str, relative_to: str | None) -> str:
    """An argument or metadata value legacy intake (jinja2) renders back to ``text``."""
    relative = _relative(text, relative_to)
    if relative is not None:
        return "{{ CATALOG_DIR }}/" + jinja_literal(relative)
    return jinja_literal(text)


def _relative(text: str, folder: str | None) -> str | None:
    """An absolute local path relative to ``folder`` (None: not wanted or not local)."""
    if folder is None or not os.path.isabs(text) or "://" in text:
        return None
    return os.path.relpath(text, folder)


def catalog_v2(
    entries: list[CatalogEntry],
    storage_options: dict[str, Any] | None = None,
    metadata: dict[str, Any] | None = None,
    output: str = "dask",
    relative_to: str | None = None,
    options_value: Any = None,
) -> dict[str, Any]:
    """The intake 2 catalog (``version: 2``) as a dict: one MRC data block and one reader
    entry per catalog entry. Every string is written so that intake renders it back to
    itself (see :mod:`intake_mrc.literal`); ``relative_to`` (a local folder) writes local
    paths as ``{CATALOG_DIR}/relative``. ``options_value`` (glob_catalog's in-process
    options) replaces ``storage_options`` as the value intake holds, unrendered."""
    reader = {
        "dask": ("MRCDaskReader", "dask.array:Array"),
        "numpy": ("MRCNumpyReader", "numpy:ndarray"),
        "xarray": ("MRCXarrayReader", "xarray:DataArray"),
    }[output]

    def value(text: str) -> str:
        return _v2_value(text, relative_to)

    def meta(text: str) -> str:
        relative = _relative(text, relative_to)
        return not_a_reference(text if relative is None else "{CATALOG_DIR}/" + relative)

    options = options_value
    if options is None:
        options = map_strings(storage_options, intake2_literal) if storage_options else None
    data: dict[str, Any] = {}
    readers: dict[str, Any] = {}
    aliases: dict[str, str] = {}
    for entry in entries:
        data_token, entry_token = _token("data:" + entry.url), _token("entry:" + entry.name)
        data[data_token] = {
            "datatype": "intake_mrc.readers:MRC",
            "kwargs": {"url": value(entry.url), "storage_options": options},
            "metadata": map_strings(entry.metadata, meta),
            "user_parameters": {},
        }
        readers[entry_token] = {
            "reader": f"intake_mrc.readers:{reader[0]}",
            "kwargs": {"args": [f"{{data({data_token})}}"], **map_strings(entry.kwargs, value)},
            # The reader inherits the data block's metadata: written once.
            "metadata": {"description": not_a_reference(entry.description)},
            "output_instance": reader[1],
            "user_parameters": {},
        }
        aliases[entry.name] = entry_token
    return {
        "version": 2,
        "metadata": metadata or {},
        "user_parameters": {},
        "aliases": aliases,
        "data": data,
        "entries": readers,
    }


def catalog_legacy(
    entries: list[CatalogEntry],
    storage_options: dict[str, Any] | None = None,
    metadata: dict[str, Any] | None = None,
    relative_to: str | None = None,
) -> dict[str, Any]:
    """The legacy intake catalog (``sources:``) naming the driver by its class path. Every
    string of the arguments and metadata is written so that jinja2 renders it back to
    itself (see :mod:`intake_mrc.literal`)."""

    def value(text: str) -> str:
        return _legacy_value(text, relative_to)

    sources = {}
    for entry in entries:
        args = {"urlpath": entry.url, **entry.kwargs}
        if storage_options:
            args["storage_options"] = storage_options
        sources[entry.name] = {
            "driver": "intake_mrc.legacy.MRCSource",
            # intake does not render the description.
            "description": entry.description,
            "args": map_strings(args, value),
            "metadata": map_strings(entry.metadata, value),
        }
    return {"metadata": metadata or {}, "sources": sources}


def clean_entries(entries: list[CatalogEntry]) -> list[CatalogEntry]:
    """Copies of ``entries`` whose URLs (in every value) have no user, password or HTTP
    query string (see :mod:`intake_mrc.credentials`)."""
    return [
        CatalogEntry(
            e.name,
            clean_url(e.url),
            map_strings(e.kwargs, clean_url),
            map_strings(e.metadata, clean_url),
            clean_url(e.description),
        )
        for e in entries
    ]


def _secret_urls(entries: list[CatalogEntry]) -> dict[str, str]:
    """Clean URL -> full URL, for every URL of ``entries`` that holds credentials."""
    found: dict[str, str] = {}

    def note(text: str) -> str:
        if has_secret_parts(text):
            found[clean_url(text)] = text
        return text

    for e in entries:
        note(e.url)
        map_strings(e.kwargs, note)
    return found


def catalog_yaml(
    entries: list[CatalogEntry],
    storage_options: dict[str, Any] | None = None,
    metadata: dict[str, Any] | None = None,
    form: str = "v2",
    relative_to: str | None = None,
) -> str:
    """YAML text of a catalog; secret-looking storage options are never written.

    ``relative_to`` (the folder the catalog is written to, local files only) writes paths
    relative to the catalog's own folder, so that the catalog and the data move together."""
    return to_yaml(catalog_document(entries, storage_options, metadata, form, relative_to))


def catalog_document(
    entries: list[CatalogEntry],
    storage_options: dict[str, Any] | None = None,
    metadata: dict[str, Any] | None = None,
    form: str = "v2",
    relative_to: str | None = None,
) -> dict[str, Any]:
    """The catalog document that :func:`catalog_yaml` writes (also the rows of the SQLite
    index, one entry at a time: both forms give the same readers)."""
    options, _ = allowed_options(storage_options)
    entries = clean_entries(entries)
    folder = None if relative_to is None else os.path.abspath(relative_to)
    if folder is not None and metadata:
        # The catalog's own metadata (the listed source) is not rendered: plain text.
        template = "{{ CATALOG_DIR }}/" if form == "legacy" else "{CATALOG_DIR}/"

        def relative(text: str) -> str:
            path = _relative(text, folder)
            return text if path is None else template + path

        metadata = map_strings(metadata, relative)
    if form == "legacy":
        doc = catalog_legacy(entries, options, metadata, folder)
    else:
        doc = catalog_v2(entries, options, metadata, relative_to=folder)
    return doc


def _listed_entries(
    urlpath: str,
    storage_options: dict[str, Any] | None,
    progress: bool,
    headers: bool,
    follow_symlinks: bool = False,
) -> list[CatalogEntry]:
    urls, sizes = list_files(urlpath, storage_options, progress, follow_symlinks)
    entries = plan_entries(urls, sizes, progress)
    if headers:
        from .catalog_index import index_headers

        index_headers(entries, storage_options, progress=progress)
    return entries


def glob_catalog(
    urlpath: str,
    storage_options: dict[str, Any] | None = None,
    output: str = "dask",
    progress: bool = False,
    headers: bool = False,
    follow_symlinks: bool = False,
) -> Any:
    """An intake 2 catalog of everything under ``urlpath`` (folder, glob, ``s3://`` prefix,
    or a DE info file for servers that cannot list), one entry per acquisition or file.

    ``headers=True`` reads every header and DE info file concurrently and puts shape, dtype,
    voxel size and the DE fields into each entry's metadata (see ``catalog_index``).
    Local symbolic links leading out of the folder are left out with a warning unless
    ``follow_symlinks=True`` (see :func:`list_files`).

    The entries read with ``storage_options`` and the URLs as given, and the catalog is
    safe to save with intake's own ``to_yaml_file`` / ``to_dict``: intake holds the options
    as :class:`~intake_mrc.credentials.HeldOptions`, which it serialises as the allowed
    options only, and the URLs without user, password or HTTP query string.
    """
    from intake.readers.entry import Catalog

    entries = _listed_entries(urlpath, storage_options, progress, headers, follow_symlinks)
    source = {"source": redact_url(urlpath), "entries": len(entries)}
    held = HeldOptions(storage_options, _secret_urls(entries))
    doc = catalog_v2(clean_entries(entries), None, source, output, options_value=held)
    return Catalog.from_dict(doc)


def write_catalog(
    urlpath: str,
    path: str,
    storage_options: dict[str, Any] | None = None,
    form: str = "v2",
    progress: bool = False,
    write_storage_options: dict[str, Any] | None = None,
    relative: bool = False,
    headers: bool = False,
    empty_ok: bool = True,
    follow_symlinks: bool = False,
    index: bool = False,
) -> int:
    """List ``urlpath``, write its catalog YAML to ``path``; returns the entry count.

    ``write_storage_options`` (default: ``storage_options`` without credentials) is what the
    catalog stores for reading. ``relative`` writes local paths relative to the catalog.
    ``headers`` indexes every header first (see :func:`glob_catalog`). ``empty_ok=False``
    raises ``FileNotFoundError`` instead of writing a catalog without entries.
    ``follow_symlinks`` as in :func:`list_files`.

    ``index=True`` (a local ``.yaml`` path) writes the entries to an SQLite index beside it
    (same name, ``.sqlite``) and ``path`` as a small YAML of one entry, ``index``, that opens
    it lazily: ``intake.open_catalog(path)`` parses a few hundred bytes whatever the number
    of entries (see :func:`intake_mrc.catalog_sqlite.write_pointer`)."""
    entries = _listed_entries(urlpath, storage_options, progress, headers, follow_symlinks)
    if not entries and not empty_ok:
        raise FileNotFoundError(
            f"{redact_url(urlpath)}: no MRC files or Direct Electron acquisitions found there; "
            f"nothing written to {path}"
        )
    written = storage_options if write_storage_options is None else write_storage_options
    # Written catalogs keep allowed options and clean URLs only; say what was left out.
    warn_dropped(allowed_options(written)[1], len(_secret_urls(entries)), redact_url(path))
    local_catalog = "://" not in path and "::" not in path
    folder = os.path.dirname(os.path.abspath(path)) if local_catalog else None
    source = {"source": redact_url(urlpath), "entries": len(entries)}
    if index:
        from .catalog_sqlite import is_index_path, write_index, write_pointer

        if folder is None or is_index_path(path):
            raise ValueError("index=True writes a local YAML file beside its index: give a .yaml")
        index_path = os.path.splitext(path)[0] + ".sqlite"
        n = write_index(entries, index_path, written, source, folder if relative else None)
        write_pointer(index_path, path, form, source)
        return n
    if path.lower().endswith((".sqlite", ".sqlite3", ".db")):
        from .catalog_sqlite import write_index

        if form != "v2" or folder is None:
            raise ValueError("an SQLite index is a local file of intake 2 (v2) entries")
        return write_index(entries, path, written, source, folder if relative else None)
    text = catalog_yaml(entries, written, source, form, folder if relative else None)
    if folder is not None:
        os.makedirs(folder, exist_ok=True)  # "catalogs/new.yaml" before catalogs/ exists
    with fsspec.open(path, "w") as out:
        out.write(text)
    return len(entries)
