"""The signal that messages are due: the queue wakes a worker, the store stays the truth.

The service calls ``signal`` after the transaction that accepted the messages has committed.
A lost signal costs only time: the worker's sweep finds every due message in the store.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol


class MessageQueue(Protocol):
    def signal(self, message_ids: Sequence[str]) -> None:
        """Wake a worker for these messages (best effort; never raises)."""


class NoQueue:
    """No worker to wake (tests of the API alone): the sweep alone would find the messages."""

    def signal(self, message_ids: Sequence[str]) -> None:
        return None
