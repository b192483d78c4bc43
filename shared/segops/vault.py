"""Sealing for the local tenant-secret backend (`segops.tenant_secrets.sealed`): Fernet
(AES-128-CBC + HMAC-SHA256, from `cryptography`) under keys that never reach the control-plane
bucket (settings; local stacks generate theirs under the data dir). A setting may hold several
comma-separated keys, newest first: new values are sealed with the first, and any of them opens, so a
key is rotated by prepending the new one and re-entering the secrets (docs/security.md).
"""

from __future__ import annotations

from cryptography.fernet import Fernet, InvalidToken, MultiFernet


class SecretUnavailable(Exception):
    """No key configured here, or the stored value was sealed under a key this deployment lacks."""


def _fernet(keys: str) -> MultiFernet:
    parts = [k.strip() for k in keys.split(",") if k.strip()]
    if not parts:
        # A function not granted the key must never seal or open: fail closed, loudly.
        raise SecretUnavailable("no sealing key is configured for this function")
    try:
        return MultiFernet([Fernet(k.encode()) for k in parts])
    except ValueError as exc:
        raise SecretUnavailable("a sealing key is malformed (expected url-safe base64 of 32 bytes)") from exc


def seal(keys: str, plaintext: str) -> str:
    return _fernet(keys).encrypt(plaintext.encode()).decode()


def unseal(keys: str, sealed: str) -> str:
    try:
        return _fernet(keys).decrypt(sealed.encode()).decode()
    except InvalidToken as exc:
        raise SecretUnavailable("the stored secret does not open with the configured keys") from exc


def new_key() -> str:
    return Fernet.generate_key().decode()
