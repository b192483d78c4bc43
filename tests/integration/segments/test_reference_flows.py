"""The public docs, replayed verbatim over HTTP: `reference/quickstart.txt` (curl flow) and every request
of `reference/segments-api.txt` (host replaced, placeholders such as `$JWT`, ids and `[...]` filled)."""

from __future__ import annotations

import io
from datetime import UTC, datetime, timedelta

import pyarrow.parquet as pq
from segops.localstack import LocalStack

from tests.support.api import Api
from tests.support.fixtures import load_fixture

JSON = {"Content-Type": "application/json"}


def test_quickstart_curl_flow(stack: LocalStack) -> None:
    api = Api(stack)
    owner = api.signup()  # Step 1 happens in the UI: an account and a workspace
    # 1. Obtain a JWT token
    token = api.post("/api/auth/token/", {"email": owner.email, "password": owner.password})
    assert token.status_code == 200
    jwt = {"Authorization": f"Bearer {token.get_json()['access']}"}
    # 2. API key from Settings → API Keys
    api_key = {"Authorization": f"ApiKey {owner.api_key}"}
    # 3. Send an event
    sent = api.post(
        "/api/ingestion/track/",
        {"user_id": "user-123", "event_type": "page_viewed", "payload": {"path": "/pricing"}},
        headers=api_key,
    )
    assert sent.status_code == 202 and sent.get_json() == {"queued": True}
    stack.bus.drain()
    # 4. Create + define a segment
    created = api.post(
        "/api/segments/",
        {"name": "Pricing Visitors", "tenant": owner.tenant_id, "segment_type": "rule"},
        headers=jwt,
    )
    assert created.status_code == 201
    segment = created.get_json()
    assert segment["name"] == "Pricing Visitors" and isinstance(segment["id"], int)
    defined = api.patch(
        f"/api/segments/{segment['id']}/",
        {"definition": load_fixture("segments/page-viewers")},
        headers=jwt,
    )
    assert defined.status_code == 200 and defined.get_json()["version"] == 1
    # 5. Trigger compute
    queued = api.post(f"/api/segments/{segment['id']}/compute/", headers=jwt)
    assert queued.status_code == 202 and queued.get_json() == {"status": "queued"}
    stack.bus.drain()
    # 6. Check membership
    lookup = api.get("/api/segments/membership/?user_id=user-123", headers=api_key)
    assert lookup.status_code == 200
    assert lookup.get_json() == {"user_id": "user-123", "segment_ids": [segment["id"]], "cached": False}
    again = api.get("/api/segments/membership/?user_id=user-123", headers=api_key).get_json()
    assert again == {"user_id": "user-123", "segment_ids": [segment["id"]], "cached": True}
    # AND the segment now reports its compute
    shown = api.get(f"/api/segments/{segment['id']}/", headers=jwt).get_json()
    assert shown["compute_status"] == "succeeded" and shown["member_count"] == 1 and shown["last_computed_at"]


def test_every_segments_api_example(stack: LocalStack) -> None:
    api = Api(stack)
    owner = api.signup()
    jwt = owner.bearer
    # GIVEN two big spenders last seen 40 days ago and a small one, sent through the ingestion API
    occurred = (datetime.now(UTC) - timedelta(days=40)).isoformat()
    for user, total in (("user-001", 600), ("user-002", 520), ("user-003", 100)):
        for body in (
            {"user_id": user, "event_type": "order_placed", "payload": {"total": total, "currency": "USD"}},
            {"user_id": user, "event_type": "page_viewed", "payload": {"path": "/"}},
        ):
            sent = api.post("/api/ingestion/track/", {**body, "occurred_at": occurred}, headers=owner.key)
            assert sent.status_code == 202
    stack.bus.drain()

    # Create a Segment
    created = api.post(
        "/api/segments/",
        {
            "name": "High-Value Churners",
            "tenant": owner.tenant_id,
            "segment_type": "rule",
            "description": "Users who spent ≥$500 but haven't returned in 30 days",
        },
        headers={**jwt, **JSON},
    )
    assert created.status_code == 201
    seg = created.get_json()["id"]
    # List Segments / Get a Segment
    listed = api.get("/api/segments/", headers=jwt).get_json()
    assert [s["id"] for s in listed["results"]] == [seg]
    assert api.get(f"/api/segments/{seg}/", headers=jwt).get_json()["description"].endswith("in 30 days")
    # Update a Segment Definition
    churners = load_fixture("segments/high-value-churn-risk")
    assert api.patch(f"/api/segments/{seg}/", {"definition": churners}, headers=jwt).status_code == 200
    # Preview a Segment (the doc's `[...]` filled with the definition above)
    preview = api.post("/api/segments/preview/", {"definition": churners, "limit": 10}, headers=jwt)
    assert preview.status_code == 200
    assert preview.get_json()["matched_users"] == 2
    assert preview.get_json()["sample_user_ids"] == ["user-001", "user-002"]
    assert "{tenant_id:UInt64}" in preview.get_json()["sql"]
    # Compute Membership
    queued = api.post(f"/api/segments/{seg}/compute/", headers=jwt)
    assert queued.status_code == 202 and queued.get_json() == {"status": "queued"}
    stack.bus.drain()
    # Delivery API: per-user membership check
    check = api.get("/api/segments/membership/?user_id=user-001", headers=owner.key).get_json()
    assert check["user_id"] == "user-001" and check["segment_ids"] == [seg] and isinstance(check["cached"], bool)
    # Paginated member list
    members = api.get(f"/api/segments/{seg}/members/?limit=1000", headers=jwt).get_json()
    assert [r["user_id"] for r in members["results"]] == ["user-001", "user-002"]
    assert members["count"] == 2 and members["next_cursor"] is None
    # Bulk export: start, poll, download
    started = api.post(f"/api/segments/{seg}/export/", {"format": "parquet"}, headers={**jwt, **JSON})
    assert started.status_code == 202
    export_id = started.get_json()["export_id"]
    stack.bus.drain()
    poll = api.get(f"/api/segments/{seg}/export/?export_id={export_id}", headers=jwt).get_json()
    assert poll["status"] == "succeeded" and poll["row_count"] == 2
    download = api.get(f"/api/segments/exports/{export_id}/download/", headers=jwt, follow_redirects=True)
    assert download.status_code == 200
    assert pq.read_table(io.BytesIO(download.get_data())).column("user_id").to_pylist() == ["user-001", "user-002"]
    # Version History
    versions = api.get(f"/api/segments/{seg}/versions/", headers=jwt).get_json()["results"]
    assert [v["version"] for v in versions] == [1] and versions[0]["definition"] == churners
