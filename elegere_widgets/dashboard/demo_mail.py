"""``make run``'s mail goes to the demo SMTP server, so that ``elegere send`` shows at once.

The demo data's two servers name hosts that exist nowhere (``mail.acme.example``,
``smtp.acme.example``): a message sent through them would only defer. The launcher points
them at the demo SMTP server, with the service's own update command: the names, sender
addresses and every usage stay ("Send quote" and "Weekly digest" through Sales Mailer, the
notifications and Support's "Reply to ticket" through Acme Relay), and the From of each line
the demo SMTP server prints tells which server sent it.

What the user changed is left alone: only a demo server whose host is still a made-up one is
pointed at the demo SMTP server, and a server that points at it follows it when it had to
take another port than last time. The seed itself stays as it is (the tests rely on it).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from .demo import DemoSmtp

if TYPE_CHECKING:  # the service's modules load only when the store is prepared
    from ..server.context import ServiceContext

#: RFC 2606: no host under .example ever resolves.
MADE_UP = ".example"
#: The workspace whose sender token ``elegere send`` gets from ``make run``.
SEND_WORKSPACE = "Sales"


@dataclass(frozen=True)
class DemoMail:
    """The store as ``make run`` prepared it."""

    added: bool  # the demo data was added by this run
    admin_token: str  # of the demo Workspace Admin, for the dashboard
    sender_token: str | None  # of Sales, for `elegere send` (None without a demo SMTP server)
    routed: list[str]  # the servers that now send through the demo SMTP server


def prepare_demo(data_dir: Path, admin: str, smtp: DemoSmtp | None) -> DemoMail:
    """Migrate, seed the demo data when the store is empty, make the demo admin a token, and
    with ``smtp`` send the demo's mail through it and make a sender token of Sales."""
    # What `elegere seed --demo` and `elegere token create` do, in this process: one start
    # of the service's imports instead of several.
    from ..server.config import Settings
    from ..server.context import ServiceContext
    from ..server.seed import create_sender_token, create_token, seed_demo
    from ..server.store.db import migrate

    ctx = ServiceContext.build(Settings(data_dir=data_dir))
    try:
        migrate(ctx.engine)
        added = seed_demo(ctx)
        admin_token = create_token(ctx, admin)
        if smtp is None:
            return DemoMail(added, admin_token, None, [])
        routed = route_to_demo_smtp(ctx, smtp)
        return DemoMail(added, admin_token, create_sender_token(ctx, SEND_WORKSPACE), routed)
    finally:
        ctx.engine.dispose()


def route_to_demo_smtp(ctx: ServiceContext, smtp: DemoSmtp) -> list[str]:
    """Point the demo's servers (still at their made-up hosts), and those already at the
    demo SMTP server on another port, at ``smtp``; the names of every server that sends
    through it now, whether changed by this call or not."""
    from sqlalchemy import select

    from ..models import EmailServerPatch
    from ..server.scope import Scope
    from ..server.seed import MAILER_ID, RELAY_ID
    from ..server.services.email_servers import EmailServerService
    from ..server.store.tables import EmailServerRow

    through: list[str] = []
    with ctx.sessions() as session:
        rows = list(session.scalars(select(EmailServerRow).where(EmailServerRow.type == "smtp")))
        for row in rows:
            host = str(row.settings.get("server", ""))
            at_demo = host == smtp.server and row.settings.get("account") == smtp.account
            made_up = row.id in (MAILER_ID, RELAY_ID) and host.endswith(MADE_UP)
            if at_demo and row.settings.get("port") == smtp.port:
                through.append(row.name)
                continue
            if not (at_demo or made_up):
                continue
            # As its own scope's admin would change it; no caller: no audit event (nobody
            # did it), no test receipt (the launcher knows the demo server's settings).
            scope = Scope(row.organization_id, row.workspace_id, row.name)
            patch = EmailServerPatch(
                settings={
                    "server": smtp.server,
                    "port": smtp.port,
                    "use_ssl": smtp.use_ssl,
                    "account": smtp.account,
                    "password": smtp.password,
                }
            )
            changed = EmailServerService(ctx, session, scope).update(row.id, patch, row.version)
            through.append(changed.name)
    return sorted(through)
