"""intake's legacy API: the ``mrc`` DataSource driver and the ``mrc_glob`` catalog driver.

Registered in the ``intake.drivers`` entry-point group, so ``intake.open_mrc(url, ...)``,
``intake.open_mrc_glob(url)``, ``intake.open_mrc_index(path)`` (an SQLite catalog index, read
lazily) and ``driver: mrc`` in legacy YAML work. Shipped YAML names
the drivers by class path (``intake_mrc.legacy.MRCSource``) because another package once
registered a driver called ``mrc``. Partitions are the dask chunks, flattened in C order.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator, Mapping
from typing import Any

import numpy as np
from intake.catalog.base import Catalog
from intake.catalog.local import LocalCatalogEntry
from intake.source.base import DataSource, Schema

from . import __version__
from .api import open_mrc
from .literal import jinja_literal, map_strings
from .mrc import MRCFile


class MRCSource(DataSource):
    """One MRC file (or DE acquisition) as an ndarray source backed by dask."""

    container = "ndarray"
    name = "mrc"
    version = __version__
    partition_access = True

    def __init__(
        self,
        urlpath: str,
        storage_options: dict[str, Any] | None = None,
        metadata: dict[str, Any] | None = None,
        **open_kwargs: Any,
    ):
        self.urlpath = urlpath
        self.storage_options = storage_options
        self.open_kwargs = open_kwargs
        self._file: MRCFile | None = None
        self._array: Any = None
        super().__init__(metadata=metadata)

    def _open(self) -> MRCFile:
        if self._file is None:
            self._file = open_mrc(
                self.urlpath, storage_options=self.storage_options, **self.open_kwargs
            )
            self._array = self._file.to_dask()
        return self._file

    def _get_schema(self) -> Schema:
        f = self._open()
        self.metadata = {
            **(self.metadata or {}),
            "axes": f.axes,
            "header": f.header,
            **{k: v for k, v in f.metadata.items() if k != "direct_electron"},
        }
        if "direct_electron" in f.metadata:
            self.metadata["direct_electron"] = f.metadata["direct_electron"]["summary"]
        return Schema(
            dtype=str(f.dtype),
            shape=f.shape,
            npartitions=int(np.prod(self._array.numblocks)),
            extra_metadata={"chunks": [list(c) for c in self._array.chunks]},
        )

    def _get_partition(self, i: int) -> np.ndarray:
        self._open()
        index = np.unravel_index(i, self._array.numblocks)
        return self._array.blocks[tuple(int(j) for j in index)].compute()

    def read(self) -> np.ndarray:
        return self._open().read()

    def to_dask(self) -> Any:
        self._get_schema()
        return self._array

    def read_chunked(self):  # type: ignore[no-untyped-def]
        self._open()
        for index in itertools.product(*(range(n) for n in self._array.numblocks)):
            yield self._array.blocks[index].compute()

    def _close(self) -> None:
        self._file = None
        self._array = None

    def _yaml(self) -> dict[str, Any]:
        # intake's repr and yaml() print the arguments as given: without credentials here.
        return _without_credentials(super()._yaml())


class MRCGlobCatalog(Catalog):
    """A legacy catalog of every acquisition and MRC file under a folder, glob or prefix."""

    name = "mrc_glob"
    version = __version__

    def __init__(self, urlpath: str, storage_options: dict[str, Any] | None = None, **kwargs: Any):
        self.urlpath = urlpath
        # Held apart: intake's Catalog.__init__ resets self.storage_options to its own.
        self._listing_options = storage_options
        super().__init__(**kwargs)

    def _yaml(self) -> dict[str, Any]:
        return _without_credentials(super()._yaml())

    def serialize(self) -> str:
        """This catalog's YAML (intake's writer), without credentials."""
        import yaml

        return yaml.dump(_without_credentials(yaml.safe_load(super().serialize())))

    def _load(self) -> None:
        from .catalog import list_files, plan_entries

        urls, sizes = list_files(self.urlpath, self._listing_options)
        self._entries = {}
        for entry in plan_entries(urls, sizes):
            args = {"urlpath": entry.url, "storage_options": self._listing_options, **entry.kwargs}
            self._entries[entry.name] = _mrc_source_entry(
                entry.name, entry.description, args, entry.metadata, self
            )


def _mrc_source_entry(
    name: str, description: str, args: dict[str, Any], metadata: dict[str, Any], catalog: Catalog
) -> LocalCatalogEntry:
    """A legacy entry opening ``MRCSource(**args)``. intake renders every string of an
    entry's arguments and metadata with jinja2 when the entry is opened: names, options and
    metadata are written as literals."""
    return LocalCatalogEntry(
        name=name,
        description=description,
        driver="intake_mrc.legacy.MRCSource",
        args=map_strings(args, jinja_literal),
        metadata=map_strings(metadata, jinja_literal),
        catalog=catalog,
    )


class MRCIndexCatalog(Catalog):
    """A legacy catalog over an SQLite catalog index (``intake_mrc.catalog_sqlite``): opening
    it reads the index's own row only; an entry is read from the file when asked for.

    Each entry is the legacy form of the index's intake 2 reader (the same file, arguments
    and metadata), its values written so that jinja2 renders them back to themselves."""

    name = "mrc_index"
    version = __version__

    def __init__(
        self,
        urlpath: str,
        storage_options: dict[str, Any] | None = None,
        criteria: dict[str, Any] | None = None,
        **kwargs: Any,
    ):
        self.urlpath = urlpath
        self._index_options = storage_options
        self._criteria = criteria
        super().__init__(**kwargs)

    def _yaml(self) -> dict[str, Any]:
        return _without_credentials(super()._yaml())

    def _load(self) -> None:
        from .catalog_sqlite import open_index

        index = open_index(self.urlpath, self._index_options)
        self.metadata = {**index.metadata, **(self.metadata or {})}
        if self._criteria:
            index = index.search(**self._criteria)
        self._entries = _IndexEntries(index, self)

    def search(self, *args: Any, **criteria: Any) -> Any:
        """``search(text)``: intake's text search (reads every entry); ``search(**criteria)``:
        the index's SQL search (``kind=``, ``date=(low, high)``, ``shape=[...]``, ...)."""
        if criteria and not args:
            return MRCIndexCatalog(
                self.urlpath, self._index_options, {**(self._criteria or {}), **criteria}
            )
        return super().search(*args, **criteria)


class _IndexEntries(Mapping[str, LocalCatalogEntry]):
    """An index's entries as legacy catalog entries, made when asked for."""

    def __init__(self, index: Any, catalog: Catalog):
        self.index, self._catalog = index, catalog
        self._made: dict[str, LocalCatalogEntry] = {}

    def __getitem__(self, name: str) -> LocalCatalogEntry:
        if name not in self._made:
            self._made[name] = self._entry(name)
        return self._made[name]

    def _entry(self, name: str) -> LocalCatalogEntry:
        reader = self.index[name]  # KeyError when absent; rendered by intake 2 itself
        kwargs = dict(reader.kwargs)
        data = kwargs.pop("args", None)
        data = data[0] if isinstance(data, list | tuple) and len(data) == 1 else None
        if not (isinstance(getattr(data, "url", None), str)):
            # A row this package did not write (an index is a file anyone may hand over).
            raise ValueError(
                f"catalog index entry {name!r} is not an MRC reader of one file: not written "
                "by intake_mrc.catalog_sqlite"
            )
        kwargs.pop("output_instance", None)
        args = {"urlpath": data.url, **kwargs}
        if data.storage_options:
            args["storage_options"] = data.storage_options
        metadata = dict(reader.metadata)
        description = metadata.pop("description", "")
        return _mrc_source_entry(name, description, args, metadata, self._catalog)

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and name in self.index.aliases

    def __iter__(self) -> Iterator[str]:
        return iter(self.index)

    def __len__(self) -> int:
        return len(self.index)


def _without_credentials(document: dict[str, Any]) -> dict[str, Any]:
    """A YAML document of sources (``sources: {name: {args: ...}}``) with only allowed
    storage options and URLs without user, password or HTTP query string."""
    from .credentials import allowed_options, clean_url

    out = dict(document)
    sources = {}
    for name, source in (document.get("sources") or {}).items():
        source = dict(source)
        args = dict(source.get("args") or {})
        if "storage_options" in args:
            args["storage_options"] = allowed_options(args["storage_options"])[0]
        source["args"] = map_strings(args, clean_url)
        source["metadata"] = map_strings(source.get("metadata") or {}, clean_url)
        sources[name] = source
    out["sources"] = sources
    return out
