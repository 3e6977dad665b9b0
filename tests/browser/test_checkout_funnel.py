"""The checkout funnel from the snippet in real Chromium: `cartback('checkout', {step})` in five browsers,
counted by the stats API as distinct browsers per step, most first, with the drop between steps."""

from __future__ import annotations

import httpx

from tests.browser.conftest import ready


def test_checkout_steps_reported_by_browsers_are_counted_per_distinct_browser(shop):
    shop.create_site()
    token = shop.collector.cli("tokens", "create", "--name", "funnel").stdout.strip().split()[-1]
    # Browser i reaches these steps (browser 1 reports "shipping" twice: one browser all the same).
    journeys = [
        ["cart", "shipping", "payment"],
        ["cart", "shipping", "shipping", "payment"],
        ["cart", "shipping"],
        ["cart", "shipping"],
        ["cart"],
    ]
    for steps in journeys:
        page = shop.open(shop.page_url())
        ready(page)
        for step in steps:
            page.evaluate("(s) => cartback('checkout', {step: s})", step)
    shop.wait_rows("SELECT id FROM events WHERE type = 'checkout'", count=sum(len(j) for j in journeys))
    r = httpx.get(
        f"{shop.collector.url}/api/v1/sites/{shop.site['key']}/stats", headers={"Authorization": f"Bearer {token}"}
    )
    assert r.status_code == 200, r.text
    assert r.json()["checkout_steps"] == [
        {"step": "cart", "visitors": 5, "drop": 0, "drop_rate": 0.0},
        {"step": "shipping", "visitors": 4, "drop": 1, "drop_rate": 0.2},
        {"step": "payment", "visitors": 2, "drop": 2, "drop_rate": 0.5},
    ]
