"""In-test HTTP servers for Klaviyo, Braze and Talon.One. Each one enforces the platform's documented
request contract (path, method, auth header form, content type, required headers, body schema, batch
limits, status codes), keeps the remote state, and can inject 429 + Retry-After, 500s and timeouts.

Bound to 127.0.0.1 on a free port chosen by the OS; started and stopped by the test."""

from __future__ import annotations

import ipaddress
import itertools
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

import orjson
from segops.connectors.egress import EgressPolicy

Reply = tuple[int, dict[str, str], Any]

# The contract servers listen on 127.0.0.1 over http: an operator-added host plus the test-only network
# exemption, so requests to them still go through every other egress check (`segops.connectors.egress`).
LOOPBACK = ipaddress.ip_network("127.0.0.0/8")
CONTRACT_EGRESS_SETTINGS: dict[str, Any] = {
    "connector_extra_hosts": ["127.0.0.1"],
    "connector_test_networks": [LOOPBACK],
}
CONTRACT_EGRESS = EgressPolicy(("127.0.0.1",), (LOOPBACK,))


@dataclass
class Recorded:
    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    body: Any
    status: int = 0


@dataclass
class Fault:
    kind: str  # "429" | "500" | "timeout"
    path: str
    skip: int = 0
    times: int = 1
    retry_after: str | None = "0"
    delay: float = 0.5


@dataclass
class ContractViolation:
    request: Recorded
    reason: str


class FakePlatform:
    """Subclasses implement `route(request) -> Reply`; violations are answered with 4xx and recorded."""

    def __init__(self, api_key: str) -> None:
        self.api_key = api_key
        self.requests: list[Recorded] = []
        self.violations: list[ContractViolation] = []
        self.faults: list[Fault] = []
        self.lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None

    # -- lifecycle -------------------------------------------------------------------------------------
    def start(self, port: int = 0) -> FakePlatform:
        platform = self

        class Handler(BaseHTTPRequestHandler):
            def _serve(self) -> None:
                platform._handle(self)

            do_GET = do_POST = do_DELETE = do_PUT = do_PATCH = _serve

            def log_message(self, format: str, *args: Any) -> None:
                return

        self._server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, args=(0.05,), daemon=True).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()

    @property
    def url(self) -> str:
        assert self._server is not None
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    # -- fault injection -------------------------------------------------------------------------------
    def inject(self, kind: str, path: str, times: int = 1, skip: int = 0, **kw: Any) -> None:
        """The next `times` requests whose path contains `path`, after letting `skip` of them through."""
        with self.lock:
            self.faults.append(Fault(kind, path, skip=skip, times=times, **kw))

    def _take_fault(self, path: str) -> Fault | None:
        with self.lock:
            for fault in self.faults:
                if fault.path not in path:
                    continue
                if fault.skip > 0:
                    fault.skip -= 1
                    return None
                fault.times -= 1
                if fault.times == 0:
                    self.faults.remove(fault)
                return fault
        return None

    # -- request handling ------------------------------------------------------------------------------
    def _handle(self, handler: BaseHTTPRequestHandler) -> None:
        parts = urlsplit(handler.path)
        length = int(handler.headers.get("Content-Length") or 0)
        raw = handler.rfile.read(length) if length else b""
        try:
            body = orjson.loads(raw) if raw else None
        except orjson.JSONDecodeError:
            body = "<invalid json>"
        request = Recorded(
            handler.command,
            parts.path,
            parse_qs(parts.query, keep_blank_values=True),
            {k.lower(): v for k, v in handler.headers.items()},
            body,
        )
        fault = self._take_fault(parts.path)
        status, headers, payload = self._reply(request, fault)
        request.status = status
        with self.lock:
            self.requests.append(request)
        if fault is not None and fault.kind == "timeout":
            time.sleep(fault.delay)  # the request was applied; the client gives up before the answer
        data = b"" if payload is None else orjson.dumps(payload)
        try:
            handler.send_response(status)
            for name, value in headers.items():
                handler.send_header(name, value)
            if data:
                handler.send_header("Content-Type", self.content_type)
            handler.send_header("Content-Length", str(len(data)))
            handler.end_headers()
            handler.wfile.write(data)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client timed out and left: exactly what a timeout fault simulates

    def _reply(self, request: Recorded, fault: Fault | None) -> Reply:
        if request.path == "/__state__" and request.method == "GET":
            with self.lock:
                return 200, {}, self.state()
        if fault is not None and fault.kind == "429":
            headers = {"Retry-After": fault.retry_after} if fault.retry_after is not None else {}
            return 429, headers, self.error(429, "rate limited")
        if fault is not None and fault.kind == "500":
            return 500, {}, self.error(500, "internal error")
        try:
            with self.lock:
                return self.route(request)
        except Violation as violation:
            self.violations.append(ContractViolation(request, violation.reason))
            return violation.status, {}, self.error(violation.status, violation.reason)

    content_type = "application/json"

    def route(self, request: Recorded) -> Reply:
        raise NotImplementedError

    def error(self, status: int, message: str) -> Any:
        return {"message": message}

    def state(self) -> Any:
        """The remote audience as JSON (served at `GET /__state__` for manual runs against `make dev`)."""
        raise NotImplementedError

    def calls(self, path_fragment: str, method: str | None = None) -> list[Recorded]:
        with self.lock:
            return [
                r
                for r in self.requests
                if path_fragment in r.path and (method is None or r.method == method) and r.status < 300
            ]

    def require(self, condition: bool, reason: str, status: int = 400) -> None:
        if not condition:
            raise Violation(reason, status)


class Violation(Exception):
    def __init__(self, reason: str, status: int = 400) -> None:
        super().__init__(reason)
        self.reason = reason
        self.status = status


# ------------------------------------------------------------------------------------------------------
JSON_API = "application/vnd.api+json"
_ANY = re.compile(r"^any\((email|external_id),\[(.*)\]\)$")


@dataclass
class KlaviyoProfile:
    id: str
    email: str | None = None
    external_id: str | None = None


class FakeKlaviyo(FakePlatform):
    """Lists API (`/api/lists/<id>/relationships/profiles/` POST/DELETE ≤ 1000 ids, 204), Profiles API
    (`GET /api/profiles/?filter=any(...)` ≤ 100, `POST /api/profile-import/` 200/201)."""

    content_type = JSON_API

    def __init__(self, api_key: str, list_ids: tuple[str, ...] = ("Y6nRLr",)) -> None:
        super().__init__(api_key)
        self.lists: dict[str, set[str]] = {list_id: set() for list_id in list_ids}
        self.profiles: dict[str, KlaviyoProfile] = {}
        self.jobs: dict[str, dict[str, Any]] = {}
        self._ids = itertools.count(1)

    def error(self, status: int, message: str) -> Any:
        return {"errors": [{"status": status, "code": "error", "title": message, "detail": message}]}

    def route(self, request: Recorded) -> Reply:
        presented = request.headers.get("authorization")
        # Echoes what it was given, as some APIs do: the client must never store response bodies.
        self.require(presented == f"Klaviyo-API-Key {self.api_key}", f"bad credentials {presented!r}", 401)
        self.require(
            re.fullmatch(r"\d{4}-\d{2}-\d{2}(\.\w+)?", request.headers.get("revision", "")) is not None,
            "missing or invalid revision header",
        )
        self.require(request.headers.get("accept") == JSON_API, "accept must be application/vnd.api+json", 406)
        if request.method in ("POST", "DELETE"):
            self.require(request.headers.get("content-type") == JSON_API, "content-type must be JSON:API", 415)
        match = re.fullmatch(r"/api/lists/([^/]+)/relationships/profiles/?", request.path)
        if match and request.method in ("POST", "DELETE"):
            return self._relationships(request, match.group(1))
        if re.fullmatch(r"/api/profiles/?", request.path) and request.method == "GET":
            return self._get_profiles(request)
        if re.fullmatch(r"/api/profile-import/?", request.path) and request.method == "POST":
            return self._import(request)
        if re.fullmatch(r"/api/profile-bulk-import-jobs/?", request.path) and request.method == "POST":
            return self._spawn_job(request)
        job = re.fullmatch(r"/api/profile-bulk-import-jobs/([^/]+)/?", request.path)
        if job and request.method == "GET":
            return self._job(job.group(1))
        raise Violation(f"no such endpoint {request.method} {request.path}", 404)

    def _spawn_job(self, request: Recorded) -> Reply:
        data = request.body.get("data") if isinstance(request.body, dict) else None
        self.require(isinstance(data, dict) and data.get("type") == "profile-bulk-import-job", "data.type")
        assert isinstance(data, dict)
        profiles = ((data.get("attributes") or {}).get("profiles") or {}).get("data")
        self.require(isinstance(profiles, list) and 1 <= len(profiles) <= 10_000, "1..10,000 profiles per job")
        self.require(len(orjson.dumps(request.body)) <= 5 * 1024 * 1024, "job payload over 5 MB", 413)
        assert isinstance(profiles, list)
        for profile in profiles:
            self.require(isinstance(profile, dict) and profile.get("type") == "profile", "profile type")
            attributes = profile.get("attributes") or {}
            self.require(bool(attributes.get("email") or attributes.get("external_id")), "an identifier is required")
        lists = ((data.get("relationships") or {}).get("lists") or {}).get("data") or []
        self.require(all(item.get("type") == "list" and item.get("id") in self.lists for item in lists), "list", 404)
        job_id = f"job-{next(self._ids)}"
        self.jobs[job_id] = {"profiles": profiles, "lists": [item["id"] for item in lists], "polls": 0}
        attributes = {"status": "queued", "total_count": len(profiles), "completed_count": 0, "failed_count": 0}
        return 202, {}, {"data": {"type": "profile-bulk-import-job", "id": job_id, "attributes": attributes}}

    def _job(self, job_id: str) -> Reply:
        self.require(job_id in self.jobs, "job not found", 404)
        job = self.jobs[job_id]
        job["polls"] += 1
        status, completed, failed = "processing", 0, 0
        if job["polls"] >= 2:  # asynchronous: the first poll still sees it processing
            status = "complete"
            for profile in job["profiles"]:
                attributes = profile["attributes"]
                email, external_id = attributes.get("email"), attributes.get("external_id")
                if email is not None and "." not in email.partition("@")[2]:
                    failed += 1  # Klaviyo refuses addresses without a proper domain
                    continue
                found = self._upsert_profile(email.lower() if email else None, external_id)
                for list_id in job["lists"]:
                    self.lists[list_id].add(found.id)
                completed += 1
            job["profiles"] = []
        attributes = {"status": status, "completed_count": completed, "failed_count": failed}
        return 200, {}, {"data": {"type": "profile-bulk-import-job", "id": job_id, "attributes": attributes}}

    def _upsert_profile(self, email: str | None, external_id: str | None) -> KlaviyoProfile:
        for profile in self.profiles.values():
            if (email and profile.email == email) or (external_id and profile.external_id == external_id):
                return profile
        profile = KlaviyoProfile(f"01PROFILE{next(self._ids):016d}", email, external_id)
        self.profiles[profile.id] = profile
        return profile

    def _relationships(self, request: Recorded, list_id: str) -> Reply:
        self.require(list_id in self.lists, "list not found", 404)
        data = request.body.get("data") if isinstance(request.body, dict) else None
        self.require(isinstance(data, list) and 0 < len(data) <= 1000, "data must hold 1..1000 profiles")
        assert isinstance(data, list)
        ids = []
        for item in data:
            self.require(isinstance(item, dict) and set(item) == {"type", "id"}, "relationship item shape")
            self.require(item["type"] == "profile" and isinstance(item["id"], str), "relationship item type")
            self.require(item["id"] in self.profiles, f"profile {item['id']} does not exist")
            ids.append(item["id"])
        if request.method == "POST":
            self.lists[list_id].update(ids)
        else:
            self.lists[list_id].difference_update(ids)
        return 204, {}, None

    def _get_profiles(self, request: Recorded) -> Reply:
        raw_filter = request.query.get("filter", [""])[0]
        size = int(request.query.get("page[size]", ["20"])[0])
        self.require(1 <= size <= 100, "page[size] must be 1..100")
        match = _ANY.fullmatch(raw_filter)
        self.require(match is not None, f"unsupported filter {raw_filter!r}")
        assert match is not None
        values = orjson.loads(f"[{match.group(2)}]")
        self.require(len(values) <= 100, "any() takes at most 100 values")
        field_name = match.group(1)
        if field_name == "email":  # Klaviyo keeps emails lower-cased and matches them that way
            values = [v.lower() for v in values]
        found = [p for p in self.profiles.values() if getattr(p, field_name) in set(values)]
        self.require(len(found) <= size, "test data exceeds one page")
        data = [{"type": "profile", "id": p.id, "attributes": {field_name: getattr(p, field_name)}} for p in found]
        return 200, {}, {"data": data, "links": {"self": request.path, "next": None, "prev": None}}

    def _import(self, request: Recorded) -> Reply:
        data = request.body.get("data") if isinstance(request.body, dict) else None
        self.require(isinstance(data, dict) and data.get("type") == "profile", "data.type must be profile")
        assert isinstance(data, dict)
        attributes = data.get("attributes") or {}
        email, external_id = attributes.get("email"), attributes.get("external_id")
        self.require(bool(email or external_id), "an identifier is required")
        if email is not None:
            self.require(isinstance(email, str) and "@" in email, "invalid email")
            email = email.lower()
        for profile in self.profiles.values():
            if (email and profile.email == email) or (external_id and profile.external_id == external_id):
                return 200, {}, {"data": {"type": "profile", "id": profile.id, "attributes": attributes}}
        profile = KlaviyoProfile(f"01PROFILE{next(self._ids):016d}", email, external_id)
        self.profiles[profile.id] = profile
        return 201, {}, {"data": {"type": "profile", "id": profile.id, "attributes": attributes}}

    def state(self) -> Any:
        return {
            list_id: sorted(self.profiles[p].email or self.profiles[p].external_id or p for p in ids)
            for list_id, ids in self.lists.items()
        }

    def members(self, list_id: str = "Y6nRLr", by: str = "email") -> set[str]:
        with self.lock:
            return {getattr(self.profiles[pid], by) for pid in self.lists[list_id]}


class FakeBraze(FakePlatform):
    """`POST /v2/subscription/status/set` (Bearer, JSON, ≤ 50 ids per group entry) → 201."""

    def __init__(self, api_key: str, groups: tuple[str, ...] = ("sg-vip",)) -> None:
        super().__init__(api_key)
        self.states: dict[str, dict[str, str]] = {g: {} for g in groups}

    def error(self, status: int, message: str) -> Any:
        return {"message": message}

    def route(self, request: Recorded) -> Reply:
        self.require(request.headers.get("authorization") == f"Bearer {self.api_key}", "invalid api key", 401)
        self.require(request.path == "/v2/subscription/status/set", f"no such endpoint {request.path}", 404)
        self.require(request.method == "POST", "method not allowed", 405)
        self.require(request.headers.get("content-type", "").startswith("application/json"), "content-type", 415)
        body = request.body
        self.require(isinstance(body, dict) and set(body) == {"subscription_groups"}, "body shape")
        groups = body["subscription_groups"]
        self.require(isinstance(groups, list) and len(groups) >= 1, "subscription_groups must be a list")
        for group in groups:
            self.require(isinstance(group, dict), "group must be an object")
            self.require(group.get("subscription_group_id") in self.states, "unknown subscription group")
            self.require(group.get("subscription_state") in ("subscribed", "unsubscribed"), "subscription_state")
            keys = [k for k in ("external_ids", "emails", "phones") if k in group]
            self.require(len(keys) == 1, "exactly one of external_ids, emails, phones")
            self.require(not ("emails" in group and "phones" in group), "emails and phones together")
            ids = group[keys[0]]
            self.require(isinstance(ids, list) and 1 <= len(ids) <= 50, "1..50 identifiers per request")
            extra = set(group) - {"subscription_group_id", "subscription_state", keys[0], "use_double_opt_in_logic"}
            self.require(not extra, f"unknown fields {sorted(extra)}")
        for group in groups:
            key = next(k for k in ("external_ids", "emails") if k in group)
            for identifier in group[key]:
                self.states[group["subscription_group_id"]][identifier] = group["subscription_state"]
        return 201, {}, {"message": "success"}

    def state(self) -> Any:
        return {
            g: sorted(i for i, state in states.items() if state == "subscribed") for g, states in self.states.items()
        }

    def subscribed(self, group: str = "sg-vip") -> set[str]:
        with self.lock:
            return {i for i, state in self.states[group].items() if state == "subscribed"}


@dataclass
class Audience:
    id: int
    name: str
    integration_id: str | None
    members: set[str] = field(default_factory=set)


class FakeTalonOne(FakePlatform):
    """Integration API: `POST /v2/audiences` (201, 409 on a duplicate integrationId) and
    `POST /v2/customer_audiences` (≤ 1000 add/delete actions, 204), `Authorization: ApiKey-v1 <key>`."""

    def __init__(self, api_key: str) -> None:
        super().__init__(api_key)
        self.audiences: dict[int, Audience] = {}
        self._ids = itertools.count(700)

    def route(self, request: Recorded) -> Reply:
        self.require(request.headers.get("authorization") == f"ApiKey-v1 {self.api_key}", "unauthorized", 401)
        self.require(request.method == "POST", "method not allowed", 405)
        self.require(request.headers.get("content-type", "").startswith("application/json"), "content-type", 415)
        if request.path == "/v2/audiences":
            return self._create(request.body)
        if request.path == "/v2/customer_audiences":
            return self._update(request.body)
        raise Violation(f"no such endpoint {request.path}", 404)

    def _create(self, body: Any) -> Reply:
        self.require(isinstance(body, dict) and isinstance(body.get("name"), str) and body["name"], "name required")
        allowed = {"name", "sandbox", "description", "integration", "integrationId", "createdIn3rdParty"}
        self.require(set(body) <= allowed, "unknown fields")
        integration_id = body.get("integrationId")
        if integration_id is not None and any(a.integration_id == integration_id for a in self.audiences.values()):
            raise Violation("An Audience with this ID already exists for this integration.", 409)
        audience = Audience(next(self._ids), body["name"], integration_id)
        self.audiences[audience.id] = audience
        return 201, {}, {"id": audience.id, "accountId": 1, "created": "2026-01-01T00:00:00Z", **body}

    def _update(self, body: Any) -> Reply:
        data = body.get("data") if isinstance(body, dict) else None
        self.require(isinstance(data, list) and 1 <= len(data) <= 1000, "data must hold 1..1000 actions")
        assert isinstance(data, list)
        for item in data:
            self.require(
                isinstance(item, dict) and set(item) == {"action", "profileIntegrationId", "audienceId"}, "item shape"
            )
            self.require(item["action"] in ("add", "delete"), "action must be add or delete")
            self.require(isinstance(item["profileIntegrationId"], str) and item["profileIntegrationId"], "profile id")
            self.require(isinstance(item["audienceId"], int), "audienceId must be a number")
            self.require(item["audienceId"] in self.audiences, "audience not found", 404)
        for item in data:
            members = self.audiences[item["audienceId"]].members
            if item["action"] == "add":
                members.add(item["profileIntegrationId"])
            else:
                members.discard(item["profileIntegrationId"])
        return 204, {}, None

    def state(self) -> Any:
        return {str(a.id): {"name": a.name, "members": sorted(a.members)} for a in self.audiences.values()}

    def members(self, audience_id: int) -> set[str]:
        with self.lock:
            return set(self.audiences[audience_id].members)


PLATFORMS: dict[str, Callable[[str], FakePlatform]] = {
    "klaviyo": FakeKlaviyo,
    "braze": FakeBraze,
    "talonone": FakeTalonOne,
}


def main() -> None:
    """`python -m tests.support.platforms braze --port 9100 --api-key test-key`: a contract server to
    point a connector at from `make dev`; `GET /__state__` shows the remote audience."""
    import argparse
    import signal

    parser = argparse.ArgumentParser()
    parser.add_argument("platform", choices=sorted(PLATFORMS))
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--api-key", default="test-key")
    args = parser.parse_args()
    server = PLATFORMS[args.platform](args.api_key)
    server.start(port=args.port)
    print(f"{args.platform} contract server on {server.url} (state: {server.url}/__state__)", flush=True)
    signal.sigwait({signal.SIGINT, signal.SIGTERM})
    server.stop()


if __name__ == "__main__":
    main()
