"""The Python client of the eLegere email servers service, over httpx.

::

    from elegere_widgets.client import Client

    with Client.from_env() as client:            # ELEGERE_URL, ELEGERE_TOKEN
        ws = client.workspaces.get("Sales")
        for server in client.email_servers.list(ws.id):
            print(server.name, server.key_setting)
"""

from __future__ import annotations

from ._client import Client
from .email_servers import EmailServers

__all__ = ["Client", "EmailServers"]
