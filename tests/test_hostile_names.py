"""Nothing in a name is ever evaluated: files, folders and keys named with templates, jinja,
YAML tags, quotes, newlines, ``::``, backslashes and unicode are read exactly, through every
way a catalog entry is made (write_catalog and the CLI in both forms, relative or not, and
the SQLite index behind its small YAML; glob_catalog and intake's own writer; the legacy
``mrc_glob`` driver), with no side effect.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path
from urllib.parse import quote

import intake
import numpy as np
import pytest
from conftest import S3_SECRET, free_port
from faultproxy import FaultProxy
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from intake.readers.entry import Catalog
from mrcwriter import write_mrc

import intake_mrc
from intake_mrc.catalog import glob_catalog, write_catalog
from intake_mrc.cli import main as cli_main

ENV_NAME = "INTAKE_MRC_NAME_SECRET"
ENV_SECRET = "env-secret-value-4242"
RCE = "{{ cycler.__init__.__globals__.os.popen('id > PWNED.txt').read() }}"
FRAGMENTS = [
    RCE,
    "{{ 7*7 }}",
    "{{7*7}}",
    f"{{env({ENV_NAME})}}",
    f"{{{{ env('{ENV_NAME}') }}}}",
    "{CATALOG_DIR.__class__}",
    "{CATALOG_DIR}",
    "{STORAGE_OPTIONS}",
    "{x.y}",
    "{0}",
    "{% raw %}",
    "{% endraw %}",
    "{%- if true %}if{% endif -%}",
    "{# comment #}",
    "{",
    "}",
    "{{",
    "}}",
    "{data(abc)}",
    "data(abc)",
    "{func(os:getcwd)}",
    "{pickle64(gASVBQAAAAAAAACMAXiULg==)}",
    "'",
    '"',
    "\n",
    "\r\n",
    "\r",
    "!!python:object:apply:os.system ['id']",
    "::",
    "s3:",
    "\\",
    "\\n",
    "%20",
    "?sig=x",
    "#frag",
    "é",
    "日本",
    "\u202e",
    "\t",
    " ",
    ": ",
    "- ",
    "&anchor",
    "*alias",
    "$(id)",
    "`id`",
]


def oracle(path: Path) -> np.ndarray:
    """numpy on the file's bytes (mrcfile writes a 1024-byte header, no extended header)."""
    return np.fromfile(path, dtype="<f4", offset=1024)


def make_files(root: Path, relative_names: list[str]) -> list[Path]:
    """One small float32 image per name; the first value is the file's index."""
    paths = []
    for i, name in enumerate(relative_names):
        path = root / name
        # Never outside the sandbox, whatever a generated name holds.
        assert root in path.parents and ".." not in Path(name).parts, name
        path.parent.mkdir(parents=True, exist_ok=True)
        data = np.arange(12, dtype=np.float32).reshape(1, 3, 4) + 100 * i
        data[0, 0, 0] = i
        write_mrc(path, data)
        paths.append(path)
    return paths


def tree(folder: Path) -> set[str]:
    return {str(p.relative_to(folder)) for p in folder.rglob("*")}


def check_reads(cat, paths: list[Path], legacy: bool) -> None:
    """Every file is one entry, and each entry reads exactly its file's bytes."""
    seen = set()
    assert len(list(cat)) == len(paths)
    for name in cat:
        entry = cat[name]
        values = np.asarray(entry.read() if legacy else entry.read().compute()).ravel()
        index = int(values[0])
        assert index not in seen
        seen.add(index)
        np.testing.assert_array_equal(values, oracle(paths[index]))
        assert ENV_SECRET not in str(entry.metadata)
    assert seen == set(range(len(paths)))


def round_trip(root: Path, paths: list[Path], work: Path) -> None:
    """Every writer and form, read back through intake; nothing created as a side effect."""
    data_before = tree(root)
    work_before = tree(work)
    catalogs = work / "catalogs"
    for form in ("v2", "legacy"):
        legacy = form == "legacy"
        written = catalogs / f"write-{form}.yaml"
        assert write_catalog(str(root), str(written), form=form) == len(paths)
        check_reads(intake.open_catalog(str(written)), paths, legacy)
        by_cli = catalogs / f"cli-{form}.yaml"
        assert cli_main(["catalog", str(root), "-o", str(by_cli), "--form", form]) == 0
        check_reads(intake.open_catalog(str(by_cli)), paths, legacy)
        relative = root / f"catalog-relative-{form}.yaml"
        assert write_catalog(str(root), str(relative), form=form, relative=True) == len(paths)
        check_reads(intake.open_catalog(str(relative)), paths, legacy)
        relative.unlink()
        # The SQLite index behind a small YAML whose one entry opens it.
        pointer = catalogs / f"index-{form}.yaml"
        assert write_catalog(str(root), str(pointer), form=form, index=True) == len(paths)
        outer = intake.open_catalog(str(pointer))
        check_reads(outer.index if legacy else outer.index.read(), paths, legacy)
    live = glob_catalog(str(root))
    check_reads(live, paths, legacy=False)
    resaved = catalogs / "intake-writer.yaml"
    live.to_yaml_file(str(resaved))
    check_reads(intake.open_catalog(str(resaved)), paths, legacy=False)
    check_reads(Catalog.from_dict(live.to_dict()), paths, legacy=False)
    check_reads(intake.open_mrc_glob(str(root)), paths, legacy=True)
    assert tree(root) == data_before
    assert tree(work) - work_before == {"catalogs"} | {
        f"catalogs/{p.name}" for p in catalogs.iterdir()
    }
    assert not list(work.rglob("PWNED*")) and not list(root.rglob("PWNED*"))


@contextlib.contextmanager
def sandbox():
    """A data folder and a working directory (the process's cwd) of their own."""
    old = os.getcwd()
    with tempfile.TemporaryDirectory() as tmp:
        root, work = Path(tmp) / "data", Path(tmp) / "work"
        root.mkdir()
        work.mkdir()
        os.chdir(work)
        try:
            yield root, work
        finally:
            os.chdir(old)


@pytest.fixture
def env_secret(monkeypatch):
    monkeypatch.setenv(ENV_NAME, ENV_SECRET)


def test_jinja_name_runs_nothing(env_secret, tmp_path, monkeypatch):
    """The issue's file name: legacy intake renders it with jinja2; nothing may run."""
    with sandbox() as (root, work):
        paths = make_files(root, [f"{RCE}.mrc"])
        round_trip(root, paths, work)
        assert not (work / "PWNED.txt").exists()


def test_double_braces_open_the_file_so_named(env_secret):
    """``{{ 7*7 }}.mrc`` opens itself, not ``49.mrc`` (which exists, with other data)."""
    with sandbox() as (root, work):
        paths = make_files(root, ["{{ 7*7 }}.mrc", "49.mrc", "{{7*7}}.mrc"])
        round_trip(root, paths, work)


NAMED_CASES = [
    "x{env(INTAKE_MRC_NAME_SECRET)}.mrc",
    "{CATALOG_DIR.__class__}.mrc",
    "{CATALOG_DIR}.mrc",
    "{{ and }}.mrc",
    "}{.mrc",
    "{% raw %}x{% endraw %}.mrc",
    "{# c #}.mrc",
    "data(abc).mrc",
    "{data(abc)}.mrc",
    "quote'double\".mrc",
    "line\nbreak\r\n.mrc",
    "trailing newline.mrc\n.mrc",
    "!!python/object:os.system.mrc".replace("/", "_"),
    "a::b.mrc",
    "back\\slash\\n.mrc",
    "ünïcødé 日本 \u202e.mrc",
    "?sig=1#frag.mrc",
    "sub {{ 7*7 }}/{env(HOME)}/inner.mrc",
    "/".join(["d" * 200, "{{" + "e" * 150 + "}}", "f" * 140 + ".mrc"]),  # 500 characters
]


def test_named_hostile_cases(env_secret):
    with sandbox() as (root, work):
        paths = make_files(root, NAMED_CASES)
        assert len(str(paths[-1].relative_to(root))) >= 500
        round_trip(root, paths, work)


name_characters = st.characters(blacklist_categories=("Cs",), blacklist_characters="/\x00")
name_part = st.lists(
    st.one_of(st.sampled_from(FRAGMENTS), st.text(name_characters, max_size=8)),
    min_size=1,
    max_size=4,
).map("".join)


def usable(name: str) -> bool:
    """A name that is one path component (generated names never hold "/")."""
    return 0 < len(name.encode()) <= 240 and name not in (".", "..") and "/" not in name


@settings(
    max_examples=15,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    names=st.lists(name_part.filter(usable), min_size=1, max_size=3, unique=True),
    folder=name_part.filter(usable),
)
def test_generated_hostile_names_round_trip(env_secret, names, folder):
    """Property: any names (in the top folder and in a hostile sub-folder) read exactly,
    through every writer and both forms, with no side effect."""
    relative = [f"n{name}.mrc" for name in names] + [f"{folder}/n{names[0]}.mrc"]
    with sandbox() as (root, work):
        paths = make_files(root, relative)
        round_trip(root, paths, work)


class RecordingProxy(FaultProxy):
    """The fault proxy, well behaved, recording every request's path and query."""

    def __init__(self, upstream: str, port: int):
        super().__init__(upstream, port)
        self.paths: list[str] = []

    async def _handle(self, request):  # type: ignore[no-untyped-def]
        self.paths.append(request.path_qs)
        return await super()._handle(request)


@pytest.fixture
def s3_recorded(s3_server):
    proxy = RecordingProxy(s3_server["endpoint"], free_port()).start()
    yield proxy
    proxy.stop()


def test_env_template_in_s3_key_requests_that_key(s3fs_root, s3_server, s3_recorded, tmp_path):
    """``x{env(AWS_SECRET_ACCESS_KEY)}.mrc``: the exact key is requested, never the secret
    (the S3 fixture puts the secret in the environment)."""
    assert os.environ["AWS_SECRET_ACCESS_KEY"] == S3_SECRET
    name = "x{env(AWS_SECRET_ACCESS_KEY)}.mrc"
    (path,) = make_files(tmp_path, [name])
    s3fs_root.put_file(str(path), f"intake-mrc-test/hostile-key/{name}")
    s3fs_root.invalidate_cache()
    options = {**s3_server["storage_options"], "client_kwargs": {"endpoint_url": s3_recorded.url}}
    prefix = "s3://intake-mrc-test/hostile-key/"
    written = tmp_path / "s3-v2.yaml"
    write_catalog(prefix, str(written), options)
    legacy = tmp_path / "s3-legacy.yaml"
    write_catalog(prefix, str(legacy), options, form="legacy")
    s3_recorded.paths.clear()
    for cat, is_legacy in (
        (glob_catalog(prefix, storage_options=options), False),
        (intake.open_catalog(str(written)), False),  # credentials from the environment
        (intake.open_catalog(str(legacy)), True),
        (intake.open_mrc_glob(prefix, storage_options=options), True),
    ):
        check_reads(cat, [path], is_legacy)
    wanted = "/intake-mrc-test/hostile-key/" + quote(name, safe="/")
    gets = [p for p in s3_recorded.paths if "hostile-key/x" in p]
    assert gets and all(p.split("?")[0] == wanted for p in gets), gets
    for p in s3_recorded.paths:
        assert S3_SECRET not in p and quote(S3_SECRET, safe="") not in p
    # Gone from the bucket: the error names the key as written, not the secret.
    s3fs_root.rm(f"intake-mrc-test/hostile-key/{name}")
    s3fs_root.invalidate_cache()
    with pytest.raises(Exception) as info:  # noqa: PT011 - the message is what matters
        intake.open_catalog(str(written))[next(iter(intake.open_catalog(str(written))))].read()
    assert name in str(info.value) and S3_SECRET not in str(info.value)


def test_s3_key_with_double_colon_reads_that_key(s3fs_root, s3_server, s3_recorded, tmp_path):
    """``::`` joins layers in fsspec's URLs; an S3 key may hold it. A plain ``s3://`` URL is
    never a chain (S3 wraps no layer), so the catalog's URL reads exactly that key, never
    the object a split would name; a chain that would split a key is refused clearly."""
    prefix = "s3://intake-mrc-test/colon-key/"
    keys = ["a::b.mrc", "x.mrc::s3://intake-mrc-test/colon-key/b.mrc", "b.mrc", "a"]
    # The last is a decoy (not an MRC name, so not listed): what "a::b.mrc" split would read.
    paths = make_files(tmp_path, [f"f{i}.mrc" for i in range(len(keys))])
    for path, key in zip(paths, keys, strict=True):
        s3fs_root.put_file(str(path), prefix[len("s3://") :] + key)
    s3fs_root.invalidate_cache()
    paths = paths[:3]
    options = {**s3_server["storage_options"], "client_kwargs": {"endpoint_url": s3_recorded.url}}
    written = tmp_path / "colon-v2.yaml"
    write_catalog(prefix, str(written), options)
    legacy = tmp_path / "colon-legacy.yaml"
    write_catalog(prefix, str(legacy), options, form="legacy")
    s3_recorded.paths.clear()
    for cat, is_legacy in (
        (glob_catalog(prefix, storage_options=options), False),
        (intake.open_catalog(str(written)), False),
        (intake.open_catalog(str(legacy)), True),
        (intake.open_mrc_glob(prefix, storage_options=options), True),
    ):
        check_reads(cat, paths, is_legacy)
    wanted = {"/intake-mrc-test/colon-key/" + quote(key, safe="/") for key in keys[:3]}
    gets = [p.split("?")[0] for p in s3_recorded.paths if "colon-key/" in p]
    assert gets and set(gets) == wanted, gets
    # The URL as a user types it reads the same key.
    f = intake_mrc.open_mrc(prefix + keys[1], storage_options=options)
    assert int(f.read().ravel()[0]) == 1
    # A prefix holding "::" lists (and reads) its keys too.
    from intake_mrc.catalog import list_files

    s3fs_root.put_file(str(paths[0]), "intake-mrc-test/colon-pre::fix/c.mrc")
    s3fs_root.invalidate_cache()
    listed, _ = list_files("s3://intake-mrc-test/colon-pre::fix/", options)
    assert listed == ["s3://intake-mrc-test/colon-pre::fix/c.mrc"]
    assert int(intake_mrc.open_mrc(listed[0], storage_options=options).read().ravel()[0]) == 0
    # In a chain the key would be split: refused, naming it, nothing read.
    s3_recorded.paths.clear()
    chained = {"s3": {k: v for k, v in options.items()}}
    with pytest.raises(intake_mrc.StorageError, match="holds '::'") as info:
        intake_mrc.open_mrc("simplecache::" + prefix + keys[0], storage_options=chained)
    assert "colon-key/a::b.mrc" in str(info.value)
    assert s3_recorded.paths == []


def test_listed_key_with_double_colon_in_a_chain_form_is_left_out_with_a_warning():
    """A filesystem whose URLs are chains where a key holds ``::`` (memory://): its entry
    would read another object, so the glob leaves it out and names it."""
    import fsspec

    from intake_mrc.catalog import list_files

    fs = fsspec.filesystem("memory")
    fs.pipe_file("/colon-glob/a::b.mrc", b"x")  # a path, not a URL: fsspec would split it
    fs.pipe_file("/colon-glob/c.mrc", b"y")
    try:
        with pytest.warns(UserWarning, match=r"colon-glob/a::b\.mrc.*'::'"):
            urls, _ = list_files("memory://colon-glob/")
        assert urls == ["memory:///colon-glob/c.mrc"]
    finally:
        fs.rm("/colon-glob", recursive=True)


def test_http_sibling_of_a_name_with_an_encoded_slash_stays_in_its_folder():
    """A movie named ``..%2F..%2Fx.mrc`` (its name decodes to ``../../x.mrc``): its info
    file is ``..%2F..%2Fx_info.txt`` beside it, never ``/x_info.txt`` two folders up."""
    from intake_mrc.storage.opener import open_store

    store = open_store("http://127.0.0.1:9/d/e/..%2F..%2Fx.mrc")
    assert store.basename == "../../x.mrc"
    sibling = store.sibling("../../x_info.txt")
    assert sibling.path == "http://127.0.0.1:9/d/e/..%2F..%2Fx_info.txt"
