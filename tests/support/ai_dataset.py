"""A generated tenant for the AI builder's evaluation: varied behaviour, so that two definitions that
differ in meaning almost always select different users."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from typing import Any

from tests.support.dsl_reference import Event

NOW = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)
USERS = 400
PATHS = ["/pricing", "/blog", "/docs", "/features", "/home", "/careers"]
CAMPAIGNS = ["welcome", "promo", "newsletter"]
CATEGORIES = ["shoes", "shirts", "hats"]
PLANS = ["free", "starter", "pro", "business"]
COUNTRIES = ["US", "DE", "FR", "GB"]
# (event type, how many a busy user does over 120 days)
BEHAVIOUR = {
    "page_viewed": 14,
    "email_opened": 8,
    "email_clicked": 3,
    "user_logged_in": 10,
    "order_placed": 3,
    "cart_item_added": 4,
    "subscription_cancelled": 0.3,
    "signed_up": 1,
}


def _payload(rng: random.Random, event_type: str, n: int) -> dict[str, Any]:
    if event_type == "page_viewed":
        return {"path": rng.choice(PATHS)}
    if event_type in ("email_opened", "email_clicked"):
        return {"campaign": rng.choice(CAMPAIGNS)}
    if event_type == "order_placed":
        return {
            "order_id": f"ord-{n}",
            "total": round(rng.choice([rng.uniform(5, 80), rng.uniform(40, 400), rng.uniform(200, 900)]), 2),
            "currency": rng.choice(["USD", "USD", "EUR", "GBP"]),
            "items": rng.randint(1, 6),
        }
    if event_type == "cart_item_added":
        return {"category": rng.choice(CATEGORIES), "sku": f"sku-{n}"}
    if event_type == "signed_up":
        return {"source": rng.choice(["ads", "organic", "referral"])}
    return {}


def events(seed: int = 16) -> list[Event]:
    """Every event of the tenant: each user has properties and a random mix of behaviour over 120 days."""
    rng = random.Random(seed)
    found: list[Event] = []
    n = 0
    for u in range(USERS):
        user = f"u{u:04d}"
        activity = rng.choice([0.0, 0.2, 0.6, 1.0, 1.6])
        horizon = rng.choice([10, 30, 60, 120])  # how far back this user's activity reaches
        domain = rng.choice(["gmail.com", "acme.io", "example.com"])
        props: dict[str, Any] = {"email": f"{user}@{domain}", "plan": rng.choice(PLANS)}
        if rng.random() < 0.8:
            props["company_size"] = rng.choice([1, 5, 10, 25, 50, 120, 500, 2000])
        if rng.random() < 0.7:
            props["country"] = rng.choice(COUNTRIES)
        if rng.random() < 0.5:
            props["vip"] = rng.random() < 0.4
        identified = NOW - timedelta(days=rng.uniform(1, 200))
        found.append(Event(user, "context_identified", identified, identified, props))
        for event_type, busy in BEHAVIOUR.items():
            count = max(0, round(rng.gauss(busy * activity, busy * activity / 2 + 0.3)))
            for _ in range(count):
                n += 1
                at = NOW - timedelta(days=rng.uniform(0, horizon), seconds=rng.randint(0, 3600))
                found.append(Event(user, event_type, at, at, _payload(rng, event_type, n)))
    return found
