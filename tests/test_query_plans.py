"""Every dashboard and stats query reads an index range, never a whole table: each statement the
overview, the stats, the experiments, the carts and the leads pages send is recorded and its plan
checked on both backends (SQLite's EXPLAIN QUERY PLAN; PostgreSQL's EXPLAIN with sequential scans
priced out, so that a table read in full shows up even on a small test database)."""

from __future__ import annotations

import json
import time
from typing import Any

from collector.audiences import audience_size
from collector.dashboard import queries
from collector.experiments.results import experiment_results
from collector.funnel import site_stats
from collector.schemas import SiteSettings
from collector.store import Store, carts, variants
from collector.store.db import database_bytes, oldest_kept
from tests.conftest import SHOP_ORIGIN
from tests.dashboard_support import cart, ingest

# The tables that grow with a store's traffic: none may be read in full.
BIG = {"events", "carts", "emails", "opens", "orders", "leads", "variant_assignments", "email_variants"}
# SQLite's plans name a table by its alias in the statement: the aliases Cartback's reads use.
ALIASES = {"e": "emails", "v": "email_variants", "a": "variant_assignments", "c": "carts", "o": "opens", "l": "leads"}

SETTINGS = SiteSettings.model_validate(
    {
        "experiments": [
            {"name": "hl", "kind": "popup", "variants": [{"name": "A"}, {"name": "B"}]},
            {
                "name": "offer",
                "kind": "discount",
                "variants": [{"name": "ten", "discount_code": "TEN"}, {"name": "five", "discount_code": "FIVE"}],
            },
            {
                "name": "subj",
                "kind": "subject",
                "step": 0,
                "variants": [{"name": "plain", "subject": "Your cart"}, {"name": "fun", "subject": "Psst"}],
            },
        ]
    }
)


class Recorder:
    """The Database with every read it is asked for written down."""

    def __init__(self, db: Any) -> None:
        self.db = db
        self.seen: list[tuple[str, tuple[Any, ...]]] = []

    def __getattr__(self, name: str) -> Any:
        return getattr(self.db, name)

    async def fetchone(self, sql: str, *args: Any) -> Any:
        self.seen.append((sql, args))
        return await self.db.fetchone(sql, *args)

    async def fetchall(self, sql: str, *args: Any) -> Any:
        self.seen.append((sql, args))
        return await self.db.fetchall(sql, *args)


async def plan_problems(db: Any, sql: str, args: tuple[Any, ...]) -> list[str]:
    """What in the statement's plan reads a big table in full (empty when nothing does)."""
    if db.dialect == "sqlite":
        rows = await db.fetchall("EXPLAIN QUERY PLAN " + sql, *args)
        out = []
        for r in rows:
            words = r["detail"].split()
            # "SCAN t" (or "SCAN t USING [COVERING] INDEX i": every entry of the index) is a full read;
            # "SEARCH t USING INDEX i (site_id=? AND ...)" reads a range.
            if words[:1] == ["SCAN"] and len(words) > 1 and ALIASES.get(words[1], words[1]) in BIG:
                out.append(r["detail"])
        return out

    async def op(tx: Any) -> Any:
        # Priced out, not forbidden: the planner still falls back to a scan where no index fits.
        await tx.execute("SET LOCAL enable_seqscan = off")
        return await tx.fetchone("EXPLAIN (FORMAT JSON) " + sql, *args)

    row = await db.write(op)
    plan = row["QUERY PLAN"]
    plan = json.loads(plan) if isinstance(plan, str) else plan
    out = []

    def walk(node: dict[str, Any]) -> None:
        rel = node.get("Relation Name")
        kind = node.get("Node Type")
        if rel in BIG:
            if kind == "Seq Scan":
                out.append(f"Seq Scan on {rel}")
            elif kind in ("Index Scan", "Index Only Scan") and "Index Cond" not in node:
                out.append(f"{kind} of all of {node.get('Index Name')} on {rel}")
        for child in node.get("Plans", []):
            walk(child)

    walk(plan[0]["Plan"])
    return out


async def make_data(client: Any, store: Store, site: Any) -> None:
    """A little of everything the pages count: carts (open, abandoned, bought), popups shown with
    variants, reasons, leads, reminders with variants, opens and recovered orders."""
    for i in range(6):
        vid = f"visitor-{i:04d}"
        await ingest(client, site, "cart", cart(f"c-{i:06d}", vid))
        await ingest(
            client,
            site,
            "event",
            {"id": f"shown-{i:04d}", "vid": vid, "type": "shown", "variants": {"hl": "AB"[i % 2], "offer": "ten"}},
        )
        await ingest(client, site, "event", {"id": f"reason-{i:04d}", "vid": vid, "type": "reason", "reason": "Price"})
        await ingest(
            client,
            site,
            "lead",
            {"id": f"lead-{i:06d}", "vid": vid, "email": f"s{i}@example.com", "variants": {"hl": "AB"[i % 2]}},
        )
    now = time.time()

    async def op(tx: Any) -> None:
        await tx.execute("UPDATE carts SET status = 'abandoned', abandoned_at = ? WHERE site_id = ?", now, site.id)
        for c in await tx.fetchall("SELECT id, email FROM carts WHERE site_id = ?", site.id):
            row = await tx.fetchone(
                "INSERT INTO emails (site_id, cart_id, step, to_addr, subject, status, due_at, attempts, sent_at,"
                " opened_at, clicked_at, variants, created_at) VALUES (?, ?, 0, ?, 'Your cart', 'sent', ?, 1, ?, ?, ?, ?, ?)"
                " RETURNING id",
                site.id,
                c["id"],
                c["email"],
                now,
                now,
                now,
                now,
                json.dumps({"subj": "plain", "offer": "five"}),
                now,
            )
            await variants.record_email(tx, site.id, row["id"], {"subj": "plain", "offer": "five"})
            await tx.execute(
                "INSERT INTO opens (site_id, email_id, is_proxy, user_agent, created_at) VALUES (?, ?, 0, 'x', ?)",
                site.id,
                row["id"],
                now,
            )
            await tx.execute(
                "INSERT INTO orders (site_id, order_id, value, currency, email, cart_id, recovered, email_id, created_at)"
                " VALUES (?, ?, 10, 'EUR', ?, ?, 1, ?, ?)",
                site.id,
                f"o-{c['id']}",
                c["email"],
                c["id"],
                row["id"],
                now,
            )

    await store.db.write(op)


async def every_dashboard_read(store: Store, site: Any) -> list[tuple[str, tuple[Any, ...]]]:
    """Runs every dashboard and stats read for 7 days, 90 days and all time; returns the statements."""
    rec = Recorder(store.db)
    now = time.time()
    for since in (now - 7 * 86400, now - 90 * 86400, None):
        await site_stats(rec, site.id, since, now + 1 if since else None, settings=site.settings)  # type: ignore[arg-type]
        await experiment_results(rec, site.settings, site.id, since, None, include_removed=True)  # type: ignore[arg-type]
    for which in ("abandoned", "all", "open", "purchased"):
        page = await queries.carts_page(rec, site, which, "", None, 2)  # type: ignore[arg-type]
        assert page.older is not None or which != "abandoned"
        if page.older:
            at = queries.Keyset.parse(page.older, None)
            older = await queries.carts_page(rec, site, which, "", at, 2)  # type: ignore[arg-type]
            assert older.newer is not None
            await queries.carts_page(rec, site, which, "", queries.Keyset.parse(None, older.newer), 2)  # type: ignore[arg-type]
    await queries.carts_page(rec, site, "abandoned", "s1", None, 2)  # type: ignore[arg-type]
    first = await queries.leads_page(rec, site.id, "", None, 2)  # type: ignore[arg-type]
    assert first.older is not None
    second = await queries.leads_page(rec, site.id, "", queries.Keyset.parse(first.older, None), 2)  # type: ignore[arg-type]
    await queries.leads_page(rec, site.id, "", queries.Keyset.parse(None, second.newer), 2)  # type: ignore[arg-type]
    await queries.leads_page(rec, site.id, "s1", None, 2)  # type: ignore[arg-type]
    await audience_size(rec, site)  # type: ignore[arg-type]
    await oldest_kept(rec, site.id)  # type: ignore[arg-type]
    await carts.last_seen(rec, site.id)  # type: ignore[arg-type]
    await database_bytes(rec)  # type: ignore[arg-type]
    return rec.seen


async def test_no_dashboard_query_reads_a_whole_table(client, store):
    site = await store.sites.create("Big shop", [SHOP_ORIGIN], SETTINGS)
    other = await store.sites.create("Small shop", [SHOP_ORIGIN], SETTINGS)
    await make_data(client, store, site)
    await make_data(client, store, other)
    seen = await every_dashboard_read(store, site)
    assert len(seen) > 40
    problems = {sql: found for sql, args in seen if (found := await plan_problems(store.db, sql, args))}
    assert problems == {}


async def test_the_plan_check_catches_a_full_scan(store, site):
    # The check itself: a count by a column no index leads with is a full read, on either backend.
    problems = await plan_problems(store.db, "SELECT COUNT(*) AS n FROM events WHERE data LIKE ?", ("%x%",))
    assert problems, "a read of every event passed the plan check"
    # Every site's emails by a column no index holds: a read of them all.
    problems = await plan_problems(store.db, "SELECT COUNT(*) AS n FROM emails WHERE error = ?", ("x",))
    assert problems


async def test_paging_walks_every_row_once(client, store, site):
    await make_data(client, store, site)
    seen: list[str] = []
    at = None
    while True:
        page = await queries.leads_page(store.db, site.id, "", at, 4)
        seen += [r["email"] for r in page.rows]
        if page.older is None:
            break
        at = queries.Keyset.parse(page.older, None)
    assert sorted(seen) == sorted(f"s{i}@example.com" for i in range(6)) and len(seen) == 6
