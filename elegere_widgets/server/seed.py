"""The demo data: organization Acme, workspaces Sales and Support, and a month of deliveries."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from pydantic import SecretStr
from sqlalchemy import select
from sqlalchemy.orm import Session

from ..models import EmailServer, SmtpSettings
from . import tokens
from .context import ServiceContext
from .scope import Scope
from .security import hash_password, new_id
from .services.email_servers import EmailServerService, test_record
from .store.tables import (
    CustomActionRow,
    DeliveryRow,
    Organization,
    RoleGrant,
    SchedulerJobRow,
    User,
    WorkspaceRow,
)

DEMO_PASSWORD = "demo"
ORG_ID, SALES_ID, SUPPORT_ID = "org_acme", "ws_sales", "ws_support"
#: The demo's servers: the organization's relay (notifications, Support's action) and Sales'
#: mailer (its custom action and job). Their hosts are made up (.example never resolves).
RELAY_ID, MAILER_ID = "srv_acme_relay", "srv_sales_mailer"
#: email -> (name, [(role, workspace or None for the organization)])
DEMO_USERS: dict[str, tuple[str, list[tuple[str, str | None]]]] = {
    "delegate@acme.example": ("Dana Delegate", [("admin_delegate", None)]),
    "admin@acme.example": ("Alex Admin", [("workspace_admin", SALES_ID)]),
    "analyst@acme.example": ("Ana Analyst", []),
}
DELIVERY_KINDS = ("action", "tag", "reply", "account", "custom_action", "scheduler_job")


def is_seeded(session: Session) -> bool:
    return session.scalar(select(Organization.id).limit(1)) is not None


def seed_demo(ctx: ServiceContext, *, deliveries: int = 300, now: datetime | None = None) -> bool:
    """Add the demo data to an empty store; False (and nothing changed) when it is not empty."""
    now = now or datetime.now(UTC)
    with ctx.sessions() as session:
        if is_seeded(session):
            return False
        session.add(Organization(id=ORG_ID, name="Acme"))
        session.add_all(
            [
                WorkspaceRow(id=SALES_ID, organization_id=ORG_ID, name="Sales"),
                WorkspaceRow(id=SUPPORT_ID, organization_id=ORG_ID, name="Support"),
            ]
        )
        session.flush()
        for email, (name, roles) in DEMO_USERS.items():
            user = User(
                id=new_id("usr"),
                organization_id=ORG_ID,
                email=email,
                name=name,
                password_hash=hash_password(DEMO_PASSWORD),
            )
            session.add(user)
            session.flush()
            for role, ws in roles:
                session.add(
                    RoleGrant(
                        user_id=user.id,
                        role=role,
                        organization_id=ORG_ID,
                        workspace_id=ws,
                        scope_key=ws or "org",
                    )
                )
        session.commit()
        # Through the command the API's create uses, without a test receipt (the demo hosts
        # do not exist) and without an audit event (nobody did it).
        relay = add_smtp_server(
            ctx,
            session,
            RELAY_ID,
            "Acme Relay",
            None,
            SmtpSettings(
                server="smtp.acme.example",
                port=587,
                use_ssl=True,
                account="relay",
                sender_address="notifications@acme.example",
                password=SecretStr("relay-demo-password"),
            ),
            now - timedelta(days=2),
        )
        mailer = add_smtp_server(
            ctx,
            session,
            MAILER_ID,
            "Sales Mailer",
            SALES_ID,
            SmtpSettings(
                server="mail.acme.example",
                port=465,
                use_ssl=True,
                account="sales",
                sender_address="sales@acme.example",
                password=SecretStr("sales-demo-password"),
            ),
            now - timedelta(days=40),
        )
        session.add_all(
            [
                CustomActionRow(
                    id="ca_send_quote",
                    workspace_id=SALES_ID,
                    name="Send quote",
                    email_server_id=mailer.id,
                ),
                SchedulerJobRow(
                    id="job_weekly_digest",
                    workspace_id=SALES_ID,
                    name="Weekly digest",
                    email_server_id=mailer.id,
                ),
                CustomActionRow(
                    id="ca_ticket_reply",
                    workspace_id=SUPPORT_ID,
                    name="Reply to ticket",
                    email_server_id=relay.id,
                ),
            ]
        )
        # Notifications of both workspaces go out through the organization's relay.
        organization = session.get(Organization, ORG_ID)
        if organization is not None:
            organization.default_server_id = relay.id
        session.add_all(
            _deliveries(
                deliveries, now, [(SALES_ID, mailer), (SALES_ID, relay), (SUPPORT_ID, relay)]
            )
        )
        session.commit()
    return True


def add_smtp_server(
    ctx: ServiceContext,
    session: Session,
    ident: str,
    name: str,
    ws: str | None,
    settings: SmtpSettings,
    tested: datetime,
    *,
    last_test: dict[str, Any] | Literal["passed"] | None = "passed",
) -> EmailServer:
    """An SMTP server of the demo organization that passed its test at ``tested``, added
    with the service's create command (no receipt, no audit event)."""
    workspace = session.get(WorkspaceRow, ws) if ws else None
    scope = Scope(ORG_ID, ws, workspace.name if workspace else ORG_ID)
    return EmailServerService(ctx, session, scope).create(
        "smtp",
        name,
        settings,
        last_test=test_record(True, 640, "passed", tested) if last_test == "passed" else last_test,
        server_id=ident,
        created_at=tested - timedelta(days=30),
        updated_at=tested,
    )


def _deliveries(n: int, now: datetime, routes: list[tuple[str, EmailServer]]) -> list[DeliveryRow]:
    rng = random.Random(42)  # the same demo every time
    out = []
    for i in range(n):
        ws, server = routes[i % len(routes)]
        failed = rng.random() < 0.06
        out.append(
            DeliveryRow(
                id=f"dlv_demo_{i:05d}",
                workspace_id=ws,
                email_server_id=server.id,
                email_server_name=server.name,
                kind=rng.choice(DELIVERY_KINDS),
                recipients=[f"customer{rng.randint(1, 80)}@example.com"],
                status="failed" if failed else "sent",
                error="450 4.2.1 Mailbox temporarily unavailable" if failed else None,
                created_at=now - timedelta(seconds=rng.randint(60, 30 * 24 * 3600)),
                history=True,
            )
        )
    return out


def create_sender_token(ctx: ServiceContext, workspace: str, email: str | None = None) -> str:
    """A token that may only send and read one workspace's messages (``tokens.create_sender``)."""
    with ctx.sessions() as session:
        return tokens.create_sender(session, workspace, email)


def create_token(ctx: ServiceContext, email: str) -> str:
    """A new API token for a user: printed once, stored hashed."""
    with ctx.sessions() as session:
        return tokens.create(session, email)
