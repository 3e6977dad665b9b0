"""The reminder sequence: which email is due, whether it may still go, claimed, sent, retried or stopped.

The rows are written by collector/store/emails.py with the claim protocol of collector/store/claims.py.

How a claim works
-----------------
`claim_due` runs in one write transaction: it selects due rows (`pending` and due, or `claimed`
longer ago than CLAIM_STALE_SECONDS, which means the sweeper that claimed them died) with
`db.skip_locked` (PostgreSQL: FOR UPDATE SKIP LOCKED; SQLite: the write transaction already
holds the file's one write lock), and sets status='claimed', a claim_token unique to this
sweep, and claimed_at. Two sweepers therefore never hold the same row. Every later write
about the row names the claim token, so a sweeper that lost its claim changes nothing.

A sweeper uses a claimed batch for at most CLAIM_USE_SECONDS (well under the stale time,
minus the SMTP timeouts), releasing what it has not sent by then, so a live sweeper's claim
is never taken over while it is still sending.

What a crash does: at-least-once. A sweeper killed after claiming leaves rows in `claimed`;
after CLAIM_STALE_SECONDS another sweep takes them over and sends them, so nothing is missed.
If the kill falls between the SMTP server's "250 OK" to DATA and the commit of status='sent'
(a window of one database write), the email goes out a second time on the later sweep. We
chose this over at-most-once (mark sent before sending), which would silently lose every
email whose send was interrupted: a lost reminder is lost money and nobody sees it, a rare
duplicate reminder is a small nuisance, and the re-send carries the same Message-ID, which
lets receiving systems fold the two. The dev mailbox (no SMTP) is exactly-once: the mailbox
row and status='sent' are written in one transaction.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from collector.locales import effective
from collector.recovery import codes
from collector.store import Database, Reader, Row, Site, SiteStore, Tx, carts, emails
from collector.store.db import dumps

CLAIM_STALE_SECONDS = emails.REMINDERS.stale_seconds
CLAIM_USE_SECONDS = 240
CLAIM_BATCH = 50
MAX_ATTEMPTS = emails.MAX_ATTEMPTS

# Verdicts of `check`: None means "send it".
REVIVED = "cart changed again"
# How long a due email of a site whose settings need repair waits before it is looked at again.
NEEDS_ATTENTION_WAIT = 600.0
CLAIM_LOST = "claim lost"


@dataclass
class Job:
    """One claimed email with what it takes to render it."""

    email: Row
    cart: Row
    site: Site
    token: str
    items: list[dict[str, Any]] = field(default_factory=list)

    @property
    def id(self) -> int:
        return int(self.email["id"])


# -- the checks made at claim time and again right before sending ---------------------------
async def check(q: Reader, email: Row, site: Site | None) -> tuple[str | None, Row | None]:
    """(None, cart) when the email may go; else (reason, cart). q is a Tx or the Database."""
    cart = await carts.get(q, email["cart_id"])
    if cart is None:
        return "cart gone", None
    if site is None:
        return "site gone", cart
    if cart["status"] == "open":
        return REVIVED, cart
    if cart["status"] != "abandoned":
        return f"cart {cart['status']}", cart
    if cart["email"] != email["to_addr"]:
        return "address changed", cart
    rec = site.settings.recovery
    if not rec.enabled:
        return "recovery turned off", cart
    if email["step"] >= len(rec.steps):
        return "step removed from the settings", cart
    if await emails.is_unsubscribed(q, site.id, email["to_addr"]):
        return "unsubscribed", cart
    return None, cart


async def _stop(tx: Tx, email: Row, reason: str, token: str | None) -> None:
    """Cancels (or for a revived cart, removes) an email that must not go."""
    await codes.give_back(tx, email)
    if reason == REVIVED:
        # The cart changed after abandonment: this step waits for the next abandonment,
        # exactly like the pending steps that the cart update removed.
        await emails.delete(tx, email["id"], token)
    else:
        await emails.cancel(tx, email["id"], reason, token)


# -- claims ---------------------------------------------------------------------------------
async def claim_due(
    db: Database, sites: SiteStore, now: float, token: str, limit: int = CLAIM_BATCH
) -> tuple[list[Job], int]:
    """Claims up to `limit` due emails; returns the jobs and how many gave up for good."""

    async def op(tx: Tx) -> tuple[list[Job], int]:
        jobs: list[Job] = []
        gave_up = 0
        for email_id in await emails.due_ids(tx, now, limit, db.skip_locked):
            email = await emails.get(tx, email_id)
            if email is None:
                continue
            attempts = int(email["attempts"])
            if email["status"] == "claimed":
                # Its sweeper died mid-send: that counts as a try.
                attempts += 1
                if attempts >= MAX_ATTEMPTS:
                    await emails.give_up(
                        tx, email_id, attempts, f"gave up after {attempts} tries (the sender stopped while sending)"
                    )
                    gave_up += 1
                    continue
            site = await sites.by_id(email["site_id"], tx)
            if site is not None and site.problem is not None:
                # Its settings need repair: the email waits (not cancelled), and stops taking a
                # place in every batch meanwhile, so the other sites' emails go.
                await emails.postpone(tx, email_id, now + NEEDS_ATTENTION_WAIT)
                continue
            reason, cart = await check(tx, email, site)
            if reason is not None:
                await _stop(tx, email, reason, None)
                continue
            assert site is not None and cart is not None
            step = site.settings.recovery.steps[email["step"]]
            subject, variants_json = email["subject"], email["variants"]
            if subject is None:
                locale = effective(site.settings.locale, cart["locale"])
                subject, variants = codes.subject_and_variants(site, email["step"], email["to_addr"], locale)
                variants_json = dumps(variants) if variants else None
            code = email["discount_code"]
            if code is None:
                code, offer = await codes.offer(tx, db, site, step, cart, email_id, now)
                if offer:
                    variants_json = dumps({**(json.loads(variants_json) if variants_json else {}), **offer})
            if not await emails.take(tx, email_id, token, now, attempts, subject, code, variants_json):
                continue
            email = {
                **email,
                "status": "claimed",
                "claim_token": token,
                "claimed_at": now,
                "attempts": attempts,
                "subject": subject,
                "discount_code": code,
                "variants": variants_json,
            }
            jobs.append(Job(email=email, cart=cart, site=site, token=token, items=json.loads(cart["items"])))
        return jobs, gave_up

    return await db.write(op)


async def recheck(db: Database, job: Job) -> str | None:
    """Right before sending: None when the email is still ours and may go; else why not.

    A plain read: the claim makes the row ours, and what can still change (a purchase, an
    unsubscribe, a cart update) is read as committed just now.
    """
    email = await emails.get(db, job.id)
    if email is None or email["status"] != "claimed" or email["claim_token"] != job.token:
        return CLAIM_LOST
    reason, cart = await check(db, email, job.site)
    if cart is not None:
        job.cart = cart
        job.items = json.loads(cart["items"])
    return reason


async def stop(db: Database, job: Job, reason: str) -> None:
    await db.write(lambda tx: _stop(tx, job.email, reason, job.token))


async def release(db: Database, jobs: list[Job], next_attempt_at: float | None = None) -> None:
    """Gives unsent claims back without counting a try (the sweep ran out of time, or SMTP is down)."""
    await emails.release(db, [(job.id, job.token) for job in jobs], next_attempt_at)


async def mark_sent(db: Database, job: Job, sent_at: float, mailbox: dict[str, Any] | None = None) -> bool:
    """status='sent'; with `mailbox`, the dev mailbox row in the same transaction. False if the claim was lost."""
    return await emails.mark_sent(
        db, job.id, job.token, sent_at, {**mailbox, "site_id": job.site.id} if mailbox else None
    )


async def mark_retry(db: Database, job: Job, now: float, error: str) -> bool:
    """A temporary failure: back to pending after a backoff; False when it gave up for good."""
    return await emails.retry_later(db, job.id, job.token, int(job.email["attempts"]) + 1, now, error)


async def mark_failed(db: Database, job: Job, error: str) -> None:
    """A permanent failure (5xx): recorded, never retried."""

    async def op(tx: Tx) -> None:
        await codes.give_back(tx, job.email)
        await emails.mark_failed(tx, job.id, job.token, error)

    await db.write(op)


def backoff(attempts: int) -> float:
    """Seconds before try number attempts+1: 1, 2, 4, ... minutes, at most an hour."""
    return emails.REMINDERS.backoff(attempts)
