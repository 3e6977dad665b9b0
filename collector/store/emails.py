"""Reminder emails and what happens to them: every write to `emails`, `opens`, `unsubscribes` and `mailbox`.

The decisions (which step is due, whether it may still go, what it offers) are the recovery
package's; this module only stores them, each claimed-row write guarded by its claim token.
"""

from __future__ import annotations

from typing import Any

from collector.addresses import normalize_email
from collector.store import claims
from collector.store import variants as variant_rows
from collector.store.db import Database, Reader, Row, Tx, dumps

MAX_ATTEMPTS = 20
REMINDERS = claims.Queue(
    table="emails",
    due="due_at <= ? AND (next_attempt_at IS NULL OR next_attempt_at <= ?)",
    order="due_at, id",
    error_column="error",
    max_attempts=MAX_ATTEMPTS,
    backoff_base=60.0,
    backoff_cap=3600.0,
    # Well over what a sweeper holds a claim for (recovery.sweep.CLAIM_USE_SECONDS plus the SMTP timeouts).
    stale_seconds=600.0,
)


# -- the sequence of a cart ---------------------------------------------------------------
async def queue_steps(tx: Tx, site_id: int, cart_id: int, to_addr: str, due_ats: list[float], now: float) -> None:
    """Queues one email per step. A cart that came back to life and is abandoned again keeps the
    steps it was sent: the conflict leaves them, only the missing steps are queued."""
    for step, due_at in enumerate(due_ats):
        await tx.execute(
            "INSERT INTO emails (site_id, cart_id, step, to_addr, status, due_at, attempts,"
            " open_count, proxy_open_count, click_count, created_at)"
            " VALUES (?, ?, ?, ?, 'pending', ?, 0, 0, 0, 0, ?) ON CONFLICT (cart_id, step) DO NOTHING",
            site_id,
            cart_id,
            step,
            to_addr,
            due_at,
            now,
        )


async def sequences_started(q: Reader, site_id: int, since: float) -> int:
    """How many reminder sequences (first steps queued) the site started since `since`."""
    row = await q.fetchone(
        "SELECT COUNT(*) AS n FROM emails WHERE site_id = ? AND step = 0 AND created_at >= ?", site_id, since
    )
    return int(row["n"]) if row else 0


async def cancel_pending(tx: Tx, cart_id: int) -> None:
    """The cart's unsent reminders stop (its order came, it was emptied, its shopper changed)."""
    await tx.execute("UPDATE emails SET status = 'cancelled' WHERE cart_id = ? AND status = 'pending'", cart_id)


async def drop_pending(tx: Tx, cart_id: int) -> None:
    """The cart changed after abandonment: its unsent steps wait for the next abandonment."""
    await tx.execute("DELETE FROM emails WHERE cart_id = ? AND status = 'pending'", cart_id)


async def latest_sent_code(q: Reader, cart_id: int) -> str | None:
    """The discount code of the cart's latest reminder that went out with one."""
    row = await q.fetchone(
        "SELECT discount_code FROM emails WHERE cart_id = ? AND status = 'sent' AND discount_code IS NOT NULL"
        " ORDER BY step DESC LIMIT 1",
        cart_id,
    )
    return str(row["discount_code"]) if row else None


async def credited_within(q: Reader, site_id: int, email: str, since: float) -> Row | None:
    """The reminder an order of the address is credited to: its latest click since `since`, else
    its latest open by a person since then (None: neither, the order is not recovered).

    A click is the stronger sign, so any click in the window wins over a later open. Opens by a
    privacy proxy (Apple Mail's prefetch) or a scanner are stored with is_proxy = 1 and never
    count: they happen whether or not anyone read the email."""
    clicked = await q.fetchone(
        "SELECT id FROM emails WHERE site_id = ? AND to_addr = ? AND clicked_at IS NOT NULL AND clicked_at >= ?"
        " ORDER BY clicked_at DESC LIMIT 1",
        site_id,
        email,
        since,
    )
    if clicked is not None:
        return clicked
    # By the address's reminders (emails_by_address), then their opens (opens_email_time).
    return await q.fetchone(
        "SELECT e.id AS id FROM emails e JOIN opens o ON o.email_id = e.id"
        " WHERE e.site_id = ? AND e.to_addr = ? AND o.is_proxy = 0 AND o.created_at >= ?"
        " ORDER BY o.created_at DESC, e.id DESC LIMIT 1",
        site_id,
        email,
        since,
    )


async def get(q: Reader, email_id: int) -> Row | None:
    return await q.fetchone("SELECT * FROM emails WHERE id = ?", email_id)


# -- claims (see store/claims.py) -------------------------------------------------------------
async def due_ids(tx: Tx, now: float, limit: int, skip_locked: str) -> list[int]:
    return await claims.due_ids(tx, REMINDERS, now, limit, skip_locked)


async def take(
    tx: Tx, email_id: int, token: str, now: float, attempts: int, subject: str, code: str | None, variants: str | None
) -> bool:
    taken = await claims.take(
        tx, REMINDERS, email_id, token, now, attempts=attempts, subject=subject, discount_code=code, variants=variants
    )
    if taken and variants:
        row = await tx.fetchone("SELECT site_id FROM emails WHERE id = ?", email_id)
        if row is not None:
            await variant_rows.record_email(tx, int(row["site_id"]), email_id, variants)
    return taken


async def postpone(tx: Tx, email_id: int, until: float) -> None:
    """A pending email that must wait (its site's settings need repair), without using a try."""
    await tx.execute("UPDATE emails SET next_attempt_at = ? WHERE id = ? AND status = 'pending'", until, email_id)


async def give_up(tx: Tx, email_id: int, attempts: int, error: str) -> None:
    await claims.give_up(tx, REMINDERS, email_id, attempts, error)


async def cancel(tx: Tx, email_id: int, reason: str, token: str | None) -> None:
    """An email that must not go: cancelled with the reason (guarded by the claim when one is given)."""
    guard = " AND claim_token = ?" if token else ""
    await tx.execute(
        f"UPDATE emails SET status = 'cancelled', error = ?, claim_token = NULL WHERE id = ?{guard}",
        reason,
        email_id,
        *((token,) if token else ()),
    )


async def skip(tx: Tx, email_id: int, reason: str, token: str | None) -> None:
    """An email skipped for good (a suppressed address, smart sending): status 'skipped' with the reason."""
    guard = " AND claim_token = ?" if token else ""
    await tx.execute(
        f"UPDATE emails SET status = 'skipped', error = ?, claim_token = NULL WHERE id = ?{guard}",
        reason[:1000],
        email_id,
        *((token,) if token else ()),
    )


async def last_sent_other_cart(q: Reader, site_id: int, to_addr: str, cart_id: int, since: float) -> float | None:
    """When the address was last sent a reminder of another cart of the site, since `since`."""
    row = await q.fetchone(
        "SELECT MAX(sent_at) AS t FROM emails WHERE site_id = ? AND to_addr = ? AND status = 'sent'"
        " AND sent_at >= ? AND cart_id <> ?",
        site_id,
        to_addr,
        since,
        cart_id,
    )
    return float(row["t"]) if row and row["t"] is not None else None


async def delete(tx: Tx, email_id: int, token: str | None) -> None:
    guard = " AND claim_token = ?" if token else ""
    await tx.execute(f"DELETE FROM emails WHERE id = ?{guard}", email_id, *((token,) if token else ()))


async def forget_code(tx: Tx, email_id: int) -> None:
    await tx.execute("UPDATE emails SET discount_code = NULL WHERE id = ?", email_id)


async def release(db: Database, claimed: list[tuple[int, str]], next_attempt_at: float | None) -> None:
    """Gives unsent claims back without counting a try."""
    if not claimed:
        return

    async def op(tx: Tx) -> None:
        for email_id, token in claimed:
            await claims.release(tx, REMINDERS, email_id, token, next_attempt_at)

    await db.write(op)


async def mark_sent(
    db: Database, email_id: int, token: str, sent_at: float, mailbox: dict[str, Any] | None = None
) -> bool:
    """status='sent'; with `mailbox`, the dev mailbox row in the same transaction. False if the claim was lost."""

    async def op(tx: Tx) -> bool:
        changed = await claims.settle(
            tx, REMINDERS, email_id, token, "sent", sent_at=sent_at, error=None, next_attempt_at=None
        )
        if changed and mailbox is not None:
            await tx.execute(
                "INSERT INTO mailbox (site_id, email_id, to_addr, from_addr, subject, html, text, headers, created_at)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                mailbox["site_id"],
                email_id,
                mailbox["to_addr"],
                mailbox["from_addr"],
                mailbox["subject"],
                mailbox["html"],
                mailbox["text"],
                dumps(mailbox["headers"]),
                sent_at,
            )
        return changed

    return await db.write(op)


async def retry_later(db: Database, email_id: int, token: str, attempts: int, now: float, error: str) -> bool:
    """A temporary failure: pending again after the backoff; False when it gave up for good."""
    return await db.write(lambda tx: claims.retry_later(tx, REMINDERS, email_id, token, attempts, now, error))


async def mark_failed(tx: Tx, email_id: int, token: str, error: str) -> None:
    """A permanent failure (5xx): recorded, never retried."""
    await claims.settle(tx, REMINDERS, email_id, token, "failed", error=error[:1000])


# -- what the links record ---------------------------------------------------------------------
async def record_click(db: Database, email_id: int, now: float, *, scanner: bool = False) -> None:
    """A person's click sets clicked_at (what attribution and the stats count); a link scanner's
    fetch is only counted apart, in scanner_click_count."""
    if scanner:
        sql = "UPDATE emails SET scanner_click_count = scanner_click_count + 1 WHERE id = ?"
        await db.write(lambda tx: tx.execute(sql, email_id))
        return
    await db.write(
        lambda tx: tx.execute(
            "UPDATE emails SET click_count = click_count + 1, clicked_at = COALESCE(clicked_at, ?) WHERE id = ?",
            now,
            email_id,
        )
    )


# Loads of one email's pixel this close together are one open: a mail client that reloads
# the image, or someone replaying the URL, must not make one reader many.
OPEN_WINDOW_SECONDS = 300.0


async def record_open(db: Database, email_id: int, is_proxy: bool, user_agent: str | None, now: float) -> bool:
    """Records one load of the open pixel; False when it falls in the window of the last one."""

    async def op(tx: Tx) -> bool:
        recent = await tx.fetchone(
            "SELECT 1 AS x FROM opens WHERE email_id = ? AND is_proxy = ? AND created_at > ? LIMIT 1",
            email_id,
            1 if is_proxy else 0,
            now - OPEN_WINDOW_SECONDS,
        )
        if recent is not None:
            return False
        await tx.execute(
            # The open carries its email's site, so a site's opens are counted from its own rows.
            "INSERT INTO opens (site_id, email_id, is_proxy, user_agent, created_at)"
            " SELECT e.site_id, e.id, ?, ?, ? FROM emails e WHERE e.id = ?",
            1 if is_proxy else 0,
            (user_agent or "")[:500] or None,
            now,
            email_id,
        )
        if is_proxy:
            await tx.execute("UPDATE emails SET proxy_open_count = proxy_open_count + 1 WHERE id = ?", email_id)
        else:
            await tx.execute(
                "UPDATE emails SET open_count = open_count + 1, opened_at = COALESCE(opened_at, ?) WHERE id = ?",
                now,
                email_id,
            )
        return True

    return await db.write(op)


# -- unsubscribes -----------------------------------------------------------------------------------
async def is_unsubscribed(q: Reader, site_id: int, email: str) -> bool:
    row = await q.fetchone(
        "SELECT 1 AS x FROM unsubscribes WHERE site_id = ? AND email = ?", site_id, normalize_email(email)
    )
    return row is not None


async def unsubscribe(db: Database, site_id: int, email: str, now: float) -> int:
    """Records the unsubscribe and cancels the address's pending reminders on the site; returns how many."""
    addr = normalize_email(email)

    async def op(tx: Tx) -> int:
        await tx.execute(
            "INSERT INTO unsubscribes (site_id, email, created_at) VALUES (?, ?, ?) ON CONFLICT (site_id, email) DO NOTHING",
            site_id,
            addr,
            now,
        )
        # Claimed ones are stopped by the sender's check right before it sends.
        return await tx.execute(
            "UPDATE emails SET status = 'cancelled', error = 'unsubscribed'"
            " WHERE site_id = ? AND to_addr = ? AND status = 'pending'",
            site_id,
            addr,
        )

    return await db.write(op)


async def add_to_mailbox(db: Database, site_id: int | None, mailbox: dict[str, Any], now: float) -> None:
    """A message that belongs to no reminder into the dev mailbox: the settings page's "send me a
    test" (its site's) and the weekly report (no site: it goes to a dashboard user)."""

    async def op(tx: Tx) -> None:
        await tx.execute(
            "INSERT INTO mailbox (site_id, email_id, to_addr, from_addr, subject, html, text, headers, created_at)"
            " VALUES (?, NULL, ?, ?, ?, ?, ?, ?, ?)",
            site_id,
            mailbox["to_addr"],
            mailbox["from_addr"],
            mailbox["subject"],
            mailbox["html"],
            mailbox["text"],
            dumps(mailbox["headers"]),
            now,
        )

    await db.write(op)


# -- retention (decided by collector/retention.py) ------------------------------------------------------
async def forget_carts(tx: Tx, cart_ids: list[int]) -> int:
    """Deletes the reminders of carts that retention deletes, with their opens and mailbox copies."""
    if not cart_ids:
        return 0
    marks = ", ".join("?" * len(cart_ids))
    ids = [int(r["id"]) for r in await tx.fetchall(f"SELECT id FROM emails WHERE cart_id IN ({marks})", *cart_ids)]
    if not ids:
        return 0
    email_marks = ", ".join("?" * len(ids))
    await tx.execute(f"DELETE FROM opens WHERE email_id IN ({email_marks})", *ids)
    await tx.execute(f"DELETE FROM mailbox WHERE email_id IN ({email_marks})", *ids)
    return await tx.execute(f"DELETE FROM emails WHERE id IN ({email_marks})", *ids)


async def trim_mailbox(tx: Tx, keep: int, limit: int) -> int:
    """Deletes up to `limit` dev-mailbox messages older than the newest `keep`; returns how many."""
    edge = await tx.fetchone("SELECT id FROM mailbox ORDER BY id DESC LIMIT 1 OFFSET ?", keep - 1)
    if edge is None:
        return 0
    return await tx.execute(
        "DELETE FROM mailbox WHERE id IN (SELECT id FROM mailbox WHERE id < ? ORDER BY id LIMIT ?)", edge["id"], limit
    )
