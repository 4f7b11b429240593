"""What the service is built from: settings, store, keys and the egress guard."""

from __future__ import annotations

import ssl
import threading
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from ..connectivity.egress import EgressPolicy
from .config import Settings
from .files import warn_if_exposed
from .listed_documents import ListedDocuments
from .network_work import NetworkWork
from .queue import MessageQueue, NoQueue
from .rate_limit import RateLimiter, make_storage
from .receipts import ReceiptSigner
from .secrets import KeySource, SecretBox, load_keys
from .sign_in_throttle import SignInThrottle
from .store.db import holds_sealed_secrets, make_engine, make_read_sessionmaker, make_sessionmaker
from .unreadable import UnreadableSecrets
from .worker.queue import HueyQueue, build_huey


def open_keys(settings: Settings, engine: Engine) -> KeySource:
    """The check every command that needs the secret key makes before it starts.

    Raises MissingSecretKey (naming the key file and ELEGERE_SECRET_KEY) when the store holds
    sealed secrets and no key is given; makes a key only for a store without any. Warns when
    the key file or the embedded store can be read by other users.
    """
    source = load_keys(
        settings.secret_key,
        settings.data_dir,
        store_has_secrets=lambda: holds_sealed_secrets(engine),
    )
    files = [] if source.from_setting else [source.key_file]
    if engine.dialect.name == "sqlite" and engine.url.database not in (None, "", ":memory:"):
        db = Path(engine.url.database)
        files += [db.parent, db, db.with_name(db.name + "-wal"), db.with_name(db.name + "-shm")]
    warn_if_exposed(*dict.fromkeys(files))
    return source


@dataclass
class ServiceContext:
    settings: Settings
    engine: Engine
    sessions: sessionmaker[Session]
    #: For requests that only read (GET): they never queue behind writers on SQLite.
    read_sessions: sessionmaker[Session]
    box: SecretBox = field(repr=False)
    #: Which stored servers' secrets the key cannot open (the list marks them).
    unreadable: UnreadableSecrets = field(repr=False)
    receipts: ReceiptSigner = field(repr=False)
    egress: EgressPolicy
    test_limiter: RateLimiter
    sign_in_throttle: SignInThrottle
    #: Connection tests and test sends run here, never on the request threads.
    network: NetworkWork
    #: Wakes a worker when messages were accepted (see queue.py).
    queue: MessageQueue = field(default_factory=NoQueue)
    #: The listed servers' stored parts as JSON, made once while their rows stay the same.
    listed: ListedDocuments = field(default_factory=ListedDocuments, repr=False)
    _tls: ssl.SSLContext | None = field(default=None, init=False, repr=False)
    _tls_lock: threading.Lock = field(default_factory=threading.Lock, init=False, repr=False)

    @classmethod
    def build(cls, settings: Settings) -> ServiceContext:
        engine = make_engine(settings.resolved_database_url())
        try:
            source = open_keys(settings, engine)
            box = SecretBox(source)
        except BaseException:
            engine.dispose()
            raise
        limits = make_storage(settings)
        return cls(
            settings=settings,
            engine=engine,
            sessions=make_sessionmaker(engine),
            read_sessions=make_read_sessionmaker(engine),
            box=box,
            unreadable=UnreadableSecrets(box),
            receipts=ReceiptSigner(box.primary_key, settings.receipt_ttl_s),
            egress=EgressPolicy.from_strings(
                settings.egress_allow, settings.egress_allow_ports, settings.egress_deny
            ),
            test_limiter=RateLimiter(settings.test_rate_limit, settings.test_rate_window_s, limits),
            sign_in_throttle=SignInThrottle(
                limits,
                per_account=settings.sign_in_failures_per_account,
                per_address=settings.sign_in_failures_per_address,
                first_wait_s=settings.sign_in_first_wait_s,
                window_s=settings.sign_in_window_s,
            ),
            network=NetworkWork(
                settings.tests_at_once,
                settings.tests_at_once_per_scope,
                retry_after_s=settings.test_budget_s,
            ),
            queue=HueyQueue(build_huey(settings)),
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
