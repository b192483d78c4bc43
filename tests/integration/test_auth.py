"""Auth and tenancy through HTTP, exactly as a client sees them."""

from __future__ import annotations

import base64
import threading
from datetime import timedelta
from typing import Any

import jwt
import orjson
import pytest
from flask import Flask, request
from flask.testing import FlaskClient
from segops.auth import tokens
from segops.boundary import StrictModel
from segops.http.app import HttpApp
from segops.http.routes import RequestContext, Router
from segops.localstack import LocalStack

from tests.support.api import Account, Api, assert_error


@pytest.fixture
def api(stack: LocalStack) -> Api:
    return Api(stack)


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def login(api: Api, email: str, password: str = "correct horse battery") -> dict[str, Any]:
    response = api.post("/api/auth/token/", {"email": email, "password": password})
    assert response.status_code == 200, response.get_data(as_text=True)
    return dict(response.get_json())


def member(api: Api, owner: Account, role: str, email: str | None = None) -> tuple[int, dict[str, str]]:
    """Sign up a second user, who accepts an invitation to the owner's tenant with `role`; (user id, bearer)."""
    other = api.signup(email=email)
    return _user_id(other), api.add_member(owner, other, role)


# -- credentials -------------------------------------------------------------------------------------


def test_wrong_password_and_unknown_email_are_indistinguishable(api: Api) -> None:
    account = api.signup()
    wrong = api.post("/api/auth/token/", {"email": account.email, "password": "not the password"})
    unknown = api.post("/api/auth/token/", {"email": "nobody@example.com", "password": "not the password"})
    assert_error(wrong, 401, "unauthorized")
    assert_error(unknown, 401, "unauthorized")
    assert wrong.get_json() == unknown.get_json()


def test_email_is_case_insensitive_at_login(api: Api) -> None:
    account = api.signup(email="Mixed.Case@Example.com")
    assert "access" in login(api, "mixed.case@example.com", account.password)


def test_refresh_flow(api: Api) -> None:
    # GIVEN a token pair
    pair = login(api, api.signup().email)
    # WHEN the refresh token is exchanged
    refreshed = api.post("/api/auth/token/refresh/", {"refresh": pair["refresh"]})
    # THEN a new pair comes back, its access token works and an access token cannot be used to refresh
    assert refreshed.status_code == 200
    assert set(refreshed.get_json()) == {"access", "refresh", "expires_in"}
    assert refreshed.get_json()["refresh"] != pair["refresh"]
    assert api.get("/api/tenants/", headers=bearer(refreshed.get_json()["access"])).status_code == 200
    assert_error(api.post("/api/auth/token/refresh/", {"refresh": pair["access"]}), 401, "unauthorized")


def test_refresh_token_is_not_an_access_token(api: Api) -> None:
    pair = login(api, api.signup().email)
    assert_error(api.get("/api/tenants/", headers=bearer(pair["refresh"])), 401, "unauthorized")


def test_expired_token_is_rejected(api: Api, stack: LocalStack) -> None:
    account = api.signup()
    user_id = _user_id(account)
    expired = tokens.issue(stack.runtime.jwt_secret, user_id, "access", timedelta(seconds=-5), tokens.new_id())
    error = assert_error(api.get("/api/tenants/", headers=bearer(expired)), 401, "unauthorized")
    assert "expired" in error["message"]


def _user_id(account: Account) -> int:
    return int(jwt.decode(account.access, options={"verify_signature": False})["sub"])


def test_forged_token_is_rejected(api: Api) -> None:
    account = api.signup()
    claims = jwt.decode(account.access, options={"verify_signature": False})
    forged = jwt.encode(claims, "not-the-server-secret-but-just-as-long-0123456789", algorithm="HS256")
    assert_error(api.get("/api/tenants/", headers=bearer(forged)), 401, "unauthorized")


@pytest.mark.parametrize(
    "claim",
    [{"sub": "-3"}, {"sub": "03"}, {"sub": " 3"}, {"sub": "0"}, {"sub": "3_0"}, {"sub": "٣"}, {"fam": ""}, {"jti": ""}],
)
def test_a_correctly_signed_token_with_claims_this_server_never_writes_is_401(
    api: Api, stack: LocalStack, claim: dict[str, str]
) -> None:
    # GIVEN a token signed with the server's own key (what only a leaked key could make) whose subject
    # is no user id as the server writes one, or whose session family or id is empty
    account = api.signup()
    claims = {**jwt.decode(account.access, options={"verify_signature": False}), **claim}
    made = jwt.encode(claims, stack.runtime.jwt_secret, algorithm="HS256")
    # THEN it is refused like any invalid token, never a 500 nor another user
    assert_error(api.get("/api/tenants/", headers=bearer(made)), 401, "unauthorized")


def test_alg_none_token_is_rejected(api: Api) -> None:
    account = api.signup()
    claims = jwt.decode(account.access, options={"verify_signature": False})

    def b64(data: bytes) -> str:
        return base64.urlsafe_b64encode(data).rstrip(b"=").decode()

    header = b64(orjson.dumps({"alg": "none", "typ": "JWT"}))
    unsigned = f"{header}.{b64(orjson.dumps(claims))}."
    assert_error(api.get("/api/tenants/", headers=bearer(unsigned)), 401, "unauthorized")


@pytest.mark.parametrize(
    "header",
    [
        *("", "Bearer", "Bearer ", "Basic dXNlcjpwYXNz", "Token abc", "ApiKey sk_live_short", "Bearer a.b.c"),
        *("Basic \xe9\xe9\xe9\xe9", "Basic c2tfbGl2ZV94OjE=\xe9", "Basic ####"),  # not base64, not even ASCII
    ],
)
def test_malformed_credentials_are_401(api: Api, header: str) -> None:
    response = api.get("/api/tenants/", headers={"Authorization": header} if header else {})
    assert_error(response, 401, "unauthorized")
    assert "WWW-Authenticate" in response.headers
    if header.startswith("Basic"):  # where a write key is the Basic user (Segment's clients)
        assert_error(api.post("/v1/track", {"userId": "u", "event": "e"}, headers={"Authorization": header}), 401)


def test_a_401_challenges_the_credentials_its_route_takes(api: Api) -> None:
    # (RFC 9110: WWW-Authenticate names the schemes that would be accepted there)
    def challenge(response: Any) -> str:
        assert response.status_code == 401
        return str(response.headers["WWW-Authenticate"])

    assert challenge(api.get("/api/keys/")) == 'Bearer realm="segops"'  # people only
    assert challenge(api.get("/api/segments/")) == 'Bearer realm="segops", ApiKey realm="segops"'
    assert 'Basic realm="segops"' in challenge(api.post("/v1/track", {"userId": "u", "event": "e"}))
    assert "Bearer" not in challenge(api.post("/v1/track", {"userId": "u", "event": "e"}))


# -- API keys ----------------------------------------------------------------------------------------


def test_api_key_shown_once_listed_by_prefix_and_stored_hashed(api: Api, stack: LocalStack) -> None:
    # GIVEN a freshly created key
    account = api.signup()
    created = api.post("/api/keys/", {"name": "ci", "role": "member"}, headers=account.bearer)
    assert created.status_code == 201
    assert created.headers["Cache-Control"] == "no-store"
    secret = created.get_json()["key"]
    assert secret.startswith("sk_live_") and len(secret) >= len("sk_live_") + 32
    # THEN the list shows its prefix, never the secret
    listed = api.get("/api/keys/", headers=account.bearer).get_json()["results"]
    entry = next(k for k in listed if k["id"] == created.get_json()["id"])
    assert secret.startswith(entry["prefix"]) and len(entry["prefix"]) < 20
    assert "key" not in entry
    assert secret not in orjson.dumps(listed).decode()
    # AND no file of the control-plane store contains any secret (only hashes)
    stored = b"".join(p.read_bytes() for p in stack.settings.store_dir.rglob("*") if p.is_file())
    assert secret.encode() not in stored
    assert account.api_key.encode() not in stored
    assert secret[len("sk_live_") :].encode() not in stored


class Note(StrictModel):
    text: str


probe = Router()


@probe.get("/probe/whoami/")
def whoami(ctx: RequestContext) -> dict[str, Any]:
    return {"kind": ctx.principal.kind, "tenant_id": ctx.tenant_id, "role": ctx.principal.role}


@probe.post("/probe/notes/", role="member", body=Note, status=201)
def write_note(ctx: RequestContext) -> dict[str, Any]:
    return {"tenant_id": ctx.tenant_id, "text": ctx.body.text}


probe_tenant = Router("/probe/tenants/<int:tenant_id>", tenant_from_path="tenant_id")


@probe_tenant.get("/notes/")
def tenant_notes(ctx: RequestContext) -> dict[str, Any]:
    return {"tenant_id": ctx.tenant_id}


@pytest.fixture
def keyed(stack: LocalStack) -> FlaskClient:
    """An HTTP function whose routes accept API keys (the foundation's own routes are JWT-only)."""
    app = Flask("probe")
    handler = HttpApp([probe, probe_tenant], "probe")
    app.add_url_rule("/<path:_>", view_func=lambda _: handler.handle(request), methods=["GET", "POST"])
    return app.test_client()


def key_header(secret: str) -> dict[str, str]:
    return {"Authorization": f"ApiKey {secret}"}


def test_api_key_authenticates_for_its_tenant_with_its_role(api: Api, keyed: FlaskClient) -> None:
    account = api.signup(key_role="member")
    response = keyed.get("/probe/whoami/", headers=account.key)
    assert response.get_json() == {"kind": "api_key", "tenant_id": account.tenant_id, "role": "member"}
    assert keyed.post("/probe/notes/", json={"text": "hi"}, headers=account.key).status_code == 201


def test_viewer_key_cannot_write(api: Api, keyed: FlaskClient) -> None:
    account = api.signup(key_role="viewer")
    assert keyed.get("/probe/whoami/", headers=account.key).status_code == 200
    assert_error(keyed.post("/probe/notes/", json={"text": "hi"}, headers=account.key), 403, "forbidden")


def test_revoked_key_is_rejected_immediately(api: Api, keyed: FlaskClient) -> None:
    # GIVEN a key that has just been used (so its lookup is cached)
    account = api.signup()
    assert keyed.get("/probe/whoami/", headers=account.key).status_code == 200
    [key] = api.get("/api/keys/", headers=account.bearer).get_json()["results"]
    # WHEN it is revoked
    assert api.delete(f"/api/keys/{key['id']}/", headers=account.bearer).status_code == 204
    # THEN the very next request with it fails, and it is listed as revoked
    assert_error(keyed.get("/probe/whoami/", headers=account.key), 401, "unauthorized")
    [listed] = api.get("/api/keys/", headers=account.bearer).get_json()["results"]
    assert listed["revoked_at"] is not None
    assert_error(api.delete(f"/api/keys/{key['id']}/", headers=account.bearer), 404, "not_found")


def test_key_of_tenant_a_on_tenant_b_resources_is_404(api: Api, keyed: FlaskClient) -> None:
    a = api.signup()
    b = api.signup()
    assert_error(keyed.get(f"/probe/tenants/{b.tenant_id}/notes/", headers=a.key), 404, "not_found")
    assert_error(keyed.get(f"/probe/whoami/?tenant={b.tenant_slug}", headers=a.key), 404, "not_found")
    assert_error(keyed.get("/probe/whoami/", headers={**a.key, "X-SegOps-Tenant": str(b.tenant_id)}), 404, "not_found")
    body = {"text": "x", "tenant": b.tenant_id}
    assert_error(keyed.post("/probe/notes/", json=body, headers=a.key), 404, "not_found")
    # the same key on its own tenant, named any way, is fine
    assert keyed.get(f"/probe/tenants/{a.tenant_id}/notes/", headers=a.key).status_code == 200
    assert keyed.get(f"/probe/whoami/?tenant={a.tenant_slug}", headers=a.key).status_code == 200


def test_keys_are_refused_where_only_tokens_are_accepted(api: Api) -> None:
    account = api.signup()
    assert_error(api.get(f"/api/tenants/{account.tenant_id}/", headers=account.key), 401, "unauthorized")
    assert_error(api.get("/api/keys/", headers=account.key), 401, "unauthorized")


def test_admin_of_tenant_a_cannot_touch_tenant_b(api: Api) -> None:
    a = api.signup()
    b = api.signup()
    b_key = api.post("/api/keys/", {"name": "b", "role": "member"}, headers=b.bearer).get_json()
    # unknown id in A's tenant → 404
    assert_error(api.delete(f"/api/keys/{b_key['id']}/", headers=a.bearer), 404, "not_found")
    # A's user naming B's tenant (by id, slug or header) → 404, never 403
    assert_error(api.get(f"/api/tenants/{b.tenant_id}/", headers=a.bearer), 404, "not_found")
    assert_error(api.get(f"/api/keys/?tenant={b.tenant_slug}", headers=a.bearer), 404, "not_found")
    assert_error(api.get("/api/keys/", headers={**a.bearer, "X-SegOps-Tenant": str(b.tenant_id)}), 404, "not_found")
    assert_error(api.get("/api/keys/?tenant=no-such-tenant", headers=a.bearer), 404, "not_found")
    # and B's key is untouched
    assert any(k["id"] == b_key["id"] for k in api.get("/api/keys/", headers=b.bearer).get_json()["results"])


# -- roles -------------------------------------------------------------------------------------------


def test_viewer_cannot_write(api: Api) -> None:
    owner = api.signup()
    _, viewer = member(api, owner, "viewer")
    assert api.get(f"/api/tenants/{owner.tenant_id}/", headers=viewer).status_code == 200
    assert_error(api.patch(f"/api/tenants/{owner.tenant_id}/", {"name": "x"}, headers=viewer), 403, "forbidden")
    assert_error(api.post("/api/keys/", {"name": "k"}, headers=viewer), 403, "forbidden")


def test_member_cannot_manage_keys_or_members(api: Api) -> None:
    owner = api.signup()
    _, as_member = member(api, owner, "member")
    assert_error(api.get("/api/keys/", headers=as_member), 403, "forbidden")
    assert_error(api.post("/api/keys/", {"name": "k"}, headers=as_member), 403, "forbidden")
    assert_error(
        api.post(f"/api/tenants/{owner.tenant_id}/members/", {"email": "x@example.com"}, headers=as_member),
        403,
        "forbidden",
    )


def test_admin_cannot_grant_owner_or_admin(api: Api) -> None:
    owner = api.signup()
    admin_id, admin = member(api, owner, "admin")
    members = f"/api/tenants/{owner.tenant_id}/members/"
    for role in ("owner", "admin"):
        assert_error(api.post(members, {"email": f"{role}@example.com", "role": role}, headers=admin), 403, "forbidden")
    member_id, _ = member(api, owner, "member")
    assert_error(api.patch(f"{members}{member_id}/", {"role": "admin"}, headers=admin), 403, "forbidden")
    owner_id = _user_id(owner)
    assert_error(api.patch(f"{members}{owner_id}/", {"role": "member"}, headers=admin), 403, "forbidden")
    assert_error(api.delete(f"{members}{owner_id}/", headers=admin), 403, "forbidden")
    assert_error(api.post("/api/keys/", {"name": "k", "role": "admin"}, headers=admin), 403, "forbidden")
    # but an admin manages members and viewers
    assert api.patch(f"{members}{member_id}/", {"role": "viewer"}, headers=admin).status_code == 200
    assert api.post("/api/keys/", {"name": "k", "role": "member"}, headers=admin).status_code == 201
    assert admin_id != member_id


def test_owner_can_promote_and_last_owner_cannot_leave(api: Api) -> None:
    owner = api.signup()
    members = f"/api/tenants/{owner.tenant_id}/members/"
    owner_id = _user_id(owner)
    # the only owner can neither be removed nor demoted
    assert_error(api.delete(f"{members}{owner_id}/", headers=owner.bearer), 409, "conflict")
    assert_error(api.patch(f"{members}{owner_id}/", {"role": "admin"}, headers=owner.bearer), 409, "conflict")
    # with a second owner, the first may step down
    second_id, _ = member(api, owner, "owner")
    assert api.patch(f"{members}{owner_id}/", {"role": "admin"}, headers=owner.bearer).status_code == 200
    assert second_id != owner_id


def test_user_of_several_tenants_must_pick_one(api: Api) -> None:
    owner = api.signup()
    _, headers = member(api, owner, "admin")
    without_choice = {"Authorization": headers["Authorization"]}
    error = assert_error(api.get("/api/keys/", headers=without_choice), 400, "validation_failed")
    assert error["details"]["errors"][0]["pointer"] == "/tenant"
    assert api.get(f"/api/keys/?tenant={owner.tenant_slug}", headers=without_choice).status_code == 200


# -- signup races ------------------------------------------------------------------------------------


def test_concurrent_signups_with_one_slug_exactly_one_wins(stack: LocalStack) -> None:
    # GIVEN eight clients signing up the same slug at the same moment
    start = threading.Barrier(8)
    statuses: dict[int, int] = {}
    lock = threading.Lock()

    def sign_up(n: int) -> None:
        client = Api(stack)
        start.wait()
        response = client.post(
            "/api/auth/signup/",
            {"email": f"racer{n}@example.com", "password": "correct horse battery", "tenant_slug": "contested"},
        )
        with lock:
            statuses[n] = response.status_code
        if response.status_code != 202:
            assert_error(response, 409, "conflict")

    threads = [threading.Thread(target=sign_up, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    # THEN exactly one holds the slug and the others got a 409
    assert sorted(statuses.values()) == [202] + [409] * 7
    # AND the winner's verification creates the tenant, the losers got no mail and may sign up elsewhere
    api = Api(stack)
    [winner] = [n for n, status in statuses.items() if status == 202]
    assert {mail["to"] for mail in api.mailbox()} == {f"racer{winner}@example.com"}
    token = api.mailed_token(f"racer{winner}@example.com", "/verify-email")
    verified = api.post("/api/auth/verify-email/", {"token": token, "password": "correct horse battery"})
    assert verified.status_code == 201 and verified.get_json()["tenant"]["slug"] == "contested"
    loser = next(n for n in statuses if n != winner)
    retry = api.signup(slug="elsewhere", email=f"racer{loser}@example.com")
    assert retry.tenant_slug == "elsewhere"
