"""WooCommerce with only the tag pasted, in real Chromium against the WooCommerce-like fake
(tests/fakes/woocommerce.py): the cart as the theme built it (Blocks, classic, a Cart block quantity
change that fires no event) reaches the collector, the checkout's email is captured and an ignored field
is not, a recovery link restores the lines into the Store API cart with the coupon and lands on the cart
page, the order-received page credits the purchase once, an explicit cartback('cart') wins, and a nonce
refusal, a 500 or an HTML answer is survived without a loop."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any

import pytest
from playwright.sync_api import expect

from tests.browser.conftest import platform_site, ready, wait_until
from tests.fakes.woocommerce import WooStore


@pytest.fixture
def store(shop: Any) -> Iterator[WooStore]:
    fake = WooStore()
    platform_site(shop, fake, "/cart/")
    yield fake
    fake.close()


def build_cart(shop: Any, store: WooStore) -> Any:
    """Two hoodies by the Blocks' button... one, then two beanies the classic way, then the Cart block
    sets three hoodies (a Store API write and no event)."""
    page = shop.context().new_page()
    page.goto(store.origin + "/product/hoodie/")
    ready(page)
    page.click("#add")
    page.wait_for_selector("#status:text('added 1')")
    page.click("#add-beanie")
    page.wait_for_selector("#status:text('classic added')")
    page.click("#three")
    page.wait_for_selector("#status:text('quantity 5')")
    return page


def lines(page: Any) -> list[list[str]]:
    return sorted(page.eval_on_selector_all("#lines li", "els => els.map(e => [e.dataset.id, e.dataset.quantity])"))


def test_the_cart_the_theme_builds_reaches_the_collector(shop, store):
    page = build_cart(shop, store)
    rows = shop.wait_rows("SELECT * FROM carts WHERE item_count = 5")
    assert rows, shop.query("SELECT * FROM carts")
    items = sorted(json.loads(rows[0]["items"]), key=lambda i: i["id"])
    assert items == [
        {
            "id": "21",
            "name": "Beanie",
            "price": 18.0,
            "quantity": 2,
            "image": store.origin + "/wp-content/uploads/beanie-450x450.jpg",
            "url": store.origin + "/product/beanie/",
        },
        {
            "id": "35",
            "name": "Hoodie - Blue, L",
            "price": 45.5,
            "quantity": 3,
            "image": store.origin + "/wp-content/uploads/hoodie-450x450.jpg",
            "url": store.origin + "/product/hoodie/",
        },
    ]
    assert rows[0]["currency"] == "EUR" and rows[0]["value"] == 172.5
    (cart,) = store.carts.values()
    assert rows[0]["platform_token"] == cart.session  # the session behind the re-signed Cart-Token
    # The theme's own requests and pages kept working.
    assert page.inner_text("#status") == "quantity 5"


def test_jquery_events_alone_trigger_a_read(shop, store):
    # A classic theme whose add to cart the adapter cannot see on the wire (a form post in another
    # frame, say): only jQuery's added_to_cart tells it.
    page = shop.context().new_page()
    page.goto(store.origin + "/product/hoodie/")
    ready(page)
    assert wait_until(lambda: ("GET", "/wp-json/wc/store/v1/cart") in store.requests)
    page.wait_for_timeout(300)  # the first read, on load, is done
    store.add(next(iter(store.carts.values())), 21, 4)
    page.evaluate("() => jQuery(document.body).trigger('added_to_cart')")
    assert shop.wait_rows("SELECT * FROM carts WHERE item_count = 4")


def test_the_checkout_email_is_captured_and_an_ignored_field_is_not(shop, store):
    page = shop.context().new_page()
    page.goto(store.origin + "/checkout/")
    ready(page)
    page.fill("#gift_email", "gift@example.com")
    page.locator("#gift_email").dispatch_event("change")
    page.fill("#billing_email", "Ann@Example.com")
    page.locator("#billing_email").blur()
    rows = shop.wait_rows("SELECT * FROM visitors WHERE email IS NOT NULL")
    assert [r["email"] for r in rows] == ["ann@example.com"]
    page.wait_for_timeout(300)
    assert [r["email"] for r in shop.query("SELECT email FROM leads")] == ["ann@example.com"]


def recovery_link(shop: Any, store: WooStore, email: str) -> str:
    laptop = build_cart(shop, store)
    laptop.evaluate(f"() => cartback('identify', {{email: '{email}'}})")
    shop.wait_rows(f"SELECT * FROM carts WHERE email = '{email}' AND item_count = 5")
    out = shop.collector.cli("send-due").stdout
    assert "sent 1" in out, out
    (box,) = shop.query("SELECT html FROM mailbox")
    return re.search(r'href="(' + re.escape(shop.collector.url) + r'/r/[^"]+)"', box["html"]).group(1)


def test_a_recovery_link_restores_the_lines_into_the_woocommerce_cart_with_the_coupon(shop, store):
    link = recovery_link(shop, store, "far@example.com")
    # Another device: a fresh context whose own cart already holds five beanies.
    phone = shop.context().new_page()
    phone.goto(store.origin + "/")
    phone.evaluate(
        "() => fetch('/?wc-ajax=add_to_cart', {method: 'POST', body: new URLSearchParams({product_id: '21', quantity: '5'})})"
    )
    phone.goto(link)
    phone.wait_for_url(store.origin + "/cart/")
    # The landing page is the cart page too (its token leaves the address at once): the restored
    # cart is the page the adapter loads next, the one with the coupon.
    expect(phone.locator("#coupons")).to_have_text("comeback15")
    # Exactly the reminder's lines: the beanies already there are not doubled (nor kept at five).
    assert lines(phone) == [["21", "2"], ["35", "3"]]
    assert not phone.locator("p[role=status]").count()  # everything came back: no note
    batches = [r for r in store.requests if r == ("POST", "/wp-json/wc/store/v1/batch")]
    assert len(batches) == 1
    # Reloading the cart page restores nothing again.
    before = len(store.requests)
    phone.reload()
    ready(phone)
    phone.wait_for_timeout(500)
    assert ("POST", "/wp-json/wc/store/v1/batch") not in store.requests[before:]
    assert lines(phone) == [["21", "2"], ["35", "3"]]


def test_a_restore_that_cannot_put_everything_back_keeps_the_rest_and_says_so(shop, store):
    link = recovery_link(shop, store, "part@example.com")
    store.catalog[35][4] = False  # the hoodie sold out since
    phone = shop.context().new_page()
    # The page's own onRestore callback, queued through the stub before the tag loads, still runs.
    phone.add_init_script(
        "window.cartback = function () { (window.cartback.q = window.cartback.q || []).push(arguments) };"
        "cartback('onRestore', (c) => sessionStorage.setItem('restored', JSON.stringify(c)));"
    )
    phone.goto(link)
    phone.wait_for_url(store.origin + "/cart/")
    phone.wait_for_selector("p[role=status]")
    assert lines(phone) == [["21", "2"]] and phone.inner_text("#coupons") == "comeback15"
    assert "could not be put back" in phone.inner_text("p[role=status]")
    restored = json.loads(phone.evaluate("() => sessionStorage.getItem('restored')"))
    assert sorted((i["id"], i["quantity"]) for i in restored["items"]) == [("21", 2), ("35", 3)]
    assert restored["discount_code"] == "COMEBACK15"


def test_the_order_received_page_reports_the_purchase_once(shop, store):
    page = build_cart(shop, store)
    page.evaluate("() => cartback('identify', {email: 'buyer@example.com'})")
    shop.wait_rows("SELECT * FROM carts WHERE email = 'buyer@example.com' AND item_count = 5")
    sent: list[str] = []
    page.on("request", lambda r: r.url.endswith("/purchase") and sent.append(r.url))
    page.goto(store.origin + "/checkout/")
    ready(page)
    page.fill("#billing_email", "buyer@example.com")
    page.click("#place_order")
    page.wait_for_url(re.compile(r".*/checkout/order-received/\d+/\?key=wc_order_\w+$"))
    (order,) = store.orders.values()
    rows = shop.wait_rows("SELECT * FROM orders")
    assert [(r["order_id"], r["value"], r["currency"]) for r in rows] == [(str(order["id"]), 172.5, "EUR")]
    assert rows[0]["cart_id"] is not None
    page.reload()
    ready(page)
    page.wait_for_timeout(800)
    assert len(sent) == 1, sent


def test_an_explicit_cart_wins_over_the_adapter(shop, store):
    store.pages["/custom/"] = (
        "<script>cartback('cart', {items: [{id: 'bundle', name: 'Theme bundle', price: 99, quantity: 1}], currency: 'EUR'});</script>"
    )
    page = build_cart(shop, store)
    shop.wait_rows("SELECT * FROM carts WHERE item_count = 5")
    page.goto(store.origin + "/custom/")
    ready(page)
    rows = shop.wait_rows("SELECT * FROM carts WHERE items LIKE '%bundle%'")
    assert rows and json.loads(rows[0]["items"])[0]["name"] == "Theme bundle"
    page.wait_for_timeout(800)  # the adapter's own read on this page view did not replace it
    assert "bundle" in shop.query("SELECT items FROM carts ORDER BY id")[-1]["items"]


@pytest.mark.parametrize("fault", ["500", "html", "404"])
def test_a_broken_store_api_is_survived_without_a_loop(shop, store, fault):
    store.fault = fault
    page = shop.context().new_page()
    page.goto(store.origin + "/product/hoodie/")
    ready(page)
    page.click("#add-beanie")  # the classic add still works (wc-ajax), the Store API read fails
    page.wait_for_selector("#status:text('classic added')")
    page.wait_for_timeout(1500)
    reads = [r for r in store.requests if r == ("GET", "/wp-json/wc/store/v1/cart")]
    # One read on load, one after the add: never a retry loop.
    assert 1 <= len(reads) <= 3, reads
    assert shop.query("SELECT * FROM carts") == []
    assert page.evaluate("() => typeof cartback") == "function"


def test_a_nonce_refusal_during_a_restore_lands_on_the_cart_with_the_note(shop, store):
    link = recovery_link(shop, store, "nonce@example.com")
    store.fault = "nonce"
    phone = shop.context().new_page()
    phone.goto(link)
    phone.wait_for_url(store.origin + "/cart/")
    phone.wait_for_selector("p[role=status]")
    assert lines(phone) == []
    before = len(store.requests)
    phone.wait_for_timeout(800)
    assert ("POST", "/wp-json/wc/store/v1/batch") not in store.requests[before:]  # no retry
    assert wait_until(lambda: phone.evaluate("() => typeof cartback") == "function", page=phone)


def test_a_reminder_of_more_than_25_lines_is_restored_in_batches_of_25(shop, store):
    for n in range(30):
        store.catalog[1000 + n] = [f"Sticker {n}", [], 150, f"sticker-{n}", True]
    laptop = shop.context().new_page()
    laptop.goto(store.origin + "/product/hoodie/")
    ready(laptop)
    laptop.evaluate("""async () => {
        for (let n = 0; n < 30; n++)
            await fetch(wcBlocksMiddlewareConfig.root + 'wc/store/v1/cart/add-item', {method: 'POST',
                headers: {'Content-Type': 'application/json', Nonce: wcBlocksMiddlewareConfig.storeApiNonce},
                body: JSON.stringify({id: 1000 + n, quantity: 1})});
        cartback('identify', {email: 'many@example.com'});
    }""")
    shop.wait_rows("SELECT * FROM carts WHERE email = 'many@example.com' AND item_count = 30")
    assert "sent 1" in shop.collector.cli("send-due").stdout
    (box,) = shop.query("SELECT html FROM mailbox")
    link = re.search(r'href="(' + re.escape(shop.collector.url) + r'/r/[^"]+)"', box["html"]).group(1)
    phone = shop.context().new_page()
    phone.goto(link)
    phone.wait_for_url(store.origin + "/cart/")
    phone.wait_for_selector("#lines li")
    assert lines(phone) == sorted([str(1000 + n), "1"] for n in range(30))
    assert store.requests.count(("POST", "/wp-json/wc/store/v1/batch")) == 2
    assert not phone.locator("p[role=status]").count()
