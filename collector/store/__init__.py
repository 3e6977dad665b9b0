"""Persistence: the two engines behind one Database interface, and the store modules that own the tables.

Which module writes which table (nothing else does):
  sites.py   sites                          users.py   users, tokens, weekly_reports
  carts.py   events, visitors, carts, leads, orders
  emails.py  emails, opens, unsubscribes, mailbox
  codes.py   discount_codes                 outbox.py  webhook_outbox
  suppressions.py  suppressions, mail_events  dkim_keys.py  dkim_keys
  migrations.py  schema_migrations          (login_attempts: collector/dashboard/auth.py)
"""

from __future__ import annotations

from collector.store.carts import CartStore
from collector.store.db import Database, Reader, Row, Tx
from collector.store.postgres import PostgresDatabase
from collector.store.sites import Site, SiteStore
from collector.store.sqlite import SqliteDatabase
from collector.store.users import UserStore


def open_database(url: str) -> Database:
    """The engine a CARTBACK_DATABASE_URL names (the configuration has checked its scheme)."""
    if url.startswith("sqlite:"):
        return SqliteDatabase.from_url(url)
    if url.startswith(("postgresql:", "postgres:")):
        return PostgresDatabase(url)
    raise ValueError(f"unsupported database URL: {url}")


class Store:
    """The database and the store modules that need state of their own (the site cache)."""

    def __init__(self, db: Database) -> None:
        self.db = db
        self.sites = SiteStore(db)
        self.users = UserStore(db)
        self.carts = CartStore(db)

    async def connect(self) -> None:
        await self.db.connect()

    async def close(self) -> None:
        await self.db.close()


__all__ = ["CartStore", "Database", "Reader", "Row", "Site", "SiteStore", "Store", "Tx", "UserStore", "open_database"]
