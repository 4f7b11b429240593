"""What one attempt did to each recipient, in terms the store records."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Literal

__all__ = ["Attempt", "Outcome", "RecipientResult"]

#: sent: the server took it; failed: refused for good (5xx); deferred: try again later.
Outcome = Literal["sent", "failed", "deferred"]


@dataclass(frozen=True)
class RecipientResult:
    outcome: Outcome
    code: int | None
    reply: str
    #: Where it ended for this recipient ("recipient" for a refused RCPT); None: the attempt's.
    stage: str | None = None


@dataclass
class Attempt:
    """One try at one server: a result per recipient tried, and where the attempt ended.

    ``server_failed`` marks an attempt the server could not take at all (connection, TLS,
    login, sender refused, a 4xx): two in a row send the message to the server's fallback.
    Recipients not in ``results`` were not tried and stay pending.
    """

    results: dict[str, RecipientResult] = field(default_factory=dict)
    stage: str = "data"
    code: int | None = None
    reply: str = ""
    server_failed: bool = False
    #: Applies to every pending recipient when ``results`` is empty (a server failure).
    everyone: RecipientResult | None = None

    @classmethod
    def server_failure(cls, *, stage: str, code: int | None, reply: str) -> Attempt:
        return cls(
            stage=stage,
            code=code,
            reply=reply,
            server_failed=True,
            everyone=RecipientResult("deferred", code, reply),
        )

    @classmethod
    def refused_all(
        cls, recipients: Iterable[str], *, stage: str, code: int | None, reply: str
    ) -> Attempt:
        result = RecipientResult("failed", code, reply)
        return cls({r: result for r in recipients}, stage=stage, code=code, reply=reply)

    @classmethod
    def of(cls, results: Mapping[str, RecipientResult], *, stage: str) -> Attempt:
        """The attempt's reply: the last non-sent one (the one to act on), else a sent one."""
        ordered = sorted(results.values(), key=lambda r: r.outcome == "sent")
        last = ordered[0] if ordered else RecipientResult("deferred", None, "")
        deferred = any(r.outcome == "deferred" for r in results.values())
        return cls(
            dict(results),
            stage=(last.stage or stage) if last.outcome != "sent" else stage,
            code=last.code,
            reply=last.reply,
            server_failed=deferred,
        )

    def for_recipients(self, pending: Iterable[str]) -> dict[str, RecipientResult]:
        if self.everyone is not None:
            return {r: self.everyone for r in pending}
        return {r: self.results[r] for r in pending if r in self.results}
