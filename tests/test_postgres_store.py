"""The PostgreSQL driver itself, and the races that only a concurrent store can lose.

SQLite runs one write at a time; PostgreSQL runs them side by side on pooled
connections (and in several processes), so each domain write must stay right
when two of them meet. These tests run on both backends where the question is
the same, and on PostgreSQL only where it is about the driver.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from typing import Any

import pytest

from collector.schemas import CartIn, LeadIn
from collector.store import Store, open_database
from collector.store.db import QueryTimeout
from collector.store.postgres import PostgresDatabase, _split_url, parse_url, rowcount, translate
from tests.conftest import (
    POSTGRES_ENV,
    SHOP_ORIGIN,
    create_postgres_database,
    drop_postgres_database,
    postgres_server_url,
)

H = {"Origin": SHOP_ORIGIN, "Content-Type": "text/plain"}


# -- the driver's pure parts (no database needed) ----------------------------------------
def test_placeholders_become_numbered_outside_literals_and_comments() -> None:
    sql = "SELECT '?', \"a?\", ? FROM t WHERE a = ? -- what?\n AND b = 'it''s ?' AND c = ? /* ? */ AND d = $$?$$"
    assert translate(sql) == (
        "SELECT '?', \"a?\", $1 FROM t WHERE a = $2 -- what?\n AND b = 'it''s ?' AND c = $3 /* ? */ AND d = $$?$$"
    )
    assert translate("SELECT 1") == "SELECT 1"


def test_rowcount_reads_the_command_status() -> None:
    assert rowcount("UPDATE 3") == 3
    assert rowcount("INSERT 0 1") == 1
    assert rowcount("DELETE 0") == 0
    assert rowcount("CREATE TABLE") == 0


def test_pool_sizes_come_from_the_url_and_are_not_passed_on() -> None:
    dsn, lo, hi = _split_url("postgresql://u:p@db:5433/cartback?pool_min=2&pool_max=20&sslmode=require")
    assert (dsn, lo, hi) == ("postgresql://u:p@db:5433/cartback?sslmode=require", 2, 20)
    assert _split_url("postgres://db/cartback")[1:] == (1, 10)
    with pytest.raises(ValueError):
        _split_url("postgresql://db/x?pool_max=0")


# -- on a real database --------------------------------------------------------------------
@pytest.fixture
def pg_url() -> Iterator[str]:
    """A fresh PostgreSQL database, for the tests about the driver alone."""
    if not postgres_server_url():
        pytest.skip(f"PostgreSQL half: set {POSTGRES_ENV} to run it")
    url = create_postgres_database()
    try:
        yield url
    finally:
        drop_postgres_database(url)


async def test_driver_round_trips_types_and_counts(pg_url: str) -> None:
    db = open_database(pg_url)
    assert isinstance(db, PostgresDatabase) and db.dialect == "postgresql"
    await db.connect()
    try:
        assert (await db.migrate())[:2] == [1, 2]
        assert await db.migrate() == []

        async def op(tx: Any) -> int:
            # Integral floats and bools go into INTEGER columns as SQLite would take them.
            await tx.execute("INSERT INTO login_attempts (key, failures, window_start) VALUES (?, ?, ?)", "a", 2.0, 5)
            await tx.execute(
                "INSERT INTO login_attempts (key, failures, window_start) VALUES (?, ?, ?)", "b", True, 1.5
            )
            return await tx.execute("UPDATE login_attempts SET failures = failures + 1 WHERE window_start > ?", 0)

        assert await db.write(op) == 2
        rows = await db.fetchall("SELECT * FROM login_attempts ORDER BY key")
        assert rows == [
            {"key": "a", "failures": 3, "window_start": 5.0},
            {"key": "b", "failures": 2, "window_start": 1.5},
        ]
        assert type(rows[0]["failures"]) is int and type(rows[0]["window_start"]) is float
        total = await db.fetchone("SELECT SUM(failures::bigint) AS s, COUNT(*) AS n FROM login_attempts")
        assert total == {"s": 5.0, "n": 2} and type(total["n"]) is int
        assert [
            r["key"]
            async for r in db.iterate("SELECT key FROM login_attempts WHERE failures > ? ORDER BY key", 0, batch=1)
        ] == ["a", "b"]
    finally:
        await db.close()


async def test_a_failing_write_leaves_nothing_behind(pg_url: str) -> None:
    db = open_database(pg_url)
    await db.connect()
    try:
        await db.migrate()

        async def op(tx: Any) -> None:
            await tx.execute("INSERT INTO login_attempts (key, failures, window_start) VALUES (?, 1, 0)", "x")
            raise RuntimeError("boom")

        with pytest.raises(RuntimeError):
            await db.write(op)
        assert await db.fetchall("SELECT * FROM login_attempts") == []
    finally:
        await db.close()


async def test_write_reruns_an_op_that_lost_a_unique_race(pg_url: str) -> None:
    db = open_database(pg_url)
    await db.connect()
    try:
        await db.migrate()
        runs = 0
        inserted = asyncio.Event()
        release = asyncio.Event()

        async def first(tx: Any) -> None:
            await tx.execute("INSERT INTO login_attempts (key, failures, window_start) VALUES ('k', 1, 0)")
            inserted.set()
            await release.wait()

        async def second(tx: Any) -> str:
            # Check, then insert: the pattern that loses when another transaction inserts in between.
            nonlocal runs
            runs += 1
            row = await tx.fetchone("SELECT failures FROM login_attempts WHERE key = 'k'")
            if row is not None:
                await tx.execute("UPDATE login_attempts SET failures = failures + 1 WHERE key = 'k'")
                return "updated"
            if runs == 1:
                release.set()
            await tx.execute("INSERT INTO login_attempts (key, failures, window_start) VALUES ('k', 1, 0)")
            return "inserted"

        t1 = asyncio.create_task(db.write(first))
        await inserted.wait()
        assert await db.write(second) == "updated"
        await t1
        assert runs == 2
        assert await db.fetchone("SELECT failures FROM login_attempts WHERE key = 'k'") == {"failures": 2}
    finally:
        await db.close()


async def test_concurrent_migrations_take_turns(pg_url: str) -> None:
    dbs = [open_database(pg_url) for _ in range(4)]
    for db in dbs:
        await db.connect()
    try:
        results = await asyncio.gather(*(db.migrate() for db in dbs))
        applied = [r for r in results if r]
        assert len(applied) == 1 and applied[0][:2] == [1, 2]
        row = await dbs[0].fetchone("SELECT COUNT(*) AS n FROM schema_migrations")
        assert row["n"] == len(applied[0])
    finally:
        for db in dbs:
            await db.close()


# -- domain writes that meet (both backends) ------------------------------------------------
def cart(cid: str, vid: str, price: float) -> CartIn:
    return CartIn.model_validate(
        {
            "id": cid,
            "vid": vid,
            "currency": "EUR",
            "items": [{"id": "sku", "name": "Mug", "price": price, "quantity": 1}],
        }
    )


async def test_concurrent_cart_updates_of_one_visitor_keep_one_cart(store: Store, site: Any) -> None:
    await asyncio.gather(
        *(store.carts.ingest_cart(site, cart(f"evt-cart-{i:04d}", "visitor-0001", 10 + i)) for i in range(20))
    )
    carts = await store.db.fetchall("SELECT * FROM carts WHERE status IN ('open', 'abandoned')")
    assert len(carts) == 1
    assert (await store.db.fetchone("SELECT COUNT(*) AS n FROM events"))["n"] == 20


async def test_the_same_lead_sent_many_times_at_once_is_stored_once(store: Store, site: Any) -> None:
    lead = LeadIn.model_validate(
        {"id": "evt-lead-0001", "vid": "visitor-0001", "email": "ann@example.com", "consent": True}
    )
    other = [
        LeadIn.model_validate(
            {"id": f"evt-lead-1{i:03d}", "vid": f"visitor-1{i:03d}", "email": "ann@example.com", "consent": False}
        )
        for i in range(10)
    ]
    results = await asyncio.gather(
        *([store.carts.ingest_lead(site, lead) for _ in range(10)] + [store.carts.ingest_lead(site, o) for o in other])
    )
    assert results[:10].count(True) == 1
    leads = await store.db.fetchall("SELECT * FROM leads")
    assert len(leads) == 1 and leads[0]["consent"] == 1
    assert (await store.db.fetchone("SELECT COUNT(*) AS n FROM events"))["n"] == 11
    assert (await store.db.fetchone("SELECT COUNT(*) AS n FROM visitors"))["n"] == 11


async def test_the_same_order_reported_at_once_is_stored_once(client: Any, store: Store, site: Any, token: str) -> None:
    await client.post(
        f"/c/{site.key}/cart",
        content=json.dumps(
            {
                "id": "evt-cart-0001",
                "vid": "visitor-0001",
                "currency": "EUR",
                "items": [{"id": "a", "name": "b", "price": 5, "quantity": 1}],
            }
        ),
        headers=H,
    )
    body = {"site": site.key, "order_id": "o-1", "value": 5, "currency": "EUR", "email": "ann@example.com"}
    auth = {"Authorization": f"Bearer {token}"}
    rs = await asyncio.gather(*(client.post("/api/v1/orders", json=body, headers=auth) for _ in range(10)))
    assert {r.status_code for r in rs} <= {200, 201}, [r.text for r in rs]
    assert (await store.db.fetchone("SELECT COUNT(*) AS n FROM orders"))["n"] == 1


async def test_a_cart_and_a_lead_of_one_visitor_at_once_meet_on_the_cart(store: Store, site: Any) -> None:
    # Two tabs of one shopper: one sends the cart, the other the popup's lead, at the same moment.
    ops = []
    for i in range(40):
        vid = f"visitor-{i:04d}"
        ops.append(store.carts.ingest_cart(site, cart(f"evt-cart-{i:04d}", vid, 10)))
        ops.append(
            store.carts.ingest_lead(
                site,
                LeadIn.model_validate(
                    {"id": f"evt-lead-{i:04d}", "vid": vid, "email": f"s{i}@example.com", "consent": True}
                ),
            )
        )
    await asyncio.gather(*ops)
    carts = await store.db.fetchall("SELECT visitor_id, email FROM carts")
    assert len(carts) == 40
    assert [c for c in carts if c["email"] is None] == []


async def test_begin_and_locks_ride_with_the_next_statement(pg_url: str) -> None:
    db = open_database(pg_url)
    await db.connect()
    try:
        await db.migrate()

        async def nothing(tx: Any) -> str:
            await tx.lock("visitor:1:a")  # no statement follows: nothing is sent, nothing to commit
            return "done"

        assert await db.write(nothing) == "done"

        async def locked(tx: Any) -> list[int]:
            await tx.lock("visitor:1:a")
            await tx.lock("email:1:a@example.com")
            rows = await tx.fetchall(
                "SELECT objid FROM pg_locks WHERE locktype = 'advisory' AND pid = pg_backend_pid() ORDER BY objid"
            )
            return [r["objid"] for r in rows]

        assert len(await db.write(locked)) == 2
        # Both connections of the pool are back, out of any transaction.
        row = await db.fetchone(
            "SELECT COUNT(*) AS n FROM pg_locks WHERE locktype = 'advisory'"
            " AND database = (SELECT oid FROM pg_database WHERE datname = current_database())"
        )
        assert row["n"] == 0
    finally:
        await db.close()


def test_pgbouncer_and_the_statement_timeout_come_from_the_url() -> None:
    o = parse_url("postgresql://db/x?pgbouncer=1&statement_timeout=2500&sslmode=require")
    assert (o.dsn, o.pgbouncer, o.statement_timeout_ms) == ("postgresql://db/x?sslmode=require", True, 2500)
    o = parse_url("postgresql://db/x")
    assert (o.pgbouncer, o.statement_timeout_ms) == (False, 10_000)
    for bad in ("pgbouncer=yes", "statement_timeout=-1", "statement_timeout=soon"):
        with pytest.raises(ValueError):
            parse_url(f"postgresql://db/x?{bad}")


async def test_a_read_past_the_statement_timeout_says_so(pg_url: str, tmp_path: Any) -> None:
    import httpx
    from asgi_lifespan import LifespanManager
    from starlette.routing import Route

    from collector.app import create_app
    from collector.config import Config
    from tests.conftest import TEST_SECRET

    sep = "&" if "?" in pg_url else "?"
    db = open_database(pg_url + sep + "statement_timeout=100")
    await db.connect()
    try:
        with pytest.raises(QueryTimeout, match="100 ms"):
            await db.fetchone("SELECT pg_sleep(2) AS x")
        assert (await db.fetchone("SELECT 1 AS ok")) == {"ok": 1}
    finally:
        await db.close()
    # A page whose read is stopped answers 503 with the reason, not a bare 500.
    config = Config(
        database_url=pg_url + sep + "statement_timeout=100",
        secret_key=TEST_SECRET,
        public_url="http://collector.test",
        smtp_url=None,
        sweep_seconds=0,
        data_dir=tmp_path / "data",
    )
    app = create_app(config)

    async def slow(request: Any) -> Any:
        await app.state.services.store.db.fetchone("SELECT pg_sleep(2) AS x")

    app.router.routes.append(Route("/admin/slow", slow))
    async with (
        LifespanManager(app),
        httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as c,
    ):
        r = await c.get("/admin/slow")
    assert r.status_code == 503 and "time limit" in r.text and "shorter date range" in r.text
