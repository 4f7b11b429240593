"""create_app(settings) -> FastAPI. Nothing is built at import time."""

from __future__ import annotations

from fastapi import Depends, FastAPI

from . import problems
from .config import Settings
from .context import ServiceContext
from .deps import enter_organization, enter_workspace
from .heap import freeze_startup_heap
from .limits import BodySizeLimit
from .queue import SignalsInBackground
from .routes import catalog, email_servers, exports, messages, people, senders, sign_in

API_PREFIX = "/api/v1"


def create_app(settings: Settings | None = None, *, migrate: bool = True) -> FastAPI:
    """The service. Migrates the store to the newest schema unless told not to."""
    settings = settings or Settings()
    ctx = ServiceContext.build(settings)
    ctx.queue = SignalsInBackground(ctx.queue)  # a request never waits for the queue
    if migrate:
        from .store.db import migrate as run_migrations

        run_migrations(ctx.engine)
    app = FastAPI(
        title="eLegere Workspace Email Servers",
        version="1",
        openapi_url=f"{API_PREFIX}/openapi.json",
        docs_url=f"{API_PREFIX}/docs",
        redoc_url=None,
    )
    app.state.ctx = ctx
    app.router.on_startup.append(freeze_startup_heap)
    app.router.on_shutdown.append(ctx.network.shutdown)  # running tests end on their own
    problems.install(app)
    app.include_router(sign_in.router)
    app.include_router(people.router, prefix=API_PREFIX)
    # One router for both scopes: the mount's dependency declares `ws` or `org` and sets
    # the scope that the routes' service acts on.
    app.include_router(
        email_servers.router,
        prefix=f"{API_PREFIX}/workspaces/{{ws}}",
        tags=["workspace"],
        dependencies=[Depends(enter_workspace)],
    )
    app.include_router(
        email_servers.router,
        prefix=f"{API_PREFIX}/organizations/{{org}}",
        tags=["organization"],
        dependencies=[Depends(enter_organization)],
    )
    for router in (
        catalog.router,
        exports.router,
        messages.router,
        senders.router,
        senders.organization_router,
    ):
        app.include_router(router, prefix=API_PREFIX)

    @app.get("/healthz", include_in_schema=False)
    def healthz() -> dict[str, str]:
        return {"status": "ok"}

    app.add_middleware(
        BodySizeLimit,
        max_bytes=settings.max_body_bytes,
        messages_bytes=settings.max_messages_body_bytes,
    )
    return app
