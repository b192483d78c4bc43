"""Bad input gets the one JSON error shape; OpenAPI covers every route; the manifest matches the code."""

from __future__ import annotations

import ast
import io
import re

import pytest
from segops.catalog import HTTP_FUNCTIONS, routers
from segops.http.requests import MAX_BODY_DEPTH
from segops.localstack import LocalStack
from segops.manifest import HttpTrigger, PubSubTrigger, load_manifest, route_for

from tests.support.api import Api, assert_error

SIGNUP = "/api/auth/signup/"
VALID_SIGNUP = {"email": "a@example.com", "password": "correct horse battery", "tenant_slug": "acme"}


@pytest.fixture
def api(stack: LocalStack) -> Api:
    return Api(stack)


# -- bad input ---------------------------------------------------------------------------------------


def test_non_json_body_is_400(api: Api) -> None:
    response = api.post(SIGNUP, data=b"{not json", content_type="application/json")
    assert_error(response, 400, "validation_failed")


def test_json_that_is_not_an_object_is_400_with_pointer(api: Api) -> None:
    error = assert_error(api.post(SIGNUP, json=[1, 2]), 400, "validation_failed")
    assert error["details"]["errors"][0]["pointer"] == ""


def test_a_body_nested_too_deep_is_400_not_a_crash(api: Api) -> None:
    # 300 levels parse (orjson reads 1,024) but could not be written back (orjson writes 254)
    body = '{"email": ' + "[" * 300 + "]" * 300 + "}"
    error = assert_error(
        api.post(SIGNUP, data=body.encode(), content_type="application/json"), 400, "validation_failed"
    )
    assert error["details"]["errors"] == [
        {
            "pointer": "",
            "message": f"body nests more than {MAX_BODY_DEPTH} levels of objects and arrays",
            "type": "too_deep",
        }
    ]
    # AND past what the JSON reader takes (1,024 levels) it is the same answer, not "not valid JSON"
    deeper = '{"email": ' + "[" * 1100 + "]" * 1100 + "}"
    error = assert_error(api.post(SIGNUP, data=deeper.encode(), content_type="application/json"), 400)
    assert [e["type"] for e in error["details"]["errors"]] == ["too_deep"]
    # At the bound the body is read, and judged by its model
    shallow = '{"email": ' + "[" * (MAX_BODY_DEPTH - 1) + "]" * (MAX_BODY_DEPTH - 1) + "}"
    error = assert_error(api.post(SIGNUP, data=shallow.encode(), content_type="application/json"), 400)
    assert {e["pointer"] for e in error["details"]["errors"]} >= {"/email"}


def test_a_body_that_is_not_utf8_is_named_so_at_its_byte(api: Api) -> None:
    body = b'{"email": "a\xff@example.com"}'
    error = assert_error(api.post(SIGNUP, data=body, content_type="application/json"), 400, "validation_failed")
    assert (error["message"], error["details"]["position"]) == ("body is not valid UTF-8 (at byte 12)", 12)
    assert error["details"]["errors"] == [{"pointer": "", "message": "not valid UTF-8", "type": "json_invalid"}]


def test_a_byte_order_mark_is_skipped_and_a_lone_surrogate_read_as_replacement(api: Api) -> None:
    # A signup body as .NET writes it (a UTF-8 byte order mark first) is read, and judged by its model
    body = b'\xef\xbb\xbf{"email": "a@example.com", "password": "correct horse battery", "tenant_slug": "a\\ud800"}'
    error = assert_error(api.post(SIGNUP, data=body, content_type="application/json"), 400, "validation_failed")
    # THEN the lone surrogate reached the model as U+FFFD, which the slug's rules refuse at its field
    assert "/tenant_slug" in {e["pointer"] for e in error["details"]["errors"]}
    # AND past the mark, a position still counts the bytes as sent
    broken = b'\xef\xbb\xbf{"email": x}'
    error = assert_error(api.post(SIGNUP, data=broken, content_type="application/json"), 400, "validation_failed")
    assert (error["message"], error["details"]["position"]) == ("body is not valid JSON (at byte 13)", 13)


def test_empty_body_is_400(api: Api) -> None:
    assert_error(api.post(SIGNUP, data=b"", content_type="application/json"), 400, "validation_failed")


@pytest.mark.parametrize("content_type", ["text/plain", "application/x-www-form-urlencoded", "application/xml"])
def test_wrong_content_type_is_415(api: Api, content_type: str) -> None:
    response = api.post(SIGNUP, data=b'{"email": "a@example.com"}', content_type=content_type)
    error = assert_error(response, 415, "unsupported_media_type")
    assert error["details"]["content_type"] == content_type


def test_unknown_fields_are_rejected_with_their_pointer(api: Api) -> None:
    error = assert_error(api.post(SIGNUP, json={**VALID_SIGNUP, "is_admin": True}), 400, "validation_failed")
    assert {"pointer": "/is_admin", "type": "extra_forbidden"}.items() <= error["details"]["errors"][0].items()


def test_field_errors_carry_json_pointers(api: Api) -> None:
    error = assert_error(
        api.post(SIGNUP, json={"email": "not-an-email", "password": "short", "tenant_slug": "acme"}),
        400,
        "validation_failed",
    )
    assert {e["pointer"] for e in error["details"]["errors"]} == {"/email", "/password"}


def test_oversized_body_is_413(api: Api, stack: LocalStack) -> None:
    limit = stack.settings.max_body_bytes
    huge = b'{"email": "' + b"a" * limit + b'"}'
    error = assert_error(api.post(SIGNUP, data=huge, content_type="application/json"), 413, "payload_too_large")
    assert error["details"]["limit"] == limit


def test_oversized_body_without_content_length_is_413(api: Api, stack: LocalStack) -> None:
    # A chunked upload announces no length: the limit is enforced while reading.
    body = io.BytesIO(b'{"email": "' + b"a" * stack.settings.max_body_bytes + b'"}')
    response = api.client.post(
        SIGNUP,
        input_stream=body,
        content_type="application/json",
        headers={"Transfer-Encoding": "chunked"},
        environ_overrides={"wsgi.input_terminated": True},  # as gunicorn and werkzeug's server set it
    )
    assert response.request.content_length is None
    assert_error(response, 413, "payload_too_large")


@pytest.mark.parametrize(("method", "path"), [("GET", SIGNUP), ("PUT", "/api/auth/token/"), ("DELETE", "/api/keys/")])
def test_wrong_method_is_405_with_allowed_methods(api: Api, method: str, path: str) -> None:
    error = assert_error(api.request(method, path), 405, "method_not_allowed")
    assert error["details"]["allowed"]


def test_unknown_path_is_404(api: Api) -> None:
    assert_error(api.get("/api/auth/nope/"), 404, "not_found")
    assert_error(api.get("/nowhere"), 404, "not_found")


@pytest.mark.parametrize(
    ("method", "path", "meant"),
    [
        ("GET", "/api/keys", "/api/keys/"),
        ("POST", "/api/auth/signup", "/api/auth/signup/"),
        # a path the api function gets, meant for another function (manifest: track's exact route)
        ("POST", "/api/ingestion/track", "/api/ingestion/track/"),
        ("POST", "/api/ingestion/track/batch", "/api/ingestion/track/batch/"),
        # one slash too many, where routes have none (Segment's paths)
        ("POST", "/v1/track/", "/v1/track"),
    ],
)
def test_a_path_off_by_its_trailing_slash_is_404_with_a_hint(api: Api, method: str, path: str, meant: str) -> None:
    error = assert_error(api.request(method, path, json={}), 404, "not_found")
    assert error["details"] == {"did_you_mean": meant}


def test_answers_are_never_stored_by_caches(api: Api) -> None:
    # Tokens (RFC 6749 §5.1), keys and a tenant's data: every answer, error or not, says no-store
    account = api.signup()
    token = api.post("/api/auth/token/", {"email": account.email, "password": account.password})
    assert token.status_code == 200 and token.headers["Cache-Control"] == "no-store"
    for response in (api.get("/api/segments/", headers=account.bearer), api.get("/api/auth/nope/")):
        assert response.headers["Cache-Control"] == "no-store"


def test_every_error_carries_a_request_id(api: Api) -> None:
    response = api.post(SIGNUP, data=b"x", content_type="text/plain", headers={"X-Request-Id": "req-123"})
    assert response.headers["X-Request-Id"] == "req-123"
    assert api.get("/api/auth/nope/").headers["X-Request-Id"]


# -- OpenAPI -----------------------------------------------------------------------------------------


def test_openapi_document_is_valid_31_and_lists_every_route(api: Api) -> None:
    response = api.get("/api/openapi.json")
    assert response.status_code == 200
    assert response.mimetype == "application/json"
    document = response.get_json()
    assert document["openapi"].startswith("3.1")
    assert {"title", "version"} <= set(document["info"])
    schemas = document["components"]["schemas"]
    assert "Error" in schemas
    for function in HTTP_FUNCTIONS:
        for router in routers(function):
            for route in router.routes:
                path = re.sub(r"<(?:\w+:)?(\w+)>", r"{\1}", route.path)
                assert path in document["paths"], path
                operation = document["paths"][path][route.method.lower()]
                assert operation["x-segops-function"] == function
                assert str(route.status) in operation["responses"]
                assert "default" in operation["responses"]
                for name in re.findall(r"\{(\w+)\}", path):
                    assert any(p["name"] == name and p["in"] == "path" for p in operation.get("parameters", []))
                # every name a query field takes, aliases included (`type` and `segment_type` on the list)
                if route.query is not None:
                    documented = {p["name"] for p in operation.get("parameters", []) if p["in"] == "query"}
                    for name, field in route.query.model_fields.items():
                        taken = field.validation_alias or field.alias or name
                        choices = getattr(taken, "choices", [taken])
                        assert {c for c in choices if isinstance(c, str)} <= documented, (path, name)
    # every $ref resolves
    for ref in re.findall(r'"\$ref":\s*"#/components/schemas/([^"]+)"', response.get_data(as_text=True)):
        assert ref in schemas, ref
    operation_ids = [op["operationId"] for item in document["paths"].values() for op in item.values()]
    assert len(operation_ids) == len(set(operation_ids))


# -- manifest ----------------------------------------------------------------------------------------


def test_every_manifest_function_has_its_entry_point() -> None:
    manifest = load_manifest()
    names = [f.name for f in manifest.functions]
    assert len(names) == len(set(names))
    for spec in manifest.functions:
        assert spec.source.is_file(), spec.source
        tree = ast.parse(spec.source.read_text())
        defined = {node.name for node in tree.body if isinstance(node, ast.FunctionDef)}
        assert spec.entry_point in defined, f"{spec.name}: {spec.entry_point} not defined in {spec.source}"


def test_every_http_route_reaches_its_own_function() -> None:
    manifest = load_manifest()
    http_names = {f.name for f in manifest.http_functions()}
    assert set(HTTP_FUNCTIONS) <= http_names
    for function in HTTP_FUNCTIONS:
        spec = manifest.function(function)
        assert isinstance(spec.trigger, HttpTrigger)
        for router in routers(function):
            for route in router.routes:
                concrete = re.sub(r"<int:\w+>", "1", re.sub(r"<(?:string:)?\w+>", "x", route.path))
                owner = route_for(manifest, concrete)
                assert owner is not None and owner.name == function, (route.path, owner and owner.name)


def test_pubsub_functions_listen_on_declared_topics() -> None:
    manifest = load_manifest()
    for spec in manifest.pubsub_functions():
        assert isinstance(spec.trigger, PubSubTrigger)
        assert spec.trigger.topic in manifest.topics, spec.name
    for spec in manifest.functions:
        assert set(spec.publishes) <= set(manifest.topics), spec.name
    for schedule in manifest.schedules:
        assert schedule.topic in manifest.topics, schedule.name


def test_a_route_that_takes_no_body_refuses_fields_it_would_ignore(api: Api) -> None:
    # GIVEN a segment, and a client that puts the compute's mode in the body (the route reads ?mode=)
    account = api.signup()
    visited = {
        "logic": "AND",
        "conditions": [{"type": "event_count", "event_type": "v", "operator": "gte", "value": 1}],
    }
    segment = api.post("/api/segments/", {"name": "S", "definition": visited}, headers=account.bearer).get_json()
    path = f"/api/segments/{segment['id']}/compute/"
    # THEN the field is refused by name rather than a full compute quietly queued
    error = assert_error(api.post(path, {"mode": "delta"}, headers=account.bearer), 400, "validation_failed")
    assert error["details"]["errors"] == [
        {"pointer": "/mode", "message": "this endpoint takes no body", "type": "extra_forbidden"}
    ]
    assert_error(api.post(path, [1], headers=account.bearer), 400, "validation_failed")
    # AND no body, an empty object, or only the tenant are what the route takes
    for body in (None, {}, {"tenant": account.tenant_id}):
        assert api.post(path, body, headers=account.bearer).status_code == 202, body
