"""Settings and assertions shared by the SMTP tests."""

from __future__ import annotations

from pydantic import SecretStr

from elegere_widgets.models import ConnectionTestResult, SmtpSettings, Stage
from tests.fixtures.smtp import ACCOUNT, PASSWORD

SENDER = "sales@example.com"
WITH_AUTH = ["resolve", "connect", "tls", "ehlo", "authenticate", "sender", "recipient"]
WITHOUT_AUTH = ["resolve", "connect", "tls", "ehlo", "sender", "recipient"]


def settings(
    port: int, *, use_ssl: bool, password: str | None = PASSWORD, server: str = "127.0.0.1"
) -> SmtpSettings:
    return SmtpSettings(
        server=server,
        port=port,
        use_ssl=use_ssl,
        account=ACCOUNT,
        sender_address=SENDER,
        password=SecretStr(password) if password is not None else None,
    )


def names(result: ConnectionTestResult) -> list[str]:
    return [s.name for s in result.stages]


def failed(result: ConnectionTestResult) -> Stage:
    assert not result.ok, result
    stage = result.failed_stage
    assert stage is not None
    assert stage is result.stages[-1], "the test stops at the first failed stage"
    assert stage.hint, stage
    return stage
