"""The `daily_rollups` table: one row of counts per site and closed UTC day, kept equal to a recount by triggers.

What a row holds is computed by collector/analytics/rollup.py from the raw rows of its day; this
module only stores, finds and invalidates rows. Invalidation is the database's own: a trigger on
every table the counts read (carts, events, leads, emails, opens, orders, email_variants) deletes
the row of each day a written row counts in, in the same transaction as the write. So no write
path can forget it (a late order, retention, a forgotten shopper, a change of attribution), and a
row that exists always equals what the raw rows of its day give now.

A day is computed in three steps, so the reads happen outside any write transaction (the SQLite
writer is never held for them): `claim` writes a placeholder (counts NULL, a fresh token), the
caller reads the day's raw rows, and `fill` stores the counts only if the placeholder is still
there: a write into the day after the claim has deleted it, and the counts are dropped. On
PostgreSQL, where writes run concurrently, a trigger that deletes in a closed day first takes a
shared advisory lock per site, and `claim` waits for the exclusive one: a writer still in flight
when the placeholder appears has committed before the reads start, and a later one deletes it.
Writes at the current time (every ingest) skip the lock: their day is still open, never rolled up.
"""

from __future__ import annotations

import json
import secrets
from typing import Any

from collector.store.db import Database, Reader, Tx, dumps

DAY = 86400
# A day is rolled up only this long after it ended (late commits, clocks of several hosts) ...
CLOSE_AFTER = 2 * 3600
# ... and on PostgreSQL a write older than this takes the rollup lock (less than CLOSE_AFTER, so
# a day that can have a row is always "old" to every write into it, whatever the clocks' skew).
OLD_WRITE = 3600
# The advisory lock's class (pg_advisory_xact_lock(class, site)): any constant of its own.
LOCK_CLASS = 1014


def day_of(ts: float) -> int:
    """The UTC day number of an epoch time (what the `day` column holds)."""
    return int(ts // DAY)


async def rolled_days(
    db: Reader, site_id: int, first: int | None, last: int | None, version: int
) -> list[tuple[int, dict[str, Any]]]:
    """The computed rows of days first..last (both included, None: unbounded) whose counts are of
    `version` (their "v"; what a day holds changes with the code), in day order."""
    sql, args = "SELECT day, counts FROM daily_rollups WHERE site_id = ? AND counts IS NOT NULL", [site_id]
    if first is not None:
        sql += " AND day >= ?"
        args.append(first)
    if last is not None:
        sql += " AND day <= ?"
        args.append(last)
    rows = await db.fetchall(sql + " ORDER BY day", *args)
    out = [(int(r["day"]), json.loads(r["counts"])) for r in rows]
    return [(d, c) for d, c in out if c.get("v") == version]


async def computed(db: Reader, site_id: int, version: int) -> set[int]:
    """The days of the site that have computed counts of `version`."""
    return {d for d, _ in await rolled_days(db, site_id, None, None, version)}


async def claim(db: Database, site_id: int, day: int, now: float) -> str:
    """Writes the day's placeholder and returns its token (see the module's docstring)."""
    token = secrets.token_hex(8)

    async def op(tx: Tx) -> None:
        await tx.execute(
            "INSERT INTO daily_rollups (site_id, day, counts, token, computed_at) VALUES (?, ?, NULL, ?, ?)"
            " ON CONFLICT (site_id, day) DO UPDATE SET counts = NULL, token = excluded.token,"
            " computed_at = excluded.computed_at",
            site_id,
            day,
            token,
            now,
        )

    await db.write(op)
    if db.dialect == "postgresql":
        # Waits for the writers into closed days still in flight (they hold the shared lock).
        async def wait(tx: Tx) -> None:
            await tx.fetchone("SELECT pg_advisory_xact_lock(?, ?) IS NULL AS x", LOCK_CLASS, site_id)

        await db.write(wait)
    return token


async def fill(db: Database, site_id: int, day: int, token: str, counts: dict[str, Any], now: float) -> bool:
    """Stores the day's counts if its placeholder is still the one `claim` wrote; False if a write came between."""

    async def op(tx: Tx) -> int:
        return await tx.execute(
            "UPDATE daily_rollups SET counts = ?, token = NULL, computed_at = ? WHERE site_id = ? AND day = ? AND token = ?",
            dumps(counts),
            now,
            site_id,
            day,
            token,
        )

    return bool(await db.write(op))


# -- the triggers ---------------------------------------------------------------------------------
# Per table, groups of (the columns whose change matters, the times whose days a row counts in, when).
# A time is a column or a scalar subquery; one written "SELECT t FROM ..." is a set of times. Leads'
# consent decides whether the reminders sent to the address count as unconsented, so a lead counts
# in the days of those reminders. Distinct counts are kept as items minus links between one key's
# consecutive items (analytics/rollup.py, stored on the later item's day), so a reminder or a
# checkout or reason event also counts in the days of the later ones of its cart, address or browser
# (the reasons per checkout step are pairs and triples of a browser's events).
SENT_TO_ADDRESS = "SELECT sent_at FROM emails WHERE site_id = {r}.site_id AND to_addr = {r}.email AND status = 'sent'"
LATER_OF_CART = (
    "SELECT n.sent_at FROM emails n WHERE n.cart_id = {r}.cart_id AND n.status = 'sent' AND n.sent_at >= {r}.sent_at"
)
LATER_TO_ADDRESS = (
    "SELECT n.sent_at FROM emails n WHERE n.site_id = {r}.site_id AND n.to_addr = {r}.to_addr"
    " AND n.status = 'sent' AND n.sent_at >= {r}.sent_at"
)
LATER_CHECKOUTS = (
    "SELECT n.created_at FROM events n WHERE n.site_id = {r}.site_id AND n.visitor_id = {r}.visitor_id"
    " AND n.type IN ('checkout', 'reason') AND n.created_at >= {r}.created_at"
)
# The row's own time of each "later" set: where it is recent, so is the whole set (PostgreSQL skips it).
LATER_OF = {LATER_OF_CART: "sent_at", LATER_TO_ADDRESS: "sent_at", LATER_CHECKOUTS: "created_at"}
TRIGGERS: dict[str, list[tuple[list[str], list[str], str | None]]] = {
    "carts": [
        (["created_at"], ["created_at"], None),
        (["abandoned_at", "email", "value"], ["abandoned_at"], "{r}.abandoned_at IS NOT NULL"),
    ],
    "events": [
        (["created_at", "type"], ["created_at"], "{r}.type = 'shown'"),
        (
            ["created_at", "type", "data", "visitor_id"],
            ["created_at", LATER_CHECKOUTS],
            "{r}.type IN ('reason', 'checkout')",
        ),
    ],
    "leads": [
        (["created_at"], ["created_at"], None),
        (["consent", "email"], [SENT_TO_ADDRESS], None),
    ],
    "emails": [
        (
            ["status", "sent_at", "opened_at", "clicked_at", "due_at", "error", "to_addr", "step", "cart_id"],
            ["sent_at", "opened_at", "clicked_at", "due_at", LATER_OF_CART, LATER_TO_ADDRESS],
            None,
        )
    ],
    "opens": [(["created_at", "is_proxy"], ["created_at"], None)],
    "orders": [(["created_at", "recovered", "value", "verified", "email_id"], ["created_at"], None)],
    "email_variants": [
        (["email_id", "experiment", "variant"], ["(SELECT sent_at FROM emails WHERE id = {r}.email_id)"], None)
    ],
    "variant_assignments": [
        (["shown_at", "lead_at", "experiment", "variant"], ["shown_at", "lead_at"], None),
    ],
}


def _is_set(stamp: str) -> bool:
    return stamp.startswith("SELECT ")


def _stamp(expr: str, r: str) -> str:
    return expr.format(r=r) if "{r}" in expr else f"{r}.{expr}"


def _sqlite_deletes(stamps: list[str], r: str) -> str:
    """One DELETE per group of days, each a look-up of the primary key (an OR would walk the site's rows)."""
    singles = [s for s in stamps if not _is_set(s)]
    out = []
    if singles:
        days = ", ".join(f"CAST({_stamp(s, r)} / {DAY} AS INTEGER)" for s in singles)
        out.append(f"DELETE FROM daily_rollups WHERE site_id = {r}.site_id AND day IN ({days});")
    for s in stamps:
        if _is_set(s):
            t, rest = s.format(r=r).removeprefix("SELECT ").split(" FROM ", 1)
            out.append(
                f"DELETE FROM daily_rollups WHERE site_id = {r}.site_id"
                f" AND day IN (SELECT CAST({t} / {DAY} AS INTEGER) FROM {rest});"
            )
    return " ".join(out)


def sqlite_triggers() -> list[str]:
    """The CREATE TRIGGER statements for SQLite (writes are serial there: no lock needed)."""
    out = []
    for table, groups in TRIGGERS.items():
        for n, (watched, stamps, when) in enumerate(groups):
            name = f"rollup_{table}_{n}"
            for op, r in (("INSERT", "NEW"), ("DELETE", "OLD")):
                cond = f" WHEN {when.format(r=r)}" if when else ""
                out.append(
                    f"CREATE TRIGGER {name}_{op.lower()} AFTER {op} ON {table}{cond} BEGIN"
                    f" {_sqlite_deletes(stamps, r)} END"
                )
            changed = " OR ".join(f"OLD.{c} IS NOT NEW.{c}" for c in watched)
            out.append(
                f"CREATE TRIGGER {name}_update AFTER UPDATE OF {', '.join(watched)} ON {table} WHEN {changed} BEGIN"
                f" {_sqlite_deletes(stamps, 'OLD')} {_sqlite_deletes(stamps, 'NEW')} END"
            )
    return out


PG_STALE = f"""
CREATE FUNCTION rollup_stale(site BIGINT, stamps DOUBLE PRECISION[]) RETURNS void LANGUAGE plpgsql AS $$
DECLARE t DOUBLE PRECISION;
BEGIN
    FOREACH t IN ARRAY stamps LOOP
        -- Only a write into a day that can be closed: today's writes (every ingest) pay nothing.
        IF t IS NOT NULL AND t < EXTRACT(EPOCH FROM now()) - {OLD_WRITE} THEN
            PERFORM pg_advisory_xact_lock_shared({LOCK_CLASS}, CAST(site AS INTEGER));
            DELETE FROM daily_rollups WHERE site_id = site AND day = CAST(FLOOR(t / {DAY}) AS BIGINT);
        END IF;
    END LOOP;
END $$"""


def _pg_array(stamps: list[str], r: str) -> str:
    singles = [s for s in stamps if not _is_set(s)]
    arrays = []
    if singles:
        arrays.append("ARRAY[" + ", ".join(f"CAST({_stamp(s, r)} AS DOUBLE PRECISION)" for s in singles) + "]")
    for s in stamps:
        if _is_set(s):
            t, rest = s.format(r=r).removeprefix("SELECT ").split(" FROM ", 1)
            own = LATER_OF.get(s)
            # A recent row's later rows are recent too: no look-up on the ingest path.
            recent = f" AND {r}.{own} < EXTRACT(EPOCH FROM now()) - {OLD_WRITE}" if own else ""
            arrays.append(f"ARRAY(SELECT CAST({t} AS DOUBLE PRECISION) FROM {rest}{recent})")
    return " || ".join(arrays)


def postgres_triggers() -> list[str]:
    """The functions and CREATE TRIGGER statements for PostgreSQL."""
    out = [PG_STALE]
    for table, groups in TRIGGERS.items():
        for n, (watched, stamps, when) in enumerate(groups):
            name = f"rollup_{table}_{n}"
            out.append(
                f"CREATE FUNCTION {name}() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN"
                f" IF TG_OP <> 'INSERT' THEN PERFORM rollup_stale(OLD.site_id, {_pg_array(stamps, 'OLD')}); END IF;"
                f" IF TG_OP <> 'DELETE' THEN PERFORM rollup_stale(NEW.site_id, {_pg_array(stamps, 'NEW')}); END IF;"
                " RETURN NULL; END $$"
            )
            for op, r in (("INSERT", "NEW"), ("DELETE", "OLD")):
                cond = f" WHEN ({when.format(r=r)})" if when else ""
                out.append(
                    f"CREATE TRIGGER {name}_{op.lower()} AFTER {op} ON {table} FOR EACH ROW{cond}"
                    f" EXECUTE FUNCTION {name}()"
                )
            changed = " OR ".join(f"OLD.{c} IS DISTINCT FROM NEW.{c}" for c in watched)
            out.append(
                f"CREATE TRIGGER {name}_update AFTER UPDATE OF {', '.join(watched)} ON {table} FOR EACH ROW"
                f" WHEN ({changed}) EXECUTE FUNCTION {name}()"
            )
    return out


async def install(tx: Tx, dialect: str) -> None:
    """Migration 012's Python step: the invalidation triggers of this engine."""
    for stmt in postgres_triggers() if dialect == "postgresql" else sqlite_triggers():
        await tx.execute(stmt)
