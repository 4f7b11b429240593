"""Limits that every service process shares: per-user budgets of connection tests and test
sends (they open sockets to places users choose, so they must not become a scanner) and the
sign-in throttle.

Counted by the ``limits`` library in one storage: process memory when there is one process
(the default), Redis when ``ELEGERE_LIMITS_URL`` (or a ``redis://`` ``ELEGERE_QUEUE_URL``) names
one, so that N replicas do not give each user N budgets.
"""

from __future__ import annotations

import logging
import math
import time

from limits import RateLimitItem, RateLimitItemPerSecond
from limits.storage import MovingWindowSupport, Storage, storage_from_string
from limits.strategies import MovingWindowRateLimiter

from ..errors import RateLimited
from .config import Settings

logger = logging.getLogger(__name__)

MEMORY = "memory://"
#: Every key this service writes starts with this (a Redis database may be shared).
PREFIX = "elegere"


def limits_url(settings: Settings) -> str:
    """Where limits are counted: the limits store, else a Redis queue's, else memory."""
    if settings.limits_url:
        return settings.limits_url
    queue = settings.queue_url or ""
    if queue.startswith(("redis://", "rediss://", "unix://")):
        return queue
    return MEMORY


def make_storage(settings: Settings) -> Storage:
    url = limits_url(settings)
    options: dict[str, str] = {}
    if url.startswith(("redis://", "rediss://", "unix://")):
        options["key_prefix"] = f"{PREFIX}:limits"  # a Redis database may be shared
    storage = storage_from_string(url, **options)
    if not isinstance(storage, Storage):  # an async storage (async+redis://...)
        raise ValueError(f"ELEGERE_LIMITS_URL {url!r}: use a synchronous storage, e.g. redis://")
    return storage


def per_process_warning(settings: Settings) -> str | None:
    """Why limits would not hold across replicas, when they would not; else None.

    SQLite allows one process on one machine, so memory is right there; a server database
    invites replicas, whose limits are shared only through a shared limits store.
    """
    if settings.resolved_database_url().startswith("sqlite") or limits_url(settings) != MEMORY:
        return None
    return (
        "Rate limits and the sign-in throttle are counted in this process only: with more than "
        "one service process each gets the whole budget. Set ELEGERE_LIMITS_URL=redis://... to "
        "share them."
    )


def retry_after_s(reset_at: float) -> int:
    """Whole seconds until ``reset_at`` (a ``time.time()``), at least 1."""
    return max(1, math.ceil(reset_at - time.time()))


class RateLimiter:
    """At most ``limit`` calls per ``window_s`` seconds for each key (a moving window)."""

    def __init__(self, limit: int, window_s: float, storage: Storage | None = None) -> None:
        self.item: RateLimitItem = RateLimitItemPerSecond(limit, max(1, math.ceil(window_s)))
        self.storage = storage if storage is not None else storage_from_string(MEMORY)
        if not isinstance(self.storage, MovingWindowSupport):
            raise ValueError(f"{type(self.storage).__name__} cannot count a moving window")
        self._strategy = MovingWindowRateLimiter(self.storage)

    def hit(self, key: str, what: str) -> None:
        """Count one call, or raise RateLimited saying when to try again."""
        if self._strategy.hit(self.item, PREFIX, key):
            return
        stats = self._strategy.get_window_stats(self.item, PREFIX, key)
        retry_after = retry_after_s(stats.reset_time)
        window = self.item.get_expiry()
        raise RateLimited(
            f"Too many {what} in a short time ({self.item.amount} per {window:g} s); "
            f"try again in {retry_after} s.",
            retry_after=retry_after,
        )
