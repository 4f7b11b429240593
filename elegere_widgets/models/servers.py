"""Email server models: one per direction.

In: ``SmtpSettings`` / ``GraphSettings`` (secrets as ``WriteOnlySecret``/``WriteOnlyBytes``;
each field's label, help and placeholder on the field itself, see :mod:`.fields`), wrapped in
``SmtpServerSpec`` / ``GraphServerSpec`` for a test or an add, and ``EmailServerPatch`` for an
update. Out: ``EmailServer``, whose settings never hold a secret (``secrets_set`` says which are
stored). Every validation message names the field and says what to fix.
"""

from __future__ import annotations

import base64
import binascii
import ipaddress
import re
import unicodedata
import uuid
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Annotated, Any, Literal, TypeVar

from email_validator import EmailNotValidError, validate_email
from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    SecretBytes,
    SecretStr,
    SerializerFunctionWrapHandler,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_serializer,
    model_validator,
)
from pydantic_core import PydanticCustomError

from .connection import LastTest, ServerHealth, ServerType
from .fields import (
    Choices,
    Derived,
    OwnForm,
    Placeholder,
    WriteOnlyBytes,
    WriteOnlySecret,
    labels,
    secret_fields,
    wire_secret,
)
from .problems import FieldError
from .usage import UsageCounts

NAME_MAX = 100
CERTIFICATE_MAX_BYTES = 1024 * 1024
_HOST_LABEL = re.compile(r"^(?!-)[A-Za-z0-9-]{1,63}(?<!-)$")
_DOMAIN = re.compile(
    r"^(?=.{1,253}$)([A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)+[A-Za-z]{2,63}$"
)


# ---------------------------------------------------------------- field checks (shared)


def check_name(value: str) -> str:
    value = value.strip()
    if not value:
        raise ValueError("Enter a name, for example 'Sales relay'.")
    if len(value) > NAME_MAX:
        raise ValueError(f"Name must be at most {NAME_MAX} characters; shorten it.")
    # Cc is C0, DEL and C1 (NEL among them); Zl/Zp are U+2028/U+2029: all break a line in a
    # list, a log or a CSV export just as "\n" does.
    if any(unicodedata.category(c) in ("Cc", "Zl", "Zp") for c in value):
        raise ValueError("Name must not contain line breaks or control characters.")
    return value


def check_host(value: str) -> str:
    value = value.strip()
    if not value:
        raise ValueError("Enter the server's host name, for example smtp.example.com.")
    if "://" in value or value.lower().startswith(("smtp:", "smtps:", "http:", "https:")):
        raise ValueError(
            "Enter only the host name, without a scheme: smtp.example.com, not smtp://smtp.example.com."
        )
    if any(c.isspace() for c in value):
        raise ValueError(
            "The server must not contain spaces; enter a host name such as smtp.example.com."
        )
    if "/" in value or "@" in value:
        raise ValueError(
            "Enter only the host name (smtp.example.com), without a path or an account."
        )
    literal = value[1:-1] if value.startswith("[") and value.endswith("]") else value
    try:
        return str(ipaddress.ip_address(literal))
    except ValueError:
        pass
    if ":" in value:
        raise ValueError("Enter the port in the Port field, not after the host name.")
    host = value.rstrip(".")
    if len(host) > 253 or not all(_HOST_LABEL.match(label) for label in host.split(".")):
        raise ValueError(
            "Enter a valid host name (letters, digits, hyphens and dots, such as smtp.example.com) "
            "or an IP address."
        )
    return host.lower()


def refuse_bool_port(value: Any) -> Any:
    # pydantic's lax int takes true as 1: a JSON boolean is a mistake, never port 1.
    if isinstance(value, bool):
        raise ValueError("Port must be a number from 1 to 65535, not true or false.")
    return value


def check_port(value: int) -> int:
    if not 1 <= value <= 65535:
        raise ValueError(
            "Port must be a number from 1 to 65535 (usually 587, or 465 with Use SSL)."
        )
    return value


def check_email(value: str, label: str) -> str:
    value = value.strip()
    if not value:
        raise ValueError(f"Enter the {label}, for example notifications@example.com.")
    try:
        result = validate_email(value, check_deliverability=False)
    except EmailNotValidError as exc:
        raise ValueError(
            f"Enter a valid email address such as notifications@example.com ({exc})."
        ) from None
    return result.normalized


def check_required_text(value: str, what: str) -> str:
    value = value.strip()
    if not value:
        raise ValueError(f"Enter {what}.")
    if len(value) > 320:
        raise ValueError(f"Enter at most 320 characters for {what}.")
    return value


def check_guid(value: str, label: str) -> str:
    value = value.strip()
    try:
        return str(uuid.UUID(value))
    except ValueError:
        raise ValueError(
            f"{label} must be a GUID such as 00000000-0000-0000-0000-000000000000; copy it from "
            "the app registration's Overview page."
        ) from None


def check_tenant(value: str) -> str:
    value = value.strip()
    try:
        return str(uuid.UUID(value))
    except ValueError:
        pass
    if _DOMAIN.match(value):
        return value.lower()
    raise ValueError(
        "Tenant ID must be the directory (tenant) GUID or a verified domain such as contoso.onmicrosoft.com."
    )


Name = Annotated[str, AfterValidator(check_name)]
Host = Annotated[str, AfterValidator(check_host)]
Port = Annotated[int, BeforeValidator(refuse_bool_port), AfterValidator(check_port)]
Account = Annotated[
    str,
    AfterValidator(
        lambda v: check_required_text(v, "the account (the login name the server expects)")
    ),
]
SenderAddress = Annotated[str, AfterValidator(lambda v: check_email(v, "sender address"))]
Mailbox = Annotated[str, AfterValidator(lambda v: check_email(v, "account (mailbox)"))]
TenantId = Annotated[str, AfterValidator(check_tenant)]
ClientId = Annotated[str, AfterValidator(lambda v: check_guid(v, "Client ID"))]


def _storable_text(value: Any, info: ValidationInfo) -> Any:
    """Refuse text no store or wire can carry: NUL, and lone surrogates (JSON's "\\ud800").

    Python's JSON parser lets both through; SQLite and UTF-8 then fail on a surrogate, and
    PostgreSQL on NUL, as a 500 at save time or, worse, on every later read of the row.
    """
    if isinstance(value, str) and (
        "\x00" in value or any("\ud800" <= c <= "\udfff" for c in value)
    ):
        label = FIELD_LABELS.get(info.field_name or "", info.field_name or "This field")
        raise ValueError(
            f"{label} contains a character that is not text (NUL or an unpaired surrogate); "
            "type it again."
        )
    return value


# ---------------------------------------------------------------- settings in


class _Settings(BaseModel):
    model_config = ConfigDict(extra="forbid", hide_input_in_errors=True, validate_assignment=True)

    _storable = field_validator("*", mode="before")(_storable_text)

    def public(self) -> dict[str, Any]:
        """The settings without any secret (and no next certificate's alias without one)."""
        public = self.model_dump(mode="json", exclude=set(self.secret_fields()))
        if not self.has_next_certificate:
            public.pop("next_certificate_alias", None)
        return public

    def secrets(self) -> dict[str, str]:
        """The secrets that are set, as wire values (base64 for files)."""
        values = ((name, getattr(self, name)) for name in self.secret_fields())
        return {name: wire_secret(value) for name, value in values if value is not None}

    @classmethod
    def secret_fields(cls) -> tuple[str, ...]:
        """The write-only fields, in their order."""
        return secret_fields(cls)

    def used_secret_fields(self) -> tuple[str, ...]:
        """The write-only fields these settings sign in with (``secrets_set`` lists them), and
        the next certificate's when one is held."""
        if self.has_next_certificate:
            return self.secret_fields()
        return tuple(f for f in self.secret_fields() if f not in NEXT_CERTIFICATE_FIELDS)

    @property
    def has_next_certificate(self) -> bool:
        return getattr(self, "next_certificate", None) is not None

    @model_validator(mode="after")
    def _next_certificate_comes_first(self) -> _Settings:
        given = [
            f
            for f in NEXT_CERTIFICATE_FIELDS[1:]
            if getattr(self, f, None) is not None and not self.has_next_certificate
        ]
        if given:
            raise _field_errors(
                [
                    (
                        f,
                        f"{FIELD_LABELS[f]} goes with a Next Certificate: upload the next "
                        "certificate's file too, or remove it.",
                    )
                    for f in given
                ]
            )
        return self


def _decode_certificate(v: Any) -> Any:
    if v is None or v == "" or v == b"":
        return None
    if isinstance(v, SecretBytes):
        v = v.get_secret_value()
    if isinstance(v, str):
        try:
            v = base64.b64decode(v, validate=True)
        except (binascii.Error, ValueError):
            raise ValueError(
                "Certificate must be the file's content in base64; upload the .pfx or .cer again."
            ) from None
    if isinstance(v, bytes | bytearray) and len(v) > CERTIFICATE_MAX_BYTES:
        raise ValueError("Certificate file is over 1 MiB; upload the .pfx or .cer itself.")
    return v


def _blank_alias_is_none(v: Any) -> Any:
    return v.strip() or None if isinstance(v, str) else v


# What an app registration signing in with a certificate is made of, declared once: the
# Microsoft Graph type and SMTP with OAuth 2.0 (Microsoft 365) both use these fields.
_TENANT_ID = (
    Placeholder("directory GUID or contoso.onmicrosoft.com"),
    Field(title="Tenant ID", description="Directory (tenant) GUID or a verified domain."),
)
_CLIENT_ID = (
    Placeholder("00000000-0000-0000-0000-000000000000"),
    Field(title="Client ID", description="Application (client) GUID of the app registration."),
)
#: The app registration's certificate (write-only; base64 on the wire).
CertificateFile = Annotated[
    WriteOnlyBytes,
    BeforeValidator(_decode_certificate),
    Field(
        title="Certificate",
        description="Write-only: the .pfx/.p12, .pem or .cer/.crt file (base64 on the wire).",
    ),
]
CertificateAlias = Annotated[
    str | None,
    BeforeValidator(_blank_alias_is_none),
    Placeholder("only for a .pfx that holds several keys"),
    Field(title="Certificate Alias", description="Friendly name of the key in a multi-key .pfx."),
]
CertificatePassword = Annotated[
    WriteOnlySecret, Field(title="Certificate Password", description="Write-only, for a .pfx.")
]
TenantIdField = Annotated[TenantId, *_TENANT_ID]
ClientIdField = Annotated[ClientId, *_CLIENT_ID]
OptionalTenantIdField = Annotated[TenantId | None, *_TENANT_ID]
OptionalClientIdField = Annotated[ClientId | None, *_CLIENT_ID]

NextCertificateFile = Annotated[
    WriteOnlyBytes,
    BeforeValidator(_decode_certificate),
    OwnForm(),
    Field(
        title="Next Certificate",
        description="Write-only: the renewed certificate, held beside the current one until it "
        "is tested and promoted (same files as Certificate).",
    ),
]
NextCertificateAlias = Annotated[
    str | None,
    BeforeValidator(_blank_alias_is_none),
    OwnForm(),
    Placeholder("only for a .pfx that holds several keys"),
    Field(title="Next Certificate Alias", description="Certificate Alias of the next certificate."),
]
NextCertificatePassword = Annotated[
    WriteOnlySecret,
    OwnForm(),
    Field(title="Next Certificate Password", description="Write-only, for the next .pfx."),
]

#: The fields of an app registration's sign-in, in the form's order.
APP_CREDENTIAL_FIELDS = (
    "tenant_id",
    "client_id",
    "certificate",
    "certificate_alias",
    "certificate_password",
)

#: A certificate's fields, named as the current one's: the next one's carry ``NEXT``.
CERTIFICATE_FIELDS = ("certificate", "certificate_alias", "certificate_password")
NEXT = "next_"
#: The next certificate's fields (settings), stored and bound like the current one's.
NEXT_CERTIFICATE_FIELDS = tuple(NEXT + name for name in CERTIFICATE_FIELDS)
#: What the service derives and keeps with the settings (never typed): what may be shown of
#: each certificate, and the last test of the next one.
DERIVED_SETTINGS = ("certificate_info", "next_certificate_info", "next_certificate_test")
#: Everything of the next certificate a server's stored settings may hold.
NEXT_CERTIFICATE_STORED = (
    *NEXT_CERTIFICATE_FIELDS,
    "next_certificate_info",
    "next_certificate_test",
)

#: What only OAuth 2.0 uses: the app registration's sign-in, and a next certificate for it.
OAUTH_ONLY_FIELDS = (*APP_CREDENTIAL_FIELDS, *NEXT_CERTIFICATE_FIELDS)

Authentication = Literal["password", "oauth2"]
TlsMode = Literal["implicit", "starttls"]

#: The Authentication choice as the form shows it.
AUTHENTICATION_LABELS: dict[str, str] = {
    "password": "Password",
    "oauth2": "OAuth 2.0 (Microsoft 365)",
}


class SmtpSettings(_Settings):
    """The settings of an SMTP server: a password, or OAuth 2.0 with an app's certificate."""

    server: Annotated[Host, Placeholder("smtp.example.com")] = Field(
        title="Server", description="Host name or IP address, without a scheme."
    )
    port: Port = Field(
        title="Port", description="TCP port, 1-65535: 587 (STARTTLS), 465 (implicit TLS), 25."
    )
    use_ssl: bool = Field(False, title="Use SSL", description="The connection must be encrypted.")
    account: Annotated[Account, Placeholder("the login name the server expects")] = Field(
        title="Account", description="The login name the server expects."
    )
    sender_address: Annotated[SenderAddress, Placeholder("notifications@example.com")] = Field(
        title="Sender Address", description="The address mail is sent from."
    )
    authentication: Annotated[Authentication, Choices(tuple(AUTHENTICATION_LABELS.items()))] = (
        Field(
            "password",
            title="Authentication",
            description="password (Account and Password; the default) or oauth2 (Microsoft 365: "
            "an app registration signs in with its certificate, AUTH XOAUTH2).",
        )
    )
    password: WriteOnlySecret = Field(
        None, title="Password", description="Write-only. Omit to send no AUTH."
    )
    tenant_id: OptionalTenantIdField = None
    client_id: OptionalClientIdField = None
    certificate: CertificateFile = None
    certificate_alias: CertificateAlias = None
    certificate_password: CertificatePassword = None
    next_certificate: NextCertificateFile = None
    next_certificate_alias: NextCertificateAlias = None
    next_certificate_password: NextCertificatePassword = None
    tls_mode: Annotated[TlsMode | None, Derived()] = Field(
        None,
        title="TLS mode",
        description="Derived, not typed: how Use SSL was met on a port other than 465, 587 "
        "and 25 (implicit TLS or STARTTLS), found by the connection test that passed when the "
        "server was saved, so that sending does not probe again. Any change of the settings "
        "forgets it.",
    )

    @model_validator(mode="after")
    def _one_way_to_sign_in(self) -> SmtpSettings:
        if self.authentication == "oauth2":
            missing = [f for f in ("tenant_id", "client_id") if getattr(self, f) is None]
            if self.password is not None or missing:
                raise _field_errors(
                    [(f, f"Enter the {FIELD_LABELS[f]}: OAuth 2.0 needs it.") for f in missing]
                    + (
                        [
                            (
                                "password",
                                "Password is not used with OAuth 2.0: remove it (the app "
                                "signs in with its certificate).",
                            )
                        ]
                        if self.password is not None
                        else []
                    )
                )
        else:
            given = [f for f in OAUTH_ONLY_FIELDS if getattr(self, f) is not None]
            if given:
                raise _field_errors(
                    [
                        (
                            f,
                            f"{FIELD_LABELS[f]} is only used with OAuth 2.0: set "
                            "Authentication to OAuth 2.0 (Microsoft 365), or remove it.",
                        )
                        for f in given
                    ]
                )
        return self

    @property
    def uses_certificate(self) -> bool:
        return self.authentication == "oauth2"

    def used_secret_fields(self) -> tuple[str, ...]:
        unused = other_sign_in_fields("smtp", self.authentication)
        return tuple(f for f in super().used_secret_fields() if f not in unused)

    def public(self) -> dict[str, Any]:
        # A password server stores and shows what it always did: no empty OAuth fields.
        public = super().public()
        if self.authentication == "password":
            for name in ("authentication", *OAUTH_ONLY_FIELDS):
                public.pop(name, None)
        if public.get("tls_mode") is None:
            public.pop("tls_mode", None)
        return public


def _field_errors(errors: Sequence[tuple[str, str]]) -> ValidationError:
    """Errors of a model's own fields, raised from a model validator, each at its field."""
    return ValidationError.from_exception_data(
        "SmtpSettings",
        [
            {
                "type": PydanticCustomError("value_error", "{message}", {"message": message}),
                "loc": (name,),
                "input": None,
            }
            for name, message in errors
        ],
    )


class GraphSettings(_Settings):
    """The settings of a Microsoft Graph server (app-only, certificate credentials)."""

    account: Annotated[
        Mailbox, Placeholder("the mailbox mail is sent as: notifications@contoso.com")
    ] = Field(title="Account", description="The mailbox mail is sent as.")
    tenant_id: TenantIdField
    client_id: ClientIdField
    certificate: CertificateFile = None
    certificate_alias: CertificateAlias = None
    certificate_password: CertificatePassword = None
    next_certificate: NextCertificateFile = None
    next_certificate_alias: NextCertificateAlias = None
    next_certificate_password: NextCertificatePassword = None

    @property
    def uses_certificate(self) -> bool:
        return True


#: The fields that say where a secret goes. A stored secret is only ever sent to the endpoint it
#: was entered for: otherwise "change Server to my host, then test" would hand the stored
#: password to whoever runs that host.
ENDPOINT_FIELDS: dict[str, tuple[str, ...]] = {
    "smtp": ("server", "port", "account", "authentication", "tenant_id", "client_id"),
    "microsoft_graph": ("tenant_id", "client_id", "account"),
}


def moved_endpoint_fields(
    server_type: str, stored: Mapping[str, Any], new: Mapping[str, Any]
) -> list[str]:
    """The endpoint fields whose value differs between the stored and the new settings."""
    return [f for f in ENDPOINT_FIELDS[server_type] if stored.get(f) != new.get(f)]


#: Exchange Online's SMTP endpoints: client submission, and the tenants' MX hosts.
_EXCHANGE_HOSTS = frozenset(
    {"smtp.office365.com", "smtp-mail.outlook.com", "outlook.office365.com"}
)
_EXCHANGE_SUFFIXES = (".mail.protection.outlook.com",)


def is_exchange_online(host: str) -> bool:
    """Whether ``host`` is one of Exchange Online's SMTP endpoints (Microsoft 365)."""
    host = host.lower().rstrip(".")
    return host in _EXCHANGE_HOSTS or host.endswith(_EXCHANGE_SUFFIXES)


def other_sign_in_fields(server_type: str, authentication: str | None) -> tuple[str, ...]:
    """The fields of the way to sign in that ``authentication`` does not use: a change of
    Authentication leaves the stored ones behind (a password does not follow to OAuth 2.0)."""
    if server_type != "smtp":
        return ()
    return ("password",) if authentication == "oauth2" else OAUTH_ONLY_FIELDS


def reenter_secret_message(secret: str, moved: Sequence[str]) -> str:
    """What to say when a stored secret may not follow the endpoint to its new place."""
    label = FIELD_LABELS[secret]
    what = " and ".join(FIELD_LABELS[f] for f in moved)
    return (
        f"Enter the {label} again: {what} changed, and a stored {label} is only used with "
        "the server it was entered for."
    )


def unreadable_secret_message(secret: str) -> str:
    """What to say when a stored secret cannot be opened with the service's secret key."""
    label = FIELD_LABELS[secret]
    return (
        f"The stored {label} cannot be opened with the service's secret key (the key it was "
        f"saved with is not configured): enter the {label} again."
    )


SettingsT = TypeVar("SettingsT", bound=_Settings)


def next_as_current(settings: SettingsT) -> SettingsT:
    """The settings with the next certificate (file, alias, password) in the current one's
    place, and no next one: what a test of the next certificate signs in with, and what
    promoting it stores. Everything else stays, the TLS mode a test found out included."""
    values = {**settings.public(), **settings.secrets()}
    for name in CERTIFICATE_FIELDS:
        values[name] = values.pop(NEXT + name, None)
    return type(settings).model_validate(values)


SETTINGS_BY_TYPE: dict[str, type[SmtpSettings] | type[GraphSettings]] = {
    "smtp": SmtpSettings,
    "microsoft_graph": GraphSettings,
}

TYPE_LABELS: dict[str, str] = {"smtp": "SMTP", "microsoft_graph": "Microsoft Graph"}


# ---------------------------------------------------------------- requests


NAME_DESCRIPTION = "Unique among the servers the workspace can see."


class _ServerSpec(BaseModel):
    model_config = ConfigDict(extra="forbid", hide_input_in_errors=True)

    # Not "*": pydantic allows no before-validator on the discriminator, `type`.
    _storable = field_validator("name", "test_token", "server_id", mode="before")(_storable_text)

    name: Name = Field(title="Name", description=NAME_DESCRIPTION)
    test_token: str | None = Field(
        None,
        repr=False,
        title="Test token",
        description="The receipt of a passing test of exactly these settings.",
    )
    server_id: str | None = Field(
        None,
        title="Server",
        description="For a test only: reuse the stored secrets of this server.",
    )

    def to_wire(self) -> dict[str, Any]:
        """The JSON body, secrets included: only for sending to the service."""
        return self.model_dump(mode="json", exclude_none=True, context={"reveal_secrets": True})


class SmtpServerSpec(_ServerSpec):
    """An SMTP server to test or add."""

    type: Literal["smtp"] = "smtp"
    name: Annotated[Name, Placeholder("Sales relay")] = Field(
        title="Name", description=NAME_DESCRIPTION
    )
    settings: SmtpSettings


class GraphServerSpec(_ServerSpec):
    """A Microsoft Graph server to test or add."""

    type: Literal["microsoft_graph"] = "microsoft_graph"
    name: Annotated[Name, Placeholder("Sales mailbox")] = Field(
        title="Name", description=NAME_DESCRIPTION
    )
    settings: GraphSettings


EmailServerSpec = Annotated[SmtpServerSpec | GraphServerSpec, Field(discriminator="type")]

#: The labels the product shows (the fields' titles), used in messages so they read like the form.
FIELD_LABELS: dict[str, str] = {
    "type": "Type",
    **labels(_ServerSpec, SmtpSettings, GraphSettings),
    "settings": "Settings",
    "body": "Request body",
}

SECRET_FIELDS: dict[str, tuple[str, ...]] = {
    server_type: model.secret_fields() for server_type, model in SETTINGS_BY_TYPE.items()
}


def _refuse_bool_pace(value: Any) -> Any:
    if isinstance(value, bool):
        raise ValueError("Max per minute must be a whole number, not true or false.")
    return value


def _partial(settings: type[_Settings], title: str) -> dict[str, Any]:
    """A settings type's schema with every field optional and nullable (omitted: unchanged)."""
    full = settings.model_json_schema()
    properties = {}
    for name, prop in full["properties"].items():
        prop = {k: v for k, v in prop.items() if k != "default"}
        variants = prop.pop("anyOf", None) or [
            {k: prop.pop(k) for k in list(prop) if k not in ("title", "description")}
        ]
        if {"type": "null"} not in variants:
            variants.append({"type": "null"})
        properties[name] = {**prop, "anyOf": variants}
    return {
        "title": title,
        "description": f"{full['description']} Only the settings to change.",
        "type": "object",
        "additionalProperties": False,
        "properties": properties,
    }


def _settings_patch_schema(schema: dict[str, Any]) -> None:
    schema.clear()
    schema.update(
        title="Settings",
        description=(
            "Only the settings to change, of the server's own type; omitted (or null) "
            "settings and secrets stay as they are."
        ),
        anyOf=[
            _partial(SmtpSettings, "SmtpSettingsPatch"),
            _partial(GraphSettings, "GraphSettingsPatch"),
        ],
    )


class EmailServerPatch(BaseModel):
    """A partial update: omitted fields, and omitted secrets, stay as they are."""

    model_config = ConfigDict(extra="forbid", hide_input_in_errors=True)

    _storable = field_validator("*", mode="before")(_storable_text)

    name: Name | None = None
    # Checked by the service against the stored server's type (the patch does not know it),
    # so its messages name that type's fields; the schema still lists both types' fields.
    settings: dict[str, Any] = Field(
        default_factory=dict, repr=False, json_schema_extra=_settings_patch_schema
    )
    #: Given (also as null, to clear) or omitted (unchanged): see ``model_fields_set``.
    fallback_server_id: str | None = Field(
        None, description="Where messages go after this server's second failed attempt."
    )
    max_per_minute: Annotated[int | None, BeforeValidator(_refuse_bool_pace)] = Field(
        None, description="At most this many messages a minute (null: no pace)."
    )

    @field_validator("max_per_minute")
    @classmethod
    def _positive_pace(cls, value: int | None) -> int | None:
        if value is not None and not 1 <= value <= 100_000:
            raise ValueError(
                "Max per minute must be a whole number from 1 to 100000, or null for no pace."
            )
        return value

    def to_wire(self) -> dict[str, Any]:
        body: dict[str, Any] = {}
        if self.name is not None:
            body["name"] = self.name
        if self.settings:
            body["settings"] = settings_to_wire(self.settings)
        for routing in ("fallback_server_id", "max_per_minute"):
            if routing in self.model_fields_set:
                body[routing] = getattr(self, routing)
        return body


def settings_to_wire(settings: Mapping[str, Any]) -> dict[str, Any]:
    """Plain JSON values for a settings mapping: secrets revealed, files in base64."""
    out: dict[str, Any] = {}
    for key, value in settings.items():
        if isinstance(value, (SecretStr, SecretBytes)):
            value = value.get_secret_value()
        if isinstance(value, bytes | bytearray):
            value = base64.b64encode(bytes(value)).decode()
        out[key] = value
    return out


# ---------------------------------------------------------------- out


class CertificateInfo(BaseModel):
    """What may be shown of a certificate: never the key, the file or its password."""

    subject: str
    thumbprint_sha1: str
    thumbprint_sha256: str
    not_after: datetime
    days_left: int
    has_private_key: bool = True


def _next_certificate_shown(dumped: dict[str, Any]) -> dict[str, Any]:
    # A server without a next certificate reads as it always did: no empty next_* fields.
    if dumped.get("next_certificate_info") is None:
        for name in ("next_certificate_alias", "next_certificate_info", "next_certificate_test"):
            dumped.pop(name, None)
    return dumped


class _NextCertificateView(BaseModel):
    """What is shown of a next certificate (never its file or password)."""

    next_certificate_alias: str | None = None
    next_certificate_info: CertificateInfo | None = Field(
        None, description="The next certificate, held beside the current one until promoted."
    )
    next_certificate_test: LastTest | None = Field(
        None,
        description="The last test of the next certificate (its certificate and token stages); "
        "null: not tested since it was uploaded. Only a passing one lets it be promoted.",
    )


class SmtpSettingsView(_NextCertificateView):
    """SMTP settings as the service shows them: no password, no certificate."""

    server: str
    port: int
    use_ssl: bool
    account: str
    sender_address: str
    authentication: Authentication = "password"
    tenant_id: str | None = None
    client_id: str | None = None
    certificate_alias: str | None = None
    certificate_info: CertificateInfo | None = None
    tls_mode: TlsMode | None = None

    @model_serializer(mode="wrap")
    def _as_stored(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        # A password server reads as it always did (and as the stored document lists):
        # the OAuth 2.0 fields appear only on a server that uses them.
        dumped: dict[str, Any] = handler(self)
        if self.authentication == "password":
            for name in ("authentication", "tenant_id", "client_id", "certificate_alias"):
                dumped.pop(name, None)
            dumped.pop("certificate_info", None)
        if self.tls_mode is None:
            dumped.pop("tls_mode", None)
        return _next_certificate_shown(dumped)


class GraphSettingsView(_NextCertificateView):
    """Microsoft Graph settings as the service shows them: no certificate, no password."""

    account: str
    tenant_id: str
    client_id: str
    certificate_alias: str | None = None
    certificate_info: CertificateInfo | None = None

    @model_serializer(mode="wrap")
    def _as_stored(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        return _next_certificate_shown(handler(self))


Scope = Literal["workspace", "organization"]


class EmailServer(BaseModel):
    """A stored email server, as the service returns it."""

    id: str
    workspace_id: str | None
    organization_id: str
    scope: Scope
    inherited: bool
    type: ServerType
    name: str
    version: int
    # Left to right, inside pydantic's core: the views share no required field but `account`,
    # so a document fits one of them only. (A before-validator picking the view by `type` was
    # half the cost of parsing a list of 1,100 servers.)
    settings: Annotated[SmtpSettingsView | GraphSettingsView, Field(union_mode="left_to_right")]
    secrets_set: dict[str, bool] = Field(default_factory=dict)
    #: Stored secrets the service's key cannot open (saved under a key it no longer has):
    #: they must be entered again. Empty when every stored secret opens.
    secrets_unreadable: list[str] = Field(default_factory=list)
    usage: UsageCounts = Field(default_factory=UsageCounts)
    created_at: datetime
    updated_at: datetime
    last_test: LastTest | None = None
    fallback_server_id: str | None = Field(
        None, description="Where messages go after this server's second failed attempt."
    )
    max_per_minute: int | None = Field(None, description="A pace; null: none.")
    health: ServerHealth | None = Field(
        None, description="healthy, degraded, failing, expiring or expired; computed when read."
    )

    @model_validator(mode="after")
    def _settings_of_its_type(self) -> EmailServer:
        view = GraphSettingsView if self.type == "microsoft_graph" else SmtpSettingsView
        if not isinstance(self.settings, view):
            raise ValueError(f"the settings of a {self.type} server must be {view.__name__}")
        return self

    @property
    def type_label(self) -> str:
        return TYPE_LABELS[self.type]

    @property
    def key_setting(self) -> str:
        """What identifies the server at a glance: server:port, or the mailbox."""
        s = self.settings
        if isinstance(s, SmtpSettingsView):
            return f"{s.server}:{s.port}"
        return s.account


# ---------------------------------------------------------------- errors as fields


_TYPE_MESSAGES: dict[str, str] = {
    "int_parsing": "{label} must be a whole number.",
    "int_type": "{label} must be a whole number.",
    "int_from_float": "{label} must be a whole number.",
    "bool_parsing": "{label} must be true or false.",
    "bool_type": "{label} must be true or false.",
    "string_type": "{label} must be text.",
    "bytes_type": "{label} must be a file.",
    "missing": "{label} is required.",
    "dict_type": "{label} must be an object of fields.",
    "model_type": "{label} must be an object of fields.",
    "model_attributes_type": "{label} must be an object of fields.",
    "string_too_long": "{label} is too long.",
    "string_unicode": "{label} holds text that is not valid Unicode (an unpaired surrogate).",
    "int_parsing_size": "{label} must be a whole number (this one has too many digits).",
    "finite_number": "{label} must be a whole number.",
}

#: Where a location starts, what contains the field rather than being one: FastAPI's request
#: part, then the union's tag, then a spec's settings. Only as containers: a location that
#: ends there names that field (a missing `settings`, or an unknown field called "smtp").
_LOC_CONTAINERS: tuple[frozenset[str], ...] = (
    frozenset({"body", "query", "path", "header", "cookie"}),
    frozenset(SETTINGS_BY_TYPE),
    frozenset({"settings"}),
)


def _field_of(loc: Sequence[Any], kind: str) -> str:
    parts = [str(p) for p in loc if isinstance(p, str)]  # list positions name no field
    for containers in _LOC_CONTAINERS:
        if len(parts) > 1 and parts[0] in containers:
            parts = parts[1:]
    # Left with the body, or the union's tag for an error of the object itself (a key that is
    # not text): the document is at fault, not one field. An unknown field keeps its name.
    if (
        not parts
        or parts == ["body"]
        or (parts[0] in SETTINGS_BY_TYPE and kind != "extra_forbidden")
    ):
        return "body"
    return parts[-1]


def field_errors(exc: ValidationError | Sequence[Mapping[str, Any]]) -> list[FieldError]:
    """Turn pydantic's errors into one plain message per field, named as in the API."""
    out: list[FieldError] = []
    seen: set[str] = set()
    errors = (
        exc.errors(include_url=False, include_input=False)
        if isinstance(exc, ValidationError)
        else exc
    )
    for err in errors:
        field = _field_of(err["loc"], err["type"])
        kind = err["type"]
        label = FIELD_LABELS.get(field, field)
        if kind == "value_error":
            message = str(err["msg"]).removeprefix("Value error, ")
        elif kind == "extra_forbidden":
            message = f"Unknown field '{field}': remove it."
        elif kind in ("union_tag_invalid", "union_tag_not_found"):
            field = "type"
            message = "Type must be 'smtp' or 'microsoft_graph'."
        elif kind in _TYPE_MESSAGES:
            message = _TYPE_MESSAGES[kind].format(label=label)
        else:
            message = f"{label}: {err['msg']}."
        if field not in seen:
            seen.add(field)
            out.append(FieldError(field=field, message=message))
    return out
