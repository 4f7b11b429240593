"""Shared fixtures: the real service over HTTP on loopback, on SQLite and (when configured)
PostgreSQL, seeded with the demo data."""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from elegere_widgets.client import Client

if TYPE_CHECKING:
    from tests.fixtures.certs import Pki
    from tests.fixtures.graph_certs import CertAndKey
    from tests.fixtures.identity_provider import App, IdentityProvider, Tenant
    from tests.fixtures.service import RunningService
    from tests.fixtures.shared_service import SharedServices
    from tests.fixtures.smtp import SmtpPeer

PG_ENV = "ELEGERE_TEST_DATABASE_URL"
REDIS_ENV = "ELEGERE_TEST_REDIS_URL"
ADMIN = "admin@acme.example"
DELEGATE = "delegate@acme.example"
ANALYST = "analyst@acme.example"


READ_ONLY = "read_only"


def pytest_configure(config: pytest.Config) -> None:
    from tests.fixtures.parallel import use_this_workers_stores

    use_this_workers_stores(PG_ENV, REDIS_ENV)
    config.addinivalue_line(
        "markers",
        f"{READ_ONLY}: the test only reads the demo data, so its `service` (and the admin, "
        "delegate and analyst clients) is the one service of the session, shared; the test "
        "fails if it writes to the store or changes the service's state",
    )
    config.addinivalue_line("markers", "slow: takes seconds; left out by `make test-fast`")
    config.addinivalue_line(
        "markers", "browser: drives a real browser; left out by `make test-fast`"
    )


BROWSER_TESTS = Path(__file__).parent / "browser"


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    # Every test under tests/browser drives Chromium, present or future ones alike.
    for item in items:
        if BROWSER_TESTS in item.path.parents:
            item.add_marker(pytest.mark.browser)


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'elegere.db'}"
    url = os.environ.get(PG_ENV)
    if not url:
        pytest.skip(
            f"PostgreSQL run skipped: set {PG_ENV} (e.g. postgresql+psycopg://postgres@127.0.0.1:5432/test)"
        )
    if not request.node.get_closest_marker(READ_ONLY):  # the shared service has its own schema
        from tests.fixtures.service import reset_database

        reset_database(url)
    return url


@pytest.fixture
def pg_database() -> str:
    """The PostgreSQL store of ELEGERE_TEST_DATABASE_URL, emptied (skips without it): for
    tests whose processes share one server database."""
    url = os.environ.get(PG_ENV)
    if not url:
        pytest.skip(f"PostgreSQL run skipped: set {PG_ENV}")
    from tests.fixtures.service import reset_database

    reset_database(url)
    return url


@pytest.fixture
def redis_url() -> str:
    """The Redis database of ELEGERE_TEST_REDIS_URL (db 15 by default), emptied; skips
    when no Redis answers there."""
    import redis

    from tests.fixtures.parallel import this_workers_redis

    url = os.environ.get(REDIS_ENV) or this_workers_redis("redis://127.0.0.1:6379/15")
    try:
        redis.Redis.from_url(url).flushdb()
    except redis.RedisError as exc:
        pytest.skip(f"No Redis at {url} ({exc}); set {REDIS_ENV}")
    return url


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    skipped = terminalreporter.stats.get("skipped", [])
    if any(PG_ENV in str(getattr(r, "longrepr", "")) for r in skipped):
        terminalreporter.write_line(
            f"PostgreSQL runs were skipped: set {PG_ENV} (.ci/run sets it) to run them too."
        )


@pytest.fixture
def pki(tmp_path: Path) -> Pki:
    """A test CA and a server certificate for 127.0.0.1/localhost."""
    from tests.fixtures.certs import make_pki

    return make_pki(tmp_path / "pki")


@pytest.fixture
def trusting_test_ca(pki: Pki) -> dict[str, object]:
    """Service settings that trust the test CA, as an admin would set ELEGERE_SMTP_CA_FILE."""
    return {"smtp_ca_file": pki.ca.cert_path}


@pytest.fixture
def peer(pki: Pki) -> Iterator[SmtpPeer]:
    """aiosmtpd on 127.0.0.1 that requires STARTTLS, then a login."""
    from tests.fixtures.smtp import SmtpPeer

    with SmtpPeer("starttls", pki=pki) as running:
        yield running


@pytest.fixture(scope="session")
def idp() -> Iterator[IdentityProvider]:
    """A local Microsoft identity platform and Graph; each test adds the tenants it needs."""
    from tests.fixtures.identity_provider import IdentityProvider

    with IdentityProvider() as provider:
        yield provider


@pytest.fixture
def tenant(idp: IdentityProvider) -> Tenant:
    """A fresh tenant per test, with the sending mailbox in it."""
    from tests.fixtures.identity_provider import SALES_MAILBOX

    tenant = idp.add_tenant(domains=[f"t{uuid.uuid4().hex[:8]}.onmicrosoft.com"])
    idp.add_mailbox(tenant, SALES_MAILBOX, display_name="Sales")
    return tenant


@pytest.fixture(scope="session")
def oauth_cert() -> CertAndKey:
    """The certificate (and key) an OAuth 2.0 app signs in with (tests/fixtures/oauth.py)."""
    from tests.fixtures.oauth import make_oauth_cert

    return make_oauth_cert()


@pytest.fixture
def oauth_app(idp: IdentityProvider, tenant: Tenant, oauth_cert: CertAndKey) -> App:
    """An app of this test's tenant with ``oauth_cert``, granted SMTP.SendAsApp."""
    from tests.fixtures.oauth import add_oauth_app

    return add_oauth_app(idp, tenant, oauth_cert)


@pytest.fixture
def xoauth2_peer(pki: Pki, idp: IdentityProvider, tenant: Tenant) -> Iterator[SmtpPeer]:
    """aiosmtpd as Exchange Online: STARTTLS, then AUTH XOAUTH2 with a token of this test's
    tenant, signed by ``idp``, granting SMTP.SendAsApp, for the mailbox (or AUTH LOGIN with
    the peer's password)."""
    from tests.fixtures.oauth import xoauth2_peer as make_peer

    with make_peer(pki, idp, tenant) as peer:
        yield peer


@pytest.fixture
def oauth_service_settings(
    idp: IdentityProvider, trusting_test_ca: dict[str, object]
) -> dict[str, object]:
    """Service settings for OAuth 2.0 servers: apps sign in at ``idp``, and the SMTP peers'
    CA is trusted. A module returns them from its ``service_settings_overrides``."""
    from tests.fixtures.oauth import service_settings

    return {**trusting_test_ca, **service_settings(idp)}


@pytest.fixture
def service_settings_overrides() -> dict[str, object]:
    """Override in a test module to change the service's settings."""
    return {}


@pytest.fixture(scope="session")
def shared_services(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SharedServices]:
    """The services of the read-only tests: one per database, started when first needed."""
    from tests.fixtures.shared_service import SharedServices

    with SharedServices(tmp_path_factory.mktemp("shared-service")) as pool:
        yield pool


@pytest.fixture
def service(
    request: pytest.FixtureRequest,
    database_url: str,
    tmp_path: Path,
    service_settings_overrides: dict[str, object],
) -> Iterator[RunningService]:
    """The real service, seeded with the demo data: a fresh one for this test, or, for a test
    marked ``read_only``, the one shared by the session (watched: a write fails the test)."""
    if request.node.get_closest_marker(READ_ONLY):
        from tests.fixtures.shared_service import watched

        if service_settings_overrides:
            pytest.fail(
                f"{request.node.name} is marked {READ_ONLY} but its module overrides the "
                "service's settings; the shared service runs with the defaults: drop the mark."
            )
        shared = request.getfixturevalue("shared_services").get(database_url)
        with watched(shared, request.node.nodeid) as running:
            yield running
        return
    # Imported here so that tests of one layer do not need every other layer to import.
    from elegere_widgets.server.app import create_app
    from elegere_widgets.server.seed import DEMO_USERS, create_token, seed_demo
    from tests.fixtures.service import RunningService, build_settings, serve_in_thread

    settings = build_settings(database_url, str(tmp_path / "data"), **service_settings_overrides)
    app = create_app(settings)
    seed_demo(app.state.ctx)
    with serve_in_thread(app) as url:
        running = RunningService(url=url, app=app)
        running.tokens = {email: create_token(app.state.ctx, email) for email in DEMO_USERS}
        yield running


@pytest.fixture
def client_for(service: RunningService) -> Iterator[Callable[[str], Client]]:
    made: list[Client] = []

    def make(email: str) -> Client:
        client = Client(service.url, service.tokens[email], timeout=30)
        made.append(client)
        return client

    yield make
    for c in made:
        c.close()


@pytest.fixture
def admin(client_for: Callable[[str], Client]) -> Client:
    """The demo Workspace Admin of Sales."""
    return client_for(ADMIN)


@pytest.fixture
def delegate(client_for: Callable[[str], Client]) -> Client:
    """The demo Admin Delegate (not a Workspace Admin)."""
    return client_for(DELEGATE)


@pytest.fixture
def analyst(client_for: Callable[[str], Client]) -> Client:
    """A user without any admin right."""
    return client_for(ANALYST)
