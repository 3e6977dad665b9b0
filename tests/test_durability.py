"""A 2xx means the write is on disk: a collector killed with SIGKILL right after answering keeps it."""

from __future__ import annotations

import asyncio
import json

import httpx


def test_lead_answered_2xx_survives_kill_9(live_collector):
    site = live_collector.create_site(["https://shop.example"])
    body = {"id": "evt-lead-kill01", "vid": "visitor-kill01", "email": "ann@example.com", "consent": True}
    r = httpx.post(
        f"{live_collector.url}/c/{site['key']}/lead",
        content=json.dumps(body),
        headers={"Origin": "https://shop.example"},
    )
    assert r.status_code == 200
    live_collector.kill()  # SIGKILL: no shutdown, no flush
    rows = live_collector.query("SELECT email FROM leads")
    assert rows == [{"email": "ann@example.com"}]


def test_every_2xx_of_a_burst_survives_kill_9(live_collector):
    site = live_collector.create_site(["https://shop.example"])
    url = f"{live_collector.url}/c/{site['key']}/cart"
    acked: list[str] = []

    async def burst() -> None:
        async with httpx.AsyncClient(timeout=5) as client:

            async def one(i: int) -> None:
                body = {
                    "id": f"evt-burst-{i:05d}",
                    "vid": f"visitor-{i:05d}",
                    "currency": "EUR",
                    "items": [{"id": "a", "name": "Mug", "price": 1.5, "quantity": i % 5 + 1}],
                }
                try:
                    r = await client.post(url, content=json.dumps(body), headers={"Origin": "https://shop.example"})
                except httpx.HTTPError:
                    return
                if r.status_code == 200:
                    acked.append(f"visitor-{i:05d}")
                    if len(acked) == 150:
                        live_collector.kill()

            await asyncio.gather(*(one(i) for i in range(300)), return_exceptions=True)

    asyncio.run(burst())
    if live_collector.proc is not None:
        live_collector.kill()
    assert len(acked) >= 150
    stored = {r["visitor_id"] for r in live_collector.query("SELECT visitor_id FROM carts")}
    missing = set(acked) - stored
    assert not missing, f"{len(missing)} acknowledged carts lost"
