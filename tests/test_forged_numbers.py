"""Numbers a browser console cannot forge: browser purchases against the server's reports
(verified_revenue), a browser's purchase ending only its own cart, lead codes the site never gave,
open-pixel replays, link scanners, and restore links opened by someone else (issue 13)."""

from __future__ import annotations

import re
import time

from collector.recovery.sweep import sweep_once
from collector.store.carts import NOT_ISSUED
from tests.conftest import SHOP_ORIGIN
from tests.recovery_support import MUG, Shopper, one, rows, settings, sweep_state
from tests.test_recovery_links import DESKTOP, sent_email


async def order(client, token, site, order_id: str, value: float, **extra):
    r = await client.post(
        "/api/v1/orders",
        json={"site": site.key, "order_id": order_id, "value": value, "currency": "EUR", **extra},
        headers={"Authorization": f"Bearer {token}"},
    )
    assert r.status_code == 200, r.text
    return r.json()


async def stats(client, token, site):
    r = await client.get(f"/api/v1/sites/{site.key}/stats", headers={"Authorization": f"Bearer {token}"})
    assert r.status_code == 200, r.text
    return r.json()


async def test_a_browser_purchase_counts_until_the_servers_report_of_the_same_order_wins(app, client, store, token):
    site, links, email = await sent_email(app, client, store)
    assert (await client.get(links["r"])).status_code == 303  # ann clicks her reminder
    ann = Shopper(client, site, vid=(await one(store, "SELECT visitor_id FROM carts"))["visitor_id"])
    ann.seq = 100  # past the ids of the events sent_email's shopper sent from this browser
    # A console on ann's page reports a huge order under the id the store will use.
    await ann.purchase("A-1001", 999_999_999)
    cart = await one(store, "SELECT status FROM carts")
    assert cart["status"] == "purchased"  # the reminders stop at once
    assert (await one(store, "SELECT status FROM emails WHERE step = 1"))["status"] == "cancelled"
    s = await stats(client, token, site)
    assert s["recovered_orders"] == 1 and s["recovered_revenue"] == 999_999_999 and s["verified_revenue"] == 0
    # The store's server reports the real order: its value replaces the browser's.
    answer = await order(client, token, site, "A-1001", 28.0, email="ann@example.com")
    assert answer == {"site": site.key, "order_id": "A-1001", "recovered": True, "value": 28.0}
    s = await stats(client, token, site)
    assert s["recovered_orders"] == 1 and s["recovered_revenue"] == 28.0 and s["verified_revenue"] == 28.0
    # A later browser report of the same id changes nothing; nor does the server's own retry.
    await Shopper(client, site).purchase("A-1001", 5)
    assert (await order(client, token, site, "A-1001", 1.0))["value"] == 28.0
    stored = await rows(store, "SELECT value, verified, recovered FROM orders")
    assert stored == [{"value": 28.0, "verified": 1, "recovered": 1}]


async def test_a_server_report_without_a_browser_report_is_verified(client, store, token, site):
    await order(client, token, site, "B-1", 10.0)
    assert (await one(store, "SELECT verified FROM orders"))["verified"] == 1


async def test_a_browser_purchase_never_closes_another_browsers_cart(app, client, store, smtp):
    site = await store.sites.create("Test shop", [SHOP_ORIGIN], settings(abandon_after_minutes=0))
    ann = Shopper(client, site)
    await ann.lead("ann@example.com")
    await ann.cart(MUG)
    # Someone who knows ann's address, on another browser with no cart, "buys".
    mallory = Shopper(client, site)
    await mallory.identify("ann@example.com")
    await mallory.purchase("FAKE-1", 1)
    assert [c["status"] for c in await rows(store, "SELECT status FROM carts")] == ["open"]
    # Ann's reminder still goes out.
    s = await sweep_once(sweep_state(app, smtp.url), now=time.time() + 1)
    assert s["sent"] == 1 and smtp.messages[0].to == "ann@example.com"


async def test_a_lead_code_the_site_never_gave_is_stored_as_not_issued(client, store, site):
    await Shopper(client, site).send("lead", email="a@example.com", consent=True, discount_code="SAVE10")
    await Shopper(client, site).send("lead", email="b@example.com", consent=True, discount_code="FREE100")
    codes = await rows(store, "SELECT email, discount_code FROM leads ORDER BY email")
    assert codes == [
        {"email": "a@example.com", "discount_code": "SAVE10"},
        {"email": "b@example.com", "discount_code": NOT_ISSUED},
    ]


async def test_fifty_pixel_loads_are_one_open(app, client, store, token):
    site, links, email = await sent_email(app, client, store)
    for _ in range(50):
        assert (await client.get(links["o"], headers={"User-Agent": DESKTOP})).status_code == 200
    e = await one(store, "SELECT open_count, opened_at FROM emails WHERE id = ?", email["id"])
    assert e["open_count"] == 1 and e["opened_at"] is not None
    assert (await stats(client, token, site))["emails_opened"] == 1
    assert len(await rows(store, "SELECT id FROM opens")) == 1


async def test_link_scanners_are_not_clicks(app, client, store, token):
    site, links, email = await sent_email(app, client, store, sent_ago=2)
    # The receiving mail system's scanner, seconds after delivery, with a browser's User-Agent.
    assert (await client.get(links["r"], headers={"User-Agent": DESKTOP})).status_code == 303
    await store.db.write(lambda tx: tx.execute("UPDATE emails SET sent_at = ?", time.time() - 3600))
    assert (await client.head(links["r"])).status_code == 303
    assert (await client.get(links["r"], headers={"Sec-Purpose": "prefetch"})).status_code == 303
    assert (
        await client.get(links["r"], headers={"User-Agent": "Mozilla/5.0 (compatible; Mimecast)"})
    ).status_code == 303
    e = await one(store, "SELECT clicked_at, click_count, scanner_click_count FROM emails WHERE id = ?", email["id"])
    assert e == {"clicked_at": None, "click_count": 0, "scanner_click_count": 3}
    assert (await stats(client, token, site))["emails_clicked"] == 0
    # Ann's own click, an hour later, in her browser.
    await client.get(links["r"], headers={"User-Agent": DESKTOP})
    e = await one(store, "SELECT clicked_at, click_count FROM emails WHERE id = ?", email["id"])
    assert e["clicked_at"] is not None and e["click_count"] == 1


async def test_a_restore_link_opened_by_someone_else_never_sends_their_carts_to_the_first_shopper(
    app, client, store, smtp
):
    site, links, _ = await sent_email(app, client, store)
    r = await client.get(links["r"])
    token = re.search(r"cartback_restore=([^&]+)", r.headers["location"]).group(1)
    # Mallory plants ann's restore link on bob: bob's browser restores ann's cart...
    bob = Shopper(client, site)
    h = {"Origin": SHOP_ORIGIN}
    restored = await client.get(f"/c/{site.key}/restore", params={"t": token, "vid": bob.vid}, headers=h)
    assert restored.status_code == 200 and restored.json()["items"][0]["name"] == MUG["name"]
    # ...but bob is not ann: his own cart gets no address, and no reminder goes to ann for it.
    await bob.cart({**MUG, "name": "Bob's kettle"})
    bob_cart = await one(store, "SELECT email FROM carts WHERE visitor_id = ?", bob.vid)
    assert bob_cart["email"] is None
    assert await rows(store, "SELECT * FROM visitors WHERE visitor_id = ?", bob.vid) == []
    await sweep_once(sweep_state(app, smtp.url), now=time.time() + 86400 * 3)
    assert all("Bob's kettle" not in m.part("html") for m in smtp.messages)
    # A restore token is good once; a new click of the reminder makes a new one.
    again = await client.get(f"/c/{site.key}/restore", params={"t": token}, headers=h)
    assert again.status_code == 404 and "items" not in again.text
    fresh = re.search(r"cartback_restore=([^&]+)", (await client.get(links["r"])).headers["location"]).group(1)
    assert fresh != token
    assert (await client.get(f"/c/{site.key}/restore", params={"t": fresh}, headers=h)).status_code == 200
