"""The Database interface both engines implement, and the SQL helpers every store module shares."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, Protocol, TypeVar

T = TypeVar("T")
Row = dict[str, Any]


class QueryTimeout(Exception):
    """A read stopped by the engine's time limit (PostgreSQL's statement_timeout; on SQLite a
    progress-handler limit): the page that asked says so rather than hanging or failing with 500."""


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


# Every event type ingest stores (collector/store/carts.py and schemas.EventIn).
EVENT_TYPES = ("cart", "lead", "identify", "purchase", "shown", "closed", "reason", "checkout")


async def database_bytes(db: Database) -> int:
    """The database's size on disk (SQLite: the main file's pages; PostgreSQL: pg_database_size)."""
    if db.dialect == "sqlite":
        row = await db.fetchone("SELECT page_count * page_size AS n FROM pragma_page_count(), pragma_page_size()")
    else:
        row = await db.fetchone("SELECT pg_database_size(current_database()) AS n")
    return int(row["n"]) if row and row["n"] is not None else 0


async def oldest_kept(db: Reader, site_id: int) -> dict[str, float | None]:
    """When the site's oldest stored event and cart were made (what retention has left).

    One index seek per event type (events_site_type_time) and one on carts_site_created:
    never a walk over the site's rows."""
    per_type = " UNION ALL ".join(
        "SELECT MIN(created_at) AS t FROM events WHERE site_id = ? AND type = ?" for _ in EVENT_TYPES
    )
    args: list[Any] = []
    for t in EVENT_TYPES:
        args += [site_id, t]
    events = await db.fetchone(f"SELECT MIN(t) AS t FROM ({per_type}) firsts", *args)
    carts = await db.fetchone("SELECT MIN(created_at) AS t FROM carts WHERE site_id = ?", site_id)
    return {"event": events["t"] if events else None, "cart": carts["t"] if carts else None}
