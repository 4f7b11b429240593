"""A certificate rolled over without a failed send: an `elegere worker` process delivers a
steady stream of messages through a Microsoft Graph server (the local identity provider and
Graph endpoint) while the admin uploads the next certificate, tests it and promotes it, and
Azure then stops accepting the old one (its tokens revoked with it)."""

from __future__ import annotations

import base64
import threading
import uuid
from collections.abc import Callable

import pytest
from cryptography.hazmat.primitives import hashes
from sqlalchemy import select

from elegere_widgets.client import Client
from elegere_widgets.models import (
    EmailServerPatch,
    MessageSender,
)
from elegere_widgets.server.store.tables import DeliveryRow, MessageRow
from tests.conftest import ADMIN
from tests.fixtures.graph_certs import CertAndKey, make_cert, rsa_key, to_pfx
from tests.fixtures.graph_servers import add_graph_server, graph_spec
from tests.fixtures.identity_provider import IdentityProvider, Tenant
from tests.fixtures.oauth import service_settings
from tests.fixtures.service import RunningService

from .conftest import Workers, wait_until

pytestmark = pytest.mark.slow

SALES = "ws_sales"
QUOTE = "ca_send_quote"
OLD_PASSWORD = "pfx-Old-Passw0rd"
NEW_PASSWORD = "pfx-New-Passw0rd"
#: Messages sent through each phase (old certificate; after the old one is revoked).
PER_PHASE = 12


@pytest.fixture
def service_settings_overrides(idp: IdentityProvider) -> dict[str, object]:
    return service_settings(idp)


class Stream:
    """The platform handing the service one message after another, until stopped: a new one
    whenever fewer than ``AHEAD`` wait to be sent (``sent()`` counts those sent), so that
    messages keep going out through every step of the rollover, whatever this machine's
    pace."""

    AHEAD = 4

    def __init__(self, client: Client, subject: str, sent: Callable[[], int]) -> None:
        self.client = client
        self.subject = subject
        self.sent = sent
        self.accepted: list[str] = []  # message ids, in order
        self.errors: list[BaseException] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="message stream", daemon=True)

    def start(self) -> Stream:
        self._thread.start()
        return self

    def _run(self) -> None:
        n = 0
        while not self._stop.wait(0.02):
            if len(self.accepted) - self.sent() >= self.AHEAD:
                continue
            try:
                accepted = self.client.messages.send(
                    SALES,
                    sender=MessageSender(kind="custom_action", id=QUOTE),
                    to=[f"customer{n}@example.org"],
                    subject=f"{self.subject} {n}",
                    text="Here is the quote.",
                )
            except BaseException as exc:  # reported by the test, not lost in this thread
                self.errors.append(exc)
                return
            self.accepted.append(accepted.id)
            n += 1

    def stop(self) -> list[str]:
        self._stop.set()
        self._thread.join(30)
        assert not self.errors, self.errors
        return list(self.accepted)


def _x5t_s256(item: CertAndKey) -> str:
    return base64.urlsafe_b64encode(item.cert.fingerprint(hashes.SHA256())).decode().rstrip("=")


def test_a_certificate_rolls_over_under_a_steady_stream_with_no_failed_send(
    service: RunningService,
    admin: Client,
    client_for: Callable[[str], Client],
    idp: IdentityProvider,
    tenant: Tenant,
    workers: Workers,
    capsys: pytest.CaptureFixture[str],
) -> None:
    old = make_cert("elegere-stream-2026", key=rsa_key(50))
    new = make_cert("elegere-stream-2027", key=rsa_key(51), days=730)
    # Step 1 of a rollover happens in Azure: the new certificate joins the app registration.
    app = idp.add_app(tenant, certificates=[old.cert])
    server = add_graph_server(admin, SALES, graph_spec(tenant, app, old, password=OLD_PASSWORD))
    # No pace: Graph's default of 30 a minute would only slow the stream down.
    server = admin.email_servers.update(
        SALES, server.id, EmailServerPatch(max_per_minute=100_000), version=server.version
    )
    admin.custom_actions.update(SALES, QUOTE, email_server_id=server.id)
    subject = f"Quote {uuid.uuid4().hex[:6]}"

    def sent() -> list[str]:
        return [m.internet_message_id or "" for m in idp.sent if m.subject.startswith(subject)]

    workers.start(
        service.ctx,
        threads=2,
        ELEGERE_GRAPH_AUTHORITY_HOST=idp.url,
        ELEGERE_GRAPH_BASE_URL=idp.graph_base_url,
        ELEGERE_GRAPH_CA_FILE=idp.ca_bundle,
        # A sign-in (discovery, then the token) on a busy machine may take seconds: a send
        # that runs out of time is deferred, which is not what this test is about.
        ELEGERE_SEND_BUDGET_S="30",
        ELEGERE_LEASE_S="120",
    )
    # A client of its own: the stream runs in another thread.
    stream = Stream(client_for(ADMIN), subject, lambda: len(sent())).start()
    try:
        wait_until(
            f"{PER_PHASE} messages sent with the old certificate", lambda: len(sent()) >= PER_PHASE
        )

        # The admin, in Update: upload the next certificate, test it, promote it.
        app.certificates.append(new.cert)
        held = admin.email_servers.upload_next_certificate(
            SALES,
            server.id,
            certificate=to_pfx(new, password=NEW_PASSWORD),
            password=NEW_PASSWORD,
            version=server.version,
        )
        assert admin.email_servers.test_next_certificate(SALES, server.id).ok
        signed_before = len(idp.assertion_headers)
        admin.email_servers.promote_next_certificate(SALES, server.id, version=held.version)
        before_promotion = list(stream.accepted)

        # The worker signs in with the new certificate for the next message it sends...
        wait_until(
            "the worker signs in with the promoted certificate",
            lambda: any(
                h.get("x5t#S256", "").rstrip("=") == _x5t_s256(new)
                for h in idp.assertion_headers[signed_before:]
            ),
        )
        wait_until(
            "the messages accepted before the promotion are sent",
            lambda: _all_final(service, before_promotion),
        )
        # ...so Azure may stop accepting the old certificate, and every token it signed in for.
        idp.revoke_certificate(app, old.cert)
        at_revocation = len(sent())
        wait_until(
            f"{PER_PHASE} messages sent after the old certificate was revoked",
            lambda: len(sent()) >= at_revocation + PER_PHASE,
        )
    finally:
        accepted = stream.stop()
    wait_until(f"all {len(accepted)} messages final", lambda: _all_final(service, accepted))

    with service.ctx.sessions() as s:
        statuses = {
            ident: status
            for ident, status in s.execute(
                select(MessageRow.id, MessageRow.status).where(MessageRow.id.in_(accepted))
            )
        }
        outcomes = [
            (status, error)
            for status, error in s.execute(
                select(DeliveryRow.status, DeliveryRow.error).where(
                    DeliveryRow.message_id.in_(accepted)
                )
            )
        ]
        message_ids = set(
            s.scalars(select(MessageRow.message_id).where(MessageRow.id.in_(accepted)))
        )
    assert set(statuses.values()) == {"sent"}, statuses
    # One attempt each, every one sent: none deferred, none failed, nothing retried.
    assert [error for status, error in outcomes if status != "sent"] == []
    assert len(outcomes) == len(accepted)
    assert sorted(set(sent())) == sorted(message_ids)
    assert len(sent()) == len(accepted)
    with capsys.disabled():
        print(
            f"\n[rollover] {len(accepted)} messages sent, one attempt each: "
            f"{len(before_promotion)} accepted before the promotion, "
            f"{len(accepted) - at_revocation} sent after the old certificate was revoked"
        )


def _all_final(service: RunningService, ids: list[str]) -> bool:
    with service.ctx.sessions() as s:
        statuses = set(s.scalars(select(MessageRow.status).where(MessageRow.id.in_(ids))))
    return statuses <= {"sent", "failed"}
