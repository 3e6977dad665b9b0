"""The Database interface both engines implement, and the SQL helpers every store module shares."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, Protocol, TypeVar

T = TypeVar("T")
Row = dict[str, Any]


class Reader(Protocol):
    """What a read needs: a Tx inside a write, or the Database outside one."""

    async def fetchone(self, sql: str, *args: Any) -> Row | None: ...

    async def fetchall(self, sql: str, *args: Any) -> list[Row]: ...


class Tx(Reader, Protocol):
    """A connection inside a write transaction. SQL uses `?` placeholders."""

    async def execute(self, sql: str, *args: Any) -> int:
        """Runs one statement; returns the number of rows it changed."""
        ...

    async def lock(self, key: str) -> None:
        """Holds the lock named `key` to the end of the transaction: writes that take the
        same key run one after the other. A no-op where writes are serial anyway (SQLite);
        on PostgreSQL it keeps two writes about one shopper from each missing the other's
        uncommitted rows. Take several keys in a fixed order (visitor, then email)."""
        ...


class Database(Reader, Protocol):
    dialect: str
    # Appended to a SELECT that claims rows; "" where the engine locks the whole database.
    skip_locked: str

    async def connect(self) -> None: ...

    async def close(self) -> None: ...

    def iterate(self, sql: str, *args: Any, batch: int = 1000) -> AsyncIterator[Row]:
        """Streams a large result without holding it all in memory."""
        ...

    def iterate_batches(self, sql: str, *args: Any, batch: int = 1000) -> AsyncIterator[list[tuple[Any, ...]]]:
        """Like iterate, in lists of plain tuples: for exports of a million rows."""
        ...

    async def write(self, op: Callable[[Tx], Awaitable[T]]) -> T:
        """Runs op in a transaction and returns once it is committed (durable).

        op may run more than once (a retry after a serialisation failure on PostgreSQL) and
        must await nothing but its tx."""
        ...

    async def migrate(self) -> list[int]:
        """Applies pending migrations; returns the versions applied."""
        ...

    async def checkpoint(self) -> None:
        """Gives back the space a bulk delete left in the engine's log (SQLite truncates its
        WAL); a no-op where the server manages its own (PostgreSQL's WAL and autovacuum)."""
        ...


def dumps(value: Any) -> str:
    """The JSON of a stored column: compact, UTF-8 kept as is."""
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


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


def like_contains(text: str) -> str:
    """A LIKE pattern matching `text` anywhere, with `\\` as the escape (use ESCAPE '\\')."""
    return "%" + text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
