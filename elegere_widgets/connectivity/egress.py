"""Where a connection test may connect to.

A connection test opens a socket to an address that a Workspace Admin typed in, from inside
the service's network. Without a policy that is a way to probe the service host itself
(loopback) or the cloud metadata endpoint that hands out credentials. ``EgressPolicy``
refuses such addresses unless an administrator allowed their network (also when an IPv6
address carries one of them: IPv4-compatible, IPv4-mapped and -translated, NAT64, 6to4,
Teredo), refuses the networks an operator denied (private ranges stay reachable by default:
on-premises relays live there), and ``resolve`` looks a host up exactly once so that the address that was checked is the one that gets connected to
(a second lookup could answer differently: DNS rebinding).
"""

from __future__ import annotations

import ipaddress
import socket
import threading
from collections.abc import Iterable
from dataclasses import dataclass

__all__ = [
    "MAIL_PORTS",
    "EgressDenied",
    "EgressPolicy",
    "EgressRefused",
    "IPAddress",
    "IPNetwork",
    "PortRefused",
    "ResolveFailed",
    "parse_ports",
]

#: The ports mail servers listen on; a connection test may reach no other unless allowed.
MAIL_PORTS: frozenset[int] = frozenset({25, 465, 587, 2525})

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

#: Instance metadata services: they answer anyone on the host with cloud credentials.
METADATA_ADDRESSES: frozenset[IPAddress] = frozenset(
    ipaddress.ip_address(a)
    for a in (
        "169.254.169.254",  # AWS, Azure, GCP, OpenStack, Oracle
        "169.254.170.2",  # AWS ECS task metadata
        "169.254.169.253",  # AWS VPC DNS, a link-local service of the same kind
        "100.100.100.200",  # Alibaba Cloud
        "192.0.0.192",  # Oracle Cloud (classic)
        "fd00:ec2::254",  # AWS over IPv6
        "fd00:ec2::253",
    )
)

#: "This network": Linux connects 0.0.0.0/8 to the local host, so it is loopback in disguise.
_THIS_NETWORK = ipaddress.ip_network("0.0.0.0/8")

ALLOW_ADVICE = "An administrator can allow it with `elegere serve --egress-allow CIDR`."


class ResolveFailed(Exception):
    """The host name could not be resolved to any address."""

    def __init__(self, host: str, reason: str) -> None:
        super().__init__(f"Could not resolve {host}: {reason}")
        self.host = host
        self.reason = reason


class EgressRefused(Exception):
    """The address is one that connection tests may not reach."""

    def __init__(self, address: str, kind: str, host: str | None = None) -> None:
        article = "an" if kind[0] in "aeiou" else "a"
        where = f"{host} resolves to {address}," if host and host != address else f"{address} is"
        super().__init__(
            f"{where} {article} {kind} address; connection tests may not reach it. {ALLOW_ADVICE}"
        )
        self.address = address
        self.kind = kind
        self.host = host or address


class EgressDenied(EgressRefused):
    """The address is in a network the operator denied (``--egress-deny``)."""

    def __init__(self, address: str, network: IPNetwork, host: str | None = None) -> None:
        where = f"{host} resolves to {address}," if host and host != address else f"{address} is"
        Exception.__init__(
            self,
            f"{where} in {network}, a network this service's operator closed to connection "
            "tests (--egress-deny); ask the operator, or use a server outside it.",
        )
        self.address = address
        self.kind = "denied"
        self.host = host or address
        self.network = network


class PortRefused(EgressRefused):
    """The port is not one that mail servers use, so a connection test may not reach it."""

    def __init__(self, port: int) -> None:
        Exception.__init__(
            self,
            f"Port {port} is not a mail port ({', '.join(map(str, sorted(MAIL_PORTS)))}); "
            "connection tests may not reach it. An administrator can allow it with "
            f"`elegere serve --egress-allow-port {port}`.",
        )
        self.address = ""
        self.kind = "port"
        self.host = ""
        self.port = port


def parse_ports(specs: Iterable[str | int]) -> frozenset[int]:
    """Ports from "2526", "10000-10100" or ints; ValueError names the entry that is wrong."""
    ports: set[int] = set()
    for spec in specs:
        text = str(spec).strip()
        low, _, high = text.partition("-")
        try:
            first, last = int(low), int(high or low)
        except ValueError:
            raise ValueError(
                f"{spec!r} is not a port: write 2526 or a range like 10000-10100."
            ) from None
        if not 1 <= first <= last <= 65535:
            raise ValueError(f"{spec!r} is not a port range within 1-65535.")
        ports.update(range(first, last + 1))
    return frozenset(ports)


def _parse_address(address: str) -> IPAddress:
    literal = address[1:-1] if address.startswith("[") and address.endswith("]") else address
    return ipaddress.ip_address(literal)


def _forbidden_kind(ip: IPAddress) -> str | None:
    """Why an address is off limits, or None when it is an ordinary one."""
    if ip in METADATA_ADDRESSES:
        return "cloud metadata"
    if ip.is_loopback:
        return "loopback"
    if ip.is_unspecified or (isinstance(ip, ipaddress.IPv4Address) and ip in _THIS_NETWORK):
        return "unspecified"
    if ip.is_link_local:
        return "link-local"
    if ip.is_multicast:
        return "multicast"
    if isinstance(ip, ipaddress.IPv4Address) and ip == ipaddress.IPv4Address("255.255.255.255"):
        return "broadcast"
    return None


_IPV4_COMPATIBLE = ipaddress.IPv6Network("::/96")  # deprecated, still routed by some stacks
_IPV4_TRANSLATED = ipaddress.IPv6Network("::ffff:0:0:0/96")  # SIIT (RFC 7915)
_NAT64_WELL_KNOWN = ipaddress.IPv6Network("64:ff9b::/96")  # RFC 6052
_NAT64_LOCAL = ipaddress.IPv6Network("64:ff9b:1::/48")  # RFC 8215: any RFC 6052 length within
_RFC6052_LENGTHS = (48, 56, 64, 96)


def _embedded_ipv4(ip: IPAddress) -> list[ipaddress.IPv4Address]:
    """The IPv4 addresses an IPv6 address reaches through a transition mechanism: where
    NAT64, 6to4 or a dual stack exists, ``64:ff9b::7f00:1`` is 127.0.0.1."""
    if not isinstance(ip, ipaddress.IPv6Address):
        return []
    value = int(ip)
    found: list[ipaddress.IPv4Address] = []
    if ip.ipv4_mapped is not None:
        found.append(ip.ipv4_mapped)
    if ip in _IPV4_TRANSLATED or ip in _NAT64_WELL_KNOWN:
        found.append(ipaddress.IPv4Address(value & 0xFFFFFFFF))
    if ip in _IPV4_COMPATIBLE and value > 1:  # :: and ::1 are IPv6's own
        found.append(ipaddress.IPv4Address(value & 0xFFFFFFFF))
    if ip in _NAT64_LOCAL:
        # The operator picks the prefix length; every layout that fits is judged. (An ordinary
        # target may then read as a refused one under another layout: allow 64:ff9b:1::/48.)
        found.extend(
            v4 for length in _RFC6052_LENGTHS if (v4 := _rfc6052(value, length)) is not None
        )
    if ip.sixtofour is not None:
        found.append(ip.sixtofour)
    if ip.teredo is not None:
        found.extend(ip.teredo)
    return found


def _rfc6052(value: int, prefix_length: int) -> ipaddress.IPv4Address | None:
    """The IPv4 address in an IPv4-embedded IPv6 address (RFC 6052 2.2): 32 bits after the
    prefix, skipping bits 64-71 (the "u" octet, zero), then a zero suffix; None when the
    address does not fit that layout."""
    if prefix_length == 96:
        return ipaddress.IPv4Address(value & 0xFFFFFFFF)
    bits = f"{value:0128b}"
    rest = bits[prefix_length:64] + bits[72:]
    if "1" in bits[64:72] or "1" in rest[32:]:
        return None
    return ipaddress.IPv4Address(int(rest[:32], 2))


@dataclass(frozen=True)
class EgressPolicy:
    """Refuses loopback, link-local, unspecified, multicast and cloud metadata addresses
    (directly or carried in IPv6), except in the networks of ``allow``; refuses the networks
    of ``deny``; and every port but the mail ports and ``ports``. Where an allowed and a
    denied network both hold an address, the narrower one decides (denied when equal)."""

    allow: tuple[IPNetwork, ...] = ()
    ports: frozenset[int] = MAIL_PORTS
    deny: tuple[IPNetwork, ...] = ()

    @classmethod
    def from_strings(
        cls, cidrs: Iterable[str], ports: Iterable[str | int] = (), deny: Iterable[str] = ()
    ) -> EgressPolicy:
        """A policy allowing these networks ("127.0.0.0/8", "::1", "10.1.2.3/32"), besides
        the mail ports these ports ("2526", "10000-10100"), and denying the ``deny`` networks.

        Raises ValueError naming the entry that is not a network or a port.
        """
        return cls(
            allow=_networks(cidrs), ports=MAIL_PORTS | parse_ports(ports), deny=_networks(deny)
        )

    def allows(self, ip: IPAddress) -> bool:
        return self._rule(ip) is True

    def _rule(self, ip: IPAddress) -> bool | IPNetwork | None:
        """True when an allowed network decides, the denied network when one does, None when
        neither holds ``ip``."""
        # (prefix length, deny over allow on a tie, the rule)
        matches: list[tuple[int, int, bool | IPNetwork]] = [
            (net.prefixlen, 0, True) for net in self.allow if _holds(net, ip)
        ]
        matches += [(net.prefixlen, 1, net) for net in self.deny if _holds(net, ip)]
        return max(matches, key=lambda m: m[:2])[2] if matches else None

    def _check(self, ip: IPAddress, host: str | None) -> None:
        """Raise EgressRefused when a connection test may not reach this IP address."""
        for target in (ip, *_embedded_ipv4(ip)):
            rule = self._rule(target)
            if rule is True:
                if target is ip:
                    return  # the address itself was allowed, whatever it carries
                continue
            if isinstance(rule, ipaddress.IPv4Network | ipaddress.IPv6Network):
                raise EgressDenied(str(ip), rule, host)
            kind = _forbidden_kind(target)
            if kind is not None:
                raise EgressRefused(str(ip), kind, host)

    def resolve(self, host: str, port: int, *, timeout: float | None = None) -> str:
        """The first address of ``host`` the policy lets through; the caller must connect to it.

        Looks the name up once; IP literals need no lookup. ``timeout`` bounds the lookup, which
        the resolver library would otherwise let run for as long as its own retries take.
        """
        if port not in self.ports:
            raise PortRefused(port)
        try:
            ip = _parse_address(host)
        except ValueError:
            pass
        else:
            self._check(ip, host=None)
            return str(ip)
        addresses = _lookup(host, port, timeout)
        first_refusal: EgressRefused | None = None
        for address in addresses:
            try:
                self._check(_parse_address(address), host=host)
            except EgressRefused as exc:
                first_refusal = first_refusal or exc
                continue
            return address
        assert first_refusal is not None  # _lookup never returns an empty list
        raise first_refusal


def _holds(network: IPNetwork, ip: IPAddress) -> bool:
    return ip.version == network.version and ip in network


def _networks(cidrs: Iterable[str]) -> tuple[IPNetwork, ...]:
    networks: list[IPNetwork] = []
    for cidr in cidrs:
        try:
            networks.append(ipaddress.ip_network(cidr.strip(), strict=False))
        except ValueError:
            raise ValueError(
                f"{cidr!r} is not a network: write it like 127.0.0.0/8 or fd00::/8."
            ) from None
    return tuple(networks)


def _lookup(host: str, port: int, timeout: float | None) -> list[str]:
    """getaddrinfo in a daemon thread, so that a resolver that hangs cannot hold the caller."""
    outcome: list[list[str] | BaseException] = []

    def run() -> None:
        try:
            infos = socket.getaddrinfo(
                host, port, type=socket.SOCK_STREAM, proto=socket.IPPROTO_TCP
            )
            seen: dict[str, None] = {}
            for info in infos:
                seen.setdefault(str(info[4][0]), None)
            outcome.append(list(seen))
        except BaseException as exc:  # handed to the caller's thread below
            outcome.append(exc)

    worker = threading.Thread(target=run, name=f"resolve {host}", daemon=True)
    worker.start()
    worker.join(timeout)
    if not outcome:
        raise ResolveFailed(host, f"no answer from DNS within {timeout:.0f} s")
    result = outcome[0]
    if isinstance(result, socket.gaierror):
        raise ResolveFailed(host, result.strerror or str(result)) from None
    if isinstance(result, BaseException):
        raise ResolveFailed(host, str(result) or type(result).__name__) from None
    if not result:
        raise ResolveFailed(host, "no address found")
    return result
