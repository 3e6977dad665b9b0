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
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles

from collector import api, demo, ingest, mailhooks, platforms, tag
from collector.config import Config, load_config
from collector.dashboard import deliverability as dashboard_deliverability
from collector.dashboard import experiments as dashboard_experiments
from collector.dashboard import install as dashboard_install
from collector.dashboard import login, pages, preview
from collector.dashboard import settings as dashboard_settings
from collector.httputil import error
from collector.middleware import ReadDeadlineMiddleware, SecurityHeadersMiddleware
from collector.ratelimit import IngestLimits
from collector.recovery import routes as recovery_routes
from collector.recovery.sweep import sweep_once
from collector.reports import routes as report_routes
from collector.reports.weekly import send_weekly
from collector.server import DeadlineH11Protocol
from collector.services import Services, services
from collector.store import Store
from collector.store.db import QueryTimeout
from collector.tag import STATIC_DIR, SnippetCache

log = logging.getLogger("cartback")


async def _sweep_loop(svc: Services) -> None:
    while True:
        await asyncio.sleep(svc.config.sweep_seconds)
        try:
            await sweep_once(svc)
        except Exception:  # one bad pass must not stop the next ones
            log.exception("sweep failed")
        try:
            await send_weekly(svc)  # once per user and week: a no-op on every other pass
        except Exception:
            log.exception("weekly report failed")


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    if request.url.path.startswith(("/api/", "/c/")):
        return error(exc.status_code, str(exc.detail))
    return Response(str(exc.detail), status_code=exc.status_code, media_type="text/plain")


async def _too_slow(request: Request, exc: Exception) -> Response:
    # A read the database stopped at its time limit: say so (503, worth a retry or a shorter
    # range) instead of hanging the page or answering a bare 500.
    reason = f"this page needs more than the database's time limit allows ({exc}); try a shorter date range"
    log.warning("read stopped on %s: %s", request.url.path, exc)
    if request.url.path.startswith(("/api/", "/c/")):
        return error(503, reason)
    return Response(reason, status_code=503, media_type="text/plain")


async def _server_error(request: Request, exc: Exception) -> Response:
    # Logged for the owner; the caller gets no stack trace.
    log.exception("unhandled error on %s", request.url.path, exc_info=exc)
    return JSONResponse({"error": "internal error"}, status_code=500)


async def healthz(request: Request) -> Response:
    await services(request).store.db.fetchone("SELECT 1 AS ok")
    return JSONResponse({"ok": True})


ROUTES: list[BaseRoute] = [
    Route("/healthz", healthz, methods=["GET"]),
    *ingest.routes,
    *tag.routes,
    *api.routes,
    *platforms.routes,
    *demo.routes,
    *recovery_routes.routes,
    *report_routes.routes,
    *mailhooks.routes,
    *login.routes,
    *pages.routes,
    *dashboard_settings.routes,
    *preview.routes,
    *dashboard_experiments.routes,
    *dashboard_deliverability.routes,
    *dashboard_install.routes,
    Mount("/static", StaticFiles(directory=STATIC_DIR, check_dir=False), name="static"),
]


def create_app(config: Config | None = None, store: Store | None = None) -> Starlette:
    svc = Services.from_config(config or load_config(), store)
    # The header deadline lives in the server's protocol objects, made in this (worker) process.
    DeadlineH11Protocol.header_timeout = svc.config.read_timeout_seconds

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        await svc.store.connect()
        await svc.store.db.migrate()
        if not svc.config.public_url.startswith("https://"):
            log.warning(
                "CARTBACK_PUBLIC_URL is %s, not HTTPS: the unsubscribe links in reminders follow it, and RFC 8058"
                " one-click unsubscribe (Gmail, Yahoo) wants an HTTPS URL",
                svc.config.public_url,
            )
        task = None
        if svc.config.sweep_seconds > 0:
            task = asyncio.get_running_loop().create_task(_sweep_loop(svc))
        try:
            yield
        finally:
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
            await svc.store.close()

    app = Starlette(
        routes=ROUTES,
        lifespan=lifespan,
        middleware=[
            Middleware(SecurityHeadersMiddleware),
            Middleware(ReadDeadlineMiddleware, seconds=svc.config.read_timeout_seconds),
        ],
        exception_handlers={HTTPException: _http_error, QueryTimeout: _too_slow, Exception: _server_error},
    )
    app.state.services = svc
    app.state.snippets = SnippetCache()
    app.state.ingest_limits = IngestLimits(svc.config.ingest_site_per_second)
    return app
