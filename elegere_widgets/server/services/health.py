"""A server's health, computed when read from its checks, deliveries and certificate.

- **expired**: its certificate (Graph ``certificate_info.not_after``) has passed;
- **failing**: its last three checks failed, or nothing it sent in 24 h was delivered while
  messages failed or were deferred;
- **expiring**: its certificate expires within 30 days, unless a next certificate that
  expires later has passed its test (it only waits to be promoted);
- **degraded**: its last check failed, or more than 10 % of the last 24 h's deliveries
  failed or were deferred;
- **healthy** otherwise.

A server's checks are summed up on its row as each is recorded (``CheckSummary``); a listing
computes the health of every server with one more statement (the day's deliveries of the
servers that had one go wrong), whatever the number of servers.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any, NamedTuple

from sqlalchemy import case, func, select, text
from sqlalchemy.orm import Session

from ..store.tables import GONE_WRONG, DeliveryRow, stored_time
from .next_certificate import tested_next_end

__all__ = [
    "EXPIRY_WARNING_DAYS",
    "FAILING_CHECKS",
    "NO_DELIVERIES",
    "CheckSummary",
    "DeliveryTally",
    "classify",
    "day_of_deliveries",
    "health_by_server",
    "health_of",
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


class CheckSummary(NamedTuple):
    """A server's checks as its row sums them up: when the last one ran and what it said, how
    many failed in a row up to it (0: it passed), and when the first of those ran."""

    last_at: datetime | None = None
    last_detail: str | None = None
    failed: int = 0
    failing_since: datetime | None = None

    @classmethod
    def of(cls, row: Any) -> CheckSummary:
        """From a stored server (a row, or a listed row with the same columns)."""
        return cls(
            row.last_checked_at, row.last_check_detail, row.failed_checks or 0, row.failing_since
        )


class DeliveryTally(NamedTuple):
    """A server's deliveries of the last 24 hours: how many, delivered, failed or deferred, and
    when the first of those went wrong."""

    deliveries: int = 0
    delivered: int = 0
    bad: int = 0
    first_bad_at: datetime | None = None


NO_DELIVERIES = DeliveryTally()


def certificate_end(settings: Mapping[str, Any]) -> datetime | None:
    info = settings.get("certificate_info")
    if not info or not info.get("not_after"):
        return None
    return datetime.fromisoformat(str(info["not_after"]))


def _health(status: str, since: datetime | None, reason: str) -> dict[str, Any]:
    return {"status": status, "since": since, "reason": reason}


def classify(
    checks: CheckSummary,
    day: DeliveryTally,
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
    if checks.failed >= FAILING_CHECKS:
        return _health(
            "failing",
            checks.failing_since,
            f"The last {FAILING_CHECKS} checks failed; the latest {checks.last_detail}.",
        )
    if day.bad and not day.delivered:
        return _health(
            "failing",
            day.first_bad_at,
            f"Nothing was delivered in 24 h; {day.bad} attempt(s) failed or were deferred.",
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
    if checks.failed:
        return _health("degraded", checks.last_at, f"The last check {checks.last_detail}.")
    if day.deliveries and day.bad / day.deliveries > DEGRADED_SHARE:
        share = round(100 * day.bad / day.deliveries)
        return _health(
            "degraded",
            day.first_bad_at,
            f"{share} % of the last 24 h's {day.deliveries} deliveries failed or were deferred.",
        )
    if checks.last_at is not None:
        return _health("healthy", checks.last_at, "The last check passed.")
    return _health("healthy", None, "No check has failed.")


def day_of_deliveries(session: Session, ids: Any, now: datetime) -> dict[str, DeliveryTally]:
    """The last 24 hours of deliveries of those servers ``ids`` (a list, or a SELECT of ids)
    that had one go wrong in them, in one statement. The others are left out: their
    deliveries cannot make them degraded or failing, and counting every server's day cost a
    listing of 1,100 servers more than its own query (migration 0009)."""
    since = now - WINDOW
    wrong = DeliveryRow.__table__.alias("wrong")
    gone_wrong = (
        select(wrong.c.email_server_id)
        .where(wrong.c.email_server_id.in_(ids), wrong.c.created_at >= since, text(GONE_WRONG))
        .distinct()
    )
    bad = DeliveryRow.status.in_(_BAD_STATUSES)
    day = session.connection().execute(
        select(
            DeliveryRow.email_server_id,
            func.count(),
            func.sum(case((DeliveryRow.status.in_(_OK_STATUSES), 1), else_=0)),
            func.sum(case((bad, 1), else_=0)),
            func.min(case((bad, DeliveryRow.created_at), else_=None)),
        )
        .where(
            DeliveryRow.email_server_id.in_(gone_wrong),
            DeliveryRow.created_at >= since,
            DeliveryRow.history.is_(False),
        )
        .group_by(DeliveryRow.email_server_id)
    )
    return {
        server_id: DeliveryTally(
            int(total), int(delivered or 0), int(failed or 0), stored_time(first)
        )
        for server_id, total, delivered, failed, first in day
    }


def health_of(
    settings: Mapping[str, Any], checks: CheckSummary, day: DeliveryTally, now: datetime
) -> dict[str, Any]:
    """A server's health document from its settings (its certificates), checks and day."""
    return classify(checks, day, certificate_end(settings), now, tested_next_end(settings))


def health_by_server(
    session: Session,
    servers: Mapping[str, tuple[Mapping[str, Any], CheckSummary]],
    ids: Any,
    now: datetime,
) -> dict[str, dict[str, Any]]:
    """The health document of each of ``servers``: id -> (its settings, its checks)."""
    days = day_of_deliveries(session, ids, now)
    return {
        server_id: health_of(settings, checks, days.get(server_id, NO_DELIVERIES), now)
        for server_id, (settings, checks) in servers.items()
    }
