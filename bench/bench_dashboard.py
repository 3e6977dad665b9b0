"""The dashboard at a store's real year: every page's reads and the stats for 7 days, 90 days and all time.

The data set is the research note's (docs: ../shared/research/2026-12-02-scale.md): one site with
1,001,000 carts over 90 days (700k abandoned, 220k of them with an email), 5.02M events, 200k
leads, 300k reminders sent, 281k opens, 19.7k orders, and a small site with 1k carts. It is
written straight into a freshly migrated database (sqlite3 executemany / asyncpg COPY), with the
rows ingest itself would write beside the events (variant assignments, the reminders' variants).
`--scale 0.1` builds a tenth of it (the figure printed says which); the targets are for 1.0.

Timed, median of 5 after a warm-up, through the real code (collector.funnel.site_stats, the
experiments' results, the carts and leads pages' keyset reads, the audience size) on the store's
own Database: the overview (the stats plus the audience size) and the stats API for each range
(first from the raw rows alone, once each, then with the daily rollups the sweep keeps, which
the script computes for every closed day at once and times),
the experiments page, carts page 1 and a page 1000 rows deep, leads page 1 and a search; the same
for the small site. Every statement's plan is printed. Bytes per cart and per event follow.

    .venv/bin/python bench/bench_dashboard.py [--backend sqlite|postgresql|both] [--scale 1.0]
        [--postgres-url postgresql://postgres@127.0.0.1:5432/postgres]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import sqlite3
import sys
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from _common import median, report, row

from collector.analytics import rollup
from collector.audiences import audience_size
from collector.dashboard import queries
from collector.experiments.results import experiment_results
from collector.funnel import site_stats
from collector.schemas import SiteSettings
from collector.store import Store, open_database

DAY = 86400.0
SETTINGS = {
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
ITEMS = json.dumps([{"id": "sku-1042", "name": "Blue enamel mug", "price": 12.5, "quantity": 2}], separators=(",", ":"))
COLUMNS = {
    "events": ("site_id", "client_id", "visitor_id", "type", "data", "created_at"),
    "carts": (
        "id",
        "site_id",
        "visitor_id",
        "email",
        "items",
        "currency",
        "value",
        "item_count",
        "status",
        "created_at",
        "updated_at",
        "abandoned_at",
        "closed_at",
    ),
    "leads": (
        "site_id",
        "email",
        "visitor_id",
        "source",
        "consent",
        "variants",
        "cart_value",
        "currency",
        "created_at",
    ),
    "emails": (
        "id",
        "site_id",
        "cart_id",
        "step",
        "to_addr",
        "subject",
        "variants",
        "status",
        "due_at",
        "attempts",
        "sent_at",
        "opened_at",
        "open_count",
        "proxy_open_count",
        "clicked_at",
        "click_count",
        "created_at",
    ),
    "opens": ("site_id", "email_id", "is_proxy", "user_agent", "created_at"),
    "orders": ("site_id", "order_id", "value", "currency", "email", "cart_id", "recovered", "email_id", "created_at"),
    "variant_assignments": ("site_id", "experiment", "variant", "visitor_id", "shown_at", "lead_at", "email"),
    "email_variants": ("email_id", "site_id", "experiment", "variant"),
}


def generate(site_id: int, carts: int, now: float, first_cart_id: int, first_email_id: int) -> dict[str, list[tuple]]:
    """The rows of one site: `carts` carts over 90 days and everything around them, in the note's proportions."""
    rng = random.Random(site_id)
    f = carts / 1_001_000
    out: dict[str, list[tuple]] = {t: [] for t in COLUMNS}
    start = now - 90 * DAY
    n_abandoned, n_email = int(700_000 * f), int(220_000 * f)
    n_leads, n_emails, n_opens, n_orders = int(200_000 * f), int(300_000 * f), int(281_000 * f), int(19_700 * f)
    events_per_cart = 5_020_000 / 1_001_000
    carts_with_email: list[tuple[int, str, float]] = []
    ev = 0
    for i in range(carts):
        cid = first_cart_id + i
        vid = f"v{site_id}-{i:07d}"
        created = start + (90 * DAY) * i / carts
        email = f"s{i}@shop{site_id}.example" if i < n_email else None
        status = "abandoned" if i < n_abandoned else rng.choice(["open", "purchased", "emptied", "replaced"])
        ab_at = created + 3600 if status == "abandoned" else None
        out["carts"].append(
            (
                cid,
                site_id,
                vid,
                email,
                ITEMS,
                "EUR",
                25.0,
                2,
                status,
                created,
                created + 60,
                ab_at,
                None if status in ("open", "abandoned") else created + 120,
            )
        )
        if email:
            carts_with_email.append((cid, email, ab_at or created))
        # About five events a cart: cart updates, a popup shown (with its variants), closes, reasons, checkouts.
        k = int(events_per_cart) + (1 if rng.random() < events_per_cart % 1 else 0)
        for j in range(k):
            ev += 1
            t = created + j * 10
            kind = ("cart", "cart", "shown", "closed", "checkout", "reason")[j % 6]
            data: str | None = None
            if kind == "shown":
                var = "AB"[i % 2]
                data = json.dumps({"variants": {"hl": var, "offer": "ten" if i % 3 else "five"}})
                out["variant_assignments"].append((site_id, "hl", var, vid, t, None, None))
            elif kind == "reason":
                data = json.dumps({"reason": rng.choice(["Shipping costs", "Just browsing", "Too expensive"])})
            out["events"].append((site_id, f"e{site_id}-{ev:08d}", vid, kind, data, t))
    # Leads: the first n_leads visitors gave an address (the ones with carts with email among them).
    va = {r[3]: n for n, r in enumerate(out["variant_assignments"])}
    for i in range(min(n_leads, carts)):
        vid = f"v{site_id}-{i:07d}"
        t = start + (90 * DAY) * i / carts + 30
        email = f"s{i}@shop{site_id}.example"
        variant = "AB"[i % 2]
        out["leads"].append((site_id, email, vid, "popup", i % 2, json.dumps({"hl": variant}), 25.0, "EUR", t))
        n = va.get(vid)
        if n is not None:
            r = out["variant_assignments"][n]
            out["variant_assignments"][n] = (r[0], r[1], r[2], r[3], r[4], t, email)
    # Reminders sent: step 0 for every cart with an email, step 1 for the rest of the count.
    eid = first_email_id
    sent: list[tuple[int, str, float, bool]] = []
    for step in (0, 1):
        for cid, email, at in carts_with_email:
            if len(sent) >= n_emails:
                break
            eid += 1
            t = at + step * DAY
            subj = "plain" if cid % 2 else "fun"
            opened = rng.random() < 0.6
            clicked = opened and rng.random() < 0.15
            out["emails"].append(
                (
                    eid,
                    site_id,
                    cid,
                    step,
                    email,
                    "Your cart",
                    json.dumps({"subj": subj}),
                    "sent",
                    t,
                    1,
                    t,
                    t + 600 if opened else None,
                    1 if opened else 0,
                    0,
                    t + 900 if clicked else None,
                    1 if clicked else 0,
                    t,
                )
            )
            out["email_variants"].append((eid, site_id, "subj", subj))
            sent.append((eid, email, t, clicked))
    for n in range(n_opens):
        e = sent[n % len(sent)] if sent else None
        if e is None:
            break
        out["opens"].append((site_id, e[0], 1 if n % 5 == 0 else 0, "Mozilla/5.0", e[2] + 600))
    clicked = [e for e in sent if e[3]]
    for n in range(n_orders):
        if clicked and n % 2 == 0:
            e = clicked[n % len(clicked)]
            out["orders"].append((site_id, f"o{site_id}-{n}", 40.0, "EUR", e[1], None, 1, e[0], e[2] + 1800))
        else:
            out["orders"].append(
                (site_id, f"o{site_id}-{n}", 40.0, "EUR", None, None, 0, None, start + 90 * DAY * n / n_orders)
            )
    return out


def load_sqlite(path: Path, rows: dict[str, list[tuple]]) -> None:
    conn = sqlite3.connect(path)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=OFF")
    for table, cols in COLUMNS.items():
        marks = ", ".join("?" for _ in cols)
        conn.executemany(f"INSERT INTO {table} ({', '.join(cols)}) VALUES ({marks})", rows[table])
    conn.commit()
    conn.execute("ANALYZE")
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    conn.close()


async def load_postgres(url: str, rows: dict[str, list[tuple]]) -> None:
    import asyncpg

    conn = await asyncpg.connect(url)
    try:
        # No rollup row exists yet, so the rollups' invalidation triggers have nothing to do: the bulk
        # load skips them (a row trigger per copied row; the script computes the rollups after).
        await conn.execute("SET session_replication_role = replica")
        for table, cols in COLUMNS.items():
            await conn.copy_records_to_table(table, records=rows[table], columns=list(cols))
        for table in ("carts", "emails"):
            await conn.execute(f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), (SELECT MAX(id) FROM {table}))")
        await conn.execute("VACUUM ANALYZE")
    finally:
        await conn.close()


class Recorder:
    """The Database, writing down each read's statement (for the plans)."""

    def __init__(self, db: Any) -> None:
        self.db, self.seen = db, []

    def __getattr__(self, name: str) -> Any:
        return getattr(self.db, name)

    async def fetchone(self, sql: str, *args: Any) -> Any:
        self.seen.append((sql, args))
        return await self.db.fetchone(sql, *args)

    async def fetchall(self, sql: str, *args: Any) -> Any:
        self.seen.append((sql, args))
        return await self.db.fetchall(sql, *args)


async def plan(db: Any, sql: str, args: tuple) -> str:
    if db.dialect == "sqlite":
        return "; ".join(r["detail"] for r in await db.fetchall("EXPLAIN QUERY PLAN " + sql, *args))
    rows = await db.fetchall("EXPLAIN " + sql, *args)
    return " / ".join(
        r["QUERY PLAN"].strip() for r in rows if "Scan" in r["QUERY PLAN"] or "Aggregate" in r["QUERY PLAN"]
    )


async def timed(fn: Callable[[], Awaitable[Any]], rounds: int = 5) -> float:
    await fn()
    times = []
    for _ in range(rounds):
        t = time.perf_counter()
        await fn()
        times.append(time.perf_counter() - t)
    return median(times) * 1000


async def run_backend(url: str, scale: float, show_plans: bool) -> list[dict[str, Any]]:
    db = open_database(url)
    store = Store(db)
    await store.connect()
    await db.migrate()
    settings = SiteSettings.model_validate(SETTINGS)
    big = await store.sites.create("Big shop", ["https://big.example"], settings)
    small = await store.sites.create("Small shop", ["https://small.example"], settings)
    now = time.time()
    carts = int(1_001_000 * scale)
    t0 = time.perf_counter()
    rows = generate(big.id, carts, now, 1, 0)
    small_rows = generate(small.id, 1000, now, carts + 1, len(rows["emails"]) + 1)
    for t in rows:
        rows[t] += small_rows[t]
    counts = {t: len(r) for t, r in rows.items()}
    await store.close()
    if db.dialect == "sqlite":
        load_sqlite(Path(url.removeprefix("sqlite:///")), rows)
    else:
        await load_postgres(url, rows)
    del rows, small_rows
    print(f"# {db.dialect}: built {counts} in {time.perf_counter() - t0:.0f} s", flush=True)
    db = open_database(url)
    store = Store(db)
    await store.connect()
    out: list[dict[str, Any]] = []
    try:
        big = await store.sites.get(big.key)
        small = await store.sites.get(small.key)
        assert big is not None and small is not None
        ranges = {"7 d": now - 7 * DAY, "90 d": now - 90 * DAY, "all": None}
        figures: dict[str, float] = {}
        # Before the rollups exist: the stats from the raw rows alone (one round each: it is slow).
        for name, since in ranges.items():
            figures[f"big stats {name} (raw rows, no rollups)"] = await timed(
                lambda since=since: site_stats(db, big.id, since, None, settings=big.settings), rounds=1
            )
        # What the sweep does a few days a pass, all at once: every closed day of both sites.
        t0 = time.perf_counter()
        days = 0
        while n := await rollup.refresh(db, [big.id, small.id], now, max_days=10_000):
            days += n
        print(f"# {db.dialect}: rolled up {days} days in {time.perf_counter() - t0:.1f} s", flush=True)
        for who, site in (("big", big), ("small", small)):
            for name, since in ranges.items():
                figures[f"{who} overview {name}"] = await timed(
                    lambda s=site, since=since: _overview(db, s, since, now)
                )
                figures[f"{who} stats {name}"] = await timed(
                    lambda s=site, since=since: site_stats(db, s.id, since, None, settings=s.settings)
                )
            figures[f"{who} experiments 30 d"] = await timed(
                lambda s=site: experiment_results(db, s.settings, s.id, now - 30 * DAY, None, include_removed=True)
            )
            figures[f"{who} carts page 1"] = await timed(
                lambda s=site: queries.carts_page(db, s, "abandoned", "", None, 25)
            )
            deep = await _deep_cursor(db, site)
            figures[f"{who} carts page 1000"] = await timed(
                lambda s=site, d=deep: queries.carts_page(db, s, "abandoned", "", d, 25)
            )
            figures[f"{who} leads page 1"] = await timed(lambda s=site: queries.leads_page(db, s.id, "", None, 50))
            figures[f"{who} leads search"] = await timed(lambda s=site: queries.leads_page(db, s.id, "s12", None, 50))
        for k, v in figures.items():
            print(f"{db.dialect:10} {k:28} {v:9.1f} ms", flush=True)
        if show_plans:
            rec = Recorder(db)
            await _overview(rec, big, now - 90 * DAY, now)
            await experiment_results(rec, big.settings, big.id, None, None)
            await queries.carts_page(rec, big, "abandoned", "", None, 25)
            await queries.leads_page(rec, big.id, "", None, 50)
            for sql, args in rec.seen:
                t = time.perf_counter()
                await db.fetchall(sql, *args)
                ms = (time.perf_counter() - t) * 1000
                print(f"  {ms:8.1f} ms  {' '.join(sql.split())[:110]}\n        plan: {await plan(db, sql, args)}")
        # No page stalls ingest: the same cart updates alone and while the all-time overview reloads.
        alone = await ingest_under_load(store, small, 5.0, None)
        loaded = await ingest_under_load(store, small, 5.0, lambda: _overview(db, big, None, now))
        print(
            f"{db.dialect:10} ingest alone p99 {alone[0]:.1f} ms max {alone[1]:.1f} ms ({alone[2] / 5:.0f}/s);"
            f" while the all-time overview reloads p99 {loaded[0]:.1f} ms max {loaded[1]:.1f} ms ({loaded[2] / 5:.0f}/s)",
            flush=True,
        )
        size = await _db_bytes(db, url)
        print(
            f"{db.dialect:10} bytes per cart (whole DB) {size / counts['carts']:.0f}; per event {size / counts['events']:.0f}"
            f" ({size / 1e6:.0f} MB for {counts['carts']} carts, {counts['events']} events)"
        )
        label = f"{db.dialect}, {counts['carts']:,} carts (scale {scale})"

        def worst(who: str, kinds: tuple[str, ...]) -> float:
            return max(
                v
                for k, v in figures.items()
                if k.startswith(who) and "raw rows" not in k and any(x in k for x in kinds)
            )

        # The baseline is the same reads on the small site in the same run: what the big site's
        # size costs (a read that scaled with the data, not with the range, would show it here).
        pages = ("page", "experiments", "search")
        for what, kinds, target, limit in (
            ("overview and stats, any range", ("overview", "stats"), "≤ 200 ms", 200.0),
            ("carts, leads, experiments pages", pages, "≤ 100 ms", 100.0),
        ):
            big_ms, small_ms = worst("big", kinds), worst("small", kinds)
            out.append(
                row(
                    f"dashboard: {what} ({label})",
                    f"{big_ms:.0f} ms",
                    f"{small_ms:.1f} ms (1k-cart site)",
                    round(big_ms / small_ms, 1) if small_ms else None,
                    target,
                    big_ms <= limit,
                )
            )
        small_ms = worst("small", ("overview", "stats") + pages)
        out.append(
            row(
                f"dashboard: small site beside the big one ({label})",
                f"{small_ms:.1f} ms",
                "",
                None,
                "≤ 20 ms",
                small_ms <= 20,
            )
        )
        out.append(
            row(
                f"ingest p99 while the all-time overview reloads ({label}, in-process, 16 shoppers)",
                f"{loaded[0]:.1f} ms (max {loaded[1]:.0f} ms)",
                f"{alone[0]:.1f} ms alone (max {alone[1]:.0f} ms)",
                round(loaded[0] / alone[0], 2) if alone[0] else None,
                "≤ 2× alone, max ≤ 100 ms",
                loaded[0] <= 2 * alone[0] and loaded[1] <= 100,
            )
        )
        out.append(
            row(
                f"dashboard: bytes per cart / per event, whole DB ({label})",
                f"{size / counts['carts']:.0f} / {size / counts['events']:.0f}",
                "",
                None,
                "",
                None,
            )
        )
    finally:
        await store.close()
    return out


async def ingest_under_load(store: Store, site: Any, seconds: float, with_overview: Any) -> tuple[float, float, int]:
    """Cart updates by 16 concurrent shoppers for `seconds`, in this process (the collector's own
    event loop and store), optionally while the all-time overview is read in a loop beside them.
    Returns p99 and worst latency in ms, and how many updates went in."""
    from collector.schemas import CartIn

    latencies: list[float] = []
    stop = time.monotonic() + seconds
    run = uuid.uuid4().hex[:8]

    async def shopper(k: int) -> None:
        n = 0
        while time.monotonic() < stop:
            n += 1
            body = CartIn.model_validate(
                {
                    "id": f"b{run}-{k}-{n}",
                    "vid": f"b{run}-{k}-{n % 50}",
                    "currency": "EUR",
                    "items": [{"id": "sku-1", "name": "Mug", "price": 12.5, "quantity": 1 + n % 3}],
                }
            )
            t = time.perf_counter()
            await store.carts.ingest_cart(site, body)
            latencies.append(time.perf_counter() - t)

    async def overview_loop() -> None:
        while time.monotonic() < stop:
            await with_overview()

    tasks = [shopper(k) for k in range(16)] + ([overview_loop()] if with_overview else [])
    await asyncio.gather(*tasks)
    latencies.sort()
    return latencies[int(len(latencies) * 0.99)] * 1000, latencies[-1] * 1000, len(latencies)


async def _overview(db: Any, site: Any, since: float | None, now: float) -> None:
    await site_stats(db, site.id, since, None, settings=site.settings)
    await audience_size(db, site)


async def _deep_cursor(db: Any, site: Any) -> Any:
    """The cursor 1000 rows into the abandoned carts (what following "Older" 40 times reaches)."""
    rows = await db.fetchall(
        "SELECT abandoned_at, id FROM carts WHERE site_id = ? AND abandoned_at IS NOT NULL"
        " ORDER BY abandoned_at DESC, id DESC LIMIT 1 OFFSET 999",
        site.id,
    )
    if not rows:
        return None
    return queries.Keyset(rows[0]["abandoned_at"], rows[0]["id"], True)


async def _db_bytes(db: Any, url: str) -> int:
    if db.dialect == "sqlite":
        path = Path(url.removeprefix("sqlite:///"))
        return sum(p.stat().st_size for p in path.parent.glob(path.name + "*"))
    r = await db.fetchone("SELECT pg_database_size(current_database()) AS n")
    return int(r["n"])


async def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--backend", choices=["sqlite", "postgresql", "both"], default="both")
    ap.add_argument("--scale", type=float, default=1.0, help="share of the research note's data set (1.0 = 1M carts)")
    ap.add_argument(
        "--postgres-url",
        default=os.environ.get("CARTBACK_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres"),
    )
    ap.add_argument("--plans", action="store_true", help="print every statement's plan")
    args = ap.parse_args()
    print(f"# scale {args.scale}: {int(1_001_000 * args.scale):,} carts on the big site (the targets are for 1.0)")
    results: list[dict[str, Any]] = []
    if args.backend in ("sqlite", "both"):
        with tempfile.TemporaryDirectory() as tmp:
            results += await run_backend(f"sqlite:///{tmp}/bench.db", args.scale, args.plans)
    if args.backend in ("postgresql", "both"):
        import asyncpg

        name = f"bench_{uuid.uuid4().hex[:10]}"
        admin = await asyncpg.connect(args.postgres_url)
        await admin.execute(f'CREATE DATABASE "{name}"')
        await admin.close()
        base = args.postgres_url.rsplit("/", 1)[0]
        try:
            results += await run_backend(f"{base}/{name}", args.scale, args.plans)
        finally:
            admin = await asyncpg.connect(args.postgres_url)
            await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            await admin.close()
    report(results)


if __name__ == "__main__":
    asyncio.run(main())
