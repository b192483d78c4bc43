from __future__ import annotations

from segops.localstack import LocalStack

from tests.support.api import Api, assert_error


def test_walkthrough_signup_token_key_health(stack: LocalStack) -> None:
    # GIVEN a fresh stack
    api = Api(stack)
    # WHEN a user signs up, logs in and creates a key
    account = api.signup(slug="acme")
    token = api.post("/api/auth/token/", {"email": account.email, "password": account.password})
    # THEN the token works and health reports every dependency
    assert token.status_code == 200
    assert set(token.get_json()) == {"access", "refresh", "expires_in"}
    tenants = api.get("/api/tenants/", headers={"Authorization": f"Bearer {token.get_json()['access']}"})
    assert tenants.get_json()["results"][0]["slug"] == "acme"
    health = api.get("/api/ingestion/health/")
    assert health.status_code == 200
    assert health.get_json() == {"pubsub_topic": "ok", "worker": "ok", "clickhouse": "ok"}


def test_unknown_path_is_json_404(stack: LocalStack) -> None:
    assert_error(Api(stack).get("/api/nope/"), 404, "not_found")
