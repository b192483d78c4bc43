"""`make dev`: the whole stack on one port with embedded backends and a seeded demo tenant."""

from __future__ import annotations

import ctypes
import logging
import secrets
import signal
import socket
import threading
from pathlib import Path
from typing import Any

import orjson
from waitress.server import TcpWSGIServer, create_server

from segops import clock, logs
from segops.config import Settings
from segops.console import ConsoleAssets, with_console
from segops.localstack import LocalStack
from segops.mailer import DevMailbox
from segops.runtime import Runtime
from segops.store import keys
from segops.tenancy import models as m
from segops.tenancy import service

log = logging.getLogger("segops.dev")

DEMO_SLUG = "demo"
DEMO_EMAIL = "owner@demo.segops.dev"


# glibc mallopt parameter (malloc.h).
_M_ARENA_MAX = -8
# Two arenas: glibc gives threads up to 8 per core (16 here), and the dev server runs ~100 threads
# (64 bus workers, the HTTP server's, chDB's own); each arena kept its freed blocks (`make soak`:
# 15 arenas of ~15 MB each with 2.5-5.5 MB in use). The mmap and trim thresholds stay dynamic: fixed
# at 128 KiB they sent ClickHouse's 1 MiB buffers to mmap/munmap on every statement and `make load`'s
# p50 at 341.7 requests/s went from ~8 ms to ~200 ms.
_MALLOC_TUNING = ((_M_ARENA_MAX, 2),)


def tune_malloc() -> bool:
    """Bound the threaded server's heap growth (glibc only; elsewhere a no-op, False). Called before
    the server's threads start: an arena bound set later does not apply to arenas made before it."""
    mallopt = getattr(ctypes.CDLL(None), "mallopt", None)
    if mallopt is None:
        return False
    applied = [mallopt(parameter, value) == 1 for parameter, value in _MALLOC_TUNING]
    return all(applied)


# How often the dev server hands glibc's freed memory back to the system (`make soak`, 600 s at 50
# requests/s beside the same soak without it: RSS +3.4% instead of +6.8% from its 60 s warm-up, and
# level after ~4 minutes instead of still rising; each trim took 0.4-19 ms).
HEAP_TRIM_SECONDS = 30.0


def trim_heap() -> bool:
    """Return the free memory of every malloc arena to the system, including free pages inside the
    heaps, which glibc otherwise only gives back from a heap's top (glibc only; elsewhere False)."""
    malloc_trim = getattr(ctypes.CDLL(None), "malloc_trim", None)
    if malloc_trim is None:
        return False
    malloc_trim(0)
    return True


def trim_heap_periodically(seconds: float, stop: threading.Event) -> threading.Thread:
    """`trim_heap` every `seconds` on a daemon thread until `stop` is set."""

    def run() -> None:
        while not stop.wait(seconds):
            trim_heap()

    thread = threading.Thread(target=run, name="segops-heap-trim", daemon=True)
    thread.start()
    return thread


# Requests served at once; more wait in the server's queue. Its connections are kept alive (an SDK's
# session reuses one), and a request costs no new thread: werkzeug's dev server made a thread per
# connection and closed each after one request (docs/performance.md, "A ninth pass: the dev
# server's HTTP server").
HTTP_THREADS = 16


def http_server(host: str, port: int, app: Any) -> tuple[TcpWSGIServer, int]:
    """`app` served on `host:port` by waitress with `HTTP_THREADS` threads, and the port it listens on
    (a free one for port 0). Not running yet (`run`); a `SystemExit` raised in the thread running it (a
    signal handler) stops it."""
    family = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0][0]
    listener = socket.create_server((host, port), family=family, backlog=1024)
    # One listening socket: one server, never waitress's MultiSocketServer.
    server = create_server(
        app,
        sockets=[listener],
        threads=HTTP_THREADS,
        connection_limit=1000,
        asyncore_use_poll=True,  # select() cannot watch descriptors above 1023
    )
    assert isinstance(server, TcpWSGIServer)
    return server, listener.getsockname()[1]


def seed_demo(runtime: Runtime, credentials_path: Path) -> dict[str, Any]:
    """Idempotent: reuses the demo tenant and the saved credentials when they are still valid."""
    if credentials_path.exists():
        saved: dict[str, Any] = orjson.loads(credentials_path.read_bytes())
        tenant = service.tenant_by_slug(runtime, DEMO_SLUG)
        try:
            service.resolve_api_key(runtime, saved["api_key"])
            service.login(runtime, saved["email"], saved["password"])
        except Exception:
            saved = {}
        if tenant is not None and saved.get("tenant_id") == tenant.id:
            return saved
    password = secrets.token_urlsafe(12)
    tenant = service.tenant_by_slug(runtime, DEMO_SLUG)
    if tenant is None:
        password_hash = runtime.passwords.hash(password)
        _, tenant = service.create_account(runtime, DEMO_EMAIL, password_hash, DEMO_SLUG, "Demo")
    else:
        pointer = runtime.documents.load(keys.user_email_key(DEMO_EMAIL), m.Pointer)
        assert pointer is not None, "demo tenant exists without its owner"
        runtime.documents.update(
            keys.user_key(pointer.id),
            m.User,
            lambda u: u.model_copy(update={"password_hash": runtime.passwords.hash(password)}),
        )
    _, api_key = service.create_api_key(runtime, tenant.id, "dev", "admin", "owner", None)
    credentials = {
        "tenant_id": tenant.id,
        "tenant_slug": tenant.slug,
        "email": DEMO_EMAIL,
        "password": password,
        "api_key": api_key,
    }
    credentials_path.parent.mkdir(parents=True, exist_ok=True)
    credentials_path.write_bytes(orjson.dumps(credentials, option=orjson.OPT_INDENT_2))
    credentials_path.chmod(0o600)
    return credentials


def banner(base: str, port_source: str, credentials: dict[str, Any], mailbox: bool) -> str:
    key = credentials["api_key"]
    port_note = "the default port" if port_source == "default" else f"port from {port_source}"
    mail = f"  mailbox  {base}/dev/mailbox/ (signup and invitation links; JSON: mailbox.json)\n" if mailbox else ""
    return f"""
SegOps dev stack on {base} ({port_note})
  console  {base}/  (log in as the owner below)
  tenant   {credentials["tenant_slug"]} (id {credentials["tenant_id"]})
  owner    {credentials["email"]} / {credentials["password"]}
  api key  {key}
{mail}  (saved in the data dir as dev-credentials.json)

Try it:
  curl -s {base}/api/ingestion/health/
  curl -s -X POST {base}/api/ingestion/track/ -H "Authorization: ApiKey {key}" \\
       -H "Content-Type: application/json" \\
       -d '{{"user_id":"user-123","event_type":"page_viewed","payload":{{"path":"/pricing"}}}}'
  curl -s -X POST {base}/api/auth/token/ -H "Content-Type: application/json" \\
       -d '{{"email":"{credentials["email"]}","password":"{credentials["password"]}"}}'
  OpenAPI: {base}/api/openapi.json
"""


def main() -> int:
    tune_malloc()
    settings = Settings()
    logs.configure(settings.log_level)
    stack = LocalStack(settings)
    credentials = seed_demo(stack.runtime, settings.data_dir / "dev-credentials.json")
    port, port_source = settings.listen_port()
    site = with_console(stack, ConsoleAssets(settings.console_dir))
    server, port = http_server(settings.host, port, site)
    stack.start_background()
    base = f"http://{settings.host}:{port}"
    print(banner(base, port_source, credentials, isinstance(stack.runtime.mailer, DevMailbox)), flush=True)

    stopping = threading.Event()
    trim_heap_periodically(HEAP_TRIM_SECONDS, stopping)

    def stop(signum: int, _frame: object) -> None:
        # Handlers run in the main thread, inside `server.run()`: its loop ends on SystemExit, and
        # the requests being served get up to 5 s to finish.
        if not stopping.is_set():
            stopping.set()
            raise SystemExit(0)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    try:
        server.run()
        server.close()
    finally:
        stopping.set()  # a later signal does not interrupt the stop
        stopped_at = clock.now().isoformat(timespec="seconds")
        archived = stack.stop()
        if archived:
            counts = ", ".join(f"{count} on {topic}" for topic, count in sorted(archived.items()))
            replays = "; ".join(f"make replay TOPIC={topic} SINCE={stopped_at}" for topic in sorted(archived))
            print(
                f"SegOps dev stack stopped; bus messages it could not deliver in time ({counts}: a backend was "
                f"failing) are kept as dead letters. Once the cause is fixed, with make dev stopped: {replays}",
                flush=True,
            )
        else:
            print("SegOps dev stack stopped; pending bus messages were delivered.", flush=True)
    return 0


def run() -> None:
    """Exit without chDB's static destructors once everything is flushed (see `exit_process`)."""
    from segops.warehouse.chdb_backend import exit_process

    exit_process(main())


if __name__ == "__main__":
    run()
