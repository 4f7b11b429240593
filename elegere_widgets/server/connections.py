"""Runs a connection test or a test send for the right server type, within the budgets."""

from __future__ import annotations

from collections.abc import Callable

from ..connectivity.smtp import OAuthEndpoints, SendOutcome, send_smtp, test_smtp
from ..models import ConnectionTestResult, GraphSettings, SmtpSettings, Stage
from .context import ServiceContext

TEST_SUBJECT = "eLegere test message"
TEST_BODY = (
    "This is a test message sent from the Email Servers settings of an eLegere workspace "
    "to check that the server '{name}' can send mail.\n"
)


def _graph_ca_bundle(ctx: ServiceContext) -> str | None:
    return str(ctx.settings.graph_ca_file) if ctx.settings.graph_ca_file else None


def smtp_oauth_endpoints(ctx: ServiceContext) -> OAuthEndpoints:
    """Where an OAuth 2.0 SMTP server's app signs in: the same authority as Graph's."""
    return OAuthEndpoints(
        authority_host=ctx.settings.graph_authority_host, ca_bundle=_graph_ca_bundle(ctx)
    )


def run_connection_test(
    ctx: ServiceContext,
    settings: SmtpSettings | GraphSettings,
    *,
    progress: Callable[[Stage], None] | None = None,
    on_tls_mode: Callable[[str], None] | None = None,
) -> ConnectionTestResult:
    """The staged test; ``progress`` gets each stage as it ends; ``on_tls_mode`` the TLS mode
    an SMTP test found out (Use SSL on a port other than 465, 587 and 25)."""
    if isinstance(settings, SmtpSettings):
        return test_smtp(
            settings,
            egress=ctx.egress,
            budget_s=ctx.settings.test_budget_s,
            ssl_context=ctx.ssl_context(),
            progress=progress,
            oauth=smtp_oauth_endpoints(ctx),
            on_tls_mode=on_tls_mode,
        )
    from ..connectivity.graph import test_graph  # msal is heavy: load it only for Graph

    return test_graph(
        settings,
        authority_host=ctx.settings.graph_authority_host,
        graph_base_url=ctx.settings.graph_base_url,
        budget_s=ctx.settings.test_budget_s,
        ca_bundle=_graph_ca_bundle(ctx),
        progress=progress,
    )


def run_sign_in_test(
    ctx: ServiceContext,
    settings: SmtpSettings | GraphSettings,
    *,
    progress: Callable[[Stage], None] | None = None,
) -> ConnectionTestResult:
    """The certificate and token stages of an app registration's settings (Graph, or SMTP
    with OAuth 2.0), with the scope the server signs in for: a next certificate's test."""
    from ..connectivity.app_token import AppRegistration, test_sign_in  # msal is heavy

    if isinstance(settings, SmtpSettings):
        oauth = smtp_oauth_endpoints(ctx)
        authority, scope, ca_bundle = oauth.authority_host, oauth.scope, oauth.ca_bundle
    else:
        from ..connectivity.graph import GRAPH_SCOPE

        authority, scope = ctx.settings.graph_authority_host, GRAPH_SCOPE
        ca_bundle = _graph_ca_bundle(ctx)
    return test_sign_in(
        AppRegistration.of(settings),
        server_type="smtp" if isinstance(settings, SmtpSettings) else "microsoft_graph",
        authority_host=authority,
        scope=scope,
        budget_s=ctx.settings.test_budget_s,
        ca_bundle=ca_bundle,
        progress=progress,
    )


def send_test_message(
    ctx: ServiceContext,
    settings: SmtpSettings | GraphSettings,
    *,
    name: str,
    to: str,
    progress: Callable[[Stage], None] | None = None,
) -> SendOutcome:
    """The test message, in one session; ``progress`` gets each stage as it ends."""
    body = TEST_BODY.format(name=name)
    if isinstance(settings, SmtpSettings):
        return send_smtp(
            settings,
            to=to,
            subject=TEST_SUBJECT,
            body=body,
            egress=ctx.egress,
            budget_s=ctx.settings.send_budget_s,
            ssl_context=ctx.ssl_context(),
            oauth=smtp_oauth_endpoints(ctx),
            progress=progress,
        )
    from ..connectivity.graph import send_graph

    return send_graph(
        settings,
        to=to,
        subject=TEST_SUBJECT,
        body=body,
        authority_host=ctx.settings.graph_authority_host,
        graph_base_url=ctx.settings.graph_base_url,
        budget_s=ctx.settings.send_budget_s,
        ca_bundle=_graph_ca_bundle(ctx),
        progress=progress,
    )
