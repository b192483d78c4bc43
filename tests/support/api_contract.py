"""The endpoint table of the project's API contract (`docs/api.md`), parsed: one row per method and path."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

API_MD = Path(__file__).resolve().parents[2] / "docs" / "api.md"
COLUMNS = ["method", "path", "function", "auth", "role", "status", "request → response"]
# `HMAC` is checked by the Shopify handler itself, so its route, like `-`, takes no platform credential.
AUTH = {
    "-": (),
    "HMAC": (),
    "JWT": ("jwt",),
    "key": ("api_key",),
    "JWT/key": ("jwt", "api_key"),
    "Basic": ("write_key",),
}


@dataclass(frozen=True)
class Endpoint:
    method: str
    path: str  # `/api/segments/<segment_id>/` (werkzeug converters dropped)
    function: str
    auth: tuple[str, ...]
    role: str | None
    status: int

    @property
    def concrete_path(self) -> str:
        """A request path for this row, each placeholder filled in."""
        return re.sub(r"<[^>]+>", "1", self.path)


def _cells(line: str) -> list[str]:
    return [c.strip().replace("\\|", "|") for c in re.split(r"(?<!\\)\|", line.strip().strip("|"))]


def documented_endpoints(api_md: Path = API_MD) -> list[Endpoint]:
    """Every row of the table under `## Endpoints` (the header row must be exactly `COLUMNS`)."""
    lines = api_md.read_text().splitlines()
    start = lines.index("## Endpoints")
    header = next(i for i in range(start, len(lines)) if lines[i].startswith("|"))
    if _cells(lines[header]) != COLUMNS:
        raise ValueError(f"{api_md}: the endpoint table's columns must be {COLUMNS}, not {_cells(lines[header])}")
    found = []
    for line in lines[header + 2 :]:
        if not line.startswith("|"):
            break
        method, path, function, auth, role, status, _ = _cells(line)
        found.append(Endpoint(method, path, function, AUTH[auth], None if role == "-" else role, int(status)))
    return found
