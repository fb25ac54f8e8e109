"""The client's address behind the bank's reverse proxies.

Behind a load balancer every request arrives from the balancer's address; the per-address
login limits would then count every person together, and one attacker could lock all of
them out. Requests that arrive from a trusted proxy network (``PANEL_TRUSTED_PROXIES``)
have their ``X-Forwarded-For`` read from the right, skipping trusted proxies: the first
address that is not one of them is the client. From anywhere else the header is ignored,
since anyone can send it.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable

from litestar.enums import ScopeType
from litestar.middleware import ASGIMiddleware
from litestar.types import ASGIApp, Receive, Scope, Send

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def parse_networks(value: str) -> tuple[Network, ...]:
    """``10.0.0.0/8, 192.168.1.7`` into networks; raises ValueError on anything else."""
    return tuple(
        ipaddress.ip_network(part.strip(), strict=False)
        for part in value.split(",")
        if part.strip()
    )


def _address(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    text = text.strip()
    if text.startswith("[") and "]" in text:  # [2001:db8::1]:443
        text = text[1 : text.index("]")]
    elif text.count(":") == 1:  # 203.0.113.7:5000
        text = text.split(":", 1)[0]
    try:
        return ipaddress.ip_address(text)
    except ValueError:
        return None


def _trusted(
    address: ipaddress.IPv4Address | ipaddress.IPv6Address | None, trusted: tuple[Network, ...]
) -> bool:
    return address is not None and any(address in network for network in trusted)


def client_address(
    peer: str | None, forwarded_for: Iterable[str], trusted: tuple[Network, ...]
) -> str | None:
    """The client's address for a request from ``peer`` carrying these X-Forwarded-For values."""
    if peer is None or not _trusted(_address(peer), trusted):
        return peer
    hops = [hop for value in forwarded_for for hop in value.split(",") if hop.strip()]
    for hop in reversed(hops):
        address = _address(hop)
        if address is None:
            # A malformed entry: nothing left of it can be believed; the last proxy that
            # wrote a good one is the best we know.
            return peer
        if not _trusted(address, trusted):
            return str(address)
        peer = str(address)
    return peer


class TrustedProxyMiddleware(ASGIMiddleware):
    scopes = (ScopeType.HTTP,)

    def __init__(self, trusted: tuple[Network, ...]) -> None:
        self._trusted = trusted

    async def handle(self, scope: Scope, receive: Receive, send: Send, next_app: ASGIApp) -> None:
        peer = scope.get("client")
        if self._trusted and peer and _trusted(_address(peer[0]), self._trusted):
            headers = scope["headers"]
            forwarded = [v.decode("latin-1") for k, v in headers if k == b"x-forwarded-for"]
            host = client_address(peer[0], forwarded, self._trusted)
            if host and host != peer[0]:
                scope["client"] = (host, 0)
            proto = next((v for k, v in headers if k == b"x-forwarded-proto"), None)
            if proto in {b"http", b"https"}:
                scope["scheme"] = proto.decode()
        await next_app(scope, receive, send)
