"""Egress policy: which addresses a connection test may reach, and a single lookup per test."""

from __future__ import annotations

import ipaddress
import socket
import time
from typing import Any

import pytest

from elegere_widgets.connectivity import EgressPolicy, EgressRefused, ResolveFailed
from elegere_widgets.connectivity.egress import EgressDenied, PortRefused

LOOPBACK_ALLOWED = EgressPolicy.from_strings(["127.0.0.0/8"])


@pytest.mark.parametrize(
    ("address", "kind"),
    [
        ("127.0.0.1", "loopback"),
        ("127.8.9.10", "loopback"),
        ("::1", "loopback"),
        ("[::1]", "loopback"),
        ("::ffff:127.0.0.1", "loopback"),
        ("0.0.0.0", "unspecified"),
        ("::", "unspecified"),
        ("169.254.1.1", "link-local"),
        ("fe80::1", "link-local"),
        ("224.0.0.1", "multicast"),
        ("ff02::1", "multicast"),
        ("169.254.169.254", "cloud metadata"),
        ("100.100.100.200", "cloud metadata"),
        ("fd00:ec2::254", "cloud metadata"),
    ],
)
def test_default_policy_refuses(address: str, kind: str) -> None:
    with pytest.raises(EgressRefused) as caught:
        EgressPolicy().resolve(address, 25)
    assert caught.value.kind == kind
    assert str(caught.value).endswith(
        "connection tests may not reach it. An administrator can allow it with "
        "`elegere serve --egress-allow CIDR`."
    )


@pytest.mark.parametrize("address", ["203.0.113.5", "10.1.2.3", "192.168.0.25", "2001:db8::25"])
def test_ordinary_and_private_addresses_pass(address: str) -> None:
    assert EgressPolicy().resolve(address, 25) == address


def test_allow_lets_a_network_through() -> None:
    assert LOOPBACK_ALLOWED.resolve("127.0.0.1", 587) == "127.0.0.1"
    with pytest.raises(EgressRefused):
        LOOPBACK_ALLOWED.resolve("::1", 25)  # another family, another network
    with pytest.raises(EgressRefused):
        LOOPBACK_ALLOWED.resolve("169.254.169.254", 25)


def test_ipv6_literals() -> None:
    policy = EgressPolicy.from_strings(["::1/128"])
    assert policy.resolve("::1", 25) == "::1"
    assert policy.resolve("[::1]", 25) == "::1"
    with pytest.raises(EgressRefused, match=r"^fd00:ec2::254 is a cloud metadata address"):
        policy.resolve("fd00:ec2::254", 25)


# ---------------------------------------------------------------- IPv6 carrying IPv4 (issue 11.12)

#: Each IPv6 transition form, wrapping each of TARGETS.
TRANSITION_FORMS = {
    "ipv4-compatible": "::{}",
    "ipv4-mapped": "::ffff:{}",
    "ipv4-translated": "::ffff:0:{}",
    "nat64": "64:ff9b::{}",
    "nat64-local-96": "64:ff9b:1::{}",
}
TARGETS = {
    "127.0.0.1": "loopback",
    "169.254.169.254": "cloud metadata",
    "169.254.1.1": "link-local",
    "0.1.2.3": "unspecified",
}


@pytest.mark.parametrize("target", list(TARGETS))
@pytest.mark.parametrize("form", list(TRANSITION_FORMS))
def test_ipv6_forms_carrying_a_refused_ipv4_target_are_refused(form: str, target: str) -> None:
    address = TRANSITION_FORMS[form].format(target)
    with pytest.raises(EgressRefused) as caught:
        EgressPolicy().resolve(address, 25)
    assert caught.value.kind == TARGETS[target]
    assert "--egress-allow CIDR" in str(caught.value)


def _six_to_four(target: str) -> str:
    packed = ipaddress.IPv4Address(target).packed
    return f"2002:{packed[0]:02x}{packed[1]:02x}:{packed[2]:02x}{packed[3]:02x}::1"


def _rfc6052_48(target: str) -> str:
    """``target`` in 64:ff9b:1::/48 with a /48 prefix: 16 bits, the u octet, 16 bits."""
    v4 = int(ipaddress.IPv4Address(target))
    value = (int(ipaddress.IPv6Address("64:ff9b:1::")) | (v4 >> 16) << 64) | (v4 & 0xFFFF) << 40
    return str(ipaddress.IPv6Address(value))


@pytest.mark.parametrize("target", list(TARGETS))
@pytest.mark.parametrize("encode", [_six_to_four, _rfc6052_48], ids=["6to4", "nat64-local-48"])
def test_6to4_and_nat64_prefixes_carrying_a_refused_target_are_refused(
    encode: Any, target: str
) -> None:
    with pytest.raises(EgressRefused) as caught:
        EgressPolicy().resolve(encode(target), 25)
    assert caught.value.kind == TARGETS[target]


def test_the_forms_named_in_the_issue() -> None:
    for address in ("::127.0.0.1", "64:ff9b::7f00:1", "::ffff:0:7f00:1", "2002:7f00:1::"):
        with pytest.raises(EgressRefused, match="loopback"):
            EgressPolicy().resolve(address, 25)


@pytest.mark.parametrize("form", list(TRANSITION_FORMS))
def test_ipv6_forms_carrying_an_ordinary_address_pass(form: str) -> None:
    address = TRANSITION_FORMS[form].format("203.0.113.5")
    assert EgressPolicy().resolve(address, 25) == str(ipaddress.ip_address(address))
    assert EgressPolicy().resolve(_six_to_four("203.0.113.5"), 25)


@pytest.mark.parametrize("form", list(TRANSITION_FORMS))
def test_allowing_the_ipv4_target_allows_its_ipv6_forms(form: str) -> None:
    address = TRANSITION_FORMS[form].format("127.0.0.1")
    assert LOOPBACK_ALLOWED.resolve(address, 25) == str(ipaddress.ip_address(address))
    with pytest.raises(EgressRefused):  # another target stays refused
        LOOPBACK_ALLOWED.resolve(TRANSITION_FORMS[form].format("169.254.169.254"), 25)


# ---------------------------------------------------------------- operator's deny list


def test_deny_closes_a_private_network() -> None:
    policy = EgressPolicy.from_strings([], deny=["10.0.0.0/8", "100.64.0.0/10"])
    for address in ("10.1.2.3", "100.64.0.9", "::ffff:10.1.2.3", "64:ff9b::a01:203"):
        with pytest.raises(EgressDenied) as caught:
            policy.resolve(address, 25)
        assert "--egress-deny" in str(caught.value)
    assert str(caught.value).startswith("64:ff9b::a01:203 is in 10.0.0.0/8, a network")
    assert policy.resolve("192.168.0.25", 25) == "192.168.0.25"  # not denied: still open


def test_deny_and_allow_the_narrower_network_decides() -> None:
    policy = EgressPolicy.from_strings(["10.1.2.3/32"], deny=["10.0.0.0/8"])
    assert policy.resolve("10.1.2.3", 25) == "10.1.2.3"
    with pytest.raises(EgressDenied):
        policy.resolve("10.1.2.4", 25)
    # Equal networks: deny wins.
    with pytest.raises(EgressDenied):
        EgressPolicy.from_strings(["10.0.0.0/8"], deny=["10.0.0.0/8"]).resolve("10.0.0.1", 25)


def test_deny_applies_to_every_address_a_name_resolves_to(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(socket, "getaddrinfo", _fake_getaddrinfo(["10.9.9.9"], []))
    with pytest.raises(EgressDenied, match=r"^relay\.corp resolves to 10\.9\.9\.9, "):
        EgressPolicy.from_strings([], deny=["10.0.0.0/8"]).resolve("relay.corp", 25)


def test_from_strings_names_the_bad_entry() -> None:
    with pytest.raises(ValueError, match="'not-a-net' is not a network"):
        EgressPolicy.from_strings(["10.0.0.0/8", "not-a-net"])
    assert EgressPolicy.from_strings([" 10.0.0.1 "]).allow[0].prefixlen == 32
    with pytest.raises(ValueError, match=r"'10\.0\.0\.0/33' is not a network"):
        EgressPolicy.from_strings([], deny=["10.0.0.0/33"])


def _fake_getaddrinfo(addresses: list[str], calls: list[str]) -> Any:
    def fake(host: str, port: int, *args: Any, **kwargs: Any) -> list[Any]:
        calls.append(host)
        out = []
        for a in addresses:
            family = socket.AF_INET6 if ":" in a else socket.AF_INET
            sockaddr = (a, port, 0, 0) if family == socket.AF_INET6 else (a, port)
            out.append((family, socket.SOCK_STREAM, socket.IPPROTO_TCP, "", sockaddr))
        return out

    return fake


def test_resolve_returns_the_first_allowed_address_and_looks_up_once(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    calls: list[str] = []
    monkeypatch.setattr(
        socket, "getaddrinfo", _fake_getaddrinfo(["::1", "127.0.0.1", "203.0.113.7"], calls)
    )
    assert EgressPolicy().resolve("mail.example.com", 587) == "203.0.113.7"
    assert LOOPBACK_ALLOWED.resolve("mail.example.com", 587) == "127.0.0.1"
    assert calls == ["mail.example.com", "mail.example.com"]


def test_resolve_refuses_a_name_that_only_points_inside(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(socket, "getaddrinfo", _fake_getaddrinfo(["::1", "127.0.0.1"], []))
    with pytest.raises(EgressRefused) as caught:
        EgressPolicy().resolve("rebind.example.com", 25)
    assert str(caught.value).startswith(
        "rebind.example.com resolves to ::1, a loopback address; connection tests may not reach it."
    )


def test_resolve_failure_names_the_host(monkeypatch: pytest.MonkeyPatch) -> None:
    def fail(*args: Any, **kwargs: Any) -> Any:
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")

    monkeypatch.setattr(socket, "getaddrinfo", fail)
    with pytest.raises(ResolveFailed, match=r"^Could not resolve nowhere\.example\.com: Name or"):
        EgressPolicy().resolve("nowhere.example.com", 25)


def test_a_hanging_resolver_is_bounded_by_the_timeout(monkeypatch: pytest.MonkeyPatch) -> None:
    def hang(*args: Any, **kwargs: Any) -> Any:
        time.sleep(3)
        raise socket.gaierror(socket.EAI_AGAIN, "Temporary failure")

    monkeypatch.setattr(socket, "getaddrinfo", hang)
    started = time.monotonic()
    with pytest.raises(ResolveFailed, match="no answer from DNS"):
        EgressPolicy().resolve("slow.example.com", 25, timeout=0.2)
    assert time.monotonic() - started < 1


def test_localhost_resolves_from_the_hosts_file() -> None:
    assert LOOPBACK_ALLOWED.resolve("localhost", 25) == "127.0.0.1"
    with pytest.raises(EgressRefused, match=r"^localhost resolves to"):
        EgressPolicy().resolve("localhost", 25)


@pytest.mark.parametrize("port", [25, 465, 587, 2525])
def test_mail_ports_are_allowed(port: int) -> None:
    assert EgressPolicy().resolve("203.0.113.9", port) == "203.0.113.9"


@pytest.mark.parametrize("port", [22, 80, 443, 3306, 6379, 8080])
def test_other_ports_are_refused_unless_allowed(port: int) -> None:
    with pytest.raises(PortRefused) as info:
        EgressPolicy().resolve("203.0.113.9", port)
    assert f"--egress-allow-port {port}" in str(info.value)
    assert EgressPolicy.from_strings([], ports=[str(port)]).resolve("203.0.113.9", port)
    assert EgressPolicy.from_strings([], ports=["1-65535"]).resolve("203.0.113.9", port)


def test_port_specs_name_the_bad_entry() -> None:
    with pytest.raises(ValueError, match="'x25'"):
        EgressPolicy.from_strings([], ports=["x25"])
    with pytest.raises(ValueError, match="1-65535"):
        EgressPolicy.from_strings([], ports=["0-70000"])


def test_refused_port_and_unreachable_host_read_alike() -> None:
    from elegere_widgets.connectivity import test_smtp
    from elegere_widgets.models import SmtpSettings
    from tests.fixtures.smtp import closed_port

    policy = EgressPolicy.from_strings(["127.0.0.0/8", "192.0.2.0/24"], ports=["1-65535"])
    closed = closed_port()

    def connect_detail(host: str, port: int) -> tuple[str, str | None]:
        settings = SmtpSettings(server=host, port=port, account="a", sender_address="a@example.com")
        stage = test_smtp(settings, egress=policy, budget_s=2).failed_stage
        assert stage is not None and stage.name == "connect"
        return stage.detail.replace(host, "H").replace(str(port), "P"), stage.hint

    assert connect_detail("127.0.0.1", closed) == connect_detail("127.0.0.2", closed)
