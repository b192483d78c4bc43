"""Every setting the code reads is documented by its environment variable name."""

from __future__ import annotations

import re
from pathlib import Path

from segops.config import Settings

REPO = Path(__file__).resolve().parents[2]


def test_every_setting_is_named_in_the_docs() -> None:
    text = "\n".join(p.read_text() for p in [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))])
    named = set(re.findall(r"SEGOPS_[A-Z0-9_]+", text))
    variables = [
        f"SEGOPS_{name.upper()}" for name, field in Settings.model_fields.items() if field.validation_alias is None
    ]
    assert len(variables) > 50
    assert [variable for variable in variables if variable not in named] == []
