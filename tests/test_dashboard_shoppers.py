"""Data rights: `cartback shoppers export` gives everything about one shopper as JSON, and
`cartback shoppers forget` removes it, keeping orders without the address."""

from __future__ import annotations

import json
import time
from typing import Any

from collector.schemas import SiteSettings
from tests.dashboard_support import cart, ingest
from tests.test_audiences import cli


async def seed(client: Any, store: Any, site: Any) -> None:
    site = await store.sites.update(
        site.key, settings=SiteSettings.model_validate({"webhooks": [{"url": "https://hooks.example/x"}]})
    )
    # Ann on two browsers; Bob on his own.
    await ingest(client, site, "cart", cart("c-ann-0001", "visitor-ann-1"))
    await ingest(client, site, "event", {"id": "e-ann-0001", "vid": "visitor-ann-1", "type": "shown"})
    await ingest(
        client, site, "event", {"id": "e-ann-0002", "vid": "visitor-ann-1", "type": "reason", "reason": "Just browsing"}
    )
    await ingest(
        client, site, "lead", {"id": "l-ann-0001", "vid": "visitor-ann-1", "email": "Ann@Example.com", "consent": True}
    )
    await ingest(client, site, "identify", {"id": "i-ann-0001", "vid": "visitor-ann-2", "email": "ann@example.com"})
    await ingest(client, site, "cart", cart("c-ann-0002", "visitor-ann-2"))
    await ingest(client, site, "cart", cart("c-bob-0001", "visitor-bob-1"))
    await ingest(client, site, "lead", {"id": "l-bob-0001", "vid": "visitor-bob-1", "email": "bob@example.com"})
    now = time.time()

    async def op(tx: Any) -> None:
        for c in await tx.fetchall("SELECT id, email FROM carts WHERE email IS NOT NULL"):
            await tx.execute("UPDATE carts SET status = 'abandoned', abandoned_at = ? WHERE id = ?", now, c["id"])
            row = await tx.fetchone(
                "INSERT INTO emails (site_id, cart_id, step, to_addr, subject, status, due_at, attempts, sent_at,"
                " open_count, proxy_open_count, click_count, created_at) VALUES (?, ?, 0, ?, 'Your cart', 'sent', ?, 1, ?, 0, 0, 0, ?)"
                " RETURNING id",
                site.id,
                c["id"],
                c["email"],
                now,
                now,
                now,
            )
            await tx.execute(
                "INSERT INTO opens (email_id, is_proxy, user_agent, created_at) VALUES (?, 0, 'x', ?)", row["id"], now
            )
            await tx.execute(
                "INSERT INTO mailbox (site_id, email_id, to_addr, from_addr, subject, html, text, headers, created_at)"
                " VALUES (?, ?, ?, 'shop@example.com', 'Your cart', '<p>hi</p>', 'hi', '{}', ?)",
                site.id,
                row["id"],
                c["email"],
                now,
            )
            await tx.execute(
                "INSERT INTO discount_codes (site_id, code, email_id, assigned_at) VALUES (?, ?, ?, ?)",
                site.id,
                f"CODE-{row['id']}",
                row["id"],
                now,
            )
        await tx.execute(
            "INSERT INTO unsubscribes (site_id, email, created_at) VALUES (?, 'ann@example.com', ?)", site.id, now
        )

    await store.db.write(op)
    await ingest(
        client,
        site,
        "purchase",
        {"id": "p-ann-0001", "vid": "visitor-ann-2", "order_id": "o-ann", "value": 28, "currency": "EUR"},
    )
    await ingest(
        client,
        site,
        "purchase",
        {"id": "p-bob-0001", "vid": "visitor-bob-1", "order_id": "o-bob", "value": 28, "currency": "EUR"},
    )


async def snapshot(store: Any, email: str, vids: list[str]) -> dict[str, int]:
    marks = ", ".join("?" for _ in vids)
    q = {
        "leads": ("SELECT COUNT(*) AS n FROM leads WHERE email = ?", [email]),
        "carts": (f"SELECT COUNT(*) AS n FROM carts WHERE email = ? OR visitor_id IN ({marks})", [email, *vids]),
        "events": (f"SELECT COUNT(*) AS n FROM events WHERE visitor_id IN ({marks})", vids),
        "visitors": (f"SELECT COUNT(*) AS n FROM visitors WHERE email = ? OR visitor_id IN ({marks})", [email, *vids]),
        "emails": ("SELECT COUNT(*) AS n FROM emails WHERE to_addr = ?", [email]),
        "opens": ("SELECT COUNT(*) AS n FROM opens o JOIN emails e ON e.id = o.email_id WHERE e.to_addr = ?", [email]),
        "mailbox": ("SELECT COUNT(*) AS n FROM mailbox WHERE to_addr = ?", [email]),
        "orders_with_email": ("SELECT COUNT(*) AS n FROM orders WHERE email = ?", [email]),
        "webhooks": ("SELECT COUNT(*) AS n FROM webhook_outbox WHERE body LIKE ?", [f"%{email}%"]),
    }
    return {k: (await store.db.fetchone(sql, *args))["n"] for k, (sql, args) in q.items()}


ANN_VIDS = ["visitor-ann-1", "visitor-ann-2"]


async def test_export_then_forget_one_shopper(client, store, site, database_url):
    await seed(client, store, site)
    before_ann = await snapshot(store, "ann@example.com", ANN_VIDS)
    before_bob = await snapshot(store, "bob@example.com", ["visitor-bob-1"])
    assert all(v > 0 for v in before_ann.values()), before_ann
    assert before_ann["carts"] == 2 and before_ann["events"] >= 6

    r = cli(database_url, "shoppers", "export", "--site", site.key, "--email", " ANN@example.com ")
    assert r.returncode == 0, r.stderr
    data = json.loads(r.stdout)
    assert data["email"] == "ann@example.com" and data["visitor_ids"] == ANN_VIDS
    assert len(data["leads"]) == 1 and data["leads"][0]["consent"] == 1
    assert len(data["carts"]) == 2 and data["carts"][0]["items"][0]["name"] == "Enamel mug"
    assert {e["type"] for e in data["events"]} >= {"cart", "shown", "reason", "lead", "identify", "purchase"}
    assert len(data["emails"]) == 2 and len(data["opens"]) == 2 and len(data["mailbox"]) == 2
    assert [o["order_id"] for o in data["orders"]] == ["o-ann"] and len(data["unsubscribes"]) == 1
    assert data["webhook_deliveries"] and all(
        "ann@example.com" in json.dumps(w["body"]) for w in data["webhook_deliveries"]
    )
    assert "bob@example.com" not in r.stdout

    r = cli(database_url, "shoppers", "forget", "--site", site.key, "--email", "ann@example.com")
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith("forgot ann@example.com")
    after = await snapshot(store, "ann@example.com", ANN_VIDS)
    assert all(v == 0 for v in after.values()), after
    # The order stays for the books, without the address or the cart.
    order = await store.db.fetchone("SELECT * FROM orders WHERE order_id = 'o-ann'")
    assert order is not None and order["email"] is None and order["cart_id"] is None and order["value"] == 28
    # The unsubscribe stays (it is what keeps the address from being emailed again); codes stay used.
    assert (await store.db.fetchone("SELECT COUNT(*) AS n FROM unsubscribes WHERE email = 'ann@example.com'"))["n"] == 1
    assert (await store.db.fetchone("SELECT COUNT(*) AS n FROM discount_codes"))["n"] == 3
    # Bob is untouched.
    assert await snapshot(store, "bob@example.com", ["visitor-bob-1"]) == before_bob
    # Nothing left to export; forgetting again is harmless.
    again = json.loads(cli(database_url, "shoppers", "export", "--site", site.key, "--email", "ann@example.com").stdout)
    assert again["leads"] == again["carts"] == again["events"] == again["emails"] == again["orders"] == []
    assert cli(database_url, "shoppers", "forget", "--site", site.key, "--email", "ann@example.com").returncode == 0


async def test_bad_usage_exits_2(site, database_url):
    for args in (
        ["--site", site.key, "--email", "not-an-address"],
        ["--site", "pk_nope", "--email", "a@example.com"],
        ["--site", site.key],
    ):
        r = cli(database_url, "shoppers", "forget", *args)
        assert r.returncode == 2 and len(r.stderr.strip().splitlines()) == 1, (args, r.stderr)
