from __future__ import annotations

import hashlib
import secrets

KEY_PREFIX = "sk_live_"
DISPLAY_PREFIX_LENGTH = len(KEY_PREFIX) + 6


def generate() -> str:
    return KEY_PREFIX + secrets.token_urlsafe(32)


def fingerprint(key: str) -> str:
    """Keys carry 256 random bits, so a fast hash is safe and allows an indexed lookup."""
    return hashlib.sha256(key.encode()).hexdigest()


def display_prefix(key: str) -> str:
    return key[:DISPLAY_PREFIX_LENGTH]


def looks_like_key(value: str) -> bool:
    return value.startswith(KEY_PREFIX) and 40 <= len(value) <= 128
