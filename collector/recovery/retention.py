"""Retention: the sweep deletes what `retention_days` says is old, in small batches, and keeps the
dev mailbox and the SQLite WAL bounded.

Deleted, per site: events older than `retention_days`, and carts closed (purchased, emptied,
replaced) longer ago than that, with their reminders, opens and mailbox copies. Kept whatever
their age: leads, orders and unsubscribes (the shop's books and the promises it made). Across
sites: the dev mailbox keeps its newest MAILBOX_KEEP messages; used restore tokens are forgotten
once they have expired anyway.

Each batch is one short transaction of at most BATCH rows, so a first sweep over years of data
never holds the writer for long (ingest keeps being answered between batches), and a pass does at
most MAX_BATCHES per kind, leaving the rest to the next passes. After deleting, the engine is asked
to give the space of its log back (Database.checkpoint: SQLite truncates its WAL).
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

from collector.recovery.links import RESTORE_MAX_AGE
from collector.store import Database, Site, Tx, carts, emails

log = logging.getLogger("cartback.retention")

BATCH = 500
MAX_BATCHES = 20
MAILBOX_KEEP = 1000
DAY = 86400.0


async def _batches(db: Database, op: Callable[[Tx], Awaitable[int]]) -> int:
    """Runs `op` (one batch, returning the rows it deleted) until a batch is short or MAX_BATCHES ran."""
    deleted = 0
    for _ in range(MAX_BATCHES):
        n = await db.write(op)
        deleted += n
        if n < BATCH:
            break
    return deleted


async def prune_site(db: Database, site: Site, now: float) -> int:
    """Deletes one site's old events and closed carts (bounded per pass); returns the rows deleted."""
    cutoff = now - site.settings.retention_days * DAY

    async def closed(tx: Tx) -> int:
        ids = await carts.old_closed_carts(tx, site.id, cutoff, BATCH)
        await emails.forget_carts(tx, ids)
        await carts.delete_carts(tx, ids)
        return len(ids)

    events = await _batches(db, lambda tx: carts.delete_old_events(tx, site.id, cutoff, BATCH))
    return events + await _batches(db, closed)


async def prune(db: Database, sites: list[Site], now: float) -> int:
    """One retention pass over every site, the mailbox and the restore tokens; returns rows deleted."""
    deleted = 0
    for site in sites:
        deleted += await prune_site(db, site, now)
    deleted += await _batches(db, lambda tx: emails.trim_mailbox(tx, MAILBOX_KEEP, BATCH))
    deleted += await _batches(db, lambda tx: carts.delete_old_restore_uses(tx, now - RESTORE_MAX_AGE, BATCH))
    if deleted:
        log.info("retention deleted %d rows", deleted)
        await db.checkpoint()
    return deleted
