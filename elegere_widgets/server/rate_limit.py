"""Per-user limits on connection tests and test sends: they open sockets to places users
choose, so they must not become a scanner. In memory, per service process."""

from __future__ import annotations

import math
import threading
import time
from collections import defaultdict, deque
from collections.abc import Callable

from ..errors import RateLimited


class RateLimiter:
    """At most ``limit`` calls per ``window_s`` seconds for each key (a sliding window)."""

    def __init__(
        self, limit: int, window_s: float, *, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.limit = limit
        self.window_s = window_s
        self._clock = clock
        self._calls: dict[str, deque[float]] = defaultdict(deque)
        self._lock = threading.Lock()

    def hit(self, key: str, what: str) -> None:
        """Count one call, or raise RateLimited saying when to try again."""
        now = self._clock()
        with self._lock:
            calls = self._calls[key]
            while calls and calls[0] <= now - self.window_s:
                calls.popleft()
            if len(calls) >= self.limit:
                retry_after = max(1, math.ceil(calls[0] + self.window_s - now))
                raise RateLimited(
                    f"Too many {what} in a short time ({self.limit} per "
                    f"{self.window_s:g} s); try again in {retry_after} s.",
                    retry_after=retry_after,
                )
            calls.append(now)
