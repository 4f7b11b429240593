"""What the audit tests share: rows put straight into the store, and the store read back.

Expected numbers always come from the store through SQLAlchemy, never from the code under
test and never hard-coded: the demo data is random (seeded), and a new seed must not need
new numbers here.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import select

from elegere_widgets.models import SmtpSettings
from elegere_widgets.server.seed import ORG_ID, add_smtp_server
from elegere_widgets.server.store.tables import DeliveryRow, EmailServerRow
from tests.fixtures.service import RunningService

SALES, SUPPORT = "ws_sales", "ws_support"
MAILER, RELAY = "srv_sales_mailer", "srv_acme_relay"

# The frames are built from the API alone, so one database shows they are right; the CSV
# export, which has store code of its own, runs on both (tests/audit/test_exports.py).
SQLITE_ONLY = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)

# Would show up in a frame if anything leaked a stored secret.
SECRET_MARKER = "s3cret-MARKER-7f1c"

# Commas, doubled quotes, a bare CR, CRLF and LF, a leading space and non-ASCII text.
TRICKY_ERROR = ' 550 5.1.1 "no such user", see <a,b>\nline two\r\nline "three"\rend é'


def store_deliveries(service: RunningService, *workspaces: str) -> list[DeliveryRow]:
    """Every delivery of the workspaces, in export order (created_at, id)."""
    with service.ctx.sessions() as s:
        return list(
            s.scalars(
                select(DeliveryRow)
                .where(DeliveryRow.workspace_id.in_(workspaces))
                .order_by(DeliveryRow.created_at, DeliveryRow.id)
            )
        )


def insert_delivery(service: RunningService, ident: str, **fields: Any) -> DeliveryRow:
    values: dict[str, Any] = {
        "id": ident,
        "workspace_id": SALES,
        "email_server_id": MAILER,
        "email_server_name": "Sales Mailer",
        "kind": "action",
        "recipients": ["someone@example.com"],
        "status": "sent",
        "error": None,
        "created_at": datetime.now(UTC) - timedelta(hours=1),
    }
    values.update(fields)
    row = DeliveryRow(**values)
    with service.ctx.sessions() as s:
        s.add(row)
        s.commit()
    return row


def insert_smtp_server(
    service: RunningService,
    ident: str,
    name: str,
    ws: str | None,
    *,
    last_test: dict[str, Any] | str | None = "passed",
) -> None:
    """An SMTP server straight into the store (an API create needs a passing live test)."""
    with service.ctx.sessions() as s:
        add_smtp_server(
            service.ctx,
            s,
            ident,
            name,
            ws,
            SmtpSettings(
                server=f"{ident.replace('_', '-')}.acme.example",
                port=587,
                account="audit",
                sender_address="audit@acme.example",
                password=SECRET_MARKER,
            ),
            datetime.now(UTC) - timedelta(days=1),
            last_test=last_test,  # type: ignore[arg-type]
        )


def insert_graph_server(
    service: RunningService,
    ident: str,
    name: str,
    ws: str | None,
    *,
    not_after: datetime,
    next_after: datetime | None = None,
    next_tested: bool | None = None,
) -> None:
    """A Microsoft Graph server whose certificate ends at ``not_after``; with ``next_after``
    it holds a next certificate ending then, tested (passed or failed) when ``next_tested``
    is given."""
    settings: dict[str, Any] = {
        "account": f"{ident}@acme.example",
        "tenant_id": "acme.example",
        "client_id": "11111111-2222-3333-4444-555555555555",
        "certificate_alias": None,
        "certificate_info": {
            "subject": f"CN={name}",
            "thumbprint_sha1": "ab" * 20,
            "thumbprint_sha256": "cd" * 32,
            "not_after": not_after.isoformat(),
            "days_left": 0,  # stale on purpose: the service derives it when read
            "has_private_key": True,
        },
    }
    now = datetime.now(UTC)
    if next_after is not None:
        settings["next_certificate_alias"] = None
        settings["next_certificate_info"] = {
            **settings["certificate_info"],
            "subject": f"CN={name} next",
            "thumbprint_sha256": "ef" * 32,
            "not_after": next_after.isoformat(),
        }
    if next_tested is not None:
        settings["next_certificate_test"] = {
            "ok": next_tested,
            "at": now.isoformat(),
            "elapsed_ms": 300,
            "detail": "passed" if next_tested else "failed at token: refused",
            "thumbprint_sha256": "ef" * 32,
        }
    row = EmailServerRow(
        id=ident,
        organization_id=ORG_ID,
        workspace_id=ws,
        scope_key=ws or f"org:{ORG_ID}",
        type="microsoft_graph",
        name=name,
        name_key=name.casefold(),
        settings=settings,
        secrets_sealed=service.ctx.box.seal(
            {"certificate": SECRET_MARKER, "certificate_password": SECRET_MARKER}
        ),
        secrets_set={"certificate": True, "certificate_password": True},
        created_at=now,
        updated_at=now,
        last_test={"ok": True, "at": now.isoformat(), "elapsed_ms": 900, "detail": "passed"},
    )
    _add(service, row)


def insert_exchange_smtp_server(
    service: RunningService,
    ident: str,
    name: str,
    ws: str | None,
    *,
    host: str,
    oauth: bool = False,
) -> None:
    """An SMTP server on ``host``: with a password, or with OAuth 2.0 (a certificate)."""
    settings: dict[str, object] = {
        "server": host,
        "port": 587,
        "use_ssl": True,
        "account": f"{ident}@acme.example",
        "sender_address": f"{ident}@acme.example",
    }
    secrets = {"password": SECRET_MARKER}
    if oauth:
        settings.update(
            authentication="oauth2",
            tenant_id="acme.example",
            client_id="11111111-2222-3333-4444-555555555555",
        )
        secrets = {"certificate": SECRET_MARKER}
    now = datetime.now(UTC)
    row = EmailServerRow(
        id=ident,
        organization_id=ORG_ID,
        workspace_id=ws,
        scope_key=ws or f"org:{ORG_ID}",
        type="smtp",
        name=name,
        name_key=name.casefold(),
        settings=settings,
        secrets_sealed=service.ctx.box.seal(secrets),
        secrets_set={k: True for k in secrets},
        created_at=now,
        updated_at=now,
        last_test={"ok": True, "at": now.isoformat(), "elapsed_ms": 90, "detail": "passed"},
    )
    _add(service, row)


def _add(service: RunningService, row: EmailServerRow) -> None:
    with service.ctx.sessions() as s:
        s.add(row)
        s.commit()


# Cells a spreadsheet would evaluate, and cells that only look close to them: the name as
# stored -> the cell as the CSV must hold it.
FORMULA_CELLS = {
    '=HYPERLINK("http://evil.example","x")': '\'=HYPERLINK("http://evil.example","x")',
    "+1 relay": "'+1 relay",
    "-relay": "'-relay",
    "@SUM(A1)": "'@SUM(A1)",
    "\tTabbed": "'\tTabbed",
    "\rReturn": "'\rReturn",
    "'=already quoted": "''=already quoted",
    "''-twice": "'''-twice",
    "'plain quote": "'plain quote",
    "a=b": "a=b",
    "'": "'",
}
