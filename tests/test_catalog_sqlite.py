"""Catalogs of a million files: the SQLite index gives the same entries, reader classes and
kwargs as the YAML catalog (hostile names literal in both), is searched by indexed columns,
and S3 globs cost one listing request per 1,000 keys (counted at a proxy in front of moto)."""

from __future__ import annotations

import shutil

import intake
import numpy as np
import pytest
from conftest import RSCIIO, S3_KEY, S3_SECRET, free_port
from dewriter import write_acquisition
from faultproxy import FaultProxy
from mrcwriter import write_mrc

from intake_mrc.catalog import glob_catalog, plan_entries, write_catalog
from intake_mrc.catalog_sqlite import open_index, write_index
from intake_mrc.cli import main as cli_main

HOSTILE = "{env(HOME)} {{ 7*7 }} x'\"; DROP TABLE entries;--.mrc"


@pytest.fixture
def session(tmp_path):
    root = tmp_path / "session"
    write_acquisition(root, scan=(5, 3), frame=(6, 4))
    write_acquisition(root, dataset="20250102_00002", scan=(2, 2), frame=(3, 3))
    write_mrc(root / "stack.mrc", np.arange(24, dtype=np.float32).reshape(2, 3, 4))
    write_mrc(root / HOSTILE, np.ones((2, 2), np.int16), voxel_size=2.5)
    shutil.copy(RSCIIO / "HAADFscan.mrc", root / "HAADFscan.mrc")
    return root


def describe(reader):
    """A reader as class, kwargs (data blocks by their url and options) and metadata."""
    kwargs = dict(reader.kwargs)
    (data,) = kwargs.pop("args")
    return (
        type(reader).__name__,
        type(data).__name__,
        data.url,
        data.storage_options,
        kwargs,
        reader.metadata,
    )


@pytest.mark.parametrize("headers", [False, True])
def test_index_round_trip_same_readers_as_yaml(session, tmp_path, headers):
    yaml_path, db_path = tmp_path / "c.yaml", tmp_path / "c.sqlite"
    options = {"anon": False, "key": "K", "client_kwargs": {"region_name": "x"}}
    assert write_catalog(str(session), str(yaml_path), options, headers=headers) == 5
    assert write_catalog(str(session), str(db_path), options, headers=headers) == 5
    from_yaml = intake.open_catalog(str(yaml_path))
    index = open_index(str(db_path))
    assert sorted(index) == sorted(from_yaml) and len(index) == 5
    for name in from_yaml:
        assert describe(index[name]) == describe(from_yaml[name])
    hostile = next(n for n in index if n not in ("stack", "HAADFscan") and n[:3] != "de_")
    # Whatever the YAML path makes of a hostile name, the index makes the same.
    assert index[hostile].kwargs["args"][0].url == from_yaml[hostile].kwargs["args"][0].url
    assert index.metadata_of(hostile)["files"]["data"] == HOSTILE
    # ... which is the name, literal: nothing expanded or evaluated.
    assert index[hostile].kwargs["args"][0].url.endswith("/" + HOSTILE)
    assert index[hostile].metadata["files"]["data"] == HOSTILE
    assert index[hostile].read().shape == (2, 2)
    assert int(index["de_20250101_00001"].read()[2, 4, 0, 0].compute()) == 14
    assert '"K"' not in db_path.read_bytes().decode("latin-1")  # credentials never written


def test_index_search(session, tmp_path):
    path = tmp_path / "catalogs" / "c.sqlite"  # the folder is created
    write_catalog(str(session), str(path), headers=True)
    cat = open_index(str(path))
    assert sorted(cat.search(kind="direct_electron")) == ["de_20250101_00001", "de_20250102_00002"]
    assert list(cat.search(date="2025-01-02")) == ["de_20250102_00002"]
    assert list(cat.search(date=("2025-01-02", None))) == ["de_20250102_00002"]
    assert list(cat.search(acquisition_number=1)) == ["de_20250101_00001"]
    assert list(cat.search(acquisition_number=(2, 9))) == ["de_20250102_00002"]
    assert list(cat.search(shape=[2, 3, 4])) == ["stack"]
    # the movie's shape as open_mrc gives it: the 5 x 3 scan of 4 x 6 frames, not the header's
    # 15 frames
    assert list(cat.search(shape=[3, 5, 4, 6])) == ["de_20250101_00001"]
    assert list(cat.search(shape=[15, 4, 6])) == []
    assert list(cat.search(pixel_size=(50, 60))) == ["HAADFscan"]
    # 2.5 Å: the hostile file's cell, and the DE movies' specimen pixel size (0.25 nm)
    found_25 = sorted(cat.search(pixel_size=2.5))
    assert [n for n in found_25 if n[:3] == "de_"] == ["de_20250101_00001", "de_20250102_00002"]
    (hostile,) = [n for n in found_25 if n[:3] != "de_"]
    assert cat.metadata_of(hostile)["shape"] == [2, 2]
    assert list(cat.search(kind="mrc", nx=(3, 4))) == ["stack"]
    assert list(cat.search(kind="mrc").search(shape=[16, 16])) == ["HAADFscan"]
    assert list(cat.search(camera="TestCam", scan_x=2)) == ["de_20250102_00002"]
    assert list(cat.search(kind=["nothing", "mrc"], nx=16)) == ["HAADFscan"]
    assert list(cat.search(kind="'; DROP TABLE entries;--")) == []
    assert len(cat) == 5  # the table is still there
    found = cat.search(date="2025-01-02")
    with pytest.raises(KeyError):
        found["stack"]  # outside the search
    with pytest.raises(ValueError, match="cannot search"):
        cat.search(**{"name; DROP TABLE entries": 1})
    assert cat.metadata_of("stack")["shape"] == [2, 3, 4]


def test_index_opened_from_s3(session, tmp_path, s3_upload, s3_server):
    path = tmp_path / "remote.sqlite"
    write_catalog(str(session), str(path), headers=True)
    (url,) = s3_upload(path, prefix="indexes")
    cat = open_index(url, storage_options=s3_server["storage_options"])
    assert len(cat) == 5 and list(cat.search(shape=[2, 3, 4])) == ["stack"]
    assert cat["stack"].read().sum().compute() == sum(range(24))


def test_index_relative_paths_move_with_the_data(session, tmp_path):
    path = session / "catalog.sqlite"
    write_catalog(str(session), str(path), relative=True)
    moved = tmp_path / "moved"
    shutil.move(str(session), str(moved))
    cat = open_index(str(moved / "catalog.sqlite"))
    assert cat["stack"].read().sum().compute() == sum(range(24))


def test_index_of_entries_without_files(tmp_path):
    names = [f"bucket/run/2025010{1 + i % 9}_{i:05d}_movie.mrc" for i in range(3000)]
    entries = plan_entries(names)
    for i, entry in enumerate(entries):
        entry.metadata["shape"] = [i % 7 + 1, 64, 64]
    assert write_index(entries, str(tmp_path / "big.sqlite")) == 3000
    cat = open_index(str(tmp_path / "big.sqlite"))
    assert len(cat) == 3000
    hits = cat.search(date="2025-01-03", shape=[3, 64, 64])
    expected = {
        e.name
        for e in entries
        if e.metadata["date"] == "2025-01-03" and e.metadata["shape"][0] == 3
    }
    assert set(hits) == expected and expected
    name = sorted(expected)[0]
    assert hits[name].kwargs["args"][0].url.startswith("bucket/run/20250103_")


def test_cli_writes_an_index(session, tmp_path, capsys):
    out = tmp_path / "cli.sqlite"
    assert cli_main(["catalog", str(session), "-o", str(out)]) == 0
    assert "wrote 5 entries" in capsys.readouterr().out
    assert len(open_index(str(out))) == 5
    assert cli_main(["catalog", str(session), "-o", str(out), "--form", "legacy"]) == 1


class ListingCounter(FaultProxy):
    """The fault proxy, well behaved, recording each request's method and query."""

    def __init__(self, upstream: str, port: int):
        super().__init__(upstream, port)
        self.seen: list[tuple[str, str]] = []

    async def _handle(self, request):  # type: ignore[override]
        self.seen.append((request.method, request.query_string))
        return await super()._handle(request)


def test_s3_glob_one_listing_request_per_thousand_keys(s3fs_root, s3_server):
    # 2,500 keys put straight into the moto server's store (2,500 PUTs would take a
    # minute); the listing itself goes through HTTP to the real server, via the proxy.
    from moto.core import DEFAULT_ACCOUNT_ID
    from moto.s3.models import s3_backends

    backend = s3_backends[DEFAULT_ACCOUNT_ID]["global"]
    for i in range(2500):
        backend.put_object("intake-mrc-test", f"many/d{i % 3}/f{i:05d}.mrc", b"x")
    proxy = ListingCounter(s3_server["endpoint"], free_port()).start()
    try:
        options = {
            "key": S3_KEY,
            "secret": S3_SECRET,
            "client_kwargs": {"endpoint_url": proxy.url},
            "skip_instance_cache": True,
        }
        cat = glob_catalog("s3://intake-mrc-test/many/", options)
        assert len(cat) == 2500
        listings = [q for m, q in proxy.seen if m == "GET" and "list-type=2" in q]
        assert len(listings) == 3, proxy.seen
        assert len(proxy.seen) == 3  # nothing else: no HEAD, no request per key
        assert cat["f02499"].metadata["size_bytes"] == 1
    finally:
        proxy.stop()


# -- the index opened the intake way: a small YAML whose one entry opens it lazily ----------


def legacy_describe(source):
    """A legacy source as its driver, file, arguments, options and metadata."""
    return (
        type(source).__name__,
        source.urlpath,
        source.storage_options,
        source.open_kwargs,
        {k: v for k, v in source.metadata.items() if k != "catalog_dir"},
    )


@pytest.mark.parametrize("headers", [False, True])
def test_pointer_yaml_gives_the_same_readers_as_the_yaml_catalog(session, tmp_path, headers):
    options = {"anon": False, "key": "K", "client_kwargs": {"region_name": "x"}}
    full, pointer = tmp_path / "full.yaml", tmp_path / "catalogs" / "portal.yaml"
    assert write_catalog(str(session), str(full), options, headers=headers) == 5
    assert write_catalog(str(session), str(pointer), options, headers=headers, index=True) == 5
    assert (tmp_path / "catalogs" / "portal.sqlite").exists()
    assert len(pointer.read_bytes()) < 1000  # whatever the number of entries
    outer = intake.open_catalog(str(pointer))
    assert list(outer) == ["index"]
    assert outer.metadata == {"source": str(session), "entries": 5}
    inner = outer.index.read()  # the intake 2 way: the entry's reader gives the catalog
    yaml_cat = intake.open_catalog(str(full))
    assert sorted(inner) == sorted(yaml_cat) and len(inner) == 5
    for name in yaml_cat:
        assert describe(inner[name]) == describe(yaml_cat[name])
    assert int(inner["de_20250101_00001"].read()[2, 4, 0, 0].compute()) == 14
    assert list(inner.search(shape=[2, 3, 4])) == (["stack"] if headers else [])
    assert '"K"' not in pointer.read_text()


def test_legacy_pointer_yaml_gives_the_same_sources_as_legacy_yaml(session, tmp_path):
    full, pointer = tmp_path / "full.yaml", tmp_path / "portal.yaml"
    write_catalog(str(session), str(full), {"anon": True}, form="legacy", headers=True)
    write_catalog(
        str(session), str(pointer), {"anon": True}, form="legacy", headers=True, index=True
    )
    outer = intake.open_catalog(str(pointer))
    assert list(outer) == ["index"]
    inner = outer.index  # legacy: the nested catalog itself
    legacy_cat = intake.open_catalog(str(full))
    assert sorted(inner) == sorted(legacy_cat) and len(inner) == 5
    for name in legacy_cat:
        assert legacy_describe(inner[name]) == legacy_describe(legacy_cat[name])
    np.testing.assert_array_equal(
        outer["index.stack"].read(), np.arange(24, dtype=np.float32).reshape(2, 3, 4)
    )
    assert outer.index.de_20250101_00001.read()[2, 4, 0, 0] == 14
    assert sorted(inner.search(kind="direct_electron")) == [
        "de_20250101_00001",
        "de_20250102_00002",
    ]
    assert sorted(intake.open_mrc_index(str(tmp_path / "portal.sqlite"))) == sorted(legacy_cat)


@pytest.mark.parametrize("form", ["v2", "legacy"])
def test_pointer_and_index_move_with_the_data(session, tmp_path, form):
    write_catalog(str(session), str(session / "c.yaml"), form=form, relative=True, index=True)
    moved = tmp_path / "moved"
    shutil.move(str(session), str(moved))
    outer = intake.open_catalog(str(moved / "c.yaml"))
    inner = outer.index.read() if form == "v2" else outer.index
    data = inner["stack"].read()
    assert float(np.sum(data)) == sum(range(24))


@pytest.mark.parametrize("form", ["v2", "legacy"])
def test_pointer_named_with_templates_opens_its_own_index(session, tmp_path, form, monkeypatch):
    monkeypatch.setenv("INTAKE_MRC_POINTER_SECRET", "leaked")
    # No '*' in the catalog's own name: intake.open_catalog takes such a path for a glob.
    folder = tmp_path / "{{ 7+7 }} {env(INTAKE_MRC_POINTER_SECRET)} {CATALOG_DIR}"
    pointer = folder / "{{ 7+7 }}{env(INTAKE_MRC_POINTER_SECRET)}.yaml"
    write_catalog(str(session), str(pointer), form=form, index=True)
    outer = intake.open_catalog(str(pointer))
    inner = outer.index.read() if form == "v2" else outer.index
    assert len(inner) == 5
    if form == "v2":
        assert inner._path == str(pointer.with_suffix(".sqlite"))
    assert float(np.sum(inner["stack"].read())) == sum(range(24))
    assert "leaked" not in str(inner.metadata) and not list(tmp_path.rglob("14*"))


def test_cli_writes_a_pointer_and_its_index(session, tmp_path, capsys):
    out = tmp_path / "cli.yaml"
    assert cli_main(["catalog", str(session), "-o", str(out), "--index", "--headers"]) == 0
    assert "wrote 5 entries" in capsys.readouterr().out
    inner = intake.open_catalog(str(out)).index.read()
    assert list(inner.search(shape=[2, 3, 4])) == ["stack"]
    assert cli_main(["catalog", str(session), "-o", str(tmp_path / "x.sqlite"), "--index"]) == 1


def test_legacy_entry_of_a_foreign_index_row_is_named(session, tmp_path):
    # An index is a file someone may hand over: a row that is not one MRC file's reader
    # gives an error naming the entry (was a bare "not enough values to unpack").
    import json
    import sqlite3

    path = tmp_path / "c.sqlite"
    write_catalog(str(session), str(path))
    with sqlite3.connect(path) as db:
        (reader,) = db.execute("SELECT reader FROM entries WHERE name = 'stack'").fetchone()
        doc = json.loads(reader)
        doc["kwargs"]["args"] = []
        db.execute("UPDATE entries SET reader = ? WHERE name = 'stack'", (json.dumps(doc),))
    cat = intake.open_mrc_index(str(path))
    with pytest.raises(ValueError, match="'stack' is not an MRC reader of one file"):
        cat["stack"]
    assert cat["HAADFscan"].read().shape == (16, 16)  # the other entries still open
