"""Dashboard logins and API tokens: the `users` and `tokens` tables."""

from __future__ import annotations

import time

from collector.addresses import normalize_email
from collector.security import hash_password, hash_token, new_api_token
from collector.store.db import Database, Row, Tx


class UserStore:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def create(self, email: str, password: str) -> bool:
        """False when the email already has a login."""
        pw = hash_password(password)
        row = await self.db.write(
            lambda tx: tx.fetchone(
                "INSERT INTO users (email, password_hash, created_at) VALUES (?, ?, ?)"
                " ON CONFLICT (email) DO NOTHING RETURNING id",
                normalize_email(email),
                pw,
                time.time(),
            )
        )
        return row is not None

    async def set_password(self, email: str, password: str) -> bool:
        """A new password for a login (its sessions end: they carry the old hash's fingerprint)."""
        return await self.set_password_hash(email, hash_password(password))

    async def set_password_hash(self, email: str, password_hash: str) -> bool:
        changed = await self.db.write(
            lambda tx: tx.execute(
                "UPDATE users SET password_hash = ? WHERE email = ?", password_hash, normalize_email(email)
            )
        )
        return changed > 0

    async def delete(self, email: str) -> bool:
        """Removes a login; its sessions end with it (each request re-reads the user)."""
        address = normalize_email(email)

        async def op(tx: Tx) -> int:
            # The weeks already reported to this login (weekly_reports, issue 17) go with it: they
            # reference the user, and a login must always be removable.
            await tx.execute(
                "DELETE FROM weekly_reports WHERE user_id IN (SELECT id FROM users WHERE email = ?)", address
            )
            return await tx.execute("DELETE FROM users WHERE email = ?", address)

        return await self.db.write(op) > 0

    async def list_users(self) -> list[Row]:
        return await self.db.fetchall("SELECT id, email, created_at FROM users ORDER BY id")

    async def list_tokens(self) -> list[Row]:
        return await self.db.fetchall("SELECT id, name, created_at FROM tokens ORDER BY id")

    async def revoke_token(self, token_id: int) -> bool:
        """Deletes the token: every request with it gets 401 from now on."""
        changed = await self.db.write(lambda tx: tx.execute("DELETE FROM tokens WHERE id = ?", token_id))
        return changed > 0

    async def get(self, email: str) -> Row | None:
        return await self.db.fetchone("SELECT * FROM users WHERE email = ?", normalize_email(email))

    async def count(self) -> int:
        row = await self.db.fetchone("SELECT COUNT(*) AS n FROM users")
        return int(row["n"]) if row else 0

    async def create_token(self, name: str) -> str:
        """A new API token, returned once: only its hash is kept."""
        token = new_api_token()
        await self.db.write(
            lambda tx: tx.execute(
                "INSERT INTO tokens (name, token_hash, created_at) VALUES (?, ?, ?)",
                name,
                hash_token(token),
                time.time(),
            )
        )
        return token

    async def check_token(self, token: str) -> bool:
        row = await self.db.fetchone("SELECT id FROM tokens WHERE token_hash = ?", hash_token(token))
        return row is not None
