"""docs/api.md's endpoint table is the routes the functions register: same rows, auth, role and status."""

from __future__ import annotations

import re

from segops.catalog import HTTP_FUNCTIONS, routers

from tests.support.api_contract import Endpoint, documented_endpoints


def _registered() -> list[Endpoint]:
    return [
        Endpoint(route.method, re.sub(r"<\w+:", "<", route.path), name, route.auth, route.role, route.status)
        for name in HTTP_FUNCTIONS
        for router in routers(name)
        for route in router.routes
    ]


def _key(endpoint: Endpoint) -> tuple[str, str]:
    return endpoint.method, endpoint.path


def test_every_registered_route_is_documented_exactly() -> None:
    # GIVEN the routes every HTTP function registers and the rows of docs/api.md
    documented = {_key(e): e for e in documented_endpoints()}
    registered = {_key(e): e for e in _registered()}
    # THEN no route is served undocumented and no documented route is missing
    assert sorted(set(registered) - set(documented)) == [], "served, not in docs/api.md"
    assert sorted(set(documented) - set(registered)) == [], "in docs/api.md, not served"
    # AND each row says which function serves it, what credentials it takes, its minimum role and status
    assert [documented[k] for k in sorted(registered)] == [registered[k] for k in sorted(registered)]


def test_no_row_is_listed_twice() -> None:
    keys = [_key(e) for e in documented_endpoints()]
    assert len(keys) == len(set(keys))
