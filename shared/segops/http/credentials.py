"""The credentials a request carries in its Authorization header."""

from __future__ import annotations

import base64

from segops.auth import sessions
from segops.boundary import BadJson, loads
from segops.errors import Unauthorized
from segops.http.requests import read_body
from segops.http.routes import AuthKind, RequestContext


def credentials(ctx: RequestContext) -> tuple[AuthKind, str]:
    header = ctx.request.headers.get("Authorization", "")
    if not header and "write_key" in ctx.route.auth:
        return "write_key", _body_write_key(ctx)
    scheme, _, value = header.partition(" ")
    value = value.strip()
    if not scheme or not value:
        raise Unauthorized("missing Authorization header (Bearer <token> or ApiKey <key>)")
    scheme = scheme.lower()
    if scheme == "bearer":
        return "jwt", value
    if scheme == "apikey":
        return "api_key", value
    if scheme == "basic":
        # Segment-compatible clients send the write key as the Basic user name (empty password).
        try:
            user, _, _password = base64.b64decode(value, validate=True).decode().partition(":")
        except ValueError:  # binascii.Error, UnicodeDecodeError, and non-ASCII text (a plain ValueError)
            raise Unauthorized("malformed Basic credentials") from None
        return "write_key", user
    raise Unauthorized("unsupported Authorization scheme")


def _body_write_key(ctx: RequestContext) -> str:
    """Segment's other write-key convention: `writeKey` in the JSON body, which is how analytics.js
    sends from browsers (a `text/plain` body, so no CORS preflight, and no Authorization header).
    The body is read before authentication, within the framework's general bound (`max_body_bytes`,
    above Segment's own 500 KB batch limit); the handler reads the same bytes."""
    raw = read_body(ctx, ctx.runtime.settings.max_body_bytes)
    try:
        body = loads(raw)  # as the handler reads it: a lone surrogate (a cut emoji) must not cost the key
    except BadJson:
        body = None
    key = body.get("writeKey") if isinstance(body, dict) else None
    if not isinstance(key, str) or not key:
        raise Unauthorized("missing write key: send it as the HTTP Basic user name or as `writeKey` in the body")
    return key


def signed_in_user(ctx: RequestContext) -> int | None:
    """For routes open to everyone that act differently for a signed-in person: the user of a valid
    Bearer token, None without an Authorization header, `Unauthorized` for anything else."""
    if not ctx.request.headers.get("Authorization"):
        return None
    kind, secret = credentials(ctx)
    if kind != "jwt":
        raise Unauthorized("this endpoint accepts bearer tokens only")
    return sessions.verify_access(ctx.runtime, secret).user_id
