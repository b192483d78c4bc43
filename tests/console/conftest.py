"""One `make dev` stack (the real dev server process serving the built console) for the console tests."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest

from tests.support.console import AXE, CONSOLE_DIST, ConsoleStack
from tests.support.devserver import devserver


@pytest.fixture(scope="session")
def console_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ConsoleStack]:
    if not (CONSOLE_DIST / "index.html").is_file() or not AXE.is_file():
        pytest.fail("the console is not built: `make console` (make test does it) runs npm ci and the build")
    data_dir = tmp_path_factory.mktemp("console-stack")
    with devserver(data_dir) as (base, _process):
        saved = json.loads((data_dir / "dev-credentials.json").read_text())
        yield ConsoleStack(base, saved["email"], saved["password"], saved["tenant_id"], saved["api_key"])
