"""The demo SMTP server of ``make run``: aiosmtpd on 127.0.0.1, STARTTLS required, then AUTH.

It behaves like a real submission server (TLS with a certificate the service verifies, a
login, no password in clear), so that "Test Connection" walks every stage; it accepts every
message and delivers none: ``on_message`` tells the terminal what arrived.
"""

from __future__ import annotations

import errno
import logging
import socket
import ssl
from collections.abc import Callable
from email import policy
from email.parser import BytesParser
from pathlib import Path
from typing import Any

from .demo import DemoSmtp
from .demo_pki import DemoPki, ensure_pki

HOST = "127.0.0.1"
DEFAULT_PORT = 2525  # a mail port the service's egress guard allows without configuration
ACCOUNT = "demo"
PASSWORD = "demo-smtp-password"
SENDER = "demo@acme.example"

#: Told about each message: (from, to, subject, Message-ID).
OnMessage = Callable[[str, list[str], str, str], None]


def _port_is_free(port: int) -> bool:
    with socket.socket() as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as asyncio binds
        try:
            probe.bind((HOST, port))
        except OSError as exc:
            if exc.errno in (errno.EADDRINUSE, errno.EACCES):
                return False
            raise
    return True


class DemoSmtpServer:
    """``prepare()`` makes the certificates and picks a port (no thread yet); ``start()``
    listens; ``stop()`` frees the port."""

    def __init__(
        self, directory: Path, *, port: int = DEFAULT_PORT, on_message: OnMessage | None = None
    ) -> None:
        self.directory = directory
        self.first_port = port
        self.on_message = on_message
        self.pki: DemoPki | None = None
        self.info: DemoSmtp | None = None
        self._controller: Any = None

    def prepare(self, *, tries: int = 20) -> DemoSmtp:
        """The certificates (reused while valid) and the first free port from ``port`` on."""
        self.pki = ensure_pki(self.directory)
        for port in range(self.first_port, self.first_port + tries):
            # aiosmtpd waits its whole ready_timeout when the port is taken: look first.
            if _port_is_free(port):
                self.info = DemoSmtp(
                    server=HOST,
                    port=port,
                    use_ssl=True,
                    account=ACCOUNT,
                    password=PASSWORD,
                    sender_address=SENDER,
                )
                return self.info
        raise OSError(
            f"No free port for the demo SMTP server in {self.first_port}-"
            f"{self.first_port + tries - 1}."
        )

    def start(self) -> DemoSmtp:
        """Listen on the prepared port (OSError if another process took it meanwhile)."""
        # aiosmtpd is imported here: the dashboard's kernel never needs it.
        from aiosmtpd.controller import Controller

        # aiosmtpd's log lines (a deprecation inside it, each session) are not for the terminal
        # a person reads; failures still are.
        logging.getLogger("mail.log").setLevel(logging.ERROR)
        info = self.info or self.prepare()
        assert self.pki is not None
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(self.pki.cert_file, self.pki.key_file)
        controller = Controller(
            _Handler(self.on_message),
            hostname=HOST,
            port=info.port,
            server_hostname="demo-smtp.localhost",
            tls_context=context,
            require_starttls=True,
            authenticator=_check_login,
            auth_require_tls=True,
            ready_timeout=5.0,
        )
        controller.start()
        self._controller = controller
        return info

    def stop(self) -> None:
        if self._controller is not None:
            self._controller.stop()
            self._controller = None


def _check_login(server: Any, session: Any, envelope: Any, mechanism: str, auth_data: Any) -> Any:
    from aiosmtpd.smtp import AuthResult, LoginPassword

    ok = (
        isinstance(auth_data, LoginPassword)
        and auth_data.login == ACCOUNT.encode()
        and auth_data.password == PASSWORD.encode()
    )
    return AuthResult(success=ok, handled=False)


class _Handler:
    def __init__(self, on_message: OnMessage | None) -> None:
        self.on_message = on_message

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        if self.on_message is not None:
            content = envelope.original_content or envelope.content or b""
            if isinstance(content, str):
                content = content.encode()
            headers = BytesParser(policy=policy.default).parsebytes(content, headersonly=True)
            subject = str(headers.get("Subject", ""))
            message_id = str(headers.get("Message-ID", ""))
            self.on_message(str(envelope.mail_from), list(envelope.rcpt_tos), subject, message_id)
        return "250 2.0.0 Accepted by the demo server (not delivered anywhere)"
