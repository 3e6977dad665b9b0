"""The sweep over 1,000,000 carts with 10,000 due: the query plans, and the pass before sending.

A fresh database (`cartback migrate`) gets 1,000,000 carts with sqlite3 executemany, spread over
the ids at random: 10,000 open with an email and quiet for two hours (due: the default
abandon_after_minutes is 60), 40,000 open with an email but changed ten minutes ago, 700,000
open without an email (anonymous shoppers: never reminded), 250,000 closed (purchased, emptied,
abandoned earlier). The pass before sending is the sweep's own first phase, what
collector/recovery/sweep.py's sweep_once runs before its sender: abandon.mark_abandoned for every
site (find the due carts, mark them abandoned, queue their reminder steps, in batches); then the
first claim of due emails (reminders.claim_due), which the sender starts with. Both plans are
printed (EXPLAIN QUERY PLAN). Three rounds (the due carts are put back between them); medians.

    .venv/bin/python bench/bench_sweep.py [--carts 1000000] [--due 10000] [--rounds 3]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import sqlite3
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from _common import bench_env, cartback, create_site, median, report, row

ITEMS = json.dumps(
    [
        {
            "id": "sku-1042",
            "name": "Blue enamel mug",
            "price": 12.5,
            "quantity": 2,
            "image": "https://shop.example/img/mug.jpg",
        }
    ],
    separators=(",", ":"),
)


def fill(db: Path, site_id: int, carts: int, due: int, now: float) -> None:
    rng = random.Random(7)
    recent, anonymous = 40_000 * carts // 1_000_000, 700_000 * carts // 1_000_000
    kinds = ["due"] * due + ["recent"] * recent + ["anon"] * anonymous
    kinds += ["closed"] * (carts - len(kinds))
    rng.shuffle(kinds)

    def rows():
        for i, kind in enumerate(kinds):
            vid = f"vis-{i:08d}"
            if kind == "due":
                yield (site_id, vid, f"due{i}@example.com", "open", now - 7200 - i % 3600, None)
            elif kind == "recent":
                yield (site_id, vid, f"recent{i}@example.com", "open", now - 600, None)
            elif kind == "anon":
                yield (site_id, vid, None, "open", now - rng.uniform(0, 30 * 86400), None)
            else:
                status = ("purchased", "emptied", "abandoned", "replaced")[i % 4]
                t = now - rng.uniform(86400, 60 * 86400)
                yield (site_id, vid, f"old{i}@example.com", status, t, t + 3600 if status == "abandoned" else None)

    conn = sqlite3.connect(db, isolation_level=None)
    conn.execute("PRAGMA synchronous = OFF")
    conn.execute("BEGIN")
    conn.executemany(
        "INSERT INTO carts (site_id, visitor_id, email, items, currency, value, item_count, status, created_at,"
        " updated_at, abandoned_at) VALUES (?, ?, ?, '" + ITEMS + "', 'EUR', 25.0, 2, ?, ?, ?, ?)",
        ((s, v, e, st, t - 60, t, a) for s, v, e, st, t, a in rows()),
    )
    conn.execute("COMMIT")
    conn.close()


def plans(db: Path, site_id: int, now: float) -> dict[str, list[str]]:
    from collector.recovery import abandon, reminders

    conn = sqlite3.connect(db)
    out = {}
    queries = {
        "due carts (abandon.mark_abandoned)": (
            "SELECT id, email, items, currency, value, item_count FROM carts"
            " WHERE site_id = ? AND status = 'open' AND email IS NOT NULL AND item_count > 0 AND updated_at <= ?"
            " ORDER BY id LIMIT ?",
            (site_id, now - 3600, abandon.ABANDON_BATCH),
        ),
        "due emails (reminders.claim_due)": (
            "SELECT id FROM emails WHERE (status = 'pending' AND due_at <= ? AND (next_attempt_at IS NULL OR next_attempt_at <= ?))"
            " OR (status = 'claimed' AND claimed_at <= ?) ORDER BY due_at, id LIMIT ?",
            (now, now, now - reminders.CLAIM_STALE_SECONDS, reminders.CLAIM_BATCH),
        ),
    }
    for name, (sql, args) in queries.items():
        out[name] = [r[3] for r in conn.execute("EXPLAIN QUERY PLAN " + sql, args)]
    conn.close()
    return out


async def one_pass(url: str, now: float) -> tuple[float, int, float, int]:
    """Seconds and count of the abandonment pass, then of the first claim, as sweep_once runs them."""
    from collector.recovery import abandon, reminders
    from collector.store import Store, open_database

    store = Store(open_database(url))
    await store.connect()
    try:
        t = time.perf_counter()
        total = 0
        for site in await store.sites.list():
            total += await abandon.mark_abandoned(store.db, site, now)
        marked = time.perf_counter() - t
        t = time.perf_counter()
        jobs, _ = await reminders.claim_due(store.db, store.sites, now, "bench-claim")
        claimed = time.perf_counter() - t
        return marked, total, claimed, len(jobs)
    finally:
        await store.close()


def reset(db: Path, now: float) -> None:
    conn = sqlite3.connect(db, isolation_level=None)
    conn.execute("BEGIN")
    conn.execute("DELETE FROM emails")
    conn.execute("DELETE FROM webhook_outbox")
    conn.execute(
        "UPDATE carts SET status = 'open', abandoned_at = NULL WHERE status = 'abandoned' AND abandoned_at = ?", (now,)
    )
    conn.execute("COMMIT")
    conn.close()


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--carts", type=int, default=1_000_000)
    ap.add_argument("--due", type=int, default=10_000)
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="cartback-bench-sweep-") as t:
        db = Path(t) / "cartback.db"
        env = bench_env(db)
        cartback(env, "migrate")
        create_site(env, "https://shop.example")
        now = time.time()
        t0 = time.perf_counter()
        fill(db, 1, args.carts, args.due, now)
        print(f"inserted {args.carts:,} carts ({args.due:,} due) in {time.perf_counter() - t0:.1f} s", flush=True)
        indexed = True
        for name, steps in plans(db, 1, now).items():
            print(f"query plan, {name}:")
            for step in steps:
                print(f"    {step}")
            indexed = indexed and all("USING" in s for s in steps if s.startswith(("SCAN", "SEARCH")))
        marks, claims = [], []
        for r in range(args.rounds):
            marked, total, claimed, jobs = asyncio.run(one_pass(env["CARTBACK_DATABASE_URL"], now))
            assert total == args.due, f"{total} carts marked abandoned, {args.due} expected"
            marks.append(marked)
            claims.append(claimed)
            print(
                f"round {r + 1}: {total:,} carts marked abandoned and their steps queued in {marked:.2f} s;"
                f" first claim of {jobs} due emails in {claimed * 1000:.0f} ms",
                flush=True,
            )
            reset(db, now)
    mark, claim = median(marks), median(claims)
    before = mark + claim
    print(
        f"median: the pass before sending {before:.2f} s (abandonment {mark:.2f} s, first claim {claim * 1000:.0f} ms);"
        f" due carts and emails found through an index: {indexed}"
    )
    report(
        [
            row(
                f"sweep: {args.carts:,} carts, {args.due:,} due: pass before sending",
                f"{before:.2f} s",
                "",
                None,
                "< 2 s",
                before < 2,
            ),
            row(
                "sweep: due carts and emails found through an index",
                "yes" if indexed else "no (see plan)",
                "",
                None,
                "index, no scan",
                indexed,
            ),
        ]
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
