"""The storefront platforms' order webhooks: Shopify's "Order creation" and WooCommerce's order.created.

Shopify's checkout runs no theme script, so an order placed there is only ever seen through the
webhook the store owner adds (Settings > Notifications > Webhooks). Each delivery is verified as
the platform documents it, base64(HMAC-SHA256(secret, raw body)) in `X-Shopify-Hmac-Sha256` or
`X-WC-Webhook-Signature`, and then counts exactly as `POST /api/v1/orders` would
(store.carts.record_order): idempotent by order id, matched to the shopper's cart, the
reminders stopped, a recovery credited.

Answers: 401 for a missing or wrong signature or a site without a secret (nothing stored); a
verified delivery always gets 200, matched or not, stored or not (a platform retries and finally
disables a webhook that keeps failing, and the store owner would lose every later order); the
body says what was done.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import math
from dataclasses import dataclass
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from collector.addresses import check_email
from collector.httputil import BodyIncomplete, BodyTooLarge, error, read_body
from collector.services import services
from collector.store.sites import Site

# An order of many lines with its addresses, taxes and fulfilment data runs to tens of KB.
MAX_HOOK_BODY = 1024 * 1024
# The cart attribute the snippet writes into Shopify's cart (a leading underscore keeps it out
# of the checkout's view); Shopify returns it in the order's note_attributes.
CART_ATTRIBUTE = "_cartback"


@dataclass(frozen=True)
class PlatformOrder:
    """What an order webhook tells us, in the shape record_order takes."""

    order_id: str
    value: float
    currency: str
    email: str | None
    visitor_id: str | None
    platform_token: str | None


def signature(secret: str, body: bytes) -> str:
    """The platforms' scheme: base64 of the HMAC-SHA256 of the raw body."""
    return base64.b64encode(hmac.new(secret.encode(), body, hashlib.sha256).digest()).decode()


def verified(secret: str | None, body: bytes, given: str | None) -> bool:
    if not secret or not given:
        return False
    return hmac.compare_digest(signature(secret, body).encode(), given.strip().encode())


def _money(value: Any) -> float | None:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) and number >= 0 else None


def _email(value: Any) -> str | None:
    if not isinstance(value, str) or not value.strip():
        return None
    try:
        return check_email(value)
    except ValueError:
        return None  # the order still counts; it is matched by its cart or not at all


def _text(value: Any, limit: int = 200) -> str | None:
    if isinstance(value, int | str) and not isinstance(value, bool):
        text = str(value).strip()
        if text and len(text) <= limit and text.isprintable():
            return text
    return None


def _currency(value: Any) -> str | None:
    return value.upper() if isinstance(value, str) and len(value) == 3 and value.isalpha() else None


def shopify_order(data: Any) -> PlatformOrder | str:
    """The order in a Shopify "Order creation" payload, or what keeps it from counting."""
    if not isinstance(data, dict):
        return "not an order"
    order_id, value, currency = _text(data.get("id")), _money(data.get("total_price")), _currency(data.get("currency"))
    if order_id is None or value is None or currency is None:
        return "an order needs id, total_price and currency"
    visitor = None
    for attr in data.get("note_attributes") or []:
        if isinstance(attr, dict) and attr.get("name") == CART_ATTRIBUTE:
            visitor = _text(attr.get("value"), 64)
    token = _text(data.get("cart_token"))
    # Shopify's newer cart tokens carry a "?key=…" suffix in /cart.js that orders leave out.
    token = token.split("?", 1)[0] if token else None
    customer: dict[str, Any] = data["customer"] if isinstance(data.get("customer"), dict) else {}
    email = _email(data.get("email")) or _email(data.get("contact_email")) or _email(customer.get("email"))
    return PlatformOrder(order_id, value, currency, email, visitor, token)


def woocommerce_order(data: Any) -> PlatformOrder | str:
    """The order in a WooCommerce order.created payload, or what keeps it from counting."""
    if not isinstance(data, dict):
        return "not an order"
    order_id, value, currency = _text(data.get("id")), _money(data.get("total")), _currency(data.get("currency"))
    if order_id is None or value is None or currency is None:
        return "an order needs id, total and currency"
    billing: dict[str, Any] = data["billing"] if isinstance(data.get("billing"), dict) else {}
    visitor = None
    for meta in data.get("meta_data") or []:
        if isinstance(meta, dict) and meta.get("key") == CART_ATTRIBUTE:
            visitor = _text(meta.get("value"), 64)
    return PlatformOrder(order_id, value, currency, _email(billing.get("email")), visitor, None)


async def _receive(request: Request, platform: str) -> Response:
    svc = services(request)
    site: Site | None = await svc.store.sites.get(request.path_params["key"])
    try:
        body = await read_body(request, MAX_HOOK_BODY)
    except BodyTooLarge:
        return error(413, "body too large (1 MiB at most)")
    except BodyIncomplete:
        return error(400, "the request body was cut off")
    # WooCommerce pings a webhook when it is saved: a form body `webhook_id=N`, unsigned.
    if (
        platform == "woocommerce"
        and request.headers.get("x-wc-webhook-signature") is None
        and request.headers.get("content-type", "").startswith("application/x-www-form-urlencoded")
        and body.startswith(b"webhook_id=")
    ):
        return JSONResponse({"ok": True, "stored": False, "reason": "ping"})
    if platform == "shopify":
        secret = site.settings.platform.shopify_webhook_secret if site else None
        given = request.headers.get("x-shopify-hmac-sha256")
    else:
        secret = site.settings.platform.woocommerce_webhook_secret if site else None
        given = request.headers.get("x-wc-webhook-signature")
    # An unknown site answers as a wrong signature does: nothing about which keys exist.
    if site is None or not verified(secret, body, given):
        return error(401, "missing or wrong webhook signature (or no webhook secret set for this site)")
    try:
        data = json.loads(body)
    except ValueError:
        return JSONResponse({"ok": True, "stored": False, "reason": "the body is not JSON"})
    order = shopify_order(data) if platform == "shopify" else woocommerce_order(data)
    if isinstance(order, str):
        return JSONResponse({"ok": True, "stored": False, "reason": order})
    cart_id = await svc.store.carts.cart_for_platform_order(site, order.visitor_id, order.platform_token)
    row = await svc.store.carts.record_order(
        site, order.order_id, order.value, order.currency, order.email, cart_id, source=platform
    )
    return JSONResponse(
        {
            "ok": True,
            "stored": True,
            "order_id": row["order_id"],
            "matched": row["cart_id"] is not None,
            "recovered": bool(row["recovered"]),
        }
    )


async def shopify_hook(request: Request) -> Response:
    return await _receive(request, "shopify")


async def woocommerce_hook(request: Request) -> Response:
    return await _receive(request, "woocommerce")


routes = [
    Route("/hooks/shopify/{key}", shopify_hook, methods=["POST"]),
    Route("/hooks/woocommerce/{key}", woocommerce_hook, methods=["POST"]),
]
