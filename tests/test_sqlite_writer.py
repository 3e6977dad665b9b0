"""The SQLite batched writer: ops driven in the writer thread, ops that need the event loop, failures."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from collector.store.sqlite import SqliteDatabase


@pytest.fixture
async def db(tmp_path: Path):
    database = SqliteDatabase(str(tmp_path / "w.db"))
    await database.connect()
    await database.write(lambda tx: tx.execute("CREATE TABLE t (k TEXT PRIMARY KEY, v INTEGER)"))
    yield database
    await database.close()


async def test_a_batch_of_writes_each_answered_after_commit(db):
    async def put(i: int) -> int:
        async def op(tx):
            await tx.execute("INSERT INTO t (k, v) VALUES (?, ?)", f"k{i}", i)
            row = await tx.fetchone("SELECT v FROM t WHERE k = ?", f"k{i}")
            return row["v"]

        return await db.write(op)

    assert await asyncio.gather(*(put(i) for i in range(500))) == list(range(500))
    assert (await db.fetchone("SELECT COUNT(*) AS n FROM t"))["n"] == 500


async def test_a_failing_write_leaves_the_others_of_its_batch(db):
    async def bad(tx):
        await tx.execute("INSERT INTO t (k, v) VALUES ('bad', 1)")
        raise ValueError("no")

    results = await asyncio.gather(
        db.write(lambda tx: tx.execute("INSERT INTO t (k, v) VALUES ('a', 1)")),
        db.write(bad),
        db.write(lambda tx: tx.execute("INSERT INTO t (k, v) VALUES ('a', 2)")),  # duplicate key
        db.write(lambda tx: tx.execute("INSERT INTO t (k, v) VALUES ('b', 3)")),
        return_exceptions=True,
    )
    assert results[0] == 1 and results[3] == 1
    assert isinstance(results[1], ValueError)
    assert "UNIQUE" in str(results[2])
    rows = await db.fetchall("SELECT k, v FROM t ORDER BY k")
    assert rows == [{"k": "a", "v": 1}, {"k": "b", "v": 3}]


async def test_ops_that_wait_on_the_event_loop_still_work(db):
    async def sleeps(tx):
        await tx.execute("INSERT INTO t (k, v) VALUES ('s', 1)")
        await asyncio.sleep(0.01)
        await tx.execute("UPDATE t SET v = 2 WHERE k = 's'")
        return "slept"

    async def yields(tx):
        await asyncio.sleep(0)
        await tx.execute("INSERT INTO t (k, v) VALUES ('y', 1)")
        return "yielded"

    async def reads_elsewhere(tx):
        n = (await db.fetchone("SELECT COUNT(*) AS n FROM t"))["n"]
        await tx.execute("INSERT INTO t (k, v) VALUES ('r', ?)", n)
        return "read"

    out = await asyncio.gather(
        db.write(sleeps),
        db.write(yields),
        db.write(reads_elsewhere),
        db.write(lambda tx: tx.execute("INSERT INTO t (k, v) VALUES ('plain', 1)")),
    )
    assert out == ["slept", "yielded", "read", 1]
    rows = {r["k"]: r["v"] for r in await db.fetchall("SELECT k, v FROM t")}
    assert rows["s"] == 2 and rows["y"] == 1 and "r" in rows and rows["plain"] == 1


async def test_a_loop_op_that_fails_is_rolled_back(db):
    async def fails(tx):
        await tx.execute("INSERT INTO t (k, v) VALUES ('x', 1)")
        await asyncio.sleep(0)
        raise KeyError("later")

    with pytest.raises(KeyError):
        await db.write(fails)
    assert await db.fetchall("SELECT * FROM t") == []
    assert await db.write(lambda tx: tx.execute("INSERT INTO t (k, v) VALUES ('x', 1)")) == 1


async def test_iterate_streams_every_row(db):
    await db.write(
        lambda tx: tx.execute(
            "INSERT INTO t (k, v) WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 2500)"
            " SELECT 'k' || i, i FROM n"
        )
    )
    seen = [r["v"] async for r in db.iterate("SELECT v FROM t ORDER BY v", batch=1000)]
    assert seen == list(range(1, 2501))


async def test_a_write_waits_for_another_process_holding_the_lock(db, tmp_path: Path):
    import sqlite3

    other = sqlite3.connect(str(tmp_path / "w.db"), isolation_level=None)
    other.execute("BEGIN IMMEDIATE")
    other.execute("INSERT INTO t (k, v) VALUES ('other', 1)")
    task = asyncio.create_task(db.write(lambda tx: tx.execute("INSERT INTO t (k, v) VALUES ('mine', 2)")))
    await asyncio.sleep(0.3)
    assert not task.done()
    # The event loop is not blocked while the writer waits.
    assert (await db.fetchone("SELECT COUNT(*) AS n FROM t"))["n"] == 0
    other.execute("COMMIT")
    other.close()
    assert await asyncio.wait_for(task, 10) == 1
    assert {r["k"] for r in await db.fetchall("SELECT k FROM t")} == {"other", "mine"}


async def test_iterate_batches_gives_tuples_in_order(db):
    await db.write(
        lambda tx: tx.execute(
            "INSERT INTO t (k, v) WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 2500)"
            " SELECT 'k' || i, i FROM n"
        )
    )
    sizes, seen = [], []
    async for rows in db.iterate_batches("SELECT k, v FROM t WHERE v > ? ORDER BY v", 0, batch=1000):
        sizes.append(len(rows))
        seen += rows
    assert sizes == [1000, 1000, 500]
    assert seen == [(f"k{i}", i) for i in range(1, 2501)]


async def test_a_small_read_does_not_wait_behind_a_long_one(db):
    await db.write(lambda tx: tx.execute("INSERT INTO t (k, v) VALUES ('k77', 77)"))
    done: list[str] = []

    async def long_read() -> None:
        # Tens of millions of steps of SQLite's machine: seconds of work in a reader thread.
        await db.fetchone(
            "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 6000000) SELECT COUNT(*) FROM n"
        )
        done.append("long")

    async def small_read() -> None:
        await asyncio.sleep(0.05)  # the long read is running by now
        assert await db.fetchone("SELECT v FROM t WHERE k = ?", "k77") == {"v": 77}
        done.append("small")

    await asyncio.gather(long_read(), small_read())
    assert done == ["small", "long"]


async def test_a_batch_whose_transaction_sqlite_undid_still_stores_the_other_writes(db):
    # RAISE(ROLLBACK) in a trigger makes SQLite undo the whole transaction, not just the
    # statement: the writes batched before it must run again and be stored.
    await db.write(
        lambda tx: tx.execute(
            "CREATE TRIGGER no_bad BEFORE INSERT ON t WHEN NEW.k = 'bad' BEGIN SELECT RAISE(ROLLBACK, 'bad row'); END"
        )
    )
    results = await asyncio.gather(
        db.write(lambda tx: tx.execute("INSERT INTO t (k, v) VALUES ('a', 1)")),
        db.write(lambda tx: tx.execute("INSERT INTO t (k, v) VALUES ('bad', 2)")),
        db.write(lambda tx: tx.execute("INSERT INTO t (k, v) VALUES ('b', 3)")),
        return_exceptions=True,
    )
    assert results[0] == 1 and results[2] == 1
    assert "bad row" in str(results[1])
    assert [r["k"] for r in await db.fetchall("SELECT k FROM t ORDER BY k")] == ["a", "b"]


async def test_checkpoint_truncates_the_wal(db, tmp_path: Path):
    await db.write(
        lambda tx: tx.execute(
            "INSERT INTO t (k, v) WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 20000)"
            " SELECT 'k' || i || printf('%.200c', 'x'), i FROM n"
        )
    )
    wal = tmp_path / "w.db-wal"
    assert wal.stat().st_size > 1_000_000
    await db.checkpoint()
    assert wal.stat().st_size == 0
    assert (await db.fetchone("SELECT COUNT(*) AS n FROM t"))["n"] == 20000


async def test_a_read_past_its_time_limit_raises_query_timeout_and_the_next_read_works(db):
    from collector.store.db import QueryTimeout

    db.read_seconds = 0.2
    with pytest.raises(QueryTimeout, match="0.2 s"):
        await db.fetchone(
            "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 500000000) SELECT COUNT(*) FROM n"
        )
    await db.write(lambda tx: tx.execute("INSERT INTO t (k, v) VALUES ('after', 1)"))
    assert await db.fetchall("SELECT k FROM t") == [{"k": "after"}]
    with pytest.raises(Exception, match="no such table"):
        await db.fetchall("SELECT * FROM missing")  # other errors stay what they are
