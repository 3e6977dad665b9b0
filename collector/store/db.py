"""The Database interface: the one place that knows which SQL engine is underneath."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, Protocol, TypeVar

T = TypeVar("T")
Row = dict[str, Any]


class Tx(Protocol):
    """A connection inside a write transaction. SQL uses `?` placeholders."""

    async def fetchone(self, sql: str, *args: Any) -> Row | None: ...

    async def fetchall(self, sql: str, *args: Any) -> list[Row]: ...

    async def execute(self, sql: str, *args: Any) -> int:
        """Runs one statement; returns the number of rows it changed."""
        ...

    async def lock(self, key: str) -> None:
        """Holds the lock named `key` to the end of the transaction: writes that take the
        same key run one after the other. A no-op where writes are serial anyway (SQLite);
        on PostgreSQL it keeps two writes about one shopper from each missing the other's
        uncommitted rows. Take several keys in a fixed order (visitor, then email)."""
        ...


class Database(Protocol):
    dialect: str
    # Appended to a SELECT that claims rows; "" where the engine locks the whole database.
    skip_locked: str

    async def connect(self) -> None: ...

    async def close(self) -> None: ...

    async def fetchone(self, sql: str, *args: Any) -> Row | None: ...

    async def fetchall(self, sql: str, *args: Any) -> list[Row]: ...

    def iterate(self, sql: str, *args: Any, batch: int = 1000) -> AsyncIterator[Row]:
        """Streams a large result without holding it all in memory."""
        ...

    async def write(self, op: Callable[[Tx], Awaitable[T]]) -> T:
        """Runs op in a transaction and returns once it is committed (durable)."""
        ...

    async def migrate(self) -> list[int]:
        """Applies pending migrations; returns the versions applied."""
        ...


def time_window(column: str, since: float | None, until: float | None) -> tuple[str, list[float]]:
    """An ` AND column >= ? AND column < ?` clause (the parts given) and its arguments."""
    sql, args = "", []
    if since is not None:
        sql += f" AND {column} >= ?"
        args.append(since)
    if until is not None:
        sql += f" AND {column} < ?"
        args.append(until)
    return sql, args


def open_database(url: str) -> Database:
    if url.startswith("sqlite:"):
        from collector.store.sqlite import SqliteDatabase

        return SqliteDatabase.from_url(url)
    if url.startswith(("postgresql:", "postgres:")):
        from collector.store.postgres import PostgresDatabase

        return PostgresDatabase(url)
    raise ValueError(f"unsupported database URL: {url}")
