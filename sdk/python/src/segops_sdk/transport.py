"""One POST of a batch to the ingestion API, classified into what the client should do next."""

from __future__ import annotations

import http.client
import json
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from typing import Any, Literal

from segops_sdk.retry import is_retryable_status, parse_retry_after

BATCH_PATH = "/api/ingestion/track/batch/"
USER_AGENT = "segops-sdk-python/0.1.0"

OutcomeType = Literal["accepted", "retry", "too_large", "rejected"]


@dataclass(frozen=True)
class Outcome:
    type: OutcomeType
    reason: str = ""
    status: int | None = None
    skipped: int = 0
    retry_after: float | None = None
    code: str | None = None
    details: Any = None


def post_batch(url: str, api_key: str, body: bytes, timeout: float) -> Outcome:
    request = urllib.request.Request(  # noqa: S310 - the client only accepts http(s) URLs
        url,
        data=body,
        method="POST",
        headers={
            "Authorization": f"ApiKey {api_key}",
            "Content-Type": "application/json",
            "User-Agent": USER_AGENT,
        },
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310 - http(s) only
            return _classify(response.status, response.headers.get("Retry-After"), response.read())
    except urllib.error.HTTPError as error:
        with error:
            return _classify(error.code, error.headers.get("Retry-After"), error.read())
    except (OSError, http.client.HTTPException) as error:
        # URLError, timeouts, refused/reset connections, truncated responses: all transient.
        return Outcome("retry", reason=f"{type(error).__name__}: {error}")


def _classify(status: int, retry_after: str | None, raw: bytes) -> Outcome:
    body = _json(raw)
    if 200 <= status < 300:
        skipped = body.get("skipped") if isinstance(body, dict) else None
        return Outcome("accepted", status=status, skipped=skipped if isinstance(skipped, int) else 0)
    error = body.get("error") if isinstance(body, dict) else None
    error = error if isinstance(error, dict) else {}
    code = error.get("code")
    message = error.get("message")
    # A retried failure keeps the API's code too: when retries run out, `rate_limited` and
    # `quota_exceeded` (the month's events are used up) call for different actions.
    return Outcome(
        "retry" if is_retryable_status(status) else "too_large" if status == 413 else "rejected",
        reason=message if isinstance(message, str) else f"HTTP {status}",
        status=status,
        retry_after=parse_retry_after(retry_after, time.time()) if is_retryable_status(status) else None,
        code=code if isinstance(code, str) else None,
        details=error.get("details"),
    )


def _json(raw: bytes) -> Any:
    try:
        return json.loads(raw)
    except ValueError:
        return None
