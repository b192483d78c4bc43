"""One POST of a batch to the ingestion API, classified into what the client should do next."""

from __future__ import annotations

import http.client
import json
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from typing import Any, Literal

from segops_sdk.retry import RETRY_AFTER_MAX, is_retryable, is_retryable_status, parse_retry_after

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
    code = code if isinstance(code, str) else None
    message = error.get("message")
    reason = message if isinstance(message, str) else f"HTTP {status}"
    delay = parse_retry_after(retry_after, time.time()) if is_retryable_status(status) else None
    if is_retryable(status, code, delay):
        # A retried failure keeps the API's code too: when retries run out, `rate_limited` means slow down.
        outcome_type: OutcomeType = "retry"
    elif status == 413:
        outcome_type = "too_large"
    else:
        # Also a 429 `quota_exceeded` (the month's events are used up) and a 429/503 asking to wait
        # longer than the SDK ever waits: rejected at once, with the API's code, and the batch dropped.
        outcome_type = "rejected"
        if delay is not None and delay > RETRY_AFTER_MAX:
            reason += f" (Retry-After {delay:.0f} s is beyond the SDK's {RETRY_AFTER_MAX:.0f} s limit)"
    return Outcome(
        outcome_type,
        reason=reason,
        status=status,
        retry_after=delay,
        code=code,
        details=error.get("details"),
    )


def _json(raw: bytes) -> Any:
    try:
        return json.loads(raw)
    except ValueError:
        return None
