"""The recovery link end to end in real Chromium: a cart built in one browser, the reminder sent by
`cartback send-due`, the link opened in a fresh browser context, the cart handed to onRestore."""

from __future__ import annotations

import json
import re
import sqlite3
import uuid

from tests.browser.conftest import page_html, ready, wait_until

CART = {
    "items": [
        {"id": "tee", "name": "Organic tee", "price": 20, "quantity": 2, "image": "https://shop.example/tee.png"},
        {"id": "mug", "name": "Enamel mug", "price": 9.5, "quantity": 1},
    ],
    "currency": "EUR",
}

# The store's cart page: registers onRestore before the snippet loads, as a shop would.
ON_RESTORE = """<script>
  window.cartback = window.cartback || function () { (window.cartback.q = window.cartback.q || []).push(arguments) };
  window.restored = [];
  cartback('onRestore', function (cart) { restored.push(cart); });
</script>"""


def setup_reminder(shop):
    """A shopper's abandoned cart and the reminder in the dev mailbox; returns (cart page path, recovery link)."""
    cart_path = f"/cart-{uuid.uuid4().hex[:8]}"
    shop.create_site(
        {"enabled": False},
        recovery={
            "abandon_after_minutes": 0,
            "cart_url": shop.storefront.origin + cart_path,
            "from": "Test Shop <shop@shop.test>",
            "steps": [{"delay_minutes": 0, "subject": "Your cart", "discount_code": "COMEBACK15"}],
        },
    )
    shop.storefront.add(
        cart_path,
        page_html(shop.site["snippet"], body="<p id='cart-page'>Your cart</p>", before=ON_RESTORE, title="Cart"),
    )
    laptop = shop.open(shop.page_url())
    laptop.evaluate(f"() => cartback('cart', {json.dumps(CART)})")
    laptop.evaluate("() => cartback('identify', {email: 'far@example.com'})")
    shop.wait_rows("SELECT * FROM carts WHERE email = 'far@example.com' AND item_count = 3")
    out = shop.collector.cli("send-due").stdout
    assert "sent 1" in out, out
    # She reads it an hour later (a fetch seconds after sending is a mail system's link scanner).
    with sqlite3.connect(shop.collector.db_path, timeout=10) as db:
        db.execute("UPDATE emails SET sent_at = sent_at - 3600")
    (box,) = shop.query("SELECT html FROM mailbox")
    link = re.search(r'href="(' + re.escape(shop.collector.url) + r'/r/[^"]+)"', box["html"]).group(1)
    return cart_path, link


def test_recovery_link_in_a_fresh_browser_lands_on_the_store_with_the_cart_restored(shop):
    cart_path, link = setup_reminder(shop)
    # Another device: a fresh context, no storage, no cookies, nothing of the first browser.
    page = shop.context().new_page()
    page.goto(link)
    ready(page)
    assert page.url.startswith(shop.storefront.origin + cart_path)
    page.wait_for_function("() => restored.length === 1")
    cart = page.evaluate("() => restored[0]")
    assert [(i["name"], i["quantity"]) for i in cart["items"]] == [("Organic tee", 2), ("Enamel mug", 1)]
    assert cart["currency"] == "EUR" and cart["discount_code"] == "COMEBACK15"
    # The token is taken out of the address bar once used.
    assert page.evaluate("() => location.search") == ""
    (email,) = shop.query("SELECT click_count, clicked_at FROM emails")
    assert email["click_count"] == 1 and email["clicked_at"] is not None


def test_a_tampered_recovery_link_does_not_restore_anything(shop):
    cart_path, link = setup_reminder(shop)
    head, _, sig = link.rpartition(".")
    tampered = f"{head}.{sig[:4]}{'A' if sig[4] != 'A' else 'B'}{sig[5:]}"
    page = shop.context().new_page()
    response = page.goto(tampered)
    assert response is not None and response.status == 404
    assert page.url == tampered  # stayed on the collector's friendly page, never reached the store
    assert "not valid" in page.content()
    assert shop.query("SELECT click_count FROM emails")[0]["click_count"] == 0

    # A forged restore token put straight into the store's URL: the snippet gets no cart either.
    page.goto(f"{shop.storefront.origin}{cart_path}?cartback_restore=eyJjIjoxfQ.forged.forgedforgedforged")
    ready(page)
    page.wait_for_timeout(500)
    assert page.evaluate("() => restored") == []
    assert wait_until(lambda: page.evaluate("() => location.search") == "")


def test_the_unsubscribe_page_works_in_a_real_browser(shop):
    setup_reminder(shop)
    # She reads it an hour later (a fetch seconds after sending is a mail system's link scanner).
    with sqlite3.connect(shop.collector.db_path, timeout=10) as db:
        db.execute("UPDATE emails SET sent_at = sent_at - 3600")
    (box,) = shop.query("SELECT html FROM mailbox")
    link = re.search(r'href="(' + re.escape(shop.collector.url) + r'/u/[^"]+)"', box["html"]).group(1)
    page = shop.context().new_page()
    page.goto(link)
    assert shop.query("SELECT * FROM unsubscribes") == []  # looking is not unsubscribing
    page.get_by_role("button", name="Unsubscribe").click()
    page.wait_for_selector("text=You are unsubscribed")
    assert [r["email"] for r in shop.query("SELECT email FROM unsubscribes")] == ["far@example.com"]
