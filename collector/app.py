"""create_app(config): the one place that lists the routes, the middleware and start-up."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from collector import api, demo, ingest, snippet
from collector.config import Config, load_config
from collector.dashboard.headers import SecurityHeadersMiddleware
from collector.security import Signer
from collector.snippet import STATIC_DIR, SnippetCache
from collector.store import Store, open_database
from collector.web import error

log = logging.getLogger("cartback")


def _extra_routes() -> list:
    # The dashboard and the recovery links live in their own packages.
    routes: list = []
    for name in ("collector.recovery.routes", "collector.dashboard.routes"):
        try:
            module = __import__(name, fromlist=["routes"])
        except ModuleNotFoundError as exc:
            if exc.name is None or not name.startswith(exc.name):
                raise
            continue
        routes += module.routes
    return routes


async def _sweep_loop(app: Starlette) -> None:
    from collector.recovery.sweep import sweep_once

    config: Config = app.state.config
    while True:
        await asyncio.sleep(config.sweep_seconds)
        try:
            await sweep_once(app.state)
        except Exception:  # one bad pass must not stop the next ones
            log.exception("sweep failed")


def create_app(config: Config | None = None, store: Store | None = None) -> Starlette:
    config = config or load_config()

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        await app.state.store.connect()
        await app.state.store.db.migrate()
        task = None
        if config.sweep_seconds > 0:
            task = asyncio.get_running_loop().create_task(_sweep_loop(app))
        try:
            yield
        finally:
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
            await app.state.store.close()

    async def http_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, HTTPException)
        if request.url.path.startswith(("/api/", "/c/")):
            return error(exc.status_code, str(exc.detail))
        return Response(str(exc.detail), status_code=exc.status_code, media_type="text/plain")

    async def server_error(request: Request, exc: Exception) -> Response:
        # Logged for the owner; the caller gets no stack trace.
        log.exception("unhandled error on %s", request.url.path, exc_info=exc)
        return JSONResponse({"error": "internal error"}, status_code=500)

    async def healthz(request: Request) -> Response:
        await request.app.state.store.db.fetchone("SELECT 1 AS ok")
        return JSONResponse({"ok": True})

    routes = [
        Route("/healthz", healthz, methods=["GET"]),
        *ingest.routes,
        *snippet.routes,
        *api.routes,
        *demo.routes,
        *_extra_routes(),
        Mount("/static", StaticFiles(directory=STATIC_DIR, check_dir=False), name="static"),
    ]
    app = Starlette(
        routes=routes,
        lifespan=lifespan,
        middleware=[Middleware(SecurityHeadersMiddleware)],
        exception_handlers={HTTPException: http_error, Exception: server_error},
    )
    app.state.config = config
    app.state.store = store or Store(open_database(config.database_url))
    app.state.signer = Signer(config.secret_key)
    app.state.snippets = SnippetCache()
    return app
