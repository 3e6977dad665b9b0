"""Persistence: the Database interface (SQLite or PostgreSQL) and the Store of domain operations."""

from __future__ import annotations

from collector.store.db import Database, Row, Tx, open_database
from collector.store.store import Store

__all__ = ["Database", "Row", "Store", "Tx", "open_database"]
