"""Several collector processes on one PostgreSQL database, as behind a load balancer.

Two `cartback serve` processes (and `serve --workers 2`) share one database; a burst
of leads reaches both at once, with the same client ids sent to both (a retry that
the balancer sent elsewhere), and each lead must be stored exactly once. Then two
`cartback send-due` passes run at once against a real SMTP server, and each
reminder must go out exactly once.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import (
    POSTGRES_ENV,
    ROOT,
    SHOP_ORIGIN,
    LiveCollector,
    _run_async,
    create_postgres_database,
    drop_postgres_database,
    free_port,
    postgres_server_url,
)

H = {"Origin": SHOP_ORIGIN, "Content-Type": "text/plain"}


@pytest.fixture
def pg_url() -> Iterator[str]:
    if not postgres_server_url():
        pytest.skip(f"PostgreSQL half: set {POSTGRES_ENV} to run it")
    url = create_postgres_database()
    try:
        yield url
    finally:
        drop_postgres_database(url)


def pg_query(url: str, sql: str, *args: Any) -> list[dict[str, Any]]:
    import asyncpg

    async def run() -> list[dict[str, Any]]:
        conn = await asyncpg.connect(url)
        try:
            return [dict(r) for r in await conn.fetch(sql, *args)]
        finally:
            await conn.close()

    return _run_async(run())


def collector_on(tmp: Path, name: str, url: str, **env: str) -> LiveCollector:
    home = tmp / name
    home.mkdir()
    return LiveCollector(home, {"CARTBACK_DATABASE_URL": url, **env})


def start_all(collectors: list[LiveCollector]) -> None:
    """Starts them at the same moment, so their start-up migrations meet too."""
    errors: list[BaseException] = []

    def start(c: LiveCollector) -> None:
        try:
            c.start()
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=start, args=(c,)) for c in collectors]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errors:
        raise errors[0]


async def send_all(requests: list[tuple[str, str, dict[str, Any]]]) -> list[int]:
    """POSTs every (base url, path, body) at once; returns the status codes."""
    limits = httpx.Limits(max_connections=64)
    async with httpx.AsyncClient(timeout=30, limits=limits) as client:

        async def one(base: str, path: str, body: dict[str, Any]) -> int:
            r = await client.post(base + path, content=json.dumps(body), headers=H)
            return r.status_code

        return list(await asyncio.gather(*(one(*r) for r in requests)))


def lead_burst(key: str, a: str, b: str) -> tuple[list[tuple[str, str, dict[str, Any]]], dict[str, Any]]:
    """The burst, and what must be stored once it is in."""
    reqs: list[tuple[str, str, dict[str, Any]]] = []
    emails: set[str] = set()
    ids: set[str] = set()
    vids: set[str] = set()
    # Shared: each lead goes to both processes at the same moment (a client retry the
    # balancer routed elsewhere).
    for i in range(60):
        body = {"id": f"evt-shared-{i:04d}", "vid": f"vis-shared-{i:04d}", "email": f"shared{i}@example.com", "consent": True}
        reqs += [(a, f"/c/{key}/lead", body), (b, f"/c/{key}/lead", body)]
        ids.add(body["id"]), vids.add(body["vid"]), emails.add(body["email"])
    # Distinct, spread over both processes.
    for i in range(60):
        body = {"id": f"evt-own-{i:04d}", "vid": f"vis-own-{i:04d}", "email": f"own{i}@example.com", "consent": i % 2 == 0}
        reqs.append((a if i % 2 else b, f"/c/{key}/lead", body))
        ids.add(body["id"]), vids.add(body["vid"]), emails.add(body["email"])
    # One address typed on two browsers, one on each process: one lead, two visitors.
    for i in range(20):
        for side, base in (("a", a), ("b", b)):
            body = {"id": f"evt-twice-{side}-{i:04d}", "vid": f"vis-twice-{side}-{i:04d}", "email": f"twice{i}@example.com",
                    "consent": False}
            reqs.append((base, f"/c/{key}/lead", body))
            ids.add(body["id"]), vids.add(body["vid"]), emails.add(body["email"])
    # Cart updates of one visitor on both processes at once: one cart.
    for i in range(20):
        for side, base in (("a", a), ("b", b)):
            body = {"id": f"evt-cart-{side}-{i:04d}", "vid": f"vis-shared-{i:04d}", "currency": "EUR",
                    "items": [{"id": "sku-1", "name": "Mug", "price": 12.5, "quantity": 1 if side == "a" else 2}]}
            reqs.append((base, f"/c/{key}/cart", body))
            ids.add(body["id"])
    expected = {"events": len(ids), "leads": len(emails), "visitors": len(vids), "emails": emails, "carts": 20}
    return reqs, expected


def check_stored_once(url: str, expected: dict[str, Any]) -> None:
    assert pg_query(url, "SELECT COUNT(*) AS n FROM events")[0]["n"] == expected["events"]
    leads = pg_query(url, "SELECT email, COUNT(*) AS n FROM leads GROUP BY email")
    assert {r["email"] for r in leads} == expected["emails"]
    assert all(r["n"] == 1 for r in leads)
    assert pg_query(url, "SELECT COUNT(*) AS n FROM visitors")[0]["n"] == expected["visitors"]
    carts = pg_query(url, "SELECT visitor_id, email, COUNT(*) AS n FROM carts GROUP BY visitor_id, email")
    assert len(carts) == expected["carts"] and all(r["n"] == 1 for r in carts)
    # Each cart found its shopper's email, whichever process took the lead.
    assert all(r["email"] is not None for r in carts)


def test_two_collectors_store_every_lead_once(pg_url: str, tmp_path: Path) -> None:
    a, b = collector_on(tmp_path, "a", pg_url), collector_on(tmp_path, "b", pg_url)
    try:
        start_all([a, b])
        key = a.create_site([SHOP_ORIGIN])["key"]
        reqs, expected = lead_burst(key, a.url, b.url)
        statuses = asyncio.run(send_all(reqs))
        assert set(statuses) == {200}, sorted(set(statuses))
        # And a second time, all of it (every request a retry now): nothing changes.
        assert set(asyncio.run(send_all(reqs))) == {200}
        check_stored_once(pg_url, expected)
    finally:
        a.stop()
        b.stop()
    for c in (a, b):
        log = c.log.read_text()
        assert "Traceback" not in log, log[-3000:]


def test_serve_with_two_workers_on_postgres(pg_url: str, tmp_path: Path) -> None:
    live = collector_on(tmp_path, "w", pg_url)
    live.proc = subprocess.Popen(
        [sys.executable, "-m", "collector", "serve", "--host", "127.0.0.1", "--port", str(live.port), "--workers", "2"],
        env=live.env,
        cwd=ROOT,
        stdout=open(live.log, "ab"),
        stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            assert live.proc.poll() is None, live.log.read_text()[-3000:]
            try:
                if httpx.get(live.url + "/healthz", timeout=0.5).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline, "serve --workers 2 did not answer in 30 s"
            time.sleep(0.1)
        key = live.create_site([SHOP_ORIGIN])["key"]
        reqs, expected = lead_burst(key, live.url, live.url)
        assert set(asyncio.run(send_all(reqs))) == {200}
        check_stored_once(pg_url, expected)
    finally:
        live.stop()
    log = live.log.read_text()
    assert "Traceback" not in log, log[-3000:]
    # Two worker processes served, each with its own pool on the one database.
    assert log.count("Started server process") == 2, log[-3000:]
