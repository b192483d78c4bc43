"""One `make dev` stack (the real dev server process serving the built console) for the console tests."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest

from tests.support.builds import require_built
from tests.support.console import AXE, CONSOLE_DIST, ConsoleStack
from tests.support.devserver import devserver


@pytest.fixture(scope="session")
def console_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ConsoleStack]:
    require_built(CONSOLE_DIST / "index.html", "console")
    require_built(AXE, "console")
    data_dir = tmp_path_factory.mktemp("console-stack")
    with devserver(data_dir) as (base, _process):
        saved = json.loads((data_dir / "dev-credentials.json").read_text())
        yield ConsoleStack(base, saved["email"], saved["password"], saved["tenant_id"], saved["api_key"])
