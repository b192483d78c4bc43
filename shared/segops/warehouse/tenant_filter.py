"""The check `TenantWarehouse` runs on every statement: each read of a tenant table is filtered by the
bound tenant in its own query.

Rule, per `FROM <table>` / `JOIN <table>` of a table in `TENANT_TABLES`: the same SELECT (same
parenthesis level, same branch of a UNION) must hold `[alias.]tenant_id = {tenant_id:UInt64}` after
its WHERE, PREWHERE or ON, and no top-level `OR` that could bypass it. A subquery's filter does not
count for its outer query, nor one UNION branch's for another. This is stricter than "the placeholder
appears somewhere" (which `SELECT {tenant_id:UInt64}, * FROM events` passed) while every statement
the code issues follows it; it is a syntactic check, so the ClickHouse row policies
(`segops.warehouse.row_policies`) stay the backstop on a server.
"""

from __future__ import annotations

import re
from functools import lru_cache

# Every table with a `tenant_id` column (tests/unit/warehouse/test_tenant_filter.py keeps it equal to
# the migrated schema).
TENANT_TABLES = frozenset(
    {
        "compute_candidates",
        "compute_results",
        "connector_ledger",
        "event_arrivals",
        "event_days",
        "events",
        "ingestion_errors",
        "lookalike_features",
        "membership_changes",
        "membership_commits",
        "segment_memberships",
        "usage",
        "usage_units",
        "user_day_states",
        "user_memberships",
        "user_properties",
    }
)
PLACEHOLDER = "{tenant_id:UInt64}"

_TOKEN = re.compile(
    r"'(?:[^'\\]|\\.)*'"  # string literal
    r"|`[^`]*`"  # quoted identifier
    r"|\{[^}]*\}"  # bound parameter
    r"|[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_`][A-Za-z0-9_`]*)*"  # identifier or keyword, maybe qualified
    r"|--[^\n]*|/\*.*?\*/"  # comments
    r"|\S",
    re.DOTALL,
)
_BRANCH_BREAKS = {"UNION", "EXCEPT", "INTERSECT"}
_FILTERS = {"WHERE", "PREWHERE", "ON"}


def _branches(sql: str) -> list[list[str]]:
    """Token lists of every SELECT branch: one per parenthesis group, split at UNION/EXCEPT/INTERSECT."""
    done: list[list[str]] = []
    stack: list[list[str]] = [[]]
    for part in _TOKEN.findall(sql):
        if part.startswith(("--", "/*")):
            continue
        if part == "(":
            stack[-1].append("(")
            stack.append([])
        elif part == ")":
            if len(stack) > 1:
                done.append(stack.pop())
            stack[-1].append(")")
        elif part.upper() in _BRANCH_BREAKS:
            done.append(stack[-1])
            stack[-1] = []
        else:
            stack[-1].append(part)
    return done + stack


# Words that can follow a table where an alias could stand: they end the table reference instead.
_CLAUSES = {
    "WHERE", "PREWHERE", "ON", "USING", "FINAL", "SAMPLE", "ARRAY", "LEFT", "RIGHT", "INNER", "FULL", "CROSS",
    "GLOBAL", "ANY", "ALL", "SEMI", "ANTI", "ASOF", "PASTE", "JOIN", "GROUP", "ORDER", "LIMIT", "HAVING",
    "SETTINGS", "FORMAT", "WINDOW", "QUALIFY", "WITH", "INTO",
}  # fmt: skip


def _names(tokens: list[str], at: int) -> set[str]:
    """How the table at `tokens[at]` may be referred to: its name and its alias, if any."""
    table = tokens[at].replace("`", "")
    names = {table, table.rsplit(".", 1)[-1]}
    following = tokens[at + 1 : at + 3]
    if following and following[0].upper() == "AS" and len(following) == 2:
        names.add(following[1].replace("`", ""))
    elif following and following[0].upper() not in _CLAUSES and _WORD.match(following[0].replace("`", "")):
        names.add(following[0].replace("`", ""))
    return names


_WORD = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def _is_tenant_column(token: str, names: set[str], joined: bool) -> bool:
    """`tenant_id` qualified by one of `names`; unqualified only for the FROM table (the left side of
    any join, which is where ClickHouse resolves an unqualified column)."""
    qualifier, _, column = token.replace("`", "").rpartition(".")
    if column != "tenant_id":
        return False
    return qualifier in names if qualifier else not joined


def _filtered(tokens: list[str], at: int, joined: bool) -> bool:
    names = _names(tokens, at)
    seen_filter = False
    for i in range(at + 1, len(tokens)):
        word = tokens[i].upper()
        if word in _FILTERS:
            seen_filter = True
        elif seen_filter and i + 2 < len(tokens) and tokens[i + 1] == "=":
            left, right = tokens[i], tokens[i + 2]
            if (_is_tenant_column(left, names, joined) and right == PLACEHOLDER) or (
                left == PLACEHOLDER and _is_tenant_column(right, names, joined)
            ):
                return True
    return False


@lru_cache(maxsize=1024)
def unfiltered_tables(sql: str) -> tuple[str, ...]:
    """Tenant tables `sql` reads without its own tenant filter (empty when the statement is scoped)."""
    missing: list[str] = []
    for tokens in _branches(sql):
        has_or = any(t.upper() == "OR" for t in tokens)
        for i, token in enumerate(tokens[:-1]):
            if token.upper() not in ("FROM", "JOIN"):
                continue
            table = tokens[i + 1].replace("`", "").rsplit(".", 1)[-1]
            if table in TENANT_TABLES and (has_or or not _filtered(tokens, i + 1, token.upper() == "JOIN")):
                missing.append(table)
    return tuple(missing)
