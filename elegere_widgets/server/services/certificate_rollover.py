"""Rolling a server's certificate over without a failed send: test the next one, promote it,
or drop it.

A next certificate is uploaded with an update (settings ``next_certificate``,
``next_certificate_password``, ``next_certificate_alias``: checked, sealed and bound to the
tenant, app and account as the current one is) and held beside it; the current one signs in
meanwhile. Its test runs the certificate and token stages with it, so the identity provider
says whether it accepts it, and is kept on the server. Promoting needs a passing test of that
very certificate and swaps it in one change: the next certificate becomes the current one, the
version grows, an audit event names the thumbprints. Senders load a server's settings per
version and cache tokens per certificate, so the next message signs in with it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import update

from ...errors import Conflict, TestRequired
from ...models import ConnectionTestResult, EmailServer
from ...models.servers import (
    CERTIFICATE_FIELDS,
    NEXT_CERTIFICATE_FIELDS,
    NEXT_CERTIFICATE_STORED,
    next_as_current,
)
from ..connections import run_sign_in_test
from ..store.tables import EmailServerRow
from .email_servers import (
    AnySettings,
    EmailServerService,
    Prepared,
    Progress,
    public_with_derived,
    stored_server_settings,
)
from .next_certificate import (
    NEXT_INFO,
    NEXT_TEST,
    next_test_record,
    next_thumbprint,
    test_of_next,
)
from .server_checks import test_summary

__all__ = ["CertificateRollover"]


@dataclass
class CertificateRollover:
    """The next certificate of a scope's own servers, as one caller may roll it over."""

    servers: EmailServerService

    # ---------------------------------------------------------------- test

    def prepare_test(
        self, server_id: str, *, progress: Progress | None = None
    ) -> Prepared[ConnectionTestResult]:
        """Every check that can refuse testing the next certificate, now; the test (the
        certificate and token stages with it) and its record are the work."""
        servers = self.servers
        servers.count_attempt()
        row = servers.queries.own_row(server_id)
        settings = next_as_current(self._with_next(row))
        thumbprint = next_thumbprint(row.settings)
        assert thumbprint is not None  # a next certificate is stored with what it shows
        servers.end_transaction()  # before any network I/O
        slot = servers.take_slot()
        return Prepared(slot, lambda: self._run_and_record(row.id, settings, thumbprint, progress))

    def _run_and_record(
        self,
        server_id: str,
        settings: AnySettings,
        thumbprint: str,
        progress: Progress | None,
    ) -> ConnectionTestResult:
        ctx = self.servers.ctx
        result = run_sign_in_test(ctx, settings, progress=progress)
        record = next_test_record(result, thumbprint, datetime.now(UTC))
        # A session of its own: the request's may be closing in another thread by now.
        with ctx.sessions() as session:
            stored = session.get(EmailServerRow, server_id)
            if stored is not None and next_thumbprint(stored.settings) == thumbprint:
                # Kept without a new version: a test changes no setting. Only on the version
                # read, so that a save in between is never overwritten (the test then counts
                # for nothing, and is run again).
                session.execute(
                    update(EmailServerRow)
                    .where(
                        EmailServerRow.id == server_id,
                        EmailServerRow.version == stored.version,
                    )
                    .values(settings={**stored.settings, NEXT_TEST: record})
                    .execution_options(synchronize_session=False)
                )
            self.servers.audit(
                "test_next_certificate",
                server_id=server_id,
                result="ok" if result.ok else "failed",
                detail=f"next certificate {thumbprint[:16]}… {test_summary(result)}",
                session=session,
            )
            session.commit()
        return result

    # ---------------------------------------------------------------- promote

    def promote(self, server_id: str, expected_version: int) -> EmailServer:
        """The tested next certificate becomes the current one, in one change."""
        servers = self.servers
        row = servers.queries.own_row(server_id)
        servers.check_version(row, expected_version)
        self._require_passed_test(row)
        promoted = next_as_current(self._with_next(row))
        servers.end_transaction()
        public = public_with_derived(promoted)  # loads the certificate: outside a transaction
        row = servers.queries.own_row(server_id, for_update=True)
        servers.check_version(row, expected_version)
        self._require_passed_test(row)  # a failed retest may have landed meanwhile
        before, after = row.settings.get("certificate_info"), row.settings.get(NEXT_INFO)
        servers.write_settings(row, promoted, public)
        servers.audit(
            "promote_certificate",
            server_id=row.id,
            changed_fields=[*CERTIFICATE_FIELDS, *NEXT_CERTIFICATE_FIELDS],
            detail=f"certificate {_described(before)} replaced by {_described(after)}",
        )
        servers.commit_change(row)
        return servers.queries.model(row)

    def _require_passed_test(self, row: EmailServerRow) -> None:
        self._with_next(row)
        test = test_of_next(row.settings)
        if test is None:
            raise TestRequired(
                f"Test the next certificate of '{row.name}' first (Test next certificate, or "
                "POST …/next-certificate/test): it is promoted only once the identity provider "
                "has accepted it."
            )
        if not test.get("ok"):
            raise TestRequired(
                f"The last test of the next certificate of '{row.name}' failed "
                f"({test.get('detail') or 'no detail'}). Fix what it says, test it again, and "
                "promote it once the test passes."
            )

    # ---------------------------------------------------------------- drop

    def drop(self, server_id: str, expected_version: int) -> EmailServer:
        """Forget the next certificate; the current one stays as it is."""
        servers = self.servers
        row = servers.queries.own_row(server_id, for_update=True)
        servers.check_version(row, expected_version)
        settings = self._with_next(row)
        thumbprint = next_thumbprint(row.settings) or ""
        kept = settings.model_copy(update=dict.fromkeys(NEXT_CERTIFICATE_FIELDS))
        public = {k: v for k, v in row.settings.items() if k not in NEXT_CERTIFICATE_STORED}
        servers.write_settings(row, kept, public)
        servers.audit(
            "drop_next_certificate",
            server_id=row.id,
            changed_fields=NEXT_CERTIFICATE_FIELDS,
            detail=f"next certificate {thumbprint[:16]}… dropped",
        )
        servers.commit_change(row)
        return servers.queries.model(row)

    # ---------------------------------------------------------------- common

    def _with_next(self, row: EmailServerRow) -> AnySettings:
        """The stored settings, secrets opened, of a server that holds a next certificate."""
        if next_thumbprint(row.settings) is None:
            raise Conflict(
                f"'{row.name}' holds no next certificate: upload one first (Update → "
                "Certificate rollover, or the setting next_certificate), then test and promote "
                "it."
                if _uses_certificate(row)
                else f"'{row.name}' signs in with a password: a certificate rollover is for "
                "Microsoft Graph servers and SMTP servers with OAuth 2.0."
            )
        return stored_server_settings(self.servers.ctx, row)


def _uses_certificate(row: EmailServerRow) -> bool:
    return row.type == "microsoft_graph" or row.settings.get("authentication") == "oauth2"


def _described(info: object) -> str:
    """A certificate in an audit event: its SHA-1 thumbprint (what Azure shows) and end."""
    if not isinstance(info, dict):
        return "(none)"
    return f"{info.get('thumbprint_sha1', '?')} (until {str(info.get('not_after', '?'))[:10]})"
