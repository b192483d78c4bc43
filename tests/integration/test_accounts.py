"""Accounts through HTTP with mail sent over real SMTP: signup verification, invitations, tenants,
token rotation and logout (issue #17 rows 1 and 4)."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import jwt
import pytest
from segops import clock
from segops.auth import sessions, tokens
from segops.config import Settings
from segops.localstack import LocalStack
from segops.runtime import build_mailer
from segops.store import keys
from segops.tenancy import models as m

from tests.support.api import Account, Api, assert_error
from tests.support.servers import SmtpServer, free_port

PUBLIC = "https://segops.example.com"
PASSWORD = "correct horse battery"


@pytest.fixture
def smtp_stack(settings: Settings, smtp_server: SmtpServer) -> Iterator[LocalStack]:
    """GIVEN the stack mailing through a real SMTP server, links based on the public URL."""
    configured = settings.model_copy(
        update={"mailer": "smtp", "smtp_port": smtp_server.port, "smtp_starttls": False, "public_url": PUBLIC}
    )
    local = LocalStack(configured)
    try:
        yield local
    finally:
        local.stop()


@pytest.fixture
def api(smtp_stack: LocalStack) -> Api:
    return Api(smtp_stack)


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def mails_to(smtp: SmtpServer, email: str) -> list[tuple[str, str]]:
    """(subject, text) of each mail the SMTP server received for `email`, oldest first."""
    return [
        (str(msg["Subject"]), msg.get_payload(decode=True).decode())
        for msg in smtp.received
        if str(msg["To"]).lower() == email.lower()
    ]


def link_token(smtp: SmtpServer, email: str, path: str) -> str:
    for _, text in reversed(mails_to(smtp, email)):
        for word in text.split():
            if word.startswith(PUBLIC + path + "?"):
                return parse_qs(urlsplit(word).query)["token"][0]
    raise AssertionError(f"no {path} link mailed to {email}")


def verification(smtp: SmtpServer, email: str, password: str = PASSWORD) -> dict[str, str]:
    """The body that finishes a signup: the newest mailed link's token and the signup's password."""
    return {"token": link_token(smtp, email, "/verify-email"), "password": password}


def sign_up(api: Api, smtp: SmtpServer, email: str, slug: str) -> Account:
    assert api.post("/api/auth/signup/", {"email": email, "password": PASSWORD, "tenant_slug": slug}).status_code == 202
    verified = api.post("/api/auth/verify-email/", verification(smtp, email))
    assert verified.status_code == 201, verified.get_data(as_text=True)
    body = verified.get_json()
    return Account(email, PASSWORD, body["tenant"]["id"], slug, body["access"], body["refresh"], "")


# -- signup and email verification -------------------------------------------------------------------


def test_signup_mails_a_verification_link_and_creates_nothing_until_verified(api: Api, smtp_server: SmtpServer) -> None:
    # WHEN someone signs up
    response = api.post(
        "/api/auth/signup/",
        {"email": "new@example.com", "password": PASSWORD, "tenant_slug": "acme", "tenant_name": "Acme"},
    )
    # THEN the answer only says a mail went out, over SMTP, with a link on the public URL
    assert (response.status_code, response.get_json()) == (202, {"status": "verification_sent"})
    [(subject, text)] = mails_to(smtp_server, "new@example.com")
    assert "verify" in subject.lower() and f"{PUBLIC}/verify-email?token=" in text
    # AND no account exists yet
    assert_error(api.post("/api/auth/token/", {"email": "new@example.com", "password": PASSWORD}), 401)
    # WHEN the link's token is posted
    verified = api.post("/api/auth/verify-email/", verification(smtp_server, "new@example.com"))
    # THEN the verified user owns the tenant and is signed in
    assert verified.status_code == 201, verified.get_data(as_text=True)
    body = verified.get_json()
    assert set(body) == {"user", "tenant", "access", "refresh", "expires_in"}
    assert body["user"]["email"] == "new@example.com"
    assert {"slug": "acme", "name": "Acme", "role": "owner"}.items() <= body["tenant"].items()
    tenants = api.get("/api/tenants/", headers=bearer(body["access"])).get_json()["results"]
    assert [(t["slug"], t["role"]) for t in tenants] == [("acme", "owner")]
    assert api.post("/api/auth/token/", {"email": "new@example.com", "password": PASSWORD}).status_code == 200


def test_verification_token_is_single_use_and_expires(
    api: Api, smtp_server: SmtpServer, smtp_stack: LocalStack
) -> None:
    for n, slug in enumerate(("first", "second")):
        api.post("/api/auth/signup/", {"email": f"u{n}@example.com", "password": PASSWORD, "tenant_slug": slug})
    used = verification(smtp_server, "u0@example.com")
    assert api.post("/api/auth/verify-email/", used).status_code == 201
    assert_error(api.post("/api/auth/verify-email/", used), 404, "not_found")
    # GIVEN a pending signup whose 24 h have passed
    late = verification(smtp_server, "u1@example.com")
    smtp_stack.runtime.documents.update(
        keys.signup_key(m.token_digest(late["token"])),
        m.PendingSignup,
        lambda p: p.model_copy(update={"expires_at": clock.now() - timedelta(seconds=1)}),
    )
    assert_error(api.post("/api/auth/verify-email/", late), 404, "not_found")
    assert_error(api.post("/api/auth/verify-email/", {"token": "made-up", "password": PASSWORD}), 404, "not_found")


def test_signup_never_reveals_whether_an_email_is_registered(api: Api, smtp_server: SmtpServer) -> None:
    # GIVEN a registered address
    owner = sign_up(api, smtp_server, "taken@example.com", "owned")
    # WHEN someone signs up with it, and with a fresh address
    known = api.post("/api/auth/signup/", {"email": owner.email, "password": "another password", "tenant_slug": "x-a"})
    fresh = api.post("/api/auth/signup/", {"email": "free@example.com", "password": PASSWORD, "tenant_slug": "x-b"})
    # THEN both answers are identical
    assert (known.status_code, known.get_json()) == (fresh.status_code, fresh.get_json()) == (202, known.get_json())
    # AND the owner is told someone tried, with no link that could create anything
    subject, text = mails_to(smtp_server, owner.email)[-1]
    assert "tried to sign up" in subject and "/verify-email" not in text and f"{PUBLIC}/login" in text
    # AND both slugs are held alike (a difference would reveal the registered address)
    for slug in ("x-a", "x-b"):
        again = api.post("/api/auth/signup/", {"email": "third@example.com", "password": PASSWORD, "tenant_slug": slug})
        assert_error(again, 409, "conflict")
    # AND the owner's password and tenants are untouched
    assert api.post("/api/auth/token/", {"email": owner.email, "password": "another password"}).status_code == 401
    assert [t["slug"] for t in api.get("/api/tenants/", headers=owner.bearer).get_json()["results"]] == ["owned"]


def test_signing_up_again_with_a_lost_mail_sends_a_new_link(api: Api, smtp_server: SmtpServer) -> None:
    body = {"email": "lost@example.com", "password": PASSWORD, "tenant_slug": "lost-co"}
    assert api.post("/api/auth/signup/", body).status_code == 202
    first = verification(smtp_server, "lost@example.com")
    # the same address may ask again for the slug it holds (another address may not)
    assert api.post("/api/auth/signup/", body).status_code == 202
    second = verification(smtp_server, "lost@example.com")
    assert_error(api.post("/api/auth/signup/", {**body, "email": "other@example.com"}), 409, "conflict")
    # only the newest link creates the tenant: the older one stopped working when it was replaced
    assert_error(api.post("/api/auth/verify-email/", first), 404, "not_found")
    assert api.post("/api/auth/verify-email/", second).status_code == 201


def test_a_verification_needs_the_password_chosen_at_signup(api: Api, smtp_server: SmtpServer) -> None:
    # GIVEN a signup, and its mailed link
    body = {"email": "carol@example.com", "password": PASSWORD, "tenant_slug": "carol-co"}
    assert api.post("/api/auth/signup/", body).status_code == 202
    # WHEN the link is opened with another password, or none
    wrong = api.post("/api/auth/verify-email/", verification(smtp_server, "carol@example.com", "not the one"))
    # THEN nothing is created, and the link still works with the right one
    assert_error(wrong, 401, "unauthorized")
    missing = {"token": link_token(smtp_server, "carol@example.com", "/verify-email")}
    assert_error(api.post("/api/auth/verify-email/", missing), 400, "validation_failed")
    assert_error(api.post("/api/auth/token/", {"email": body["email"], "password": "not the one"}), 401)
    assert api.post("/api/auth/verify-email/", verification(smtp_server, "carol@example.com")).status_code == 201


def test_a_signup_made_with_someone_elses_address_cannot_choose_their_password(
    api: Api, smtp_server: SmtpServer
) -> None:
    # GIVEN a victim's pending signup, and an attacker who signs up again with the victim's address and
    # slug (both public enough) and a password of their own: the victim gets a second, newer link
    victim = {"email": "victor@example.com", "password": PASSWORD, "tenant_slug": "victor-co"}
    assert api.post("/api/auth/signup/", victim).status_code == 202
    own_link = verification(smtp_server, victim["email"])
    assert api.post("/api/auth/signup/", {**victim, "password": "attacker's password"}).status_code == 202
    # WHEN the victim opens either link with the password they chose
    # THEN the older link is dead and the newer one refuses their password: nothing is created
    assert_error(api.post("/api/auth/verify-email/", own_link), 404, "not_found")
    assert_error(api.post("/api/auth/verify-email/", verification(smtp_server, victim["email"])), 401)
    assert_error(api.post("/api/auth/token/", {"email": victim["email"], "password": "attacker's password"}), 401)
    # AND signing up again gives the victim an account with their own password only
    assert api.post("/api/auth/signup/", victim).status_code == 202
    assert api.post("/api/auth/verify-email/", verification(smtp_server, victim["email"])).status_code == 201
    assert api.post("/api/auth/token/", {"email": victim["email"], "password": PASSWORD}).status_code == 200
    assert_error(api.post("/api/auth/token/", {"email": victim["email"], "password": "attacker's password"}), 401)


def test_signup_slug_errors(api: Api, smtp_server: SmtpServer) -> None:
    sign_up(api, smtp_server, "a@example.com", "acme")
    bad = api.post("/api/auth/signup/", {"email": "b@example.com", "password": PASSWORD, "tenant_slug": "Not A Slug"})
    assert assert_error(bad, 400, "validation_failed")["details"]["errors"][0]["pointer"] == "/tenant_slug"
    taken = api.post("/api/auth/signup/", {"email": "b@example.com", "password": PASSWORD, "tenant_slug": "acme"})
    assert_error(taken, 409, "conflict")
    assert mails_to(smtp_server, "b@example.com") == []


# -- tenants -------------------------------------------------------------------------------------------


def test_signed_in_person_creates_and_switches_tenants(api: Api, smtp_server: SmtpServer) -> None:
    owner = sign_up(api, smtp_server, "multi@example.com", "first-co")
    created = api.post("/api/tenants/", {"slug": "second-co", "name": "Second"}, headers=owner.bearer)
    assert created.status_code == 201, created.get_data(as_text=True)
    assert {"slug": "second-co", "name": "Second", "role": "owner"}.items() <= created.get_json().items()
    listed = api.get("/api/tenants/", headers=owner.bearer).get_json()["results"]
    assert sorted((t["slug"], t["role"]) for t in listed) == [("first-co", "owner"), ("second-co", "owner")]
    # switching: the second tenant is chosen explicitly and is the caller's own
    second = {**owner.bearer, "X-SegOps-Tenant": "second-co"}
    assert api.post("/api/keys/", {"name": "k", "role": "member"}, headers=second).status_code == 201
    # slugs: taken, reserved by a pending signup, invalid
    assert_error(api.post("/api/tenants/", {"slug": "first-co"}, headers=owner.bearer), 409, "conflict")
    api.post("/api/auth/signup/", {"email": "p@example.com", "password": PASSWORD, "tenant_slug": "pending-co"})
    assert_error(api.post("/api/tenants/", {"slug": "pending-co"}, headers=owner.bearer), 409, "conflict")
    invalid = assert_error(api.post("/api/tenants/", {"slug": "NO"}, headers=owner.bearer), 400, "validation_failed")
    assert invalid["details"]["errors"][0]["pointer"] == "/slug"
    assert_error(api.post("/api/tenants/", {"slug": "anon-co"}), 401, "unauthorized")


# -- invitations ---------------------------------------------------------------------------------------


def invite(api: Api, owner: Account, email: str, role: str = "member") -> dict[str, Any]:
    response = api.post(
        f"/api/tenants/{owner.tenant_id}/members/", {"email": email, "role": role}, headers=owner.bearer
    )
    assert response.status_code == 201, response.get_data(as_text=True)
    return dict(response.get_json())


def test_invitation_answers_alike_for_any_address_and_adds_nobody(api: Api, smtp_server: SmtpServer) -> None:
    owner = sign_up(api, smtp_server, "boss@example.com", "team")
    registered = sign_up(api, smtp_server, "known@example.com", "known-co")
    # WHEN the owner invites a registered and an unregistered address
    known = invite(api, owner, registered.email)
    unknown = invite(api, owner, "stranger@example.com")
    # THEN both answers have the same shape and say "pending"
    for answer in (known, unknown):
        assert set(answer) == {"id", "email", "role", "status", "expires_at"} and answer["status"] == "pending"
    # AND the registered account was not added: its tenants are unchanged, it is not an active member
    assert [t["slug"] for t in api.get("/api/tenants/", headers=registered.bearer).get_json()["results"]] == [
        "known-co"
    ]
    members = api.get(f"/api/tenants/{owner.tenant_id}/members/", headers=owner.bearer).get_json()["results"]
    assert {(x["email"], x["status"]) for x in members} == {
        (owner.email, "active"),
        (registered.email, "invited"),
        ("stranger@example.com", "invited"),
    }
    # AND each got a mail with an accept link; the pending list shows both
    assert f"{PUBLIC}/invitations/accept?token=" in mails_to(smtp_server, "stranger@example.com")[-1][1]
    pending = api.get(f"/api/tenants/{owner.tenant_id}/invitations/", headers=owner.bearer).get_json()["results"]
    assert [p["id"] for p in pending] == [known["id"], unknown["id"]]


def test_invitation_preview_accept_with_account_and_single_use(
    api: Api, smtp_server: SmtpServer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="segops.http")
    owner = sign_up(api, smtp_server, "boss@example.com", "team")
    invitee = sign_up(api, smtp_server, "invitee@example.com", "own-co")
    invite(api, owner, invitee.email, "admin")
    token = link_token(smtp_server, invitee.email, "/invitations/accept")
    # the link can be previewed without signing in
    preview = api.get(f"/api/invitations/{token}/")
    assert preview.status_code == 200
    assert {k: v for k, v in preview.get_json().items() if k != "expires_at"} == {
        "tenant_name": "team",
        "tenant_slug": "team",
        "email": invitee.email,
        "role": "admin",
    }
    # another signed-in account cannot use it; without auth the existing account must log in
    assert_error(api.post("/api/invitations/accept/", {"token": token}, headers=owner.bearer), 403, "forbidden")
    anonymous = api.post("/api/invitations/accept/", {"token": token, "password": "whatever password"})
    assert_error(anonymous, 409, "login_required")
    # WHEN the invitee accepts signed in
    accepted = api.post("/api/invitations/accept/", {"token": token}, headers=invitee.bearer)
    # THEN they join with the invited role and get tokens
    assert accepted.status_code == 200, accepted.get_data(as_text=True)
    body = accepted.get_json()
    assert set(body) == {"user", "tenant", "role", "access", "refresh", "expires_in"}
    assert (body["role"], body["tenant"]["id"], body["user"]["email"]) == ("admin", owner.tenant_id, invitee.email)
    tenants = api.get("/api/tenants/", headers=invitee.bearer).get_json()["results"]
    assert sorted((t["slug"], t["role"]) for t in tenants) == [("own-co", "owner"), ("team", "admin")]
    # AND the token is spent: preview and accept are 404, the pending list is empty
    assert_error(api.get(f"/api/invitations/{token}/"), 404, "not_found")
    assert_error(api.post("/api/invitations/accept/", {"token": token}, headers=invitee.bearer), 404, "not_found")
    assert api.get(f"/api/tenants/{owner.tenant_id}/invitations/", headers=owner.bearer).get_json()["results"] == []
    # AND the request log shows the route of the token's path, never the token
    logged = [record.__dict__.get("path") for record in caplog.records if record.name == "segops.http"]
    assert "/api/invitations/<token>/" in logged and not any(token in str(path) for path in logged)


def test_invitation_creates_the_account_of_a_new_address(api: Api, smtp_server: SmtpServer) -> None:
    owner = sign_up(api, smtp_server, "boss@example.com", "team")
    invite(api, owner, "Newbie@Example.com", "viewer")
    token = link_token(smtp_server, "Newbie@Example.com", "/invitations/accept")
    missing = assert_error(api.post("/api/invitations/accept/", {"token": token}), 400, "validation_failed")
    assert missing["details"]["errors"][0]["pointer"] == "/password"
    accepted = api.post("/api/invitations/accept/", {"token": token, "password": "a new long password"})
    assert accepted.status_code == 200, accepted.get_data(as_text=True)
    assert accepted.get_json()["role"] == "viewer"
    # the new account belongs to the inviting tenant only (none of its own) and can log in
    login = api.post("/api/auth/token/", {"email": "newbie@example.com", "password": "a new long password"})
    assert login.status_code == 200
    tenants = api.get("/api/tenants/", headers=bearer(login.get_json()["access"])).get_json()["results"]
    assert [(t["slug"], t["role"]) for t in tenants] == [("team", "viewer")]


def test_revoked_reissued_and_expired_invitations_stop_working(
    api: Api, smtp_server: SmtpServer, smtp_stack: LocalStack
) -> None:
    owner = sign_up(api, smtp_server, "boss@example.com", "team")
    first = invite(api, owner, "x@example.com")
    first_token = link_token(smtp_server, "x@example.com", "/invitations/accept")
    # inviting again replaces the pending invitation: the old link is dead
    second = invite(api, owner, "x@example.com")
    second_token = link_token(smtp_server, "x@example.com", "/invitations/accept")
    assert_error(api.get(f"/api/invitations/{first_token}/"), 404, "not_found")
    assert api.get(f"/api/invitations/{second_token}/").status_code == 200
    # revoking kills the link; revoking again is 404
    path = f"/api/tenants/{owner.tenant_id}/invitations/{second['id']}/"
    assert api.delete(path, headers=owner.bearer).status_code == 204
    assert_error(api.get(f"/api/invitations/{second_token}/"), 404, "not_found")
    assert_error(api.delete(path, headers=owner.bearer), 404, "not_found")
    assert first["id"] != second["id"]
    # an expired one is neither listed nor usable
    invite(api, owner, "late@example.com")
    late = link_token(smtp_server, "late@example.com", "/invitations/accept")
    [pending] = api.get(f"/api/tenants/{owner.tenant_id}/invitations/", headers=owner.bearer).get_json()["results"]
    smtp_stack.runtime.documents.update(
        keys.invitation_key(owner.tenant_id, pending["id"]),
        m.Invitation,
        lambda i: i.model_copy(update={"expires_at": clock.now() - timedelta(seconds=1)}),
    )
    assert_error(api.get(f"/api/invitations/{late}/"), 404, "not_found")
    assert_error(api.post("/api/invitations/accept/", {"token": late, "password": PASSWORD}), 404, "not_found")
    assert api.get(f"/api/tenants/{owner.tenant_id}/invitations/", headers=owner.bearer).get_json()["results"] == []


# -- tokens ----------------------------------------------------------------------------------------------


def test_refresh_rotates_and_reuse_revokes_the_family(api: Api, smtp_server: SmtpServer) -> None:
    account = sign_up(api, smtp_server, "r@example.com", "rot")
    # WHEN the refresh token is used, it is replaced
    first = api.post("/api/auth/token/refresh/", {"refresh": account.refresh})
    assert first.status_code == 200
    rotated = first.get_json()
    assert set(rotated) == {"access", "refresh", "expires_in"} and rotated["refresh"] != account.refresh
    second = api.post("/api/auth/token/refresh/", {"refresh": rotated["refresh"]}).get_json()
    # WHEN a retired refresh token is presented again (a stolen copy)
    assert_error(api.post("/api/auth/token/refresh/", {"refresh": account.refresh}), 401, "unauthorized")
    # THEN the whole family is revoked: the newest refresh and the family's access tokens stop working
    assert_error(api.post("/api/auth/token/refresh/", {"refresh": second["refresh"]}), 401, "unauthorized")
    assert_error(api.get("/api/tenants/", headers=bearer(second["access"])), 401, "unauthorized")
    assert_error(api.get("/api/tenants/", headers=account.bearer), 401, "unauthorized")
    # AND another sign-in of the same person is unaffected
    fresh = api.post("/api/auth/token/", {"email": account.email, "password": PASSWORD}).get_json()
    assert api.get("/api/tenants/", headers=bearer(fresh["access"])).status_code == 200


def test_logout_revokes_the_session(api: Api, smtp_server: SmtpServer) -> None:
    account = sign_up(api, smtp_server, "l@example.com", "out")
    other = api.post("/api/auth/token/", {"email": account.email, "password": PASSWORD}).get_json()
    assert api.post("/api/auth/logout/", {"refresh": account.refresh}).status_code == 204
    assert_error(api.post("/api/auth/token/refresh/", {"refresh": account.refresh}), 401, "unauthorized")
    assert_error(api.get("/api/tenants/", headers=account.bearer), 401, "unauthorized")
    assert api.post("/api/auth/token/refresh/", {"refresh": other["refresh"]}).status_code == 200
    assert_error(api.post("/api/auth/logout/", {"refresh": account.access}), 401, "unauthorized")


def test_jti_and_family_are_checked(api: Api, smtp_server: SmtpServer, smtp_stack: LocalStack) -> None:
    account = sign_up(api, smtp_server, "j@example.com", "jti")
    secret = smtp_stack.runtime.jwt_secret
    claims = jwt.decode(account.refresh, options={"verify_signature": False})
    # a validly signed refresh token with another jti of the family is a reuse: refused, family revoked
    forged = jwt.encode({**claims, "jti": tokens.new_id()}, secret, algorithm="HS256")
    assert_error(api.post("/api/auth/token/refresh/", {"refresh": forged}), 401, "unauthorized")
    assert_error(api.post("/api/auth/token/refresh/", {"refresh": account.refresh}), 401, "unauthorized")
    # tokens without jti, or of an unknown family, are refused
    for bad in ({k: v for k, v in claims.items() if k != "jti"}, {**claims, "fam": tokens.new_id()}):
        token = jwt.encode(bad, secret, algorithm="HS256")
        assert_error(api.post("/api/auth/token/refresh/", {"refresh": token}), 401, "unauthorized")
    no_jti = jwt.decode(account.access, options={"verify_signature": False})
    del no_jti["jti"]
    assert_error(api.get("/api/tenants/", headers=bearer(jwt.encode(no_jti, secret, algorithm="HS256"))), 401)


# -- dev mailbox -------------------------------------------------------------------------------------------


def test_dev_mailbox_lists_mail_newest_first_with_clickable_links(stack: LocalStack) -> None:
    dev = Api(stack)
    for n in (1, 2):
        body = {"email": f"dev{n}@example.com", "password": PASSWORD, "tenant_slug": f"dev-{n}"}
        assert dev.post("/api/auth/signup/", body).status_code == 202
    mails = dev.mailbox()
    assert [mail["to"] for mail in mails] == ["dev2@example.com", "dev1@example.com"]
    assert set(mails[0]) == {"to", "subject", "text", "links", "sent_at"}
    [link] = mails[0]["links"]
    assert link.startswith(f"http://{stack.settings.host}:{stack.settings.port}/verify-email?token=")
    page = dev.get("/dev/mailbox/")
    assert page.status_code == 200 and page.mimetype == "text/html"
    assert f'<a href="{link}">' in page.get_data(as_text=True)
    assert (stack.settings.mailbox_dir).is_dir() and Path(stack.settings.mailbox_dir).parent == stack.settings.data_dir


def test_only_the_application_s_links_are_links(stack: LocalStack) -> None:
    # GIVEN a tenant whose (owner-chosen) name holds a URL
    dev = Api(stack)
    owner = dev.signup()
    lure = "Claim your prize at https://evil.example/claim"
    assert dev.patch(f"/api/tenants/{owner.tenant_id}/", {"name": lure}, headers=owner.bearer).status_code == 200
    # WHEN it invites someone
    assert dev.post(f"/api/tenants/{owner.tenant_id}/members/", {"email": "v@example.com"}, headers=owner.bearer)
    # THEN the mail lists the accept link alone, and the mailbox page links nothing else
    [mail] = [mail for mail in dev.mailbox() if mail["to"] == "v@example.com"]
    assert lure in mail["text"] and len(mail["links"]) == 1 and "/invitations/accept?token=" in mail["links"][0]
    assert 'href="https://evil.example' not in dev.get("/dev/mailbox/").get_data(as_text=True)


def test_dev_mailbox_is_absent_with_smtp(api: Api) -> None:
    assert_error(api.get("/dev/mailbox.json"), 404, "not_found")
    assert_error(api.get("/dev/mailbox/"), 404, "not_found")


# -- several tenants ---------------------------------------------------------------------------------------


def test_object_routes_resolve_the_tenant_of_a_user_of_several_tenants(stack: LocalStack) -> None:
    # GIVEN a person who owns one tenant and is a member of another, each with a segment
    dev = Api(stack)
    person, other, stranger = dev.signup(), dev.signup(), dev.signup()
    in_other = dev.add_member(other, person, "member")
    in_own = {**person.bearer, "X-SegOps-Tenant": str(person.tenant_id)}
    own = dev.post("/api/segments/", {"name": "Own", "segment_type": "rule"}, headers=in_own).get_json()["id"]
    visited = {
        "logic": "AND",
        "conditions": [{"type": "event_count", "event_type": "v", "operator": "gte", "value": 1}],
    }
    theirs = dev.post("/api/segments/", {"name": "Theirs", "definition": visited}, headers=in_other).get_json()["id"]
    foreign = dev.post("/api/segments/", {"name": "Foreign", "segment_type": "rule"}, headers=stranger.bearer)
    # WHEN routes on one segment are called without naming a tenant
    # THEN each resolves to the tenant holding that segment
    assert dev.get(f"/api/segments/{own}/", headers=person.bearer).get_json()["name"] == "Own"
    assert dev.get(f"/api/segments/{theirs}/", headers=person.bearer).get_json()["name"] == "Theirs"
    renamed = dev.patch(f"/api/segments/{theirs}/", {"name": "Renamed"}, headers=person.bearer)
    assert renamed.status_code == 200 and renamed.get_json()["name"] == "Renamed"
    assert dev.get(f"/api/segments/{theirs}/versions/", headers=person.bearer).status_code == 200
    queued = dev.post(f"/api/segments/{theirs}/compute/", headers=person.bearer)
    assert queued.status_code == 202, queued.get_data(as_text=True)
    assert dev.get(f"/api/segments/{theirs}/compute/", headers=person.bearer).get_json()["status"] == "queued"
    assert dev.delete(f"/api/segments/{own}/", headers=person.bearer).status_code == 204
    # AND a segment of a tenant the person is not in stays a 404; collection routes still need a choice
    assert_error(dev.get(f"/api/segments/{foreign.get_json()['id']}/", headers=person.bearer), 404, "not_found")
    assert_error(dev.get("/api/segments/", headers=person.bearer), 400, "validation_failed")


def test_a_session_left_unused_past_its_lifetime_ends(
    api: Api, smtp_server: SmtpServer, smtp_stack: LocalStack
) -> None:
    account = sign_up(api, smtp_server, "idle@example.com", "idle")
    family = jwt.decode(account.refresh, options={"verify_signature": False})["fam"]
    smtp_stack.runtime.documents.update(
        keys.refresh_family_key(family),
        sessions.RefreshFamily,
        lambda f: f.model_copy(update={"expires_at": clock.now() - timedelta(seconds=1)}),
    )
    assert_error(api.post("/api/auth/token/refresh/", {"refresh": account.refresh}), 401, "unauthorized")


def test_an_unreachable_smtp_server_is_a_503_and_the_same_address_may_retry(
    settings: Settings, smtp_server: SmtpServer
) -> None:
    # GIVEN the SMTP server down (nothing listens on its port)
    down = settings.model_copy(update={"mailer": "smtp", "smtp_port": free_port(), "smtp_starttls": False})
    local = LocalStack(down)
    try:
        body = {"email": "retry@example.com", "password": PASSWORD, "tenant_slug": "retry-co"}
        error = assert_error(Api(local).post("/api/auth/signup/", body), 503, "service_unavailable")
        assert "smtp" not in error["message"].lower() and str(down.smtp_port) not in error["message"]
        # WHEN it is back, the same address signs up again with the slug it asked for
        local.runtime.settings = down.model_copy(update={"smtp_port": smtp_server.port})
        local.runtime.mailer = build_mailer(local.runtime.settings)
        assert Api(local).post("/api/auth/signup/", body).status_code == 202
        assert mails_to(smtp_server, "retry@example.com")
    finally:
        local.stop()


def test_a_second_signup_of_an_address_verified_after_the_first_frees_its_slug(
    api: Api, smtp_server: SmtpServer
) -> None:
    # GIVEN two pending signups of one address (spelled in two cases), for two slugs
    links = []
    for email, slug in (("carl@example.com", "carl-one"), ("Carl@Example.com", "carl-two")):
        body = {"email": email, "password": PASSWORD, "tenant_slug": slug}
        assert api.post("/api/auth/signup/", body).status_code == 202
        links.append(verification(smtp_server, email))  # the newest mail to the address: this signup's
    first, second = links
    # WHEN both links are opened
    assert api.post("/api/auth/verify-email/", first).status_code == 201
    # THEN the second is told to log in (the address has an account now), and its slug is not held
    assert_error(api.post("/api/auth/verify-email/", second), 409, "login_required")
    carl = api.post("/api/auth/token/", {"email": "carl@example.com", "password": PASSWORD}).get_json()
    created = api.post("/api/tenants/", {"slug": "carl-two"}, headers=bearer(carl["access"]))
    assert created.status_code == 201, created.get_data(as_text=True)
