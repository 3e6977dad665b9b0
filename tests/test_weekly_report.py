"""The weekly report email, from outside: a real SMTP server receives one report per user and week with last
week's recovered revenue, the holdout's lift, the best step, the top reasons and what needs attention;
users opted out by the CLI or by the email's own link get none."""

from __future__ import annotations

import re
import time
from datetime import UTC, datetime, timedelta

from collector.recovery.sweep import sweep_once
from collector.reports.weekly import report_week, send_weekly
from collector.store import suppressions
from tests.conftest import SHOP_ORIGIN
from tests.recovery_support import MUG, Shopper, cli, cli_env, settings, sweep_state

BROWSER = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0 Safari/537.36"


def next_week(ts: float) -> float:
    """A time in the week after the one holding `ts`, so that `ts`'s week is the one reported."""
    day = datetime.fromtimestamp(ts, tz=UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    monday = day - timedelta(days=day.weekday())
    return (monday + timedelta(days=7, hours=9)).timestamp()


async def test_one_report_per_user_and_week_with_the_numbers_and_opt_outs(
    app, client, store, smtp, token, config, tmp_path
):
    site = await store.sites.create("Mugs <b>& Co</b>", [SHOP_ORIGIN], settings(abandon_after_minutes=0))
    for email in ("owner@example.com", "cli-off@example.com", "link-off@example.com"):
        assert await store.users.create(email, "correct horse battery staple")
    code, out, err = await cli(
        cli_env(config.database_url, tmp_path), "reports", "weekly", "off", "--email", "CLI-off@example.com"
    )
    assert code == 0, err
    code, _, err = await cli(
        cli_env(config.database_url, tmp_path), "reports", "weekly", "off", "--email", "nobody@example.com"
    )
    assert code == 2 and "no dashboard user" in err

    # Last week's shop: three carts abandoned, one reminder clicked and bought from, a reason, a failed webhook.
    t0 = time.time()
    state = sweep_state(app, smtp.url)
    shoppers = []
    for i in range(3):
        s = Shopper(client, site)
        await s.lead(f"buyer{i}@example.com")
        await s.cart(MUG)
        shoppers.append(s)
    await shoppers[0].send("event", type="reason", reason="Shipping costs")
    await sweep_once(state, now=t0 + 1)
    # Read half a minute after it was sent (a fetch seconds after sending is a link scanner's, no click).
    await store.db.write(lambda tx: tx.execute("UPDATE emails SET sent_at = sent_at - 30"))
    first = smtp.handler.for_addr("buyer0@example.com")[0].part("html")
    link = re.search(r'href="http://collector\.test(/r/[^"]+)"', first).group(1)
    assert (await client.get(link, headers={"User-Agent": BROWSER})).status_code == 303
    await shoppers[0].purchase("order-1", 42.5)
    await store.db.write(
        lambda tx: tx.execute(
            "INSERT INTO webhook_outbox (site_id, url, event, ref, body, status, attempts, next_attempt_at, created_at)"
            " VALUES (?, 'https://hooks.shop.test/x', 'lead', 'r1', '{}', 'failed', 8, ?, ?)",
            site.id,
            t0,
            t0 + 2,
        )
    )
    before = len(smtp.messages)
    when = next_week(t0 + 60)
    week, since, until = report_week(when)
    assert since <= t0 + 1 < until

    assert await send_weekly(state, now=when) == 2
    reports = smtp.messages[before:]
    assert sorted(m.to for m in reports) == ["link-off@example.com", "owner@example.com"]  # not the CLI opt-out
    msg = next(m for m in reports if m.to == "owner@example.com")
    assert msg.message["Subject"] == f"Cartback weekly report {week}: 42.50 recovered"  # sites may differ in currency
    text, html = msg.part("plain"), msg.part("html")
    assert "Mugs <b>& Co</b>" in text and "Mugs &lt;b&gt;&amp; Co&lt;/b&gt;" in html and "<b>& Co" not in html
    assert "recovered from 1 order" in text and "3 carts abandoned, 3 reminders sent" in text
    assert "Best step: step 1" in text and "Top reasons: Shipping costs (1)" in text
    assert "1 webhook delivery failed for good" in text

    # Once per week: a second pass (or a second sweeper) sends nothing more.
    assert await send_weekly(state, now=when + 3600) == 0
    assert len(smtp.messages) == before + 2

    # The email's own link: a GET changes nothing, the POST (button or one-click) stops it for that user.
    other = next(m for m in reports if m.to == "link-off@example.com")
    optout = re.fullmatch(r"<http://collector\.test(/report-optout/[^>]+)>", other.message["List-Unsubscribe"]).group(1)
    assert other.message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click" and optout in other.part("plain")
    assert (await client.get(optout)).status_code == 200
    assert (await client.post(optout + "x")).status_code == 404  # an altered token
    assert (await client.post(optout)).status_code == 200
    assert await send_weekly(state, now=when + 7 * 86400) == 1
    assert [m.to for m in smtp.messages[before + 2 :]] == ["owner@example.com"]


async def test_a_holdout_site_reports_its_lift_and_example_settings_need_care(app, client, store):
    doc = settings(abandon_after_minutes=0, holdout_percent=50, cart_url="https://shop.example/cart")
    site = await store.sites.create("Holdout shop", [SHOP_ORIGIN], doc)
    assert await store.users.create("owner@example.com", "correct horse battery staple")
    t0 = time.time()
    for i in range(6):
        s = Shopper(client, site)
        await s.lead(f"h{i}@example.com")
        await s.cart(MUG)
    state = sweep_state(app, None)  # no SMTP: the dev mailbox
    await sweep_once(state, now=t0 + 1)
    assert await send_weekly(state, now=next_week(t0 + 60)) == 1
    box = await store.db.fetchone("SELECT * FROM mailbox WHERE to_addr = 'owner@example.com'")
    assert box is not None
    # h1 and h2 are held out, the other four treated (the hashing is fixed): the lift is reported.
    assert "Holdout: Reminders add +0.0 points of recovery rate, but the 95% interval" in box["text"]
    assert "recovery.cart_url is still the example page" in box["text"]


async def test_suppressions_rising_need_attention(app, client, store):
    """Bounces and complaints the providers reported and unsubscribes, this week against the last."""
    site = await store.sites.create("Bouncy shop", [SHOP_ORIGIN], settings(abandon_after_minutes=0))
    assert await store.users.create("owner@example.com", "correct horse battery staple")
    t0 = time.time()
    when = next_week(t0)
    _, since, until = report_week(when)
    for kind, addr, at in (
        ("bounce", "gone@example.com", since + 10),
        ("bounce", "full@example.com", since + 20),
        ("complaint", "angry@example.com", since + 30),
        ("bounce", "old@example.com", since - 3 * 86400),  # the week before: one
    ):
        await suppressions.record_event(
            store.db, "ses", kind, addr, site_id=site.id, email_id=None, detail=None, suppress=True, now=at
        )
    state = sweep_state(app, None)
    assert await send_weekly(state, now=when) == 1
    box = await store.db.fetchone("SELECT * FROM mailbox WHERE to_addr = 'owner@example.com'")
    assert box is not None
    assert "suppressions rising: 3 this week (2 bounces, 1 complaint), 1 the week before" in box["text"]
