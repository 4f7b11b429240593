"""What the service is built from: settings, store, keys and the egress guard."""

from __future__ import annotations

import ssl
import threading
from dataclasses import dataclass, field

from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from ..connectivity.egress import EgressPolicy
from .config import Settings
from .queue import MessageQueue, NoQueue
from .rate_limit import RateLimiter
from .receipts import ReceiptSigner
from .secrets import SecretBox, load_keys
from .store.db import make_engine, make_read_sessionmaker, make_sessionmaker


@dataclass
class ServiceContext:
    settings: Settings
    engine: Engine
    sessions: sessionmaker[Session]
    #: For requests that only read (GET): they never queue behind writers on SQLite.
    read_sessions: sessionmaker[Session]
    box: SecretBox = field(repr=False)
    receipts: ReceiptSigner = field(repr=False)
    egress: EgressPolicy
    test_limiter: RateLimiter
    #: Wakes a worker when messages were accepted (see queue.py).
    queue: MessageQueue = field(default_factory=NoQueue)
    _tls: ssl.SSLContext | None = field(default=None, init=False, repr=False)
    _tls_lock: threading.Lock = field(default_factory=threading.Lock, init=False, repr=False)

    @classmethod
    def build(cls, settings: Settings) -> ServiceContext:
        engine = make_engine(settings.resolved_database_url())
        keys = load_keys(settings.secret_key, settings.data_dir)
        return cls(
            settings=settings,
            engine=engine,
            sessions=make_sessionmaker(engine),
            read_sessions=make_read_sessionmaker(engine),
            box=SecretBox(keys),
            receipts=ReceiptSigner(keys[0], settings.receipt_ttl_s),
            egress=EgressPolicy.from_strings(
                settings.egress_allow, settings.egress_allow_ports, settings.egress_deny
            ),
            test_limiter=RateLimiter(settings.test_rate_limit, settings.test_rate_window_s),
        )

    def ssl_context(self) -> ssl.SSLContext:
        """Verifying TLS context: the system trust store (SSL_CERT_FILE), plus smtp_ca_file.

        Built once and shared (an SSLContext is safe to use from several threads): loading the
        trust store takes about 70 ms of CPU, ten times a whole SMTP test on a local network,
        and happens before a test's time budget starts. The lock keeps the first tests of a new
        process from each loading it.
        """
        with self._tls_lock:
            if self._tls is None:
                ctx = ssl.create_default_context()
                if self.settings.smtp_ca_file:
                    ctx.load_verify_locations(cafile=str(self.settings.smtp_ca_file))
                self._tls = ctx
            return self._tls
