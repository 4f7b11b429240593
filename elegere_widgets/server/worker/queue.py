"""The Huey queue: a SQLite file in the data directory, or Redis for several machines.

One task, ``deliver(message_ids)``. The service enqueues it (``HueyQueue.signal``); the
worker registers the function that runs it (``build_huey(settings, deliver=…)``). An entry
carries only ids, up to ``ENTRY_SIZE`` of them: everything else is read from the store when
it runs. One entry per message cost a queue transaction and a lease transaction per message;
one per batch lets a thread lease the batch at once and send it over one connection, while
several entries keep every thread busy when a large batch is submitted.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence

from huey import Huey, RedisHuey, SqliteHuey

from ..config import Settings
from ..files import private_file

__all__ = ["DELIVER_TASK", "ENTRY_SIZE", "HueyQueue", "build_huey", "queue_description"]

log = logging.getLogger(__name__)

#: The task's name in the queue: fixed, so the service and any worker version agree on it.
DELIVER_TASK = "elegere.deliver"
QUEUE_NAME = "elegere"
#: Message ids per queue entry.
ENTRY_SIZE = 25

Deliver = Callable[[list[str]], None]


def _not_a_worker(message_ids: list[str]) -> None:
    # Only a process built with deliver= runs tasks; reaching this is a wiring mistake.
    raise RuntimeError("this process enqueues messages but does not deliver them")


def build_huey(settings: Settings, *, deliver: Deliver | None = None) -> Huey:
    """The queue named by ``settings.queue_url`` (redis://…), else ``<data_dir>/queue.db``."""
    url = settings.queue_url
    huey: Huey
    if url:
        if not url.startswith(("redis://", "rediss://", "unix://")):
            raise ValueError(
                f"ELEGERE_QUEUE_URL {url!r} is not a Redis URL: use redis://host:6379/0, or "
                "leave it unset for the embedded queue (a SQLite file in the data directory)."
            )
        huey = RedisHuey(QUEUE_NAME, url=url, results=False)
    else:
        path = (settings.data_dir / "queue.db").resolve()
        private_file(path)  # it names the messages to send: the owner's alone, as the store
        huey = SqliteHuey(QUEUE_NAME, filename=str(path), results=False)
    run = deliver or _not_a_worker

    def deliver_task(message_ids: list[str] | str) -> None:
        # A single id: an entry written before entries carried batches.
        run([message_ids] if isinstance(message_ids, str) else list(message_ids))

    # Defined here whatever ``deliver`` is: the entry's name includes this module's, so the
    # service's entries and the worker's task agree.
    huey.elegere_deliver = huey.task(name=DELIVER_TASK)(deliver_task)
    return huey


def queue_description(settings: Settings) -> str:
    """Where the queue is, for logs and the CLI (a Redis URL without its password)."""
    if settings.queue_url:
        scheme, _, rest = settings.queue_url.partition("://")
        return f"{scheme}://{rest.rpartition('@')[2]}"
    return str((settings.data_dir / "queue.db").resolve())


class HueyQueue:
    """``MessageQueue`` over Huey: one ``deliver`` entry per ``ENTRY_SIZE`` message ids."""

    def __init__(self, huey: Huey) -> None:
        self.huey = huey
        self._deliver = huey.elegere_deliver

    def signal(self, message_ids: Sequence[str]) -> None:
        """Enqueue the ids in entries of ``ENTRY_SIZE``; never raises: the sweep finds whatever
        was not enqueued."""
        ids = list(message_ids)
        for start in range(0, len(ids), ENTRY_SIZE):
            batch = ids[start : start + ENTRY_SIZE]
            try:
                self.huey.enqueue(self._deliver.s(batch))
            except Exception as exc:  # the queue is only a signal
                log.warning(
                    "Could not enqueue messages %s… (%s): the worker's sweep will find them; "
                    "check that the queue (%s) is reachable.",
                    batch[0],
                    exc,
                    type(self.huey.storage).__name__,
                )
                return

    def pending(self) -> int:
        """Entries waiting to be taken (the sweep adds none while workers have these)."""
        return int(self.huey.pending_count())
