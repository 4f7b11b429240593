"""The service's settings: one object, passed in; nothing connects at import."""

from __future__ import annotations

import ipaddress
from pathlib import Path
from typing import Annotated

from pydantic import Field, ValidationInfo, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from ..connectivity.egress import parse_ports

DEFAULT_DATA_DIR = Path(".elegere")


class Settings(BaseSettings):
    """Read from ``ELEGERE_*`` environment variables; the CLI's flags override them."""

    model_config = SettingsConfigDict(env_prefix="ELEGERE_", extra="ignore")

    data_dir: Path = Field(DEFAULT_DATA_DIR, description="Where the embedded store and key live.")
    database_url: str | None = Field(
        None, description="SQLAlchemy URL; default: a SQLite file in data_dir."
    )
    secret_key: str | None = Field(
        None,
        repr=False,
        description="Fernet key(s), comma-separated, newest first; default: data_dir/secret.key.",
    )
    egress_allow: Annotated[list[str], NoDecode] = Field(
        default_factory=list, description="Networks connection tests may reach despite the guard."
    )
    egress_deny: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="Networks connection tests may not reach (e.g. private ranges).",
    )
    egress_allow_ports: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="Ports besides 25, 465, 587 and 2525 that connection tests may reach.",
    )
    smtp_ca_file: Path | None = Field(
        None, description="Extra CA bundle for SMTP TLS; default: the system's (SSL_CERT_FILE)."
    )
    graph_authority_host: str = Field(
        "https://login.microsoftonline.com", description="Microsoft identity platform host."
    )
    graph_base_url: str = Field("https://graph.microsoft.com/v1.0", description="Graph API root.")
    graph_ca_file: Path | None = Field(
        None, description="Extra CA bundle for the identity provider and Graph."
    )
    test_budget_s: float = Field(15.0, gt=0, le=120)
    send_budget_s: float = Field(30.0, gt=0, le=300)
    test_rate_limit: int = Field(
        30, gt=0, description="Connection tests and test sends per user per test_rate_window_s."
    )
    test_rate_window_s: float = Field(60.0, gt=0)
    tests_at_once: int = Field(
        32, gt=0, le=1024, description="Connection tests and test sends running at once."
    )
    tests_at_once_per_scope: int = Field(
        8, gt=0, description="Of those, at most this many for one workspace or organization."
    )
    limits_url: str | None = Field(
        None,
        description="Where every process counts limits: redis://host:6379/0; default: memory "
        "(one process), or ELEGERE_QUEUE_URL when it is a redis:// URL.",
    )
    sign_in_failures_per_account: int = Field(
        5, gt=0, description="Wrong passwords for one account before its sign-in pauses."
    )
    sign_in_failures_per_address: int = Field(
        20, gt=0, description="Wrong passwords from one client address before it pauses."
    )
    sign_in_first_wait_s: int = Field(
        2, gt=0, description="The first pause; each further wrong password doubles it."
    )
    sign_in_window_s: int = Field(
        900, gt=0, description="How long failures are remembered; the longest pause."
    )
    receipt_ttl_s: int = Field(900, gt=0)
    session_ttl_s: int = Field(8 * 3600, gt=0)
    max_body_bytes: int = Field(2 * 1024 * 1024, gt=0)
    # ---- the worker (elegere worker)
    queue_url: str | None = Field(
        None,
        description="redis://… for a queue shared by several machines; default: a SQLite "
        "file in data_dir (queue.db).",
    )
    retry_hours: float = Field(
        24.0, gt=0, description="A message not delivered within this many hours fails."
    )
    retry_scale: float = Field(
        1.0,
        gt=0,
        description="Multiplies the retry schedule (30 s, 2 min, … hourly) and the retry "
        "window; below 1 only for tests and demos.",
    )
    sweep_interval_s: float = Field(
        5.0, gt=0, description="How often a worker looks in the store for due messages."
    )
    lease_s: float = Field(
        120.0,
        gt=0,
        description="How long a worker holds a message it sends; a dead worker's lease "
        "expires after this.",
    )
    smtp_idle_s: float = Field(
        30.0, gt=0, description="An SMTP connection unused this long is closed."
    )
    max_messages_body_bytes: int = Field(
        64 * 1024 * 1024, gt=0, description="Body limit of POST .../messages (a batch)."
    )
    max_message_bytes: int = Field(
        5 * 1024 * 1024, gt=0, description="Subject plus bodies of one message, in bytes."
    )
    message_retention_days: float = Field(
        7, ge=0, description="Days a final message keeps its body before it is purged."
    )
    # ---- scheduled health checks (the worker)
    health_interval_s: float = Field(
        86400.0,
        gt=0,
        description="Every server (own and organization's) is checked once per this many "
        "seconds, spread over the interval.",
    )
    health_concurrency: int = Field(
        4, gt=0, le=256, description="Scheduled checks a worker runs at once."
    )

    @field_validator("egress_allow", "egress_deny", "egress_allow_ports", mode="before")
    @classmethod
    def _split(cls, v: object) -> object:
        if isinstance(v, str):
            return [p.strip() for p in v.split(",") if p.strip()]
        if isinstance(v, list | tuple):
            return [str(p) for p in v]
        return v

    @field_validator("egress_allow_ports")
    @classmethod
    def _ports(cls, v: list[str]) -> list[str]:
        parse_ports(v)  # a ValueError names the entry
        return v

    @field_validator("egress_allow", "egress_deny")
    @classmethod
    def _networks(cls, v: list[str], info: ValidationInfo) -> list[str]:
        flag = "--" + str(info.field_name).replace("_", "-")
        for cidr in v:
            try:
                ipaddress.ip_network(cidr, strict=False)
            except ValueError:
                raise ValueError(
                    f"{flag} {cidr!r} is not a network; use CIDR such as 127.0.0.0/8."
                ) from None
        return v

    def resolved_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.data_dir / 'elegere.db').resolve()}"
