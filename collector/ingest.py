"""The routes the snippet calls: carts, events, leads, identify, purchases and cart restores."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ValidationError
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from collector.schemas import CartIn, EventIn, IdentifyIn, LeadIn, PurchaseIn, format_validation_error
from collector.store import Store
from collector.web import BodyIncomplete, BodyTooLarge, cors_headers, error, preflight, read_body

MODELS: dict[str, type[BaseModel]] = {
    "cart": CartIn,
    "event": EventIn,
    "lead": LeadIn,
    "identify": IdentifyIn,
    "purchase": PurchaseIn,
}

_OK = b'{"ok":true}'


async def _site_for(request: Request) -> tuple[Any, str] | Response:
    store: Store = request.app.state.store
    key = request.path_params["key"]
    origin = request.headers.get("origin")
    # CORS headers on the refusals too, so that the snippet can read the 4xx and drop the
    # request from its outbox instead of retrying what will never be accepted.
    refusal_headers = cors_headers(origin) if origin else None
    site = await store.get_site(key) if len(key) <= 64 else None
    if site is None:
        return error(404, "unknown site key", refusal_headers)
    if not site.allows_origin(origin):
        # A valid key is public (it is in the page): the origin is what proves the caller.
        return error(403, "origin not allowed for this site", refusal_headers)
    assert origin is not None
    return site, origin


async def ingest(request: Request) -> Response:
    kind = request.path_params["kind"]
    model = MODELS.get(kind)
    if model is None:
        return error(404, "unknown route")
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
    store: Store = request.app.state.store
    handler = {
        "cart": store.ingest_cart,
        "event": store.ingest_event,
        "lead": store.ingest_lead,
        "identify": store.ingest_identify,
        "purchase": store.ingest_purchase,
    }[kind]
    await handler(site, body)  # type: ignore[arg-type]
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
    vid = request.query_params.get("vid")
    from collector.recovery.links import load_restore_token

    store: Store = request.app.state.store
    cart_id = load_restore_token(request.app.state.signer, token) if 0 < len(token) <= 1000 else None
    if cart_id is None:
        return error(404, "this link is not valid any more", headers)
    cart = await store.cart_for_restore(site, cart_id, vid)
    if cart is None:
        return error(404, "this link is not valid any more", headers)
    return JSONResponse(cart, headers={**headers, "Cache-Control": "no-store"})


routes = [
    Route("/c/{key}/restore", restore, methods=["GET"]),
    Route("/c/{key}/restore", ingest_preflight, methods=["OPTIONS"]),
    Route("/c/{key}/{kind}", ingest, methods=["POST"]),
    Route("/c/{key}/{kind}", ingest_preflight, methods=["OPTIONS"]),
]
