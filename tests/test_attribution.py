"""Which reminder an order is credited to, from outside: reminders received by a real SMTP server, the
shopper's opens and clicks on the emails' own links, the order by the API, read back from the stats API
and the order's answer. The last click within the attribution window wins; without one, the last open
by a person; a privacy proxy's open never credits anything."""

from __future__ import annotations

import asyncio
import time
from typing import Any

from collector.recovery.sweep import sweep_once
from collector.schemas import SiteSettings
from tests.conftest import SHOP_ORIGIN
from tests.recovery_support import MINUTE, MUG, Shopper, settings, sweep_state
from tests.test_holdout_and_steps import BROWSER, link, stats

APPLE_PROXY = "Mozilla/5.0"  # what Apple Mail Privacy Protection's prefetch sends


async def two_reminders(app: Any, client: Any, store: Any, smtp: Any, addr: str) -> tuple[Any, str, str]:
    """A site with two steps, a shopper who abandoned a cart and received both; their HTML parts."""
    site = await store.sites.create("Credit shop", [SHOP_ORIGIN], settings())
    shopper = Shopper(client, site)
    await shopper.lead(addr)
    await shopper.cart(MUG)
    t0 = time.time()
    state = sweep_state(app, smtp.url)
    await sweep_once(state, now=t0 + 61 * MINUTE)
    await sweep_once(state, now=t0 + (61 + 1441) * MINUTE)
    got = sorted(smtp.handler.for_addr(addr), key=lambda m: m.message["Subject"] != "You left something in your cart")
    assert len(got) == 2
    return site, got[0].part("html"), got[1].part("html")


async def order(client: Any, site: Any, token: str, addr: str, order_id: str, value: float) -> dict[str, Any]:
    body = {"site": site.key, "order_id": order_id, "value": value, "currency": "EUR", "email": addr}
    r = await client.post("/api/v1/orders", json=body, headers={"Authorization": f"Bearer {token}"})
    assert r.status_code == 200, r.text
    return dict(r.json())


def credited(s: dict[str, Any]) -> list[tuple[int, int, float]]:
    return [(e["step"], e["recovered_orders"], e["recovered_revenue"]) for e in s["steps"]]


async def test_a_click_wins_over_a_later_open(app, client, store, smtp, token):
    site, first, second = await two_reminders(app, client, store, smtp, "clicker@example.com")
    assert (await client.get(link(first, "r"), headers={"User-Agent": BROWSER})).status_code == 303
    assert (await client.get(link(second, "o"), headers={"User-Agent": BROWSER})).status_code == 200
    assert (await order(client, site, token, "clicker@example.com", "A-1", 40.0))["recovered"] is True
    assert credited(await stats(client, site, token)) == [(0, 1, 40.0), (1, 0, 0.0)]


async def test_without_a_click_the_last_open_by_a_person_is_credited(app, client, store, smtp, token):
    site, first, second = await two_reminders(app, client, store, smtp, "reader@example.com")
    assert (await client.get(link(first, "o"), headers={"User-Agent": BROWSER})).status_code == 200
    assert (await client.get(link(second, "o"), headers={"User-Agent": BROWSER})).status_code == 200
    # The proxy fetches the first one again later: it is not the shopper reading it.
    assert (await client.get(link(first, "o"), headers={"User-Agent": APPLE_PROXY})).status_code == 200
    assert (await order(client, site, token, "reader@example.com", "A-2", 30.0))["recovered"] is True
    s = await stats(client, site, token)
    assert credited(s) == [(0, 0, 0.0), (1, 1, 30.0)]
    assert (s["recovered_orders"], s["recovered_revenue"]) == (1, 30.0)


async def test_an_open_by_a_privacy_proxy_alone_recovers_nothing(app, client, store, smtp, token):
    site, first, second = await two_reminders(app, client, store, smtp, "proxied@example.com")
    assert (await client.get(link(first, "o"), headers={"User-Agent": APPLE_PROXY})).status_code == 200
    assert (await client.get(link(second, "o"), headers={"User-Agent": APPLE_PROXY})).status_code == 200
    assert (await order(client, site, token, "proxied@example.com", "A-3", 30.0))["recovered"] is False
    s = await stats(client, site, token)
    assert credited(s) == [(0, 0, 0.0), (1, 0, 0.0)] and s["recovered_orders"] == 0


async def test_an_open_outside_the_window_recovers_nothing(app, client, store, smtp, token):
    site, first, _ = await two_reminders(app, client, store, smtp, "late@example.com")
    assert (await client.get(link(first, "o"), headers={"User-Agent": BROWSER})).status_code == 200
    # The store shortens the window to (almost) nothing: the open is now older than it.
    doc = site.raw_settings
    doc["recovery"]["attribution_days"] = 0.00001  # 0.86 s
    await store.sites.update(site.key, settings=SiteSettings.model_validate(doc))
    await asyncio.sleep(1.0)
    assert (await order(client, site, token, "late@example.com", "A-4", 30.0))["recovered"] is False
