"""DKIM keys of the sending domains: every write to `dkim_keys`.

The private key arrives here already encrypted (collector/recovery/dkim.py encrypts it with a key
derived from CARTBACK_SECRET_KEY): a copy of the database alone signs nothing.
"""

from __future__ import annotations

from collector.store.db import Database, Reader, Row


async def put(db: Database, domain: str, selector: str, private_key: str, public_key: str, now: float) -> None:
    """Keeps the domain's key; a second key for the same domain replaces the first (rotation)."""
    await db.write(
        lambda tx: tx.execute(
            "INSERT INTO dkim_keys (domain, selector, private_key, public_key, created_at) VALUES (?, ?, ?, ?, ?)"
            " ON CONFLICT (domain) DO UPDATE SET selector = excluded.selector, private_key = excluded.private_key,"
            " public_key = excluded.public_key, created_at = excluded.created_at",
            domain.lower(),
            selector,
            private_key,
            public_key,
            now,
        )
    )


async def get(q: Reader, domain: str) -> Row | None:
    return await q.fetchone("SELECT * FROM dkim_keys WHERE domain = ?", domain.lower())


async def list_all(q: Reader) -> list[Row]:
    return await q.fetchall("SELECT domain, selector, public_key, created_at FROM dkim_keys ORDER BY domain")
