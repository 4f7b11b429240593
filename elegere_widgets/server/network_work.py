"""Where connection tests and test sends run: a thread pool of their own, never the one that
serves requests, with a cap on how many run at once in all and for one workspace.

A test can wait its whole budget on a server that accepts and never speaks; sixty of them on
the request threads left nothing to answer `GET /me`. Beyond a cap a test is refused at once
(429 with Retry-After) rather than queued: a queue would hold the caller's request open for
as long as the tests ahead of it hang.
"""

from __future__ import annotations

import asyncio
import math
import threading
from collections import Counter
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import TypeVar

from ..errors import RateLimited

T = TypeVar("T")


class Slot:
    """One running test's place; released once, however often ``release`` is called."""

    def __init__(self, owner: NetworkWork, scope_key: str) -> None:
        self._owner = owner
        self._scope_key = scope_key
        self._released = False

    def release(self) -> None:
        self._owner._release(self)


class NetworkWork:
    def __init__(self, total: int, per_scope: int, *, retry_after_s: float) -> None:
        self.total = total
        self.per_scope = per_scope
        self.retry_after = max(1, math.ceil(retry_after_s))
        self._running: Counter[str] = Counter()
        self._lock = threading.Lock()
        # As many threads as tests may run: a test that got a slot never waits for a thread.
        self._pool = ThreadPoolExecutor(max_workers=total, thread_name_prefix="network-test")

    def take(self, scope_key: str, scope_label: str) -> Slot:
        """A place for one test of ``scope_key``, or RateLimited saying what to do."""
        with self._lock:
            if self._running[scope_key] >= self.per_scope:
                raise RateLimited(
                    f"{self.per_scope} connection tests or test messages are already running "
                    f"for {scope_label}, the most at once; wait for one to finish and try "
                    f"again in {self.retry_after} s.",
                    retry_after=self.retry_after,
                )
            if self._running.total() >= self.total:
                raise RateLimited(
                    f"The service is running its most connection tests and test messages at "
                    f"once ({self.total}); try again in {self.retry_after} s.",
                    retry_after=self.retry_after,
                )
            self._running[scope_key] += 1
            return Slot(self, scope_key)

    def _release(self, slot: Slot) -> None:
        with self._lock:
            if slot._released:
                return
            slot._released = True
            self._running[slot._scope_key] -= 1
            if self._running[slot._scope_key] <= 0:
                del self._running[slot._scope_key]

    def running(self) -> int:
        with self._lock:
            return self._running.total()

    def submit(self, slot: Slot, fn: Callable[[], T]) -> Future[T]:
        """Run ``fn`` on the pool; the slot is free again when it ends (or never starts)."""
        try:
            future = self._pool.submit(fn)
        except BaseException:
            slot.release()
            raise
        future.add_done_callback(lambda _f: slot.release())
        return future

    async def run(self, slot: Slot, fn: Callable[[], T]) -> T:
        """``fn`` on the pool, awaited: the event loop and request threads stay free."""
        return await asyncio.wrap_future(self.submit(slot, fn))

    def shutdown(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)
