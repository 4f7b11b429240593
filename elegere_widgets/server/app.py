"""create_app(settings) -> FastAPI. Nothing is built at import time."""

from __future__ import annotations

from fastapi import FastAPI

from . import problems
from .config import Settings
from .context import ServiceContext
from .limits import BodySizeLimit
from .routes import catalog, email_servers, exports, people, sign_in

API_PREFIX = "/api/v1"


def create_app(settings: Settings | None = None, *, migrate: bool = True) -> FastAPI:
    """The service. Migrates the store to the newest schema unless told not to."""
    settings = settings or Settings()
    ctx = ServiceContext.build(settings)
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
    problems.install(app)
    app.include_router(sign_in.router)
    for router in (
        people.router,
        email_servers.workspace_router,
        email_servers.organization_router,
        catalog.router,
        exports.router,
    ):
        app.include_router(router, prefix=API_PREFIX)

    @app.get("/healthz", include_in_schema=False)
    def healthz() -> dict[str, str]:
        return {"status": "ok"}

    app.add_middleware(BodySizeLimit, max_bytes=settings.max_body_bytes)
    return app
