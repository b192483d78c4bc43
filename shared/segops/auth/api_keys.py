from __future__ import annotations

import hashlib
import secrets
from typing import Literal

KeyKind = Literal["secret", "publishable"]
KEY_PREFIX = "sk_live_"
# Publishable keys only send events, from the origins they list: safe to embed in web pages.
PUBLISHABLE_PREFIX = "pk_live_"
PREFIXES: dict[KeyKind, str] = {"secret": KEY_PREFIX, "publishable": PUBLISHABLE_PREFIX}
DISPLAY_PREFIX_LENGTH = len(KEY_PREFIX) + 6


def generate(kind: KeyKind = "secret") -> str:
    return PREFIXES[kind] + secrets.token_urlsafe(32)


def fingerprint(key: str) -> str:
    """Keys carry 256 random bits, so a fast hash is safe and allows an indexed lookup."""
    return hashlib.sha256(key.encode()).hexdigest()


def display_prefix(key: str) -> str:
    return key[:DISPLAY_PREFIX_LENGTH]


def looks_like_key(value: str) -> bool:
    return value.startswith((KEY_PREFIX, PUBLISHABLE_PREFIX)) and 40 <= len(value) <= 128
