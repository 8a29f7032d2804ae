"""Which network addresses a client-supplied image URL may reach, however they are spelled."""

from __future__ import annotations

import ipaddress
import re

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

# Never reachable, even with `allow_private_networks`: cloud instance metadata and credential
# services. Whole /24s where a provider keeps several (AWS, GCP, Azure, Oracle, DigitalOcean
# metadata and time; ECS task and EKS pod credentials), single addresses elsewhere.
METADATA_NETWORKS = tuple(
    ipaddress.ip_network(net)
    for net in (
        "169.254.169.0/24",  # instance metadata: AWS, GCP, Azure, Oracle, DigitalOcean...
        "169.254.170.0/24",  # AWS ECS task credentials (.2), EKS pod identity (.23)
        "fd00:ec2::/64",  # AWS instance metadata and pod identity over IPv6
        "100.100.100.200/32",  # Alibaba Cloud
        "192.0.0.192/32",  # Oracle Cloud
        "168.63.129.16/32",  # Azure WireServer
    )
)
# Names of metadata services, refused before they are even resolved.
METADATA_NAMES = frozenset(
    {"metadata.google.internal", "metadata.goog", "metadata", "instance-data.ec2.internal"}
)

# Ranges that `is_global` alone does not refuse in every Python version.
_ALWAYS_REFUSED = tuple(
    ipaddress.ip_network(net)
    for net in (
        "0.0.0.0/8",  # "this network"
        "100.64.0.0/10",  # carrier-grade NAT
        "192.0.0.0/24",  # IETF protocol assignments
        "198.18.0.0/15",  # benchmarking
        "240.0.0.0/4",  # reserved
        "255.255.255.255/32",
        "64:ff9b:1::/48",  # local-use NAT64
        "fc00::/7",  # unique local
        "fe80::/10",  # link-local
        "fec0::/10",  # site-local (deprecated)
    )
)
_NAT64 = ipaddress.ip_network("64:ff9b::/96")
_PART = re.compile(r"^(0[xX][0-9a-fA-F]*|0[0-7]*|[1-9][0-9]*)$")


def parse_numeric_host(host: str) -> IPAddress | None:
    """The address a numeric host spells, with the loose IPv4 forms `inet_aton` accepts
    (`2130706433`, `0x7f.1`, `0177.0.0.1`, `127.1`) and bracketed or bare IPv6."""
    host = host.strip().rstrip(".")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    if ":" in host:
        try:
            return ipaddress.IPv6Address(host.split("%", 1)[0])
        except ValueError:
            return None
    parts = host.split(".")
    if not 1 <= len(parts) <= 4 or not all(_PART.match(part) for part in parts):
        return None
    *leading, last = (_part_value(part) for part in parts)
    if any(value > 255 for value in leading) or last >= 256 ** (5 - len(parts)):
        return None
    number = 0
    for value in leading:
        number = number * 256 + value
    number = number * 256 ** (5 - len(parts)) + last
    return ipaddress.IPv4Address(number)


def _part_value(part: str) -> int:
    if part[:2].lower() == "0x":
        return int(part[2:] or "0", 16)
    if part.startswith("0"):
        return int(part, 8)
    return int(part)


def _embedded_ipv4(address: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    if address.ipv4_mapped is not None:
        return address.ipv4_mapped
    if address.sixtofour is not None:
        return address.sixtofour
    if address.teredo is not None:
        return address.teredo[1]
    if address in _NAT64:
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    if int(address) >> 32 == 0 and int(address) > 1:  # deprecated IPv4-compatible ::a.b.c.d
        return ipaddress.IPv4Address(int(address))
    return None


def is_metadata(address: IPAddress) -> bool:
    return any(address in net for net in METADATA_NETWORKS if net.version == address.version)


def is_metadata_name(host: str) -> bool:
    return host.strip().rstrip(".").lower() in METADATA_NAMES


def refusal_reason(address: IPAddress, *, allow_private: bool) -> str | None:
    """Why a connection to `address` is refused, or None when it is allowed."""
    if is_metadata(address):
        return "a cloud metadata address"
    if isinstance(address, ipaddress.IPv6Address):
        embedded = _embedded_ipv4(address)
        if embedded is not None:
            return refusal_reason(embedded, allow_private=allow_private)
    if allow_private:
        return None
    if address.is_multicast:
        return "a multicast address"
    if address.is_loopback:
        return "a loopback address"
    if address.is_unspecified:
        return "an unspecified address"
    if address.is_link_local:
        return "a link-local address"
    if any(address in network for network in _ALWAYS_REFUSED if network.version == address.version):
        return "a private or reserved address"
    if address.is_private or address.is_reserved or not address.is_global:
        return "a private or reserved address"
    return None
