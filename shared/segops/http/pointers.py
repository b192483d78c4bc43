"""Validation errors as JSON Pointers (RFC 6901) into the request: `{"pointer", "message", "type"}`."""

from __future__ import annotations

from collections.abc import Iterable

from pydantic import ValidationError

from segops.errors import ValidationFailed


def json_pointer(loc: Iterable[int | str]) -> str:
    parts = [str(p).replace("~", "~0").replace("/", "~1") for p in loc]
    return "/" + "/".join(parts) if parts else ""


def validation_error(exc: ValidationError, prefix: tuple[str | int, ...] = ()) -> ValidationFailed:
    errors = [
        {"pointer": json_pointer((*prefix, *_clean_loc(err["loc"]))), "message": err["msg"], "type": err["type"]}
        for err in exc.errors(include_url=False, include_input=False)
    ]
    first = errors[0] if errors else {"pointer": "", "message": "invalid"}
    return ValidationFailed(f"{first['pointer'] or 'body'}: {first['message']}", {"errors": errors})


def _clean_loc(loc: Iterable[int | str]) -> list[int | str]:
    # Validators wrapped around a union add `function-…` steps to the location; drop them so the
    # pointer is a real path into the document.
    return [part for part in loc if not (isinstance(part, str) and part.startswith("function-"))]
