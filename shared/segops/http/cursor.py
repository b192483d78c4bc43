"""The one codec for list cursors (docs/api.md, "Lists and pagination").

A cursor is the url-safe, unpadded base64 of a small JSON object: the list it belongs to and the
keyset position after the last item returned. Each paginated list declares its position as a
`Cursor` subclass; decoding validates strictly and accepts only the exact encoding this module
produces, so a malformed, edited or foreign cursor (from another list) is a 400 pointing at
`/query/cursor`, never a silently different page.
"""

from __future__ import annotations

import base64
import binascii
import re
from typing import ClassVar, Self

import orjson
from pydantic import ConfigDict, ValidationError

from segops.boundary import StrictModel
from segops.errors import ValidationFailed

_ALPHABET = re.compile(r"[A-Za-z0-9_-]+")


class Cursor(StrictModel):
    model_config = ConfigDict(frozen=True, strict=True)

    list_name: ClassVar[str]

    def encode(self) -> str:
        document = {"list": self.list_name, **self.model_dump()}
        return base64.urlsafe_b64encode(orjson.dumps(document)).decode().rstrip("=")

    @classmethod
    def decode(cls, text: str) -> Self:
        """The position `text` encodes; `ValidationFailed` (400, `/query/cursor`) for anything else."""
        document = None
        if _ALPHABET.fullmatch(text):
            try:
                document = orjson.loads(base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)))
            except (binascii.Error, ValueError):
                document = None
        if isinstance(document, dict) and document.pop("list", None) == cls.list_name:
            try:
                position = cls.model_validate(document)
            except ValidationError:
                pass
            else:
                if position.encode() == text:
                    return position
        raise invalid_cursor()


def invalid_cursor() -> ValidationFailed:
    return ValidationFailed(
        "invalid cursor", {"errors": [{"pointer": "/query/cursor", "message": "not a cursor from this list"}]}
    )
