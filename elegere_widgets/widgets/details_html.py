"""How a server's details read: its settings, health and checks, deliveries, what uses it, its
fallback and its audit trail, each as a piece of HTML. Plain functions, no widgets.

Every mark (✓, ✗, ⚠) stands beside words, and the strip of checks carries each check's time
and outcome as text for screen readers: nothing is said by colour alone.
"""

from __future__ import annotations

from collections.abc import Sequence

from ..models import (
    FIELD_LABELS,
    AuditEvent,
    DeliverySummary,
    EmailServer,
    ServerCheck,
    Usage,
)
from ..models.servers import AUTHENTICATION_LABELS
from .common import esc
from .formatting import (
    INHERITED_MARK,
    KIND_LABELS,
    OWN_MARK,
    candidate_label,
    certificate_expiry,
    health_html,
    stage_title,
    when,
)

#: How many checks the strip shows, newest first.
STRIP_CHECKS = 30
ACTION_LABELS = {
    "create": "Added",
    "update": "Changed",
    "delete": "Deleted",
    "test": "Connection test",
    "send_test": "Test email",
    "health_alert": "Health alert",
}
# Derived, or shown apart: not a row of the settings table.
_NOT_SETTINGS = ("certificate_info", "tls_mode")
# The audit trail names the routing fields too.
_LABELS = {
    **FIELD_LABELS,
    "fallback_server_id": "Fallback server",
    "max_per_minute": "Max per minute",
}


def table(head: Sequence[str], rows: Sequence[Sequence[str]], css_class: str) -> str:
    """A table of already escaped cells, with column headers for screen readers."""
    th = "".join(f'<th scope="col">{esc(h)}</th>' for h in head)
    body = "".join("<tr>" + "".join(f"<td>{c}</td>" for c in row) + "</tr>" for row in rows)
    return (
        f'<table class="elegere-details-table {css_class}"><thead><tr>{th}</tr></thead>'
        f"<tbody>{body}</tbody></table>"
    )


def _pairs(rows: Sequence[tuple[str, str]], css_class: str) -> str:
    """Label / value rows (the values already escaped)."""
    body = "".join(
        f'<tr><th scope="row">{esc(label)}</th><td>{value}</td></tr>' for label, value in rows
    )
    return f'<table class="elegere-details-table {css_class}"><tbody>{body}</tbody></table>'


def _value(name: str, value: object) -> str:
    if isinstance(value, bool):
        return "Yes" if value else "No"
    if name == "authentication" and isinstance(value, str):
        return AUTHENTICATION_LABELS.get(value, value)
    return str(value)


def settings_html(server: EmailServer) -> str:
    """Every shown setting, which secrets are set (never their values), the certificate and
    the routing. The service sends no secret; none could show here."""
    scope = INHERITED_MARK if server.inherited else OWN_MARK
    if server.scope == "organization" and not server.inherited:
        scope = "This organization"
    rows: list[tuple[str, str]] = [("Type", esc(server.type_label)), ("Scope", esc(scope))]
    shown = server.settings.model_dump()  # the view's own serializer: what the service sent
    for name, value in shown.items():
        if name in _NOT_SETTINGS or value is None:
            continue
        rows.append((FIELD_LABELS.get(name, name), esc(_value(name, value))))
    for name, stored in server.secrets_set.items():
        label = FIELD_LABELS.get(name, name)
        if name in server.secrets_unreadable:
            rows.append((label, "stored, but unreadable: enter it again in Settings"))
        elif stored:
            rows.append((label, "set (never shown)"))
    info = getattr(server.settings, "certificate_info", None)
    if info is not None:
        rows.append(("Certificate", esc(info.subject)))
        expiry = certificate_expiry(info)
        rows.append(("Valid until", f"{esc(when(info.not_after))} · {expiry.html()}"))
        rows.append(("Thumbprint (SHA-1)", f"<code>{esc(info.thumbprint_sha1)}</code>"))
    pace = server.max_per_minute
    rows.append(("Max per minute", esc(pace) if pace is not None else "no limit"))
    rows.append(("Added", esc(when(server.created_at))))
    rows.append(("Changed", f"{esc(when(server.updated_at))} (version {server.version})"))
    return _pairs(rows, "elegere-settings-table")


def check_text(check: ServerCheck) -> str:
    """One check in words: '2026-12-01 09:30 UTC: failed at Connect (scheduled)'."""
    if check.ok:
        outcome = "passed"
    elif check.failed_stage:
        outcome = f"failed at {stage_title(check.failed_stage)}"
    else:
        outcome = "failed"
    return f"{when(check.checked_at)}: {outcome} ({check.source}, {check.elapsed_ms} ms)"


def checks_strip(checks: Sequence[ServerCheck]) -> str:
    """The last checks, newest first, as a row of ✓ and ✗; each one's time and outcome is its
    tooltip and, for screen readers, its text."""
    if not checks:
        return (
            '<p class="elegere-no-checks">No check is kept yet: Test now runs one, and the '
            "scheduled checks add theirs.</p>"
        )
    shown = list(checks)[:STRIP_CHECKS]
    passed = sum(c.ok for c in shown)
    items = []
    for check in shown:
        tone = "healthy" if check.ok else "failing"
        text = check_text(check) + (f" — {check.detail}" if not check.ok and check.detail else "")
        items.append(
            f'<li class="elegere-check elegere-tone-{tone}" title="{esc(text)}">'
            f'<span aria-hidden="true">{"✓" if check.ok else "✗"}</span>'
            f'<span class="elegere-sr-only">{esc(text)}</span></li>'
        )
    label = f"The last {len(shown)} checks, newest first"
    return (
        f'<p class="elegere-checks-summary">{passed} of the last {len(shown)} checks passed '
        "(newest first, left to right):</p>"
        f'<ol class="elegere-check-strip" aria-label="{esc(label)}">{"".join(items)}</ol>'
    )


def health_section(server: EmailServer, checks: Sequence[ServerCheck]) -> str:
    health = server.health
    since = ""
    if health is not None and health.since is not None:
        since = f' <span class="elegere-health-since">(since {esc(when(health.since))})</span>'
    return f'<div class="elegere-health-now">{health_html(health)}{since}</div>' + checks_strip(
        checks
    )


def deliveries_section(summary: DeliverySummary, days: int) -> str:
    """Sent / deferred / failed since the start of the period, and the latest failures with
    the server's reply."""
    counts = (
        '<div class="elegere-counts">'
        f'<span class="elegere-count-sent"><b>{summary.sent}</b> sent</span>'
        f'<span class="elegere-count-deferred"><b>{summary.deferred}</b> deferred</span>'
        f'<span class="elegere-count-failed"><b>{summary.failed}</b> failed</span></div>'
    )
    period = (
        f'<p class="elegere-small-note">In the last {days} days, since '
        f"{esc(when(summary.since))}.</p>"
    )
    if not summary.last_failures:
        if summary.sent + summary.deferred + summary.failed == 0:
            return counts + period + "<p>Nothing was sent through it in this period.</p>"
        return counts + period + "<p>No delivery failed or was deferred.</p>"
    rows = [
        [
            esc(when(d.created_at)),
            esc(", ".join(d.recipients)),
            esc(d.status),
            esc(stage_title(d.stage)) if d.stage else "—",
            esc(d.error or "—"),
        ]
        for d in summary.last_failures
    ]
    failures = table(
        ["When", "To", "Outcome", "Stage", "The server's reply"], rows, "elegere-failures"
    )
    return counts + period + "<p>The latest failures:</p>" + failures


def usages_section(usages: Sequence[Usage]) -> str:
    if not usages:
        return "<p>Nothing sends through it.</p>"
    items = "".join(
        f'<li class="elegere-usage">{esc(KIND_LABELS.get(u.kind, u.kind))}: <b>{esc(u.name)}</b>'
        "</li>"
        for u in usages
    )
    return f'<ul class="elegere-usages-list">{items}</ul>'


def fallback_section(server: EmailServer, fallback: EmailServer | None) -> str:
    fallback_id = server.fallback_server_id
    if fallback_id is None:
        where = "" if server.inherited else " Settings can name one."
        return f"<p>No fallback server: what it cannot take is retried on it.{where}</p>"
    name = candidate_label(fallback) if fallback is not None else fallback_id
    return (
        f"<p><b>{esc(name)}</b> takes the messages this server cannot, after its second "
        "failed attempt.</p>"
    )


def audit_section(events: Sequence[AuditEvent]) -> str:
    if not events:
        return "<p>No change, test or test email is recorded for it yet.</p>"
    rows = []
    for event in events:
        what = ACTION_LABELS.get(event.action, event.action.replace("_", " ").capitalize())
        if event.changed_fields:
            fields = ", ".join(_LABELS.get(f, f) for f in event.changed_fields)
            what += f": {fields}"
        mark = "✓" if event.result == "ok" else "✗"
        outcome = f"{mark} {event.result}" + (f" — {event.detail}" if event.detail else "")
        rows.append(
            [
                esc(when(event.occurred_at)),
                esc(event.actor_email or "the service"),
                esc(what),
                esc(outcome),
            ]
        )
    return table(["When", "Who", "What", "How it went"], rows, "elegere-audit")
