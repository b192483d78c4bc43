"""The one place SQL identifiers are produced: database, table, column and alias names (and the
bare-word format names of `FORMAT`/`file()`), for the compiler and every backend alike.

Only names on the allow-list pass: an ASCII letter or underscore, then ASCII letters, digits and
underscores, at most 63 characters. Such a name cannot close a quote, start a comment or smuggle a
second statement, and it is backquoted on top. Values never come here: they are bound parameters
(`{name:Type}`, rendered by `segops.warehouse.params`).
"""

from __future__ import annotations

import re
from collections.abc import Iterable

_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,62}")


def allowed_identifier(name: str) -> str:
    """`name` unchanged when it is on the allow-list (for client APIs that quote it themselves); else `ValueError`."""
    # fullmatch: with `match` and `$`, a trailing newline would pass.
    if not isinstance(name, str) or _IDENTIFIER.fullmatch(name) is None:
        raise ValueError(f"not an allowed SQL identifier: {name!r}")
    return name


def quote_identifier(name: str) -> str:
    """Backquote an allow-listed name; anything else raises `ValueError`."""
    return f"`{allowed_identifier(name)}`"


def quote_identifiers(names: Iterable[str]) -> str:
    """A column list: `a`, `b`, ..."""
    return ", ".join(quote_identifier(name) for name in names)


def segment_column(segment_id: int) -> str:
    """The output column carrying one segment's boolean in a multi-segment pass."""
    if isinstance(segment_id, bool) or not isinstance(segment_id, int) or segment_id < 0:
        raise ValueError(f"segment id must be a non-negative integer: {segment_id!r}")
    return allowed_identifier(f"s_{segment_id}")
