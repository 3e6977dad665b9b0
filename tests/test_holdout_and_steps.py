"""The holdout and the per-step, checkout-funnel and money numbers, from outside: shoppers on the ingest
routes, a real SMTP server receiving the reminders, opens and clicks on the emails' own links, orders by
the API and by the browser, and the numbers read back from the stats API."""

from __future__ import annotations

import re
import time
from typing import Any

from collector.experiments import diff_interval
from collector.experiments.holdout import HELD_OUT, holdout_group
from collector.recovery.sweep import sweep_once
from tests.conftest import SHOP_ORIGIN
from tests.recovery_support import MINUTE, MUG, Shopper, settings, sweep_state

BROWSER = (
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_0) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.0 Safari/605.1.15"
)
DAY = 86400.0


def link(html: str, kind: str) -> str:
    pattern = (
        r'src="http://collector\.test(/o/[^"]+\.gif)"'
        if kind == "o"
        else rf'href="http://collector\.test(/{kind}/[^"]+)"'
    )
    found = re.search(pattern, html)
    assert found, f"no /{kind}/ link in the reminder"
    return found.group(1)


async def stats(client: Any, site: Any, token: str) -> dict[str, Any]:
    r = await client.get(f"/api/v1/sites/{site.key}/stats", headers={"Authorization": f"Bearer {token}"})
    assert r.status_code == 200, r.text
    return r.json()


async def test_half_held_out_get_nothing_keep_their_group_and_the_stats_match(app, client, store, smtp, token):
    site = await store.sites.create("Holdout shop", [SHOP_ORIGIN], settings(holdout_percent=50))
    addrs = [f"shopper{i:02d}@example.com" for i in range(40)]
    browsers: dict[str, Shopper] = {}
    for i, addr in enumerate(addrs):
        s = browsers[addr] = Shopper(client, site)
        await s.lead(addr)
        await s.cart(MUG)  # 28.00
        # The checkout funnel: 30 reach shipping (twice for some), 12 of them payment; 9 give a reason.
        if i < 30:
            await s.send("event", type="checkout", step="shipping")
            if i % 2 == 0:
                await s.send("event", type="checkout", step="shipping")
        if i < 12:
            await s.send("event", type="checkout", step="payment")
        if i % 5 == 0:
            await s.send("event", type="reason", reason="Shipping costs" if i < 20 else "Just browsing")
    t0 = time.time()
    state = sweep_state(app, smtp.url)
    await sweep_once(state, now=t0 + 61 * MINUTE)
    await sweep_once(state, now=t0 + (61 + 1441) * MINUTE)

    # Each address got all of its reminders or none, and the none are the holdout of the hashing.
    got = {a: smtp.handler.for_addr(a) for a in addrs}
    assert all(len(m) in (0, 2) for m in got.values()), {a: len(m) for a, m in got.items()}
    held = [a for a in addrs if not got[a]]
    treated = [a for a in addrs if got[a]]
    assert held == [a for a in addrs if holdout_group(a, 50) == HELD_OUT]
    assert 8 <= len(held) <= 32, len(held)  # a 50 % draw over 40 addresses, not a degenerate split

    # Treated shoppers act on their reminders: opens (one by Apple's proxy, never counted), clicks.
    opened = {0: 0, 1: 0}
    clicked = {0: 0, 1: 0}
    clicked_last: dict[str, int] = {}
    opened_last: dict[str, int] = {}  # by a person: a proxy's open never credits an order
    for j, addr in enumerate(treated):
        first, second = (
            m.part("html")
            for m in sorted(got[addr], key=lambda m: m.message["Subject"] != "You left something in your cart")
        )
        if j % 2 == 0:
            assert (await client.get(link(first, "o"), headers={"User-Agent": BROWSER})).status_code == 200
            opened[0] += 1
            opened_last[addr] = 0
        if j % 3 == 0:
            await client.get(link(second, "o"), headers={"User-Agent": "Mozilla/5.0"})  # a proxy: not an open
        if j % 4 == 0:
            assert (await client.get(link(first, "r"), headers={"User-Agent": BROWSER})).status_code == 303
            clicked[0] += 1
            clicked_last[addr] = 0
        if j % 4 == 1:
            assert (await client.get(link(second, "o"), headers={"User-Agent": BROWSER})).status_code == 200
            opened[1] += 1
            opened_last[addr] = 1
            assert (await client.get(link(second, "r"), headers={"User-Agent": BROWSER})).status_code == 303
            clicked[1] += 1
            clicked_last[addr] = 1

    # Orders from both groups: a third of the held-out shoppers, half the treated (by the API and the browser).
    auth = {"Authorization": f"Bearer {token}"}
    buyers: dict[str, float] = {}
    for k, addr in enumerate(held[::3] + treated[::2]):
        value = 20.0 + k
        buyers[addr] = value
        if k % 2 == 0:
            body = {"site": site.key, "order_id": f"order-{k}", "value": value, "currency": "EUR", "email": addr}
            assert (await client.post("/api/v1/orders", json=body, headers=auth)).status_code == 200
        else:
            await browsers[addr].purchase(f"order-{k}", value)

    s = await stats(client, site, token)
    held_buyers = [a for a in held if a in buyers]
    treated_buyers = [a for a in treated if a in buyers]
    assert s["holdout"] == {
        "carts": len(held),
        "recovered_orders": len(held_buyers),
        "recovered_revenue": round(sum(buyers[a] for a in held_buyers), 2),
        "recovery_rate": round(len(held_buyers) / len(held), 4),
    }
    assert s["treated"] == {
        "carts": len(treated),
        "recovered_orders": len(treated_buyers),
        "recovered_revenue": round(sum(buyers[a] for a in treated_buyers), 2),
        "recovery_rate": round(len(treated_buyers) / len(treated), 4),
    }
    expected_gain = len(treated_buyers) / len(treated) - len(held_buyers) / len(held)
    assert s["incremental_recovery_rate"] == round(expected_gain, 4)
    low, high = diff_interval((len(held_buyers), len(held)), (len(treated_buyers), len(treated)))
    assert s["interval"] == [round(low, 4), round(high, 4)]
    assert s["interval"][0] < s["incremental_recovery_rate"] < s["interval"][1]
    assert "95% interval" in s["holdout_summary"]

    # Per step: what the SMTP server received, the opens and clicks made, the orders after a click
    # (credited to the last click) or else after a person's open (credited to the last open).
    recovered_by_step = {0: [0, 0.0], 1: [0, 0.0]}
    for addr in treated:
        step = clicked_last.get(addr, opened_last.get(addr))
        if addr in buyers and step is not None:
            recovered_by_step[step][0] += 1
            recovered_by_step[step][1] += buyers[addr]
    assert any(a in buyers and a not in clicked_last for a in opened_last), "no order credited by an open"
    assert [(e["step"], e["sent"], e["skipped"], e["opened"], e["clicked"]) for e in s["steps"]] == [
        (0, len(treated), 0, opened[0], clicked[0]),
        (1, len(treated), 0, opened[1], clicked[1]),
    ]
    assert [(e["recovered_orders"], e["recovered_revenue"]) for e in s["steps"]] == [
        (recovered_by_step[0][0], round(recovered_by_step[0][1], 2)),
        (recovered_by_step[1][0], round(recovered_by_step[1][1], 2)),
    ]
    assert s["recovered_orders"] == sum(e["recovered_orders"] for e in s["steps"])

    # Checkout funnel (distinct browsers, most first) and reasons.
    assert s["checkout_steps"] == [
        {"step": "shipping", "visitors": 30, "drop": 0, "drop_rate": 0.0},
        {"step": "payment", "visitors": 12, "drop": 18, "drop_rate": 0.6},
    ]
    assert s["reasons"] == {"Shipping costs": 4, "Just browsing": 4}
    assert s["reasons_by_checkout_step"] == {
        "shipping": {"Shipping costs": 4, "Just browsing": 2},
        "payment": {"Shipping costs": 3},
    }

    # Money: every abandoned cart had an address; revenue per address reminded.
    assert (s["recoverable"], s["lost_value"]) == (40, 40 * 28.0)
    assert s["revenue_per_recipient"] == round(s["recovered_revenue"] / len(treated), 2)
    assert sum(p["carts"] for p in s["daily"]) == 40 and sum(p["abandoned"] for p in s["daily"]) == 40
    assert sum(p["recovered_orders"] for p in s["daily"]) == s["recovered_orders"]

    # A second cart, on a new browser, keeps each address in its group.
    for addr in addrs:
        again = Shopper(client, site)
        await again.identify(addr)
        await again.cart(MUG)
    await sweep_once(state, now=t0 + 4 * DAY)
    for addr in addrs:
        assert len(smtp.handler.for_addr(addr)) == (0 if addr in held else 3), addr
    s = await stats(client, site, token)
    assert (s["holdout"]["carts"], s["treated"]["carts"]) == (2 * len(held), 2 * len(treated))
    assert s["steps"][0]["sent"] == 2 * len(treated)


async def test_no_holdout_no_holdout_keys_and_steps_listed_with_zeros(client, store, token):
    site = await store.sites.create("Plain shop", [SHOP_ORIGIN], settings())
    s = await stats(client, site, token)
    assert "holdout" not in s and "treated" not in s and "interval" not in s
    assert [e["step"] for e in s["steps"]] == [0, 1]
    assert all(
        e["sent"] == e["skipped"] == e["opened"] == e["clicked"] == e["recovered_orders"] == 0 for e in s["steps"]
    )
    assert s["checkout_steps"] == [] and s["reasons"] == {} and s["revenue_per_recipient"] == 0.0


def test_holdout_percent_is_checked() -> None:
    from pydantic import ValidationError

    from collector.schemas import SiteSettings

    for bad in (-1, 51, "half"):
        try:
            SiteSettings.model_validate({"recovery": {"holdout_percent": bad}})
        except ValidationError as exc:
            assert "holdout_percent" in str(exc)
        else:
            raise AssertionError(f"holdout_percent {bad!r} was accepted")


async def test_overview_shows_the_holdout_steps_checkout_funnel_and_daily_chart(app, client, store, smtp, token):
    from tests.dashboard_support import login

    site = await store.sites.create("Overview shop", [SHOP_ORIGIN], settings(holdout_percent=50))
    evil = "<script>alert(3)</script>"
    for i in range(10):
        s = Shopper(client, site)
        await s.lead(f"viewer{i}@example.com")
        await s.cart(MUG)
        await s.send("event", type="checkout", step=evil if i < 4 else "shipping")
    await sweep_once(sweep_state(app, smtp.url), now=time.time() + 61 * MINUTE)
    api = await stats(client, site, token)
    await login(client, store)
    page = (await client.get(f"/admin/sites/{site.key}")).text
    for group, key in (("Treated", "treated"), ("Held out", "holdout")):
        row = re.search(rf'<tr data-group="{group}">(.*?)</tr>', page, re.S)
        assert row, group
        cells = re.findall(r'<td class="num">([^<]*)</td>', row.group(1))
        assert cells[0] == str(api[key]["carts"]) and cells[1] == str(api[key]["recovered_orders"])
    assert api["holdout"]["carts"] + api["treated"]["carts"] == 10
    step0 = re.search(r'<tr data-step="0">(.*?)</tr>', page, re.S)
    assert step0 and f'<td class="num">{api["treated"]["carts"]}</td>' in step0.group(
        1
    )  # step one went to every treated cart
    assert evil not in page and "&lt;script&gt;alert(3)&lt;/script&gt;" in page
    assert re.search(r'<tr data-checkout-step="shipping">\s*<th scope="row">shipping</th><td class="num">6</td>', page)
    assert page.count("<polyline") == 3 and 'data-line="carts"' in page
