"""Which stored servers hold secrets the current key cannot open, for the list to mark them.

Opening a sealed value costs ~13 µs; a list of 1,100 servers would pay 15 ms for it on every
call, and fetch 300 KB of sealed text it never shows. Whether a row opens changes only when
its sealed value is rewritten (a save, a rotation, another process) or the keys change (the
box's generation). The list reads the head of each sealed value, which holds its random IV
and so differs for every sealing; the answer is remembered per server id and head, and only
values not seen before are opened: the first listing after a start opens each row once,
later ones open none.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from .secrets import SecretBox
from .store.tables import EmailServerRow

_CHUNK = 500  # ids per IN (...) when fetching sealed values not seen yet
# A Fernet token's first 33 bytes (version, time, IV) in base64: unique per sealing.
_HEAD_CHARS = 44
#: The column a listing selects so that unchanged sealed values are not opened again.
SEALED_HEAD = func.substr(EmailServerRow.secrets_sealed, 1, _HEAD_CHARS).label("sealed_head")


class UnreadableSecrets:
    def __init__(self, box: SecretBox) -> None:
        self._box = box
        self._lock = threading.Lock()
        self._generation = box.generation
        # server id -> (head of the sealed value, the secret fields that do not open)
        self._known: dict[str, tuple[str | None, tuple[str, ...]]] = {}

    def __repr__(self) -> str:
        return f"UnreadableSecrets({len(self._known)} known)"

    def _fields(self, sealed: str | None, secrets_set: Mapping[str, bool]) -> tuple[str, ...]:
        if not sealed or self._box.opens(sealed):
            return ()
        return tuple(sorted(name for name, stored in secrets_set.items() if stored))

    def _fresh(self) -> None:
        if self._box.generation != self._generation:
            self._known.clear()
            self._generation = self._box.generation

    def of_row(self, row: EmailServerRow) -> list[str]:
        """The row's unreadable secret fields (the row holds its sealed value)."""
        with self._lock:
            self._fresh()
            head = row.secrets_sealed[:_HEAD_CHARS] if row.secrets_sealed else None
            known = self._known.get(row.id)
            if known is not None and known[0] == head:
                return list(known[1])
        fields = self._fields(row.secrets_sealed, row.secrets_set or {})
        with self._lock:
            self._known[row.id] = (head, fields)
        return list(fields)

    def of_rows(self, session: Session, rows: Iterable[Any]) -> dict[str, list[str]]:
        """For listed rows (with id, sealed_head and secrets_set): id -> unreadable fields,
        only for the servers that have any."""
        out: dict[str, list[str]] = {}
        unseen: list[Any] = []
        with self._lock:  # one pass over the rows: those seen before answer at once
            self._fresh()
            for r in rows:
                if not r.sealed_head:
                    continue
                known = self._known.get(r.id)
                if known is None or known[0] != r.sealed_head:
                    unseen.append(r)
                elif known[1]:
                    out[r.id] = list(known[1])
        if unseen:
            self._learn(session, [r.id for r in unseen])
            with self._lock:
                for r in unseen:
                    known = self._known.get(r.id)
                    if known is not None and known[0] == r.sealed_head and known[1]:
                        out[r.id] = list(known[1])
        return out

    def _learn(self, session: Session, ids: Sequence[str]) -> None:
        t = EmailServerRow.__table__
        conn = session.connection()
        for start in range(0, len(ids), _CHUNK):
            found = conn.execute(
                select(t.c.id, t.c.secrets_sealed, t.c.secrets_set).where(
                    t.c.id.in_(ids[start : start + _CHUNK])
                )
            ).all()
            learned = {
                ident: (
                    sealed[:_HEAD_CHARS] if sealed else None,
                    self._fields(sealed, secrets_set or {}),
                )
                for ident, sealed, secrets_set in found
            }
            with self._lock:
                self._known.update(learned)
