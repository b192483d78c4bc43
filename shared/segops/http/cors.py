"""CORS for the routes web pages call (event ingestion with a publishable key, `Route.browser`).

A preflight carries no credentials, so it cannot tell which key (and so which allowed origins) the
real request will bring: it is answered for any well-formed origin, and only permits the request to
be sent. The real request then decides: its publishable key must list the page's `Origin`
(`segops.http.authentication`), and only then does the answer carry `Access-Control-Allow-Origin`, echoing
that origin (never `*`, and never `Access-Control-Allow-Credentials`: no cookies are involved, the
key is in the `Authorization` header). Every other route answers no CORS at all, so browsers keep
other sites' pages from reading them.
"""

from __future__ import annotations

import re
from typing import Any

from flask import Request, Response

# `scheme://host[:port]` as browsers send it in `Origin`: lower case, no path, no default port.
ORIGIN_PATTERN = r"^https?://[a-z0-9]([a-z0-9.-]{0,251}[a-z0-9])?(:[0-9]{1,5})?$"
_ORIGIN = re.compile(ORIGIN_PATTERN)
ALLOWED_HEADERS = "Authorization, Content-Type"
# Browsers cache a preflight this long (Chromium caps it at 7200 s).
PREFLIGHT_MAX_AGE_SECONDS = 600


_DEFAULT_PORTS = {"http": 80, "https": 443}


def is_origin(value: str) -> bool:
    return _ORIGIN.match(value) is not None


def canonical_origin(value: str) -> str:
    """An origin (matching `ORIGIN_PATTERN`) as a browser sends it: without its scheme's default port,
    which browsers leave out (`https://shop.example.com:443` would never match a page). A port past
    65535 or 0 is no port at all."""
    scheme, _, rest = value.partition("://")
    host, colon, port = rest.partition(":")
    if not colon:
        return value
    number = int(port)
    if not 0 < number < 65536:
        raise ValueError(f"port {port} is not a TCP port (1-65535)")
    return f"{scheme}://{host}" if number == _DEFAULT_PORTS[scheme] else f"{scheme}://{host}:{number}"


def preflight(request: Request) -> Response:
    response = Response(status=204)
    response.headers["Vary"] = "Origin"
    origin = request.headers.get("Origin", "")
    if is_origin(origin) and request.headers.get("Access-Control-Request-Method", "POST") == "POST":
        response.headers["Access-Control-Allow-Origin"] = origin
        response.headers["Access-Control-Allow-Methods"] = "POST"
        response.headers["Access-Control-Allow-Headers"] = ALLOWED_HEADERS
        response.headers["Access-Control-Max-Age"] = str(PREFLIGHT_MAX_AGE_SECONDS)
    return response


def allow_response(request: Request, response: Response, principal: Any) -> None:
    """Let the page read the answer when its origin is one the request's publishable key allows."""
    response.headers.add("Vary", "Origin")
    origin = request.headers.get("Origin", "")
    allowed = getattr(principal, "allowed_origins", None)
    if origin and allowed is not None and origin in allowed:
        response.headers["Access-Control-Allow-Origin"] = origin
        # So a page's SDK can honour the rate limits (none of these is CORS-safelisted).
        response.headers["Access-Control-Expose-Headers"] = (
            "Retry-After, RateLimit-Limit, RateLimit-Remaining, RateLimit-Reset, X-Request-Id"
        )
