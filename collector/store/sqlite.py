"""SQLite: one writer thread that commits the waiting writes in batches; reads through a small aiosqlite pool.

The shape is datasette's. The event loop runs no SQL and builds no rows:
- Writes: `write(op)` queues the op and awaits its future. One thread owns the write connection.
  It takes every op waiting (up to MAX_BATCH), begins one transaction, runs each op in a
  savepoint of its own (one failing op leaves the others), commits, and only then answers the
  whole batch with one wake-up of the event loop: a 2xx is on disk, and a burst of requests costs
  one commit. The ops are coroutines (the Database protocol's `op(tx)`); the writer thread runs
  them on an event loop of its own, with a tx whose methods run their SQL at once, so an op
  awaits nothing but its tx and the SQL never leaves the writer thread.
- Reads: aiosqlite, one thread per connection, READERS connections. A read goes to the
  connection with the fewest reads in flight, so a small read never queues behind a dashboard's
  long one while another connection is free. Rows are made into dicts by the row factory, in the
  connection's thread.
- Errors are told by SQLite's error code (`sqlite_errorcode`), never by their text.

Measured against the last release's in-loop machine in bench/bench_sqlite_store.py.
"""

from __future__ import annotations

import asyncio
import queue
import sqlite3
import threading
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import aiosqlite

from collector.store.db import QueryTimeout, Row
from collector.store.migrations import apply_pending

T = TypeVar("T")
Op = Callable[[Any], Awaitable[Any]]

# How many queued writes one transaction may carry: bigger batches amortise the commit; the
# cap bounds how long one request waits behind the others.
MAX_BATCH = 256
# How long a write waits for another process that holds the write lock.
BUSY_SECONDS = 30.0
# Read connections (threads): enough that the sweep, a dashboard page and an export each get one.
READERS = 4
# The WAL is truncated back to this size after a checkpoint, so one burst does not leave a
# file of hundreds of MB behind for good.
WAL_LIMIT_BYTES = 64 * 1024 * 1024
_BUSY = {sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED}
# A read (fetchone, fetchall) that runs longer is stopped and raises QueryTimeout, which a page
# shows as "too slow" (as PostgreSQL's statement_timeout does); exports stream without a limit.
READ_SECONDS = 10.0
# How often, in steps of SQLite's machine, a read looks at its deadline (about every 0.1 ms).
DEADLINE_STEPS = 1000


class _Deadline:
    """When the read running on one connection must stop (0: no read is timed)."""

    def __init__(self) -> None:
        self.at = 0.0

    def passed(self) -> int:
        # SQLite's progress handler: a non-zero answer interrupts the statement.
        return 1 if self.at and time.monotonic() > self.at else 0


def _path_from_url(url: str) -> str:
    # sqlite:///relative/path and sqlite:////absolute/path, as the contract says.
    if not url.startswith("sqlite:///"):
        raise ValueError(f"not a sqlite URL: {url}")
    return url[len("sqlite:///") :] or "data/cartback.db"


def _dict_row(cursor: sqlite3.Cursor, row: tuple[Any, ...]) -> Row:
    return {col[0]: value for col, value in zip(cursor.description, row, strict=True)}


def _is_busy(exc: sqlite3.Error) -> bool:
    return getattr(exc, "sqlite_errorcode", None) in _BUSY


def _prepare(conn: sqlite3.Connection) -> sqlite3.Connection:
    conn.execute("PRAGMA foreign_keys = ON")
    # WAL's NORMAL sync keeps every commit safe from a killed process (the commit is in the OS
    # before we answer); FULL would add an fsync per batch to survive power loss too.
    conn.execute("PRAGMA synchronous = NORMAL")
    conn.execute("PRAGMA busy_timeout = 10000")
    return conn


class _Tx:
    """The tx an op gets in the writer thread: each call runs its SQL there and then."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self._conn = conn

    async def fetchone(self, sql: str, *args: Any) -> Row | None:
        cur = self._conn.execute(sql, args)
        try:
            row: Row | None = cur.fetchone()
            return row
        finally:
            cur.close()

    async def fetchall(self, sql: str, *args: Any) -> list[Row]:
        rows: list[Row] = self._conn.execute(sql, args).fetchall()
        return rows

    async def execute(self, sql: str, *args: Any) -> int:
        cur = self._conn.execute(sql, args)
        try:
            return cur.rowcount
        finally:
            cur.close()

    async def lock(self, key: str) -> None:
        # Every write transaction already holds SQLite's one write lock.
        return None


@dataclass
class _Write:
    op: Op
    loop: asyncio.AbstractEventLoop
    future: asyncio.Future[Any]
    outcome: tuple[bool, Any] = field(default=(False, None))


def _settle(writes: list[_Write]) -> None:
    """In the event loop: answers a committed batch in one wake-up."""
    for w in writes:
        if w.future.done():
            continue  # the caller was cancelled; its write is stored all the same
        ok, value = w.outcome
        if ok:
            w.future.set_result(value)
        else:
            w.future.set_exception(value)


class _Writer:
    """The thread that owns the write connection."""

    def __init__(self, path: str) -> None:
        self._path = path
        self._queue: queue.SimpleQueue[_Write | None] = queue.SimpleQueue()
        self._ready = threading.Event()
        self._failed: BaseException | None = None
        self._thread = threading.Thread(target=self._main, name="cartback-sqlite-writer", daemon=True)
        self._thread.start()

    def wait_ready(self) -> None:
        self._ready.wait()
        if self._failed is not None:
            raise self._failed

    def submit(self, write: _Write) -> None:
        self._queue.put(write)

    def stop(self) -> None:
        self._queue.put(None)
        self._thread.join(30)

    def _main(self) -> None:
        try:
            conn = _prepare(sqlite3.connect(self._path, isolation_level=None, check_same_thread=False))
            conn.execute("PRAGMA journal_mode = WAL").fetchone()
            conn.execute(f"PRAGMA journal_size_limit = {WAL_LIMIT_BYTES}")
            # The writer waits for another process's lock itself (see _begin), a millisecond
            # at a time: SQLite's own handler sleeps up to 100 ms a try.
            conn.execute("PRAGMA busy_timeout = 0")
            conn.execute("PRAGMA cache_size = -32768")
            conn.row_factory = _dict_row
        except BaseException as exc:  # noqa: BLE001 - told to connect() through wait_ready
            self._failed = exc
            self._ready.set()
            return
        self._ready.set()
        loop = asyncio.new_event_loop()
        try:
            while True:
                first = self._queue.get()
                if first is None:
                    break
                batch = [first]
                while len(batch) < MAX_BATCH:
                    try:
                        item = self._queue.get_nowait()
                    except queue.Empty:
                        break
                    if item is None:
                        self._queue.put(None)  # stop after this batch
                        break
                    batch.append(item)
                loop.run_until_complete(self._run(conn, batch))
                # One wake-up per event loop waiting (usually one) for the whole batch.
                by_loop: dict[asyncio.AbstractEventLoop, list[_Write]] = {}
                for w in batch:
                    by_loop.setdefault(w.loop, []).append(w)
                for target, writes in by_loop.items():
                    if not target.is_closed():
                        target.call_soon_threadsafe(_settle, writes)
        finally:
            loop.close()
            conn.close()

    async def _run(self, conn: sqlite3.Connection, batch: list[_Write]) -> None:
        """One transaction for the batch, a savepoint per op; every write gets its outcome."""
        todo = list(batch)
        while todo:
            try:
                _begin(conn)
            except sqlite3.Error as exc:
                for w in todo:
                    w.outcome = (False, exc)
                return
            tx = _Tx(conn)
            lost = None
            for w in todo:
                conn.execute("SAVEPOINT op")
                try:
                    value = await w.op(tx)
                except BaseException as exc:  # noqa: BLE001 - the op's own failure, handed back to it
                    w.outcome = (False, exc)
                    if not conn.in_transaction:
                        # SQLite rolled back the whole transaction (a full disk, say): the ops
                        # before this one are undone too and run again without it.
                        lost = w
                        break
                    conn.execute("ROLLBACK TO op")
                    conn.execute("RELEASE op")
                else:
                    conn.execute("RELEASE op")
                    w.outcome = (True, value)
            if lost is not None:
                todo = [w for w in todo if w is not lost]
                continue
            try:
                conn.execute("COMMIT")
            except sqlite3.Error as exc:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                for w in todo:
                    w.outcome = (False, exc)
            return


def _begin(conn: sqlite3.Connection) -> None:
    """BEGIN IMMEDIATE, waiting up to BUSY_SECONDS while another process holds the write lock."""
    deadline = time.monotonic() + BUSY_SECONDS
    pause = 0.0005
    while True:
        try:
            conn.execute("BEGIN IMMEDIATE")
            return
        except sqlite3.OperationalError as exc:
            if not _is_busy(exc) or time.monotonic() > deadline:
                raise
            time.sleep(pause)
            pause = min(pause * 1.5, 0.005)


class SqliteDatabase:
    dialect = "sqlite"
    # SQLite's BEGIN IMMEDIATE locks the whole file for writing, so a claim made inside a write
    # transaction is already exclusive across processes.
    skip_locked = ""

    def __init__(self, path: str, read_seconds: float = READ_SECONDS) -> None:
        self.path = path
        self.read_seconds = read_seconds
        self._deadlines: dict[int, _Deadline] = {}
        self._writer: _Writer | None = None
        self._readers: list[aiosqlite.Connection] = []
        # Reads in flight per connection; reads may start in the writer thread too (an op that
        # reads the committed state), hence the lock.
        self._in_flight: dict[int, int] = {}
        self._count_lock = threading.Lock()

    @classmethod
    def from_url(cls, url: str) -> SqliteDatabase:
        return cls(_path_from_url(url))

    async def connect(self) -> None:
        if self._writer is not None:
            return
        Path(self.path).parent.mkdir(parents=True, exist_ok=True)
        writer = _Writer(self.path)
        await asyncio.to_thread(writer.wait_ready)  # WAL is on before any reader opens
        self._writer = writer
        for _ in range(READERS):
            conn = await self._open_reader()
            deadline = _Deadline()
            await conn.set_progress_handler(deadline.passed, DEADLINE_STEPS)
            self._deadlines[id(conn)] = deadline
            self._readers.append(conn)
        self._in_flight = {id(c): 0 for c in self._readers}

    async def _open_reader(self, rows: bool = True) -> aiosqlite.Connection:
        conn = await aiosqlite.connect(self.path, isolation_level=None)
        await conn.execute("PRAGMA busy_timeout = 10000")
        if rows:
            conn.row_factory = _dict_row  # type: ignore[assignment]
        return conn

    async def close(self) -> None:
        writer, self._writer = self._writer, None
        if writer is not None:
            await asyncio.to_thread(writer.stop)
        readers, self._readers = self._readers, []
        for conn in readers:
            await conn.close()

    # -- reads -----------------------------------------------------------------
    def _take_reader(self) -> aiosqlite.Connection:
        assert self._readers, "database not connected"
        with self._count_lock:
            conn = min(self._readers, key=lambda c: self._in_flight[id(c)])
            self._in_flight[id(conn)] += 1
            # Reads queued on one connection share its deadline, pushed on by the newest: a
            # read may then run up to read_seconds times the queue's depth, never without end.
            self._deadlines[id(conn)].at = time.monotonic() + self.read_seconds
        return conn

    def _give_back(self, conn: aiosqlite.Connection) -> None:
        with self._count_lock:
            self._in_flight[id(conn)] -= 1
            if not self._in_flight[id(conn)]:
                self._deadlines[id(conn)].at = 0.0

    def _timed_out(self, exc: sqlite3.OperationalError) -> QueryTimeout | None:
        if getattr(exc, "sqlite_errorcode", None) == sqlite3.SQLITE_INTERRUPT:
            return QueryTimeout(f"SQLite stopped the read after {self.read_seconds:g} s")
        return None

    async def fetchone(self, sql: str, *args: Any) -> Row | None:
        conn = self._take_reader()
        try:
            async with conn.execute(sql, args) as cur:
                row: Row | None = await cur.fetchone()  # type: ignore[assignment]
                return row
        except sqlite3.OperationalError as exc:
            raise self._timed_out(exc) or exc from None
        finally:
            self._give_back(conn)

    async def fetchall(self, sql: str, *args: Any) -> list[Row]:
        conn = self._take_reader()
        try:
            rows = await conn.execute_fetchall(sql, args)
            return rows  # type: ignore[return-value]
        except sqlite3.OperationalError as exc:
            raise self._timed_out(exc) or exc from None
        finally:
            self._give_back(conn)

    async def iterate(self, sql: str, *args: Any, batch: int = 1000) -> AsyncIterator[Row]:
        # A connection (and thread) of its own, so a long export holds up no other read.
        async for rows in self._stream(sql, args, batch, dicts=True):
            for r in rows:
                yield r

    async def iterate_batches(self, sql: str, *args: Any, batch: int = 1000) -> AsyncIterator[list[tuple[Any, ...]]]:
        """Like iterate, in lists of plain tuples: for exports of a million rows, where a dict
        per row and a step of an async generator per row cost as much as the CSV itself."""
        async for rows in self._stream(sql, args, batch, dicts=False):
            yield rows

    async def _stream(self, sql: str, args: tuple[Any, ...], batch: int, dicts: bool) -> AsyncIterator[list[Any]]:
        conn = await self._open_reader(rows=dicts)
        try:
            async with conn.execute(sql, args) as cur:
                while rows := list(await cur.fetchmany(batch)):
                    yield rows
        finally:
            await conn.close()

    # -- writes ----------------------------------------------------------------
    async def write(self, op: Callable[[Any], Awaitable[T]]) -> T:
        assert self._writer is not None, "database not connected"
        loop = asyncio.get_running_loop()
        fut: asyncio.Future[T] = loop.create_future()
        self._writer.submit(_Write(op, loop, fut))
        return await fut

    async def checkpoint(self) -> None:
        """Copies the WAL into the database file and truncates it (retention runs it after deleting)."""
        await self.write(lambda tx: asyncio.sleep(0))  # every write queued before is committed
        conn = await self._open_reader(rows=False)
        try:
            await conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        finally:
            await conn.close()

    # -- schema ----------------------------------------------------------------
    async def migrate(self) -> list[int]:
        return await self.write(lambda tx: apply_pending(tx, self.dialect))
