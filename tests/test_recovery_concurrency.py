"""Several sweepers at once: every due email is claimed by one of them and sent exactly once."""

from __future__ import annotations

import asyncio
import json
import re
import time
from collections import Counter

from collector.recovery.sweep import sweep_once
from collector.store import Store, open_database
from tests.conftest import SHOP_ORIGIN
from tests.recovery_support import MUG, cli, cli_env, one, settings, sweep_state

ONE_STEP = [{"delay_minutes": 0, "subject": "You left something in your cart"}]


async def seed_carts(store: Store, site_id: int, n: int) -> list[str]:
    """n quiet carts with an email each, written straight to the database (fast)."""
    now = time.time() - 3600
    addrs = [f"buyer{i:04d}@example.com" for i in range(n)]

    async def op(tx):
        for i, addr in enumerate(addrs):
            await tx.execute(
                "INSERT INTO carts (site_id, visitor_id, email, items, currency, value, item_count, status, created_at, updated_at)"
                " VALUES (?, ?, ?, ?, 'EUR', 28.0, 2, 'open', ?, ?)",
                site_id,
                f"seed-visitor-{i:05d}",
                addr,
                json.dumps([MUG]),
                now,
                now,
            )

    await store.db.write(op)
    return addrs


def parse_summary(line: str) -> dict[str, int]:
    return {k: int(v) for k, v in re.findall(r"(\w+) (\d+)", line)}


async def test_two_sweeper_processes_over_500_carts_send_exactly_500_emails(app, store, smtp, database_url, tmp_path):
    site = await store.sites.create("Test shop", [SHOP_ORIGIN], settings(abandon_after_minutes=1, steps=ONE_STEP))
    addrs = await seed_carts(store, site.id, 500)
    env = cli_env(database_url, tmp_path, smtp.url)
    results = await asyncio.gather(cli(env, "send-due"), cli(env, "send-due"))
    summaries = []
    for code, out, err in results:
        assert code == 0, err
        assert len(out.strip().splitlines()) == 1, out
        summaries.append(parse_summary(out))
    print("summaries:", summaries)
    assert sum(s["abandoned"] for s in summaries) == 500
    assert sum(s["sent"] for s in summaries) == 500
    assert sum(s["failed"] + s["retried"] for s in summaries) == 0
    assert len(smtp.messages) == 500
    counts = Counter(m.to for m in smtp.messages)
    assert sorted(counts) == addrs and set(counts.values()) == {1}, "an address got two emails"
    row = await one(store, "SELECT COUNT(*) AS n FROM emails WHERE status = 'sent'")
    assert row["n"] == 500


async def test_two_stores_on_one_database_interleaving_send_each_email_once(app, store, smtp, database_url):
    """Two Store/Database instances in one process, interleaving at every await, send each email once."""
    site = await store.sites.create("Test shop", [SHOP_ORIGIN], settings(abandon_after_minutes=1, steps=ONE_STEP))
    addrs = await seed_carts(store, site.id, 200)
    other = Store(open_database(database_url))
    await other.connect()
    try:
        now = time.time()
        a, b = await asyncio.gather(
            sweep_once(sweep_state(app, smtp.url), now=now),
            sweep_once(sweep_state(app, smtp.url, store=other), now=now),
        )
    finally:
        await other.close()
    assert a["abandoned"] + b["abandoned"] == 200
    # Which sweeper sends how many depends on timing (on PostgreSQL one may find every row
    # locked by the other and finish at once); that together they send each one once does not.
    assert a["sent"] + b["sent"] == 200
    counts = Counter(m.to for m in smtp.messages)
    assert sorted(counts) == addrs and set(counts.values()) == {1}
