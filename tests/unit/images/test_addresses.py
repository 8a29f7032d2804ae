"""Which addresses image URLs may reach: numeric spellings and every refused range."""

from __future__ import annotations

import ipaddress

import pytest

from app.images.addresses import is_metadata_name, parse_numeric_host, refusal_reason


@pytest.mark.parametrize(
    ("host", "address"),
    [
        ("127.0.0.1", "127.0.0.1"),
        ("2130706433", "127.0.0.1"),
        ("0x7f.1", "127.0.0.1"),
        ("0x7f000001", "127.0.0.1"),
        ("0X7F000001", "127.0.0.1"),
        ("0177.0.0.1", "127.0.0.1"),
        ("0177.0.0.01", "127.0.0.1"),
        ("127.1", "127.0.0.1"),
        ("127.0.1", "127.0.0.1"),
        ("017700000001", "127.0.0.1"),
        ("127.0.0.1.", "127.0.0.1"),
        ("2130706433.", "127.0.0.1"),
        ("0", "0.0.0.0"),
        ("10.1", "10.0.0.1"),
        ("192.168.257", "192.168.1.1"),
        ("3232235777", "192.168.1.1"),
        ("0xa9.0xfe.0xa9.0xfe", "169.254.169.254"),
        ("0xA9FEA9FE", "169.254.169.254"),
        ("025177524776", "169.254.169.254"),
        ("::1", "::1"),
        ("[::1]", "::1"),
        ("::", "::"),
        ("::ffff:127.0.0.1", "::ffff:7f00:1"),
        ("[fe80::1%25eth0]", "fe80::1"),
        ("fe80::1%eth0", "fe80::1"),
        ("FD00:EC2::254", "fd00:ec2::254"),
    ],
)
def test_numeric_spellings_are_the_address_they_spell(host: str, address: str) -> None:
    assert parse_numeric_host(host) == ipaddress.ip_address(address)


@pytest.mark.parametrize(
    "host",
    [
        "example.com",
        "127.0.0.1.nip.io",
        "localhost",
        "256.0.0.1",
        "1.2.3.256",
        "0x100.1",
        "1.2.3.4.5",
        "4294967296",
        "08",
        "1..1",
        "-1",
        "",
        "[::1",
        "::g",
    ],
)
def test_names_and_invalid_numbers_are_not_addresses(host: str) -> None:
    assert parse_numeric_host(host) is None


REFUSED = [
    # loopback
    ("127.0.0.1", "loopback"),
    ("127.255.255.254", "loopback"),
    ("::1", "loopback"),
    # private
    ("10.0.0.1", "private"),
    ("10.255.255.255", "private"),
    ("172.16.0.1", "private"),
    ("172.31.255.255", "private"),
    ("192.168.1.1", "private"),
    ("fc00::1", "private"),
    ("fd12:3456::1", "private"),
    # link-local
    ("169.254.1.1", "link-local"),
    ("fe80::1", "link-local"),
    # carrier-grade NAT
    ("100.64.0.1", "reserved"),
    ("100.127.255.255", "reserved"),
    # multicast
    ("224.0.0.1", "multicast"),
    ("239.255.255.250", "multicast"),
    ("ff02::1", "multicast"),
    ("ff0e::1", "multicast"),
    # reserved
    ("240.0.0.1", "reserved"),
    ("254.1.2.3", "reserved"),
    ("0.1.2.3", "reserved"),
    ("255.255.255.255", "reserved"),
    ("192.0.0.8", "reserved"),
    ("198.18.0.1", "reserved"),
    ("2001:db8::1", "reserved"),
    ("fec0::1", "reserved"),
    # unspecified
    ("0.0.0.0", "unspecified"),
    ("::", "unspecified"),
    # private IPv4 inside IPv6: mapped, compatible, 6to4, NAT64
    ("::ffff:127.0.0.1", "loopback"),
    ("::ffff:7f00:1", "loopback"),
    ("::ffff:10.0.0.1", "private"),
    ("::ffff:192.168.0.1", "private"),
    ("::127.0.0.1", "loopback"),
    ("::10.0.0.1", "private"),
    ("2002:7f00:1::", "loopback"),
    ("2002:a00:1::1", "private"),
    ("64:ff9b::a00:1", "private"),
    ("64:ff9b::7f00:1", "loopback"),
    ("64:ff9b:1::a00:1", "reserved"),
    # cloud metadata
    ("169.254.169.254", "metadata"),
    ("fd00:ec2::254", "metadata"),
]


@pytest.mark.parametrize(("address", "kind"), REFUSED)
def test_non_public_addresses_are_refused(address: str, kind: str) -> None:
    reason = refusal_reason(ipaddress.ip_address(address), allow_private=False)

    assert reason is not None
    assert kind in reason


PUBLIC = [
    "93.184.215.14",
    "8.8.8.8",
    "1.1.1.1",
    "2606:2800::1",
    "2a00:1450:4001::1",
    "::ffff:93.184.215.14",
    "2002:5db8:d70e::1",
    "64:ff9b::5db8:d70e",
]


@pytest.mark.parametrize("address", PUBLIC)
@pytest.mark.parametrize("allow_private", [False, True])
def test_public_addresses_are_allowed(address: str, allow_private: bool) -> None:
    assert refusal_reason(ipaddress.ip_address(address), allow_private=allow_private) is None


@pytest.mark.parametrize(
    "address", ["127.0.0.1", "::1", "10.0.0.1", "192.168.1.1", "fd00::1", "169.254.1.1"]
)
def test_private_networks_can_be_allowed(address: str) -> None:
    assert refusal_reason(ipaddress.ip_address(address), allow_private=True) is None


METADATA = [
    "169.254.169.254",
    "fd00:ec2::254",
    "fd00:ec2:0:0:0:0:0:254",
    "::ffff:169.254.169.254",
    "::ffff:a9fe:a9fe",
    "::169.254.169.254",
    "2002:a9fe:a9fe::",
    "64:ff9b::a9fe:a9fe",
    "169.254.170.2",
    "169.254.170.23",
    "fd00:ec2::23",
    "100.100.100.200",
    "192.0.0.192",
    "168.63.129.16",
    "::ffff:168.63.129.16",
    "64:ff9b::6464:64c8",
]


@pytest.mark.parametrize("address", METADATA)
@pytest.mark.parametrize("allow_private", [False, True])
def test_cloud_metadata_stays_refused_even_with_private_networks(
    address: str, allow_private: bool
) -> None:
    reason = refusal_reason(ipaddress.ip_address(address), allow_private=allow_private)

    assert reason == "a cloud metadata address"


@pytest.mark.parametrize(
    "host", ["2130706433", "0x7f.1", "0x7f000001", "0177.0.0.1", "127.1", "017700000001", "0"]
)
def test_odd_spellings_of_loopback_are_refused(host: str) -> None:
    address = parse_numeric_host(host)

    assert address is not None
    assert refusal_reason(address, allow_private=False) is not None


@pytest.mark.parametrize(
    "host", ["metadata.google.internal", "METADATA.GOOGLE.INTERNAL.", "metadata.goog", "metadata"]
)
def test_metadata_service_names_are_known(host: str) -> None:
    assert is_metadata_name(host)
