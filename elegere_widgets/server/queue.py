"""The signal that messages are due: the queue wakes a worker, the store stays the truth.

The service calls ``signal`` after the transaction that accepted the messages has committed.
A lost signal costs only time: the worker's sweep finds every due message in the store.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from typing import Protocol


class MessageQueue(Protocol):
    def signal(self, message_ids: Sequence[str]) -> None:
        """Wake a worker for these messages (best effort; never raises)."""


class NoQueue:
    """No worker to wake (tests of the API alone): the sweep alone would find the messages."""

    def signal(self, message_ids: Sequence[str]) -> None:
        return None


class SignalsInBackground:
    """``signal`` hands the ids to one thread of this process, which signals ``queue``: a
    request that accepted messages answers without waiting for the queue (on SQLite a file of
    its own, which a worker taking entries holds for a moment). Ids handed over meanwhile go
    together, as fewer entries. A process that dies before its thread signalled loses only
    signals, which cost time and never mail: the sweep finds every due message in the store.
    """

    def __init__(self, queue: MessageQueue) -> None:
        self.queue = queue
        self._pending: list[str] = []
        self._wake = threading.Condition()
        self._thread: threading.Thread | None = None

    def signal(self, message_ids: Sequence[str]) -> None:
        if not message_ids:
            return
        with self._wake:
            self._pending.extend(message_ids)
            if self._thread is None:  # started with the first signal: none at import time
                self._thread = threading.Thread(
                    target=self._run, name="elegere-queue-signals", daemon=True
                )
                self._thread.start()
            self._wake.notify()

    def _run(self) -> None:
        while True:
            with self._wake:
                while not self._pending:
                    self._wake.wait()
                ids, self._pending = self._pending, []
            self.queue.signal(ids)  # never raises (MessageQueue's promise)
