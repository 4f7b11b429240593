"""How values read in the views: times, usage counts, test stages, health and certificates.
Plain functions, no widgets."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from ..models import (
    CertificateInfo,
    ConnectionTestResult,
    EmailServer,
    LastTest,
    ServerHealth,
    Stage,
    UsageCounts,
)
from ..models.servers import FIELD_LABELS
from .common import esc

STAGE_TITLES = {
    "resolve": "Resolve",
    "connect": "Connect",
    "tls": "TLS",
    "ehlo": "EHLO",
    "authenticate": "Authenticate",
    "sender": "Sender",
    "recipient": "Recipient",
    "data": "Data",
    "certificate": "Certificate",
    "token": "Token",
    "mailbox": "Mailbox",
    "send_permission": "Send permission",
    "send": "Send",
}

INHERITED_MARK = "Inherited from Organization"
OWN_MARK = "This workspace"

#: What sends through a server, by usage kind.
KIND_LABELS = {
    "custom_action": "Custom action",
    "scheduler_job": "Scheduler job",
    "notifications": "Notifications of workspace",
    "default_server": "Default server of organization",
    "fallback": "Fallback of server",
}

HEALTH_TITLES = {
    "healthy": "Healthy",
    "degraded": "Degraded",
    "failing": "Failing",
    "expiring": "Expiring",
    "expired": "Expired",
}
# A mark besides the word, for a quick look: the word is what says it, not the mark or colour.
HEALTH_MARKS = {"healthy": "✓", "degraded": "⚠", "failing": "✗", "expiring": "⚠", "expired": "✗"}
#: A certificate this close to its end is shown prominently (the service's "expiring").
EXPIRY_WARNING_DAYS = 30


def ago(when: datetime, now: datetime | None = None) -> str:
    """'just now', '5 min ago', '3 h ago', 'yesterday', '12 days ago'."""
    now = now or datetime.now(UTC)
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    seconds = (now - when).total_seconds()
    if seconds < 60:
        return "just now"
    if seconds < 3600:
        return f"{int(seconds // 60)} min ago"
    if seconds < 86400:
        return f"{int(seconds // 3600)} h ago"
    days = int(seconds // 86400)
    return "yesterday" if days == 1 else f"{days} days ago"


def when(at: datetime) -> str:
    """A moment as everyone reads it the same: '2026-12-01 09:30 UTC'."""
    if at.tzinfo is None:
        at = at.replace(tzinfo=UTC)
    return f"{at.astimezone(UTC):%Y-%m-%d %H:%M} UTC"


def plural(n: int, word: str) -> str:
    return f"{n} {word}" if n == 1 else f"{n} {word}s"


def used_by(counts: UsageCounts) -> str:
    """'1 custom action, 1 scheduler job', or 'Not used'."""
    parts = []
    if counts.custom_actions:
        parts.append(plural(counts.custom_actions, "custom action"))
    if counts.scheduler_jobs:
        parts.append(plural(counts.scheduler_jobs, "scheduler job"))
    return ", ".join(parts) or "Not used"


def last_test(test: LastTest | None, now: datetime | None = None) -> tuple[str, str]:
    """The Last test cell and its tooltip: ('✓ 2 days ago', 'passed in 640 ms')."""
    if test is None:
        return "— never", "This server was never tested."
    mark = "✓" if test.ok else "✗"
    tip = (test.detail or ("passed" if test.ok else "failed")) + f" ({test.elapsed_ms} ms)"
    return f"{mark} {ago(test.at, now)}", tip


def unreadable_secrets(fields: Sequence[str]) -> str:
    """What a row says when the service cannot open its stored secrets."""
    names = [FIELD_LABELS.get(f, f).lower() for f in fields]
    what = " and ".join(names)
    return f"stored {what} unreadable: enter {'it' if len(names) == 1 else 'them'} again"


def stage_title(name: str) -> str:
    return STAGE_TITLES.get(name, name.replace("_", " ").capitalize())


def stages_html(stages: Sequence[Stage]) -> str:
    """A small table: ✓/✗, the stage, its time, what happened and, for a failure, what to do."""
    if not stages:
        return ""
    rows = []
    for stage in stages:
        mark = "✓" if stage.ok else "✗"
        tone = "ok" if stage.ok else "error"
        hint = f'<div class="elegere-stage-hint">{esc(stage.hint)}</div>' if stage.hint else ""
        rows.append(
            f'<tr class="elegere-stage elegere-stage-{esc(stage.name)}">'
            f'<td class="elegere-stage-mark elegere-tone-{tone}">{mark}</td>'
            f'<td class="elegere-stage-title"><b>{esc(stage_title(stage.name))}</b></td>'
            f'<td class="elegere-stage-time">{stage.elapsed_ms} ms</td>'
            f"<td>{esc(stage.detail)}{hint}</td></tr>"
        )
    return '<table class="elegere-stage-table">' + "".join(rows) + "</table>"


def result_summary(result: ConnectionTestResult, what: str = "Connection test") -> str:
    """One sentence on the whole test (``what``: the test's name)."""
    if result.ok:
        return f"{what} passed in {result.elapsed_ms} ms."
    failed = result.failed_stage
    if failed is None:
        return f"{what} failed after {result.elapsed_ms} ms."
    what = f"{what} failed at {stage_title(failed.name)}"
    hint = f": {failed.hint}" if failed.hint else (f": {failed.detail}" if failed.detail else "")
    return what + hint.rstrip(".") + "."


def summary_html(rows: Sequence[tuple[str, str]]) -> str:
    """The Summary step: every setting, one per line."""
    body = "".join(
        f'<tr><td class="elegere-summary-label">{esc(label)}</td><td><b>{esc(value)}</b></td></tr>'
        for label, value in rows
    )
    return f'<table class="elegere-summary-table">{body}</table>'


def candidate_label(server: EmailServer) -> str:
    """A server among others: its name, type and key setting, and where it comes from."""
    where = " — inherited from Organization" if server.inherited else ""
    return f"{server.name} ({server.type_label}, {server.key_setting}){where}"


# ---------------------------------------------------------------- health


def health_text(health: ServerHealth | None) -> str:
    """The Health cell as words: 'Degraded: The last check failed at connect: …'."""
    if health is None:
        return "— unknown"
    title = HEALTH_TITLES.get(health.status, health.status.capitalize())
    return f"{title}: {health.reason}" if health.reason else title


def health_html(health: ServerHealth | None) -> str:
    """The badge (mark and status, in its tone) followed by the reason."""
    if health is None:
        return "— unknown"
    title = HEALTH_TITLES.get(health.status, health.status.capitalize())
    mark = HEALTH_MARKS.get(health.status, "")
    badge = (
        f'<span class="elegere-badge elegere-health elegere-tone-{esc(health.status)}">'
        f'<span aria-hidden="true">{mark} </span>{esc(title)}</span>'
    )
    reason = f' <span class="elegere-health-reason">{esc(health.reason)}</span>'
    return badge + (reason if health.reason else "")


# ---------------------------------------------------------------- certificates


@dataclass(frozen=True)
class CertificateCell:
    """What the Certificate column shows: text, a tone (``warning``, ``bad`` or none) and
    the tooltip with the whole story."""

    text: str
    tone: str = ""
    tip: str = ""

    def html(self) -> str:
        if not self.tone:
            return esc(self.text)
        return (
            f'<span class="elegere-badge elegere-cert-soon elegere-tone-{self.tone}">'
            f"{esc(self.text)}</span>"
        )


def uses_certificate(server: EmailServer) -> bool:
    """Graph servers and OAuth 2.0 SMTP servers sign in with an app's certificate."""
    authentication = getattr(server.settings, "authentication", None)
    return server.type == "microsoft_graph" or authentication == "oauth2"


def certificate_cell(server: EmailServer, now: datetime | None = None) -> CertificateCell:
    """The Certificate column of a server: its certificate's end, prominent within
    ``EXPIRY_WARNING_DAYS``; a dash for a server that signs in with a password.

    A next certificate (the rollover's) adds its own end and where its test stands; one that
    passed its test and outlives the current one takes the alarm off a near end, as it does
    off the health: it only waits to be promoted.
    """
    if not uses_certificate(server):
        return CertificateCell("—", tip="Signs in with a password: no certificate.")
    info = getattr(server.settings, "certificate_info", None)
    if info is None:
        return CertificateCell(
            "— unknown", "warning", "The service did not say when the certificate expires."
        )
    cell = certificate_expiry(info, now)
    upcoming = server.settings.next_certificate_info
    if upcoming is None:
        return cell
    test = server.settings.next_certificate_test
    passed = test is not None and test.ok
    state = "tested" if passed else "test failed" if test is not None else "not tested"
    step = "promote it in Settings" if passed else "test it in Settings, then promote it"
    covered = passed and upcoming.not_after > info.not_after and cell.tone == "warning"
    if covered:  # no alarm, and no advice to upload what is there already
        cell = CertificateCell(
            f"until {info.not_after:%Y-%m-%d}",
            tip=f"{info.subject}, valid until {when(info.not_after)}.",
        )
    return CertificateCell(
        f"{cell.text} · next until {upcoming.not_after:%Y-%m-%d} ({state})",
        cell.tone,
        f"{cell.tip} Next certificate: {upcoming.subject}, valid until "
        f"{when(upcoming.not_after)}: {step}.",
    )


def certificate_expiry(info: CertificateInfo, now: datetime | None = None) -> CertificateCell:
    """'until 2027-05-01', '⚠ expires in 12 days' or '✗ expired on 2026-11-01'."""
    now = now or datetime.now(UTC)
    end = info.not_after if info.not_after.tzinfo else info.not_after.replace(tzinfo=UTC)
    date = f"{end.astimezone(UTC):%Y-%m-%d}"
    about = f"{info.subject}, valid until {when(end)}"
    renew = "Upload a renewed certificate in Settings"
    if end <= now:
        return CertificateCell(f"✗ expired on {date}", "bad", f"{about}. {renew}.")
    days = max(0, info.days_left)
    if days <= EXPIRY_WARNING_DAYS:
        soon = {0: "today", 1: "tomorrow"}.get(days, f"in {days} days")
        return CertificateCell(f"⚠ expires {soon}", "warning", f"{about}. {renew} before then.")
    return CertificateCell(f"until {date}", tip=f"{about} ({days} days left).")
