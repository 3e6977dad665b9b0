"""The collector-wide suppression list and the mail providers' reports: every write to `suppressions` and `mail_events`.

An address on the list gets no email from any site (hard bounces, complaints, addresses added by
hand). Addresses are kept as collector.addresses.normalize_email makes them, so they compare
case-insensitively.
"""

from __future__ import annotations

from collections.abc import Iterable

from collector.addresses import normalize_email
from collector.store.db import Database, Reader, Row, Tx, like_contains

# Why an address is on the list.
MANUAL = "manual"
BOUNCE = "bounce"
COMPLAINT = "complaint"


async def is_suppressed(q: Reader, email: str) -> bool:
    row = await q.fetchone("SELECT 1 AS x FROM suppressions WHERE email = ?", normalize_email(email))
    return row is not None


async def add_tx(tx: Tx, email: str, reason: str, detail: str | None, now: float) -> bool:
    """Adds one address in a running transaction; False when it was on the list already."""
    row = await tx.fetchone(
        "INSERT INTO suppressions (email, reason, detail, created_at) VALUES (?, ?, ?, ?)"
        " ON CONFLICT (email) DO NOTHING RETURNING email",
        normalize_email(email),
        reason,
        (detail or "")[:500] or None,
        now,
    )
    return row is not None


async def add(db: Database, emails: Iterable[str], reason: str, detail: str | None, now: float) -> int:
    """Adds the addresses in one transaction (all or none); returns how many were new."""
    addrs = list(dict.fromkeys(normalize_email(e) for e in emails))

    async def op(tx: Tx) -> int:
        added = 0
        for addr in addrs:
            added += await add_tx(tx, addr, reason, detail, now)
        return added

    return await db.write(op)


async def remove(db: Database, emails: Iterable[str]) -> int:
    """Takes the addresses off the list in one transaction; returns how many were on it."""
    addrs = list(dict.fromkeys(normalize_email(e) for e in emails))

    async def op(tx: Tx) -> int:
        removed = 0
        for addr in addrs:
            removed += await tx.execute("DELETE FROM suppressions WHERE email = ?", addr)
        return removed

    return await db.write(op)


async def list_all(q: Reader, limit: int | None = None, offset: int = 0, search: str | None = None) -> list[Row]:
    where, args = "", []
    if search:
        where = " WHERE email LIKE ? ESCAPE '\\'"
        args.append(like_contains(search.strip().lower()))
    page = f" LIMIT {int(limit)} OFFSET {int(offset)}" if limit is not None else ""
    return await q.fetchall(
        f"SELECT email, reason, detail, created_at FROM suppressions{where} ORDER BY email{page}", *args
    )


async def count(q: Reader) -> int:
    row = await q.fetchone("SELECT COUNT(*) AS n FROM suppressions")
    return int(row["n"]) if row else 0


# -- what the providers report -------------------------------------------------------------------
async def record_event(
    db: Database,
    provider: str,
    kind: str,
    email: str,
    *,
    site_id: int | None,
    email_id: int | None,
    detail: str | None,
    suppress: bool,
    now: float,
) -> bool:
    """Records a bounce or complaint and, when `suppress`, puts the address on the list, in one
    transaction. Returns whether the address was newly suppressed."""

    async def op(tx: Tx) -> bool:
        await tx.execute(
            "INSERT INTO mail_events (provider, kind, email, site_id, email_id, detail, created_at)"
            " VALUES (?, ?, ?, ?, ?, ?, ?)",
            provider,
            kind,
            normalize_email(email),
            site_id,
            email_id,
            (detail or "")[:500] or None,
            now,
        )
        if not suppress:
            return False
        return await add_tx(
            tx, email, COMPLAINT if kind == "complaint" else BOUNCE, f"{provider}: {detail or kind}", now
        )

    return await db.write(op)


async def event_counts(q: Reader, site_id: int, since: float | None, until: float | None) -> dict[str, int]:
    """Bounces and complaints reported for the site's reminders in the range: {kind: count}."""
    sql = "SELECT kind, COUNT(*) AS n FROM mail_events WHERE site_id = ?"
    args: list[object] = [site_id]
    if since is not None:
        sql += " AND created_at >= ?"
        args.append(since)
    if until is not None:
        sql += " AND created_at < ?"
        args.append(until)
    rows = await q.fetchall(sql + " GROUP BY kind", *args)
    return {str(r["kind"]): int(r["n"]) for r in rows}


async def rates_since(q: Reader, since: float) -> list[Row]:
    """Per site, since `since`: reminders sent, bounces and complaints reported (the sent count is the denominator)."""
    return await q.fetchall(
        "SELECT s.id AS site_id, s.name AS name,"
        " (SELECT COUNT(*) FROM emails e WHERE e.site_id = s.id AND e.status = 'sent' AND e.sent_at >= ?) AS sent,"
        " (SELECT COUNT(*) FROM mail_events m WHERE m.site_id = s.id AND m.kind = 'bounce' AND m.created_at >= ?)"
        " AS bounces,"
        " (SELECT COUNT(*) FROM mail_events m WHERE m.site_id = s.id AND m.kind = 'complaint' AND m.created_at >= ?)"
        " AS complaints"
        " FROM sites s ORDER BY s.name",
        since,
        since,
        since,
    )
