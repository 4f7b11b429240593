"""A server's health, computed when read from its checks, deliveries and certificate.

- **expired**: its certificate (Graph ``certificate_info.not_after``) has passed;
- **failing**: its last three checks failed, or nothing it sent in 24 h was delivered while
  messages failed or were deferred;
- **expiring**: its certificate expires within 30 days, unless a next certificate that
  expires later has passed its test (it only waits to be promoted);
- **degraded**: its last check failed, or more than 10 % of the last 24 h's deliveries
  failed or were deferred;
- **healthy** otherwise.

A listing computes it for every server with two aggregate statements (the latest checks,
the day's deliveries), whatever the number of servers.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import and_, case, func, select
from sqlalchemy.orm import Session

from ..store.tables import DeliveryRow, EmailServerRow, ServerCheckRow
from .next_certificate import tested_next_end

__all__ = [
    "EXPIRY_WARNING_DAYS",
    "FAILING_CHECKS",
    "ServerSignals",
    "classify",
    "health_by_server",
]

#: A certificate this close to its end makes the server "expiring".
EXPIRY_WARNING_DAYS = 30
#: This many failed checks in a row make the server "failing".
FAILING_CHECKS = 3
#: More than this share of the day's deliveries failed or deferred: "degraded".
DEGRADED_SHARE = 0.10
WINDOW = timedelta(hours=24)
_OK_STATUSES = ("sent", "accepted")
_BAD_STATUSES = ("failed", "deferred")


@dataclass
class ServerSignals:
    """What a server's health is computed from; checks newest first."""

    checks: list[tuple[bool, datetime, str]] = field(default_factory=list)
    deliveries: int = 0
    delivered: int = 0
    bad: int = 0
    first_bad_at: datetime | None = None


def certificate_end(settings: Mapping[str, Any]) -> datetime | None:
    info = settings.get("certificate_info")
    if not info or not info.get("not_after"):
        return None
    return datetime.fromisoformat(str(info["not_after"]))


def _health(status: str, since: datetime | None, reason: str) -> dict[str, Any]:
    return {"status": status, "since": since, "reason": reason}


def classify(
    signals: ServerSignals,
    not_after: datetime | None,
    now: datetime,
    tested_next_after: datetime | None = None,
) -> dict[str, Any]:
    """The health document (``ServerHealth``'s values) of one server; ``tested_next_after``
    is when its next certificate expires, if that one passed its test."""
    covered = tested_next_after is not None and (not_after is None or tested_next_after > not_after)
    if not_after is not None and not_after <= now:
        return _health(
            "expired",
            not_after,
            f"The certificate expired on {not_after:%Y-%m-%d}; "
            + (
                "promote the tested next certificate."
                if covered
                else "upload a renewed one (as the next certificate), test it and promote it."
            ),
        )
    checks = signals.checks
    streak = checks[:FAILING_CHECKS]
    if len(streak) == FAILING_CHECKS and not any(ok for ok, _, _ in streak):
        return _health(
            "failing",
            streak[-1][1],
            f"The last {FAILING_CHECKS} checks failed; the latest {streak[0][2]}.",
        )
    if signals.bad and not signals.delivered:
        return _health(
            "failing",
            signals.first_bad_at,
            f"Nothing was delivered in 24 h; {signals.bad} attempt(s) failed or were deferred.",
        )
    expiring = not_after is not None and not_after - now <= timedelta(days=EXPIRY_WARNING_DAYS)
    if not_after is not None and expiring and not covered:
        days = math.floor((not_after - now).total_seconds() / 86400)
        return _health(
            "expiring",
            not_after - timedelta(days=EXPIRY_WARNING_DAYS),
            f"The certificate expires in {days} day(s), on {not_after:%Y-%m-%d}; upload a "
            "renewed one as the next certificate, test it and promote it before then.",
        )
    if checks and not checks[0][0]:
        return _health("degraded", checks[0][1], f"The last check {checks[0][2]}.")
    if signals.deliveries and signals.bad / signals.deliveries > DEGRADED_SHARE:
        share = round(100 * signals.bad / signals.deliveries)
        return _health(
            "degraded",
            signals.first_bad_at,
            f"{share} % of the last 24 h's {signals.deliveries} deliveries failed or were "
            "deferred.",
        )
    if checks:
        return _health("healthy", checks[0][1], "The last check passed.")
    return _health("healthy", None, "No check has failed.")


def _latest_checks(session: Session, ids: Any) -> Any:
    """The last ``FAILING_CHECKS`` checks of each server ``ids``, newest first (a few more
    where checks share the time of the last one counted).

    Driven from the servers: for each, its third-newest check's time (or its oldest's, when
    it has fewer) is one index seek on ``(server_id, checked_at)``, and its checks from then
    on one index range. A window ranking every check of every listed server read their whole
    history instead: a month of daily checks of 1,100 servers made a list call take 100 ms
    longer (10× the query it replaces here on SQLite), and it grew with every check kept.
    """
    listed = EmailServerRow.__table__.alias("listed")
    checks = ServerCheckRow.__table__
    earlier = ServerCheckRow.__table__.alias("earlier")
    of_server = earlier.c.email_server_id == listed.c.id
    nth_newest = (
        select(earlier.c.checked_at)
        .where(of_server)
        .order_by(earlier.c.checked_at.desc(), earlier.c.id.desc())
        .limit(1)
        .offset(FAILING_CHECKS - 1)
        .scalar_subquery()
    )
    oldest = select(func.min(earlier.c.checked_at)).where(of_server).scalar_subquery()
    return session.execute(
        select(checks.c.email_server_id, checks.c.ok, checks.c.checked_at, checks.c.detail)
        .select_from(
            listed.join(
                checks,
                and_(
                    checks.c.email_server_id == listed.c.id,
                    checks.c.checked_at >= func.coalesce(nth_newest, oldest),
                ),
            )
        )
        .where(listed.c.id.in_(ids))
        .order_by(checks.c.email_server_id, checks.c.checked_at.desc(), checks.c.id.desc())
    )


def signals_by_server(session: Session, ids: Any, now: datetime) -> dict[str, ServerSignals]:
    """The signals of the servers ``ids`` (a list, or a SELECT of ids): two statements."""
    signals: dict[str, ServerSignals] = defaultdict(ServerSignals)
    for server_id, ok, at, detail in _latest_checks(session, ids):
        checks = signals[server_id].checks
        if len(checks) < FAILING_CHECKS:
            checks.append((bool(ok), at, detail))
    bad = DeliveryRow.status.in_(_BAD_STATUSES)
    day = session.execute(
        select(
            DeliveryRow.email_server_id,
            func.count(),
            func.sum(case((DeliveryRow.status.in_(_OK_STATUSES), 1), else_=0)),
            func.sum(case((bad, 1), else_=0)),
            func.min(case((bad, DeliveryRow.created_at), else_=None)),
        )
        .where(
            DeliveryRow.email_server_id.in_(ids),
            DeliveryRow.created_at >= now - WINDOW,
            DeliveryRow.history.is_(False),
        )
        .group_by(DeliveryRow.email_server_id)
    )
    for server_id, total, delivered, failed, first_bad in day:
        s = signals[server_id]
        s.deliveries, s.delivered, s.bad = int(total), int(delivered or 0), int(failed or 0)
        s.first_bad_at = _aware(first_bad)
    return signals


def _aware(value: Any) -> datetime | None:
    """An aggregate's time comes back raw (SQLite: a string, no zone); make it UTC-aware."""
    if value is None:
        return None
    moment = datetime.fromisoformat(value) if isinstance(value, str) else value
    assert isinstance(moment, datetime)
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def health_by_server(
    session: Session, settings_by_id: Mapping[str, Mapping[str, Any]], ids: Any, now: datetime
) -> dict[str, dict[str, Any]]:
    """Every listed server's health document."""
    signals = signals_by_server(session, ids, now)
    return {
        server_id: classify(
            signals.get(server_id, ServerSignals()), certificate_end(s), now, tested_next_end(s)
        )
        for server_id, s in settings_by_id.items()
    }
