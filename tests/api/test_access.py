"""Who may do what: every email-server call as every kind of caller, over real HTTP."""

from __future__ import annotations

import httpx
import pytest

from elegere_widgets.client import Client
from elegere_widgets.errors import AuthenticationRequired, NotFound, PermissionDenied
from tests.conftest import ADMIN, ANALYST, DELEGATE
from tests.fixtures.service import RunningService

SALES, SUPPORT = "ws_sales", "ws_support"


@pytest.mark.read_only
def test_workspace_admin_lists_own_and_inherited_servers_inherited_first(admin: Client) -> None:
    servers = admin.email_servers.list(SALES)
    assert [(s.name, s.inherited, s.scope) for s in servers] == [
        ("Acme Relay", True, "organization"),
        ("Sales Mailer", False, "workspace"),
    ]
    mailer = servers[1]
    assert mailer.usage.custom_actions == 1 and mailer.usage.scheduler_jobs == 1
    assert mailer.secrets_set == {"password": True}
    assert mailer.key_setting == "mail.acme.example:465"


@pytest.mark.read_only
def test_me_and_workspaces_say_who_may_administer_what(admin: Client, delegate: Client) -> None:
    me = admin.me()
    assert me.email == ADMIN
    assert (me.organization_id, me.organization_name) == ("org_acme", "Acme")
    assert [(r.role, r.workspace_id) for r in me.roles] == [("workspace_admin", SALES)]
    assert [w.name for w in admin.workspaces.list()] == ["Sales"]
    assert admin.workspaces.list()[0].organization_name == "Acme"
    # A Delegate grants the right but does not hold it by being one; /me still names the
    # organization (no workspace list to read it from).
    assert delegate.workspaces.list() == []
    assert delegate.me().organization_name == "Acme"


@pytest.mark.read_only
@pytest.mark.parametrize("who", [DELEGATE, ANALYST])
def test_anyone_but_a_workspace_admin_gets_403_on_every_email_server_call(
    client_for, who: str
) -> None:
    client = client_for(who)
    calls = [
        lambda: client.email_servers.list(SALES),
        lambda: client.email_servers.get(SALES, "srv_sales_mailer"),
        lambda: client.email_servers.usages(SALES, "srv_sales_mailer"),
        lambda: client.email_servers.delete(SALES, "srv_sales_mailer"),
        lambda: client.email_servers.send_test(SALES, "srv_sales_mailer", to="x@example.com"),
        lambda: client.custom_actions.list(SALES),
        lambda: client.scheduler_jobs.list(SALES),
        lambda: client.deliveries.page(SALES),
    ]
    for call in calls:
        with pytest.raises(PermissionDenied) as info:
            call()
        assert "Workspace Admin" in str(info.value)
        assert "grant" in str(info.value)


@pytest.mark.read_only
def test_admin_of_one_workspace_gets_403_on_another(admin: Client) -> None:
    with pytest.raises(PermissionDenied):
        admin.email_servers.list(SUPPORT)


@pytest.mark.read_only
def test_unknown_workspace_and_server_are_404(admin: Client) -> None:
    with pytest.raises(NotFound):
        admin.email_servers.list("ws_nope")
    with pytest.raises(NotFound):
        admin.email_servers.get(SALES, "srv_nope")


@pytest.mark.read_only
@pytest.mark.parametrize(
    "header",
    [None, "Bearer", "Bearer not-a-token", "Basic YWRtaW46ZGVtbw=="],
    ids=["none", "empty", "unknown", "basic"],
)
def test_no_or_bad_token_is_401_problem_json(service: RunningService, header: str | None) -> None:
    headers = {"Authorization": header} if header else {}
    r = httpx.get(f"{service.url}/api/v1/workspaces/{SALES}/email-servers", headers=headers)
    assert r.status_code == 401
    assert r.headers["content-type"].startswith("application/problem+json")
    body = r.json()
    assert body["status"] == 401 and body["type"].endswith("/authentication-required")
    assert "sign in" in body["detail"].lower()


def test_sign_in_with_password_gives_a_working_token(service: RunningService) -> None:
    with Client.sign_in(service.url, ADMIN, "demo") as client:
        assert client.me().email == ADMIN
        assert [s.name for s in client.email_servers.list(SALES)][-1] == "Sales Mailer"
    with pytest.raises(AuthenticationRequired) as info:
        Client.sign_in(service.url, ADMIN, "wrong")
    assert "Wrong email or password" in str(info.value)


def test_expired_sign_in_is_401(service: RunningService) -> None:
    from datetime import UTC, datetime, timedelta

    from sqlalchemy import update

    from elegere_widgets.server.store.tables import ApiToken

    with Client.sign_in(service.url, ADMIN, "demo") as client:
        with service.ctx.sessions() as session:
            session.execute(
                update(ApiToken)
                .where(ApiToken.kind == "session")
                .values(expires_at=datetime.now(UTC) - timedelta(seconds=1))
            )
            session.commit()
        with pytest.raises(AuthenticationRequired) as info:
            client.email_servers.list(SALES)
        assert "expired" in str(info.value)


def test_delegate_grants_itself_workspace_admin_and_then_may_manage(
    delegate: Client, analyst: Client
) -> None:
    with pytest.raises(PermissionDenied):
        delegate.email_servers.list(SUPPORT)
    delegate.workspaces.grant_admin(SUPPORT, DELEGATE)
    assert [s.name for s in delegate.email_servers.list(SUPPORT)] == ["Acme Relay"]
    # A plain user may not grant the right, not even to itself.
    with pytest.raises(PermissionDenied):
        analyst.workspaces.grant_admin(SUPPORT, ANALYST)
    delegate.workspaces.revoke_admin(SUPPORT, DELEGATE)
    with pytest.raises(PermissionDenied):
        delegate.email_servers.list(SUPPORT)


def test_workspace_admin_grants_and_revokes_on_its_workspace_only(
    admin: Client, analyst: Client
) -> None:
    admin.workspaces.grant_admin(SALES, ANALYST)
    assert [w.name for w in analyst.workspaces.list()] == ["Sales"]
    assert len(analyst.email_servers.list(SALES)) == 2
    admin.workspaces.revoke_admin(SALES, ANALYST)
    with pytest.raises(PermissionDenied):
        analyst.email_servers.list(SALES)
    with pytest.raises(PermissionDenied):
        admin.workspaces.grant_admin(SUPPORT, ADMIN)
    with pytest.raises(NotFound):
        admin.workspaces.grant_admin(SALES, "nobody@elsewhere.example")


@pytest.mark.read_only
def test_organization_servers_are_managed_by_admin_and_it_delegates_only(
    admin: Client, delegate: Client
) -> None:
    org = "org_acme"
    assert [s.name for s in delegate.organization_email_servers.list(org)] == ["Acme Relay"]
    with pytest.raises(PermissionDenied):
        admin.organization_email_servers.list(org)
    with pytest.raises(NotFound):
        delegate.organization_email_servers.list("org_other")
