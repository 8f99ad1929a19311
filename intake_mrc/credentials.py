"""What a catalog may keep of the user's storage options and URLs: no credential leaves the
process in a written catalog.

- Storage options are kept only where they are on an allow-list of settings known to be
  harmless (:data:`ALLOWED_OPTIONS`); everything else is dropped: ``key``/``secret``/
  ``token``, ``headers`` (Cookie, Authorization, X-Api-Key...), ``connection_string``,
  ``passphrase``, ``password``, ``s3_additional_kwargs`` (SSE-C keys) and any option we do
  not know. Readers of the catalog give their own credentials (environment, profile).
- URLs are written without user and password, and HTTP(S) URLs without query string or
  fragment (pre-signed ``?X-Amz-Signature=``, ``?sig=``, ``?key=``). In ``s3://``,
  ``gs://``, ``az://`` ... URLs a ``?`` or ``#`` is part of the object's name (s3fs reads
  only ``?versionId=``), so those paths are kept whole: the entry still names its object.
- :class:`HeldOptions` is what ``glob_catalog`` hands intake: the live entries read with the
  user's full options and URLs, while everything intake serialises (``to_dict``,
  ``to_yaml_file``, tokens) sees only the allowed options and clean URLs.
"""

from __future__ import annotations

import re
import warnings
from typing import Any

from intake.readers.utils import Tokenizable

# Option name -> None (a scalar is kept) or a nested allow-list (a dict is filtered).
_CONFIG: dict[str, Any] = {
    "signature_version": None,
    "connect_timeout": None,
    "read_timeout": None,
    "max_pool_connections": None,
    "s3": {"addressing_style": None},
    "retries": {"max_attempts": None, "total_max_attempts": None, "mode": None},
}
_CLIENT: dict[str, Any] = {"endpoint_url": None, "region_name": None, "use_ssl": None}
ALLOWED_OPTIONS: dict[str, Any] = {
    "anon": None,
    "endpoint_url": None,
    "region_name": None,
    "requester_pays": None,
    "version_aware": None,
    "use_ssl": None,
    "default_block_size": None,
    "default_cache_type": None,
    "default_fill_cache": None,
    "cache_regions": None,
    "account_name": None,  # Azure: a public account name, not a key
    "project": None,  # GCS: a project id
    "client_kwargs": _CLIENT,
    "config_kwargs": _CONFIG,
}
# Chained URLs take options per protocol ({"s3": {...}, "simplecache": {...}}).
_PROTOCOLS = ("s3", "s3a", "gs", "gcs", "az", "abfs", "abfss", "http", "https")
for _protocol in _PROTOCOLS:
    ALLOWED_OPTIONS[_protocol] = dict(ALLOWED_OPTIONS)
for _cache in ("simplecache", "filecache", "blockcache"):
    ALLOWED_OPTIONS[_cache] = {}
_SCALARS = (bool, int, float, str, type(None))
_SCHEME = r"[A-Za-z][A-Za-z0-9+.-]*"
# User and password: from "scheme://" through the last "@" before the first "/".
_USERINFO = re.compile(rf"({_SCHEME}://)[^/]*@")
# An HTTP(S) piece's query string and fragment, up to the next chained "::scheme://" (never
# cut at a bare "::" inside the query), without crossing into the next piece.
_HTTP_QUERY = re.compile(
    rf"((?i:https?)://(?:(?!::{_SCHEME}://)[^?#])*)[?#].*?(?=::{_SCHEME}://|\Z)", re.DOTALL
)


class CredentialsDroppedWarning(UserWarning):
    """A written catalog left out storage options or parts of URLs (never their values)."""


def allowed_options(
    options: Any, _allow: dict[str, Any] | None = None, _at: str = ""
) -> tuple[dict[str, Any], list[str]]:
    """(the options on the allow-list, dotted names of those dropped). URLs among the
    kept values lose their user, password and query string."""
    allow = ALLOWED_OPTIONS if _allow is None else _allow
    kept: dict[str, Any] = {}
    dropped: list[str] = []
    for key, value in dict(options or {}).items():
        name = f"{_at}{key}"
        rule = allow.get(key, False) if isinstance(key, str) else False
        if rule is None and isinstance(value, _SCALARS):
            kept[key] = clean_url(value) if isinstance(value, str) else value
        elif isinstance(rule, dict) and isinstance(value, dict):
            inner, lost = allowed_options(value, rule, name + ".")
            if inner:
                kept[key] = inner
            dropped += lost
        else:
            dropped.append(name)
    return kept, dropped


def clean_url(text: str) -> str:
    """``text`` without user and password, and (HTTP) without query string and fragment.

    Text that is not a URL (a local path, a name) comes back unchanged."""
    if "://" not in text:
        return text
    # As text, never split on "::" first: a password, an IPv6 host or a query may hold "::".
    return _HTTP_QUERY.sub(r"\1", _USERINFO.sub(r"\1", text))


def has_secret_parts(text: str) -> bool:
    """Whether :func:`clean_url` would remove anything from ``text``."""
    return isinstance(text, str) and clean_url(text) != text


def warn_dropped(options: list[str], urls: int, where: str) -> None:
    """Tell the user what a written catalog left out (names and counts, never values)."""
    parts = []
    if options:
        parts.append("storage options " + ", ".join(sorted(set(options))))
    if urls:
        parts.append(f"the user, password or query string of {urls} URL(s)")
    if parts:
        warnings.warn(
            f"{where}: not written (credentials stay in this process; readers give their "
            f"own): {'; '.join(parts)}",
            CredentialsDroppedWarning,
            stacklevel=3,
        )


class HeldOptions(Tokenizable):
    """Storage options (and URLs) intake holds for a live catalog's entries.

    intake serialises a value like this through its public attributes only (``to_dict``
    walks ``__dict__`` without ``_`` names; tokens too): those are the allowed options.
    The full options and the full URLs (by clean URL) stay in private attributes for
    :func:`resolve`. intake passes the object through its templating untouched (it is
    neither a string, nor a dict, nor iterable)."""

    def __init__(self, options: dict[str, Any] | None, urls: dict[str, str] | None = None):
        safe, _ = allowed_options(options)
        self.__dict__.update(safe)
        self._options = dict(options or {})
        self._urls = dict(urls or {})

    def __repr__(self) -> str:
        safe = {k: v for k, v in self.__dict__.items() if not k.startswith("_")}
        return f"HeldOptions({safe!r}, credentials held in this process)"


def resolve(options: Any, *urls: Any) -> tuple[dict[str, Any] | None, list[Any]]:
    """(the options to read with, the URLs to read): unwraps :class:`HeldOptions`, whose
    clean URLs map back to the full ones; other options and URLs are returned as given.
    URLs may be strings, lists or dicts of strings (virtual images)."""
    if not isinstance(options, HeldOptions):
        return options, list(urls)
    table = options._urls

    def full(value: Any) -> Any:
        if isinstance(value, str):
            return table.get(value, value)
        if isinstance(value, dict):
            return {k: full(v) for k, v in value.items()}
        if isinstance(value, list | tuple):
            return [full(v) for v in value]
        return value

    return dict(options._options), [full(u) for u in urls]


def redact_text(text: str) -> str:
    """``text`` (a message, a repr) with every URL in it shown without user, password and
    query string."""
    from .storage.urls import _URL_IN_TEXT, redact_url

    # A URL runs to the next whitespace: a quote inside a password does not end it.
    return _URL_IN_TEXT.sub(lambda m: redact_url(m.group(0)), text)
