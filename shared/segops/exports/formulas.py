"""CSV formula injection: a spreadsheet runs a cell starting with `=`, `+`, `-`, `@`, tab or CR as a
formula (`=HYPERLINK(...)`, `=cmd|...`). User ids come from tenants' end users, so every CSV we write
prefixes such a cell with `'`, which spreadsheets show as text (OWASP's "CSV injection" advice)."""

from __future__ import annotations

FORMULA_LEADS = ("=", "+", "-", "@", "\t", "\r")
GUARD = "'"


def neutralize(cell: str) -> str:
    return GUARD + cell if cell.startswith(FORMULA_LEADS) else cell


def neutralized_user_ids(sql: str, params: dict[str, object]) -> tuple[str, dict[str, object]]:
    """Wrap a query selecting `user_id, computed_at` so ClickHouse applies `neutralize` to `user_id`
    while rendering CSV itself (the subquery's order is kept)."""
    wrapped = (
        "SELECT if(substring(user_id, 1, 1) IN {formula_leads:Array(String)}, "
        "concat({formula_guard:String}, user_id), user_id) AS user_id, computed_at "
        f"FROM ({sql})"
    )
    return wrapped, {**params, "formula_leads": list(FORMULA_LEADS), "formula_guard": GUARD}
