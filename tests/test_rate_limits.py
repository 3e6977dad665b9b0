"""Rate limits that never punish shoppers behind one IP: a token bucket per visitor on ingest, a
per-site ceiling that is off unless set, and login failures limited per address and IP (issue 13)."""

from __future__ import annotations

import asyncio
import json

import httpx
import pytest

from collector.app import create_app
from collector.config import ConfigError, load_config
from collector.dashboard import auth
from collector.ratelimit import VISITOR_BURST, TokenBuckets
from tests.conftest import SHOP_ORIGIN
from tests.test_dashboard_auth import OWNER, PASSWORD, form_csrf

H = {"Origin": SHOP_ORIGIN, "Content-Type": "text/plain"}


def event(vid: str, n: int) -> str:
    return json.dumps({"id": f"ev-{vid}-{n:05d}", "vid": vid, "type": "shown"})


async def test_three_hundred_events_from_one_visitor_in_a_second_get_429_while_another_is_served(client, site, store):
    answers = await asyncio.gather(
        *(client.post(f"/c/{site.key}/event", content=event("flooding-visitor", i), headers=H) for i in range(300))
    )
    codes = [r.status_code for r in answers]
    assert codes.count(200) >= VISITOR_BURST and codes.count(429) >= 300 - 2 * VISITOR_BURST
    refused = next(r for r in answers if r.status_code == 429)
    assert int(refused.headers["retry-after"]) >= 1
    assert refused.headers["access-control-allow-origin"] == SHOP_ORIGIN  # the snippet can read it
    assert "too many" in refused.json()["error"]
    # Refused requests stored nothing.
    stored = await store.db.fetchone("SELECT COUNT(*) AS n FROM events WHERE visitor_id = 'flooding-visitor'")
    assert stored["n"] == codes.count(200)
    # Another shopper, from the same IP, at the same moment: served.
    r = await client.post(f"/c/{site.key}/event", content=event("another-visitor", 1), headers=H)
    assert r.status_code == 200


def test_a_bucket_refills_at_its_rate():
    b = TokenBuckets(burst=2, rate=1)
    assert b.take("v", now=0) == 0 and b.take("v", now=0) == 0
    assert b.take("v", now=0) == pytest.approx(1.0)
    assert b.take("v", now=0.5) == pytest.approx(0.5)
    assert b.take("v", now=1.6) == 0


async def test_the_site_ceiling_is_off_unless_set(tmp_path, store):
    cfg = load_config({"CARTBACK_DATABASE_URL": f"sqlite:///{tmp_path}/x.db", "CARTBACK_SECRET_KEY": "k" * 40})
    assert cfg.ingest_site_per_second == 0
    with pytest.raises(ConfigError, match="CARTBACK_INGEST_SITE_PER_SECOND"):
        load_config({"CARTBACK_SECRET_KEY": "k" * 40, "CARTBACK_INGEST_SITE_PER_SECOND": "-3"})
    limited = load_config(
        {
            "CARTBACK_DATABASE_URL": f"sqlite:///{tmp_path}/limited.db",
            "CARTBACK_SECRET_KEY": "k" * 40,
            "CARTBACK_INGEST_SITE_PER_SECOND": "5",
            "CARTBACK_SWEEP_SECONDS": "0",
        }
    )
    app = create_app(limited)
    async with app.router.lifespan_context(app):
        site = await app.state.services.store.sites.create("Shop", [SHOP_ORIGIN])
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://c.test") as c:
            # Twenty fresh visitor ids at once: each has a full bucket, the site's ceiling stops them.
            answers = [
                await c.post(f"/c/{site.key}/event", content=event(f"fresh-visitor-{i:03d}", 1), headers=H)
                for i in range(20)
            ]
    codes = [r.status_code for r in answers]
    assert codes.count(200) <= 6 and codes.count(429) >= 14


async def _login(client: httpx.AsyncClient, email: str, password: str) -> httpx.Response:
    client.cookies.clear()
    page = await client.get("/admin/login")
    return await client.post("/admin/login", data={"email": email, "password": password, "csrf": form_csrf(page.text)})


async def test_five_bad_passwords_slow_that_address_for_that_ip_only(app, store):
    await store.users.create(OWNER, PASSWORD)

    def from_ip(ip: str) -> httpx.AsyncClient:
        transport = httpx.ASGITransport(app=app, client=(ip, 40000))
        return httpx.AsyncClient(transport=transport, base_url="http://collector.test")

    async with from_ip("203.0.113.66") as attacker, from_ip("198.51.100.7") as owner:
        for _ in range(auth.MAX_FAILURES_PER_EMAIL):
            assert (await _login(attacker, OWNER, "wrong password!")).status_code == 401
        r = await _login(attacker, OWNER, PASSWORD)
        assert r.status_code == 429 and int(r.headers["retry-after"]) > 0
        # The owner, from her own address, is not locked out.
        assert (await _login(owner, OWNER, PASSWORD)).status_code == 303
        # A good login costs nothing: many in a row are all let in.
        for _ in range(auth.MAX_FAILURES_PER_IP + 1):
            assert (await _login(owner, OWNER, PASSWORD)).status_code == 303
