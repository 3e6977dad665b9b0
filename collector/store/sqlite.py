"""SQLite through aiosqlite: WAL, one writer that commits waiting writes in batches."""

from __future__ import annotations

import asyncio
import sqlite3
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar

import aiosqlite

from collector.store.db import Row
from collector.store.migrations import migrations

T = TypeVar("T")

# How many queued writes one transaction may carry. Bigger batches amortise the
# commit; the cap bounds how long one request waits behind others.
MAX_BATCH = 256


def _path_from_url(url: str) -> str:
    # sqlite:///relative/path and sqlite:////absolute/path, as the contract says.
    if not url.startswith("sqlite:///"):
        raise ValueError(f"not a sqlite URL: {url}")
    return url[len("sqlite:///"):] or "data/cartback.db"


class _Tx:
    def __init__(self, conn: aiosqlite.Connection) -> None:
        self._conn = conn

    async def fetchone(self, sql: str, *args: Any) -> Row | None:
        async with self._conn.execute(sql, args) as cur:
            row = await cur.fetchone()
        return dict(row) if row is not None else None

    async def fetchall(self, sql: str, *args: Any) -> list[Row]:
        async with self._conn.execute(sql, args) as cur:
            rows = await cur.fetchall()
        return [dict(r) for r in rows]

    async def execute(self, sql: str, *args: Any) -> int:
        async with self._conn.execute(sql, args) as cur:
            return cur.rowcount


class SqliteDatabase:
    dialect = "sqlite"
    # SQLite's BEGIN IMMEDIATE locks the whole file for writing, so a claim made
    # inside a write transaction is already exclusive across processes.
    skip_locked = ""

    def __init__(self, path: str) -> None:
        self.path = path
        self._writer: aiosqlite.Connection | None = None
        self._reader: aiosqlite.Connection | None = None
        self._queue: asyncio.Queue[tuple[Callable[[_Tx], Awaitable[Any]], asyncio.Future[Any]]] | None = None
        self._task: asyncio.Task[None] | None = None

    @classmethod
    def from_url(cls, url: str) -> SqliteDatabase:
        return cls(_path_from_url(url))

    async def _open(self) -> aiosqlite.Connection:
        conn = await aiosqlite.connect(self.path, isolation_level=None)
        conn.row_factory = sqlite3.Row
        await conn.execute("PRAGMA busy_timeout = 10000")
        await conn.execute("PRAGMA foreign_keys = ON")
        # WAL's NORMAL sync keeps every commit safe from a killed process (the
        # commit is in the OS before we answer); FULL would add an fsync per batch
        # to survive power loss too.
        await conn.execute("PRAGMA synchronous = NORMAL")
        return conn

    async def connect(self) -> None:
        if self._writer is not None:
            return
        Path(self.path).parent.mkdir(parents=True, exist_ok=True)
        self._writer = await self._open()
        async with self._writer.execute("PRAGMA journal_mode = WAL") as cur:
            await cur.fetchone()
        self._reader = await self._open()
        self._queue = asyncio.Queue()
        self._task = asyncio.get_running_loop().create_task(self._write_loop())

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass
            self._task = None
        for conn in (self._writer, self._reader):
            if conn is not None:
                await conn.close()
        self._writer = self._reader = None

    # -- reads -----------------------------------------------------------------
    async def fetchone(self, sql: str, *args: Any) -> Row | None:
        assert self._reader is not None, "database not connected"
        return await _Tx(self._reader).fetchone(sql, *args)

    async def fetchall(self, sql: str, *args: Any) -> list[Row]:
        assert self._reader is not None, "database not connected"
        return await _Tx(self._reader).fetchall(sql, *args)

    async def iterate(self, sql: str, *args: Any, batch: int = 1000) -> AsyncIterator[Row]:
        # A connection of its own, so a long export does not hold up other reads.
        conn = await self._open()
        try:
            async with conn.execute(sql, args) as cur:
                while True:
                    rows = await cur.fetchmany(batch)
                    if not rows:
                        break
                    for r in rows:
                        yield dict(r)
        finally:
            await conn.close()

    # -- writes ----------------------------------------------------------------
    async def write(self, op: Callable[[_Tx], Awaitable[T]]) -> T:
        assert self._queue is not None, "database not connected"
        fut: asyncio.Future[T] = asyncio.get_running_loop().create_future()
        self._queue.put_nowait((op, fut))
        return await fut

    async def _write_loop(self) -> None:
        assert self._queue is not None and self._writer is not None
        conn = self._writer
        tx = _Tx(conn)
        while True:
            batch = [await self._queue.get()]
            while len(batch) < MAX_BATCH and not self._queue.empty():
                batch.append(self._queue.get_nowait())
            await self._run_batch(conn, tx, batch)

    async def _run_batch(self, conn: aiosqlite.Connection, tx: _Tx, batch: list) -> None:
        results: list[tuple[asyncio.Future[Any], bool, Any]] = []
        try:
            await self._begin(conn)
        except Exception as exc:  # the file is locked for too long, or gone
            for _, fut in batch:
                if not fut.done():
                    fut.set_exception(exc)
            return
        for op, fut in batch:
            # Each write in its own savepoint: one failing write leaves the others.
            await conn.execute("SAVEPOINT w")
            try:
                value = await op(tx)
            except BaseException as exc:  # noqa: BLE001 - handed back to the caller
                await conn.execute("ROLLBACK TO w")
                await conn.execute("RELEASE w")
                results.append((fut, False, exc))
                if isinstance(exc, asyncio.CancelledError):
                    raise
            else:
                await conn.execute("RELEASE w")
                results.append((fut, True, value))
        try:
            await conn.execute("COMMIT")
        except Exception as exc:
            try:
                await conn.execute("ROLLBACK")
            except Exception:
                pass
            for fut, _, _ in results:
                if not fut.done():
                    fut.set_exception(exc)
            return
        # Answer only after the commit: a 2xx means the write is on disk.
        for fut, ok, value in results:
            if fut.done():
                continue
            if ok:
                fut.set_result(value)
            else:
                fut.set_exception(value)

    async def _begin(self, conn: aiosqlite.Connection) -> None:
        # busy_timeout covers most waits for another process; retry a little more
        # for the rare SQLITE_BUSY that BEGIN IMMEDIATE returns without waiting.
        deadline = time.monotonic() + 30
        while True:
            try:
                await conn.execute("BEGIN IMMEDIATE")
                return
            except sqlite3.OperationalError as exc:
                if "locked" not in str(exc) or time.monotonic() > deadline:
                    raise
                await asyncio.sleep(0.01)

    # -- schema ----------------------------------------------------------------
    async def migrate(self) -> list[int]:
        async def op(tx: _Tx) -> list[int]:
            await tx.execute(
                "CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, applied_at REAL NOT NULL)"
            )
            done = {r["version"] for r in await tx.fetchall("SELECT version FROM schema_migrations")}
            applied = []
            for version, statements in migrations(self.dialect):
                if version in done:
                    continue
                for stmt in statements:
                    await tx.execute(stmt)
                await tx.execute(
                    "INSERT INTO schema_migrations (version, applied_at) VALUES (?, ?)", version, time.time()
                )
                applied.append(version)
            return applied

        return await self.write(op)
