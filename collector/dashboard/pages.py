"""The dashboard's read-only pages: sites, a site's overview, leads, carts, exports, webhooks and the dev mailbox."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime
from typing import Any

from starlette.requests import Request
from starlette.responses import HTMLResponse, PlainTextResponse, Response, StreamingResponse
from starlette.routing import Route

from collector.audiences import FORMATS, MIN_AUDIENCE, audience_size, build_audience
from collector.dashboard import auth, queries
from collector.dashboard.charts import funnel_rows, revenue_chart
from collector.dashboard.daily_chart import daily_chart
from collector.dashboard.ranges import date_range
from collector.dashboard.templating import int_param, keyset_pagination, not_found, pagination, render, site_of
from collector.exports import lead_csv_chunks
from collector.funnel import site_stats
from collector.httputil import TimeRangeError, parse_time_range
from collector.services import services
from collector.store import Site, Store, emails, outbox
from collector.store.db import database_bytes, oldest_kept
from collector.tag import snippet_html

LEADS_PER_PAGE = 50


def _day(ts: float | None) -> str | None:
    return datetime.fromtimestamp(ts, tz=UTC).strftime("%Y-%m-%d") if ts is not None else None


CARTS_PER_PAGE = 25
MAIL_PER_PAGE = 50


@auth.admin
async def home(request: Request) -> Response:
    store: Store = services(request).store
    public_url = services(request).config.public_url
    sites = [{"site": s, "tag": snippet_html(public_url, s.key)} for s in await store.sites.list()]
    return render(request, "sites.html", title="Sites", sites=sites, public_url=public_url)


async def _trust(store: Store, site: Site) -> dict[str, Any]:
    """Whether the site hit its hourly cap on new reminder sequences (shown as a warning)."""
    cap = site.settings.recovery.max_new_sequences_per_hour
    started = await emails.sequences_started(store.db, site.id, time.time() - 3600)
    return {"cap": cap, "sequences_last_hour": started, "cap_reached": started >= cap}


@auth.admin
async def overview(request: Request) -> Response:
    site = await site_of(request)
    if site is None:
        return not_found(request)
    store: Store = services(request).store
    rng = date_range(request)
    stats = await site_stats(store.db, site.id, rng["since_ts"], rng["until_ts"], settings=site.settings)
    size = await audience_size(store.db, site)
    oldest = await oldest_kept(store.db, site.id)
    return render(
        request,
        "overview.html",
        title=site.name,
        site=site,
        tab="overview",
        rng=rng,
        stats=stats,
        funnel=funnel_rows(stats),
        chart=revenue_chart(stats["revenue_series"]),
        daily=daily_chart(stats["daily"]),
        audience_size=size,
        audience_min=MIN_AUDIENCE,
        storage={
            "bytes": await database_bytes(store.db),
            "oldest_event": _day(oldest["event"]),
            "oldest_cart": _day(oldest["cart"]),
            "retention_days": getattr(site.settings, "retention_days", None),
        },
        tag=snippet_html(services(request).config.public_url, site.key),
        trust=await _trust(store, site),
        stats_json=json.dumps({k: v for k, v in stats.items() if k not in ("revenue_series", "daily")}, indent=2),
    )


# -- leads ---------------------------------------------------------------------------------------
@auth.admin
async def leads(request: Request) -> Response:
    site = await site_of(request)
    if site is None:
        return not_found(request)
    q = request.query_params.get("q", "")[:200]
    page = int_param(request, "page")
    at = queries.Keyset.parse(request.query_params.get("after"), request.query_params.get("before"))
    found = await queries.leads_page(services(request).store.db, site.id, q, at, LEADS_PER_PAGE)
    return render(
        request,
        "leads.html",
        title=f"Leads · {site.name}",
        site=site,
        tab="leads",
        leads=found.rows,
        q=q,
        pages=keyset_pagination(page if at else 1, found.total, LEADS_PER_PAGE, {"q": q}, found.newer, found.older),
    )


@auth.admin
async def leads_csv(request: Request) -> Response:
    site = await site_of(request)
    if site is None:
        return not_found(request)
    try:
        since, until = parse_time_range(request.query_params.get("since"), request.query_params.get("until"))
    except TimeRangeError as exc:
        return PlainTextResponse(f"since and until: {exc}", status_code=400)
    return StreamingResponse(
        lead_csv_chunks(services(request).store.db, site.id, since, until),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="leads-{site.key}.csv"', "Cache-Control": "no-store"},
    )


# -- carts ---------------------------------------------------------------------------------------------
CART_FILTERS = ("abandoned", "all", "open", "purchased", "emptied", "replaced")


@auth.admin
async def carts(request: Request) -> Response:
    site = await site_of(request)
    if site is None:
        return not_found(request)
    which = request.query_params.get("status", "abandoned")
    if which not in CART_FILTERS:
        which = "abandoned"
    q = request.query_params.get("q", "")[:200]
    page = int_param(request, "page")
    at = queries.Keyset.parse(request.query_params.get("after"), request.query_params.get("before"))
    found = await queries.carts_page(services(request).store.db, site, which, q, at, CARTS_PER_PAGE)
    return render(
        request,
        "carts.html",
        title=f"Carts · {site.name}",
        site=site,
        tab="carts",
        carts=found.rows,
        which=which,
        filters=CART_FILTERS,
        q=q,
        pages=keyset_pagination(
            page if at else 1, found.total, CARTS_PER_PAGE, {"status": which, "q": q}, found.newer, found.older
        ),
    )


@auth.admin
async def audience_csv(request: Request) -> Response:
    site = await site_of(request)
    if site is None:
        return not_found(request)
    fmt = request.query_params.get("format", "")
    if fmt not in FORMATS:
        return PlainTextResponse("format must be google or meta", status_code=400)
    audience = await build_audience(services(request).store.db, site, fmt)
    headers = {
        "Content-Disposition": f'attachment; filename="audience-{fmt}-{site.key}.csv"',
        "Cache-Control": "no-store",
        "X-Cartback-Audience-Size": str(audience.size),
    }
    return Response(audience.csv(), media_type="text/csv; charset=utf-8", headers=headers)


@auth.admin
async def webhooks_page(request: Request) -> Response:
    site = await site_of(request)
    if site is None:
        return not_found(request)
    rows = await outbox.latest(services(request).store.db, site.id)
    return render(
        request,
        "webhooks.html",
        title=f"Webhooks · {site.name}",
        site=site,
        tab="webhooks",
        rows=rows,
        max_attempts=outbox.WEBHOOKS.max_attempts,
    )


# -- the dev mailbox ------------------------------------------------------------------------------------------
@auth.admin
async def mailbox(request: Request) -> Response:
    q = request.query_params.get("q", "")[:200]
    page = int_param(request, "page")
    rows, total = await queries.mailbox_page(services(request).store.db, q, page, MAIL_PER_PAGE)
    return render(
        request,
        "mailbox.html",
        title="Mailbox",
        messages=rows,
        q=q,
        smtp=bool(services(request).config.smtp_url),
        pages=pagination(page, total, MAIL_PER_PAGE, {"q": q}),
    )


@auth.admin
async def mailbox_view(request: Request) -> Response:
    message = await queries.mailbox_message(services(request).store.db, request.path_params["id"])
    if message is None:
        return not_found(request, "message")
    images = request.query_params.get("images") == "1"
    return render(request, "mailbox_view.html", title=message["subject"], m=message, images=images)


# The stored email HTML runs in a sandbox: no script, no forms, an opaque origin, and remote
# images only on request (they would count as an open through the tracking pixel).
def _mail_csp(images: bool) -> str:
    img = "img-src data: cid: http: https:" if images else "img-src data: cid:"
    return f"sandbox; default-src 'none'; style-src 'unsafe-inline'; {img}; font-src data:; frame-ancestors 'self'"


@auth.admin
async def mailbox_body(request: Request) -> Response:
    message = await queries.mailbox_message(services(request).store.db, request.path_params["id"])
    if message is None:
        return PlainTextResponse("no such message", status_code=404)
    images = request.query_params.get("images") == "1"
    headers = {
        "Content-Security-Policy": _mail_csp(images),
        "X-Frame-Options": "SAMEORIGIN",
        "Referrer-Policy": "no-referrer",
        "Cache-Control": "no-store",
    }
    return HTMLResponse(message["html"], headers=headers)


routes = [
    Route("/admin", home, methods=["GET"]),
    Route("/admin/sites/{key}", overview, methods=["GET"]),
    Route("/admin/sites/{key}/leads", leads, methods=["GET"]),
    Route("/admin/sites/{key}/leads.csv", leads_csv, methods=["GET"]),
    Route("/admin/sites/{key}/carts", carts, methods=["GET"]),
    Route("/admin/sites/{key}/audience.csv", audience_csv, methods=["GET"]),
    Route("/admin/sites/{key}/webhooks", webhooks_page, methods=["GET"]),
    Route("/admin/mailbox", mailbox, methods=["GET"]),
    Route("/admin/mailbox/{id:int}", mailbox_view, methods=["GET"]),
    Route("/admin/mailbox/{id:int}/body", mailbox_body, methods=["GET"]),
]
