"""The platforms' order webhooks, from outside: Shopify's "Order creation" and WooCommerce's order.created
reach /hooks/{platform}/{key}, are verified, and count as a server report of the order."""

from __future__ import annotations

import base64
import subprocess
import time

import pytest

from collector.recovery.sweep import sweep_once
from collector.schemas import SiteSettings
from tests.conftest import SHOP_ORIGIN
from tests.fakes import platform_webhooks as fake
from tests.recovery_support import MINUTE, MUG, Shopper, one, rows, settings, sweep_state

SHOPIFY_SECRET = "shpss_5f1d0c9e8b7a6f5e4d3c2b1a"
WOO_SECRET = "wc-secret-8e7d6c5b4a39"


def platform_settings(**platform: object) -> SiteSettings:
    doc = settings().model_dump(mode="json", by_alias=True)
    doc["platform"] = {"shopify_webhook_secret": SHOPIFY_SECRET, "woocommerce_webhook_secret": WOO_SECRET, **platform}
    return SiteSettings.model_validate(doc)


@pytest.fixture
async def shop(store):
    return await store.sites.create("Platform shop", [SHOP_ORIGIN], platform_settings())


async def abandoned_with_reminder(app, client, store, smtp, site, vid: str | None = None, token: str | None = None):
    """A shopper whose cart was abandoned and got step one; step two is pending."""
    shopper = Shopper(client, site, vid)
    await shopper.lead("ann@example.com")
    body = {"items": [MUG], "currency": "EUR"}
    if token:
        body["platform_token"] = token
    await shopper.send("cart", **body)
    state = sweep_state(app, smtp.url)
    t = time.time() + 61 * MINUTE
    assert (await sweep_once(state, now=t))["sent"] == 1
    return shopper


# -- the fake itself, against the documented shapes ------------------------------------------


def test_fake_payloads_have_the_documented_shapes():
    s = fake.shopify_order(cart_token="c1", cart_attribute="v1")
    assert isinstance(s["id"], int) and isinstance(s["total_price"], str) and float(s["total_price"]) == 28.0
    assert {"email", "currency", "cart_token", "note_attributes", "line_items", "customer"} <= s.keys()
    assert all(set(a) == {"name", "value"} for a in s["note_attributes"])
    w = fake.woocommerce_order(meta=[{"id": 1, "key": "k", "value": "v"}])
    assert isinstance(w["id"], int) and isinstance(w["total"], str) and w["billing"]["email"]
    assert all({"id", "key", "value"} <= m.keys() for m in w["meta_data"])


@pytest.mark.parametrize("make", [fake.shopify_delivery, fake.woocommerce_delivery])
def test_fake_signatures_match_an_independent_hmac(make):
    payload = fake.shopify_order() if make is fake.shopify_delivery else fake.woocommerce_order()
    body, headers = make(payload, "s3cret-value")
    header = headers.get("X-Shopify-Hmac-Sha256") or headers["X-WC-Webhook-Signature"]
    # openssl, not Python's hmac: the fake must sign as the platforms document, not as we verify.
    digest = subprocess.run(
        ["openssl", "dgst", "-sha256", "-hmac", "s3cret-value", "-binary"], input=body, capture_output=True, check=True
    ).stdout
    assert header == base64.b64encode(digest).decode()


# -- Shopify ----------------------------------------------------------------------------------


async def test_shopify_order_matched_by_the_cart_attribute_stops_the_reminders(app, client, store, smtp, shop):
    shopper = await abandoned_with_reminder(app, client, store, smtp, shop)
    body, headers = fake.shopify_delivery(fake.shopify_order(email=None, cart_attribute=shopper.vid), SHOPIFY_SECRET)
    r = await client.post(f"/hooks/shopify/{shop.key}", content=body, headers=headers)
    assert r.status_code == 200, r.text
    assert r.json()["stored"] is True and r.json()["matched"] is True
    order = await one(store, "SELECT * FROM orders")
    assert order["order_id"] == "820982911946154508" and order["value"] == 28.0 and order["currency"] == "EUR"
    assert (await one(store, "SELECT status FROM carts"))["status"] == "purchased"
    assert (await one(store, "SELECT status FROM emails WHERE step = 1"))["status"] == "cancelled"


async def test_shopify_order_matched_by_cart_token_without_its_key_suffix(app, client, store, smtp, shop):
    await abandoned_with_reminder(app, client, store, smtp, shop, token="Z2NwLWV1cm9wZS13ZXN0NDox")
    order = fake.shopify_order(email=None, cart_token="Z2NwLWV1cm9wZS13ZXN0NDox?key=8f3c1a")
    body, headers = fake.shopify_delivery(order, SHOPIFY_SECRET)
    r = await client.post(f"/hooks/shopify/{shop.key}", content=body, headers=headers)
    assert r.status_code == 200 and r.json()["matched"] is True
    assert (await one(store, "SELECT status FROM carts"))["status"] == "purchased"


async def test_shopify_order_matched_by_email_and_idempotent(app, client, store, smtp, shop):
    await abandoned_with_reminder(app, client, store, smtp, shop)
    body, headers = fake.shopify_delivery(fake.shopify_order(email="Ann@Example.com"), SHOPIFY_SECRET)
    for _ in range(3):  # Shopify retries a delivery it thinks failed
        r = await client.post(f"/hooks/shopify/{shop.key}", content=body, headers=headers)
        assert r.status_code == 200, r.text
    assert len(await rows(store, "SELECT * FROM orders")) == 1
    assert (await one(store, "SELECT status FROM carts"))["status"] == "purchased"


async def test_a_verified_order_that_matches_nothing_is_stored_and_answered_2xx(client, store, shop):
    body, headers = fake.shopify_delivery(fake.shopify_order(email="stranger@example.com"), SHOPIFY_SECRET)
    r = await client.post(f"/hooks/shopify/{shop.key}", content=body, headers=headers)
    assert r.status_code == 200 and r.json() == {
        "ok": True,
        "stored": True,
        "order_id": "820982911946154508",
        "matched": False,
        "recovered": False,
    }
    # Verified but not an order we can count: still 2xx, nothing stored, the reason said.
    body, headers = fake.shopify_delivery({"id": 5, "currency": "EUR"}, SHOPIFY_SECRET)
    r = await client.post(f"/hooks/shopify/{shop.key}", content=body, headers=headers)
    assert r.status_code == 200 and r.json()["stored"] is False and "total_price" in r.json()["reason"]
    assert len(await rows(store, "SELECT * FROM orders")) == 1


async def test_missing_or_wrong_signatures_get_401_and_store_nothing(client, store, shop):
    good_body, good = fake.shopify_delivery(fake.shopify_order(), SHOPIFY_SECRET)
    wrong = dict(
        good,
        **{
            "X-Shopify-Hmac-Sha256": fake.shopify_delivery(fake.shopify_order(), "other-secret")[1][
                "X-Shopify-Hmac-Sha256"
            ]
        },
    )
    missing = {k: v for k, v in good.items() if k != "X-Shopify-Hmac-Sha256"}
    tampered = good_body.replace(b'"28.00"', b'"0.01"')
    for body, headers in ((good_body, wrong), (good_body, missing), (tampered, good)):
        r = await client.post(f"/hooks/shopify/{shop.key}", content=body, headers=headers)
        assert r.status_code == 401 and "signature" in r.json()["error"]
    # A site without a secret refuses every delivery; an unknown key answers the same.
    bare = await store.sites.create("No secret", [SHOP_ORIGIN], settings())
    for key in (bare.key, "no-such-site"):
        r = await client.post(f"/hooks/shopify/{key}", content=good_body, headers=good)
        assert r.status_code == 401
    assert await rows(store, "SELECT * FROM orders") == []


# -- WooCommerce ------------------------------------------------------------------------------


async def test_woocommerce_ping_gets_200_and_stores_nothing(client, store, shop):
    body, headers = fake.woocommerce_ping()
    r = await client.post(f"/hooks/woocommerce/{shop.key}", content=body, headers=headers)
    assert r.status_code == 200
    assert await rows(store, "SELECT * FROM orders") == []


async def test_woocommerce_order_counts_its_total_and_matches_by_email(app, client, store, smtp, shop):
    await abandoned_with_reminder(app, client, store, smtp, shop)
    body, headers = fake.woocommerce_delivery(fake.woocommerce_order(email="ann@example.com"), WOO_SECRET)
    r = await client.post(f"/hooks/woocommerce/{shop.key}", content=body, headers=headers)
    assert r.status_code == 200 and r.json()["matched"] is True
    order = await one(store, "SELECT * FROM orders")
    assert order["order_id"] == "727" and order["value"] == 29.35
    assert (await one(store, "SELECT status FROM emails WHERE step = 1"))["status"] == "cancelled"
    # The Shopify secret does not open the WooCommerce hook.
    body, headers = fake.woocommerce_delivery(fake.woocommerce_order(order_id=728), SHOPIFY_SECRET)
    r = await client.post(f"/hooks/woocommerce/{shop.key}", content=body, headers=headers)
    assert r.status_code == 401


# -- settings ---------------------------------------------------------------------------------


async def test_platform_settings_are_validated_and_secrets_stay_on_the_server(client, shop):
    with pytest.raises(ValueError, match="platform.kind"):
        platform_settings(kind="magento")
    with pytest.raises(ValueError, match="platform"):
        platform_settings(colour="red")
    r = await client.get(f"/s/{shop.key}.js")
    assert r.status_code == 200
    assert SHOPIFY_SECRET not in r.text and WOO_SECRET not in r.text
    # The adapters get only what they need.
    assert '"platform":{"kind":"auto","email_fields":true}' in r.text
