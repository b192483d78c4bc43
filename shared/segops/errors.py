"""The one error tree. Each error carries its HTTP status; `segops.http` renders it."""

from __future__ import annotations

import uuid
from typing import Any


class SegOpsError(Exception):
    status = 500
    code = "internal_error"

    def __init__(self, message: str, details: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.details = details or {}

    def to_body(self) -> dict[str, Any]:
        return {"error": {"code": self.code, "message": self.message, "details": self.details}}


class ValidationFailed(SegOpsError):
    status = 400
    code = "validation_failed"


def invalid(pointer: str, message: str, kind: str = "value_error", **details: Any) -> ValidationFailed:
    """A 400 about one place in the request, shaped as pydantic's are rendered (`segops.http.pointers`):
    the message `<pointer>: <message>` ("body" for the whole body) and one `details.errors` entry
    `{pointer, message, type}`, beside any other `details`."""
    entry = {"pointer": pointer, "message": message, "type": kind}
    return ValidationFailed(f"{pointer or 'body'}: {message}", {"errors": [entry], **details})


class Unauthorized(SegOpsError):
    status = 401
    code = "unauthorized"


class Forbidden(SegOpsError):
    status = 403
    code = "forbidden"


class NotFound(SegOpsError):
    status = 404
    code = "not_found"


class MethodNotAllowed(SegOpsError):
    status = 405
    code = "method_not_allowed"


class Conflict(SegOpsError):
    status = 409
    code = "conflict"


class LoginRequired(Conflict):
    """The address already has an account: sign in with it first."""

    code = "login_required"


class PlanLimitReached(Conflict):
    """Creating or activating one more would exceed the tenant's plan (`details.limit`)."""

    code = "plan_limit_reached"


class Gone(SegOpsError):
    """The resource existed and no longer does, for good (an export past its retention)."""

    status = 410
    code = "gone"


class PreconditionFailed(SegOpsError):
    """An `If-Match` that no longer names the resource's current `ETag`: someone changed it since."""

    status = 412
    code = "precondition_failed"


class TooExpensive(SegOpsError):
    """A valid request whose statement needed more time or memory than the request's bound allows."""

    status = 422
    code = "too_expensive"


class PayloadTooLarge(SegOpsError):
    status = 413
    code = "payload_too_large"


class UnsupportedMediaType(SegOpsError):
    status = 415
    code = "unsupported_media_type"


class RateLimited(SegOpsError):
    status = 429
    code = "rate_limited"

    def __init__(
        self,
        message: str,
        retry_after: int,
        details: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message, {**(details or {}), "retry_after": retry_after})
        self.retry_after = retry_after
        # Sent with the 429 besides `Retry-After` (the `RateLimit-*` fields of the refusing limit).
        self.headers = headers or {}


class QuotaExceeded(RateLimited):
    """The tenant's plan allows no more of this until its period ends (`details.limit`)."""

    code = "quota_exceeded"


class DependencyDown(SegOpsError):
    """A backend (cache, warehouse, object or control-plane store, bus, mail, AI provider) is unreachable:
    503 `service_unavailable` with `Retry-After`, so clients and SDKs retry later instead of giving up."""

    status = 503
    code = "service_unavailable"
    retry_after = 5


class RetryableError(SegOpsError):
    """A bus-side failure worth redelivering (the message is nacked)."""


class PermanentError(SegOpsError):
    """A bus-side failure that redelivery cannot fix (the message is acked and recorded)."""


def tenant_message(error: BaseException) -> tuple[str, str | None]:
    """What a tenant may read about a failure, and the incident id to log the details under.

    Our own errors carry messages written for tenants; any other exception's text can hold SQL,
    hostnames or library internals, so it becomes a generic message pointing at the logs.
    """
    if isinstance(error, SegOpsError):
        return error.message, None
    incident = uuid.uuid4().hex[:16]
    return f"internal error (incident {incident}; details are in the operator logs)", incident
