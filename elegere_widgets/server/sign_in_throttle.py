"""Wrong passwords slow down whoever sends them: by account and by client address.

After ``allowed`` failures within ``window_s``, sign-in for that account (or from that address)
pauses for ``first_wait_s``; every further failure doubles the pause, up to ``window_s``. While
paused, not even the right password is checked: a guesser learns nothing. A success clears
the account's count (not the address's: a guesser's own account must not reset it).

Counted in the limits storage (see ``rate_limit``), so every service process sees the same
counts.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from limits.storage import Storage

from ..errors import RateLimited
from .rate_limit import PREFIX, retry_after_s


class SignInPaused(RateLimited):
    """Sign-in refused before the password was checked."""


@dataclass(frozen=True)
class _Counter:
    kind: str  # "account" or "address"
    allowed: int

    def key(self, who: str) -> str:
        # Hashed: the storage needs no list of email addresses.
        digest = hashlib.sha256(who.encode()).hexdigest()[:32]
        return f"{PREFIX}:sign-in:{self.kind}:{digest}"


class SignInThrottle:
    def __init__(
        self,
        storage: Storage,
        *,
        per_account: int,
        per_address: int,
        first_wait_s: int,
        window_s: int,
    ) -> None:
        self.storage = storage
        self.account = _Counter("account", per_account)
        self.address = _Counter("address", per_address)
        self.first_wait_s = first_wait_s
        self.window_s = window_s

    def check(self, account: str, address: str) -> None:
        """Raise SignInPaused when this account or this address must wait."""
        who = account.strip().lower()
        wait = self._paused_until(self.account, who)
        if wait is not None:
            seconds = retry_after_s(wait)
            raise SignInPaused(
                f"Too many wrong passwords for {account.strip()}: its sign-in is paused, even "
                f"with the right password. Try again in {seconds} s.",
                retry_after=seconds,
            )
        wait = self._paused_until(self.address, address)
        if wait is not None:
            seconds = retry_after_s(wait)
            raise SignInPaused(
                "Too many wrong passwords from your network address: sign-in from it is "
                f"paused. Try again in {seconds} s.",
                retry_after=seconds,
            )

    def failed(self, account: str, address: str) -> None:
        self._count(self.account, account.strip().lower())
        self._count(self.address, address)

    def succeeded(self, account: str) -> None:
        key = self.account.key(account.strip().lower())
        self.storage.clear(key)

    def _count(self, counter: _Counter, who: str) -> None:
        key = counter.key(who)
        failures = self.storage.incr(key, self.window_s)
        over = failures - counter.allowed
        if over >= 0:
            wait = min(self.first_wait_s * 2 ** min(over, 30), self.window_s)
            # One pause per failure count: a new one starts with the failure that earned it.
            self.storage.incr(f"{key}:paused:{failures}", wait)

    def _paused_until(self, counter: _Counter, who: str) -> float | None:
        key = counter.key(who)
        failures = int(self.storage.get(key))
        if failures < counter.allowed:
            return None
        pause = f"{key}:paused:{failures}"
        if int(self.storage.get(pause)) <= 0:
            return None
        return self.storage.get_expiry(pause)
