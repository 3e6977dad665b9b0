"""The snippet's ingest routes: storing once, refusing foreign origins and bad input without damage."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.conftest import SHOP_ORIGIN

H = {"Origin": SHOP_ORIGIN, "Content-Type": "text/plain"}


def cart_body(cid: str = "evt-cart-0001", vid: str = "visitor-0001", **over: Any) -> dict[str, Any]:
    body = {
        "id": cid,
        "vid": vid,
        "currency": "EUR",
        "items": [
            {"id": "sku-1", "name": "Enamel mug", "price": 14.0, "quantity": 2, "image": "https://shop.test/mug.png"}
        ],
    }
    body.update(over)
    return body


async def counts(store: Any) -> dict[str, int]:
    out = {}
    for table in ("events", "carts", "leads", "orders", "visitors"):
        row = await store.db.fetchone(f"SELECT COUNT(*) AS n FROM {table}")
        out[table] = row["n"]
    return out


async def test_cart_update_is_stored_with_its_value(client, site, store):
    r = await client.post(f"/c/{site.key}/cart", content=json.dumps(cart_body()), headers=H)
    assert r.status_code == 200
    assert r.headers["access-control-allow-origin"] == SHOP_ORIGIN
    cart = await store.db.fetchone("SELECT * FROM carts")
    assert cart["value"] == 28.0 and cart["item_count"] == 2 and cart["currency"] == "EUR"
    assert json.loads(cart["items"])[0]["name"] == "Enamel mug"


async def test_retried_requests_are_stored_once(client, site, store):
    lead = {"id": "evt-lead-0001", "vid": "visitor-0001", "email": "ann@example.com", "consent": True}
    for _ in range(3):
        assert (await client.post(f"/c/{site.key}/lead", content=json.dumps(lead), headers=H)).status_code == 200
    for _ in range(3):
        assert (await client.post(f"/c/{site.key}/cart", content=json.dumps(cart_body()), headers=H)).status_code == 200
    purchase = {"id": "evt-buy-00001", "vid": "visitor-0001", "order_id": "o-1", "value": 28, "currency": "EUR"}
    for _ in range(2):
        assert (
            await client.post(f"/c/{site.key}/purchase", content=json.dumps(purchase), headers=H)
        ).status_code == 200
    assert await counts(store) == {"events": 3, "carts": 1, "leads": 1, "orders": 1, "visitors": 1}


async def test_second_cart_update_replaces_items_of_the_same_cart(client, site, store):
    await client.post(f"/c/{site.key}/cart", content=json.dumps(cart_body("evt-cart-0001")), headers=H)
    body = cart_body("evt-cart-0002", items=[{"id": "sku-2", "name": "Tee", "price": 10, "quantity": 1}])
    await client.post(f"/c/{site.key}/cart", content=json.dumps(body), headers=H)
    carts = await store.db.fetchall("SELECT * FROM carts")
    assert len(carts) == 1 and carts[0]["value"] == 10


async def test_emptied_cart_is_closed(client, site, store):
    await client.post(f"/c/{site.key}/cart", content=json.dumps(cart_body("evt-cart-0001")), headers=H)
    await client.post(f"/c/{site.key}/cart", content=json.dumps(cart_body("evt-cart-0002", items=[])), headers=H)
    cart = await store.db.fetchone("SELECT status FROM carts")
    assert cart["status"] == "emptied"


async def test_lead_attaches_email_to_the_visitors_cart(client, site, store):
    await client.post(f"/c/{site.key}/cart", content=json.dumps(cart_body()), headers=H)
    lead = {
        "id": "evt-lead-0001",
        "vid": "visitor-0001",
        "email": " Ann@Example.com ",
        "consent": False,
        "discount_code": "SAVE10",
        "variants": {"headline": "B"},
    }
    assert (await client.post(f"/c/{site.key}/lead", content=json.dumps(lead), headers=H)).status_code == 200
    cart = await store.db.fetchone("SELECT email FROM carts")
    stored = await store.db.fetchone("SELECT * FROM leads")
    assert cart["email"] == "ann@example.com"
    assert stored["email"] == "ann@example.com" and stored["discount_code"] == "SAVE10" and stored["cart_value"] == 28.0
    assert json.loads(stored["variants"]) == {"headline": "B"}


@pytest.mark.parametrize(
    ("typed", "stored"),
    [
        ("crème@example.com", "crème@example.com"),  # a non-ASCII local part (sent over SMTPUTF8)
        ("Ann@Bücher.DE", "ann@bücher.de"),
        ("ann@XN--BCHER-KVA.de", "ann@bücher.de"),  # one mailbox, whichever form of the domain
        ("o'brien@example.ie", "o'brien@example.ie"),
    ],
)
async def test_international_and_unusual_addresses_are_stored_normalised(client, site, store, typed, stored):
    lead = {"id": "evt-lead-0001", "vid": "visitor-0001", "email": typed, "consent": True}
    r = await client.post(f"/c/{site.key}/lead", content=json.dumps(lead), headers=H)
    assert r.status_code == 200, r.text
    assert (await store.db.fetchone("SELECT email FROM leads"))["email"] == stored


async def test_honeypot_filled_stores_nothing(client, site, store):
    lead = {"id": "evt-lead-0001", "vid": "visitor-0001", "email": "bot@example.com", "hp": "http://spam"}
    r = await client.post(f"/c/{site.key}/lead", content=json.dumps(lead), headers=H)
    assert r.status_code == 200
    assert (await counts(store))["leads"] == 0


async def test_foreign_origin_cannot_write_even_with_a_valid_key(client, site, store):
    before = await counts(store)
    for origin in ("https://evil.test", "https://shop.test.evil.test", "null"):
        r = await client.post(f"/c/{site.key}/cart", content=json.dumps(cart_body()), headers={**H, "Origin": origin})
        assert r.status_code == 403 and "origin" in r.json()["error"]
    r = await client.post(
        f"/c/{site.key}/cart", content=json.dumps(cart_body()), headers={"Content-Type": "text/plain"}
    )
    assert r.status_code == 403
    assert await counts(store) == before


async def test_other_sites_key_from_this_origin_is_refused(client, site, store):
    other = await store.sites.create("Other", ["https://other.test"])
    r = await client.post(f"/c/{other.key}/cart", content=json.dumps(cart_body()), headers=H)
    assert r.status_code == 403


async def test_preflight_is_answered_for_allowed_origins_only(client, site):
    r = await client.options(
        f"/c/{site.key}/lead", headers={"Origin": SHOP_ORIGIN, "Access-Control-Request-Method": "POST"}
    )
    assert r.status_code == 204 and r.headers["access-control-allow-origin"] == SHOP_ORIGIN
    r = await client.options(f"/c/{site.key}/lead", headers={"Origin": "https://evil.test"})
    assert r.status_code == 403


async def test_unknown_site_key_is_404(client):
    r = await client.post("/c/pk_nope/cart", content=json.dumps(cart_body()), headers=H)
    assert r.status_code == 404 and r.json()["error"] == "unknown site key"


def deep(n: int) -> str:
    return '{"id": "evt-deep-0001", "vid": "visitor-0001", "items": ' + "[" * n + "]" * n + ', "currency": "EUR"}'


BAD_BODIES = {
    "empty": (b"", 400),
    "truncated": (b'{"id": "evt-cart-0001", "vid": "visitor-0001", "items": [', 400),
    "not json": (b"hello", 400),
    "deeply nested": (deep(5000).encode(), 400),
    "nested items": (deep(50).encode(), 422),
    "array": (b"[]", 422),
    "wrong type price": (
        json.dumps(cart_body(items=[{"id": "a", "name": "b", "price": "cheap", "quantity": 1}])).encode(),
        422,
    ),
    "negative quantity": (
        json.dumps(cart_body(items=[{"id": "a", "name": "b", "price": 1, "quantity": -1}])).encode(),
        422,
    ),
    "nan price": (
        b'{"id":"evt-cart-0001","vid":"visitor-0001","currency":"EUR","items":[{"id":"a","name":"b","price":NaN,"quantity":1}]}',
        422,
    ),
    "huge name": (
        json.dumps(cart_body(items=[{"id": "a", "name": "x" * 5000, "price": 1, "quantity": 1}])).encode(),
        422,
    ),
    "too many items": (
        json.dumps(
            cart_body(items=[{"id": str(i), "name": "b", "price": 1, "quantity": 1} for i in range(101)])
        ).encode(),
        422,
    ),
    "bad currency": (json.dumps(cart_body(currency="EURO")).encode(), 422),
    "missing id": (json.dumps({k: v for k, v in cart_body().items() if k != "id"}).encode(), 422),
    "bad client id": (json.dumps(cart_body(cid="a b")).encode(), 422),
    "NUL in name": (
        json.dumps(cart_body(items=[{"id": "a", "name": "mug\u0000", "price": 1, "quantity": 1}])).encode(),
        422,
    ),
    "over-size body": (json.dumps(cart_body(pad="x" * 40_000)).encode(), 413),
    "invalid utf-8": (b'{"id": "evt-cart-0001", "vid": "\xff\xfe"}', 400),
}

BAD_LEADS = {
    "invalid email": {"email": "not-an-email"},
    "email with spaces inside": {"email": "ann @example.com"},
    "email too long": {"email": "a" * 300 + "@example.com"},
    "email NUL": {"email": "ann\u0000@example.com"},
    "email label over 63 characters": {"email": "ann@" + "b" * 70 + ".com"},
    "email local part over 64 characters": {"email": "a" * 65 + "@example.com"},
    "email at a special-use domain": {"email": "ann@printer.local"},
    "email quoted": {"email": '"ann"@example.com'},
    "consent not bool": {"email": "ann@example.com", "consent": "maybe"},
    "huge variants": {"email": "ann@example.com", "variants": {f"e{i}": "v" for i in range(50)}},
}


@pytest.mark.parametrize("name", list(BAD_BODIES))
async def test_bad_cart_bodies_get_4xx_and_change_nothing(client, site, store, name):
    await client.post(f"/c/{site.key}/cart", content=json.dumps(cart_body("evt-good-0001")), headers=H)
    before = await counts(store)
    cart_before = await store.db.fetchone("SELECT items, value FROM carts")
    body, status = BAD_BODIES[name]
    r = await client.post(f"/c/{site.key}/cart", content=body, headers=H)
    assert r.status_code == status, r.text
    assert isinstance(r.json()["error"], str) and "Traceback" not in r.text
    assert await counts(store) == before
    assert await store.db.fetchone("SELECT items, value FROM carts") == cart_before


@pytest.mark.parametrize("name", list(BAD_LEADS))
async def test_bad_leads_get_4xx_and_store_nothing(client, site, store, name):
    body = {"id": "evt-lead-0001", "vid": "visitor-0001", **BAD_LEADS[name]}
    r = await client.post(f"/c/{site.key}/lead", content=json.dumps(body), headers=H)
    assert r.status_code == 422, r.text
    assert r.json()["error"]
    assert await counts(store) == {"events": 0, "carts": 0, "leads": 0, "orders": 0, "visitors": 0}


async def test_unknown_event_type_is_refused(client, site, store):
    r = await client.post(
        f"/c/{site.key}/event",
        content=json.dumps({"id": "evt-0000001", "vid": "visitor-0001", "type": "hack"}),
        headers=H,
    )
    assert r.status_code == 422 and "type" in r.json()["error"]


async def test_body_over_limit_without_content_length_is_413(client, site):
    async def chunks():
        for _ in range(40):
            yield b"x" * 1024

    r = await client.post(f"/c/{site.key}/cart", content=chunks(), headers=H)
    assert r.status_code == 413


async def test_refusals_carry_cors_headers_so_the_snippet_can_drop_them(client, site):
    r = await client.post(
        f"/c/{site.key}/cart", content=json.dumps(cart_body()), headers={**H, "Origin": "https://evil.test"}
    )
    assert r.status_code == 403 and r.headers["access-control-allow-origin"] == "https://evil.test"
    r = await client.post("/c/pk_nope/cart", content=json.dumps(cart_body()), headers=H)
    assert r.status_code == 404 and r.headers["access-control-allow-origin"] == SHOP_ORIGIN


async def test_a_body_cut_off_by_the_client_is_a_400_not_a_500(app, site):
    # Drive the ASGI app directly: the client disconnects after the first chunk.
    sent = []
    messages = [{"type": "http.request", "body": b'{"id": "evt-', "more_body": True}, {"type": "http.disconnect"}]

    async def receive():
        return messages.pop(0) if messages else {"type": "http.disconnect"}

    async def send(message):
        sent.append(message)

    scope = {
        "type": "http",
        "method": "POST",
        "path": f"/c/{site.key}/cart",
        "raw_path": f"/c/{site.key}/cart".encode(),
        "query_string": b"",
        "headers": [(b"origin", SHOP_ORIGIN.encode()), (b"content-type", b"text/plain")],
        "http_version": "1.1",
        "scheme": "http",
        "server": ("test", 80),
        "client": ("127.0.0.1", 1),
        "root_path": "",
    }
    await app(scope, receive, send)
    assert sent[0]["status"] == 400
