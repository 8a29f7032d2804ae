"""Who the client is: the connection's peer, or behind `server.trusted_proxies` the address
they forwarded in `X-Forwarded-For`."""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence

from pydantic import IPvAnyNetwork

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


class TrustedProxies:
    """The peers whose `X-Forwarded-For` is believed."""

    def __init__(self, networks: Sequence[IPvAnyNetwork]) -> None:
        self._networks = tuple(networks)

    def trusts(self, address: str) -> bool:
        parsed = _address(address)
        return parsed is not None and any(parsed in network for network in self._networks)

    def client(self, peer: str, forwarded_for: bytes | None) -> str:
        """The client's address. Only a trusted peer's `X-Forwarded-For` counts, read from
        its end: each trusted proxy appended the address it was reached from, so the first
        address from the right that is no trusted proxy is the client (anything to its left
        is what the client itself claimed)."""
        if not forwarded_for or not self.trusts(peer):
            return peer
        client = peer
        for hop in reversed(forwarded_for.decode("latin-1").split(",")):
            address = _address(hop.strip())
            if address is None:
                break
            client = str(address)
            if not any(address in network for network in self._networks):
                break
        return client


def _address(text: str) -> IPAddress | None:
    try:
        return ipaddress.ip_address(text.strip("[]"))
    except ValueError:
        return None
