"""Property-based fuzzing of every operation in `/api/openapi.json` (schemathesis), in-process
against the whole local stack with its bus worker running: authenticated with a JWT, with an API
key, with an API key as Segment's HTTP Basic write key, and without credentials for the public
operations. The checks `not_a_server_error`, `response_schema_conformance`,
`status_code_conformance` and `ignored_auth` find nothing.

Deterministic (Hypothesis `derandomize`) so a failure reproduces; `SEGOPS_FUZZ_EXAMPLES` raises the
examples per operation for a deeper local hunt (the default keeps the whole file near a minute)."""

from __future__ import annotations

import base64
import os
import traceback
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import ignored_auth, response_schema_conformance, status_code_conformance
from segops.config import Settings
from segops.localstack import LocalStack
from werkzeug.test import TestResponse

from tests.support.api import Account, Api
from tests.support.segment_api import computed_segment

CHECKS = [not_a_server_error, response_schema_conformance, status_code_conformance, ignored_auth]
EXAMPLES = int(os.environ.get("SEGOPS_FUZZ_EXAMPLES", "25"))
SECURITY_SCHEMES = {"jwt": "bearerAuth", "api_key": "apiKeyAuth", "write_key": "writeKeyAuth"}


@pytest.fixture(scope="module")
def fuzz_stack(tmp_path_factory: pytest.TempPathFactory, chdb_path: Path) -> Iterator[LocalStack]:
    settings = Settings(
        environment="test",
        data_dir=tmp_path_factory.mktemp("fuzz") / "data",
        chdb_path=chdb_path,
        clickhouse_database=f"t_{uuid.uuid4().hex[:12]}",
        password_hash_time_cost=1,
        password_hash_memory_kib=1024,
        bus_retry_base_seconds=0,
        jwt_secret="test-secret-" + uuid.uuid4().hex,
        # One tenant is signed up per operation, all from the test client's address: the per-address
        # signup limit is `test_abuse`'s subject, not the fuzzer's.
        signups_per_address=100_000,
    )
    stack = LocalStack(settings)
    stack.bus.start()  # what the API publishes is delivered, as on a running stack (and health is 200)
    try:
        yield stack
    finally:
        stack.stop()


@pytest.fixture(scope="module")
def schema(fuzz_stack: LocalStack) -> Any:
    return schemathesis.openapi.from_wsgi("/api/openapi.json", fuzz_stack.wsgi)


def _operations(schema: Any, scheme: str | None) -> list[Any]:
    """Operations accepting `scheme` (None: the public ones)."""
    found = []
    for result in schema.get_all_operations():
        operation = result.ok()
        names = {name for requirement in operation.definition.raw.get("security", []) for name in requirement}
        if (scheme is None and not names) or (scheme is not None and SECURITY_SCHEMES[scheme] in names):
            found.append(operation)
    return found


def _existing(api: Api, account: Account, names: set[str]) -> dict[str, int]:
    """Path parameters naming real objects of the caller's tenant, so the fuzzer reaches the handlers
    (unknown and out-of-range ids are `test_path_ids`'s)."""
    owner = account.bearer
    values = {"tenant_id": account.tenant_id}
    if names & {"segment_id", "connector_id", "export_id"}:
        values["segment_id"] = computed_segment(api.stack, api, account, ["u1", "u2"])
    if "connector_id" in names:
        body = {"name": "f", "type": "file", "segment_id": values["segment_id"], "active": True, "config": {}}
        values["connector_id"] = _created(api.post("/api/connectors/", body, headers=owner))
    if "export_id" in names:
        values["export_id"] = _created(api.post(f"/api/segments/{values['segment_id']}/export/", {}, headers=owner))
    members = f"/api/tenants/{account.tenant_id}/members/"
    if "user_id" in names:
        # a member joins by accepting a mailed invitation
        other = api.signup()
        api.add_member(account, other, "viewer")
        listed = api.get(members, headers=owner).get_json()["results"]
        values["user_id"] = next(m["user_id"] for m in listed if m["email"] == other.email)
    if "invitation_id" in names:
        invited = api.post(
            members, {"email": f"invitee-{account.tenant_slug}@example.com", "role": "viewer"}, headers=owner
        )
        values["invitation_id"] = _created(invited)
    if "key_id" in names:
        # another key than the caller's, which the fuzzer may revoke
        values["key_id"] = _created(api.post("/api/keys/", {"name": "spare", "role": "viewer"}, headers=owner))
    return {name: value for name, value in values.items() if name in names}


def _created(response: TestResponse, field: str = "id") -> int:
    assert response.status_code in (201, 202), response.get_data(as_text=True)
    return int(response.get_json()[field])


def _fuzz(operation: Any, path_parameters: dict[str, int], headers: dict[str, str]) -> None:
    @given(case=operation.as_strategy(path_parameters=path_parameters or None))
    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        database=None,
        derandomize=True,
        phases=[Phase.explicit, Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    def run(case: Any) -> None:
        case.call_and_validate(headers=headers, checks=CHECKS)

    run()


def _credential(account: Account, scheme: str) -> dict[str, str]:
    if scheme == "jwt":
        return account.bearer
    if scheme == "write_key":
        return {"Authorization": "Basic " + base64.b64encode(f"{account.api_key}:".encode()).decode()}
    return account.key


# The bus worker thread delivers to functions-framework, which draws each request's execution id
# from `random`, while Hypothesis generates a case on the test thread: Hypothesis sees the global
# state move and warns, though generation never used it.
@pytest.mark.filterwarnings("ignore:Do not use the `random` module inside strategies")
@pytest.mark.parametrize("scheme", ["jwt", "api_key", "write_key", None])
def test_fuzz_every_operation(fuzz_stack: LocalStack, schema: Any, scheme: str | None) -> None:
    api = Api(fuzz_stack)
    operations = _operations(schema, scheme)
    assert operations, f"the document has operations for {scheme or 'anonymous'} callers"
    failures = []
    for operation in operations:
        headers: dict[str, str] = {}
        path_parameters: dict[str, int] = {}
        if scheme is not None:
            # A fresh tenant per operation: what one operation deletes cannot starve the next.
            account = api.signup()
            headers = {**_credential(account, scheme), "X-SegOps-Tenant": str(account.tenant_id)}
            path_parameters = _existing(api, account, {p.name for p in operation.path_parameters})
        try:
            _fuzz(operation, path_parameters, headers)
        except (Exception, BaseExceptionGroup) as exc:  # every operation is fuzzed; failures reported together
            failures.append(f"{operation.label}:\n{''.join(traceback.format_exception(exc))}")
    assert failures == [], "\n\n".join(failures)
