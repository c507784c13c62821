"""The client's address behind trusted proxies: a pure function, no app."""

import pytest

from authsvc.core.client_address import client_address, trusted_networks

PROXIES = trusted_networks(["10.0.0.1", "10.0.1.0/24", "2001:db8::1"])


@pytest.mark.parametrize(("remote", "forwarded", "expected"), [
    # Only a trusted proxy's header is believed.
    ("203.0.113.9", "198.51.100.7", "203.0.113.9"),
    ("10.0.0.2", "198.51.100.7", "10.0.0.2"),
    ("", "198.51.100.7", ""),
    ("unix:/run/authsvc.sock", "198.51.100.7", "unix:/run/authsvc.sock"),
    # The right-most address that is not a trusted proxy; what a client sent itself is ignored.
    ("10.0.0.1", "198.51.100.7", "198.51.100.7"),
    ("10.0.0.1", "1.1.1.1, 198.51.100.7", "198.51.100.7"),
    ("10.0.0.1", "198.51.100.7,10.0.1.5", "198.51.100.7"),
    ("10.0.0.1", "10.0.0.1, 198.51.100.7, 10.0.1.5, 10.0.1.6", "198.51.100.7"),
    ("10.0.0.1", "garbage, 198.51.100.7", "198.51.100.7"),
    # Every hop trusted: the left-most one.
    ("10.0.0.1", "10.0.1.7, 10.0.1.5", "10.0.1.7"),
    # No header, or a malformed one from the proxy: the proxy's own address.
    ("10.0.0.1", None, "10.0.0.1"),
    ("10.0.0.1", "", "10.0.0.1"),
    ("10.0.0.1", "not-an-address", "10.0.0.1"),
    ("10.0.0.1", "198.51.100.7, ", "10.0.0.1"),
    ("10.0.0.1", "198.51.100.7, 999.0.0.1", "10.0.0.1"),
    ("10.0.0.1", "198.51.100.7,,", "10.0.0.1"),
    # Ports, IPv6 (written canonically, so one address has one spelling) and mapped IPv4.
    ("10.0.0.1", "198.51.100.7:4711", "198.51.100.7"),
    ("10.0.0.1", "[2001:DB8:0::7]:443", "2001:db8::7"),
    ("2001:db8::1", "2001:DB8:0:0::5", "2001:db8::5"),
    ("::ffff:10.0.0.1", "198.51.100.7", "198.51.100.7"),
    ("10.0.0.1", "::ffff:198.51.100.7", "198.51.100.7"),
])
def test_client_address(remote: str, forwarded: str | None, expected: str) -> None:
    assert client_address(remote, forwarded, PROXIES) == expected


def test_without_trusted_proxies_the_peer_is_the_client() -> None:
    assert client_address("10.0.0.1", "198.51.100.7", trusted_networks([])) == "10.0.0.1"


@pytest.mark.parametrize("entry", ["10.0.0.300", "10.0.0.1/8", "proxy.internal", "", "10.0.0.0/33"])
def test_a_bad_network_is_refused(entry: str) -> None:
    with pytest.raises(ValueError, match="TRUSTED_PROXIES"):
        trusted_networks([entry])
