"""`POST /api/ingestion/shopify/<tenant_slug>/` (the `shopify_webhook` function).

Nothing is published unless the HMAC of the exact raw bytes matches the tenant's secret. Every refusal
is the same 401 so the endpoint does not reveal which tenants exist or have Shopify configured.
Dedupe: the event's `message_id` is `shopify:<sha256 of topic and raw body>`. Only the body is signed:
an id taken from a header (X-Shopify-Event-Id) would let anyone holding one signed body store it again
under fresh ids. The topic is in the digest because one order can fire two topics with one body.
"""

from __future__ import annotations

import hashlib
import logging
from typing import Any

import orjson
from pydantic import BaseModel

from segops import clock
from segops.cache.base import CacheUnavailable
from segops.errors import QuotaExceeded, Unauthorized
from segops.http.requests import read_body
from segops.http.routes import RequestContext, Router
from segops.ingestion.error_log import ErrorRecord, record_errors
from segops.ingestion.events import MAX_PAYLOAD_BYTES, Rejection, Stamp, validate_event
from segops.ingestion.intake import publish_events
from segops.runtime import Runtime
from segops.shopify.integration import load_integration, webhook_secret
from segops.shopify.mapping import MappedEvent, Unmapped, fit_line_items, map_webhook
from segops.shopify.signature import verify
from segops.store import keys
from segops.tenancy import service

log = logging.getLogger("segops.shopify")
router = Router("/api/ingestion/shopify", auth=(), role=None)

SOURCE = "shopify"
MAX_WEBHOOK_BYTES = 1024 * 1024
# A wrong secret makes Shopify retry for hours; one error row per tenant per minute is enough to see it.
BAD_SIGNATURE_RECORD_SECONDS = 60.0


class WebhookReceived(BaseModel):
    received: bool
    queued: int


class OrderOwner(BaseModel):
    """Refund webhooks carry no customer: the order's owner is remembered when the order arrives."""

    user_id: str


def _refuse() -> Unauthorized:
    return Unauthorized("webhook signature could not be verified")


def _authenticate(ctx: RequestContext, raw: bytes) -> int:
    tenant = service.tenant_by_slug(ctx.runtime, str(ctx.path_params["tenant_slug"]).lower())
    if tenant is None:
        raise _refuse()
    # The document says whether a secret is set: unknown tenants cost no Secret Manager read.
    integration = load_integration(ctx.runtime, tenant.id)
    secret = webhook_secret(ctx.runtime, tenant.id) if integration is not None else None
    signature = ctx.request.headers.get("X-Shopify-Hmac-SHA256")
    if secret is None or not verify(secret, raw, signature):
        try:
            first = ctx.runtime.cache.add(f"shopify-bad-signature:{tenant.id}", b"1", BAD_SIGNATURE_RECORD_SECONDS)
        except CacheUnavailable:
            first = False  # the record is rate-limited through the cache: none while it is down, still a 401
        if first:  # not a refused event on the tenant's bill: anyone can post an unsigned body
            record_errors(
                ctx.runtime,
                tenant.id,
                SOURCE,
                [ErrorRecord("shopify_bad_signature", _signature_problem(ctx, secret is not None))],
                metered=False,
            )
        raise _refuse()
    return tenant.id


def _signature_problem(ctx: RequestContext, configured: bool) -> str:
    if not configured:
        return "webhook refused: no Shopify secret is set for this tenant"
    if not ctx.request.headers.get("X-Shopify-Hmac-SHA256"):
        return "webhook refused: missing X-Shopify-Hmac-SHA256 header"
    return "webhook refused: X-Shopify-Hmac-SHA256 does not match the body and the configured secret"


def dedupe_id(topic: str, raw: bytes) -> str:
    return "shopify:" + hashlib.sha256(topic.encode() + b"\n" + raw).hexdigest()


def _resolve_user(runtime: Runtime, tenant_id: int, mapped: MappedEvent) -> str | None:
    if mapped.user_id is not None or mapped.order_id is None:
        return mapped.user_id
    owner = runtime.documents.load(keys.shopify_order_owner_key(tenant_id, mapped.order_id), OrderOwner)
    return owner.user_id if owner else None


def receive_webhook(ctx: RequestContext, tenant_id: int, raw: bytes) -> int:
    """Map and queue one verified webhook; returns how many events were queued (0 or 1)."""
    runtime = ctx.runtime
    topic = (ctx.request.headers.get("X-Shopify-Topic") or "").strip()
    stamp = Stamp(tenant_id, clock.now(), SOURCE)
    try:
        body: Any = orjson.loads(raw)
    except orjson.JSONDecodeError:
        body = None
    mapped = map_webhook(topic, body, ctx.request.headers.get("X-Shopify-Triggered-At"))
    if isinstance(mapped, Unmapped):
        record_errors(runtime, tenant_id, SOURCE, [ErrorRecord(mapped.error_type, mapped.detail)], stamp.received_at)
        return 0
    user_id = _resolve_user(runtime, tenant_id, mapped)
    if user_id is None:
        detail = f"topic {topic}: no customer id or email (order {mapped.order_id or 'unknown'}); not stored"
        record_errors(runtime, tenant_id, SOURCE, [ErrorRecord("shopify_unknown_customer", detail)], stamp.received_at)
        return 0
    # An order of a few hundred items maps past the event payload bound: it keeps the items that fit.
    payload = fit_line_items(mapped.payload, MAX_PAYLOAD_BYTES)
    candidate = {"user_id": user_id, "event_type": mapped.event_type, "payload": payload}
    if mapped.occurred_at is not None:
        candidate["occurred_at"] = mapped.occurred_at
    candidate["message_id"] = dedupe_id(topic, raw)
    # The order's owner is remembered first: its refunds find their customer even if this event is refused.
    if mapped.order_id is not None and mapped.user_id is not None:
        runtime.documents.save(
            keys.shopify_order_owner_key(tenant_id, mapped.order_id), OrderOwner(user_id=mapped.user_id)
        )
    checked = validate_event(candidate, stamp)
    if isinstance(checked, Rejection):
        record_errors(runtime, tenant_id, SOURCE, [ErrorRecord(checked.error_type, f"topic {topic}: {checked.detail}")])
        return 0
    try:
        publish_events(runtime, tenant_id, [checked], SOURCE)
    except QuotaExceeded:
        # Recorded (`quota_exceeded`) and acknowledged, not a 429: Shopify retries a failed webhook 8 times
        # over ~4 hours and then deletes a subscription made through its Admin API, so a month over quota
        # would cost the tenant its integration for the months after.
        return 0
    return 1


# Not an HTTP authentication scheme a client negotiates: the request is authenticated by its body's
# HMAC in X-Shopify-Hmac-Sha256, which the 401 names instead of Bearer/ApiKey.
SIGNATURE_CHALLENGE = 'X-Shopify-Hmac-Sha256 realm="segops"'


@router.post("/<tenant_slug>/", stream_body=True, response=WebhookReceived, challenge=SIGNATURE_CHALLENGE)
def shopify_webhook(ctx: RequestContext) -> WebhookReceived:
    """Receive a Shopify webhook (HMAC-SHA256 of the raw body in X-Shopify-Hmac-SHA256)."""
    raw = read_body(ctx, MAX_WEBHOOK_BYTES)
    tenant_id = _authenticate(ctx, raw)
    queued = receive_webhook(ctx, tenant_id, raw)
    log.info(
        "shopify webhook",
        extra={"tenant_id": tenant_id, "topic": ctx.request.headers.get("X-Shopify-Topic", ""), "queued": queued},
    )
    return WebhookReceived(received=True, queued=queued)
