"""The one codec for list cursors (docs/api.md, "Lists and pagination").

A cursor is the url-safe, unpadded base64 of a tag and a small JSON object: the list it belongs to
and the keyset position after the last item returned. The tag is an HMAC of the object under a key
derived from the deployment's signing secret (`key_of`), so a cursor a client edited (another
position, snapshot or segment) fails its tag: its JSON alone is no secret, but only the server can
make one. Each paginated list declares its position as a `Cursor` subclass; decoding checks the tag,
validates strictly and accepts only the exact encoding this module produces, so a malformed, edited
or foreign cursor (from another list) is a 400 pointing at `/query/cursor`, never a silently
different page.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import re
from functools import lru_cache
from typing import TYPE_CHECKING, ClassVar, Self

import orjson
from pydantic import ConfigDict, ValidationError

from segops.boundary import StrictModel
from segops.errors import ValidationFailed, invalid

if TYPE_CHECKING:
    from segops.runtime import Runtime

_ALPHABET = re.compile(r"[A-Za-z0-9_-]+")
_TAG_BYTES = 12  # 96 bits: a forged cursor passes once in 2^96 tries


@lru_cache(maxsize=8)
def key_of(secret: str) -> bytes:
    """The cursor key of a deployment: derived from its token-signing secret (`Runtime.jwt_secret`),
    so no other value signed with that secret can pass for a cursor, nor a cursor for a token."""
    return hmac.new(secret.encode(), b"segops list cursor v1", hashlib.sha256).digest()


def cursor_key(runtime: Runtime, tenant_id: int) -> bytes:
    """The key of one tenant's cursors: another tenant's cursor (a position in its own list) is foreign."""
    return hmac.new(key_of(runtime.jwt_secret), f"tenant:{tenant_id}".encode(), hashlib.sha256).digest()


def _tag(key: bytes, body: bytes) -> bytes:
    return hmac.new(key, body, hashlib.sha256).digest()[:_TAG_BYTES]


class Cursor(StrictModel):
    model_config = ConfigDict(frozen=True, strict=True)

    list_name: ClassVar[str]

    def encode(self, key: bytes) -> str:
        body = orjson.dumps({"list": self.list_name, **self.model_dump()})
        return base64.urlsafe_b64encode(_tag(key, body) + body).decode().rstrip("=")

    @classmethod
    def decode(cls, text: str, key: bytes) -> Self:
        """The position `text` encodes under `key`; `ValidationFailed` (400, `/query/cursor`) for anything else."""
        document = None
        if _ALPHABET.fullmatch(text):
            try:
                raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
            except (binascii.Error, ValueError):
                raw = b""
            tag, body = raw[:_TAG_BYTES], raw[_TAG_BYTES:]
            if body and hmac.compare_digest(tag, _tag(key, body)):
                try:
                    document = orjson.loads(body)
                except ValueError:
                    document = None
        if isinstance(document, dict) and document.pop("list", None) == cls.list_name:
            try:
                position = cls.model_validate(document)
            except ValidationError:
                pass
            else:
                if position.encode(key) == text:
                    return position
        raise invalid_cursor()


def invalid_cursor() -> ValidationFailed:
    return invalid("/query/cursor", "not a cursor from this list")
