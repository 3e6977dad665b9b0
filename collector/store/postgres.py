"""PostgreSQL through asyncpg: a connection pool, one transaction per write, for several collectors on one database.

The rest of Cartback writes portable SQL with `?` placeholders; this driver turns
them into PostgreSQL's `$1..$n`, hands rows back as dicts, and returns the changed
row count from execute(), exactly like the SQLite store.

Differences from SQLite that callers should know:
- write(op) may run op more than once: a deadlock, a serialization failure or a
  unique-constraint race (two processes inserting the same row after both checked
  it was missing) rolls the transaction back and runs op again on a fresh one.
  op must therefore keep its side effects inside the database.
- Writes run concurrently (one pooled connection each) under READ COMMITTED;
  claims use `db.skip_locked` (" FOR UPDATE SKIP LOCKED") so sweeps in several
  processes never take the same row.

Behind PgBouncer in transaction pooling (`?pgbouncer=1` in the URL, or found out when it
refuses the statement_timeout startup parameter, which it does unless told to ignore it), asyncpg's
statement cache is off, so no named prepared statement is ever made: each statement is
parsed unnamed and bound in the same message, which any server connection can take.
Every read and write has a statement timeout (`?statement_timeout=MS`, 10 s by default,
0 for none); a read that passes it raises QueryTimeout, which a page shows as such.
"""

from __future__ import annotations

import asyncio
import functools
import hashlib
import logging
import random
import re
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, TypeVar
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import asyncpg

from collector.store.db import QueryTimeout, Row
from collector.store.migrations import apply_pending

T = TypeVar("T")
log = logging.getLogger("cartback.postgres")

DEFAULT_POOL_MIN = 1
DEFAULT_POOL_MAX = 10
# Milliseconds any one statement may run (`?statement_timeout=` in the URL; 0: no limit).
DEFAULT_STATEMENT_TIMEOUT_MS = 10_000
# What PostgreSQL says when a prepared statement made on one server connection is used or made
# again on another: PgBouncer in transaction (or statement) pooling handing out its connections.
_POOLER_ERRORS = (
    asyncpg.exceptions.DuplicatePreparedStatementError,  # 42P05
    asyncpg.exceptions.InvalidSQLStatementNameError,  # 26000
)
# How many times write() runs an op that lost a race before giving up.
WRITE_ATTEMPTS = 6
# The key of the advisory lock that makes concurrent `migrate` runs take turns
# (any constant; this one spells "cartback" in ASCII, truncated to 63 bits).
MIGRATE_LOCK_KEY = 0x63617274_6261636B & 0x7FFF_FFFF_FFFF_FFFF

# Errors after which the whole transaction is safe to run again.
RETRYABLE = (
    asyncpg.exceptions.SerializationError,  # 40001
    asyncpg.exceptions.DeadlockDetectedError,  # 40P01
    asyncpg.exceptions.UniqueViolationError,  # 23505: a check-then-insert race with another process
)


# -- SQL translation -----------------------------------------------------------------
_TOKEN = re.compile(
    r"""
      '(?:[^']|'')*'          # a string literal ('' escapes a quote)
    | "(?:[^"]|"")*"          # a quoted identifier
    | --[^\n]*                # a line comment
    | /\*.*?\*/               # a block comment
    | \$(?P<tag>[A-Za-z_]*)\$.*?\$(?P=tag)\$   # a dollar-quoted string
    | \?                      # a placeholder
    """,
    re.VERBOSE | re.DOTALL,
)


@functools.lru_cache(maxsize=2048)
def translate(sql: str) -> str:
    """`?` placeholders outside literals, identifiers and comments become `$1..$n`."""
    if "?" not in sql:
        return sql
    n = 0

    def repl(m: re.Match[str]) -> str:
        nonlocal n
        if m.group(0) != "?":
            return m.group(0)
        n += 1
        return f"${n}"

    return _TOKEN.sub(repl, sql)


def rowcount(status: str) -> int:
    """The row count in a command status: "UPDATE 3" -> 3, "INSERT 0 1" -> 1, "CREATE TABLE" -> 0."""
    last = status.rpartition(" ")[2]
    return int(last) if last.isdigit() else 0


_INT_TYPES = {"int2", "int4", "int8"}
_FLOAT_TYPES = {"float4", "float8", "numeric"}
_TEXT_TYPES = {"text", "varchar", "bpchar", "name", "unknown"}


def _coerce(value: Any, type_name: str) -> Any:
    """SQLite takes any value in any column; PostgreSQL wants the declared type.

    Only the conversions that keep the meaning: a whole float or a bool for an
    integer, a number for a float, a number for a text parameter (the type
    PostgreSQL guesses for `? IS NULL`). Anything else is left to fail loudly.
    """
    if value is None:
        return None
    if type_name in _INT_TYPES:
        if isinstance(value, bool):
            return int(value)
        if isinstance(value, float) and value.is_integer():
            return int(value)
    elif type_name in _FLOAT_TYPES:
        if isinstance(value, (int, bool)):
            return float(value)
    elif type_name in _TEXT_TYPES and isinstance(value, (int, float)) and not isinstance(value, bool):
        return str(value)
    return value


async def _coerced_args(conn: asyncpg.Connection, sql: str, args: tuple[Any, ...]) -> tuple[Any, ...]:
    stmt = await conn.prepare(sql)
    types = [t.name for t in stmt.get_parameters()]
    return tuple(_coerce(v, t) for v, t in zip(args, types, strict=False))


def _is_argument_error(exc: Exception) -> bool:
    # asyncpg's "invalid input for query argument $n": a DataError of its own, raised before
    # anything reaches the server, from the encoder's TypeError or ValueError (a server's
    # DataError has no such cause).
    return type(exc) is asyncpg.exceptions.DataError and isinstance(exc.__cause__, (TypeError, ValueError))


# -- connections -----------------------------------------------------------------------
def lock_id(key: str) -> int:
    """The 64-bit advisory lock number of a key (the same in every process; a collision
    only makes two unrelated writes take turns)."""
    return int.from_bytes(hashlib.blake2b(key.encode(), digest_size=8).digest(), "big", signed=True)


class _Tx:
    """The Tx interface on one asyncpg connection.

    Round trips are what a write costs on a busy machine (each one waits for the
    server process to be scheduled), so BEGIN and the advisory locks are not sent
    on their own: they wait, and go in one simple-protocol message together with the
    transaction's next statement, in the order they were asked for.
    """

    __slots__ = ("_conn", "_ahead", "began")

    def __init__(self, conn: asyncpg.Connection, begin: bool = False) -> None:
        self._conn = conn
        self._ahead: list[str] = ["BEGIN"] if begin else []
        # True once BEGIN has gone out: write() then owes a COMMIT.
        self.began = False

    async def _send_ahead(self) -> None:
        sql = "; ".join(self._ahead)
        if self._ahead[0] == "BEGIN":
            self.began = True
        self._ahead = []
        await self._conn.execute(sql)

    async def _call(self, method: str, sql: str, args: tuple[Any, ...]) -> Any:
        if self._ahead:
            await self._send_ahead()
        q = translate(sql)
        fn = getattr(self._conn, method)
        try:
            return await fn(q, *args)
        except (asyncpg.exceptions.DataError, TypeError) as exc:
            if not args or not (isinstance(exc, TypeError) or _is_argument_error(exc)):
                raise
            fixed = await _coerced_args(self._conn, q, args)
            if fixed == args:
                raise
            return await fn(q, *fixed)

    async def fetchone(self, sql: str, *args: Any) -> Row | None:
        rec = await self._call("fetchrow", sql, args)
        return dict(rec) if rec is not None else None

    async def fetchall(self, sql: str, *args: Any) -> list[Row]:
        return [dict(r) for r in await self._call("fetch", sql, args)]

    async def lock(self, key: str) -> None:
        # Taken right before the next statement (no statement after it: nothing to guard).
        self._ahead.append(f"SELECT pg_advisory_xact_lock({lock_id(key)})")

    async def execute(self, sql: str, *args: Any) -> int:
        if not args:
            # The simple protocol: no prepared statement, and several statements may go at once.
            if self._ahead:
                await self._send_ahead()
            return rowcount(await self._conn.execute(translate(sql)))
        return rowcount(await self._call("execute", sql, args))


async def _rollback(conn: asyncpg.Connection) -> None:
    if conn.is_closed() or not conn.is_in_transaction():
        return
    try:
        await conn.execute("ROLLBACK")
    except Exception:  # noqa: BLE001 - the connection is being thrown away anyway
        pass


def _pooler_hint() -> None:
    log.error(
        "a prepared statement went missing between transactions: a pooler (PgBouncer in transaction"
        " pooling) stands in front of PostgreSQL; add ?pgbouncer=1 to CARTBACK_DATABASE_URL"
    )


def _numeric_as_float(value: str) -> float:
    return float(value)


async def _init_connection(conn: asyncpg.Connection) -> None:
    # SUM over a BIGINT and AVG over integers give NUMERIC; SQLite gives a number,
    # so hand back a float rather than a Decimal that json.dumps cannot write.
    await conn.set_type_codec("numeric", encoder=str, decoder=_numeric_as_float, schema="pg_catalog", format="text")


async def _keep_session(conn: asyncpg.Connection) -> None:
    """Nothing to reset when a connection goes back to the pool.

    asyncpg's default runs `SELECT pg_advisory_unlock_all(); CLOSE ALL; UNLISTEN *; RESET ALL`
    on every release: a round trip per request. Cartback never changes session state
    (its advisory locks and cursors live and die with their transaction), and asyncpg
    still rolls back a transaction left open before it calls this.
    """
    return None


class UrlOptions:
    """What Cartback reads from the database URL itself (and does not pass on to asyncpg)."""

    __slots__ = ("dsn", "pool_min", "pool_max", "pgbouncer", "statement_timeout_ms")

    def __init__(self, dsn: str, pool_min: int, pool_max: int, pgbouncer: bool, statement_timeout_ms: int) -> None:
        self.dsn = dsn
        self.pool_min = pool_min
        self.pool_max = pool_max
        self.pgbouncer = pgbouncer
        self.statement_timeout_ms = statement_timeout_ms


def parse_url(url: str) -> UrlOptions:
    """The DSN for asyncpg and Cartback's own parameters: `pool_min`, `pool_max` (pool sizes),
    `pgbouncer` (1: behind PgBouncer in transaction pooling), `statement_timeout` (ms)."""
    parts = urlsplit(url)
    query = parse_qsl(parts.query, keep_blank_values=True)
    numbers = {
        "pool_min": DEFAULT_POOL_MIN,
        "pool_max": DEFAULT_POOL_MAX,
        "statement_timeout": DEFAULT_STATEMENT_TIMEOUT_MS,
    }
    pgbouncer = False
    rest = []
    for k, v in query:
        if k in numbers:
            try:
                numbers[k] = int(v)
            except ValueError:
                raise ValueError(f"database URL: {k} must be a whole number, not {v!r}") from None
        elif k == "pgbouncer":
            if v not in ("0", "1", "true", "false"):
                raise ValueError(f"database URL: pgbouncer must be 1 or 0, not {v!r}")
            pgbouncer = v in ("1", "true")
        else:
            rest.append((k, v))
    if numbers["pool_max"] < 1 or not 0 <= numbers["pool_min"] <= numbers["pool_max"]:
        raise ValueError("database URL: need 0 <= pool_min <= pool_max and pool_max >= 1")
    if numbers["statement_timeout"] < 0:
        raise ValueError("database URL: statement_timeout is milliseconds, 0 or more")
    scheme = "postgresql" if parts.scheme in ("postgresql", "postgres") else parts.scheme
    dsn = urlunsplit((scheme, parts.netloc, parts.path, urlencode(rest), parts.fragment))
    return UrlOptions(dsn, numbers["pool_min"], numbers["pool_max"], pgbouncer, numbers["statement_timeout"])


def _split_url(url: str) -> tuple[str, int, int]:
    """The DSN for asyncpg and the pool sizes (`?pool_min=1&pool_max=10` in the URL, optional)."""
    o = parse_url(url)
    return o.dsn, o.pool_min, o.pool_max


class PostgresDatabase:
    dialect = "postgresql"
    skip_locked = " FOR UPDATE SKIP LOCKED"

    def __init__(self, url: str) -> None:
        self.url = url
        options = parse_url(url)
        self.dsn, self.pool_min, self.pool_max = options.dsn, options.pool_min, options.pool_max
        # True: no named prepared statements (PgBouncer in transaction pooling).
        self.pgbouncer = options.pgbouncer
        self.statement_timeout_ms = options.statement_timeout_ms
        self._pool: asyncpg.Pool | None = None

    def __repr__(self) -> str:
        parts = urlsplit(self.dsn)
        host = parts.hostname or "localhost"
        return f"PostgresDatabase({host}:{parts.port or 5432}{parts.path})"

    async def connect(self) -> None:
        if self._pool is not None:
            return
        try:
            self._pool = await self._create_pool()
        except asyncpg.exceptions.ProtocolViolationError as exc:
            # PgBouncer refuses the startup parameters it does not know (our statement_timeout):
            # the first sign of a pooler. Connect the way it needs.
            if self.pgbouncer or "startup parameter" not in str(exc):
                raise
            log.warning("the server refused a startup parameter (%s): taking it for PgBouncer", exc)
            self.pgbouncer = True
            self._pool = await self._create_pool()

    async def _create_pool(self) -> asyncpg.Pool:
        settings = {}
        if self.statement_timeout_ms and not self.pgbouncer:
            # A startup parameter: no round trip. PgBouncer refuses startup parameters it does not
            # know, so behind it the limit is the role's (docs/postgres.md: ALTER ROLE ... SET).
            settings["statement_timeout"] = str(self.statement_timeout_ms)
        return await asyncpg.create_pool(
            self.dsn,
            min_size=self.pool_min,
            max_size=self.pool_max,
            init=_init_connection,
            reset=_keep_session,
            # Idle connections beyond min_size go back after a minute.
            max_inactive_connection_lifetime=60.0,
            command_timeout=60.0,
            # 0: asyncpg makes no named prepared statement (each is parsed unnamed, per message).
            statement_cache_size=0 if self.pgbouncer else 100,
            server_settings=settings,
        )

    async def close(self) -> None:
        pool, self._pool = self._pool, None
        if pool is None:
            return
        try:
            await asyncio.wait_for(pool.close(), 10)
        except Exception:  # noqa: BLE001 - a pool that will not close politely is terminated
            pool.terminate()

    async def _read(self, method: str, sql: str, args: tuple[Any, ...]) -> Any:
        try:
            async with self._require_pool().acquire() as conn:
                return await getattr(_Tx(conn), method)(sql, *args)
        except asyncpg.exceptions.QueryCanceledError as exc:
            raise QueryTimeout(f"the database stopped the query after {self.statement_timeout_ms} ms") from exc
        except _POOLER_ERRORS:
            _pooler_hint()
            raise

    def _require_pool(self) -> asyncpg.Pool:
        if self._pool is None:
            raise RuntimeError("database not connected")
        return self._pool

    # -- reads -------------------------------------------------------------------------
    async def fetchone(self, sql: str, *args: Any) -> Row | None:
        row: Row | None = await self._read("fetchone", sql, args)
        return row

    async def fetchall(self, sql: str, *args: Any) -> list[Row]:
        rows: list[Row] = await self._read("fetchall", sql, args)
        return rows

    async def iterate(self, sql: str, *args: Any, batch: int = 1000) -> AsyncIterator[Row]:
        # A server-side cursor (it lives in a transaction): memory stays at one batch.
        async with self._require_pool().acquire() as conn, conn.transaction(readonly=True):
            q = translate(sql)
            first = True
            try:
                async for rec in conn.cursor(q, *args, prefetch=batch):
                    first = False
                    yield dict(rec)
            except (asyncpg.exceptions.DataError, TypeError) as exc:
                if not first or not args or not (isinstance(exc, TypeError) or _is_argument_error(exc)):
                    raise
                fixed = await _coerced_args(conn, q, args)
                if fixed == args:
                    raise
                async for rec in conn.cursor(q, *fixed, prefetch=batch):
                    yield dict(rec)

    async def iterate_batches(self, sql: str, *args: Any, batch: int = 1000) -> AsyncIterator[list[tuple[Any, ...]]]:
        """iterate, in lists of plain tuples (the leads CSV of a million rows)."""
        chunk: list[tuple[Any, ...]] = []
        async for row in self.iterate(sql, *args, batch=batch):
            chunk.append(tuple(row.values()))
            if len(chunk) >= batch:
                yield chunk
                chunk = []
        if chunk:
            yield chunk

    # -- writes ------------------------------------------------------------------------
    async def write(self, op: Callable[[_Tx], Awaitable[T]]) -> T:
        """Runs op in a transaction and returns after the commit; reruns it after a lost race."""
        pool = self._require_pool()
        for attempt in range(1, WRITE_ATTEMPTS + 1):
            try:
                async with pool.acquire() as conn:
                    tx = _Tx(conn, begin=True)
                    try:
                        result = await op(tx)
                        if tx.began:
                            await conn.execute("COMMIT")
                    except BaseException:
                        await _rollback(conn)
                        raise
                    return result
            except _POOLER_ERRORS:
                _pooler_hint()
                raise
            except RETRYABLE as exc:
                if attempt == WRITE_ATTEMPTS:
                    raise
                log.debug("write lost a race (%s), attempt %d", type(exc).__name__, attempt)
                # Jittered backoff so the contenders do not meet again at once.
                await asyncio.sleep(random.uniform(0, 0.005 * 2**attempt))
        raise AssertionError("unreachable")

    # -- schema ------------------------------------------------------------------------
    async def checkpoint(self) -> None:
        # PostgreSQL recycles its WAL and autovacuum reclaims deleted rows by themselves.
        return None

    async def migrate(self) -> list[int]:
        """Applies pending migrations in one transaction; concurrent callers wait their turn."""
        async with self._require_pool().acquire() as conn, conn.transaction():
            # Held to the end of the transaction: a second process starting at the
            # same moment waits here, then finds the migrations applied.
            await conn.execute("SELECT pg_advisory_xact_lock($1)", MIGRATE_LOCK_KEY)
            # A migration may build indexes over millions of rows: no statement limit for it.
            await conn.execute("SET LOCAL statement_timeout = 0")
            return await apply_pending(_Tx(conn), self.dialect)
