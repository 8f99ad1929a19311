"""Credentials never reach a written catalog, our log lines or an error message; catalogs
load with a safe loader; sources are never modified."""

from __future__ import annotations

import logging

import intake
import pytest
import yaml
from conftest import RSCIIO, S3_KEY, S3_SECRET, sha256

import intake_mrc
from intake_mrc.catalog import write_catalog
from intake_mrc.storage import redact_url

SECRETS = (S3_KEY, S3_SECRET, "sekrit-password", "SIGNATURE0123")


def assert_clean(*texts: str) -> None:
    for text in texts:
        for secret in SECRETS:
            assert secret not in text, f"{secret!r} leaked"


def test_no_credentials_in_logs_errors_or_catalogs(s3_upload, s3_server, tmp_path, caplog):
    before = sha256(RSCIIO / "HAADFscan.mrc")
    (url,) = s3_upload(RSCIIO / "HAADFscan.mrc", prefix="secure")
    options = s3_server["storage_options"]
    caplog.set_level(logging.DEBUG, logger="intake_mrc")
    caplog.set_level(logging.WARNING)
    messages = []
    f = intake_mrc.open_mrc(url, storage_options=options)
    assert f.read().shape == (16, 16)
    messages.append(repr(f) + str(f.metadata) + str(f.name))
    for bad in (url.replace("HAADF", "missing"), "s3://no-such-bucket-here/x.mrc"):
        with pytest.raises(Exception) as info:  # noqa: PT011 - any error; its text matters
            intake_mrc.open_mrc(bad, storage_options=options)
        messages.append(str(info.value))
    # moto does not check signatures, so this reads; the secret still must not show.
    bad_options = {**options, "secret": "sekrit-password"}
    g = intake_mrc.open_mrc(url, storage_options=bad_options)
    messages.append(repr(g) + str(g.metadata))
    catalog = tmp_path / "c.yaml"
    write_catalog(url.rsplit("/", 1)[0], str(catalog), bad_options)
    legacy = tmp_path / "l.yaml"
    write_catalog(url.rsplit("/", 1)[0], str(legacy), bad_options, form="legacy")
    assert_clean(catalog.read_text(), legacy.read_text(), caplog.text, *messages)
    assert sha256(RSCIIO / "HAADFscan.mrc") == before


def test_urls_with_userinfo_or_signatures_are_redacted(http_server):
    url = (
        f"http://user:sekrit-password@127.0.0.1:{http_server.url.rsplit(':', 1)[1]}"
        "/nothere.mrc?X-Amz-Signature=SIGNATURE0123&X-Amz-Credential=" + S3_KEY
    )
    assert_clean(redact_url(url), redact_url("simplecache::" + url))
    with pytest.raises(Exception) as info:  # noqa: PT011
        intake_mrc.open_mrc(url)
    assert_clean(str(info.value))
    assert "nothere.mrc" in str(info.value)


def test_catalogs_load_safely(tmp_path):
    hostile = tmp_path / "hostile.yaml"
    hostile.write_text("sources:\n  x: !!python/object/apply:os.system ['echo pwned']\n")
    with pytest.raises(Exception) as info:  # noqa: PT011
        intake.open_catalog(str(hostile)).x  # noqa: B018
    assert "python/object" in str(info.value) or isinstance(info.value, yaml.YAMLError)
    # Our writer's output is plain safe YAML.
    written = tmp_path / "ok.yaml"
    write_catalog(str(RSCIIO), str(written))
    yaml.safe_load(written.read_text())


# URLs whose user, password or query string hold what a URL parser or a split on "::" trips
# over: a password with "::", a quote or "?", a port that is not a number, an IPv6 host, a
# query with "::", chained pieces with credentials of their own.
HOSTILE_URLS = [
    "http://user:pa::SECRETA@127.0.0.1:9/x.mrc",
    "http://127.0.0.1:9/x.mrc?sig=ab::SECRETB",
    "http://user:p'SECRETC@127.0.0.1:9/x.mrc?sig=SECRETD",
    "http://user:SECRETE@127.0.0.1:port/x.mrc",
    "http://user:SECRETF@[::1]:9/x.mrc?k=SECRETG",
    "https://h/x.mrc?sig=ab::SECRETH::s3://KEY:SECRETI@b/k?versionId=SECRETJ",
    "simplecache::http://user:pa?SECRETK@h/x.mrc#SECRETL",
]


@pytest.mark.parametrize("url", HOSTILE_URLS)
def test_redaction_never_fails_and_leaves_no_piece_of_a_secret(url):
    shown = redact_url(url)
    assert "SECRET" not in shown
    assert "x.mrc" in shown or "s3://b/k" in shown
    # Inside a message too, whatever quotes surround or cut the URL.
    from intake_mrc.storage.urls import _describe

    assert "SECRET" not in _describe(ValueError(f"cannot open {url} now"))
    assert "SECRET" not in _describe(ValueError(f"cannot open '{url}'"))


@pytest.mark.parametrize("url", HOSTILE_URLS[:3])
def test_open_errors_on_such_urls_are_ours_and_clean(url):
    with pytest.raises(intake_mrc.StorageError) as info:
        intake_mrc.open_mrc(url, storage_options={"intake_mrc": {"retries": 0}})
    assert "SECRET" not in str(info.value)
    assert "127.0.0.1:9/x.mrc" in str(info.value)


@pytest.mark.parametrize("url", [u for u in HOSTILE_URLS if "s3://" not in u])
def test_catalog_urls_and_cli_text_keep_no_piece_of_a_secret(url):
    from intake_mrc.credentials import allowed_options, clean_url, redact_text

    assert "SECRET" not in clean_url(url)
    assert "x.mrc" in clean_url(url)
    kept, _ = allowed_options({"client_kwargs": {"endpoint_url": url}})
    assert "SECRET" not in str(kept)
    assert "SECRET" not in redact_text(f"cannot open {url} now")
