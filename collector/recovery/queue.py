"""The reminder queue in the database: abandonment, claims, outcomes, clicks, opens, unsubscribes, codes.

Portable SQL only (SQLite and PostgreSQL), `?` placeholders, writes through `db.write`.

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

from collector.store import Database, Row, Store, Tx
from collector.store.store import Site, dumps, normalize_email

CLAIM_STALE_SECONDS = 600
CLAIM_USE_SECONDS = 240
CLAIM_BATCH = 50
ABANDON_BATCH = 200
MAX_ATTEMPTS = 20
BACKOFF_BASE_SECONDS = 60
BACKOFF_CAP_SECONDS = 3600

# Verdicts of `check`: None means "send it".
REVIVED = "cart changed again"


def backoff(attempts: int) -> float:
    """Seconds before try number attempts+1: 1, 2, 4, ... minutes, at most an hour."""
    return float(min(BACKOFF_CAP_SECONDS, BACKOFF_BASE_SECONDS * 2 ** max(0, attempts - 1)))


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


class Sites:
    """Site rows by id, parsed once per sweep."""

    def __init__(self) -> None:
        self._by_id: dict[int, Site | None] = {}

    async def get(self, q: Any, site_id: int) -> Site | None:
        if site_id not in self._by_id:
            row = await q.fetchone("SELECT * FROM sites WHERE id = ?", site_id)
            self._by_id[site_id] = Site(row) if row else None
        return self._by_id[site_id]

    def add(self, site: Site) -> None:
        self._by_id[site.id] = site


# -- abandonment -------------------------------------------------------------------------
async def mark_abandoned(store: Store, site: Site, now: float) -> int:
    """Marks the site's quiet carts abandoned and queues their reminder steps; returns how many."""
    db = store.db
    rec = site.settings.recovery
    cutoff = now - rec.abandon_after_minutes * 60
    total = 0

    async def op(tx: Tx) -> tuple[int, int]:
        # Ordered as the carts_site_open_due index is (site_id, updated_at), so no sort.
        rows = await tx.fetchall(
            "SELECT id, email, items, currency, value, item_count FROM carts"
            " WHERE site_id = ? AND status = 'open' AND email IS NOT NULL AND item_count > 0 AND updated_at <= ?"
            " ORDER BY updated_at, id LIMIT ?" + db.skip_locked,
            site.id,
            cutoff,
            ABANDON_BATCH,
        )
        done = 0
        for cart in rows:
            changed = await tx.execute(
                "UPDATE carts SET status = 'abandoned', abandoned_at = ?"
                " WHERE id = ? AND status = 'open' AND updated_at <= ?",
                now,
                cart["id"],
                cutoff,
            )
            if not changed:
                continue
            done += 1
            unsubscribed = await tx.fetchone(
                "SELECT 1 AS x FROM unsubscribes WHERE site_id = ? AND email = ?", site.id, cart["email"]
            )
            if rec.enabled and not unsubscribed:
                for step, s in enumerate(rec.steps):
                    # A cart that came back to life and is abandoned again keeps the steps it
                    # was sent: the conflict leaves them, only the missing steps are queued.
                    await tx.execute(
                        "INSERT INTO emails (site_id, cart_id, step, to_addr, status, due_at, attempts,"
                        " open_count, proxy_open_count, click_count, created_at)"
                        " VALUES (?, ?, ?, ?, 'pending', ?, 0, 0, 0, 0, ?) ON CONFLICT (cart_id, step) DO NOTHING",
                        site.id,
                        cart["id"],
                        step,
                        cart["email"],
                        now + s.delay_minutes * 60,
                        now,
                    )
            await store.enqueue_webhooks(
                tx,
                site,
                "abandoned",
                str(cart["id"]),
                {
                    "cart_id": cart["id"],
                    "email": cart["email"],
                    "items": json.loads(cart["items"]),
                    "currency": cart["currency"],
                    "value": cart["value"],
                    "abandoned_at": now,
                },
                now,
            )
        return len(rows), done

    for _ in range(10_000):  # bounded: a pass never loops for ever
        fetched, done = await db.write(op)
        total += done
        if fetched < ABANDON_BATCH:
            break
    return total


# -- the checks made at claim time and again right before sending ---------------------------
async def check(q: Any, email: Row, site: Site | None) -> tuple[str | None, Row | None]:
    """(None, cart) when the email may go; else (reason, cart). q is a Tx or the Database."""
    cart = await q.fetchone("SELECT * FROM carts WHERE id = ?", email["cart_id"])
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
    unsub = await q.fetchone(
        "SELECT 1 AS x FROM unsubscribes WHERE site_id = ? AND email = ?", site.id, email["to_addr"]
    )
    if unsub:
        return "unsubscribed", cart
    return None, cart


def _subject_and_variants(site: Site, step: int, to_addr: str) -> tuple[str, dict[str, str] | None]:
    subject = site.settings.recovery.steps[step].subject
    for exp in site.settings.experiments:
        if exp.kind != "subject" or not exp.enabled or exp.step != step:
            continue
        try:
            from collector.experiments import assign_email
        except ImportError:  # the experiments module is optional to the sender
            return subject, None
        name = assign_email(exp.name, to_addr, [(v.name, v.weight) for v in exp.variants])
        variant = next(v for v in exp.variants if v.name == name)
        return (variant.subject or subject), {exp.name: name}
    return subject, None


def _discount_variant(site: Site, visitor_id: str, code: str) -> tuple[str, dict[str, str] | None]:
    """A step that offers a code offers the shopper's variant of a running discount test instead:
    assigned from the cart's visitor id, as the snippet assigns it, so the popup and the reminders
    make one shopper the same offer."""
    for exp in site.settings.experiments:
        if exp.kind != "discount" or not exp.enabled:
            continue
        from collector.experiments import assign

        name = assign(exp.name, visitor_id, [(v.name, v.weight) for v in exp.variants])
        variant = next(v for v in exp.variants if v.name == name)
        return (variant.discount_code or code), {exp.name: name}
    return code, None


async def _pool_code(tx: Tx, db: Database, site_id: int, email_id: int, now: float) -> str | None:
    """Hands out one unused code of the site's pool to this email, inside the claim's transaction."""
    for _ in range(5):
        row = await tx.fetchone(
            "SELECT id, code FROM discount_codes WHERE site_id = ? AND assigned_at IS NULL ORDER BY id LIMIT 1"
            + db.skip_locked,
            site_id,
        )
        if row is None:
            return None
        if await tx.execute(
            "UPDATE discount_codes SET email_id = ?, assigned_at = ? WHERE id = ? AND assigned_at IS NULL",
            email_id,
            now,
            row["id"],
        ):
            return str(row["code"])
    return None


async def _release_code(tx: Tx, email: Row) -> None:
    # A pool code goes back only when the email never reached an SMTP server: after a try
    # whose outcome is unknown (a timeout after DATA) the shopper may hold that code already.
    if email["attempts"] == 0:
        if await tx.execute("UPDATE discount_codes SET email_id = NULL, assigned_at = NULL WHERE email_id = ?", email["id"]):
            await tx.execute("UPDATE emails SET discount_code = NULL WHERE id = ?", email["id"])


async def _close(tx: Tx, email: Row, reason: str, claim_token: str | None) -> None:
    """Cancels (or for a revived cart, removes) an email that must not go."""
    guard = " AND claim_token = ?" if claim_token else ""
    args: tuple[Any, ...] = (claim_token,) if claim_token else ()
    await _release_code(tx, email)
    if reason == REVIVED:
        # The cart changed after abandonment: this step waits for the next abandonment,
        # exactly like the pending steps that the cart update removed.
        await tx.execute(f"DELETE FROM emails WHERE id = ?{guard}", email["id"], *args)
    else:
        await tx.execute(
            f"UPDATE emails SET status = 'cancelled', error = ?, claim_token = NULL WHERE id = ?{guard}",
            reason,
            email["id"],
            *args,
        )


# -- claims ---------------------------------------------------------------------------------
async def claim_due(store: Store, sites: Sites, now: float, token: str, limit: int = CLAIM_BATCH) -> tuple[list[Job], int]:
    """Claims up to `limit` due emails; returns the jobs and how many gave up for good."""
    db = store.db

    async def op(tx: Tx) -> tuple[list[Job], int]:
        rows = await tx.fetchall(
            "SELECT id FROM emails WHERE (status = 'pending' AND due_at <= ? AND (next_attempt_at IS NULL OR next_attempt_at <= ?))"
            " OR (status = 'claimed' AND claimed_at <= ?) ORDER BY due_at, id LIMIT ?" + db.skip_locked,
            now,
            now,
            now - CLAIM_STALE_SECONDS,
            limit,
        )
        jobs: list[Job] = []
        gave_up = 0
        for r in rows:
            email = await tx.fetchone("SELECT * FROM emails WHERE id = ?", r["id"])
            if email is None:
                continue
            attempts = int(email["attempts"])
            if email["status"] == "claimed":
                # Its sweeper died mid-send: that counts as a try.
                attempts += 1
                if attempts >= MAX_ATTEMPTS:
                    await tx.execute(
                        "UPDATE emails SET status = 'failed', error = ?, attempts = ?, claim_token = NULL WHERE id = ?",
                        f"gave up after {attempts} tries (the sender stopped while sending)",
                        email["id"],
                        attempts,
                    )
                    gave_up += 1
                    continue
            site = await sites.get(tx, email["site_id"])
            reason, cart = await check(tx, email, site)
            if reason is not None:
                await _close(tx, email, reason, None)
                continue
            assert site is not None and cart is not None
            step = site.settings.recovery.steps[email["step"]]
            subject, variants_json = email["subject"], email["variants"]
            if subject is None:
                subject, variants = _subject_and_variants(site, email["step"], email["to_addr"])
                variants_json = dumps(variants) if variants else None
            code = email["discount_code"]
            if code is None:
                if step.use_code_pool:
                    code = await _pool_code(tx, db, site.id, email["id"], now)
                if code is None and step.discount_code is not None:
                    code, offer = _discount_variant(site, cart["visitor_id"], step.discount_code)
                    if offer:
                        variants_json = dumps({**(json.loads(variants_json) if variants_json else {}), **offer})
                code = code or step.discount_code
            await tx.execute(
                "UPDATE emails SET status = 'claimed', claim_token = ?, claimed_at = ?, attempts = ?,"
                " subject = ?, discount_code = ?, variants = ? WHERE id = ?",
                token,
                now,
                attempts,
                subject,
                code,
                variants_json,
                email["id"],
            )
            email = {**email, "status": "claimed", "claim_token": token, "claimed_at": now, "attempts": attempts,
                     "subject": subject, "discount_code": code, "variants": variants_json}
            jobs.append(Job(email=email, cart=cart, site=site, token=token, items=json.loads(cart["items"])))
        return jobs, gave_up

    return await db.write(op)


async def recheck(store: Store, job: Job) -> str | None:
    """Right before sending: None when the email is still ours and may go; else why not.

    A plain read: the claim makes the row ours, and what can still change (a purchase, an
    unsubscribe, a cart update) is read as committed just now.
    """
    email = await store.db.fetchone("SELECT * FROM emails WHERE id = ?", job.id)
    if email is None or email["status"] != "claimed" or email["claim_token"] != job.token:
        return "claim lost"
    reason, cart = await check(store.db, email, job.site)
    if cart is not None:
        job.cart = cart
        job.items = json.loads(cart["items"])
    return reason


async def close(store: Store, job: Job, reason: str) -> None:
    await store.db.write(lambda tx: _close(tx, job.email, reason, job.token))


async def release(store: Store, jobs: list[Job], next_attempt_at: float | None = None) -> None:
    """Gives unsent claims back without counting a try (the sweep ran out of time, or SMTP is down)."""
    if not jobs:
        return

    async def op(tx: Tx) -> None:
        for job in jobs:
            await tx.execute(
                "UPDATE emails SET status = 'pending', claim_token = NULL, claimed_at = NULL, next_attempt_at = ?"
                " WHERE id = ? AND claim_token = ? AND status = 'claimed'",
                next_attempt_at,
                job.id,
                job.token,
            )

    await store.db.write(op)


async def mark_sent(store: Store, job: Job, sent_at: float, mailbox: dict[str, Any] | None = None) -> bool:
    """status='sent'; with `mailbox`, the dev mailbox row in the same transaction. False if the claim was lost."""

    async def op(tx: Tx) -> bool:
        changed = await tx.execute(
            "UPDATE emails SET status = 'sent', sent_at = ?, error = NULL, next_attempt_at = NULL"
            " WHERE id = ? AND claim_token = ? AND status = 'claimed'",
            sent_at,
            job.id,
            job.token,
        )
        if changed and mailbox is not None:
            await tx.execute(
                "INSERT INTO mailbox (site_id, email_id, to_addr, from_addr, subject, html, text, headers, created_at)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                job.site.id,
                job.id,
                mailbox["to_addr"],
                mailbox["from_addr"],
                mailbox["subject"],
                mailbox["html"],
                mailbox["text"],
                dumps(mailbox["headers"]),
                sent_at,
            )
        return bool(changed)

    return await store.db.write(op)


async def mark_retry(store: Store, job: Job, now: float, error: str) -> bool:
    """A temporary failure: back to pending after a backoff; False when it gave up for good."""
    attempts = int(job.email["attempts"]) + 1
    give_up = attempts >= MAX_ATTEMPTS

    async def op(tx: Tx) -> None:
        if give_up:
            await tx.execute(
                "UPDATE emails SET status = 'failed', attempts = ?, error = ?, claim_token = NULL"
                " WHERE id = ? AND claim_token = ?",
                attempts,
                f"gave up after {attempts} tries: {error}"[:1000],
                job.id,
                job.token,
            )
        else:
            await tx.execute(
                "UPDATE emails SET status = 'pending', attempts = ?, next_attempt_at = ?, error = ?,"
                " claim_token = NULL, claimed_at = NULL WHERE id = ? AND claim_token = ?",
                attempts,
                now + backoff(attempts),
                error[:1000],
                job.id,
                job.token,
            )

    await store.db.write(op)
    return not give_up


async def mark_failed(store: Store, job: Job, error: str) -> None:
    """A permanent failure (5xx): recorded, never retried."""

    async def op(tx: Tx) -> None:
        await _release_code(tx, job.email)
        await tx.execute(
            "UPDATE emails SET status = 'failed', error = ?, claim_token = NULL WHERE id = ? AND claim_token = ?",
            error[:1000],
            job.id,
            job.token,
        )

    await store.db.write(op)


# -- what the links record ----------------------------------------------------------------------
async def email_by_id(db: Database, email_id: int) -> Row | None:
    return await db.fetchone("SELECT * FROM emails WHERE id = ?", email_id)


async def record_click(db: Database, email_id: int, now: float) -> None:
    await db.write(
        lambda tx: tx.execute(
            "UPDATE emails SET click_count = click_count + 1, clicked_at = COALESCE(clicked_at, ?) WHERE id = ?",
            now,
            email_id,
        )
    )


async def record_open(db: Database, email_id: int, is_proxy: bool, user_agent: str | None, now: float) -> None:
    async def op(tx: Tx) -> None:
        await tx.execute(
            "INSERT INTO opens (email_id, is_proxy, user_agent, created_at) VALUES (?, ?, ?, ?)",
            email_id,
            1 if is_proxy else 0,
            (user_agent or "")[:500] or None,
            now,
        )
        if is_proxy:
            await tx.execute("UPDATE emails SET proxy_open_count = proxy_open_count + 1 WHERE id = ?", email_id)
        else:
            await tx.execute(
                "UPDATE emails SET open_count = open_count + 1, opened_at = COALESCE(opened_at, ?) WHERE id = ?",
                now,
                email_id,
            )

    await db.write(op)


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


async def is_unsubscribed(db: Database, site_id: int, email: str) -> bool:
    row = await db.fetchone("SELECT 1 AS x FROM unsubscribes WHERE site_id = ? AND email = ?", site_id, normalize_email(email))
    return row is not None


# -- the discount code pool ----------------------------------------------------------------------
async def import_codes(db: Database, site_id: int, codes: list[str]) -> tuple[int, int]:
    """Adds codes to the site's pool; returns (added, unused in the pool now)."""

    async def op(tx: Tx) -> tuple[int, int]:
        added = 0
        for code in codes:
            row = await tx.fetchone(
                "INSERT INTO discount_codes (site_id, code) VALUES (?, ?) ON CONFLICT (site_id, code) DO NOTHING RETURNING id",
                site_id,
                code,
            )
            added += row is not None
        free = await tx.fetchone(
            "SELECT COUNT(*) AS n FROM discount_codes WHERE site_id = ? AND assigned_at IS NULL", site_id
        )
        return added, int(free["n"]) if free else 0

    return await db.write(op)

