"""Which storage options a filesystem does not know, or has the wrong type: a misspelt option
(``anno`` for ``anon``) is otherwise silently ignored by some fsspec filesystems and fails much
later as a read error in others (HTTP passes unknown options to every request), and a
``headers`` string fails inside aiohttp. The command line reports them first, by name."""

from __future__ import annotations

import difflib
import inspect
from typing import Any

from .settings import SETTINGS_KEY

# Options every fsspec filesystem takes (instance caching and listings cache).
_COMMON = {"use_listings_cache", "listings_expiry_time", "max_paths", "skip_instance_cache"}
# Our own read settings travel in the storage options under this key for every protocol.
_OURS = {SETTINGS_KEY}


def _init_parameters(cls: type) -> set[str]:
    names: set[str] = set()
    for klass in cls.__mro__:
        init = klass.__dict__.get("__init__")
        if init is None:
            continue
        try:
            parameters = inspect.signature(init).parameters.values()
        except (TypeError, ValueError):
            continue
        names.update(
            p.name
            for p in parameters
            if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY) and p.name != "self"
        )
    return names


def known_storage_options(protocol: str) -> set[str] | None:
    """The option names the filesystem of ``protocol`` accepts; None when that cannot be
    told (the filesystem's package is not installed)."""
    import fsspec

    try:
        cls = fsspec.get_filesystem_class(protocol)
    except (ImportError, ValueError):
        return None
    known = _init_parameters(cls) | _COMMON | _OURS
    if protocol in ("http", "https"):
        # HTTPFileSystem hands its other options to every aiohttp request.
        import aiohttp

        known |= _init_parameters(aiohttp.ClientSession) - {"loop"}
        known |= set(inspect.signature(aiohttp.ClientSession._request).parameters) - {"self"}
    return known


def unknown_storage_options(url: str, storage_options: dict[str, Any]) -> list[str]:
    """Descriptions of the options ``url``'s filesystem would not understand, with the
    closest known name; empty when all are known or the URL is chained (options are then
    per protocol, and fsspec dispatches them)."""
    from .urls import is_chained

    if not storage_options or is_chained(url):
        return []
    protocol = url.split("://", 1)[0] if "://" in url else "file"
    known = known_storage_options(protocol)
    if known is None:
        return []
    out = []
    for name in sorted(set(storage_options) - known):
        close = difflib.get_close_matches(name, sorted(known), n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        out.append(f"unknown storage option {name!r} for {protocol}://{hint}")
    return out


# Options whose type fsspec, s3fs and aiohttp expect, for a message naming the option rather
# than a failure deep in a request ("dictionary update sequence element #0 ...").
_MAPPINGS = {
    "headers",
    "client_kwargs",
    "config_kwargs",
    "s3_additional_kwargs",
    "remote_options",
    "target_options",
    SETTINGS_KEY,
}
_BOOLS = {"anon", "use_ssl", "requester_pays", "version_aware", "skip_instance_cache"}
_STRINGS = {"key", "secret", "token", "endpoint_url", "profile", "region_name"}


def wrongly_typed_storage_options(storage_options: dict[str, Any]) -> list[str]:
    """Descriptions of options whose value has a type no filesystem takes there (e.g.
    ``headers`` that is not an object of strings); values are never quoted (they may be
    credentials), only their type."""
    out = []
    for name in sorted(storage_options):
        value = storage_options[name]
        if name in _MAPPINGS and not isinstance(value, dict):
            out.append(f"storage option {name!r} must be an object, not {type(value).__name__}")
        elif name == "headers" and not all(
            isinstance(k, str) and isinstance(v, str) for k, v in value.items()
        ):
            out.append("storage option 'headers' must map names to strings")
        elif name in _BOOLS and not isinstance(value, bool):
            out.append(f"storage option {name!r} must be true or false, not {type(value).__name__}")
        elif name in _STRINGS and value is not None and not isinstance(value, str):
            out.append(f"storage option {name!r} must be a string, not {type(value).__name__}")
    return out


__all__ = ["known_storage_options", "unknown_storage_options", "wrongly_typed_storage_options"]
