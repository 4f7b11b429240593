"""Egress policy: which addresses a connection test may reach, and a single lookup per test."""

from __future__ import annotations

import socket
import time
from typing import Any

import pytest

from elegere_widgets.connectivity import EgressPolicy, EgressRefused, ResolveFailed
from elegere_widgets.connectivity.egress import PortRefused

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
        EgressPolicy().check(address)
    assert caught.value.kind == kind
    assert str(caught.value).endswith(
        "connection tests may not reach it. An administrator can allow it with "
        "`elegere serve --egress-allow CIDR`."
    )


@pytest.mark.parametrize("address", ["203.0.113.5", "10.1.2.3", "192.168.0.25", "2001:db8::25"])
def test_ordinary_and_private_addresses_pass(address: str) -> None:
    EgressPolicy().check(address)
    assert EgressPolicy().resolve(address, 25) == address


def test_allow_lets_a_network_through() -> None:
    LOOPBACK_ALLOWED.check("127.0.0.1")
    assert LOOPBACK_ALLOWED.resolve("127.0.0.1", 587) == "127.0.0.1"
    with pytest.raises(EgressRefused):
        LOOPBACK_ALLOWED.check("::1")  # another family, another network
    with pytest.raises(EgressRefused):
        LOOPBACK_ALLOWED.check("169.254.169.254")


def test_ipv6_literals() -> None:
    policy = EgressPolicy.from_strings(["::1/128"])
    assert policy.resolve("::1", 25) == "::1"
    assert policy.resolve("[::1]", 25) == "::1"
    with pytest.raises(EgressRefused, match=r"^fd00:ec2::254 is a cloud metadata address"):
        policy.resolve("fd00:ec2::254", 25)


def test_from_strings_names_the_bad_entry() -> None:
    with pytest.raises(ValueError, match="'not-a-net' is not a network"):
        EgressPolicy.from_strings(["10.0.0.0/8", "not-a-net"])
    assert EgressPolicy.from_strings([" 10.0.0.1 "]).allow[0].prefixlen == 32


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
