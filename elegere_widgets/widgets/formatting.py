"""How values read in the views: times, usage counts, test stages. Plain functions, no widgets."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime

from ..models import ConnectionTestResult, LastTest, Stage, UsageCounts
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


def result_summary(result: ConnectionTestResult) -> str:
    """One sentence on the whole test."""
    if result.ok:
        return f"Connection test passed in {result.elapsed_ms} ms."
    failed = result.failed_stage
    if failed is None:
        return f"Connection test failed after {result.elapsed_ms} ms."
    what = f"Connection test failed at {stage_title(failed.name)}"
    hint = f": {failed.hint}" if failed.hint else (f": {failed.detail}" if failed.detail else "")
    return what + hint.rstrip(".") + "."


def summary_html(rows: Sequence[tuple[str, str]]) -> str:
    """The Summary step: every setting, one per line."""
    body = "".join(
        f'<tr><td class="elegere-summary-label">{esc(label)}</td><td><b>{esc(value)}</b></td></tr>'
        for label, value in rows
    )
    return f'<table class="elegere-summary-table">{body}</table>'
