"""Reading a request: the size-limited body, JSON decoding, query and body models."""

from __future__ import annotations

import zlib
from typing import Any

from pydantic import ValidationError

from segops.boundary import TOO_DEEP, BadJson, deeper_than, loads
from segops.errors import PayloadTooLarge, UnsupportedMediaType, ValidationFailed
from segops.http.pointers import json_pointer, validation_error
from segops.http.routes import RequestContext

# The `type` of the 400 for a `Content-Encoding: gzip` body that does not inflate.
MALFORMED_ENCODING = "invalid_encoding"
# Levels of objects and arrays a JSON body may nest: room for an event payload's 64 (the sandbox's)
# in a body, and well under what the process writes (orjson: 254) and reads back from its stores
# (pydantic's JSON parser: ~200).
MAX_BODY_DEPTH = 100


def read_body(ctx: RequestContext, limit: int) -> bytes:
    """The request body, decoded when sent with `Content-Encoding: gzip`, at most `limit` bytes once
    decoded (`PayloadTooLarge` beyond). Read once and kept in `ctx.raw_body`: a later call (the handler
    of a route whose credentials were in the body) gets the same bytes, checked against its own limit."""
    if ctx.raw_body is None:
        request = ctx.request
        if request.content_length is not None and request.content_length > limit:
            raise PayloadTooLarge(f"body exceeds {limit} bytes", {"limit": limit})
        raw = request.stream.read(limit + 1)
        if len(raw) > limit:
            raise PayloadTooLarge(f"body exceeds {limit} bytes", {"limit": limit})
        ctx.raw_body = _decoded(request.headers.get("Content-Encoding", ""), raw, limit)
    if len(ctx.raw_body) > limit:
        raise PayloadTooLarge(f"body exceeds {limit} bytes", {"limit": limit})
    return ctx.raw_body


def _decoded(encoding: str, raw: bytes, limit: int) -> bytes:
    """`raw` as sent with `Content-Encoding: encoding`; gzip is inflated to at most `limit` bytes, so a
    small compressed body cannot expand past the bound the route sets (a "zip bomb")."""
    encoding = encoding.strip().lower()
    if encoding in ("", "identity"):
        return raw
    if encoding != "gzip":
        raise UnsupportedMediaType("Content-Encoding must be gzip (or none)", {"content_encoding": encoding})
    inflater = zlib.decompressobj(wbits=zlib.MAX_WBITS | 16)  # | 16: the gzip header and trailer
    try:
        body = inflater.decompress(raw, limit + 1)
    except zlib.error as exc:
        raise _malformed_gzip(f"body is not valid gzip ({exc})") from None
    if len(body) > limit:
        raise PayloadTooLarge(f"body exceeds {limit} bytes once decompressed", {"limit": limit})
    if not inflater.eof:
        raise _malformed_gzip("gzip body is truncated")
    if inflater.unused_data:
        raise _malformed_gzip("data after the end of the gzip body")
    return body


def _malformed_gzip(message: str) -> ValidationFailed:
    return ValidationFailed(message, {"errors": [{"pointer": "", "message": message, "type": MALFORMED_ENCODING}]})


def read_json(ctx: RequestContext) -> Any:
    """The decoded JSON body (None when the route takes none or keeps it raw)."""
    request = ctx.request
    raw = read_body(ctx, ctx.runtime.settings.max_body_bytes)
    if ctx.route.raw_body:
        return None
    if not raw.strip():
        if ctx.route.body is None:
            return None
        entry = {"pointer": "", "message": "empty body", "type": "missing"}
        raise ValidationFailed("request body must be a JSON object", {"errors": [entry]})
    mimetype = request.mimetype or ""
    if mimetype != "application/json" and not mimetype.endswith("+json"):
        raise UnsupportedMediaType("Content-Type must be application/json", {"content_type": mimetype})
    try:
        body = loads(raw)
    except BadJson as bad:
        if bad.problem == TOO_DEEP:
            raise _too_deep() from None
        entry = {"pointer": "", "message": bad.problem, "type": "json_invalid"}
        raise ValidationFailed(str(bad), {"errors": [entry], "position": bad.position}) from None
    if deeper_than(body, raw, MAX_BODY_DEPTH):
        raise _too_deep()
    return body


def _too_deep() -> ValidationFailed:
    message = f"body nests more than {MAX_BODY_DEPTH} levels of objects and arrays"
    return ValidationFailed(message, {"errors": [{"pointer": "", "message": message, "type": "too_deep"}]})


def parse_query(ctx: RequestContext) -> None:
    """Validate the query string against the route's model into `ctx.query` (`tenant` is auth's, not the route's)."""
    model = ctx.route.query
    if model is None:
        return
    query = {k: v for k, v in ctx.request.args.items() if k != "tenant"}
    try:
        ctx.query = model.model_validate(query)
    except ValidationError as exc:
        raise validation_error(exc, ("query",)) from exc


def parse_body(ctx: RequestContext, body: Any) -> None:
    """Validate the decoded body against the route's model into `ctx.body` (`tenant` is auth's unless modelled)."""
    route = ctx.route
    if route.body is None:
        if route.raw_body:
            return
        # A route that takes no body refuses fields it would ignore (`{"mode": "delta"}` sent to a
        # route that reads `?mode=` must not quietly run a full compute); `tenant` selects the tenant.
        fields = [key for key in body if key != "tenant"] if isinstance(body, dict) else []
        if fields or not isinstance(body, dict | None):
            problems = [
                {"pointer": json_pointer([key]), "message": "this endpoint takes no body", "type": "extra_forbidden"}
                for key in fields
            ] or [{"pointer": "", "message": "this endpoint takes no body", "type": "extra_forbidden"}]
            raise ValidationFailed("this endpoint takes no request body", {"errors": problems})
        ctx.body = body
        return
    if isinstance(body, dict) and "tenant" not in route.body.model_fields:
        body.pop("tenant", None)
    try:
        ctx.body = route.body.model_validate(body)
    except ValidationError as exc:
        raise validation_error(exc) from exc
