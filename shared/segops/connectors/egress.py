"""Where connectors may send requests: the server-side request forgery (SSRF) boundary.

A tenant chooses a connector's `base_url`/`rest_endpoint`, and the sync function runs inside the VPC
next to Valkey, the metadata server and ClickHouse. So every request a connector makes:

- is `https` to a host matching the platform's documented API hosts (`PLATFORM_HOSTS`) or an
  operator's `SEGOPS_CONNECTOR_EXTRA_HOSTS` pattern (`*` stands for one or more labels);
- resolves that name once, refuses it when any address is loopback, private, link-local, multicast,
  unspecified, reserved, not globally routable or an IPv4-mapped/embedded IPv6 form, and connects to
  the checked address (TLS still verifies the certificate for the name, sent as SNI and `Host`), so a
  second DNS answer cannot swap the target (DNS rebinding);
- follows no redirects and no proxy from the environment.

`SEGOPS_CONNECTOR_TEST_NETWORKS` (refused in production) lets the test suite's loopback contract
servers through the address check, over plain http, while every other check still runs.
"""

from __future__ import annotations

import ipaddress
import re
import socket
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import requests
from requests.adapters import HTTPAdapter
from urllib3 import HTTPConnectionPool

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

# Each platform's documented REST API hosts (Klaviyo: one global host; Braze: one host per instance,
# rest.<instance>.braze.com|eu; Talon.One: a deployment per customer under talon.one).
PLATFORM_HOSTS: dict[str, tuple[str, ...]] = {
    "klaviyo": ("a.klaviyo.com",),
    "braze": ("rest.*.braze.com", "rest.*.braze.eu"),
    "talonone": ("*.talon.one",),
}

_NAT64 = ipaddress.ip_network("64:ff9b::/96")


class EgressRefused(Exception):
    """A connector target outside the boundary; the message is safe to show the tenant."""


def refused_address(address: IPAddress) -> str | None:
    """Why a connector must not connect to `address`, or None when it is a public unicast address."""
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            return "an IPv4-mapped IPv6 address"
        embedded = address.sixtofour or (address.teredo[1] if address.teredo else None)
        if embedded is None and address in _NAT64:
            embedded = ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
        if embedded is not None and refused_address(embedded) is not None:
            return "an IPv6 address embedding a non-public IPv4 address"
    for problem, found in (
        ("unspecified", address.is_unspecified),
        ("loopback", address.is_loopback),
        ("link-local", address.is_link_local),
        ("multicast", address.is_multicast),
        ("reserved", address.is_reserved),
        ("private", address.is_private),
        ("not globally routable", not address.is_global),
    ):
        if found:
            return f"a {problem} address"
    return None


def _host_pattern(pattern: str) -> re.Pattern[str]:
    labels = [r"[a-z0-9-]+(?:\.[a-z0-9-]+)*" if label == "*" else re.escape(label) for label in pattern.split(".")]
    return re.compile(r"\.".join(labels))


@dataclass(frozen=True)
class EgressPolicy:
    """The hosts one connector may reach, and (tests only) networks exempt from the address check."""

    hosts: tuple[str, ...]
    test_networks: tuple[IPNetwork, ...] = ()

    @classmethod
    def for_platform(
        cls, platform: str, extra_hosts: Iterable[str] = (), test_networks: Iterable[IPNetwork] = ()
    ) -> EgressPolicy:
        return cls((*PLATFORM_HOSTS[platform], *extra_hosts), tuple(test_networks))

    def check_url(self, url: str) -> tuple[str, str, int]:
        """`(scheme, host, port)` of an allowed URL; raises `EgressRefused`. No DNS lookup."""
        parts = urlsplit(url)
        host = (parts.hostname or "").lower().rstrip(".")
        try:
            port = parts.port or (443 if parts.scheme == "https" else 80)
        except ValueError as exc:
            raise EgressRefused("the URL's port is invalid") from exc
        if parts.scheme not in ("https", "http") or not host:
            raise EgressRefused("must be an https URL")
        if not any(_host_pattern(p.lower()).fullmatch(host) for p in self.hosts):
            raise EgressRefused(f"{host} is not an API host of this platform")
        literal = _literal_address(host)
        if literal is not None:
            self._check_address(literal)
        # Plain http only to test-exempt addresses (a name's addresses are checked in `resolve`).
        if parts.scheme != "https" and (not self.test_networks or (literal is not None and not self._exempt(literal))):
            raise EgressRefused("must be an https URL")
        return parts.scheme, host, port

    def resolve(self, scheme: str, host: str, port: int) -> str:
        """The one address to connect to: every address the name resolves to must pass the check."""
        try:
            answers = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        except socket.gaierror as exc:
            raise EgressRefused(f"{host} does not resolve") from exc
        addresses = [ipaddress.ip_address(str(answer[4][0]).split("%", 1)[0]) for answer in answers]
        if not addresses:
            raise EgressRefused(f"{host} does not resolve")
        for address in addresses:
            self._check_address(address, host)
        if scheme != "https" and not all(self._exempt(a) for a in addresses):
            raise EgressRefused("must be an https URL")
        # IPv4 first when the name has both: serverless egress (Cloud NAT, VPC connector) is IPv4.
        return str(next((a for a in addresses if a.version == 4), addresses[0]))

    def _exempt(self, address: IPAddress) -> bool:
        return any(address in network for network in self.test_networks)

    def _check_address(self, address: IPAddress, host: str | None = None) -> None:
        problem = None if self._exempt(address) else refused_address(address)
        if problem is not None:
            name = f"{host} resolves to" if host and host != str(address) else "the host is"
            raise EgressRefused(f"{name} {problem}")

    def session(self) -> requests.Session:
        """A session whose every request goes through this policy (no redirects are followed by
        `HttpSync`; no proxy or netrc from the environment)."""
        session = requests.Session()
        session.trust_env = False
        adapter = PinnedAdapter(self)
        session.mount("https://", adapter)
        session.mount("http://", adapter)
        return session


def same_origin(url: str, base: str) -> bool:
    """Whether `url` has `base`'s scheme, host and port (pagination links must stay on the host)."""
    a, b = urlsplit(url), urlsplit(base)
    try:
        return (a.scheme, a.hostname, a.port or 0) == (b.scheme, b.hostname, b.port or 0)
    except ValueError:
        return False


def _literal_address(host: str) -> IPAddress | None:
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        return None


class PinnedAdapter(HTTPAdapter):
    """Checks each request's URL, resolves and checks its host, and connects to the checked address;
    TLS keeps the name for SNI and certificate verification."""

    def __init__(self, policy: EgressPolicy) -> None:
        super().__init__(max_retries=0)
        self.policy = policy

    def get_connection_with_tls_context(
        self,
        request: requests.PreparedRequest,
        verify: Any,
        proxies: Mapping[str, str] | None = None,
        cert: Any = None,
    ) -> HTTPConnectionPool:
        scheme, host, port = self.policy.check_url(request.url or "")
        address = self.policy.resolve(scheme, host, port)
        host_params, tls_params = self.build_connection_pool_key_attributes(request, verify, cert)
        host_params["host"] = address
        pool_kwargs: dict[str, Any] = dict(tls_params)
        if scheme == "https":
            pool_kwargs["server_hostname"] = host
            pool_kwargs["assert_hostname"] = host
        name = f"[{host}]" if ":" in host else host
        request.headers["Host"] = name if port == (443 if scheme == "https" else 80) else f"{name}:{port}"
        pool: HTTPConnectionPool = self.poolmanager.connection_from_host(**host_params, pool_kwargs=pool_kwargs)
        return pool
