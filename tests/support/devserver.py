"""`python -m segops.devserver` (what `make dev` runs) in its own process, driven over real HTTP."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from tests.support.servers import free_port, wait_until


def call(base: str, method: str, path: str, body: Any = None, headers: dict[str, str] | None = None) -> tuple[int, Any]:
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(base + path, data=data, method=method, headers=headers or {})
    if data is not None:
        request.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, json.loads(response.read() or b"null")
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read() or b"null")


@contextmanager
def devserver(
    data_dir: Path, port_variable: str = "SEGOPS_PORT", extra_env: dict[str, str] | None = None
) -> Iterator[tuple[str, subprocess.Popen[str]]]:
    """The dev server on a free port given in `port_variable` (`SEGOPS_PORT` or `PORT`)."""
    port = free_port()
    env = {
        **{k: v for k, v in os.environ.items() if k not in ("PORT", "SEGOPS_PORT")},
        **(extra_env or {}),
        port_variable: str(port),
        "SEGOPS_DATA_DIR": str(data_dir),
        "SEGOPS_PASSWORD_HASH_TIME_COST": "1",
        "SEGOPS_PASSWORD_HASH_MEMORY_KIB": "1024",
        "SEGOPS_LOG_LEVEL": "WARNING",
    }
    process = subprocess.Popen(
        [sys.executable, "-m", "segops.devserver"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        wait_until(lambda: call(base, "GET", "/api/ingestion/health/")[0] == 200, timeout=90, what="devserver")
        yield base, process
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(timeout=10)
