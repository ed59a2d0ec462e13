"""Where outbound connections may go: public addresses, or what the deployment allows.

A channel admin types an endpoint; without this check that endpoint could be the cloud
metadata service (169.254.169.254), an intranet admin page or a port on this machine.
`check()` is the one rule: the host name is resolved and *every* address it resolves to
must be global, unless the allow-list names the host or a network holding the address.
It runs when a channel is saved and again as each connection is made: `session()` gives a
requests session whose connections go to the very address that was checked, so a name
that re-resolves elsewhere in between (DNS rebinding) gains nothing.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import ipaddress
import socket
from collections.abc import Iterable
from dataclasses import dataclass, field
from urllib.parse import urlsplit

import requests
from requests.adapters import HTTPAdapter
from requests.utils import select_proxy
from standardwebhooks import Webhook
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool
from urllib3.exceptions import ConnectTimeoutError

Address = ipaddress.IPv4Address | ipaddress.IPv6Address
Network = ipaddress.IPv4Network | ipaddress.IPv6Network
LOOPBACK = ("127.0.0.0/8", "::1/128", "localhost")


class OutboundRefused(Exception):
    """The target is not a place this deployment connects to; no connection was made."""

    def __init__(self, host: str, reason: str) -> None:
        super().__init__(f"{host}: {reason}")
        self.host, self.reason = host, reason


@dataclass(frozen=True)
class Allowed:
    """Hosts (exact names) and networks that may be reached although not global."""

    hosts: frozenset[str] = frozenset()
    networks: tuple[Network, ...] = field(default=())

    @classmethod
    def of(cls, entries: Iterable[str]) -> Allowed:
        """From a setting: each entry a host name, an address or a CIDR network."""
        hosts, networks = set(), []
        for entry in entries:
            text = entry.strip().lower()
            try:
                networks.append(ipaddress.ip_network(text, strict=False))
            except ValueError:
                if text:
                    hosts.add(text.rstrip("."))
        return cls(frozenset(hosts), tuple(networks))

    def __add__(self, other: Allowed) -> Allowed:
        return Allowed(self.hosts | other.hosts, self.networks + other.networks)

    def names(self, host: str) -> bool:
        return host.lower().rstrip(".") in self.hosts

    def holds(self, address: Address) -> bool:
        return any(address in net for net in self.networks)


NOTHING = Allowed()
SANDBOX = Allowed.of(LOOPBACK)  # a sandbox channel reaches this machine, and nothing else private


def _public(address: Address) -> bool:
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped:
        address = address.ipv4_mapped  # ::ffff:10.0.0.1 is 10.0.0.1
    return address.is_global and not address.is_multicast


def check(host: str, port: int | None, allowed: Allowed = NOTHING) -> list[str]:
    """The addresses of `host` to connect to; OutboundRefused if any one is not allowed.

    Every address counts: a name resolving to one public and one private address would
    otherwise reach the private one whenever the resolver lists it first.
    """
    name = (host or "").strip("[]")
    if not name:
        raise OutboundRefused(host, "没有主机名")
    try:
        infos = socket.getaddrinfo(name, port or 443, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError, ValueError):
        raise OutboundRefused(host, "无法解析主机名") from None
    addresses = list(dict.fromkeys(str(info[4][0]) for info in infos))
    if not addresses:
        raise OutboundRefused(host, "无法解析主机名")
    if allowed.names(name):
        return addresses
    for text in addresses:
        address = ipaddress.ip_address(text.split("%", 1)[0])
        if not (_public(address) or allowed.holds(address)):
            raise OutboundRefused(host, f"解析到非公网地址 {address}（未在 TONGFA_OUTBOUND_ALLOW 中放行）")
    return addresses


def check_url(url: str, allowed: Allowed = NOTHING) -> list[str]:
    parts = urlsplit(url)
    try:
        port = parts.port
    except ValueError:
        raise OutboundRefused(url, "端口无效") from None
    return check(parts.hostname or "", port or (443 if parts.scheme == "https" else 80), allowed)


# ------------------------------------------------------------ connections to checked addresses


class _Pinned:
    """A urllib3 connection that resolves through check() and connects to that address."""

    allowed: Allowed = NOTHING

    def _new_conn(self):  # type: ignore[no-untyped-def]
        name = self._dns_host  # type: ignore[attr-defined]
        last: Exception | None = None
        for address in check(name, self.port, self.allowed):  # type: ignore[attr-defined]
            self._dns_host = address  # connect here; TLS still verifies `name`
            try:
                return super()._new_conn()  # type: ignore[misc]
            except ConnectTimeoutError as exc:  # and NewConnectionError: try the next address
                last = exc
            finally:
                self._dns_host = name
        assert last is not None
        raise last


class GuardedAdapter(HTTPAdapter):
    """Every connection this adapter opens goes to an address check() accepted."""

    def __init__(self, allowed: Allowed) -> None:
        self.allowed = allowed
        super().__init__()

    def init_poolmanager(self, *args, **kwargs):  # type: ignore[no-untyped-def]
        super().init_poolmanager(*args, **kwargs)
        extra = {"allowed": self.allowed}
        http = type("PinnedHTTPConnection", (_Pinned, HTTPConnection), extra)
        https = type("PinnedHTTPSConnection", (_Pinned, HTTPSConnection), extra)
        self.poolmanager.pool_classes_by_scheme = {
            "http": type("PinnedPool", (HTTPConnectionPool,), {"ConnectionCls": http}),
            "https": type("PinnedTLSPool", (HTTPSConnectionPool,), {"ConnectionCls": https}),
        }

    def send(self, request, *args, **kwargs):  # type: ignore[no-untyped-def]
        # through a proxy the proxy connects, not us: the target is still checked here
        if select_proxy(request.url, kwargs.get("proxies")):
            check_url(request.url, self.allowed)
        return super().send(request, *args, **kwargs)


def session(allowed: Allowed = NOTHING) -> requests.Session:
    guarded = requests.Session()
    adapter = GuardedAdapter(allowed)
    guarded.mount("http://", adapter)
    guarded.mount("https://", adapter)
    return guarded


# ------------------------------------------------------------ Standard Webhooks signing


def webhook_secret(value: str) -> str:
    """A Standard Webhooks secret: `whsec_` and the base64 of 24 to 64 random bytes."""
    if not value.startswith("whsec_"):
        raise ValueError("须为 Standard Webhooks 密钥（whsec_ 加 base64）")
    try:
        raw = base64.b64decode(value[len("whsec_"):], validate=True)
    except (binascii.Error, ValueError):
        raise ValueError("whsec_ 之后须为 base64") from None
    if not 24 <= len(raw) <= 64:
        raise ValueError("密钥须为 24 到 64 字节")
    return value


def webhook_headers(secret: str, message_id: str, when: dt.datetime, data: bytes
                    ) -> dict[str, str]:
    """webhook-id/-timestamp/-signature for `data`, so any Standard Webhooks library verifies it.

    `message_id` must be the same for every retry of one delivery: receivers drop repeats by it.
    """
    moment = when.astimezone(dt.UTC)
    return {"webhook-id": message_id, "webhook-timestamp": str(int(moment.timestamp())),
            "webhook-signature": Webhook(secret).sign(message_id, moment, data.decode("utf-8"))}
