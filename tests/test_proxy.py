"""Reading the client's address behind trusted proxies (bff/proxy.py)."""

from __future__ import annotations

import pytest

from panel_web.proxy import client_address, parse_networks

TRUSTED = parse_networks("10.0.0.0/8, 192.168.1.7, 2001:db8::/32")


@pytest.mark.parametrize(
    ("peer", "forwarded", "client"),
    [
        # Straight from the internet: the header is anyone's to forge.
        ("203.0.113.9", ["198.51.100.1"], "203.0.113.9"),
        # From the proxy: the address it saw.
        ("10.1.2.3", ["198.51.100.1"], "198.51.100.1"),
        # Two proxies deep, each trusted: the first address that is not one of them.
        ("10.1.2.3", ["198.51.100.1, 192.168.1.7"], "198.51.100.1"),
        # A client that sends its own header: only what the trusted proxy appended counts.
        ("10.1.2.3", ["6.6.6.6, 198.51.100.1"], "198.51.100.1"),
        ("10.1.2.3", ["6.6.6.6", "198.51.100.1"], "198.51.100.1"),
        # Ports and IPv6 brackets are read off.
        ("10.1.2.3", ["198.51.100.1:5000"], "198.51.100.1"),
        ("10.1.2.3", ["[2001:db9::1]:443"], "2001:db9::1"),
        ("2001:db8::5", ["2001:db9::1"], "2001:db9::1"),
        # Garbage in the header: the last good hop, never the garbage.
        ("10.1.2.3", ["<script>, 10.9.9.9"], "10.9.9.9"),
        # Only proxies in the chain, or no header: the proxy itself.
        ("10.1.2.3", ["10.9.9.9"], "10.9.9.9"),
        ("10.1.2.3", [], "10.1.2.3"),
    ],
)
def test_the_client_is_the_first_untrusted_hop_from_the_right(
    peer: str, forwarded: list[str], client: str
) -> None:
    assert client_address(peer, forwarded, TRUSTED) == client


def test_without_trusted_proxies_the_peer_is_the_client() -> None:
    assert client_address("10.1.2.3", ["198.51.100.1"], ()) == "10.1.2.3"


def test_a_misconfigured_network_is_refused() -> None:
    with pytest.raises(ValueError, match="does not appear to be an IPv4 or IPv6 network"):
        parse_networks("10.0.0.0/8, proxy.bank.local")
