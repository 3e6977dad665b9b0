"""The collector through a real PgBouncer in transaction pooling (Debian's pgbouncer, on a free port
in front of the test PostgreSQL): a shopper's whole journey, then 40 shoppers at once, with no 5xx;
and a URL without `?pgbouncer=1` that finds out by itself."""

from __future__ import annotations

import asyncio
import json
import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
from asgi_lifespan import LifespanManager

from collector.app import create_app
from collector.config import Config
from collector.recovery.sweep import sweep_once
from tests.conftest import (
    BROWSER_UA,
    SHOP_ORIGIN,
    TEST_SECRET,
    create_postgres_database,
    drop_postgres_database,
    free_port,
    postgres_server_url,
)
from tests.pgbouncer_support import PgBouncer
from tests.recovery_support import MINUTE, MUG, settings, sweep_state

H = {"Origin": SHOP_ORIGIN, "Content-Type": "text/plain"}


@pytest.fixture
def bouncer() -> Iterator[tuple[PgBouncer, str]]:
    server = postgres_server_url()
    if not server:
        pytest.skip("PgBouncer journey: set CARTBACK_TEST_POSTGRES_URL to run it")
    url = create_postgres_database()
    # Fewer server connections than the app's pool wants: clients really do share them.
    pgb = PgBouncer(server, free_port(), pool_size=4)
    pgb.start()
    try:
        yield pgb, urlsplit(url).path.lstrip("/")
    finally:
        pgb.stop()
        drop_postgres_database(url)


def _config(tmp_path: Path, url: str) -> Config:
    return Config(
        database_url=url,
        secret_key=TEST_SECRET,
        public_url="http://collector.test",
        smtp_url=None,
        sweep_seconds=0,
        data_dir=tmp_path / "data",
        webhook_allow_private=True,
    )


async def _post(client: httpx.AsyncClient, site: Any, kind: str, body: dict[str, Any]) -> int:
    r = await client.post(f"/c/{site.key}/{kind}", content=json.dumps(body), headers=H)
    return r.status_code


async def _shopper(client: httpx.AsyncClient, site: Any, n: int) -> list[int]:
    vid = f"crowd-{n:04d}-visitor"
    codes = [await _post(client, site, "cart", {"id": f"c-{vid}", "vid": vid, "items": [MUG], "currency": "EUR"})]
    codes.append(await _post(client, site, "event", {"id": f"s-{vid}", "vid": vid, "type": "shown"}))
    codes.append(await _post(client, site, "lead", {"id": f"l-{vid}", "vid": vid, "email": f"crowd{n}@example.com"}))
    codes.append(
        await _post(
            client,
            site,
            "purchase",
            {"id": f"p-{vid}", "vid": vid, "order_id": f"crowd-{n}", "value": 28.0, "currency": "EUR"},
        )
    )
    return codes


async def test_a_shoppers_journey_and_forty_at_once_through_pgbouncer(bouncer, tmp_path, smtp):
    pgb, name = bouncer
    app = create_app(_config(tmp_path, pgb.url(name, "pgbouncer=1")))
    async with (
        LifespanManager(app),
        httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://collector.test") as client,
    ):
        store = app.state.services.store
        assert store.db.pgbouncer is True
        site = await store.sites.create("Bounced shop", [SHOP_ORIGIN], settings())
        # Cart, lead: stored.
        vid = "journey-visitor-1"
        assert (
            await _post(client, site, "cart", {"id": "c-journey-1", "vid": vid, "items": [MUG], "currency": "EUR"})
            == 200
        )
        assert await _post(client, site, "lead", {"id": "l-journey-1", "vid": vid, "email": "ann@example.com"}) == 200
        cart = await store.db.fetchone("SELECT * FROM carts WHERE visitor_id = ?", vid)
        assert cart["email"] == "ann@example.com"
        # The sweep marks it abandoned and sends step one over real SMTP.
        s = await sweep_once(sweep_state(app, smtp.url), now=time.time() + 61 * MINUTE)
        assert (s["abandoned"], s["sent"]) == (1, 1) and len(smtp.messages) == 1
        link = re.search(r'href="http://collector\.test(/r/[^"]+)"', smtp.messages[0].part("html"))
        assert link, "no recovery link"
        # Read an hour after sending, in a browser (else it is a link scanner's fetch, not a click).
        await store.db.write(lambda tx: tx.execute("UPDATE emails SET sent_at = sent_at - 3600"))
        assert (await client.get(link.group(1), headers={"User-Agent": BROWSER_UA})).status_code == 303
        # The order is credited to the clicked reminder.
        assert (
            await _post(
                client,
                site,
                "purchase",
                {"id": "p-journey-1", "vid": vid, "order_id": "journey-1", "value": 28.0, "currency": "EUR"},
            )
            == 200
        )
        order = await store.db.fetchone("SELECT * FROM orders WHERE order_id = 'journey-1'")
        assert order["recovered"] == 1 and order["email_id"] is not None
        # Forty shoppers at once, four server connections: every answer a 2xx, every write stored.
        results = await asyncio.gather(*[_shopper(client, site, n) for n in range(40)])
        assert sorted({code for codes in results for code in codes}) == [200]
        counts = await store.db.fetchone(
            "SELECT (SELECT COUNT(*) FROM leads WHERE site_id = ?) AS leads,"
            " (SELECT COUNT(*) FROM orders WHERE site_id = ?) AS orders,"
            " (SELECT COUNT(*) FROM carts WHERE site_id = ? AND status = 'purchased') AS bought",
            site.id,
            site.id,
            site.id,
        )
        assert counts == {"leads": 41, "orders": 41, "bought": 41}
        token = await store.users.create_token("bounced")
        stats = await client.get(f"/api/v1/sites/{site.key}/stats", headers={"Authorization": f"Bearer {token}"})
        assert stats.status_code == 200 and stats.json()["recovered_orders"] == 1
    assert "prepared statement" not in pgb.log()


async def test_without_the_flag_the_collector_finds_the_pooler_out(bouncer, tmp_path):
    # PgBouncer refuses the statement_timeout startup parameter the collector sends: that tells.
    pgb, name = bouncer
    app = create_app(_config(tmp_path, pgb.url(name)))
    async with (
        LifespanManager(app),
        httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://collector.test") as client,
    ):
        store = app.state.services.store
        site = await store.sites.create("Bounced shop", [SHOP_ORIGIN], settings())
        first = await asyncio.gather(*[_shopper(client, site, n) for n in range(40)])
        assert sorted({code for codes in first for code in codes}) == [200]
        assert store.db.pgbouncer is True
        row = await store.db.fetchone("SELECT COUNT(*) AS n FROM leads WHERE site_id = ?", site.id)
        assert row["n"] == 40
