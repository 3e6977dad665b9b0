"""The server API for other programs: purchase reports, the leads CSV and the stats, behind a Bearer token."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from pydantic import ValidationError
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from collector.exports import lead_csv_chunks
from collector.funnel import site_stats
from collector.httputil import BodyIncomplete, BodyTooLarge, error, read_body, time_range
from collector.recovery.links import load_restore_token
from collector.schemas import OrderIn, format_validation_error
from collector.services import services
from collector.store import Store

Handler = Callable[[Request], Awaitable[Response]]


def require_token(handler: Handler) -> Handler:
    async def wrapped(request: Request) -> Response:
        auth = request.headers.get("authorization", "")
        scheme, _, token = auth.partition(" ")
        store: Store = services(request).store
        if (
            scheme.lower() != "bearer"
            or not token
            or len(token) > 200
            or not await store.users.check_token(token.strip())
        ):
            # Nothing about the site (not even whether it exists) before the token checks out.
            return error(401, "a valid API token is required", {"WWW-Authenticate": 'Bearer realm="cartback"'})
        return await handler(request)

    return wrapped


@require_token
async def post_order(request: Request) -> Response:
    try:
        raw = await read_body(request)
        body = OrderIn.model_validate_json(raw or b"")
    except BodyTooLarge:
        return error(413, "body too large (32 KiB at most)")
    except BodyIncomplete:
        return error(400, "the request body was cut off")
    except ValidationError as exc:
        return error(422, format_validation_error(exc))
    store: Store = services(request).store
    site = await store.sites.get(body.site)
    if site is None:
        return error(404, "unknown site")
    cart_id = None
    if body.cart_token:
        cart_id = load_restore_token(services(request).signer, body.cart_token)
        if cart_id is None:
            return error(422, "cart_token: not a valid cart token")
    row = await store.carts.record_order(site, body.order_id, body.value, body.currency, body.email, cart_id)
    return JSONResponse(
        {"site": site.key, "order_id": row["order_id"], "recovered": bool(row["recovered"]), "value": row["value"]}
    )


@require_token
async def leads_csv(request: Request) -> Response:
    store: Store = services(request).store
    site = await store.sites.get(request.path_params["key"], fresh=True)
    if site is None:
        return error(404, "unknown site")
    rng = time_range(request)
    if isinstance(rng, Response):
        return rng
    return StreamingResponse(
        lead_csv_chunks(store.db, site.id, *rng),
        media_type="text/csv; charset=utf-8",
        # Shoppers' addresses: no cache on the way (a proxy, the browser's disk) may keep them.
        headers={"Content-Disposition": f'attachment; filename="leads-{site.key}.csv"', "Cache-Control": "no-store"},
    )


@require_token
async def stats(request: Request) -> Response:
    store: Store = services(request).store
    site = await store.sites.get(request.path_params["key"], fresh=True)
    if site is None:
        return error(404, "unknown site")
    rng = time_range(request)
    if isinstance(rng, Response):
        return rng
    return JSONResponse(await site_stats(store.db, site.id, *rng, settings=site.settings))


routes = [
    Route("/api/v1/orders", post_order, methods=["POST"]),
    Route("/api/v1/sites/{key}/leads.csv", leads_csv, methods=["GET"]),
    Route("/api/v1/sites/{key}/stats", stats, methods=["GET"]),
]
