"""The discount code pool of a site: the `discount_codes` table."""

from __future__ import annotations

from collector.store.db import Database, Tx


async def take(tx: Tx, site_id: int, email_id: int, now: float, skip_locked: str) -> str | None:
    """Hands one unused code of the pool to this email, inside the claim's transaction."""
    for _ in range(5):  # another sweeper may take the same code first: try the next one
        row = await tx.fetchone(
            "SELECT id, code FROM discount_codes WHERE site_id = ? AND assigned_at IS NULL ORDER BY id LIMIT 1"
            + skip_locked,
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


async def give_back(tx: Tx, email_id: int) -> bool:
    """The email's code goes back to the pool; True if it had one."""
    changed = await tx.execute(
        "UPDATE discount_codes SET email_id = NULL, assigned_at = NULL WHERE email_id = ?", email_id
    )
    return changed > 0


async def add(db: Database, site_id: int, codes: list[str]) -> tuple[int, int]:
    """Adds codes to the site's pool; returns (added, unused in the pool now)."""

    async def op(tx: Tx) -> tuple[int, int]:
        added = 0
        for code in codes:
            row = await tx.fetchone(
                "INSERT INTO discount_codes (site_id, code) VALUES (?, ?) ON CONFLICT (site_id, code) DO NOTHING"
                " RETURNING id",
                site_id,
                code,
            )
            added += row is not None
        free = await tx.fetchone(
            "SELECT COUNT(*) AS n FROM discount_codes WHERE site_id = ? AND assigned_at IS NULL", site_id
        )
        return added, int(free["n"]) if free else 0

    return await db.write(op)
