"""Reaching email servers for the service: connection tests and sending.

Called only by the service; no FastAPI, no database, no widgets here. Every connection goes
through an ``EgressPolicy`` and a time budget, and reports what happened as ``Stage``s.
"""

from .egress import EgressPolicy, EgressRefused, ResolveFailed
from .smtp import IMPLICIT_TLS_PORTS, SendOutcome, send_smtp, test_smtp
from .stages import Budget, Failure, StageFailed, StageRecorder

__all__ = [
    "IMPLICIT_TLS_PORTS",
    "Budget",
    "EgressPolicy",
    "EgressRefused",
    "Failure",
    "ResolveFailed",
    "SendOutcome",
    "StageFailed",
    "StageRecorder",
    "send_smtp",
    "test_smtp",
]
