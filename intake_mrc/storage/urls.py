"""URLs: redaction for messages and logs, and per-protocol defaults (timeouts, retries,
encodings) applied to the user's storage options."""

from __future__ import annotations

import re
from typing import Any

# Network defaults where the user set none: seconds to connect and between bytes received.
CONNECT_TIMEOUT = 10
READ_TIMEOUT = 30
# botocore's and s3fs's attempts per call: one, so that our layer's retries are the only
# ones and a permanent failure costs exactly RETRIES + 1 requests.
S3_ATTEMPTS_PER_CALL = 1


# A protocol that starts a URL (``s3://``); in a chain (``simplecache::s3://...``) each piece
# is ``protocol://...`` or a bare ``protocol``.
_SCHEME = r"[A-Za-z][A-Za-z0-9+.-]*"
# User and password: from ``scheme://`` through the last ``@`` before the path. Not split on
# ``::`` first: a password, an IPv6 host (``[::1]``) or a query may hold ``::`` themselves.
_USERINFO = re.compile(rf"({_SCHEME}://)[^/]*@")
# Query string and fragment of a ``scheme://`` piece (a local path may hold ``?`` or ``#``):
# from ``?`` or ``#`` to the next chained ``::scheme://`` (never cut at a bare ``::`` inside
# the query) or the end.
_QUERY = re.compile(rf"({_SCHEME}://[^?#]*)[?#].*?(?=::{_SCHEME}://|\Z)", re.DOTALL)


def redact_url(url: str) -> str:
    """The URL without user, password, query string and fragment: safe for messages and logs.

    Plain text work, never a URL parser: whatever the URL holds (a password with ``::``, a
    port that is not a number, an IPv6 host), this neither fails nor leaves a piece of a
    credential behind (a server error message would otherwise replace the one asked for)."""
    return _QUERY.sub(r"\1", _USERINFO.sub(r"\1", str(url)))


_URL_IN_TEXT = re.compile(rf"{_SCHEME}://\S+")


def _describe(error: BaseException | None) -> str:
    """A short description of an exception, free of URLs with credentials (every URL in
    the text is shown redacted)."""
    if error is None:
        return "unknown error"
    text = str(error).splitlines()[0] if str(error) else ""
    text = _URL_IN_TEXT.sub(lambda m: redact_url(m.group(0)), text)
    for marker in ("X-Amz-", "Signature=", "AWSAccessKeyId", "token="):
        if marker in text:
            text = "(details withheld: they contain credentials)"
    return f"{type(error).__name__}: {text}"[:300]


def _http_options(storage_options: dict[str, Any]) -> dict[str, Any]:
    """HTTP options: identity encoding (so byte ranges mean file bytes) and bounded
    timeouts; a number given as ``client_kwargs["timeout"]`` is seconds per read."""
    import aiohttp

    options = dict(storage_options)
    headers = dict(options.get("headers") or {})
    headers.setdefault("Accept-Encoding", "identity")
    options["headers"] = headers
    client = dict(options.get("client_kwargs") or {})
    timeout = client.get("timeout", READ_TIMEOUT)
    if isinstance(timeout, int | float):
        client["timeout"] = aiohttp.ClientTimeout(
            total=None, sock_connect=min(timeout, CONNECT_TIMEOUT), sock_read=timeout
        )
    options["client_kwargs"] = client
    return options


def _s3_options(storage_options: dict[str, Any]) -> dict[str, Any]:
    """S3 options: one attempt per call in botocore and in s3fs (our layer owns retries,
    whatever the user's config says) and bounded timeouts unless the user set them."""
    options = dict(storage_options)
    config = dict(options.get("config_kwargs") or {})
    config["retries"] = {"total_max_attempts": S3_ATTEMPTS_PER_CALL, "mode": "standard"}
    config.setdefault("connect_timeout", CONNECT_TIMEOUT)
    config.setdefault("read_timeout", READ_TIMEOUT)
    options["config_kwargs"] = config
    return options


_PROTOCOL_DEFAULTS = {
    "http": _http_options,
    "https": _http_options,
    "s3": _s3_options,
    "s3a": _s3_options,
}


# Protocols whose filesystem cannot wrap another layer: in fsspec's chained URLs
# (``outer::inner``) they come last, so a URL starting with one of them is never a chain,
# and a ``::`` in it belongs to the key or path (S3 keys and HTTP paths may hold ``::``).
LEAF_PROTOCOLS = ("s3", "s3a", "http", "https")


def _starts_with_leaf(piece: str) -> bool:
    return piece.split("://", 1)[0].lower() in LEAF_PROTOCOLS and "://" in piece


def is_chained(url: str) -> bool:
    """Whether ``url`` is an fsspec chain (``simplecache::s3://...``): it holds ``::`` and
    does not start with a protocol that cannot wrap another layer (``s3://b/a::b.mrc`` is
    the key ``a::b.mrc``, not a chain)."""
    return "::" in url and not _starts_with_leaf(url)


def ambiguous_chain(url: str) -> str | None:
    """Why a chained ``url`` cannot be read as meant, or None. fsspec splits a chain at
    every ``::``: after an S3 or HTTP layer (which wraps nothing) a ``::`` can only be part
    of its key, which a chain cannot express; reading it would name another object."""
    if not is_chained(url):
        return None
    pieces = url.split("::")
    for k, piece in enumerate(pieces[:-1]):
        if _starts_with_leaf(piece):
            key = "::".join(pieces[k:])
            return (
                f"the key or path {redact_url(key)!r} holds '::', which fsspec's chained URLs "
                "use between layers: it cannot be read through a chain (read it by its plain "
                "s3:// or http(s):// URL)"
            )
    return None


def _with_defaults(url: str, storage_options: dict[str, Any]) -> dict[str, Any]:
    """Protocol defaults for a plain or chained URL (per-protocol options when chained)."""
    pieces = url.split("::") if is_chained(url) else [url]
    protocols = [part.split("://")[0] if "://" in part else "file" for part in pieces]
    if len(protocols) == 1:
        fix = _PROTOCOL_DEFAULTS.get(protocols[0])
        return fix(storage_options) if fix else storage_options
    options = dict(storage_options)
    for protocol in protocols:
        fix = _PROTOCOL_DEFAULTS.get(protocol)
        if fix:
            options[protocol] = fix(dict(options.get(protocol) or {}))
    return options
