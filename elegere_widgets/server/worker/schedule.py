"""When a deferred message is tried again, and when it stops being tried."""

from __future__ import annotations

from datetime import datetime, timedelta

from ..config import Settings

__all__ = ["BACKOFF_S", "next_delay", "retry_deadline"]

#: 30 s, 2 min, 10 min, 30 min, 1 h, then hourly.
BACKOFF_S = (30.0, 120.0, 600.0, 1800.0, 3600.0)


def next_delay(deferrals: int, settings: Settings) -> timedelta:
    """The wait after the ``deferrals``-th deferral (1 for the first), scaled by retry_scale."""
    step = BACKOFF_S[min(max(deferrals, 1), len(BACKOFF_S)) - 1]
    return timedelta(seconds=step * settings.retry_scale)


def retry_deadline(created_at: datetime, settings: Settings) -> datetime:
    """After this a message that is still deferred fails with the last reply."""
    return created_at + timedelta(hours=settings.retry_hours * settings.retry_scale)
