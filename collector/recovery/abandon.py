"""Carts become abandoned: quiet long enough with an address to write to; their reminder steps are queued."""

from __future__ import annotations

import json

from collector.experiments.holdout import HELD_OUT, holdout_group
from collector.store import Database, Site, Tx, carts, emails, outbox

ABANDON_BATCH = 200
HOUR = 3600.0


async def mark_abandoned(db: Database, site: Site, now: float) -> int:
    """Marks the site's quiet carts abandoned and queues their reminder steps; returns how many."""
    rec = site.settings.recovery
    cutoff = now - rec.abandon_after_minutes * 60

    require_consent = site.settings.popup.require_consent

    async def op(tx: Tx) -> tuple[int, int]:
        rows = await carts.quiet_carts(tx, site.id, cutoff, ABANDON_BATCH, db.skip_locked)
        done = 0
        # The shop's name cannot be borrowed for a flood: at most this many new sequences an hour.
        budget = rec.max_new_sequences_per_hour - await emails.sequences_started(tx, site.id, now - HOUR)
        for cart in rows:
            group = holdout_group(cart["email"], rec.holdout_percent) if rec.enabled else None
            if not await carts.abandon(tx, cart["id"], now, cutoff, group):
                continue
            done += 1
            # A held-out cart is abandoned like any other (and its webhook goes), but gets no reminders.
            if (
                rec.enabled
                and group != HELD_OUT
                and budget > 0
                and not await emails.is_unsubscribed(tx, site.id, cart["email"])
                # With require_consent, only an address that gave consent gets reminders (whether it
                # came from the popup or from `identify`).
                and (not require_consent or await carts.has_consent(tx, site.id, cart["email"]))
            ):
                budget -= 1
                due_ats = [now + s.delay_minutes * 60 for s in rec.steps]
                await emails.queue_steps(tx, site.id, cart["id"], cart["email"], due_ats, now)
            await outbox.enqueue(
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

    total = 0
    for _ in range(10_000):  # bounded: a pass never loops for ever
        fetched, done = await db.write(op)
        total += done
        if fetched < ABANDON_BATCH:
            break
    return total
