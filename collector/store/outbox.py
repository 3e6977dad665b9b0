"""The webhook outbox: one row per (site, url, event, ref), queued inside the write that made the event."""

from __future__ import annotations

from typing import Any

from collector.store import claims
from collector.store.db import Database, Row, Tx, dumps
from collector.store.sites import Site

MAX_ATTEMPTS = 10
WEBHOOKS = claims.Queue(
    table="webhook_outbox",
    due="next_attempt_at <= ?",
    order="next_attempt_at, id",
    error_column="last_error",
    max_attempts=MAX_ATTEMPTS,
    backoff_base=60.0,
    backoff_cap=6 * 3600.0,
    stale_seconds=300.0,
)


async def enqueue(tx: Tx, site: Site, event: str, ref: str, data: dict[str, Any], now: float) -> None:
    """Queues the event for every webhook that wants it, once per (url, event, ref)."""
    for hook in site.settings.webhooks:
        if event not in hook.events:
            continue
        body = dumps({"event": event, "site": site.key, "created_at": now, "data": data})
        await tx.execute(
            "INSERT INTO webhook_outbox (site_id, url, event, ref, body, status, attempts, next_attempt_at, created_at)"
            " VALUES (?, ?, ?, ?, ?, 'pending', 0, ?, ?) ON CONFLICT (site_id, url, event, ref) DO NOTHING",
            site.id,
            hook.url,
            event,
            ref,
            body,
            now,
            now,
        )


async def claim_due(db: Database, now: float, token: str, limit: int) -> list[Row]:
    """Claims up to `limit` due deliveries for `token`; each claim counts as a try."""

    async def op(tx: Tx) -> list[Row]:
        claimed = []
        for row_id in await claims.due_ids(tx, WEBHOOKS, now, limit, db.skip_locked):
            row = await tx.fetchone("SELECT * FROM webhook_outbox WHERE id = ?", row_id)
            if row is None:
                continue
            if row["status"] == "claimed" and WEBHOOKS.gives_up(int(row["attempts"])):
                # Its sweepers kept dying mid-delivery: the tries are used up.
                await claims.give_up(
                    tx,
                    WEBHOOKS,
                    row_id,
                    int(row["attempts"]),
                    f"gave up after {row['attempts']} tries (the sender stopped while sending)",
                )
                continue
            attempts = int(row["attempts"]) + 1
            if await claims.take(tx, WEBHOOKS, row_id, token, now, attempts=attempts):
                claimed.append(
                    {**row, "status": "claimed", "claim_token": token, "claimed_at": now, "attempts": attempts}
                )
        return claimed

    return await db.write(op)


async def finish(db: Database, row: Row, ok: bool, error: str | None, now: float) -> None:
    """Records a delivery's outcome; only the claim that made the try may."""
    token = row["claim_token"]

    async def op(tx: Tx) -> None:
        if ok:
            await claims.settle(tx, WEBHOOKS, row["id"], token, "delivered", delivered_at=now, last_error=None)
        else:
            await claims.retry_later(tx, WEBHOOKS, row["id"], token, int(row["attempts"]), now, error or "failed")

    await db.write(op)


async def discard(db: Database, row: Row, reason: str) -> None:
    """Fails a delivery for good without trying it (its webhook was removed from the settings)."""
    await db.write(lambda tx: claims.settle(tx, WEBHOOKS, row["id"], row["claim_token"], "failed", last_error=reason))


async def latest(db: Database, site_id: int, limit: int = 50) -> list[Row]:
    """The latest deliveries of a site, for the dashboard."""
    return await db.fetchall(
        "SELECT id, url, event, ref, status, attempts, next_attempt_at, delivered_at, last_error, created_at"
        " FROM webhook_outbox WHERE site_id = ? ORDER BY id DESC LIMIT ?",
        site_id,
        limit,
    )
