"""Order webhooks as Shopify and WooCommerce send them, from their public documentation.

Shopify: the "Order creation" webhook (topic `orders/create`, JSON; shopify.dev, Admin REST API
Order resource and "Deliver webhooks through HTTPS"): `id` an integer, money as decimal strings
(`total_price`, `subtotal_price`), `currency` the shop's ISO code, `email`, `cart_token`,
`note_attributes` as `[{"name", "value"}]` (the cart's attributes), `customer`, `line_items`; the
headers X-Shopify-Topic, X-Shopify-Hmac-Sha256 (base64 HMAC-SHA256 of the raw body with the
webhook's secret), X-Shopify-Shop-Domain, X-Shopify-API-Version, X-Shopify-Webhook-Id.

WooCommerce: a webhook with topic `order.created` (woocommerce.github.io/woocommerce-rest-api-docs,
Order properties; WC_Webhook::deliver): the order as the REST API v3 shows it, `id` an integer,
`total` a decimal string, `currency`, `billing.email`, `meta_data` `[{"id", "key", "value"}]`,
`line_items`, `cart_hash`; the headers X-WC-Webhook-Source, X-WC-Webhook-Topic,
X-WC-Webhook-Resource, X-WC-Webhook-Event, X-WC-Webhook-Signature (base64 of
hash_hmac('sha256', payload, secret, true)), X-WC-Webhook-ID, X-WC-Webhook-Delivery-ID. When a
webhook is saved, WooCommerce pings its URL with a form body `webhook_id=N` and no signature.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from typing import Any


def _sign(secret: str, body: bytes) -> str:
    return base64.b64encode(hmac.new(secret.encode(), body, hashlib.sha256).digest()).decode()


def shopify_order(
    order_id: int = 820982911946154508,
    total: str = "28.00",
    currency: str = "EUR",
    email: str | None = "jon@example.com",
    cart_token: str | None = None,
    cart_attribute: str | None = None,
) -> dict[str, Any]:
    """An orders/create payload with the documented fields (a trimmed version of Shopify's sample)."""
    notes = [{"name": "gift_wrap", "value": "no"}]
    if cart_attribute is not None:
        notes.append({"name": "_cartback", "value": cart_attribute})
    return {
        "id": order_id,
        "admin_graphql_api_id": f"gid://shopify/Order/{order_id}",
        "name": "#9999",
        "order_number": 1234,
        "email": email,
        "contact_email": email,
        "created_at": "2026-12-02T10:15:00-05:00",
        "currency": currency,
        "presentment_currency": currency,
        "total_price": total,
        "subtotal_price": total,
        "total_tax": "0.00",
        "financial_status": "paid",
        "cart_token": cart_token,
        "checkout_token": "bd5a8aa1ecd019dd3520ff791ee3a24c",
        "note": None,
        "note_attributes": notes,
        "customer": {"id": 115310627314723954, "email": email, "first_name": "Jon", "last_name": "Doe"},
        "line_items": [
            {
                "id": 866550311766439020,
                "variant_id": 808950810,
                "product_id": 632910392,
                "title": "Blue enamel mug",
                "variant_title": None,
                "quantity": 2,
                "price": "14.00",
                "sku": "MUG-1",
            }
        ],
    }


def shopify_delivery(
    payload: dict[str, Any], secret: str, shop: str = "cartback-test.myshopify.com"
) -> tuple[bytes, dict[str, str]]:
    body = json.dumps(payload).encode()
    return body, {
        "Content-Type": "application/json",
        "X-Shopify-Topic": "orders/create",
        "X-Shopify-Hmac-Sha256": _sign(secret, body),
        "X-Shopify-Shop-Domain": shop,
        "X-Shopify-API-Version": "2026-10",
        "X-Shopify-Webhook-Id": "b54557e4-bdd9-4b37-8a5f-bf7d70bcd043",
    }


def woocommerce_order(
    order_id: int = 727,
    total: str = "29.35",
    currency: str = "EUR",
    email: str | None = "john.doe@example.com",
    meta: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """An order.created payload with the documented fields (a trimmed version of the REST API's order)."""
    return {
        "id": order_id,
        "parent_id": 0,
        "number": str(order_id),
        "order_key": "wc_order_58d2d042d1d",
        "created_via": "checkout",
        "status": "processing",
        "currency": currency,
        "date_created": "2026-12-02T10:15:00",
        "discount_total": "0.00",
        "shipping_total": "10.00",
        "total": total,
        "total_tax": "1.35",
        "customer_id": 0,
        "billing": {"first_name": "John", "last_name": "Doe", "email": email or "", "country": "DE"},
        "payment_method": "bacs",
        "cart_hash": "a1b2c3",
        "meta_data": meta or [],
        "line_items": [
            {"id": 315, "name": "Woo Single #1", "product_id": 93, "variation_id": 0, "quantity": 2, "total": "6.00"}
        ],
    }


def woocommerce_delivery(payload: dict[str, Any], secret: str) -> tuple[bytes, dict[str, str]]:
    body = json.dumps(payload).encode()
    return body, {
        "Content-Type": "application/json",
        "User-Agent": "WooCommerce/9.4.0 Hookshot (WordPress/6.7)",
        "X-WC-Webhook-Source": "https://shop.example/",
        "X-WC-Webhook-Topic": "order.created",
        "X-WC-Webhook-Resource": "order",
        "X-WC-Webhook-Event": "created",
        "X-WC-Webhook-Signature": _sign(secret, body),
        "X-WC-Webhook-ID": "12",
        "X-WC-Webhook-Delivery-ID": "5f9a1c2e",
    }


def woocommerce_ping(webhook_id: int = 12) -> tuple[bytes, dict[str, str]]:
    return f"webhook_id={webhook_id}".encode(), {"Content-Type": "application/x-www-form-urlencoded"}
