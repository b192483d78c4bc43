from __future__ import annotations

import re

_KEY = re.compile(r"^[a-z0-9][a-z0-9_.@-]*(/[a-z0-9][a-z0-9_.@-]*)*$")


def validate_key(key: str) -> str:
    """Keys are built by code from ids and hashes; this guards against path tricks all the same."""
    if not _KEY.match(key) or ".." in key:
        raise ValueError(f"invalid store key {key!r}")
    return key
