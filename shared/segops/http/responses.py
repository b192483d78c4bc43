"""What handlers return and how it becomes a Flask response; the one error shape on the wire."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import orjson
from flask import Response
from pydantic import BaseModel

from segops.errors import DependencyDown, RateLimited, SegOpsError


@dataclass(frozen=True)
class Result:
    """A handler result with a non-default status or headers."""

    body: Any
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)


def json_response(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    if isinstance(body, BaseModel):
        payload = body.model_dump_json().encode()
    else:
        try:
            payload = orjson.dumps(body, default=_default)
        except orjson.JSONEncodeError:
            # orjson refuses integers past 64 bits, which are valid JSON (an error echoing the
            # number a client sent, say): the standard library writes them.
            payload = json.dumps(body, default=_default, separators=(",", ":")).encode()
    response = Response(payload, status=status, mimetype="application/json")
    for name, value in (headers or {}).items():
        response.headers[name] = value
    return response


def _default(value: Any) -> Any:
    if isinstance(value, BaseModel):
        return value.model_dump(mode="json")
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


# The challenge of each credential a route takes (RFC 9110 §11.6.1: the schemes that would be accepted).
_CHALLENGES = {"jwt": 'Bearer realm="segops"', "api_key": 'ApiKey realm="segops"', "write_key": 'Basic realm="segops"'}


def error_response(
    error: SegOpsError, request_id: str, auth: Sequence[str] = (), challenge: str | None = None
) -> Response:
    """`auth`: the credentials the route takes, challenged on a 401 (a public route's 401, a wrong
    password, and an unknown route's challenge the credentials the API's routes mostly take), unless
    the route names its own `challenge` (a webhook's signature)."""
    response = json_response(error.to_body(), error.status)
    response.headers["X-Request-Id"] = request_id
    if error.status == 401:
        challenges = (
            ([challenge] if challenge else [])
            or [_CHALLENGES[kind] for kind in auth if kind in _CHALLENGES]
            or [
                _CHALLENGES["jwt"],
                _CHALLENGES["api_key"],
            ]
        )
        response.headers["WWW-Authenticate"] = ", ".join(challenges)
    if isinstance(error, RateLimited | DependencyDown):
        response.headers["Retry-After"] = str(error.retry_after)
    if isinstance(error, RateLimited):
        response.headers.update(error.headers)
    return response


def render(result: Any, status: int) -> Response:
    """A handler's return value as a response; `status` is the route's success status."""
    if isinstance(result, Response):
        return result
    if isinstance(result, Result):
        return json_response(result.body, result.status, result.headers)
    if result is None and status == 204:
        return Response(status=204)
    return json_response(result, status)
