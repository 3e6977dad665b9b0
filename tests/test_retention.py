"""Retention (issue 13): the sweep deletes old events and old closed carts in small batches, keeps
leads, orders and unsubscribes, keeps the dev mailbox to its newest messages, and leaves the
SQLite WAL small after a big delete."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from collector.recovery import retention
from collector.recovery.sweep import sweep_once
from collector.schemas import SiteSettings
from tests.conftest import SHOP_ORIGIN
from tests.recovery_support import MUG, Shopper, one, rows, settings, sweep_state

DAY = 86400.0


async def age(store, sql: str, days: float) -> None:
    then = time.time() - days * DAY
    await store.db.write(lambda tx: tx.execute(sql, then))


async def test_the_sweep_deletes_old_events_and_closed_carts_and_keeps_leads_orders_unsubscribes(
    app, client, store, token
):
    site = await store.sites.create(
        "Shop", [SHOP_ORIGIN], settings(abandon_after_minutes=0).model_copy(update={"retention_days": 30})
    )
    old = Shopper(client, site)
    await old.lead("old@example.com")
    await old.cart(MUG)
    await sweep_once(sweep_state(app, None))  # abandoned, step 0 in the dev mailbox
    await old.purchase("OLD-1", 14)
    fresh = Shopper(client, site)
    await fresh.lead("fresh@example.com")
    await fresh.cart(MUG)
    await store.db.write(
        lambda tx: tx.execute(
            "INSERT INTO unsubscribes (site_id, email, created_at) VALUES (?, 'u@example.com', 0)", site.id
        )
    )
    # Everything about the old shopper happened 31 days ago.
    await age(store, f"UPDATE events SET created_at = ? WHERE visitor_id = '{old.vid}'", 31)
    await age(store, f"UPDATE carts SET closed_at = ? WHERE visitor_id = '{old.vid}'", 31)
    await age(store, "UPDATE leads SET created_at = ?", 31)
    await age(store, "UPDATE orders SET created_at = ?", 31)
    old_emails = [e["id"] for e in await rows(store, "SELECT id FROM emails")]
    assert old_emails and (await one(store, "SELECT COUNT(*) AS n FROM mailbox"))["n"] == 1

    await sweep_once(sweep_state(app, None))

    assert await rows(store, f"SELECT id FROM events WHERE visitor_id = '{old.vid}'") == []
    assert len(await rows(store, f"SELECT id FROM events WHERE visitor_id = '{fresh.vid}'")) == 2
    assert [c["visitor_id"] for c in await rows(store, "SELECT visitor_id FROM carts")] == [fresh.vid]
    # The old cart's reminders went with it, and their copy in the dev mailbox.
    left = [e["id"] for e in await rows(store, "SELECT id FROM emails")]
    assert not set(old_emails) & set(left)
    assert all(m["email_id"] not in old_emails for m in await rows(store, "SELECT email_id FROM mailbox"))
    # Kept whatever their age.
    assert {r["email"] for r in await rows(store, "SELECT email FROM leads")} == {
        "old@example.com",
        "fresh@example.com",
    }
    assert [o["order_id"] for o in await rows(store, "SELECT order_id FROM orders")] == ["OLD-1"]
    assert len(await rows(store, "SELECT email FROM unsubscribes")) == 1


async def test_a_big_backlog_goes_in_bounded_batches(app, store):
    site = await store.sites.create("Shop", [SHOP_ORIGIN], SiteSettings())
    total = retention.BATCH * retention.MAX_BATCHES + 700
    old = time.time() - 500 * DAY

    async def fill(tx):
        for i in range(total):
            await tx.execute(
                "INSERT INTO events (site_id, client_id, visitor_id, type, data, created_at) VALUES (?, ?, 'v', 'shown', NULL, ?)",
                site.id,
                f"old-event-{i:06d}",
                old,
            )

    await store.db.write(fill)
    first = await retention.prune(store.db, [site], time.time())
    assert first == retention.BATCH * retention.MAX_BATCHES  # one pass does a bounded amount
    assert await retention.prune(store.db, [site], time.time()) == 700
    assert (await one(store, "SELECT COUNT(*) AS n FROM events"))["n"] == 0


async def test_the_dev_mailbox_keeps_its_newest_messages(app, store):
    async def fill(tx):
        for i in range(retention.MAILBOX_KEEP + 30):
            await tx.execute(
                "INSERT INTO mailbox (site_id, email_id, to_addr, from_addr, subject, html, text, headers, created_at)"
                " VALUES (NULL, NULL, 'a@example.com', 'shop@example.com', ?, '', '', '{}', ?)",
                f"message {i}",
                float(i),
            )

    await store.db.write(fill)
    await retention.prune(store.db, [], time.time())
    kept = await rows(store, "SELECT subject FROM mailbox ORDER BY id")
    assert len(kept) == retention.MAILBOX_KEEP
    assert kept[0]["subject"] == "message 30" and kept[-1]["subject"] == f"message {retention.MAILBOX_KEEP + 29}"


# PostgreSQL manages its own WAL: there is nothing of Cartback's to measure there.
@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
async def test_the_sqlite_wal_is_small_after_a_big_delete(app, store, config):
    site = await store.sites.create("Shop", [SHOP_ORIGIN], SiteSettings())
    old = time.time() - 500 * DAY
    payload = "x" * 2000

    async def fill(tx):
        for i in range(5000):
            await tx.execute(
                "INSERT INTO events (site_id, client_id, visitor_id, type, data, created_at) VALUES (?, ?, 'v', 'shown', ?, ?)",
                site.id,
                f"big-event-{i:06d}",
                payload,
                old,
            )

    await store.db.write(fill)
    await retention.prune(store.db, [site], time.time())
    wal = Path(config.database_url.removeprefix("sqlite:///") + "-wal")
    size = os.path.getsize(wal) if wal.exists() else 0
    assert size < 1024 * 1024, f"WAL is {size} bytes after the retention pass"
