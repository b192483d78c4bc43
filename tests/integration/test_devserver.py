"""`make dev` for real: `python -m segops.devserver` in its own process, driven over real HTTP."""

from __future__ import annotations

import http.client
import json
import signal
import socket
import subprocess
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
from segops.devserver import HTTP_THREADS

from tests.support.devserver import call, devserver

pytestmark = pytest.mark.slow


def stop(process: subprocess.Popen[str]) -> str:
    process.send_signal(signal.SIGTERM)
    output, _ = process.communicate(timeout=30)
    assert process.returncode == 0, output
    return output


def test_make_dev_walkthrough_and_idempotent_seed(tmp_path: Path) -> None:
    data_dir = tmp_path / "stack"
    # GIVEN the dev server started on a fresh data dir, its port in PORT (the Cloud Run convention)
    with devserver(data_dir, "PORT") as (base, process):
        # WHEN the README's walk-through runs over real HTTP
        status, signed_up = call(
            base,
            "POST",
            "/api/auth/signup/",
            {"email": "you@example.com", "password": "a long password", "tenant_slug": "acme"},
        )
        assert (status, signed_up) == (202, {"status": "verification_sent"})
        status, mailbox = call(base, "GET", "/dev/mailbox.json")
        [link] = next(mail["links"] for mail in mailbox if mail["to"] == "you@example.com")
        assert link.startswith(f"{base}/verify-email?token=")
        token = parse_qs(urlsplit(link).query)["token"][0]
        status, verified = call(
            base, "POST", "/api/auth/verify-email/", {"token": token, "password": "a long password"}
        )
        assert status == 201 and verified["tenant"]["slug"] == "acme", verified
        status, pair = call(
            base, "POST", "/api/auth/token/", {"email": "you@example.com", "password": "a long password"}
        )
        assert status == 200 and set(pair) == {"access", "refresh", "expires_in"}
        bearer = {"Authorization": f"Bearer {pair['access']}"}
        status, key = call(base, "POST", "/api/keys/", {"name": "server", "role": "member"}, bearer)
        assert status == 201 and key["key"].startswith("sk_live_")
        status, health = call(base, "GET", "/api/ingestion/health/")
        assert (status, health) == (200, {"pubsub_topic": "ok", "worker": "ok", "clickhouse": "ok"})
        status, openapi = call(base, "GET", "/api/openapi.json")
        assert status == 200 and openapi["openapi"].startswith("3.1")
        # AND the seeded demo owner can log in with what was printed and saved
        saved = json.loads((data_dir / "dev-credentials.json").read_text())
        assert set(saved) == {"tenant_id", "tenant_slug", "email", "password", "api_key"}
        status, _ = call(base, "POST", "/api/auth/token/", {"email": saved["email"], "password": saved["password"]})
        assert status == 200
        # THEN SIGTERM stops it cleanly, after printing the banner with those credentials
        output = stop(process)
    assert saved["api_key"] in output and saved["password"] in output
    assert f"{base}/api/ingestion/health/" in output
    assert f"{base}/dev/mailbox/" in output
    assert f"SegOps dev stack on {base} (port from PORT)" in output
    assert f"console  {base}/  (log in as the owner below)" in output
    assert f"owner    {saved['email']} / {saved['password']}" in output
    assert "stopped" in output
    assert '"severity":"INFO"' not in output  # SEGOPS_LOG_LEVEL=WARNING holds for every logger

    # GIVEN a second start on the same data dir, with SEGOPS_PORT and also a PORT that is taken
    with socket.create_server(("127.0.0.1", 0)) as taken:
        other = {"PORT": str(taken.getsockname()[1])}
        with devserver(data_dir, "SEGOPS_PORT", other) as (base, process):
            # THEN SEGOPS_PORT wins, and the seed is reused: same credentials, everything created is still there
            again = json.loads((data_dir / "dev-credentials.json").read_text())
            assert again == saved
            login = {"email": saved["email"], "password": saved["password"]}
            assert call(base, "POST", "/api/auth/token/", login)[0] == 200
            status, pair = call(
                base, "POST", "/api/auth/token/", {"email": "you@example.com", "password": "a long password"}
            )
            assert status == 200
            bearer = {"Authorization": f"Bearer {pair['access']}"}
            status, tenants = call(base, "GET", "/api/tenants/", headers=bearer)
            assert status == 200 and [t["slug"] for t in tenants["results"]] == ["acme"]
            output = stop(process)
    assert f"SegOps dev stack on {base} (port from SEGOPS_PORT)" in output


def test_connections_are_kept_alive_and_more_clients_than_threads_are_served(tmp_path: Path) -> None:
    data_dir = tmp_path / "stack"
    with devserver(data_dir) as (base, process):
        key = json.loads((data_dir / "dev-credentials.json").read_text())["api_key"]
        headers = {"Authorization": f"ApiKey {key}", "Content-Type": "application/json"}
        port = int(base.rsplit(":", 1)[1])
        # GIVEN one client connection (an SDK's session)
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        # WHEN it posts three batches one after another
        peers = []
        for i in range(3):
            body = json.dumps({"events": [{"user_id": f"u-{i}", "event_type": "page_viewed"}]})
            connection.request("POST", "/api/ingestion/track/batch/", body=body, headers=headers)
            response = connection.getresponse()
            assert (response.status, response.getheader("Connection")) == (202, None), response.read()
            response.read()
            assert connection.sock is not None
            peers.append(connection.sock.getsockname())
        # THEN all three went over the one connection
        assert len(set(peers)) == 1

        # AND more concurrent clients than the server has threads are all answered
        def health(_: int) -> int:
            return call(base, "GET", "/api/ingestion/health/")[0]

        with ThreadPoolExecutor(HTTP_THREADS * 2) as pool:
            assert set(pool.map(health, range(HTTP_THREADS * 4))) == {200}

        # AND SIGTERM stops the server at once although the idle connection is still open
        started = time.monotonic()
        output = stop(process)
        assert time.monotonic() - started < 15, output
        connection.close()
    assert "stopped" in output
