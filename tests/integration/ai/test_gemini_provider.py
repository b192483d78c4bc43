"""The Gemini provider: the real `google-genai` client against an in-test `generateContent` endpoint."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from segops.ai.gemini import response_schema
from segops.config import Settings
from segops.localstack import LocalStack

from tests.integration.ai.test_draft_api import DRAFT, shop
from tests.support.api import Api, assert_error
from tests.support.gemini import TOKEN, GeminiServer, serve_gemini

PRICING = {
    "logic": "AND",
    "conditions": [
        {
            "type": "event_count",
            "event_type": "page_viewed",
            "operator": "gte",
            "value": 2,
            "where": [{"property": "path", "operator": "eq", "value": "/pricing"}],
        }
    ],
}
GOOD = json.dumps({"definition": PRICING, "warnings": ["read 'often' as at least 2 times"]})


@pytest.fixture
def gemini(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[GeminiServer]:
    """GIVEN a Vertex AI endpoint and application default credentials that refresh against it"""
    for server in serve_gemini():
        monkeypatch.setenv("GOOGLE_APPLICATION_CREDENTIALS", str(server.credentials_file(tmp_path)))
        yield server


@pytest.fixture
def gemini_stack(settings: Settings, gemini: GeminiServer) -> Iterator[LocalStack]:
    configured = settings.model_copy(
        update={
            "ai_provider": "gemini",
            "gemini_project": "proj-x",
            "gemini_location": "europe-west4",
            "gemini_model": "gemini-test",
            "gemini_base_url": gemini.url,
            "ai_timeout_seconds": 1.0,
        }
    )
    local = LocalStack(configured)
    try:
        yield local
    finally:
        local.stop()


def test_a_good_answer_becomes_the_draft(gemini_stack: LocalStack, gemini: GeminiServer) -> None:
    api = Api(gemini_stack)
    account = api.signup()
    shop(gemini_stack, account)
    gemini.answers.append(GOOD)
    # WHEN a prompt is drafted by the Gemini provider
    response = api.post(DRAFT, {"prompt": "looked at pricing often"}, headers=account.bearer)
    # THEN the validated answer, its warnings and an explanation come back
    assert response.status_code == 200, response.get_data(as_text=True)
    body = response.get_json()
    assert body["provider"] == "gemini"
    assert body["definition"] == PRICING
    assert body["warnings"] == ["read 'often' as at least 2 times"]
    assert body["explanation"] == ['did page_viewed at least 2 times where path is "/pricing"']
    # AND the request is the Vertex AI generateContent contract: the model's path, the service
    # account's bearer token, structured output with the DSL's JSON schema, the tenant vocabulary
    [request] = gemini.requests
    assert request["path"] == (
        "/v1beta1/projects/proj-x/locations/europe-west4/publishers/google/models/gemini-test:generateContent"
    )
    assert request["authorization"] == f"Bearer {TOKEN}"
    # (the service account's signed JWT exchanged for that token, RFC 7523)
    assert "grant-type%3Ajwt-bearer" in gemini.token_requests[0]
    sent = request["json"]
    assert sent["generationConfig"]["responseMimeType"] == "application/json"
    assert sent["generationConfig"]["responseJsonSchema"] == response_schema()
    assert "SegOps DSL" in sent["systemInstruction"]["parts"][0]["text"]
    [content] = sent["contents"]
    assert content["role"] == "user"
    text = content["parts"][0]["text"]
    assert "looked at pricing often" in text
    vocabulary = json.loads(text.split("Tenant vocabulary (JSON):\n")[1].split("\n\n")[0])
    assert set(vocabulary["event_types"]) == {"page_viewed", "order_placed"}
    assert vocabulary["event_types"]["page_viewed"]["path"]["values"] == ["/pricing"]
    assert set(vocabulary["user_properties"]) == {"plan"}


def test_a_malformed_answer_is_repaired_with_its_validation_errors(
    gemini_stack: LocalStack, gemini: GeminiServer
) -> None:
    api = Api(gemini_stack)
    account = api.signup()
    shop(gemini_stack, account)
    wrong = {"logic": "AND", "conditions": [{**PRICING["conditions"][0], "operator": "at_least"}]}
    gemini.answers += [json.dumps({"definition": wrong}), GOOD]
    response = api.post(DRAFT, {"prompt": "looked at pricing often"}, headers=account.bearer)
    assert response.status_code == 200, response.get_data(as_text=True)
    assert response.get_json()["definition"] == PRICING
    # the second request replays the conversation with the errors pointing at the bad field
    _, second = gemini.requests
    assert [c["role"] for c in second["json"]["contents"]] == ["user", "model", "user"]
    assert second["json"]["contents"][1]["parts"][0]["text"] == json.dumps({"definition": wrong})
    assert "/definition/conditions/0/operator" in second["json"]["contents"][2]["parts"][0]["text"]


def test_two_invalid_answers_and_a_timeout_are_503(gemini_stack: LocalStack, gemini: GeminiServer) -> None:
    api = Api(gemini_stack)
    account = api.signup()
    shop(gemini_stack, account)
    gemini.answers += ["not json", json.dumps({"definition": {"logic": "XOR", "conditions": []}})]
    error = assert_error(api.post(DRAFT, {"prompt": "pricing"}, headers=account.bearer), 503, "service_unavailable")
    assert error["details"]["errors"][0]["pointer"].startswith("/definition")
    gemini.answers.append(2.0)  # longer than the 1 s timeout
    assert_error(api.post(DRAFT, {"prompt": "pricing"}, headers=account.bearer), 503, "service_unavailable")
