"""HTTP routes for signup, tokens, tenants, members and API keys (the `api` function)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, BeforeValidator, EmailStr, Field, StringConstraints, model_validator

from segops.auth import sessions, throttle
from segops.auth.api_keys import KeyKind
from segops.auth.principal import Principal
from segops.auth.roles import Role
from segops.boundary import StrictTrimmedModel
from segops.errors import NotFound, Unauthorized
from segops.http.cors import ORIGIN_PATTERN, canonical_origin
from segops.http.credentials import signed_in_user
from segops.http.responses import Result
from segops.http.routes import RequestContext, Router
from segops.store import keys
from segops.tenancy import service
from segops.tenancy.models import ApiKey, Invitation, Tenant, User

auth_router = Router("/api/auth", auth=(), role=None)
tenants_router = Router("/api/tenants", auth=("jwt",), role=None)
# Invitation links: the token is the credential (a signed-in invitee may also send a bearer token).
invitations_router = Router("/api/invitations", auth=(), role=None)
tenant_router = Router("/api/tenants/<int:tenant_id>", auth=("jwt",), role="admin", tenant_from_path="tenant_id")
keys_router = Router("/api/keys", auth=("jwt",), role="admin")


class SignupRequest(StrictTrimmedModel):
    email: EmailStr
    password: str = Field(min_length=8, max_length=256)
    tenant_slug: str = Field(max_length=63)
    tenant_name: str | None = Field(default=None, max_length=200)


class TokenRequest(StrictTrimmedModel):
    email: str = Field(max_length=320)
    password: str = Field(max_length=256)


class RefreshRequest(StrictTrimmedModel):
    refresh: str = Field(max_length=4096)


class VerifyEmailRequest(StrictTrimmedModel):
    token: str = Field(min_length=1, max_length=128)
    # The password chosen at signup: the link alone does not say who chose it.
    password: str = Field(max_length=256)


class AcceptRequest(StrictTrimmedModel):
    token: str = Field(min_length=1, max_length=128)
    password: str | None = Field(default=None, min_length=8, max_length=256)


class TokenPair(BaseModel):
    access: str
    refresh: str
    expires_in: int


class SignupAccepted(BaseModel):
    status: Literal["verification_sent"] = "verification_sent"


class UserOut(BaseModel):
    id: int
    email: str
    created_at: datetime


class TenantOut(BaseModel):
    id: int
    slug: str
    name: str
    role: Role | None = None
    created_at: datetime


class SignedIn(TokenPair):
    user: UserOut
    tenant: TenantOut


class Joined(SignedIn):
    role: Role


class TenantCreate(StrictTrimmedModel):
    slug: str = Field(max_length=63)
    name: str | None = Field(default=None, max_length=200)


class TenantList(BaseModel):
    results: list[TenantOut]


class TenantPatch(StrictTrimmedModel):
    name: str = Field(min_length=1, max_length=200)


class MemberOut(BaseModel):
    user_id: int | None
    email: str
    role: Role
    status: str
    created_at: datetime | None = None


class MemberList(BaseModel):
    results: list[MemberOut]


class InviteRequest(StrictTrimmedModel):
    email: EmailStr
    role: Role = "member"


class InvitationOut(BaseModel):
    id: int
    email: str
    role: Role
    status: Literal["pending"] = "pending"
    expires_at: datetime


class InvitationList(BaseModel):
    results: list[InvitationOut]


class InvitationPreview(BaseModel):
    tenant_name: str
    tenant_slug: str
    email: str
    role: Role
    expires_at: datetime


class RolePatch(StrictTrimmedModel):
    role: Role


Origin = Annotated[
    str,
    BeforeValidator(lambda v: v.lower() if isinstance(v, str) else v),
    StringConstraints(pattern=ORIGIN_PATTERN),
    AfterValidator(canonical_origin),
    Field(description="A page origin: `scheme://host[:port]`, no path (e.g. `https://www.example.com`)."),
]


class ApiKeyCreate(StrictTrimmedModel):
    name: str = Field(min_length=1, max_length=100)
    role: Role = "member"
    kind: KeyKind = Field(
        default="secret",
        description="`secret` (`sk_live_`, server side) or `publishable` (`pk_live_`: only sends events, "
        "from `allowed_origins`; safe to embed in web pages)",
    )
    allowed_origins: list[Origin] = Field(default_factory=list, max_length=20)

    @model_validator(mode="after")
    def _publishable_rules(self) -> ApiKeyCreate:
        if self.kind == "publishable":
            if self.role != "member":
                raise ValueError("a publishable key only sends events: its role is member")
            if not self.allowed_origins:
                raise ValueError("a publishable key needs at least one allowed origin")
        elif self.allowed_origins:
            raise ValueError("allowed_origins is for publishable keys only")
        return self


class ApiKeyOut(BaseModel):
    id: int
    name: str
    prefix: str
    role: Role
    kind: KeyKind
    allowed_origins: list[str]
    created_at: datetime
    last_used_at: datetime | None
    revoked_at: datetime | None


class ApiKeyCreated(ApiKeyOut):
    key: str = Field(description="The secret; shown only in this response.")


class ApiKeyList(BaseModel):
    results: list[ApiKeyOut]


def _user_out(user: User) -> UserOut:
    return UserOut(id=user.id, email=user.email, created_at=user.created_at)


def _tenant_out(tenant: Tenant, role: Role | None) -> TenantOut:
    return TenantOut(id=tenant.id, slug=tenant.slug, name=tenant.name, role=role, created_at=tenant.created_at)


def _key_out(key: ApiKey) -> dict[str, Any]:
    return ApiKeyOut.model_validate(key.model_dump()).model_dump()


def _principal(ctx: RequestContext) -> Principal:
    assert ctx.principal is not None
    return ctx.principal


def _invitation_out(invitation: Invitation) -> InvitationOut:
    return InvitationOut(
        id=invitation.id, email=invitation.email, role=invitation.role, expires_at=invitation.expires_at
    )


def _pair(ctx: RequestContext, user_id: int) -> dict[str, Any]:
    return TokenPair.model_validate(sessions.start(ctx.runtime, user_id)).model_dump()


def _address(ctx: RequestContext) -> str:
    return throttle.client_address(ctx.request, ctx.runtime.settings.trusted_proxy_hops)


@auth_router.post("/signup/", body=SignupRequest, response=SignupAccepted, status=202)
def signup(ctx: RequestContext) -> SignupAccepted:
    """Reserve the tenant slug and mail a verification link; the same answer whether or not the email is registered."""
    body: SignupRequest = ctx.body
    limits = throttle.Limits.of(ctx.runtime.settings)
    throttle.hit(ctx.runtime, limits.signup_address, _address(ctx))
    throttle.hit(ctx.runtime, limits.signup_email, body.email)
    service.signup(ctx.runtime, body.email, body.password, body.tenant_slug, body.tenant_name)
    return SignupAccepted()


@auth_router.post("/verify-email/", body=VerifyEmailRequest, response=SignedIn, status=201)
def verify_email(ctx: RequestContext) -> SignedIn:
    """Finish a signup with the mailed token and the password chosen at signup: creates the user and the
    tenant they own; signs in."""
    body: VerifyEmailRequest = ctx.body
    # Wrong passwords count towards the login limit of the client's address (a link is no secret
    # to the person who guesses at it: it is theirs); an unknown link costs nothing, it is 256 bits.
    limit, address = throttle.Limits.of(ctx.runtime.settings).login_address, _address(ctx)
    throttle.check(ctx.runtime, limit, address)
    try:
        user, tenant = service.verify_email(ctx.runtime, body.token, body.password)
    except Unauthorized:
        throttle.hit(ctx.runtime, limit, address)
        raise
    return SignedIn(user=_user_out(user), tenant=_tenant_out(tenant, "owner"), **_pair(ctx, user.id))


@auth_router.post("/token/", body=TokenRequest, response=TokenPair)
def token(ctx: RequestContext) -> TokenPair:
    """Exchange email and password for an access (60 min) and a refresh token."""
    body: TokenRequest = ctx.body
    limits = throttle.Limits.of(ctx.runtime.settings)
    throttle.hit(ctx.runtime, limits.login_address, _address(ctx))
    # Per account only failures count (checked before hashing), so the owner's own logins never lock it.
    throttle.check(ctx.runtime, limits.login_account, body.email)
    try:
        user = service.login(ctx.runtime, body.email, body.password)
    except Unauthorized:
        throttle.hit(ctx.runtime, limits.login_account, body.email)
        raise
    return TokenPair.model_validate(_pair(ctx, user.id))


@auth_router.post("/token/refresh/", body=RefreshRequest, response=TokenPair)
def refresh(ctx: RequestContext) -> TokenPair:
    """Exchange a refresh token for a new pair; the presented one is retired, and reusing it ends the session."""
    body: RefreshRequest = ctx.body
    return TokenPair.model_validate(sessions.rotate(ctx.runtime, body.refresh))


@auth_router.post("/logout/", body=RefreshRequest, status=204)
def logout(ctx: RequestContext) -> None:
    """End the session of a refresh token: it and every token of its sign-in stop working."""
    body: RefreshRequest = ctx.body
    sessions.revoke(ctx.runtime, body.refresh)


@tenants_router.post("/", body=TenantCreate, response=TenantOut, status=201)
def create_tenant(ctx: RequestContext) -> TenantOut:
    """Create another tenant; the caller owns it."""
    body: TenantCreate = ctx.body
    user_id = _principal(ctx).user_id
    assert user_id is not None
    return _tenant_out(service.create_tenant(ctx.runtime, body.slug, body.name, user_id), "owner")


@invitations_router.get("/<token>/", response=InvitationPreview)
def preview_invitation(ctx: RequestContext) -> InvitationPreview:
    """What an invitation link offers (no sign-in needed; the token is the secret)."""
    invitation, tenant = service.invitation_by_token(ctx.runtime, ctx.path_params["token"])
    return InvitationPreview(
        tenant_name=tenant.name,
        tenant_slug=tenant.slug,
        email=invitation.email,
        role=invitation.role,
        expires_at=invitation.expires_at,
    )


@invitations_router.post("/accept/", body=AcceptRequest, response=Joined)
def accept_invitation(ctx: RequestContext) -> Joined:
    """Join with a signed-in account of the invited address, or create that account with `password`."""
    body: AcceptRequest = ctx.body
    user, tenant, role = service.accept_invitation(ctx.runtime, body.token, signed_in_user(ctx), body.password)
    return Joined(user=_user_out(user), tenant=_tenant_out(tenant, role), role=role, **_pair(ctx, user.id))


@tenants_router.get("/", response=TenantList)
def list_tenants(ctx: RequestContext) -> TenantList:
    """Tenants of the caller, each with the caller's role."""
    user_id = _principal(ctx).user_id
    assert user_id is not None
    return TenantList(results=[_tenant_out(t, role) for t, role in service.user_tenants(ctx.runtime, user_id)])


@tenant_router.get("/", role="viewer", response=TenantOut)
def get_tenant(ctx: RequestContext) -> TenantOut:
    """One tenant of the caller."""
    return _tenant_out(service.tenant(ctx.runtime, ctx.tenant_id), _principal(ctx).role)


@tenant_router.patch("/", role="owner", body=TenantPatch, response=TenantOut)
def patch_tenant(ctx: RequestContext) -> TenantOut:
    """Rename a tenant (owner)."""
    body: TenantPatch = ctx.body
    found = service.tenant(ctx.runtime, ctx.tenant_id)
    found.name = body.name
    ctx.runtime.documents.save(keys.tenant_key(found.id), found)
    return _tenant_out(found, _principal(ctx).role)


@tenant_router.get("/members/", response=MemberList)
def list_members(ctx: RequestContext) -> MemberList:
    """Members and pending invitations."""
    return MemberList.model_validate({"results": service.list_members(ctx.runtime, ctx.tenant_id)})


@tenant_router.post("/members/", body=InviteRequest, response=InvitationOut, status=201)
def invite_member(ctx: RequestContext) -> InvitationOut:
    """Mail an invitation link (accepted by the invitee); owners alone grant owner or admin."""
    body: InviteRequest = ctx.body
    principal = _principal(ctx)
    assert principal.role is not None and principal.user_id is not None
    return _invitation_out(
        service.invite(ctx.runtime, ctx.tenant_id, principal.role, principal.user_id, body.email, body.role)
    )


@tenant_router.get("/invitations/", response=InvitationList)
def list_invitations(ctx: RequestContext) -> InvitationList:
    """Pending invitations of the tenant."""
    return InvitationList(results=[_invitation_out(i) for i in service.list_invitations(ctx.runtime, ctx.tenant_id)])


@tenant_router.delete("/invitations/<int:invitation_id>/", status=204)
def revoke_invitation(ctx: RequestContext) -> None:
    """Revoke a pending invitation; its link stops working."""
    service.revoke_invitation(ctx.runtime, ctx.tenant_id, ctx.path_params["invitation_id"])


@tenant_router.patch("/members/<int:user_id>/", body=RolePatch, response=MemberOut)
def change_member_role(ctx: RequestContext) -> MemberOut:
    """Change a member's role."""
    body: RolePatch = ctx.body
    principal = _principal(ctx)
    assert principal.role is not None
    link = service.change_role(ctx.runtime, ctx.tenant_id, principal.role, ctx.path_params["user_id"], body.role)
    user = ctx.runtime.documents.load(keys.user_key(link.user_id), User)
    if user is None:
        raise NotFound("member not found")
    return MemberOut(user_id=user.id, email=user.email, role=link.role, status="active", created_at=link.created_at)


@tenant_router.delete("/members/<int:user_id>/", status=204)
def remove_member(ctx: RequestContext) -> None:
    """Remove a member from the tenant."""
    principal = _principal(ctx)
    assert principal.role is not None
    service.remove_member(ctx.runtime, ctx.tenant_id, principal.role, ctx.path_params["user_id"])


@keys_router.get("/", response=ApiKeyList)
def list_keys(ctx: RequestContext) -> ApiKeyList:
    """API keys of the tenant (prefix only; the secret is never shown again)."""
    return ApiKeyList.model_validate(
        {"results": [_key_out(k) for k in service.list_api_keys(ctx.runtime, ctx.tenant_id)]}
    )


@keys_router.post("/", body=ApiKeyCreate, response=ApiKeyCreated, status=201)
def create_key(ctx: RequestContext) -> Result:
    """Create an API key; the response is the only time the secret is shown."""
    body: ApiKeyCreate = ctx.body
    principal = _principal(ctx)
    assert principal.role is not None
    record, secret = service.create_api_key(
        ctx.runtime,
        ctx.tenant_id,
        body.name,
        body.role,
        principal.role,
        principal.user_id,
        body.kind,
        sorted(set(body.allowed_origins)),
    )
    return Result({**_key_out(record), "key": secret}, status=201, headers={"Cache-Control": "no-store"})


@keys_router.delete("/<int:key_id>/", status=204)
def revoke_key(ctx: RequestContext) -> None:
    """Revoke an API key (effective immediately)."""
    service.revoke_api_key(ctx.runtime, ctx.tenant_id, ctx.path_params["key_id"])
