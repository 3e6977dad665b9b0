"""What stops the sequence (a purchase, an unsubscribe, an emptied cart, also at the last moment before
sending) and what counts as recovered revenue (only orders inside the attribution window)."""

from __future__ import annotations

import re
import time

import pytest

from collector.recovery import reminders
from collector.recovery.sweep import _Sender, empty_summary, sweep_once
from collector.store import emails
from tests.conftest import SHOP_ORIGIN
from tests.recovery_support import MINUTE, MUG, Shopper, one, rows, settings, sweep_state

DAY = 86400.0


async def after_step_one(app, client, store, smtp, addr="ann@example.com"):
    """A shopper whose cart was abandoned and who got step one; step two is pending."""
    site = await store.sites.create("Test shop", [SHOP_ORIGIN], settings())
    shopper = Shopper(client, site)
    await shopper.lead(addr)
    await shopper.cart(MUG)
    state = sweep_state(app, smtp.url)
    t = time.time() + 61 * MINUTE
    assert (await sweep_once(state, now=t))["sent"] == 1
    statuses = [e["status"] for e in await rows(store, "SELECT status FROM emails ORDER BY step")]
    assert statuses == ["sent", "pending"]
    return site, shopper, state, t


async def nothing_more_is_sent(store, smtp, state, t, sent_before=1):
    assert (await sweep_once(state, now=t + 30 * DAY))["sent"] == 0
    assert len(smtp.messages) == sent_before


async def test_purchase_in_the_store_stops_the_sequence(app, client, store, smtp):
    site, shopper, state, t = await after_step_one(app, client, store, smtp)
    await shopper.purchase("order-1", 28.0)
    assert (await one(store, "SELECT status FROM carts"))["status"] == "purchased"
    assert (await one(store, "SELECT status FROM emails WHERE step = 1"))["status"] == "cancelled"
    await nothing_more_is_sent(store, smtp, state, t)


async def test_purchase_reported_by_the_store_server_stops_the_sequence(app, client, store, smtp, token):
    site, shopper, state, t = await after_step_one(app, client, store, smtp)
    r = await client.post(
        "/api/v1/orders",
        json={"site": site.key, "order_id": "srv-1", "value": 28.0, "currency": "EUR", "email": "ann@example.com"},
        headers={"Authorization": f"Bearer {token}"},
    )
    assert r.status_code == 200, r.text
    assert (await one(store, "SELECT status FROM emails WHERE step = 1"))["status"] == "cancelled"
    await nothing_more_is_sent(store, smtp, state, t)


async def test_emptied_cart_stops_the_sequence(app, client, store, smtp):
    site, shopper, state, t = await after_step_one(app, client, store, smtp)
    await shopper.cart()
    assert (await one(store, "SELECT status FROM carts"))["status"] == "emptied"
    assert (await one(store, "SELECT status FROM emails WHERE step = 1"))["status"] == "cancelled"
    await nothing_more_is_sent(store, smtp, state, t)


async def test_unsubscribe_page_then_confirm_stops_the_sequence(app, client, store, smtp):
    site, shopper, state, t = await after_step_one(app, client, store, smtp)
    html = smtp.messages[0].part("html")
    unsub = re.search(r'href="http://collector\.test(/u/[^"]+)"', html).group(1)
    # The page for people: a GET changes nothing (mail scanners follow links).
    r = await client.get(unsub)
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
    assert '<form method="post"' in r.text and "Unsubscribe</button>" in r.text
    assert "a•" in r.text and "example.com" in r.text  # the address, masked
    assert await rows(store, "SELECT * FROM unsubscribes") == []
    assert (await one(store, "SELECT status FROM emails WHERE step = 1"))["status"] == "pending"
    # The button posts the form.
    r = await client.post(unsub, data={"confirm": "1"})
    assert r.status_code == 200 and "You are unsubscribed" in r.text
    (u,) = await rows(store, "SELECT * FROM unsubscribes")
    assert (u["site_id"], u["email"]) == (site.id, "ann@example.com")
    assert (await one(store, "SELECT status, error FROM emails WHERE step = 1")) == {
        "status": "cancelled",
        "error": "unsubscribed",
    }
    assert "You are unsubscribed" in (await client.get(unsub)).text
    await nothing_more_is_sent(store, smtp, state, t)
    # A new cart later: abandoned, but no reminders go to the address that unsubscribed.
    again = Shopper(client, site)
    await again.identify("ann@example.com")
    await again.cart(MUG)
    s = await sweep_once(state, now=time.time() + 61 * MINUTE)
    assert s["abandoned"] == 1 and s["sent"] == 0
    assert await rows(store, "SELECT * FROM emails WHERE cart_id = (SELECT MAX(id) FROM carts)") == []
    await nothing_more_is_sent(store, smtp, state, t + 30 * DAY)


async def test_one_click_unsubscribe_per_rfc_8058(app, client, store, smtp):
    site, shopper, state, t = await after_step_one(app, client, store, smtp)
    header = smtp.messages[0].message["List-Unsubscribe"]
    url = re.fullmatch(r"<http://collector\.test(/u/[^>]+)>", header).group(1)
    # What a mailbox provider sends: a POST with List-Unsubscribe=One-Click, no cookies, no page.
    r = await client.post(
        url, content=b"List-Unsubscribe=One-Click", headers={"Content-Type": "application/x-www-form-urlencoded"}
    )
    assert r.status_code == 200
    assert len(await rows(store, "SELECT * FROM unsubscribes")) == 1
    # Twice is fine.
    assert (
        await client.post(
            url, content=b"List-Unsubscribe=One-Click", headers={"Content-Type": "application/x-www-form-urlencoded"}
        )
    ).status_code == 200
    assert len(await rows(store, "SELECT * FROM unsubscribes")) == 1
    await nothing_more_is_sent(store, smtp, state, t)


@pytest.mark.parametrize("what", ["purchase", "unsubscribe", "emptied", "replaced"])
async def test_the_sender_checks_again_right_before_sending(app, client, store, smtp, what):
    """An email already claimed when the purchase (or unsubscribe, ...) lands is not sent."""
    site, shopper, state, t = await after_step_one(app, client, store, smtp)
    jobs, _ = await reminders.claim_due(store.db, store.sites, t + 1441 * MINUTE, "sweeper-1")
    assert [j.email["step"] for j in jobs] == [1]
    if what == "purchase":
        await shopper.purchase("order-late", 28.0)
    elif what == "unsubscribe":
        await emails.unsubscribe(store.db, site.id, "ann@example.com", time.time())
    elif what == "emptied":
        await shopper.cart()
    else:
        phone = Shopper(client, site)
        await phone.identify("ann@example.com")
        await phone.cart(MUG)
    summary = empty_summary()
    await _Sender(state.store, state.signer, state.config, t + 1441 * MINUTE, summary).send_one(jobs[0])
    assert summary["sent"] == 0 and len(smtp.messages) == 1
    e = await one(store, "SELECT status, error FROM emails WHERE id = ?", jobs[0].id)
    assert e["status"] == "cancelled"
    assert (
        e["error"]
        == {
            "purchase": "cart purchased",
            "unsubscribe": "unsubscribed",
            "emptied": "cart emptied",
            "replaced": "cart replaced",
        }[what]
    )


async def click_and_buy(client, store, site, smtp, addr, order_id, value, token, clicked_days_ago):
    (m,) = smtp.handler.for_addr(addr)
    link = re.search(r'href="http://collector\.test(/r/[^"]+)"', m.part("html")).group(1)
    assert (await client.get(link)).status_code == 303
    # Time travel: the click happened that many days before the order.
    await store.db.write(
        lambda tx: tx.execute(
            "UPDATE emails SET clicked_at = ? WHERE to_addr = ? AND clicked_at IS NOT NULL",
            time.time() - clicked_days_ago * DAY,
            addr,
        )
    )
    r = await client.post(
        "/api/v1/orders",
        json={"site": site.key, "order_id": order_id, "value": value, "currency": "EUR", "email": addr},
        headers={"Authorization": f"Bearer {token}"},
    )
    assert r.status_code == 200, r.text
    return r.json()


async def test_recovered_revenue_counts_only_orders_inside_the_attribution_window(app, client, store, smtp, token):
    site = await store.sites.create("Test shop", [SHOP_ORIGIN], settings(attribution_days=5))
    for addr in ("inside@example.com", "outside@example.com", "noclick@example.com"):
        s = Shopper(client, site)
        await s.lead(addr)
        await s.cart(MUG)
    await sweep_once(sweep_state(app, smtp.url), now=time.time() + 61 * MINUTE)
    assert len(smtp.messages) == 3
    inside = await click_and_buy(client, store, site, smtp, "inside@example.com", "o-in", 40.0, token, 4.9)
    outside = await click_and_buy(client, store, site, smtp, "outside@example.com", "o-out", 70.0, token, 5.1)
    r = await client.post(
        "/api/v1/orders",
        json={"site": site.key, "order_id": "o-none", "value": 90.0, "currency": "EUR", "email": "noclick@example.com"},
        headers={"Authorization": f"Bearer {token}"},
    )
    assert r.json()["recovered"] is False
    assert inside["recovered"] is True and outside["recovered"] is False
    orders = {o["order_id"]: o for o in await rows(store, "SELECT * FROM orders")}
    clicked = await one(store, "SELECT id FROM emails WHERE to_addr = 'inside@example.com' AND step = 0")
    assert orders["o-in"]["email_id"] == clicked["id"] and orders["o-out"]["email_id"] is None
    stats = (await client.get(f"/api/v1/sites/{site.key}/stats", headers={"Authorization": f"Bearer {token}"})).json()
    assert stats["recovered_orders"] == 1 and stats["recovered_revenue"] == 40.0
    assert stats["emails_sent"] == 3 and stats["emails_clicked"] == 2 and stats["abandoned"] == 3
