"""Finding a workspace by name or id, and the admin grants.

MockTransport supplies the list: what is tested is the client's own matching of a name.
"""

from __future__ import annotations

import httpx
import pytest

from elegere_widgets.client import Client
from elegere_widgets.errors import NotFound

from .support import FakeService

SALES = {"id": "ws_1", "name": "Sales", "organization_id": "org_1", "organization_name": "Acme"}
SUPPORT = {"id": "ws_2", "name": "Support", "organization_id": "org_1", "organization_name": "Acme"}


@pytest.mark.parametrize("wanted", ["Sales", "sales", " SALES ", "ws_1"])
def test_get_by_name_or_id(client: Client, fake: FakeService, wanted: str) -> None:
    fake.answer(httpx.Response(200, json=[SALES, SUPPORT]))

    assert client.workspaces.get(wanted).id == "ws_1"
    assert fake.last.url.path == "/api/v1/workspaces"


def test_no_match_lists_the_workspaces(client: Client, fake: FakeService) -> None:
    fake.answer(httpx.Response(200, json=[SALES, SUPPORT]))

    with pytest.raises(NotFound) as caught:
        client.workspaces.get("Marketing")

    assert str(caught.value) == (
        "No workspace 'Marketing' among the ones you can administer: Sales (ws_1), Support (ws_2)."
    )


def test_no_workspace_at_all(client: Client, fake: FakeService) -> None:
    fake.answer(httpx.Response(200, json=[]))

    with pytest.raises(NotFound, match="cannot administer any workspace"):
        client.workspaces.get("Sales")


def test_same_name_in_two_organizations(client: Client, fake: FakeService) -> None:
    other = {**SALES, "id": "ws_9", "organization_id": "org_2", "organization_name": "Beta"}
    fake.answer(httpx.Response(200, json=[SALES, other]))

    with pytest.raises(NotFound, match="Pass the id"):
        client.workspaces.get("sales")


def test_grant_and_revoke_admin(client: Client, fake: FakeService) -> None:
    fake.answer(httpx.Response(204), httpx.Response(204))

    client.workspaces.grant_admin("ws_1", "ann@example.com")
    client.workspaces.revoke_admin("ws_1", "usr_2")

    grant, revoke = fake.requests
    assert (grant.method, grant.url.raw_path) == (
        "PUT",
        b"/api/v1/workspaces/ws_1/admins/ann%40example.com",
    )
    assert (revoke.method, revoke.url.path) == ("DELETE", "/api/v1/workspaces/ws_1/admins/usr_2")
