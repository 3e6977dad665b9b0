"""Data rights: everything Cartback holds about one shopper of a site, exported or forgotten.

A shopper is an email address on a site, together with the visitor ids (browsers) that
address was seen on: the visitors table, and the visitor ids of their carts and leads.

`export_shopper` gathers: leads, visitors, carts (with their items), events of those visitor
ids, reminder emails and their opens, orders, unsubscribes, webhook deliveries that name the
address, and the copies in the dev mailbox.

`forget_shopper` removes, in one transaction: the leads, the carts of the address and of its
visitor ids, the events of those visitor ids, the visitors rows, the reminder emails to the
address or for those carts with their opens, the dev mailbox copies, and the webhook outbox
rows that carry the address. Orders are kept for the shop's books, with their email (and the
link to the deleted cart) set to NULL. An unsubscribe is kept: it is the record that the
address must not be emailed again, and forgetting it would undo the shopper's request.
"""

from __future__ import annotations

import json
import time
from typing import Any

from collector.addresses import normalize_email
from collector.store import Database, Reader, Row, Site, Tx, variants
from collector.store.db import dumps, like_contains


def _email_in_body(email: str) -> str:
    # Bodies are JSON written by dumps (no spaces); the address is normalised.
    return like_contains(dumps({"email": email})[1:-1])


async def _visitor_ids(q: Reader, site_id: int, email: str) -> list[str]:
    vids: set[str] = set()
    for table in ("visitors", "carts", "leads"):
        for r in await q.fetchall(
            f"SELECT DISTINCT visitor_id FROM {table} WHERE site_id = ? AND email = ? AND visitor_id IS NOT NULL",
            site_id,
            email,
        ):
            vids.add(r["visitor_id"])
    return sorted(vids)


async def _carts(q: Reader, site_id: int, email: str, vids: list[str]) -> list[Row]:
    seen: dict[int, Row] = {}
    for r in await q.fetchall("SELECT * FROM carts WHERE site_id = ? AND email = ? ORDER BY id", site_id, email):
        seen[r["id"]] = r
    for vid in vids:
        for r in await q.fetchall("SELECT * FROM carts WHERE site_id = ? AND visitor_id = ? ORDER BY id", site_id, vid):
            seen[r["id"]] = r
    return [seen[k] for k in sorted(seen)]


async def _emails(q: Reader, site_id: int, email: str, cart_ids: list[int]) -> list[Row]:
    seen: dict[int, Row] = {}
    for r in await q.fetchall("SELECT * FROM emails WHERE site_id = ? AND to_addr = ? ORDER BY id", site_id, email):
        seen[r["id"]] = r
    for cid in cart_ids:
        for r in await q.fetchall("SELECT * FROM emails WHERE cart_id = ? ORDER BY id", cid):
            seen[r["id"]] = r
    return [seen[k] for k in sorted(seen)]


def _parse(row: Row, *keys: str) -> Row:
    out = dict(row)
    for k in keys:
        if isinstance(out.get(k), str):
            try:
                out[k] = json.loads(out[k])
            except ValueError:
                pass
    return out


async def export_shopper(db: Database, site: Site, email: str) -> dict[str, Any]:
    email = normalize_email(email)
    vids = await _visitor_ids(db, site.id, email)
    carts = await _carts(db, site.id, email, vids)
    emails = await _emails(db, site.id, email, [c["id"] for c in carts])
    events: list[Row] = []
    for vid in vids:
        events += await db.fetchall(
            "SELECT id, client_id, visitor_id, type, data, created_at FROM events WHERE site_id = ? AND visitor_id = ? ORDER BY id",
            site.id,
            vid,
        )
    opens: list[Row] = []
    for e in emails:
        opens += await db.fetchall(
            "SELECT id, email_id, is_proxy, user_agent, created_at FROM opens WHERE email_id = ?", e["id"]
        )
    mailbox = await db.fetchall(
        "SELECT id, email_id, to_addr, from_addr, subject, text, created_at FROM mailbox WHERE (site_id = ? OR site_id IS NULL)"
        " AND to_addr = ? ORDER BY id",
        site.id,
        email,
    )
    return {
        "site": site.key,
        "email": email,
        "exported_at": time.time(),
        "visitor_ids": vids,
        "leads": [
            _parse(r, "variants")
            for r in await db.fetchall("SELECT * FROM leads WHERE site_id = ? AND email = ?", site.id, email)
        ],
        "visitors": await db.fetchall("SELECT * FROM visitors WHERE site_id = ? AND email = ?", site.id, email),
        "carts": [_parse(c, "items", "variants") for c in carts],
        "events": [_parse(e, "data") for e in sorted(events, key=lambda r: r["id"])],
        "emails": [_parse(e, "variants") for e in emails],
        "opens": opens,
        "orders": await db.fetchall("SELECT * FROM orders WHERE site_id = ? AND email = ? ORDER BY id", site.id, email),
        "unsubscribes": await db.fetchall("SELECT * FROM unsubscribes WHERE site_id = ? AND email = ?", site.id, email),
        "webhook_deliveries": [
            _parse(r, "body")
            for r in await db.fetchall(
                "SELECT id, url, event, ref, body, status, created_at, delivered_at FROM webhook_outbox"
                " WHERE site_id = ? AND (ref = ? OR body LIKE ? ESCAPE '\\') ORDER BY id",
                site.id,
                email,
                _email_in_body(email),
            )
        ],
        "mailbox": mailbox,
    }


async def forget_shopper(db: Database, site: Site, email: str) -> dict[str, int]:
    """Removes the shopper; returns how many rows of each kind went."""
    email = normalize_email(email)

    async def op(tx: Tx) -> dict[str, int]:
        n: dict[str, int] = {}
        vids = await _visitor_ids(tx, site.id, email)
        carts = await _carts(tx, site.id, email, vids)
        cart_ids = [c["id"] for c in carts]
        emails = await _emails(tx, site.id, email, cart_ids)
        email_ids = [e["id"] for e in emails]
        n["variant_assignments"] = await variants.forget(tx, site.id, email, vids, email_ids)
        n["opens"] = 0
        n["mailbox"] = 0
        for eid in email_ids:
            n["opens"] += await tx.execute("DELETE FROM opens WHERE email_id = ?", eid)
            n["mailbox"] += await tx.execute("DELETE FROM mailbox WHERE email_id = ?", eid)
            # A code handed out stays used; it only stops pointing at the deleted email.
            await tx.execute("UPDATE discount_codes SET email_id = NULL WHERE email_id = ?", eid)
            await tx.execute("UPDATE orders SET email_id = NULL WHERE email_id = ?", eid)
        n["mailbox"] += await tx.execute(
            "DELETE FROM mailbox WHERE (site_id = ? OR site_id IS NULL) AND to_addr = ?", site.id, email
        )
        n["emails"] = 0
        for eid in email_ids:
            n["emails"] += await tx.execute("DELETE FROM emails WHERE id = ?", eid)
        n["orders_anonymised"] = await tx.execute(
            "UPDATE orders SET email = NULL, cart_id = NULL WHERE site_id = ? AND email = ?", site.id, email
        )
        for cid in cart_ids:
            n["orders_anonymised"] += await tx.execute(
                "UPDATE orders SET cart_id = NULL WHERE site_id = ? AND cart_id = ?", site.id, cid
            )
        n["carts"] = 0
        for cid in cart_ids:
            n["carts"] += await tx.execute("DELETE FROM carts WHERE id = ?", cid)
        n["events"] = 0
        n["visitors"] = 0
        for vid in vids:
            n["events"] += await tx.execute("DELETE FROM events WHERE site_id = ? AND visitor_id = ?", site.id, vid)
            n["visitors"] += await tx.execute("DELETE FROM visitors WHERE site_id = ? AND visitor_id = ?", site.id, vid)
        n["visitors"] += await tx.execute("DELETE FROM visitors WHERE site_id = ? AND email = ?", site.id, email)
        n["leads"] = await tx.execute("DELETE FROM leads WHERE site_id = ? AND email = ?", site.id, email)
        n["webhook_deliveries"] = await tx.execute(
            "DELETE FROM webhook_outbox WHERE site_id = ? AND (ref = ? OR body LIKE ? ESCAPE '\\')",
            site.id,
            email,
            _email_in_body(email),
        )
        return n

    return await db.write(op)
