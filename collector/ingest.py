"""The routes the snippet calls: carts, events, leads, identify, purchases and cart restores."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from pydantic import BaseModel, ValidationError
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from collector.httputil import BodyIncomplete, BodyTooLarge, cors_headers, error, preflight, read_body
from collector.ratelimit import IngestLimits, retry_after
from collector.recovery.links import load_restore_token, restore_token_id
from collector.schemas import CartIn, EventIn, IdentifyIn, Ingest, LeadIn, PurchaseIn, format_validation_error
from collector.services import services
from collector.store import Site, Store
from collector.store.carts import CartStore

Handler = Callable[[CartStore, Site, Any], Awaitable[bool]]
# What each ingest route takes and which store operation stores it.
KINDS: dict[str, tuple[type[BaseModel], Handler]] = {
    "cart": (CartIn, CartStore.ingest_cart),
    "event": (EventIn, CartStore.ingest_event),
    "lead": (LeadIn, CartStore.ingest_lead),
    "identify": (IdentifyIn, CartStore.ingest_identify),
    "purchase": (PurchaseIn, CartStore.ingest_purchase),
}

_OK = b'{"ok":true}'


async def _site_for(request: Request) -> tuple[Site, str] | Response:
    store: Store = services(request).store
    key = request.path_params["key"]
    origin = request.headers.get("origin")
    # CORS headers on the refusals too, so that the snippet can read the 4xx and drop the
    # request from its outbox instead of retrying what will never be accepted.
    refusal_headers = cors_headers(origin) if origin else None
    site = await store.sites.get(key) if len(key) <= 64 else None
    if site is None:
        return error(404, "unknown site key", refusal_headers)
    if not site.allows_origin(origin):
        # A valid key is public (it is in the page): the origin is what proves the caller.
        return error(403, "origin not allowed for this site", refusal_headers)
    assert origin is not None
    return site, origin


async def ingest(request: Request) -> Response:
    kind = request.path_params["kind"]
    if kind not in KINDS:
        return error(404, "unknown route")
    model, handler = KINDS[kind]
    found = await _site_for(request)
    if isinstance(found, Response):
        return found
    site, origin = found
    headers = cors_headers(origin)
    try:
        raw = await read_body(request)
    except BodyTooLarge:
        return error(413, "body too large (32 KiB at most)", headers)
    except BodyIncomplete:
        return error(400, "the request body was cut off", headers)
    if not raw:
        return error(400, "empty body", headers)
    try:
        # text/plain or application/json alike: the snippet sends text/plain to avoid a preflight.
        body = model.model_validate_json(raw)
    except ValidationError as exc:
        return error(422 if exc.errors()[0]["type"] != "json_invalid" else 400, format_validation_error(exc), headers)
    limits: IngestLimits = request.app.state.ingest_limits
    assert isinstance(body, Ingest)  # every ingest model names its visitor
    wait = limits.check(site.id, body.vid)
    if wait:
        # Before anything is stored; the snippet keeps the event and sends it again later.
        return error(429, "too many requests from this visitor", {**headers, "Retry-After": retry_after(wait)})
    store: Store = services(request).store
    await handler(store.carts, site, body)
    return Response(_OK, media_type="application/json", headers=headers)


async def ingest_preflight(request: Request) -> Response:
    found = await _site_for(request)
    if isinstance(found, Response):
        return found
    return preflight(found[1])


async def restore(request: Request) -> Response:
    """Exchanges a restore token (from a recovery link) for the saved cart."""
    found = await _site_for(request)
    if isinstance(found, Response):
        return found
    site, origin = found
    headers = cors_headers(origin)
    token = request.query_params.get("t", "")
    store: Store = services(request).store
    cart_id = load_restore_token(services(request).signer, token) if 0 < len(token) <= 1000 else None
    if cart_id is None:
        return error(404, "this link is not valid any more", headers)
    # Each click of a recovery link makes a fresh token, and each token restores once.
    cart = await store.carts.cart_for_restore(site, cart_id, restore_token_id(token))
    if cart is None:
        return error(404, "this link is not valid any more", headers)
    return JSONResponse(cart, headers={**headers, "Cache-Control": "no-store"})


routes = [
    Route("/c/{key}/restore", restore, methods=["GET"]),
    Route("/c/{key}/restore", ingest_preflight, methods=["OPTIONS"]),
    Route("/c/{key}/{kind}", ingest, methods=["POST"]),
    Route("/c/{key}/{kind}", ingest_preflight, methods=["OPTIONS"]),
]
