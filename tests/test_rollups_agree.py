"""The stats read from the daily rollups equal the stats counted on the raw rows, key by key, on both backends:
for random data over two weeks and random ranges (edges mid-day, ranges over rolled-up and raw days,
all time), after a late order and other writes into old days, after retention and after a shopper
is forgotten. The raw count is the same site_stats with the rollups hidden."""

from __future__ import annotations

import json
import random
import time
from typing import Any

import pytest

from collector.analytics import rollup
from collector.funnel import site_stats
from collector.recovery import retention
from collector.schemas import SiteSettings
from collector.shoppers import forget_shopper
from collector.store import Store, rollups
from tests.conftest import SHOP_ORIGIN

DAY = 86400.0
SETTINGS: dict[str, Any] = {
    "retention_days": 9,
    "experiments": [
        {"name": "hl", "kind": "popup", "variants": [{"name": "A"}, {"name": "B"}]},
        {
            "name": "subj",
            "kind": "subject",
            "step": 0,
            "variants": [{"name": "plain", "subject": "Your cart"}, {"name": "fun", "subject": "Psst"}],
        },
    ],
}
REASONS = ["Shipping costs", "Just browsing", "  ", "Too expensive"]


async def fill_random(store: Store, site_id: int, rng: random.Random, start: float, end: float) -> None:
    """Carts, popup and checkout events, leads, reminders (sent, opened, clicked, skipped), opens, orders."""

    def at() -> float:
        return rng.uniform(start, end)

    async def op(tx: Any) -> None:
        for i in range(80):
            created = at()
            email = f"s{rng.randint(0, 30)}@example.com" if rng.random() < 0.7 else None
            abandoned = created + rng.uniform(600, 2 * DAY) if rng.random() < 0.6 else None
            status = "abandoned" if abandoned else rng.choice(["open", "purchased", "emptied"])
            value = round(rng.uniform(1, 90), 2)
            row = await tx.fetchone(
                "INSERT INTO carts (site_id, visitor_id, email, items, currency, value, item_count, status,"
                " created_at, updated_at, abandoned_at, order_id) VALUES (?, ?, ?, '[]', 'EUR', ?, 1, ?, ?, ?, ?, ?)"
                " RETURNING id",
                site_id,
                f"v{i}",
                email,
                value,
                status,
                created,
                created,
                abandoned,
                f"o{i}" if rng.random() < 0.3 else None,
            )
            cart_id = row["id"]
            if rng.random() < 0.7:
                # An exposure, converted or not, its lead sometimes days later (or, backfilled, before it).
                shown = at()
                lead = (shown + rng.uniform(-DAY, 3 * DAY)) if rng.random() < 0.5 else None
                await tx.execute(
                    "INSERT INTO variant_assignments (site_id, experiment, variant, visitor_id, shown_at, lead_at, email)"
                    " VALUES (?, 'hl', ?, ?, ?, ?, ?)",
                    site_id,
                    rng.choice("AB"),
                    f"v{i}",
                    shown,
                    lead,
                    email,
                )
            for j in range(rng.randint(0, 4)):
                kind = rng.choice(["shown", "reason", "checkout", "cart"])
                data: dict[str, Any] = {}
                if kind == "shown":
                    data = {"variants": {"hl": rng.choice("AB")}}
                elif kind == "reason":
                    data = {"reason": rng.choice(REASONS)} if rng.random() < 0.9 else {}
                elif kind == "checkout":
                    data = {"step": rng.choice(["address", "payment"])}
                await tx.execute(
                    "INSERT INTO events (site_id, client_id, visitor_id, type, data, created_at) VALUES (?, ?, ?, ?, ?, ?)",
                    site_id,
                    f"e{site_id}-{i}-{j}",
                    f"v{i}",
                    kind,
                    json.dumps(data),
                    at(),
                )
            if email and rng.random() < 0.5:
                await tx.execute(
                    "INSERT INTO leads (site_id, email, visitor_id, source, consent, created_at) VALUES (?, ?, ?, 'popup', ?, ?)"
                    " ON CONFLICT (site_id, email) DO NOTHING",
                    site_id,
                    email,
                    f"v{i}",
                    rng.randint(0, 1),
                    at(),
                )
            if email and abandoned:
                for step in range(rng.randint(0, 3)):
                    sent = abandoned + step * rng.uniform(0.2, 1.5) * DAY
                    state = rng.choice(["sent", "sent", "sent", "skipped", "pending"])
                    opened = sent + rng.uniform(60, DAY) if state == "sent" and rng.random() < 0.6 else None
                    clicked = opened + rng.uniform(10, 3600) if opened and rng.random() < 0.4 else None
                    e = await tx.fetchone(
                        "INSERT INTO emails (site_id, cart_id, step, to_addr, status, due_at, sent_at, opened_at,"
                        " clicked_at, error, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id",
                        site_id,
                        cart_id,
                        step,
                        email,
                        state,
                        sent,
                        sent if state == "sent" else None,
                        opened,
                        clicked,
                        rng.choice(["suppressed", None]) if state == "skipped" else None,
                        abandoned,
                    )
                    await tx.execute(
                        "INSERT INTO email_variants (email_id, site_id, experiment, variant) VALUES (?, ?, 'subj', ?)",
                        e["id"],
                        site_id,
                        rng.choice(["plain", "fun"]),
                    )
                    if opened:
                        for _ in range(rng.randint(1, 2)):
                            await tx.execute(
                                "INSERT INTO opens (site_id, email_id, is_proxy, created_at) VALUES (?, ?, ?, ?)",
                                site_id,
                                e["id"],
                                rng.randint(0, 1),
                                opened,
                            )
                    if clicked and rng.random() < 0.7:
                        await tx.execute(
                            "INSERT INTO orders (site_id, order_id, value, currency, email, cart_id, recovered,"
                            " email_id, verified, created_at) VALUES (?, ?, ?, 'EUR', ?, ?, 1, ?, ?, ?)"
                            " ON CONFLICT (site_id, order_id) DO NOTHING",
                            site_id,
                            f"r{cart_id}",
                            round(rng.uniform(5, 120), 2),
                            email,
                            cart_id,
                            e["id"],
                            rng.randint(0, 1),
                            clicked + rng.uniform(1, 3 * DAY),
                        )

    await store.db.write(op)


async def raw_stats(monkeypatch: pytest.MonkeyPatch, store: Store, site_id: int, since: Any, until: Any) -> Any:
    """site_stats with no rollup row visible: every number from the raw rows."""

    async def none(*args: Any) -> list[Any]:
        return []

    with monkeypatch.context() as m:
        m.setattr(rollups, "rolled_days", none)
        return await site_stats(store.db, site_id, since, until, settings=SiteSettings.model_validate(SETTINGS))


async def agree(monkeypatch: pytest.MonkeyPatch, store: Store, site_id: int, rng: random.Random, base: float) -> int:
    """Random ranges compared key by key; returns how many rolled-up days the ranges read."""
    ranges: list[tuple[float | None, float | None]] = [(None, None), (base + 3 * DAY, None), (None, base + 9 * DAY)]
    for _ in range(8):
        lo = base + rng.uniform(-1, 15) * DAY
        hi = lo + rng.uniform(0.1, 12) * DAY
        if rng.random() < 0.3:  # whole days, as the dashboard asks
            lo, hi = lo - lo % DAY, hi - hi % DAY + DAY
        ranges.append((lo, hi))
    used = 0
    settings = SiteSettings.model_validate(SETTINGS)
    for since, until in ranges:
        got = await site_stats(store.db, site_id, since, until, settings=settings)
        want = await raw_stats(monkeypatch, store, site_id, since, until)
        assert set(got) == set(want)
        for key in want:
            assert got[key] == want[key], (key, since, until)
        first, last = rollup._full_days(since, until)
        used += len(await rollups.rolled_days(store.db, site_id, first, last, rollup.VERSION))
    return used


async def test_rolled_up_stats_equal_the_raw_count(store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    rng = random.Random(1412)
    settings = SiteSettings.model_validate(SETTINGS)
    site = await store.sites.create("Rolled shop", [SHOP_ORIGIN], settings)
    other = await store.sites.create("Other shop", [SHOP_ORIGIN], settings)
    now = time.time()
    base = now - now % DAY - 14 * DAY
    await fill_random(store, site.id, rng, base, now)
    await fill_random(store, other.id, rng, base, now)
    # Everything closed gets rolled up (a day at a time: more calls than days), today stays raw.
    while await rollup.refresh(store.db, [site.id, other.id], now, max_days=4):
        pass
    have = await rollups.computed(store.db, site.id, rollup.VERSION)
    assert len(have) >= 12 and rollups.day_of(now) not in have
    assert await agree(monkeypatch, store, site.id, rng, base) > 0

    # A late order into an old day (a platform reporting it now): that day's row goes, the stats agree.
    old_day = rollups.day_of(base + 4.5 * DAY)
    assert old_day in await rollups.computed(store.db, site.id, rollup.VERSION)
    await store.db.write(
        lambda tx: tx.execute(
            "INSERT INTO orders (site_id, order_id, value, currency, recovered, verified, created_at)"
            " VALUES (?, 'late-1', 33.3, 'EUR', 1, 1, ?)",
            site.id,
            base + 4.5 * DAY,
        )
    )
    assert old_day not in await rollups.computed(store.db, site.id, rollup.VERSION)
    await agree(monkeypatch, store, site.id, rng, base)
    # Other writes into old days, one at a time: a reminder opened late, an order's value corrected,
    # consent given late (the reminders sent before to that address stop counting as unconsented), an
    # abandoned cart's value changed (what it would have been worth).
    writes = [
        "UPDATE carts SET value = value + 2 WHERE id = (SELECT MIN(c.id) FROM carts c WHERE c.site_id = ?"
        " AND c.abandoned_at < ? AND c.email IS NOT NULL AND NOT EXISTS (SELECT 1 FROM emails e WHERE e.cart_id = c.id)"
        " AND CAST(c.abandoned_at / 86400 AS INTEGER) <> CAST(c.created_at / 86400 AS INTEGER))",
        "UPDATE emails SET opened_at = ? WHERE id = (SELECT MIN(id) FROM emails WHERE site_id = ?"
        " AND status = 'sent' AND opened_at IS NULL AND sent_at < ?)",
        "UPDATE orders SET value = value + 1.25, verified = 1 - verified WHERE id = (SELECT MIN(id) FROM orders"
        " WHERE site_id = ? AND recovered = 1 AND created_at < ?)",
        "UPDATE leads SET consent = 1 - consent WHERE id = (SELECT MIN(l.id) FROM leads l JOIN emails e"
        " ON e.site_id = l.site_id AND e.to_addr = l.email AND e.status = 'sent' WHERE l.site_id = ? AND e.sent_at < ?)",
    ]
    old = now - 3 * DAY
    steps = [(sql, (now, site.id, old) if sql.startswith("UPDATE emails") else (site.id, old)) for sql in writes]
    steps += [
        # A popup lead given (late) by a visitor shown the variant days ago.
        (
            "UPDATE variant_assignments SET lead_at = shown_at + 7200 WHERE site_id = ? AND visitor_id ="
            " (SELECT MIN(visitor_id) FROM variant_assignments WHERE site_id = ? AND lead_at IS NULL AND shown_at < ?)",
            (site.id, site.id, old),
        ),
        # A checkout event reported late, between a browser's earlier ones.
        (
            "INSERT INTO events (site_id, client_id, visitor_id, type, data, created_at) SELECT site_id, 'late-c',"
            " visitor_id, 'checkout', data, created_at - 3600 FROM events WHERE id = (SELECT MAX(id) FROM events"
            " WHERE site_id = ? AND type = 'checkout' AND created_at < ?)",
            (site.id, old),
        ),
        # A reminder recorded as sent late, before the cart's and the address's other ones.
        (
            "INSERT INTO emails (site_id, cart_id, step, to_addr, status, due_at, sent_at, created_at)"
            " SELECT site_id, cart_id, 7, to_addr, 'sent', sent_at - 130000, sent_at - 130000, sent_at FROM emails"
            " WHERE id = (SELECT MAX(id) FROM emails WHERE site_id = ? AND status = 'sent' AND sent_at < ?)",
            (site.id, old),
        ),
    ]
    for sql, args in steps:
        before = await rollups.computed(store.db, site.id, rollup.VERSION)
        assert await store.db.write(lambda tx, sql=sql, args=args: tx.execute(sql, *args)) == 1
        assert await rollups.computed(store.db, site.id, rollup.VERSION) < before
        await agree(monkeypatch, store, site.id, rng, base)
        while await rollup.refresh(store.db, [site.id], now, max_days=5):
            pass
    while await rollup.refresh(store.db, [site.id], now, max_days=5):
        pass
    assert old_day in await rollups.computed(store.db, site.id, rollup.VERSION)
    assert await agree(monkeypatch, store, site.id, rng, base) > 0

    # Retention (9 days) deletes old events and closed carts with their reminders and opens.
    assert await retention.prune_site(store.db, site, now) > 0
    await agree(monkeypatch, store, site.id, rng, base)
    while await rollup.refresh(store.db, [site.id], now, max_days=5):
        pass
    await agree(monkeypatch, store, site.id, rng, base)

    # Forgetting a shopper removes their carts, leads, reminders and opens from every day they were in.
    leads = await store.db.fetchall("SELECT email FROM leads WHERE site_id = ? ORDER BY email", site.id)
    for row in leads[:3]:
        await forget_shopper(store.db, site, row["email"])
    await agree(monkeypatch, store, site.id, rng, base)
    while await rollup.refresh(store.db, [site.id], now, max_days=5):
        pass
    assert await agree(monkeypatch, store, site.id, rng, base) > 0
    # The other site's rows were never touched by any of it, and still agree.
    assert await agree(monkeypatch, store, other.id, rng, base) > 0


async def test_a_write_between_claim_and_fill_drops_the_counts(store: Store) -> None:
    site = await store.sites.create("Racing shop", [SHOP_ORIGIN], SiteSettings())
    now = time.time()
    day = rollups.day_of(now) - 5
    token = await rollups.claim(store.db, site.id, day, now)
    counts = await rollup.raw_counts(store.db, site.id, day * DAY, (day + 1) * DAY)
    # A cart made in that day commits after the counts were read: they are stale and must not be stored.
    await store.db.write(
        lambda tx: tx.execute(
            "INSERT INTO carts (site_id, visitor_id, items, currency, value, item_count, status, created_at, updated_at)"
            " VALUES (?, 'v', '[]', 'EUR', 1, 1, 'open', ?, ?)",
            site.id,
            day * DAY + 10,
            day * DAY + 10,
        )
    )
    counts["v"] = rollup.VERSION
    assert not await rollups.fill(store.db, site.id, day, token, counts, now)
    assert day not in await rollups.computed(store.db, site.id, rollup.VERSION)
    # Claimed and filled with nothing in between, the row is stored and counts the cart.
    token = await rollups.claim(store.db, site.id, day, now)
    counts = await rollup.raw_counts(store.db, site.id, day * DAY, (day + 1) * DAY)
    counts["v"] = rollup.VERSION
    assert await rollups.fill(store.db, site.id, day, token, counts, now)
    assert (await rollups.rolled_days(store.db, site.id, day, day, rollup.VERSION))[0][1]["carts"] == 1
