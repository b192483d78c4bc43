"""Test helpers that drive the HTTP API exactly as a client would."""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, urlsplit

import orjson
from segops.localstack import LocalStack
from werkzeug.test import Client, TestResponse

from tests.support.log_secrets import watch

_counter = itertools.count(1)


@dataclass
class Account:
    """A signed-up owner with a JWT and an admin API key on their own tenant."""

    email: str
    password: str
    tenant_id: int
    tenant_slug: str
    access: str
    refresh: str
    api_key: str

    @property
    def bearer(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.access}"}

    @property
    def key(self) -> dict[str, str]:
        return {"Authorization": f"ApiKey {self.api_key}"}


_SECRET_FIELDS = {"password", "secret", "api_key", "token", "refresh"}


def _secret_fields(body: Any) -> list[str]:
    """Secrets a request body carries (passwords, Shopify secrets, connector credentials, mailed and
    refresh tokens): the log scan fails any test whose logs then hold one."""
    if isinstance(body, dict):
        found = [v for k, v in body.items() if k in _SECRET_FIELDS and isinstance(v, str)]
        return found + [s for v in body.values() for s in _secret_fields(v)]
    if isinstance(body, list):
        return [s for v in body for s in _secret_fields(v)]
    return []


class Api:
    def __init__(self, stack: LocalStack) -> None:
        self.stack = stack
        self.client: Client = stack.client()

    def request(
        self, method: str, path: str, json: Any = None, headers: dict[str, str] | None = None, **kw: Any
    ) -> TestResponse:
        if json is not None:
            watch(*_secret_fields(json))
            kw["data"] = orjson.dumps(json)
            kw["content_type"] = "application/json"
        return self.client.open(path, method=method, headers=headers or {}, **kw)

    def get(self, path: str, **kw: Any) -> TestResponse:
        return self.request("GET", path, **kw)

    def post(self, path: str, json: Any = None, **kw: Any) -> TestResponse:
        return self.request("POST", path, json, **kw)

    def patch(self, path: str, json: Any = None, **kw: Any) -> TestResponse:
        return self.request("PATCH", path, json, **kw)

    def put(self, path: str, json: Any = None, **kw: Any) -> TestResponse:
        return self.request("PUT", path, json, **kw)

    def delete(self, path: str, **kw: Any) -> TestResponse:
        return self.request("DELETE", path, **kw)

    def signup(
        self,
        slug: str | None = None,
        email: str | None = None,
        password: str = "correct horse battery",
        key_role: str = "admin",
    ) -> Account:
        n = next(_counter)
        slug = slug or f"tenant-{n}"
        email = email or f"owner{n}@{slug}.example.com"
        response = self.post("/api/auth/signup/", {"email": email, "password": password, "tenant_slug": slug})
        assert response.status_code == 202, response.get_data(as_text=True)
        token = self.mailed_token(email, "/verify-email")
        verified = self.post("/api/auth/verify-email/", {"token": token, "password": password})
        assert verified.status_code == 201, verified.get_data(as_text=True)
        body = verified.get_json()
        account = Account(email, password, body["tenant"]["id"], slug, body["access"], body["refresh"], "")
        # The tenant is explicit: an invited email that signs up belongs to several tenants at once.
        chosen = {**account.bearer, "X-SegOps-Tenant": str(account.tenant_id)}
        created = self.post("/api/keys/", {"name": "test", "role": key_role}, headers=chosen)
        assert created.status_code == 201, created.get_data(as_text=True)
        account.api_key = created.get_json()["key"]
        return account

    def mailbox(self) -> list[dict[str, Any]]:
        """The dev mailbox of the stack, newest first, as `make dev` lists it."""
        response = self.get("/dev/mailbox.json")
        assert response.status_code == 200, response.get_data(as_text=True)
        return list(response.get_json())

    def mailed_token(self, email: str, path: str) -> str:
        """The token of the newest link to `path` mailed to `email`."""
        for mail in self.mailbox():
            if mail["to"].lower() == email.lower():
                for link in mail["links"]:
                    parts = urlsplit(link)
                    if parts.path == path:
                        return parse_qs(parts.query)["token"][0]
        raise AssertionError(f"no mail to {email} with a {path} link")

    def add_member(self, owner: Account, other: Account, role: str) -> dict[str, str]:
        """Invite `other` into the owner's tenant and accept as them; their headers for that tenant."""
        invited = self.post(
            f"/api/tenants/{owner.tenant_id}/members/", {"email": other.email, "role": role}, headers=owner.bearer
        )
        assert invited.status_code == 201, invited.get_data(as_text=True)
        token = self.mailed_token(other.email, "/invitations/accept")
        accepted = self.post("/api/invitations/accept/", {"token": token}, headers=other.bearer)
        assert accepted.status_code == 200, accepted.get_data(as_text=True)
        return {**other.bearer, "X-SegOps-Tenant": str(owner.tenant_id)}


def assert_error(response: TestResponse, status: int, code: str | None = None) -> dict[str, Any]:
    """The one error shape: {"error": {"code", "message", "details"}} with the right status."""
    assert response.status_code == status, (response.status_code, response.get_data(as_text=True))
    body = response.get_json()
    assert set(body) == {"error"}, body
    assert set(body["error"]) == {"code", "message", "details"}, body
    assert isinstance(body["error"]["message"], str) and body["error"]["message"]
    if code is not None:
        assert body["error"]["code"] == code, body
    if body["error"]["code"] == "validation_failed" and "errors" in body["error"]["details"]:
        # Every refusal names its places the same way: a JSON pointer, what is wrong there, and a type
        errors = body["error"]["details"]["errors"]
        assert errors and all(set(e) == {"pointer", "message", "type"} for e in errors), body
    return dict(body["error"])
