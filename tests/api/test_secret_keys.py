"""Secrets the service's key cannot open: marked in the list, and the repair path (issue 11.4).

A server whose secrets were sealed under a key the service does not have (a replica started
with another key, a lost key file) is shown with ``secrets_unreadable``; an update that enters
every secret again saves, where it answered 500 before; anything that needs the old secret
says which one to enter again.
"""

from __future__ import annotations

import pytest
from cryptography.fernet import Fernet
from sqlalchemy import select, update

from elegere_widgets.client import Client
from elegere_widgets.errors import InvalidSettings
from elegere_widgets.models import EmailServerPatch
from elegere_widgets.server.secrets import SecretBox
from elegere_widgets.server.store.tables import EmailServerRow
from tests.fixtures.service import RunningService

SALES = "ws_sales"
MAILER = "srv_sales_mailer"


def _seal_under_a_foreign_key(service: RunningService, server_id: str) -> None:
    """What a process with another key would have written."""
    foreign = SecretBox([Fernet.generate_key()]).seal({"password": "under-another-key"})
    with service.ctx.sessions() as s:
        s.execute(
            update(EmailServerRow)
            .where(EmailServerRow.id == server_id)
            .values(secrets_sealed=foreign)
            .execution_options(synchronize_session=False)
        )
        s.commit()


def _sealed(service: RunningService, server_id: str) -> str:
    with service.ctx.sessions() as s:
        return s.scalar(select(EmailServerRow.secrets_sealed).where(EmailServerRow.id == server_id))  # type: ignore[return-value]


def test_unreadable_secrets_are_marked_and_entering_them_again_repairs(
    admin: Client, service: RunningService
) -> None:
    listed = {s.id: s for s in admin.email_servers.list(SALES)}
    assert all(s.secrets_unreadable == [] for s in listed.values())
    _seal_under_a_foreign_key(service, MAILER)

    listed = {s.id: s for s in admin.email_servers.list(SALES)}
    assert listed[MAILER].secrets_unreadable == ["password"]
    assert [s.id for s in listed.values() if s.secrets_unreadable] == [MAILER]
    server = admin.email_servers.get(SALES, MAILER)
    assert server.secrets_unreadable == ["password"]

    # An update that needs the stored password says to enter it again: a 422, not a 500.
    with pytest.raises(InvalidSettings) as info:
        admin.email_servers.update(
            SALES, MAILER, EmailServerPatch(name="Sales Outbox"), version=server.version
        )
    assert "enter the Password again" in (info.value.for_field("password") or "")
    with pytest.raises(InvalidSettings) as sent:
        admin.email_servers.send_test(SALES, MAILER, to="someone@example.com")
    assert "cannot be opened" in (sent.value.for_field("password") or "")

    # The repair path: every secret entered anew.
    repaired = admin.email_servers.update(
        SALES,
        MAILER,
        EmailServerPatch(settings={"password": "entered-again"}),
        version=server.version,
    )
    assert repaired.version == server.version + 1 and repaired.secrets_unreadable == []
    assert service.ctx.box.open(_sealed(service, MAILER)) == {"password": "entered-again"}
    listed = {s.id: s for s in admin.email_servers.list(SALES)}
    assert listed[MAILER].secrets_unreadable == []


def test_the_table_says_to_enter_an_unreadable_password_again(
    admin: Client, service: RunningService
) -> None:
    from elegere_widgets.widgets import ServersTable

    _seal_under_a_foreign_key(service, MAILER)
    table = ServersTable(on_settings=lambda _s: None, on_delete=lambda _s: None)
    table.show(admin.email_servers.list(SALES))
    row = table.row_for(MAILER)
    assert row is not None
    assert row.cells[5] == "stored password unreadable: enter it again"
    other = next(r for r in table.rows if r.server is not None and r.server.id != MAILER)
    assert "unreadable" not in other.cells[5]
