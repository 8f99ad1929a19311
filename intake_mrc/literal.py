"""Catalog values that intake reads back as exactly the text we wrote.

Both intake catalog forms render the strings of an entry when it is opened, so a file named
``{{ 7*7 }}.mrc`` or ``x{env(AWS_SECRET_ACCESS_KEY)}.mrc`` would otherwise be evaluated.
What each form does (intake 2.0.9, read in its source):

- intake 2 (``version: 2``): ``intake.readers.user_parameters._set_values`` walks every value
  of a reader's and a data block's kwargs (dict values, list items; keys are left alone).
  A string ``{...}`` naming a user parameter or a template (``env(X)``, ``data(X)``,
  ``func(X)``, ``import(X)``, ``pickle64(X)``) is replaced whole; any other string goes
  through ``str.format_map`` (attribute and item access included). ``str.format`` turns
  ``{{`` into ``{`` and ``}}`` into ``}``: doubling every brace makes a value a format string
  whose output is the value, and a doubled value never starts with a template name after
  its first brace. Separately, ``Catalog._rehydrate`` replaces every string of an entry
  (metadata included) that *starts* with ``data(...)`` or ``{data(...)`` by another entry.
- legacy (``sources:``): ``intake.catalog.utils._expand`` renders every string of the
  arguments and of the metadata with an unsandboxed jinja2 ``Environment``. Only ``{``
  opens anything in jinja's data (``{{``, ``{%``, ``{#``); the template source also has its
  newlines normalised and one trailing newline dropped. Writing each ``{``, ``\\r`` and
  ``\\n`` as a jinja expression printing that character (``{{ '{' }}``, ``{{ '\\n' }}``)
  leaves nothing to evaluate and gives back the exact text.

Tests render values with intake's own functions and open written catalogs with
``intake.open_catalog`` (tests/test_hostile_names.py).
"""

from __future__ import annotations

import re
from typing import Any

# What Catalog._rehydrate takes for a reference to another entry (its own pattern, anchored
# at the start of the string by re.match).
_INTAKE2_REFERENCE = re.compile(r"{?data[(]([^)]+)[)]}?")
_JINJA_SPECIAL = re.compile(r"[{\r\n]")
_JINJA_LITERAL = {"{": "{{ '{' }}", "\r": "{{ '\\r' }}", "\n": "{{ '\\n' }}"}


def intake2_literal(text: str) -> str:
    """``text`` as an intake 2 kwarg value that renders to ``text`` (braces doubled)."""
    return text.replace("{", "{{").replace("}", "}}")


def jinja_literal(text: str) -> str:
    """``text`` as a legacy (jinja2) value that renders to ``text``."""
    return _JINJA_SPECIAL.sub(lambda m: _JINJA_LITERAL[m.group(0)], text)


def not_a_reference(text: str) -> str:
    """Metadata text that intake 2 will not take for a reference to another entry.

    Such text (only a name starting with ``data(``) gets a leading ``./``: for the file
    names catalog metadata holds, the same file."""
    return "./" + text if _INTAKE2_REFERENCE.match(text) else text


def map_strings(value: Any, func: Any) -> Any:
    """``value`` with ``func`` applied to every string inside dicts (values) and lists."""
    if isinstance(value, str):
        return func(value)
    if isinstance(value, dict):
        return {k: map_strings(v, func) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [map_strings(v, func) for v in value]
    return value
