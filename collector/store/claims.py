"""Claim-and-backoff, the one protocol by which both queues (reminder emails, webhooks) are sent.

A sweep selects due rows in one write transaction (`FOR UPDATE SKIP LOCKED` on PostgreSQL;
SQLite's one writer makes the claim exclusive anyway) and marks them `claimed` with a token of
its own. Every later write about a row names that token, so a sweeper that lost its claim (it
took too long, and another one took the row over as stale) changes nothing. A claim older than
the queue's stale time belongs to a sweeper that died: it is taken again, counted as a try, and
failed for good once the tries run out.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from collector.store.db import Tx


@dataclass(frozen=True)
class Queue:
    """A table whose rows are claimed, sent, and retried with an exponential backoff."""

    table: str
    # The SQL condition of a pending row that is due; each `?` in it takes the current time.
    due: str
    order: str
    error_column: str
    max_attempts: int
    backoff_base: float
    backoff_cap: float
    stale_seconds: float

    def backoff(self, attempts: int) -> float:
        """Seconds before try number attempts+1: base, 2 × base, 4 × base, … at most the cap."""
        return float(min(self.backoff_cap, self.backoff_base * 2 ** max(0, attempts - 1)))

    def gives_up(self, attempts: int) -> bool:
        return attempts >= self.max_attempts


async def due_ids(tx: Tx, queue: Queue, now: float, limit: int, skip_locked: str) -> list[int]:
    """Ids of due rows: pending and due, or claimed by a sweeper that has not been heard of since."""
    rows = await tx.fetchall(
        f"SELECT id FROM {queue.table} WHERE (status = 'pending' AND {queue.due})"
        f" OR (status = 'claimed' AND claimed_at <= ?) ORDER BY {queue.order} LIMIT ?{skip_locked}",
        *([now] * queue.due.count("?")),
        now - queue.stale_seconds,
        limit,
    )
    return [int(r["id"]) for r in rows]


def _sets(columns: dict[str, Any]) -> tuple[str, list[Any]]:
    return "".join(f", {name} = ?" for name in columns), list(columns.values())


async def take(tx: Tx, queue: Queue, row_id: int, token: str, now: float, **columns: Any) -> bool:
    """Claims the row for `token` (setting `columns` too); False if it is no longer due."""
    sets, args = _sets(columns)
    changed = await tx.execute(
        f"UPDATE {queue.table} SET status = 'claimed', claim_token = ?, claimed_at = ?{sets}"
        f" WHERE id = ? AND (status = 'pending' OR (status = 'claimed' AND claimed_at <= ?))",
        token,
        now,
        *args,
        row_id,
        now - queue.stale_seconds,
    )
    return changed > 0


async def settle(tx: Tx, queue: Queue, row_id: int, token: str, status: str, **columns: Any) -> bool:
    """Ends the claim with `status` (sent, delivered, failed, cancelled…); False if the claim was lost."""
    sets, args = _sets(columns)
    changed = await tx.execute(
        f"UPDATE {queue.table} SET status = ?, claim_token = NULL{sets}"
        " WHERE id = ? AND claim_token = ? AND status = 'claimed'",
        status,
        *args,
        row_id,
        token,
    )
    return changed > 0


async def give_up(tx: Tx, queue: Queue, row_id: int, attempts: int, error: str) -> None:
    """A row whose tries ran out while it was claimed (its sweepers kept dying): failed for good."""
    await tx.execute(
        f"UPDATE {queue.table} SET status = 'failed', {queue.error_column} = ?, attempts = ?, claim_token = NULL"
        " WHERE id = ?",
        error[:1000],
        attempts,
        row_id,
    )


async def release(tx: Tx, queue: Queue, row_id: int, token: str, next_attempt_at: float | None) -> bool:
    """Gives the row back unsent, without counting a try (time ran out, or the server is down)."""
    return await settle(tx, queue, row_id, token, "pending", claimed_at=None, next_attempt_at=next_attempt_at)


async def retry_later(tx: Tx, queue: Queue, row_id: int, token: str, attempts: int, now: float, error: str) -> bool:
    """After a failed try (`attempts` tries so far): pending again after the backoff, or failed
    for good once the tries run out. True when it will be tried again."""
    if queue.gives_up(attempts):
        await settle(
            tx,
            queue,
            row_id,
            token,
            "failed",
            attempts=attempts,
            **{queue.error_column: f"gave up after {attempts} tries: {error}"[:1000]},
        )
        return False
    await settle(
        tx,
        queue,
        row_id,
        token,
        "pending",
        attempts=attempts,
        claimed_at=None,
        next_attempt_at=now + queue.backoff(attempts),
        **{queue.error_column: error[:1000]},
    )
    return True
