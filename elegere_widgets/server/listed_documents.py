"""The JSON of each listed server's stored part, remembered by the stored values it was made from.

A listing of 1,100 servers spent most of its time turning rows into JSON: decoding three JSON
columns, allow-listing the settings, building a document and serializing it, the same work on
every call for rows that had not changed. A server's document is a function of its row, except
for what a listing adds (whether it is inherited, its usage, unreadable secrets, its health) and
a certificate's days left, which change with the clock. So the listing selects the JSON columns
as their stored text and looks each row up by all the values its document is made from: a row
seen before gives back its JSON as it was made; a row whose values changed in any way (a save, a
check, another process) is a new key and is made afresh. Rows with a certificate are never
remembered (their days left are derived when read).

Bounded: past ``limit`` rows, the oldest half is forgotten.
"""

from __future__ import annotations

import threading
from collections.abc import Hashable

__all__ = ["ListedDocuments"]


class ListedDocuments:
    def __init__(self, limit: int = 50_000) -> None:
        self._limit = limit
        self._lock = threading.Lock()
        # server id -> (the stored values its JSON was made from, that JSON)
        self._known: dict[str, tuple[Hashable, bytes]] = {}

    def __repr__(self) -> str:
        return f"ListedDocuments({len(self._known)} known)"

    def get(self, server_id: str, stored: Hashable) -> bytes | None:
        """The JSON made for the row ``server_id`` when it held these ``stored`` values, if
        it still does."""
        known = self._known.get(server_id)
        return known[1] if known is not None and known[0] == stored else None

    def put(self, server_id: str, stored: Hashable, made: bytes) -> None:
        """Remember the JSON made from a row with these ``stored`` values."""
        with self._lock:
            if len(self._known) >= self._limit:
                for old in list(self._known)[: self._limit // 2]:
                    del self._known[old]
            self._known[server_id] = (stored, made)
