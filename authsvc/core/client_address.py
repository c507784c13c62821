"""The client's address behind trusted proxies (``TRUSTED_PROXIES``). Pure: stdlib only.

``X-Forwarded-For`` is believed only from a peer listed as a trusted proxy, and only as far as
it was written by trusted proxies: walking it right to left, the client is the first address
that is not a trusted proxy. Everything to the left of that address is what the client sent
itself, so it is never read (a client cannot choose its address by sending the header, nor
fall back to the proxy's address by sending garbage in it). A malformed hop that a trusted
proxy wrote gives the proxy's own address.
"""

from collections.abc import Iterable, Sequence
from ipaddress import IPv4Address, IPv4Network, IPv6Address, IPv6Network, ip_address, ip_network

Address = IPv4Address | IPv6Address
Network = IPv4Network | IPv6Network


def trusted_networks(entries: Iterable[str]) -> tuple[Network, ...]:
    """The networks of ``entries`` (addresses or CIDR networks).

    Raises ValueError naming TRUSTED_PROXIES for an entry that is neither, or a network with
    host bits set (``10.0.0.1/8``: write ``10.0.0.0/8``).
    """
    networks = []
    for entry in entries:
        try:
            networks.append(ip_network(entry))
        except (TypeError, ValueError) as e:
            raise ValueError(f"TRUSTED_PROXIES: {entry!r} is not an IP address or a network "
                             f"such as 10.0.0.0/8 ({e})") from None
    return tuple(networks)


def parse_address(text: str) -> Address | None:
    """The address of one hop (``1.2.3.4``, ``1.2.3.4:80``, ``2001:db8::1``, ``[2001:db8::1]``
    or ``[2001:db8::1]:80``), IPv4-mapped IPv6 as IPv4; None when it is none of these."""
    text = text.strip()
    if text.startswith("["):
        text, bracket, _ = text[1:].partition("]")
        if not bracket:
            return None
    elif text.count(":") == 1:
        text = text.partition(":")[0]
    try:
        address = ip_address(text)
    except ValueError:
        return None
    if isinstance(address, IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def _trusted(address: Address, networks: Sequence[Network]) -> bool:
    return any(address in network for network in networks)


def client_address(remote_addr: str, forwarded_for: str | None,
                   trusted: Sequence[Network]) -> str:
    """The client's address: ``remote_addr`` (the peer) unless the peer is a trusted proxy;
    then the right-most address of ``forwarded_for`` that is not a trusted proxy (the
    left-most when all are), written canonically. A trusted proxy that sent no header, or a
    malformed one, is the client itself."""
    peer = parse_address(remote_addr) if trusted else None
    if peer is None or not forwarded_for or not _trusted(peer, trusted):
        return remote_addr
    client: Address | None = None
    for hop in reversed(forwarded_for.split(",")):
        client = parse_address(hop)
        if client is None:
            return remote_addr
        if not _trusted(client, trusted):
            break
    return str(client) if client is not None else remote_addr
