"""No credential leaves the process: distinctive secrets put in every channel a user can
give them (URL userinfo and query strings, headers, key/secret, connection_string,
passphrase, the environment) never appear in any output channel (written YAML in both forms
by both writers, intake's own to_yaml_file/to_dict/serialize, CLI stdout and stderr in text
and --json, exception messages, reprs, our log lines). Also: intake 2 readers built every
usual way (issue 9)."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import warnings

import intake
import numpy as np
import pytest
import yaml
from conftest import RSCIIO, S3_KEY, S3_SECRET
from dewriter import write_acquisition
from intake.readers.entry import Catalog

from intake_mrc import open_mrc
from intake_mrc.catalog import glob_catalog, write_catalog
from intake_mrc.cli import main as cli_main
from intake_mrc.credentials import (
    CredentialsDroppedWarning,
    HeldOptions,
    allowed_options,
    clean_url,
)
from intake_mrc.readers import MRC, MRCDaskReader, MRCFileReader, MRCNumpyReader

USERINFO = "userinfo-pw-7731"
QUERY = "query-sig-8842"
HEADER = "header-token-9953"
API_KEY = "api-key-1064"
KEY = "option-key-2175"
SECRET = "option-secret-3286"
CONNECTION = "conn-account-key-4397"
PASSPHRASE = "passphrase-5408"
SECRETS = (USERINFO, QUERY, HEADER, API_KEY, KEY, SECRET, CONNECTION, PASSPHRASE)
EVERY_OPTION = {
    "key": KEY,
    "secret": SECRET,
    "token": SECRET,
    "headers": {"Authorization": f"Bearer {HEADER}", "X-Api-Key": API_KEY, "Cookie": HEADER},
    "connection_string": f"DefaultEndpointsProtocol=https;AccountKey={CONNECTION}",
    "passphrase": PASSPHRASE,
    "password": PASSPHRASE,
    "s3_additional_kwargs": {"SSECustomerKey": SECRET},
    "client_kwargs": {"endpoint_url": f"http://u:{USERINFO}@127.0.0.1:9/?k={QUERY}"},
    "unknown_option": SECRET,
    "anon": True,
    "region_name": "eu-west-1",
}


def assert_clean(*texts: str, also: tuple[str, ...] = ()) -> None:
    for text in texts:
        for secret in SECRETS + also:
            assert secret not in text, f"{secret!r} leaked in {text[:300]!r}"


def secret_url(url: str) -> str:
    """``url`` with a user, a password and a pre-signed-looking query string."""
    scheme, rest = url.split("://", 1)
    return f"{scheme}://reader:{USERINFO}@{rest}?X-Amz-Signature={QUERY}&sig={QUERY}"


@pytest.fixture
def de_over_http(tmp_path, http_upload):
    """A DE acquisition (movie, info file, virtual images) on the HTTP server; the info
    file's URL with userinfo and a query string."""
    folder = tmp_path / "de"
    write_acquisition(folder, scan=(3, 2), frame=(4, 4))
    urls = http_upload(*sorted(folder.iterdir()), prefix="sweep", listing=False)
    info = next(u for u in urls if u.endswith("_info.txt"))
    return secret_url(info)


def test_allow_list_and_clean_urls():
    kept, dropped = allowed_options(EVERY_OPTION)
    assert kept == {
        "anon": True,
        "region_name": "eu-west-1",
        "client_kwargs": {"endpoint_url": "http://127.0.0.1:9/"},
    }
    assert set(dropped) == {
        "key",
        "secret",
        "token",
        "headers",
        "connection_string",
        "passphrase",
        "password",
        "s3_additional_kwargs",
        "unknown_option",
    }
    assert clean_url(f"https://u:{USERINFO}@h/a/b.mrc?sig={QUERY}#x") == "https://h/a/b.mrc"
    # In object stores "?" and "#" belong to the key: kept, so the entry names its object.
    assert clean_url("s3://bucket/a?b#c.mrc") == "s3://bucket/a?b#c.mrc"
    assert clean_url(f"s3://{KEY}:{SECRET}@bucket/k.mrc") == "s3://bucket/k.mrc"
    assert clean_url(f"simplecache::http://u:p?{USERINFO}@h/x?{QUERY}") == "simplecache::http://h/x"
    assert clean_url("/local/a?b@c.mrc") == "/local/a?b@c.mrc"


def test_written_catalogs_keep_nothing_secret(de_over_http, tmp_path):
    texts = []
    for form in ("v2", "legacy"):
        path = tmp_path / f"c-{form}.yaml"
        with pytest.warns(CredentialsDroppedWarning) as caught:
            write_catalog(de_over_http, str(path), write_storage_options=EVERY_OPTION, form=form)
        message = str(caught[0].message)
        assert "headers" in message and "connection_string" in message and "URL" in message
        assert_clean(message, path.read_text())
        texts.append(path.read_text())
        assert "127.0.0.1" in path.read_text()
    # The allowed options are written and read back.
    doc = yaml.safe_load(texts[0])
    (data,) = doc["data"].values()
    assert data["kwargs"]["storage_options"]["region_name"] == "eu-west-1"
    # Without credentials the catalog still reads (the test server needs none).
    cat = intake.open_catalog(str(tmp_path / "c-v2.yaml"))
    assert cat[next(iter(cat))].read().shape == (2, 3, 4, 4)


def test_glob_catalog_safe_for_intakes_writer(de_over_http, tmp_path, caplog):
    caplog.set_level(logging.DEBUG, logger="intake_mrc")
    # (aiohttp refuses an Authorization header beside credentials in the URL)
    options = {"headers": {"Cookie": f"session={HEADER}", "X-Api-Key": API_KEY}}
    cat = glob_catalog(de_over_http, storage_options=options)
    (name,) = list(cat)
    # The live entry reads with the full options and URLs.
    reader = cat[name]
    f = reader.to_mrcfile()
    assert f.read().shape == (2, 3, 4, 4) and len(f.virtual_images) == 2
    path = tmp_path / "intake.yaml"
    cat.to_yaml_file(str(path))
    outputs = [
        path.read_text(),
        json.dumps(cat.to_dict(), default=str),
        repr(cat),
        repr(cat.get_entity(name)),
        repr(cat.data),
        repr(reader),
        repr(reader.data),
        repr(f),
        repr(f.virtual_images),
        str(f.metadata),
        str(reader.metadata),
        caplog.text,
    ]
    assert_clean(*outputs)
    # What intake wrote reads back (the test server needs no credentials).
    again = intake.open_catalog(str(path))
    np.testing.assert_array_equal(again[name].read().compute(), f.read())
    assert isinstance(cat.data[next(iter(cat.data))].kwargs["storage_options"], HeldOptions)


def test_errors_reprs_and_cli_never_show_credentials(de_over_http, http_upload, tmp_path, capsys):
    (good,) = http_upload(RSCIIO / "HAADFscan.mrc", prefix="sweep-cli")
    good = secret_url(good)
    missing = good.replace("HAADFscan", "nothere")
    with pytest.raises(Exception) as info:  # noqa: PT011 - its text is what matters
        open_mrc(missing)
    assert "nothere.mrc" in str(info.value)
    outputs = [str(info.value), repr(info.value)]
    f = open_mrc(de_over_http.replace("_info.txt", "_movie.mrc"))
    outputs += [repr(f), repr(f.virtual_images), f.name, str(f.metadata)]
    source = intake.open_mrc(good, storage_options={"headers": {"X-Api-Key": API_KEY}})
    outputs += [repr(source), source.yaml()]
    legacy_glob = intake.open_mrc_glob(
        de_over_http, storage_options={"headers": {"X-Api-Key": API_KEY}}
    )
    outputs += [legacy_glob.serialize(), repr(legacy_glob)]
    headers = json.dumps({"headers": {"X-Api-Key": API_KEY}})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", CredentialsDroppedWarning)
        for args in (
            ["info", good],
            ["info", "--json", good],
            ["info", de_over_http.replace("_info.txt", "_movie.mrc")],
            ["info", "--json", de_over_http.replace("_info.txt", "_movie.mrc")],
            ["info", missing, "--storage-options", headers],
            ["info", "--json", missing],
            ["catalog", de_over_http, "-o", str(tmp_path / "cli.yaml"), "--storage-options"]
            + [headers],
        ):
            cli_main(args)
            captured = capsys.readouterr()
            outputs += [captured.out, captured.err]
    outputs.append((tmp_path / "cli.yaml").read_text())
    assert_clean(*outputs)
    assert any("nothere.mrc" in o for o in outputs)


def test_cli_process_warns_and_keeps_s3_credentials(s3_upload, s3_server, tmp_path):
    """The CLI as a user runs it: S3 key and secret given as options and in the
    environment; the warning names what was dropped; no channel shows either."""
    (url,) = s3_upload(RSCIIO / "HAADFscan.mrc", prefix="sweep-s3")
    given = s3_server["storage_options"]
    client = {**given["client_kwargs"], "region_name": "us-east-1"}
    options = json.dumps({**given, "client_kwargs": client})
    outputs = []
    for form in ("v2", "legacy"):
        out = tmp_path / f"s3-{form}.yaml"
        run = subprocess.run(
            [sys.executable, "-m", "intake_mrc.cli", "catalog", url.rsplit("/", 1)[0],
             "-o", str(out), "--form", form, "--storage-options", options],
            capture_output=True, text=True, timeout=120, env=dict(os.environ),
        )  # fmt: skip
        assert run.returncode == 0, run.stderr
        assert "not written" in run.stderr and "key" in run.stderr
        outputs += [run.stdout, run.stderr, out.read_text()]
        assert s3_server["endpoint"] in out.read_text()
    cat = glob_catalog(url.rsplit("/", 1)[0], storage_options=s3_server["storage_options"])
    cat.to_yaml_file(str(tmp_path / "s3-intake.yaml"))
    outputs += [(tmp_path / "s3-intake.yaml").read_text(), repr(cat.data)]
    assert_clean(*outputs, also=(S3_KEY, S3_SECRET))
    assert s3_server["endpoint"] in outputs[-2]
    # Read back with the environment's credentials and the written endpoint.
    again = intake.open_catalog(str(tmp_path / "s3-intake.yaml"))
    assert again[next(iter(again))].read().compute().max() == 9399


def test_intake2_readers_every_way():
    """Issue 9: data in args or in kwargs["data"], every method, only public readers."""
    url = str(RSCIIO / "HAADFscan.mrc")
    expected = open_mrc(url).read()
    data = MRC(url=url)
    readers = [
        MRC(url=url).to_reader("numpy"),
        MRC(url=url).to_reader("dask"),
        MRC(url=url).to_reader(reader="MRCFileReader"),
        MRCDaskReader(data=data),
        MRCDaskReader(data),
        MRCNumpyReader(url),
        MRCNumpyReader(url=url),
        MRCFileReader(data=data),
    ]
    for reader in readers:
        np.testing.assert_array_equal(reader.to_dask().compute(), expected)
        np.testing.assert_array_equal(reader.discover().compute(), expected)
        assert reader.to_mrcfile().shape == expected.shape
        out = reader.read()
        out = out.read() if hasattr(out, "to_dask") else out  # MRCFileReader gives the file
        np.testing.assert_array_equal(np.asarray(out), expected)
    pipeline = intake.auto_pipeline(url, "dask.array:Array")
    np.testing.assert_array_equal(pipeline.read().compute(), expected)
    names = [cls.__name__ for cls in data.possible_readers["importable"]]
    assert "_MRCReader" not in names
    assert {"MRCDaskReader", "MRCNumpyReader", "MRCFileReader"} <= set(names)
    with pytest.raises(TypeError, match="MRC data instance"):
        MRCDaskReader().read()


def test_written_catalog_entry_from_to_dict_reads(tmp_path):
    """A glob_catalog entry re-created from intake's to_dict() reads the same bytes."""
    root = tmp_path / "plain"
    root.mkdir()
    (root / "a.mrc").write_bytes((RSCIIO / "HAADFscan.mrc").read_bytes())
    cat = glob_catalog(str(root), storage_options={"anon": True, "key": KEY})
    again = Catalog.from_dict(cat.to_dict())
    assert_clean(json.dumps(again.to_dict(), default=str))
    np.testing.assert_array_equal(
        again["a"].read().compute(), open_mrc(str(RSCIIO / "HAADFscan.mrc")).read()
    )
