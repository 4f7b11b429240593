"""The demo SMTP server's settings, handed from the launcher to the dashboard's kernel.

The launcher puts them in ``ELEGERE_DEMO_SMTP`` (JSON) next to ``ELEGERE_URL`` and
``ELEGERE_TOKEN``; the dashboard shows them as a short "try it" help, so that a new user can
add and test a server at once. Nothing here opens a socket.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import asdict, dataclass

from ..widgets.common import esc

ENV = "ELEGERE_DEMO_SMTP"


@dataclass(frozen=True)
class DemoSmtp:
    """What to type in Add Email Server to reach the demo SMTP server."""

    server: str
    port: int
    use_ssl: bool
    account: str
    password: str
    sender_address: str

    def to_env(self) -> str:
        return json.dumps(asdict(self))

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> DemoSmtp | None:
        """The demo server of ``make run``, or None (no demo, or a value that is not ours)."""
        raw = (os.environ if environ is None else environ).get(ENV, "").strip()
        if not raw:
            return None
        try:
            data = json.loads(raw)
            return cls(
                server=str(data["server"]),
                port=int(data["port"]),
                use_ssl=bool(data["use_ssl"]),
                account=str(data["account"]),
                password=str(data["password"]),
                sender_address=str(data["sender_address"]),
            )
        except (ValueError, KeyError, TypeError):
            return None  # a help text is not worth an error on the page

    def fields(self) -> list[tuple[str, str]]:
        """The form's labels and what to type, in the form's order."""
        ssl = "checked (the server requires STARTTLS)" if self.use_ssl else "unchecked"
        return [
            ("Server", self.server),
            ("Port", str(self.port)),
            ("Use SSL", ssl),
            ("Account", self.account),
            ("Sender Address", f"{self.sender_address} (any address works)"),
            ("Password", self.password),
        ]

    def lines(self) -> list[str]:
        """The same, as lines for the terminal."""
        return [f"{label + ':':16}{value}" for label, value in self.fields()]

    def help_html(self) -> str:
        rows = "".join(
            f"<tr><td class='elegere-demo-help-label'>{esc(label)}</td>"
            f"<td><code>{esc(value)}</code></td></tr>"
            for label, value in self.fields()
        )
        return (
            "<details class='elegere-demo-help'><summary><b>Try it:</b> a demo mail server runs "
            "on this machine — add it with <i>Add Email Server</i> → SMTP</summary>"
            "<div class='elegere-demo-help-body'>Type these settings (any Name), then "
            f"<i>Test Connection</i>:<table class='elegere-demo-help-table'>{rows}</table>"
            "Messages sent through it are not delivered anywhere: the terminal that runs "
            "<code>make run</code> lists them.</div></details>"
        )
