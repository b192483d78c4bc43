"""The connector egress boundary: which URLs and addresses a connector may reach, and that the
address checked is the address connected to (against real sockets and a real TLS server)."""

from __future__ import annotations

import datetime as dt
import ipaddress
import socket
import ssl
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import requests
from segops.connectors.egress import EgressPolicy, EgressRefused, refused_address, same_origin

from tests.support.platforms import LOOPBACK

BRAZE = EgressPolicy.for_platform("braze")


@pytest.mark.parametrize(
    ("address", "reason"),
    [
        ("127.0.0.1", "loopback"),
        ("127.1.2.3", "loopback"),
        ("::1", "loopback"),
        ("10.0.0.5", "private"),
        ("172.16.9.9", "private"),
        ("192.168.1.1", "private"),
        ("fd00::1", "private"),
        ("169.254.169.254", "link-local"),
        ("fe80::1", "link-local"),
        ("224.0.0.251", "multicast"),
        ("ff02::1", "multicast"),
        ("0.0.0.0", "unspecified"),
        ("::", "unspecified"),
        ("100.64.0.1", "not globally routable"),  # carrier-grade NAT
        ("240.0.0.1", "reserved"),
        ("::ffff:127.0.0.1", "IPv4-mapped"),
        ("::ffff:8.8.8.8", "IPv4-mapped"),
        ("2002:7f00:1::", "embedding"),  # 6to4 of 127.0.0.1
        ("64:ff9b::a00:5", "embedding"),  # NAT64 of 10.0.0.5
    ],
)
def test_every_inward_address_form_is_refused(address: str, reason: str) -> None:
    problem = refused_address(ipaddress.ip_address(address))
    assert problem is not None and reason in problem


@pytest.mark.parametrize("address", ["8.8.8.8", "104.16.0.1", "2606:4700::1111"])
def test_public_unicast_addresses_pass(address: str) -> None:
    assert refused_address(ipaddress.ip_address(address)) is None


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("http://rest.iad-01.braze.com", "https"),
        ("ftp://rest.iad-01.braze.com", "https"),
        ("https://rest.iad-01.braze.com.evil.example", "not an API host"),
        ("https://evil.example/rest.iad-01.braze.com", "not an API host"),
        ("https://rest.braze.com", "not an API host"),
        ("https://127.0.0.1", "not an API host"),
        ("https://rest.iad-01.braze.com:99999", "port"),
    ],
)
def test_urls_outside_the_platform_hosts_are_refused(url: str, message: str) -> None:
    with pytest.raises(EgressRefused, match=message):
        BRAZE.check_url(url)


def test_documented_hosts_and_operator_patterns() -> None:
    assert BRAZE.check_url("https://rest.fra-01.braze.eu/") == ("https", "rest.fra-01.braze.eu", 443)
    assert EgressPolicy.for_platform("klaviyo").check_url("https://a.klaviyo.com")[1] == "a.klaviyo.com"
    talon = EgressPolicy.for_platform("talonone", ["promotions.shop.example"])
    assert talon.check_url("https://acme.europe-west1.talon.one")[1] == "acme.europe-west1.talon.one"
    assert talon.check_url("https://promotions.shop.example:8443")[2] == 8443
    # AND an operator-listed IP literal is still refused when it is inward
    with pytest.raises(EgressRefused, match="loopback"):
        EgressPolicy(("127.0.0.1",)).check_url("https://127.0.0.1/")
    # AND the test-only exemption admits loopback, over http too, and nothing else
    exempt = EgressPolicy(("127.0.0.1", "10.0.0.1"), (LOOPBACK,))
    assert exempt.check_url("http://127.0.0.1:8080/")[2] == 8080
    with pytest.raises(EgressRefused, match="private"):
        exempt.check_url("https://10.0.0.1/")


def test_localhost_resolves_inward_and_is_refused() -> None:
    policy = EgressPolicy(("localhost",))
    scheme, host, port = policy.check_url("https://localhost/")
    with pytest.raises(EgressRefused, match="localhost resolves to a loopback address"):
        policy.resolve(scheme, host, port)


def _resolving(monkeypatch: pytest.MonkeyPatch, answers: dict[str, list[str]]) -> list[str]:
    """Patch the resolver (socket.getaddrinfo, this test only): each name answers its next address."""
    real = socket.getaddrinfo
    asked: list[str] = []

    def getaddrinfo(host: Any, port: Any, *args: Any, **kwargs: Any) -> Any:
        if host in answers:
            asked.append(host)
            if not answers[host]:
                raise socket.gaierror(socket.EAI_NONAME, "no more answers")
            family = socket.AF_INET6 if ":" in answers[host][0] else socket.AF_INET
            return [(family, socket.SOCK_STREAM, 6, "", (answers[host].pop(0), port))]
        return real(host, port, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    return asked


@pytest.mark.parametrize("address", ["127.0.0.1", "10.1.2.3", "169.254.169.254", "::ffff:127.0.0.1", "::1"])
def test_a_platform_name_resolving_inward_is_refused_before_connecting(
    monkeypatch: pytest.MonkeyPatch, address: str
) -> None:
    # GIVEN a documented Braze host whose DNS answer points inside
    _resolving(monkeypatch, {"rest.iad-01.braze.com": [address]})
    session = BRAZE.session()
    # THEN the request is refused before any connection is made
    with pytest.raises(EgressRefused, match=r"rest\.iad-01\.braze\.com resolves to"):
        session.get("https://rest.iad-01.braze.com/v2/subscription/status/set", timeout=1)


@pytest.fixture
def loopback_http() -> Iterator[tuple[int, list[dict[str, str]]]]:
    seen: list[dict[str, str]] = []

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            seen.append(dict(self.headers))
            self.send_response(200)
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"ok")

        def log_message(self, format: str, *args: Any) -> None:
            return

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True).start()
    yield server.server_address[1], seen
    server.shutdown()
    server.server_close()


def test_the_checked_address_is_the_one_connected_to(
    monkeypatch: pytest.MonkeyPatch, loopback_http: tuple[int, list[dict[str, str]]]
) -> None:
    # GIVEN a name whose first answer is the (test-exempt) loopback server and whose next answer would be
    # the metadata server: a rebinding attack if anything resolved the name a second time
    port, seen = loopback_http
    asked = _resolving(monkeypatch, {"api.rebind.test": ["127.0.0.1", "169.254.169.254"]})
    session = EgressPolicy(("api.rebind.test",), (LOOPBACK,)).session()
    # WHEN one request is made
    response = session.get(f"http://api.rebind.test:{port}/ping", timeout=2)
    # THEN the name was resolved once, the checked address served it, and Host names the name
    assert response.status_code == 200 and response.text == "ok"
    assert asked == ["api.rebind.test"]
    assert seen[0]["Host"] == f"api.rebind.test:{port}"
    # AND the next request resolves again and refuses the new answer
    with pytest.raises(EgressRefused, match="link-local"):
        session.get(f"http://api.rebind.test:{port}/ping", timeout=2)


def _self_signed(directory: Path, name: str) -> tuple[Path, Path]:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=1))
        .not_valid_after(now + dt.timedelta(hours=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(name)]), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = directory / "cert.pem", directory / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return cert_path, key_path


def test_tls_to_the_pinned_address_verifies_the_name_and_sends_it_as_sni(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    # GIVEN a real TLS server on loopback with a certificate for api.pinned.test, and the SNI it sees
    cert, key = _self_signed(tmp_path, "api.pinned.test")
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    sni: list[str | None] = []
    context.sni_callback = lambda _sock, name, _ctx: sni.append(name)  # type: ignore[assignment]
    server = ThreadingHTTPServer(("127.0.0.1", 0), _OkHandler)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True).start()
    port = server.server_address[1]
    _resolving(monkeypatch, {"api.pinned.test": ["127.0.0.1"], "api.other.test": ["127.0.0.1"]})
    policy = EgressPolicy(("api.pinned.test", "api.other.test"), (LOOPBACK,))
    try:
        # WHEN called by name, connecting to the checked address
        session = policy.session()
        session.verify = str(cert)
        response = session.get(f"https://api.pinned.test:{port}/", timeout=2)
        # THEN the certificate was verified for the name, which was sent as SNI
        assert response.status_code == 200 and sni == ["api.pinned.test"]
        # AND a name the certificate does not cover fails verification, though the address is the same
        with pytest.raises(requests.exceptions.SSLError):
            session.get(f"https://api.other.test:{port}/", timeout=2)
    finally:
        server.shutdown()
        server.server_close()


class _OkHandler(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: Any) -> None:
        return


def test_pagination_links_must_keep_scheme_host_and_port() -> None:
    base = "https://a.klaviyo.com"
    assert same_origin("https://a.klaviyo.com/api/profiles/?page%5Bcursor%5D=x", base)
    for other in (
        "https://evil.example/api/profiles/",
        "http://a.klaviyo.com/api/profiles/",
        "https://a.klaviyo.com:444/api/profiles/",
        "https://a.klaviyo.com.evil.example/",
    ):
        assert not same_origin(other, base)
