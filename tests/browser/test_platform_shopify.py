"""Shopify with only the tag pasted, in real Chromium against the Shopify-like fake (tests/fakes/shopify.py):
the cart as the theme built it reaches the collector, the _cartback cart attribute is written, store email
fields identify (never an ignored one), a recovery link restores the lines into the platform cart with the
discount and lands on /cart, and an explicit cartback('cart') wins over the adapter."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any

import pytest
from playwright.sync_api import expect

from tests.browser.conftest import platform_site, ready, wait_until
from tests.fakes.shopify import ShopifyStore


@pytest.fixture
def store(shop: Any) -> Iterator[ShopifyStore]:
    fake = ShopifyStore()
    platform_site(shop, fake, "/cart")
    yield fake
    fake.close()


def carts(shop: Any) -> list[dict[str, Any]]:
    return shop.query("SELECT * FROM carts ORDER BY id")


def test_the_fake_answers_as_the_ajax_api_documents(store):
    import httpx

    with httpx.Client(base_url=store.origin) as c:
        empty = c.get("/cart.js").json()
        assert empty["items"] == [] and "?key=" in empty["token"] and empty["currency"] == "EUR"
        added = c.post("/cart/add.js", json={"items": [{"id": 40000000001, "quantity": 2}]}).json()
        assert [i["quantity"] for i in added["items"]] == [2]  # add.js answers only the added lines
        cart = c.post("/cart/change.js", json={"id": "40000000001", "quantity": 3}).json()
        (item,) = cart["items"]
        assert item["id"] == item["variant_id"] == 40000000001 and item["final_price"] == 1400
        assert item["product_title"] == "Enamel mug" and item["variant_title"] == "Blue"
        assert item["url"].startswith("/products/") and cart["total_price"] == 4200
        assert c.post("/cart/add.js", json={"items": [{"id": 40000000003, "quantity": 1}]}).status_code == 422
        assert c.post("/cart/update.js", json={"attributes": {"_cartback": "v"}}).json()["attributes"] == {
            "_cartback": "v"
        }
        assert c.post("/cart/clear.js").json()["items"] == []
        r = c.get("/discount/SAVE5?redirect=%2Fcart", follow_redirects=False)
        assert r.status_code == 302 and r.headers["location"] == "/cart"


def test_the_cart_the_theme_builds_reaches_the_collector(shop, store):
    page = shop.context().new_page()
    page.goto(store.origin + "/products/enamel-mug")
    ready(page)
    page.click("#add")
    page.wait_for_selector("#status:text('added')")
    # A Dawn-like quantity change through /cart/change.js: no DOM event, only the request.
    page.click("#more")
    page.wait_for_selector("#status:text('changed 3')")
    rows = shop.wait_rows("SELECT * FROM carts WHERE item_count = 3")
    assert rows, carts(shop)
    (item,) = json.loads(rows[0]["items"])
    assert item == {
        "id": "40000000001",
        "name": "Enamel mug - Blue",
        "price": 14.0,
        "quantity": 3,
        "image": "https://cdn.shopify.test/s/files/1/enamel-mug.png?v=1",
        "url": store.origin + "/products/enamel-mug?variant=40000000001",
    }
    assert rows[0]["currency"] == "EUR" and rows[0]["value"] == 42.0
    (cart,) = store.carts.values()
    assert rows[0]["platform_token"] == cart.token  # without its ?key= suffix
    vid = page.evaluate(f"() => localStorage.getItem('cb_{shop.site['key']}_vid')")
    assert wait_until(lambda: cart.attributes.get("_cartback") == json.loads(vid), page=page)


def test_store_email_fields_identify_but_not_ignored_ones(shop, store):
    store.pages["/account"] = store.layout(
        "Account",
        '<input id="ignored" type="email" name="gift_email" data-cartback-ignore>'
        '<input id="pw" type="password" name="email_password">'
        '<input id="email" type="email" name="customer[email]">',
    )
    page = shop.context().new_page()
    page.goto(store.origin + "/account")
    ready(page)
    page.fill("#ignored", "gift@example.com")
    page.locator("#ignored").dispatch_event("change")
    page.fill("#pw", "secret@example.com")
    page.locator("#pw").dispatch_event("change")
    page.fill("#email", "Ann@Example.com")
    page.locator("#email").blur()
    rows = shop.wait_rows("SELECT * FROM visitors")
    assert [r["email"] for r in rows] == ["ann@example.com"]
    page.wait_for_timeout(300)
    assert [r["email"] for r in shop.query("SELECT email FROM leads")] == ["ann@example.com"]


def test_a_recovery_link_restores_the_lines_into_the_shopify_cart_with_the_discount(shop, store):
    laptop = shop.context().new_page()
    laptop.goto(store.origin + "/products/enamel-mug")
    ready(laptop)
    laptop.evaluate("""() => fetch('/cart/add.js', {method: 'POST', headers: {'Content-Type': 'application/json'},
        body: JSON.stringify({items: [{id: 40000000001, quantity: 2}, {id: 40000000002, quantity: 1}]})})""")
    laptop.fill("#product-form input[name=quantity]", "1")  # the page keeps working
    laptop.evaluate("() => cartback('identify', {email: 'far@example.com'})")
    shop.wait_rows("SELECT * FROM carts WHERE email = 'far@example.com' AND item_count = 3")
    out = shop.collector.cli("send-due").stdout
    assert "sent 1" in out, out
    (box,) = shop.query("SELECT html FROM mailbox")
    link = re.search(r'href="(' + re.escape(shop.collector.url) + r'/r/[^"]+)"', box["html"]).group(1)

    # Another device: a fresh context, whose own platform cart already holds a line of its own.
    phone = shop.context().new_page()
    phone.goto(store.origin + "/")
    phone.evaluate("""() => fetch('/cart/add.js', {method: 'POST', headers: {'Content-Type': 'application/json'},
        body: JSON.stringify({items: [{id: 40000000001, quantity: 5}]})})""")
    phone.goto(link)
    phone.wait_for_url(store.origin + "/cart")
    # The landing page is the cart page too (its token leaves the address at once): the restored
    # cart is the page /discount/CODE redirects to, the one with the discount.
    expect(phone.locator("#discount")).to_have_text("COMEBACK15")
    lines = phone.eval_on_selector_all("#lines li", "els => els.map(e => [e.dataset.variant, e.dataset.quantity])")
    assert sorted(lines) == [["40000000001", "2"], ["40000000002", "1"]]
    # Reloading the cart page restores nothing again.
    before = len(store.requests)
    phone.reload()
    ready(phone)
    phone.wait_for_timeout(500)
    assert ("POST", "/cart/clear.js") not in store.requests[before:]
    assert sorted(lines) == sorted(
        phone.eval_on_selector_all("#lines li", "els => els.map(e => [e.dataset.variant, e.dataset.quantity])")
    )


def test_an_explicit_cart_wins_over_the_adapter(shop, store):
    store.pages["/custom"] = store.layout(
        "Custom",
        """<script>cartback('cart', {items: [{id: 'bundle', name: 'Theme bundle', price: 99, quantity: 1}], currency: 'EUR'});</script>""",
    )
    page = shop.context().new_page()
    page.goto(store.origin + "/products/enamel-mug")
    ready(page)
    page.click("#add")
    shop.wait_rows("SELECT * FROM carts WHERE item_count = 1")
    page.goto(store.origin + "/custom")
    ready(page)
    rows = shop.wait_rows("SELECT * FROM carts WHERE items LIKE '%bundle%'")
    assert rows and json.loads(rows[0]["items"])[0]["name"] == "Theme bundle"
    # The adapter's own read on this page view did not replace it afterwards.
    page.wait_for_timeout(800)
    assert "bundle" in carts(shop)[-1]["items"]
