"""Hypothesis strategies for what a hostile or careless caller puts in a settings body.

Every field gets its own mix: values that should pass, near misses, the wrong JSON type,
huge strings, control characters and lone surrogates (JSON's "\\ud800" escape reaches Python
as one), and anything JSON can say. Plain module (no pytest).
"""

from __future__ import annotations

import base64
import string
from typing import Any

from hypothesis import strategies as st

from elegere_widgets.models.servers import CERTIFICATE_MAX_BYTES

#: A key that is never a field: the property needs a value to show up in no error message.
SECRET_MARKER = "pw-7f3a9c1e5b"

# Any character, lone surrogates included (st.text leaves category Cs out by default).
ANY_CHAR = st.characters(codec=None, exclude_categories=())
NASTY_CHARS = st.sampled_from(
    ["\x00", "\n", "\r", "\t", "\x7f", "\x85", "\u2028", "\u202e", "\ufeff", "\ud800", "\udfff"]
)

#: Strings that have broken validators elsewhere: empties, spaces, scripts, format tricks.
NASTY_STRINGS = [
    "",
    " ",
    "\t\n",
    "null",
    "None",
    "true",
    "0",
    "-1",
    "{}",
    "[]",
    "%s%n",
    "{label}",
    "\\u0000",
    "'; DROP TABLE email_servers; --",
    "<script>alert(1)</script>",
    "smtp.example.com\r\nRCPT TO:<x@example.com>",
    "\x00",
    "\ud800",
    "a\udfffb",
    "\u202etxt.exe",
    "Ⅻ",
    "١٢٣",
    "𝟓𝟖𝟕",
    "ß",
    "İ",
    "\ufeffsmtp.example.com",
]


def huge_text() -> st.SearchStrategy[str]:
    """Strings from a few hundred characters to 400,000: over every length limit of a field."""
    return st.builds(
        lambda unit, n: unit * n,
        st.sampled_from(["a", "é", "1", "A=", "\x00", "\ud800", "a.", "😀"]),
        st.sampled_from([254, 321, 1000, 70_000, 400_000]),
    )


def hostile_text() -> st.SearchStrategy[str]:
    return st.one_of(
        st.text(max_size=40),
        st.text(ANY_CHAR, max_size=20),
        st.builds(lambda a, c, b: a + c + b, st.text(max_size=8), NASTY_CHARS, st.text(max_size=8)),
        st.sampled_from(NASTY_STRINGS),
        huge_text(),
    )


def json_values() -> st.SearchStrategy[Any]:
    """Anything a JSON document can hold (and a few floats JSON cannot)."""
    scalars = st.one_of(
        st.none(),
        st.booleans(),
        st.integers(min_value=-(2**70), max_value=2**70),
        st.floats(allow_nan=True, allow_infinity=True),
        hostile_text(),
    )
    return st.recursive(
        scalars,
        lambda inner: (
            st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3)
        ),
        max_leaves=6,
    )


def _mix(*good: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    """Mostly plausible values for a field, often something else entirely."""
    return st.one_of(*good, hostile_text(), json_values())


# ---------------------------------------------------------------- SMTP fields

_LABEL = st.from_regex(r"[a-z0-9]([a-z0-9-]{0,10}[a-z0-9])?", fullmatch=True)
HOST_NAMES = st.builds(lambda labels: ".".join(labels), st.lists(_LABEL, min_size=1, max_size=4))
IP_LITERALS = st.one_of(
    st.ip_addresses(v=4).map(str),
    st.ip_addresses(v=6).map(str),
    st.ip_addresses(v=6).map(lambda ip: f"[{ip}]"),  # bracketed, as in a URL
)
HOST_EXAMPLES = st.sampled_from(
    [
        "smtp.example.com",
        "SMTP.Example.COM.",
        "bücher.example",  # IDN: Unicode labels
        "xn--bcher-kva.example",  # the same host as an A-label
        "münchen.de",
        "localhost",
        "[::1]",
        "::1",
        "[::1",
        "::1]",
        "fe80::1%eth0",
        "[fe80::1%eth0]",
        "::ffff:127.0.0.1",
        "127.1",
        "0x7f.0.0.1",
        "999.1.1.1",
        "smtp.example.com:587",
        "smtp://smtp.example.com",
        "user@smtp.example.com",
        "smtp.example.com/path",
        "-lead.example.com",
        "trail-.example.com",
        "a..b",
        ".",
        "a" * 64 + ".com",
        ".".join(["a" * 63] * 5),
        "smtp .example.com",
    ]
)
SERVERS = _mix(HOST_NAMES, IP_LITERALS, HOST_EXAMPLES)

PORTS = _mix(
    st.integers(min_value=-(2**70), max_value=2**70),
    st.integers(min_value=0, max_value=65536),
    st.integers(min_value=1, max_value=65535).map(str),
    st.sampled_from(
        [True, False, 587.0, 587.5, -25, 0, 65536, "587", " 587 ", "5_87", "0x24b", "1e3", "+25"]
    ),
    st.floats(),
)

BOOLS = _mix(
    st.booleans(),
    st.sampled_from([0, 1, 2, -1, "true", "false", "yes", "no", "on", "off", "1", "0", "perhaps"]),
)

ACCOUNTS = _mix(st.text(string.ascii_letters + string.digits + "@._-", min_size=1, max_size=30))

EMAILS = _mix(
    st.emails(),
    st.sampled_from(
        [
            "sales@example.com",
            "Sales@Example.COM",
            "ünï@exämple.com",
            "a@b",
            "a@@example.com",
            "no-at-sign",
            '"quoted local"@example.com',
            "a@[127.0.0.1]",
            "a@example.com\r\nBcc: victim@example.com",
        ]
    ),
)

PASSWORDS = _mix(st.text(max_size=30), st.just(SECRET_MARKER))

# ---------------------------------------------------------------- Microsoft Graph fields

GUIDS = _mix(
    st.uuids().map(str),
    st.uuids().map(lambda u: "{" + str(u).upper() + "}"),
    st.uuids().map(lambda u: f"urn:uuid:{u}"),
    st.uuids().map(lambda u: u.hex),
    st.sampled_from(["00000000-0000-0000-0000-00000000000", "not-a-guid"]),
)
TENANTS = _mix(
    st.uuids().map(str),
    st.sampled_from(
        ["contoso.onmicrosoft.com", "Contoso.COM", "contoso", "contoso.c", "xn--d1acufc.xn--p1ai"]
    ),
    HOST_NAMES,
)


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


CERTIFICATES = _mix(
    st.binary(min_size=1, max_size=64).map(_b64),
    st.sampled_from(
        [
            "",
            "not base64!",
            "QUJD",  # "ABC"
            "QUJD=",  # bad padding
            _b64(b"\x00" * CERTIFICATE_MAX_BYTES),  # exactly at the limit: still allowed
            _b64(b"\x00" * (CERTIFICATE_MAX_BYTES + 1)),  # one byte over
            "-----BEGIN CERTIFICATE-----",
        ]
    ),
)

# ---------------------------------------------------------------- whole objects

SMTP_FIELDS: dict[str, st.SearchStrategy[Any]] = {
    "server": SERVERS,
    "port": PORTS,
    "use_ssl": BOOLS,
    "account": ACCOUNTS,
    "sender_address": EMAILS,
    "password": PASSWORDS,
}
GRAPH_FIELDS: dict[str, st.SearchStrategy[Any]] = {
    "account": EMAILS,
    "tenant_id": TENANTS,
    "client_id": GUIDS,
    "certificate": CERTIFICATES,
    "certificate_alias": _mix(st.text(max_size=20)),
    "certificate_password": PASSWORDS,
}

#: Keys that are no field here; some are words the error mapping gives meaning to.
EXTRA_KEYS = st.one_of(
    st.sampled_from(
        ["settings", "smtp", "microsoft_graph", "body", "type", "name", "", "tls", "__proto__"]
    ),
    st.text(max_size=10),
    st.text(ANY_CHAR, min_size=1, max_size=3),
)


@st.composite
def field_dicts(
    draw: st.DrawFn,
    fields: dict[str, st.SearchStrategy[Any]],
    valid: dict[str, Any],
) -> dict[str, Any]:
    """An object with each field valid, hostile or missing, and maybe unknown fields.

    How hostile is drawn once per object, from all valid to mostly not, so that whole valid
    objects (which reach the deeper code) are as common as thoroughly broken ones.
    """
    out: dict[str, Any] = {}
    hostility = draw(st.sampled_from([0, 0, 1, 2, 4, 7]))  # in tenths, per field
    for name, strategy in fields.items():
        if draw(st.integers(0, 9)) >= hostility:
            if name in valid:  # else an optional field, left out
                out[name] = valid[name]
        elif draw(st.integers(0, 3)):
            out[name] = draw(strategy)
        # else: missing
    if draw(st.integers(0, 3)) == 0:
        for key in draw(st.lists(EXTRA_KEYS, min_size=1, max_size=2)):
            if key not in fields:
                out[key] = draw(json_values())
    return out


# ---------------------------------------------------------------- request bodies

VALID_SMTP: dict[str, Any] = {
    "server": "smtp.example.com",
    "port": 587,
    "use_ssl": True,
    "account": "sales",
    "sender_address": "sales@example.com",
    "password": "Tr0ub4dor&3",
}
VALID_GRAPH: dict[str, Any] = {
    "account": "sales@contoso.com",
    "tenant_id": "contoso.onmicrosoft.com",
    "client_id": "6731de76-14a6-49ae-97bc-6eba6914391e",
    "certificate": "QUJD",
    "certificate_alias": "sales",
    "certificate_password": "c0rrect-Horse",
}

SPEC_FIELDS: dict[str, st.SearchStrategy[Any]] = {
    "name": st.one_of(st.just("Sales relay"), hostile_text(), json_values()),
    "test_token": st.one_of(st.none(), hostile_text(), json_values()),
    "server_id": st.one_of(st.none(), st.just("srv_sales_mailer"), hostile_text(), json_values()),
}


@st.composite
def spec_bodies(draw: st.DrawFn) -> dict[str, Any]:
    """A whole test/add body: type, top-level fields, settings of either type, extras."""
    body: dict[str, Any] = draw(field_dicts(SPEC_FIELDS, {"name": "Sales relay"}))
    kind = draw(st.sampled_from(["smtp", "microsoft_graph"]))
    wrong_type = draw(st.integers(0, 9)) == 0
    body["type"] = draw(st.sampled_from(["SMTP", "graph", "", None, 1])) if wrong_type else kind
    fields, valid = (SMTP_FIELDS, VALID_SMTP) if kind == "smtp" else (GRAPH_FIELDS, VALID_GRAPH)
    not_an_object = draw(st.integers(0, 9)) == 0
    body["settings"] = draw(json_values() if not_an_object else field_dicts(fields, valid))
    if draw(st.integers(0, 9)) == 0:
        del body["settings"]
    return body


#: Close to what the demo's Sales Mailer holds, so that many patches are valid and some pass.
VALID_PATCH_SMTP: dict[str, Any] = {
    "server": "mail.acme.example",
    "port": 465,
    "use_ssl": True,
    "account": "sales",
    "sender_address": "outbox@acme.example",
    "password": "sales-demo-password-2",
}


@st.composite
def patch_bodies(draw: st.DrawFn) -> Any:
    """A PATCH body for an SMTP server: a name, partial settings, extras, or any JSON."""
    if draw(st.integers(0, 9)) == 0:
        return draw(json_values())
    body: dict[str, Any] = draw(
        field_dicts({"name": st.one_of(hostile_text(), json_values())}, {"name": "Sales Outbox"})
    )
    not_an_object = draw(st.integers(0, 9)) == 0
    settings = draw(json_values() if not_an_object else field_dicts(SMTP_FIELDS, VALID_PATCH_SMTP))
    if draw(st.integers(0, 4)):
        body["settings"] = settings
    return body
