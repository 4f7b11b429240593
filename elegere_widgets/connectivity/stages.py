"""Time budget and stage recording shared by the connection tests (SMTP and Graph).

A test runs as a sequence of named stages. Each runs inside ``StageRecorder.stage(name)``:
the block sets ``detail``/``code`` on success; any exception fails the stage, is turned into a
``Failure`` (detail, hint, code) by the protocol's ``explain`` function, and stops the test by
raising ``StageFailed``. ``result()`` then builds the ``ConnectionTestResult``. Every detail and
hint passes through ``redact`` before it is stored, logged or reported: a server that echoes
what it was sent must not put a secret into a result.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from types import TracebackType

from ..models import ConnectionTestResult, ServerType, Stage

__all__ = ["Budget", "Failure", "StageFailed", "StageRecorder", "StageScope"]

log = logging.getLogger(__name__)

Clock = Callable[[], float]


class Budget:
    """A deadline: the whole test must end ``seconds`` after it started."""

    def __init__(self, seconds: float, *, clock: Clock = time.monotonic) -> None:
        if seconds <= 0:
            raise ValueError("A time budget must be positive.")
        self.seconds = seconds
        self._clock = clock
        self.started = clock()
        self.deadline = self.started + seconds

    def remaining(self) -> float:
        """Seconds left, never negative."""
        return max(0.0, self.deadline - self._clock())

    @property
    def expired(self) -> bool:
        return self._clock() >= self.deadline

    def elapsed_ms(self) -> int:
        return int((self._clock() - self.started) * 1000)

    def describe(self) -> str:
        """The budget as people read it: "15 s", "2.5 s"."""
        return f"{self.seconds:g} s"


@dataclass
class Failure:
    """Why a stage failed, in words a person can act on."""

    detail: str
    hint: str | None = None
    code: str | None = None


class StageFailed(Exception):
    """Raised to fail the current stage with a prepared ``Failure``; stops the test."""

    def __init__(self, failure: Failure) -> None:
        super().__init__(failure.detail)
        self.failure = failure


@dataclass
class StageScope:
    """What the body of a stage reports when it succeeds."""

    detail: str = ""
    code: str | None = None


Explain = Callable[[str, BaseException], Failure]


def _unexplained(stage: str, exc: BaseException) -> Failure:
    return Failure(detail=str(exc) or type(exc).__name__)


class _StageRun:
    """One stage in progress: a context manager (a class rather than a generator: it runs
    for every stage of every test and delivery)."""

    __slots__ = ("name", "recorder", "scope", "started")

    def __init__(self, recorder: StageRecorder, name: str) -> None:
        self.recorder = recorder
        self.name = name
        self.scope = StageScope()
        self.started = recorder._clock()

    def __enter__(self) -> StageScope:
        return self.scope

    def __exit__(
        self,
        kind: type[BaseException] | None,
        exc: BaseException | None,
        _tb: TracebackType | None,
    ) -> None:
        rec, name = self.recorder, self.name
        if exc is None:
            rec._passed(name, self.started, self.scope)
            return
        if isinstance(exc, StageFailed):
            raise StageFailed(rec._fail(name, self.started, exc.failure)) from None
        if isinstance(exc, Exception):
            raise StageFailed(rec._fail(name, self.started, rec._explain(name, exc))) from None
        # KeyboardInterrupt and the like pass as they are


class StageRecorder:
    """Times stages in milliseconds and collects them as ``Stage`` models."""

    def __init__(
        self,
        server_type: ServerType,
        *,
        explain: Explain = _unexplained,
        progress: Callable[[Stage], None] | None = None,
        redact: Callable[[str], str] | None = None,
        clock: Clock = time.monotonic,
    ) -> None:
        self.server_type: ServerType = server_type
        self.stages: list[Stage] = []
        self._explain = explain
        self._progress = progress
        self._redact = redact or (lambda text: text)
        self._clock = clock
        self._started = clock()

    def stage(self, name: str) -> _StageRun:
        """Run one stage (``with recorder.stage(name) as st:``); an exception in the block
        fails it and becomes ``StageFailed``.

        The ``StageFailed`` that leaves carries the redacted failure and no cause: the original
        exception may quote a server that echoed a secret, so it goes no further than here.
        """
        return _StageRun(self, name)

    def _passed(self, name: str, started: float, scope: StageScope) -> None:
        # Validated like any other: pydantic-core's constructor takes half the time of
        # model_construct, whose field loop is Python (this runs for every stage of every test
        # and delivery).
        self._store(
            Stage(
                name=name,
                ok=True,
                elapsed_ms=self._since(started),
                detail=self._redact(scope.detail),
                hint=None,
                code=scope.code,
            )
        )

    def _since(self, started: float) -> int:
        return int((self._clock() - started) * 1000)

    def _fail(self, name: str, started: float, failure: Failure) -> Failure:
        """Store a failed stage; returns the failure as stored (redacted)."""
        redacted = Failure(
            detail=self._redact(failure.detail),
            hint=self._redact(failure.hint) if failure.hint is not None else None,
            code=failure.code,
        )
        self._store(
            Stage(
                name=name,
                ok=False,
                elapsed_ms=self._since(started),
                detail=redacted.detail,
                hint=redacted.hint,
                code=redacted.code,
            )
        )
        return redacted

    def _store(self, stage: Stage) -> None:
        self.stages.append(stage)
        log.debug(
            "%s stage %s %s in %d ms: %s",
            self.server_type,
            stage.name,
            "ok" if stage.ok else "failed",
            stage.elapsed_ms,
            stage.detail,
        )
        if self._progress is not None:
            self._progress(stage)

    @property
    def failed(self) -> Stage | None:
        return next((s for s in self.stages if not s.ok), None)

    @property
    def ok(self) -> bool:
        return bool(self.stages) and all(s.ok for s in self.stages)

    def elapsed_ms(self) -> int:
        return int((self._clock() - self._started) * 1000)

    def result(self) -> ConnectionTestResult:
        """The whole test: ok when every stage passed. ``test_token`` is the service's to add."""
        return ConnectionTestResult(
            ok=self.ok,
            server_type=self.server_type,
            elapsed_ms=self.elapsed_ms(),
            stages=list(self.stages),
            test_token=None,
        )
