"""The public paths of the API contract (handbook API.md) with the function that serves each."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

API_MD = Path(__file__).resolve().parents[2] / ".." / "shared" / "handbook" / "API.md"
_METHODS = re.compile(r"^(?:[A-Z]+/)*[A-Z]+\s+")


@dataclass(frozen=True)
class PublicPath:
    path: str  # a concrete request path (placeholders filled in)
    function: str
    row: str


def _concrete(path: str) -> str:
    return re.sub(r"<[^>]+>", "1", path.split("?", 1)[0])


def public_paths(api_md: Path = API_MD) -> list[PublicPath]:
    """Every path of the endpoint table: `GET/POST /a/<id>/ · DELETE …/b/<x>/ | function | ...` rows."""
    found: list[PublicPath] = []
    for line in api_md.read_text().splitlines():
        cells = [c.strip() for c in re.split(r"(?<!\\)\|", line.strip().strip("|"))]
        if len(cells) < 2 or "/api/" not in cells[0]:
            continue
        function = cells[1].split()[0]
        previous = ""
        for part in cells[0].replace("\\", "").split(" · "):
            target = _METHODS.sub("", part.strip())
            if target.startswith("…"):  # `…/members/<id>/`: relative to the previous path of the row
                suffix = target[1:]
                anchor = previous.find("/" + suffix.strip("/").split("/")[0] + "/")
                target = (previous[:anchor] if anchor >= 0 else previous.rstrip("/")) + suffix
            if not target.startswith("/"):
                continue  # `GET same`, `GET ?export_id=`: the previous path again
            previous = target
            found.append(PublicPath(_concrete(target), function, cells[0]))
    return found
