"""Which experiment variant each visitor was shown and each reminder carried: `variant_assignments` and `email_variants`.

The experiment counts (collector/experiments/results.py) group these rows in SQL, so that
counting a test never reads every `shown` event's JSON. Ingest writes them in the same
transaction as the event (store/carts.py), the reminder's claim writes its variants
(store/emails.py), and migration 007 fills them once from what was stored before.
"""

from __future__ import annotations

import json
from typing import Any

from collector.store.db import Tx


def _as_variants(raw: Any) -> dict[str, str]:
    """The {experiment: variant} of a stored JSON value (or a dict), strings only."""
    if isinstance(raw, str):
        try:
            raw = json.loads(raw)
        except ValueError:
            return {}
    if not isinstance(raw, dict):
        return {}
    return {k: v for k, v in raw.items() if isinstance(k, str) and isinstance(v, str)}


async def record_shown(tx: Tx, site_id: int, visitor_id: str | None, variants: Any, now: float) -> None:
    """The visitor was shown these variants; the first showing of each is the exposure."""
    if not visitor_id:
        return
    for exp, var in _as_variants(variants).items():
        await tx.execute(
            "INSERT INTO variant_assignments (site_id, experiment, variant, visitor_id, shown_at) VALUES (?, ?, ?, ?, ?)"
            " ON CONFLICT (site_id, experiment, visitor_id, variant) DO NOTHING",
            site_id,
            exp,
            var,
            visitor_id,
            now,
        )


async def record_lead(tx: Tx, site_id: int, visitor_id: str | None, email: str, variants: Any, now: float) -> None:
    """The visitor gave a lead under these variants: a conversion of each showing they had
    (a lead with no showing, say from a script calling the API, converts nothing)."""
    if not visitor_id:
        return
    for exp, var in _as_variants(variants).items():
        await tx.execute(
            "UPDATE variant_assignments SET lead_at = ?, email = ?"
            " WHERE site_id = ? AND experiment = ? AND visitor_id = ? AND variant = ? AND lead_at IS NULL",
            now,
            email,
            site_id,
            exp,
            visitor_id,
            var,
        )


async def record_email(tx: Tx, site_id: int, email_id: int, variants: Any) -> None:
    """The variants a reminder goes out with (replacing what an earlier claim of it wrote)."""
    await tx.execute("DELETE FROM email_variants WHERE email_id = ?", email_id)
    for exp, var in _as_variants(variants).items():
        await tx.execute(
            "INSERT INTO email_variants (email_id, site_id, experiment, variant) VALUES (?, ?, ?, ?)",
            email_id,
            site_id,
            exp,
            var,
        )


async def forget(tx: Tx, site_id: int, email: str, visitor_ids: list[str], email_ids: list[int]) -> int:
    """Removes a forgotten shopper's rows; returns how many went."""
    n = await tx.execute("DELETE FROM variant_assignments WHERE site_id = ? AND email = ?", site_id, email)
    for vid in visitor_ids:
        n += await tx.execute("DELETE FROM variant_assignments WHERE site_id = ? AND visitor_id = ?", site_id, vid)
    for eid in email_ids:
        n += await tx.execute("DELETE FROM email_variants WHERE email_id = ?", eid)
    return n


async def drop_older(tx: Tx, site_id: int, cutoff: float) -> int:
    """For retention: the exposures first shown before `cutoff` go with the events they came from
    (the counts of a range then match what the events table still holds). Returns how many went."""
    return await tx.execute("DELETE FROM variant_assignments WHERE site_id = ? AND shown_at < ?", site_id, cutoff)


async def backfill(tx: Tx) -> None:
    """Migration 007's Python step: the assignments of everything stored before it, read in id order."""
    last = 0
    while True:
        rows = await tx.fetchall(
            "SELECT id, site_id, visitor_id, data, created_at FROM events"
            " WHERE id > ? AND type = 'shown' AND data LIKE ? ORDER BY id LIMIT 5000",
            last,
            '%"variants"%',
        )
        if not rows:
            break
        last = rows[-1]["id"]
        for r in rows:
            try:
                data = json.loads(r["data"] or "{}")
            except ValueError:
                data = {}
            shown = data.get("variants") if isinstance(data, dict) else None
            await record_shown(tx, r["site_id"], r["visitor_id"], shown, r["created_at"])
    last = 0
    while True:
        rows = await tx.fetchall(
            "SELECT id, site_id, visitor_id, email, variants, created_at FROM leads"
            " WHERE id > ? AND variants IS NOT NULL ORDER BY id LIMIT 5000",
            last,
        )
        if not rows:
            break
        last = rows[-1]["id"]
        for r in rows:
            await record_lead(tx, r["site_id"], r["visitor_id"], r["email"], r["variants"], r["created_at"])
    last = 0
    while True:
        rows = await tx.fetchall(
            "SELECT id, site_id, variants FROM emails WHERE id > ? AND variants IS NOT NULL ORDER BY id LIMIT 5000",
            last,
        )
        if not rows:
            break
        last = rows[-1]["id"]
        for r in rows:
            await record_email(tx, r["site_id"], r["id"], r["variants"])
