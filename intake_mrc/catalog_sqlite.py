"""Catalogs of a million files: an SQLite index (standard library, no new dependency) that
opens in milliseconds, is searched by indexed columns (date, acquisition number, shape,
pixel size, kind...) without reading every entry, and hands out the SAME readers as the
YAML form.

Each row keeps the entry exactly as :func:`intake_mrc.catalog.catalog_document` builds it
for YAML (the reader description and its data block, as JSON), so escaping, storage-option
filtering and reader kwargs are those of the YAML path; reading a row goes through intake's
own ``ReaderDescription.from_dict`` and ``Catalog.__getitem__``, as ``Catalog.from_dict``
does for YAML. The search columns are copies of entry metadata, for SQL only.

Search values are bound as SQL parameters and column names come from a fixed table: nothing
in a catalog or a query is evaluated.

intake users open an index the intake way through a small YAML written beside it
(:func:`write_pointer`): its one entry's reader (:class:`MRCIndexReader`, intake 2) or driver
(:class:`intake_mrc.legacy.MRCIndexCatalog`, legacy) opens the index when asked for, so
``intake.open_catalog`` parses a few hundred bytes of YAML whatever the number of entries.
"""

from __future__ import annotations

import json
import math
import os
import sqlite3
import tempfile
import threading
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from intake.readers import datatypes
from intake.readers.entry import Catalog, DataDescription, ReaderDescription
from intake.readers.readers import BaseReader

from .catalog import CatalogEntry, catalog_document
from .literal import intake2_literal, jinja_literal, not_a_reference
from .yamlwriter import to_yaml

INDEX_ENDINGS = (".sqlite", ".sqlite3", ".db")
FORMAT = "intake-mrc-index/1"

# Searchable columns: name -> (SQL type, how the value is made from an entry's metadata).
COLUMNS: dict[str, str] = {
    "kind": "TEXT",
    "date": "TEXT",
    "acquisition_number": "INTEGER",
    "dataset_id": "TEXT",
    "suffix": "TEXT",
    "shape": "TEXT",  # JSON list, e.g. "[32, 4, 8]"
    "ndim": "INTEGER",
    "nx": "INTEGER",
    "ny": "INTEGER",
    "nframes": "INTEGER",  # product of the axes before the last two
    "pixel_size": "REAL",  # Å, x (voxel_size_angstrom[0])
    "dtype": "TEXT",
    "mode": "INTEGER",
    "extended_header_type": "TEXT",
    "compression": "TEXT",
    "camera": "TEXT",
    "acquisition_time": "TEXT",
    "frames_per_second": "REAL",
    "scan_x": "INTEGER",
    "scan_y": "INTEGER",
    "size_bytes": "INTEGER",
    "folder": "TEXT",
    "has_errors": "INTEGER",
}
INDEXED = ("kind", "date", "acquisition_number", "shape", "pixel_size", "dataset_id", "nx")


def is_index_path(path: str) -> bool:
    return str(path).lower().endswith(INDEX_ENDINGS)


def _int(value: Any) -> int | None:
    return value if type(value) is int else None


def _real(value: Any) -> float | None:
    if isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value):
        return float(value)
    return None


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) else None


def search_values(metadata: dict[str, Any]) -> dict[str, Any]:
    """The search columns of one entry, from its metadata (absent fields are NULL)."""
    shape = metadata.get("shape")
    shape = (
        [int(n) for n in shape]
        if isinstance(shape, list) and all(type(n) is int for n in shape)
        else None
    )
    voxel = metadata.get("voxel_size_angstrom")
    scan = metadata.get("scan_size")
    scan = scan if isinstance(scan, list) and len(scan) == 2 else [None, None]
    return {
        "kind": _text(metadata.get("kind")),
        "date": _text(metadata.get("date")),
        "acquisition_number": _int(metadata.get("acquisition_number")),
        "dataset_id": _text(metadata.get("dataset_id")),
        "suffix": _text(metadata.get("suffix")),
        "shape": None if shape is None else json.dumps(shape),
        "ndim": None if shape is None else len(shape),
        "nx": None if not shape else shape[-1],
        "ny": None if shape is None or len(shape) < 2 else shape[-2],
        "nframes": None if shape is None else math.prod(shape[:-2]),
        "pixel_size": _real(voxel[0]) if isinstance(voxel, list) and voxel else None,
        "dtype": _text(metadata.get("dtype")),
        "mode": _int(metadata.get("mode")),
        "extended_header_type": _text(metadata.get("extended_header_type")),
        "compression": _text(metadata.get("compression")),
        "camera": _text(metadata.get("camera")),
        "acquisition_time": _text(metadata.get("acquisition_time")),
        "frames_per_second": _real(metadata.get("frames_per_second")),
        "scan_x": _int(scan[0]),
        "scan_y": _int(scan[1]),
        "size_bytes": _int(metadata.get("size_bytes")),
        "folder": _text(metadata.get("folder")),
        "has_errors": int("index_errors" in metadata),
    }


def write_index(
    entries: Sequence[CatalogEntry],
    path: str,
    storage_options: dict[str, Any] | None = None,
    metadata: dict[str, Any] | None = None,
    relative_to: str | None = None,
    output: str = "dask",
) -> int:
    """Write the entries as an SQLite index at ``path`` (a local file, replaced whole:
    written beside it, then renamed). Returns the number of entries.

    Storage options are filtered exactly as for YAML (no credentials are written)."""
    if output != "dask":
        raise ValueError("the SQLite index holds dask readers (as written YAML does)")
    path = os.path.abspath(path)
    folder = os.path.dirname(path)
    os.makedirs(folder, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".index-", suffix=".sqlite", dir=folder)
    os.close(fd)
    try:
        db = sqlite3.connect(tmp)
        columns = ", ".join(f"{name} {kind}" for name, kind in COLUMNS.items())
        db.executescript(
            "PRAGMA journal_mode=OFF; PRAGMA synchronous=OFF;"
            "CREATE TABLE catalog (key TEXT PRIMARY KEY, value TEXT NOT NULL);"
            "CREATE TABLE data (token TEXT PRIMARY KEY, block TEXT NOT NULL);"
            f"CREATE TABLE entries (name TEXT PRIMARY KEY, token TEXT NOT NULL, "
            f"reader TEXT NOT NULL, metadata TEXT NOT NULL, {columns});"
        )
        rows = []
        blocks: dict[str, str] = {}
        for entry in entries:
            # One entry at a time through the YAML path's own document builder.
            doc = catalog_document([entry], storage_options, {}, "v2", relative_to)
            ((name, token),) = doc["aliases"].items()
            for data_token, block in doc["data"].items():
                blocks.setdefault(data_token, json.dumps(block))
            values = search_values(entry.metadata)
            rows.append(
                (name, token, json.dumps(doc["entries"][token]), json.dumps(entry.metadata))
                + tuple(values[c] for c in COLUMNS)
            )
        marks = ", ".join("?" * (4 + len(COLUMNS)))
        db.executemany(f"INSERT INTO entries VALUES ({marks})", rows)
        db.executemany("INSERT INTO data VALUES (?, ?)", blocks.items())
        for column in INDEXED:
            db.execute(f"CREATE INDEX entries_{column} ON entries ({column})")
        db.execute("CREATE INDEX entries_token ON entries (token)")
        info = {
            "format": FORMAT,
            "metadata": json.dumps(metadata or {}),
            "relative": json.dumps(relative_to is not None),
        }
        db.executemany("INSERT INTO catalog VALUES (?, ?)", info.items())
        db.commit()
        db.close()
        os.replace(tmp, path)
    except BaseException:
        os.unlink(tmp)
        raise
    return len(rows)


class _Rows:
    """One read-only SQLite connection shared by a catalog and its search results."""

    def __init__(self, path: str):
        self.path = path
        uri = "file:" + _quote_path(path) + "?mode=ro&immutable=1"
        self.db = sqlite3.connect(uri, uri=True, check_same_thread=False)
        self.lock = threading.Lock()

    def query(self, sql: str, params: Sequence[Any] = ()) -> list[tuple]:
        with self.lock:
            return self.db.execute(sql, params).fetchall()


def _quote_path(path: str) -> str:
    from urllib.parse import quote

    return quote(os.path.abspath(path))


class _Lazy(Mapping[str, Any]):
    """A read-only mapping over one table (filtered by a search), rows parsed when asked
    for and kept."""

    def __init__(
        self, rows: _Rows, table: str, key: str, column: str, where: str, params: list, parse: Any
    ):
        self._rows, self._params, self._parse = rows, list(params), parse
        self._one = f"SELECT {column} FROM {table} WHERE {key} = ? AND ({where})"
        self._keys = f"SELECT {key} FROM {table} WHERE {where} ORDER BY name"
        self._count = f"SELECT COUNT(*) FROM {table} WHERE {where}"
        if table == "data":
            self._keys = f"SELECT {key} FROM {table} WHERE {where} ORDER BY token"
        self._cache: dict[str, Any] = {}

    def __getitem__(self, key: str) -> Any:
        if key in self._cache:
            return self._cache[key]
        if not isinstance(key, str):
            raise KeyError(key)
        found = self._rows.query(self._one, [key, *self._params])
        if not found:
            raise KeyError(key)
        value = self._cache[key] = self._parse(key, found[0][0])
        return value

    def __contains__(self, key: object) -> bool:
        try:
            self[key]  # type: ignore[index]
        except KeyError:
            return False
        return True

    def __iter__(self) -> Iterator[str]:
        return iter([row[0] for row in self._rows.query(self._keys, self._params)])

    def __len__(self) -> int:
        return int(self._rows.query(self._count, self._params)[0][0])


def _described(kind: type, token: str, text: str) -> Any:
    desc = kind.from_dict(json.loads(text))
    desc._tok = token  # as Catalog.from_dict does
    return desc


def _where(**criteria: Any) -> tuple[str, list[Any]]:
    """SQL conditions for ``column=value`` (equality), ``column=(low, high)`` (inclusive
    range, either end None) or ``column=[v1, v2, ...]`` (any of; for ``shape`` a list of
    ints is one shape). Columns come from COLUMNS only."""
    clauses: list[str] = []
    params: list[Any] = []
    for column, value in criteria.items():
        if column not in COLUMNS and column != "name":
            raise ValueError(f"cannot search by {column!r}; searchable: {sorted(COLUMNS)}")
        if (
            column == "shape"
            and isinstance(value, list | tuple)
            and all(type(n) is int for n in value)
        ):
            value = json.dumps([int(n) for n in value])
        if isinstance(value, tuple):
            if len(value) != 2:
                raise ValueError(f"{column}: a range is (low, high), got {value!r}")
            low, high = value
            if low is not None:
                clauses.append(f"{column} >= ?")
                params.append(low)
            if high is not None:
                clauses.append(f"{column} <= ?")
                params.append(high)
        elif isinstance(value, list):
            if not value:
                clauses.append("0")
            else:
                clauses.append(f"{column} IN ({', '.join('?' * len(value))})")
                params.extend(value)
        elif value is None:
            clauses.append(f"{column} IS NULL")
        elif column == "pixel_size" and isinstance(value, int | float):
            # Stored from float32 cells: equal within a part in a million.
            clauses.append(f"{column} BETWEEN ? AND ?")
            params += [value * (1 - 1e-6), value * (1 + 1e-6)]
        else:
            clauses.append(f"{column} = ?")
            params.append(value)
    return " AND ".join(clauses) or "1", params


class IndexCatalog(Catalog):
    """An intake 2 catalog over an SQLite index: nothing but the catalog's own row is read
    at open; entries are read when asked for, and ``search()`` runs in SQL.

    ``cat[name]`` gives the same reader (class and kwargs) as the YAML catalog would."""

    def __init__(self, path: str, _rows: _Rows | None = None, _filter: tuple | None = None):
        super().__init__()
        self._path = os.path.abspath(path)
        self._rows = _rows or _Rows(self._path)
        info = dict(self._rows.query("SELECT key, value FROM catalog"))
        if info.get("format") != FORMAT:
            raise ValueError(f"{path}: not an intake-mrc index ({info.get('format')!r})")
        self.metadata = json.loads(info["metadata"])
        where, params = self._filter = _filter or ("1", [])
        self.aliases = _Lazy(
            self._rows, "entries", "name", "token", where, params, lambda key, token: token
        )
        self.entries = _Lazy(
            self._rows,
            "entries",
            "token",
            "reader",
            where,
            params,
            lambda key, text: _described(ReaderDescription, key, text),
        )
        self.data = _Lazy(
            self._rows,
            "data",
            "token",
            "block",
            "1",
            [],
            lambda key, text: _described(DataDescription, key, text),
        )
        # As Catalog.from_yaml_file: {CATALOG_DIR} is the index's folder.
        self.user_parameters["CATALOG_PATH"] = self._path
        self.user_parameters["CATALOG_DIR"] = "file://" + os.path.dirname(self._path)

    def search(self, expr: Any = None, **criteria: Any) -> Catalog:
        """Entries matching ``criteria`` (indexed SQL: ``kind="direct_electron"``,
        ``date=("2024-10-01", "2024-10-31")``, ``acquisition_number=405``,
        ``shape=[32, 4, 8]``, ``pixel_size=(50, 60)``, ``camera=[...]``...), as a catalog
        of the same kind. ``expr`` (intake's search expressions) reads every entry."""
        if expr is not None:
            return super().search(expr)
        where, params = self._filter
        more, more_params = _where(**criteria)
        return IndexCatalog(
            self._path, self._rows, (f"({where}) AND ({more})", params + more_params)
        )

    def metadata_of(self, name: str) -> dict[str, Any]:
        """An entry's metadata without building its reader."""
        found = self._rows.query("SELECT metadata FROM entries WHERE name = ?", (name,))
        if not found:
            raise KeyError(name)
        return json.loads(found[0][0])

    def __repr__(self) -> str:
        return f"IndexCatalog({self._path!r}, {len(self)} entries)"


def open_index(path: str, storage_options: dict[str, Any] | None = None) -> IndexCatalog:
    """Open an SQLite catalog index: a local path, or any fsspec URL (copied once into a
    local cache, as SQLite needs a file; ``storage_options`` are the remote filesystem's)."""
    if path.startswith("file://"):
        # What intake 2 makes of {CATALOG_DIR}/...: a local file, opened in place.
        path = path[len("file://") :]
    elif "://" in path or "::" in path:
        import fsspec

        options = dict(storage_options or {})
        if "::" not in path:
            # The options belong to the remote protocol, not to the cache in front of it.
            options = {path.split("://", 1)[0]: options} if options else {}
            path = "simplecache::" + path
        path = fsspec.open_local(path, **options)
    return IndexCatalog(path)


# -- the index, opened the intake way ---------------------------------------------------------


class MRCIndex(datatypes.FileData):
    """An intake-mrc SQLite catalog index (``write_catalog(url, "x.sqlite")``).

    No ``filepattern``: intake's guessing never takes other SQLite files for one."""

    structure = {"catalog"}


class MRCIndexReader(BaseReader):
    """Opens an :class:`MRCIndex` as its lazy :class:`IndexCatalog` (entries read when
    asked for, indexed ``search``)."""

    implements = {MRCIndex}
    imports = {"intake_mrc"}
    output_instance = "intake_mrc.catalog_sqlite:IndexCatalog"

    def _read(self, data: MRCIndex, **kwargs: Any) -> IndexCatalog:
        return open_index(data.url, data.storage_options)


POINTER_ENTRY = "index"


def pointer_document(
    index_path: str, pointer_path: str, form: str = "v2", metadata: dict[str, Any] | None = None
) -> dict[str, Any]:
    """The small catalog whose one entry, ``index``, opens the SQLite index at
    ``index_path`` (local). Written relative to the pointer's folder (through
    ``CATALOG_DIR``) when the index is in that folder or below it, so both move together."""
    index_path = os.path.abspath(index_path)
    folder = os.path.dirname(os.path.abspath(pointer_path))
    relative = os.path.relpath(index_path, folder)
    inside = not relative.startswith(os.pardir + os.sep) and relative != os.pardir
    metadata = dict(metadata or {})
    description = "intake-mrc SQLite index (entries read when asked for)"
    if form == "legacy":
        url = (
            ("{{ CATALOG_DIR }}/" + jinja_literal(relative))
            if inside
            else jinja_literal(index_path)
        )
        source = {
            "driver": "intake_mrc.legacy.MRCIndexCatalog",
            "description": description,
            "args": {"urlpath": url},
            "metadata": {},
        }
        return {"metadata": metadata, "sources": {POINTER_ENTRY: source}}
    if form != "v2":
        raise ValueError(f"form is 'v2' or 'legacy', not {form!r}")
    url = ("{CATALOG_DIR}/" + intake2_literal(relative)) if inside else intake2_literal(index_path)
    url = not_a_reference(url)
    data_token, entry_token = "mrc_index_data", "mrc_index"
    return {
        "version": 2,
        "metadata": metadata,
        "user_parameters": {},
        "aliases": {POINTER_ENTRY: entry_token},
        "data": {
            data_token: {
                "datatype": "intake_mrc.catalog_sqlite:MRCIndex",
                "kwargs": {"url": url},
                "metadata": {},
                "user_parameters": {},
            }
        },
        "entries": {
            entry_token: {
                "reader": "intake_mrc.catalog_sqlite:MRCIndexReader",
                "kwargs": {"args": [f"{{data({data_token})}}"]},
                "metadata": {"description": description},
                "output_instance": MRCIndexReader.output_instance,
                "user_parameters": {},
            }
        },
    }


def write_pointer(
    index_path: str, pointer_path: str, form: str = "v2", metadata: dict[str, Any] | None = None
) -> None:
    """Write the small YAML (:func:`pointer_document`) that opens the index the intake way:
    ``intake.open_catalog(pointer_path).index.read()`` (intake 2) or
    ``intake.open_catalog(pointer_path).index`` (legacy) is the index's catalog."""
    text = to_yaml(pointer_document(index_path, pointer_path, form, metadata))
    folder = os.path.dirname(os.path.abspath(pointer_path))
    os.makedirs(folder, exist_ok=True)
    with open(pointer_path, "w", encoding="utf-8") as out:
        out.write(text)
