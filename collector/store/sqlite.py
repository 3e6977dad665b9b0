"""SQLite: WAL, one writer that commits waiting writes in batches; small reads in the loop, big ones in a thread.

The profile of the ingest route under load (bench/bench_ingest.py) taught two things:
- Handing statements one by one to a database thread (aiosqlite: an execute, a fetch and a
  cursor close are three hops for one statement; a cart update is five statements) kept the
  event loop busy waking up for answers.
- Handing a whole batch to a thread in one hop was no better on a loaded two-core machine:
  SQLite releases the GIL around every statement and takes it back after, and each take-back
  waited for the busy event loop or for the scheduler, so both threads sat mostly idle while
  requests waited tens of milliseconds.
So the batch's statements run in the event loop itself: the writer begins the transaction,
runs each write's `op(tx)` to its end with a `tx` whose methods run the SQL at once (the
coroutine never has to wait, so it is driven with `send(None)`). Only the COMMIT, the batch's
one long call (it writes every page the batch changed to the WAL, and SQLite lets go of the
GIL for it), goes to the writer's thread: one hand-over per batch, and the loop reads new
requests meanwhile. Each request is answered after the COMMIT that carries its write: a 2xx
is on disk.

Nothing slow may happen in the loop, so:
- BEGIN IMMEDIATE does not wait there: when another process holds the write lock, that batch
  runs in the writer's thread, which may wait (busy_timeout).
- The writer does not checkpoint the WAL at commit (that fsyncs); the reader's thread runs a
  passive checkpoint now and then instead.
- A batch first runs without savepoints; if any write of it fails, it is rolled back and run
  again with a savepoint per write, so one failing write leaves the others.

Reads: a hand-over to a thread and back costs about 150 µs on these machines, ten times a read
by key. So a read first runs in the loop, on a connection of its own that lets it take only
INLINE_READ_STEPS steps of SQLite's machine; one that needs more (a dashboard's counts, say) is
interrupted and runs again in the reader's thread. Exports have a connection and a thread each.

`write(op)` keeps the async `op(tx)` interface of the Database protocol. An op that awaits
something other than its tx (the event loop, a network call, a read on the other connection)
cannot be driven that way: it is undone and runs again alone in a transaction of its own, with
a tx whose every call is a hop to the writer's thread. Ops may therefore run more than once;
they are retry-safe by contract (the PostgreSQL driver retries them too).
"""

from __future__ import annotations

import asyncio
import functools
import inspect
import queue
import sqlite3
import threading
import time
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar

from collector.store.db import Row
from collector.store.migrations import apply_pending

T = TypeVar("T")

# How many queued writes one transaction may carry. Bigger batches amortise the
# commit; the cap bounds how long one request waits behind others.
MAX_BATCH = 256
# How long BEGIN IMMEDIATE may wait for another process that holds the write lock.
BUSY_SECONDS = 30.0
# How many steps of SQLite's virtual machine a read may take in the event loop (see fetchone).
INLINE_READ_STEPS = 10_000
# Batches of at most this many writes commit in the loop; bigger ones in the writer's thread.
INLINE_COMMIT_OPS = 4
# A passive checkpoint of the WAL after this many committed batches (or this many seconds).
CHECKPOINT_BATCHES = 500
CHECKPOINT_SECONDS = 2.0


def _path_from_url(url: str) -> str:
    # sqlite:///relative/path and sqlite:////absolute/path, as the contract says.
    if not url.startswith("sqlite:///"):
        raise ValueError(f"not a sqlite URL: {url}")
    return url[len("sqlite:///") :] or "data/cartback.db"


def _set_result(fut: asyncio.Future[Any], value: Any) -> None:
    if not fut.done():
        fut.set_result(value)


def _set_exception(fut: asyncio.Future[Any], exc: BaseException) -> None:
    if not fut.done():
        fut.set_exception(exc)


class _Later:
    """The read did not finish in the loop: run it in the reader's thread."""


_LATER = _Later()


def _stop() -> int:
    return 1  # a progress handler that interrupts the statement at its first call


class _Worker:
    """One thread that runs functions in order; the event loop awaits each one's result."""

    def __init__(self, name: str) -> None:
        self._queue: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._main, name=name, daemon=True)
        self._thread.start()

    def _main(self) -> None:
        while True:
            item = self._queue.get()
            if item is None:
                return
            loop, fut, fn = item
            try:
                value = fn()
            except BaseException as exc:  # noqa: BLE001 - handed back to the awaiting coroutine
                loop.call_soon_threadsafe(_set_exception, fut, exc)
            else:
                loop.call_soon_threadsafe(_set_result, fut, value)

    async def run(self, fn: Callable[[], T]) -> T:
        loop = asyncio.get_running_loop()
        fut: asyncio.Future[T] = loop.create_future()
        self._queue.put((loop, fut, fn))
        return await fut

    def stop(self) -> None:
        self._queue.put(None)
        self._thread.join(10)


def _connect(path: str) -> sqlite3.Connection:
    conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False, timeout=10)
    conn.row_factory = sqlite3.Row
    conn.execute("PRAGMA busy_timeout = 10000")
    conn.execute("PRAGMA foreign_keys = ON")
    # WAL's NORMAL sync keeps every commit safe from a killed process (the commit is
    # in the OS before we answer); FULL would add an fsync per batch to survive power
    # loss too.
    conn.execute("PRAGMA synchronous = NORMAL")
    return conn


def _fetchone(conn: sqlite3.Connection, sql: str, args: tuple[Any, ...]) -> Row | None:
    cur = conn.execute(sql, args)
    try:
        row = cur.fetchone()
    finally:
        cur.close()
    return dict(row) if row is not None else None


def _fetchall(conn: sqlite3.Connection, sql: str, args: tuple[Any, ...]) -> list[Row]:
    return [dict(r) for r in conn.execute(sql, args).fetchall()]


def _execute(conn: sqlite3.Connection, sql: str, args: tuple[Any, ...]) -> int:
    cur = conn.execute(sql, args)
    try:
        return cur.rowcount
    finally:
        cur.close()


class _ThreadTx:
    """The tx of an op driven inside the writer thread: each call runs the SQL at once."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self._conn = conn

    async def fetchone(self, sql: str, *args: Any) -> Row | None:
        return _fetchone(self._conn, sql, args)

    async def fetchall(self, sql: str, *args: Any) -> list[Row]:
        return _fetchall(self._conn, sql, args)

    async def execute(self, sql: str, *args: Any) -> int:
        return _execute(self._conn, sql, args)

    async def lock(self, key: str) -> None:
        # Every write transaction already holds SQLite's one write lock.
        return None


class _LoopTx:
    """The tx of an op run from the event loop: each call is a hop to the connection's thread."""

    def __init__(self, worker: _Worker, conn: sqlite3.Connection) -> None:
        self._worker = worker
        self._conn = conn

    async def fetchone(self, sql: str, *args: Any) -> Row | None:
        return await self._worker.run(lambda: _fetchone(self._conn, sql, args))

    async def fetchall(self, sql: str, *args: Any) -> list[Row]:
        return await self._worker.run(lambda: _fetchall(self._conn, sql, args))

    async def execute(self, sql: str, *args: Any) -> int:
        return await self._worker.run(lambda: _execute(self._conn, sql, args))

    async def lock(self, key: str) -> None:
        # Every write transaction already holds SQLite's one write lock.
        return None


class _NeedsLoop(Exception):
    """The op awaited something that only the event loop can provide."""


def _drive(op: Callable[[Any], Awaitable[Any]], tx: _ThreadTx) -> Any:
    """Runs op(tx) to its end in this thread; _NeedsLoop if it has to wait for anything."""
    coro = op(tx)
    if not inspect.iscoroutine(coro):
        raise _NeedsLoop
    try:
        coro.send(None)
    except StopIteration as stop:
        return stop.value
    except RuntimeError as exc:
        # asyncio.get_running_loop() and friends, called in this thread.
        if "event loop" in str(exc):
            raise _NeedsLoop from exc
        raise
    coro.close()  # it waits for something: undo it here, run it from the loop
    raise _NeedsLoop


def _begin(conn: sqlite3.Connection) -> None:
    """BEGIN IMMEDIATE, waiting up to BUSY_SECONDS while another process holds the write lock.

    The writer's busy_timeout is 0 and it polls every millisecond or two itself: SQLite's own
    busy handler sleeps ever longer (up to 100 ms a try), so two collectors on one file would
    hand the lock to each other a tenth of a second late."""
    deadline = time.monotonic() + BUSY_SECONDS
    pause = 0.0005
    while True:
        try:
            conn.execute("BEGIN IMMEDIATE")
            return
        except sqlite3.OperationalError as exc:
            if ("locked" not in str(exc) and "busy" not in str(exc)) or time.monotonic() > deadline:
                raise
            time.sleep(pause)
            pause = min(pause * 1.5, 0.005)


class _Busy(Exception):
    """Another process holds the write lock: the batch must wait, and not in the event loop."""


def _begin_now(conn: sqlite3.Connection) -> None:
    # The writer's busy_timeout is 0: SQLITE_BUSY comes back at once.
    try:
        conn.execute("BEGIN IMMEDIATE")
    except sqlite3.OperationalError as exc:
        if "locked" in str(exc) or "busy" in str(exc):
            raise _Busy from exc
        raise


def _begin_waiting(conn: sqlite3.Connection) -> None:
    _begin(conn)


def _commit(conn: sqlite3.Connection) -> None:
    try:
        conn.execute("COMMIT")
    except BaseException:
        if conn.in_transaction:
            try:
                conn.execute("ROLLBACK")
            except sqlite3.Error:
                pass
        raise


_OK, _FAILED, _DEFERRED = 0, 1, 2


def _rollback(conn: sqlite3.Connection) -> None:
    if conn.in_transaction:
        try:
            conn.execute("ROLLBACK")
        except sqlite3.Error:
            pass


def _run_ops(
    conn: sqlite3.Connection, ops: list[Callable[[Any], Awaitable[Any]]], savepoints: bool
) -> list[tuple[int, Any]] | None:
    """Runs the ops in the open transaction. Without savepoints: None at the first op that
    does not simply succeed (the caller rolls back and runs the batch again with them)."""
    tx = _ThreadTx(conn)
    out: list[tuple[int, Any]] = []
    for op in ops:
        if not savepoints:
            try:
                out.append((_OK, _drive(op, tx)))
            except Exception:  # noqa: BLE001 - run again with savepoints to tell who failed
                return None
            continue
        # Each write in its own savepoint: one failing write leaves the others.
        conn.execute("SAVEPOINT w")
        try:
            value = _drive(op, tx)
        except _NeedsLoop:
            conn.execute("ROLLBACK TO w")
            conn.execute("RELEASE w")
            out.append((_DEFERRED, None))
        except Exception as exc:
            if not conn.in_transaction:
                raise  # SQLite rolled the whole transaction back: the batch is lost
            conn.execute("ROLLBACK TO w")
            conn.execute("RELEASE w")
            out.append((_FAILED, exc))
        else:
            conn.execute("RELEASE w")
            out.append((_OK, value))
    return out


def _run_batch(
    conn: sqlite3.Connection,
    ops: list[Callable[[Any], Awaitable[Any]]],
    begin: Callable[[sqlite3.Connection], None],
    commit: bool = True,
) -> list[tuple[int, Any]]:
    """One transaction for the whole batch; (outcome, value) per op once it is committed
    (with commit=False, the transaction is left open for the caller to commit).

    Raises _Busy (from begin) or the error that kept the batch from committing: then no op
    of it is stored.
    """
    begin(conn)
    try:
        out = _run_ops(conn, ops, savepoints=False)
        if out is None:
            _rollback(conn)
            begin(conn)
            out = _run_ops(conn, ops, savepoints=True)
            assert out is not None  # with savepoints every op gets an outcome
    except BaseException:
        _rollback(conn)
        raise
    if commit:
        _commit(conn)
    return out


class SqliteDatabase:
    dialect = "sqlite"
    # SQLite's BEGIN IMMEDIATE locks the whole file for writing, so a claim made
    # inside a write transaction is already exclusive across processes.
    skip_locked = ""

    def __init__(self, path: str) -> None:
        self.path = path
        self._writer: sqlite3.Connection | None = None
        self._reader: sqlite3.Connection | None = None
        self._wthread: _Worker | None = None
        self._rthread: _Worker | None = None
        self._pending: deque[tuple[Callable[[Any], Awaitable[Any]], asyncio.Future[Any]]] = deque()
        self._wakeup: asyncio.Event | None = None
        self._task: asyncio.Task[None] | None = None
        self._checkpointing = False
        self._checkpoint_task: asyncio.Task[None] | None = None
        self._quick: sqlite3.Connection | None = None

    @classmethod
    def from_url(cls, url: str) -> SqliteDatabase:
        return cls(_path_from_url(url))

    async def connect(self) -> None:
        if self._writer is not None:
            return
        Path(self.path).parent.mkdir(parents=True, exist_ok=True)
        self._wthread = _Worker("cartback-sqlite-writer")
        self._rthread = _Worker("cartback-sqlite-reader")

        def open_writer() -> sqlite3.Connection:
            conn = _connect(self.path)
            conn.execute("PRAGMA journal_mode = WAL").fetchone()
            # The batches run in the event loop: never wait for a lock there (see _Busy),
            # never fsync there (see _checkpoint).
            conn.execute("PRAGMA busy_timeout = 0")
            conn.execute("PRAGMA wal_autocheckpoint = 0")
            conn.execute("PRAGMA cache_size = -32768")
            return conn

        self._writer = await self._wthread.run(open_writer)
        self._reader = await self._rthread.run(lambda: _connect(self.path))
        quick = _connect(self.path)
        quick.execute("PRAGMA busy_timeout = 0")
        quick.set_progress_handler(_stop, INLINE_READ_STEPS)
        self._quick = quick
        self._wakeup = asyncio.Event()
        self._task = asyncio.get_running_loop().create_task(self._write_loop())

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass
            self._task = None
        if self._checkpoint_task is not None:
            try:
                await self._checkpoint_task
            except Exception:  # noqa: BLE001
                pass
            self._checkpoint_task = None
        for worker, conn in ((self._wthread, self._writer), (self._rthread, self._reader)):
            if worker is None:
                continue
            if conn is not None:
                try:
                    await worker.run(conn.close)
                except sqlite3.Error:
                    pass
            worker.stop()
        self._writer = self._reader = None
        self._wthread = self._rthread = None
        if self._quick is not None:
            self._quick.close()
            self._quick = None
        while self._pending:
            _set_exception(self._pending.popleft()[1], RuntimeError("database closed"))

    # -- reads -----------------------------------------------------------------
    # A read first runs in the loop on a connection of its own, allowed INLINE_READ_STEPS steps
    # of SQLite's machine (a lookup by key takes a few hundred; well under a millisecond): no
    # hand-over to a thread for the many small reads (the sweep makes three per email). A read
    # that needs more is interrupted there and runs again in the reader's thread.
    def _inline(
        self, fn: Callable[[sqlite3.Connection, str, tuple[Any, ...]], T], sql: str, args: tuple[Any, ...]
    ) -> T | _Later:
        conn = self._quick
        if conn is None:
            return _LATER
        try:
            return fn(conn, sql, args)
        except sqlite3.OperationalError as exc:
            text = str(exc)
            if "interrupted" in text or "locked" in text or "busy" in text:
                return _LATER
            raise

    async def fetchone(self, sql: str, *args: Any) -> Row | None:
        assert self._rthread is not None and self._reader is not None, "database not connected"
        row = self._inline(_fetchone, sql, args)
        if row is not _LATER:
            return row  # type: ignore[return-value]
        conn = self._reader
        return await self._rthread.run(lambda: _fetchone(conn, sql, args))

    async def fetchall(self, sql: str, *args: Any) -> list[Row]:
        assert self._rthread is not None and self._reader is not None, "database not connected"
        rows = self._inline(_fetchall, sql, args)
        if rows is not _LATER:
            return rows  # type: ignore[return-value]
        conn = self._reader
        return await self._rthread.run(lambda: _fetchall(conn, sql, args))

    async def iterate(self, sql: str, *args: Any, batch: int = 1000) -> AsyncIterator[Row]:
        # A connection and a thread of its own, so a long export holds up no other read.
        worker = _Worker("cartback-sqlite-iterate")
        conn: sqlite3.Connection | None = None
        try:
            conn = await worker.run(lambda: _connect(self.path))
            cur = await worker.run(lambda: conn.execute(sql, args))
            while True:
                rows = await worker.run(lambda: [dict(r) for r in cur.fetchmany(batch)])
                if not rows:
                    break
                for r in rows:
                    yield r
        finally:
            if conn is not None:
                try:
                    await worker.run(conn.close)
                except sqlite3.Error:
                    pass
            worker.stop()

    async def iterate_batches(self, sql: str, *args: Any, batch: int = 1000) -> AsyncIterator[list[tuple[Any, ...]]]:
        """Like iterate, but lists of plain tuples: for exports of a million rows, where a dict
        per row and a step of an async generator per row cost as much as the CSV itself."""
        worker = _Worker("cartback-sqlite-iterate")
        conn: sqlite3.Connection | None = None
        try:
            conn = await worker.run(lambda: sqlite3.connect(self.path, check_same_thread=False, timeout=10))
            cur = await worker.run(lambda: conn.execute(sql, args))
            while True:
                rows = await worker.run(lambda: cur.fetchmany(batch))
                if not rows:
                    break
                yield rows
        finally:
            if conn is not None:
                try:
                    await worker.run(conn.close)
                except sqlite3.Error:
                    pass
            worker.stop()

    # -- writes ----------------------------------------------------------------
    async def write(self, op: Callable[[Any], Awaitable[T]]) -> T:
        assert self._wakeup is not None, "database not connected"
        fut: asyncio.Future[T] = asyncio.get_running_loop().create_future()
        self._pending.append((op, fut))
        self._wakeup.set()
        return await fut

    async def _write_loop(self) -> None:
        assert self._wakeup is not None and self._wthread is not None and self._writer is not None
        pending, worker, conn = self._pending, self._wthread, self._writer
        batches, last_checkpoint = 0, time.monotonic()
        while True:
            if not pending:
                self._wakeup.clear()
                await self._wakeup.wait()
                continue
            batch = [pending.popleft() for _ in range(min(MAX_BATCH, len(pending)))]
            ops = [op for op, _ in batch]
            try:
                try:
                    # In the loop: no thread to wake, no GIL to hand over (see the module's note).
                    small = len(ops) <= INLINE_COMMIT_OPS
                    outcomes = _run_batch(conn, ops, _begin_now, commit=small)
                    if not small:
                        # The COMMIT of a big batch is its one long call (it writes every page
                        # the batch changed to the WAL) and SQLite lets go of the GIL for it: in
                        # the writer's thread it runs beside the loop, which goes on reading
                        # requests meanwhile. A small batch commits faster than a hand-over.
                        await worker.run(lambda: _commit(conn))
                except _Busy:
                    # Another process writes: wait for it in the writer's thread.
                    outcomes = await worker.run(functools.partial(_run_batch, conn, ops, _begin_waiting))
            except asyncio.CancelledError:
                for _, fut in batch:
                    _set_exception(fut, RuntimeError("database closed"))
                raise
            except Exception as exc:  # noqa: BLE001 - the batch could not begin or commit: none of it is stored
                for _, fut in batch:
                    _set_exception(fut, exc)
                continue
            # Answer only after the commit: a 2xx means the write is on disk.
            deferred = []
            for (op, fut), (outcome, value) in zip(batch, outcomes, strict=True):
                if outcome == _OK:
                    _set_result(fut, value)
                elif outcome == _FAILED:
                    _set_exception(fut, value)
                else:
                    deferred.append((op, fut))
            for op, fut in deferred:
                await self._run_from_loop(op, fut)
            batches += 1
            if batches >= CHECKPOINT_BATCHES or time.monotonic() - last_checkpoint > CHECKPOINT_SECONDS:
                batches, last_checkpoint = 0, time.monotonic()
                self._checkpoint()
            # Let the requests that arrived meanwhile be read before the next batch.
            await asyncio.sleep(0)

    def _checkpoint(self) -> None:
        """A passive checkpoint in the reader's thread: the WAL does not grow without end."""
        if self._checkpointing or self._rthread is None or self._reader is None:
            return
        self._checkpointing = True
        reader, worker = self._reader, self._rthread

        async def run() -> None:
            try:
                await worker.run(lambda: reader.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall())
            except Exception:  # noqa: BLE001 - the next one will try again
                pass
            finally:
                self._checkpointing = False

        self._checkpoint_task = asyncio.get_running_loop().create_task(run())

    async def _run_from_loop(self, op: Callable[[Any], Awaitable[Any]], fut: asyncio.Future[Any]) -> None:
        """An op that waits on the event loop: alone in its transaction, each statement a hop."""
        assert self._wthread is not None and self._writer is not None
        worker, conn = self._wthread, self._writer
        try:
            await worker.run(lambda: _begin_waiting(conn))
        except Exception as exc:  # noqa: BLE001
            _set_exception(fut, exc)
            return
        try:
            value = await op(_LoopTx(worker, conn))
        except BaseException as exc:
            try:
                await worker.run(lambda: conn.execute("ROLLBACK") if conn.in_transaction else None)
            except sqlite3.Error:
                pass
            _set_exception(fut, exc)
            if isinstance(exc, asyncio.CancelledError):
                raise
            return
        try:
            await worker.run(lambda: _commit(conn))
        except Exception as exc:  # noqa: BLE001
            _set_exception(fut, exc)
            return
        _set_result(fut, value)

    # -- schema ----------------------------------------------------------------
    async def migrate(self) -> list[int]:
        return await self.write(lambda tx: apply_pending(tx, self.dialect))
