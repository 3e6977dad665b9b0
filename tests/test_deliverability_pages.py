"""The dashboard's Deliverability and Suppressions pages, and the HTTPS warning at start-up."""

from __future__ import annotations

import logging

from asgi_lifespan import LifespanManager

from collector.app import create_app
from collector.recovery.dkim import create_key
from collector.store import suppressions
from tests.conftest import SHOP_ORIGIN
from tests.dashboard_support import login
from tests.recovery_support import settings


async def test_the_page_shows_the_records_to_publish_and_the_https_warning(app, client, store):
    await store.sites.create("Test shop", [SHOP_ORIGIN], settings())
    key = await create_key(store.db, "shop.test", "cartback", app.state.services.config.secret_key)
    await login(client, store)
    r = await client.get("/admin/deliverability")
    assert r.status_code == 200
    assert key.record().replace('"', "&#34;") in r.text or key.record() in r.text
    assert '_dmarc.shop.test TXT "v=DMARC1' in r.text.replace("&#34;", '"')
    assert "data-https-warning" in r.text and "not HTTPS" in r.text
    assert "/hooks/mail/ses" in r.text and "off until CARTBACK_SNS_TOPIC_ARNS is set" in r.text
    # Every dashboard page carries the warning while the public URL is http://.
    assert "data-https-warning" in (await client.get("/admin")).text


async def test_suppressions_page_adds_and_removes_and_refuses_bad_input(app, client, store):
    csrf = await login(client, store)
    r = await client.post(
        "/admin/suppressions", data={"csrf": csrf, "action": "add", "emails": "Ann@Example.com\nbob@example.com"}
    )
    assert r.status_code == 303
    assert {row["email"] for row in await suppressions.list_all(store.db)} == {"ann@example.com", "bob@example.com"}
    page = await client.get("/admin/suppressions?q=ann")
    assert 'data-suppressed="ann@example.com"' in page.text and "bob@example.com" not in page.text
    r = await client.post("/admin/suppressions", data={"csrf": csrf, "action": "remove", "emails": "ANN@example.com"})
    assert r.status_code == 303
    # One bad address: nothing changes, the page names it (escaped).
    r = await client.post(
        "/admin/suppressions", data={"csrf": csrf, "action": "add", "emails": "carl@example.com\n<b>x</b>"}
    )
    assert r.status_code == 400 and "&lt;b&gt;x&lt;/b&gt;" in r.text and "<b>x</b>" not in r.text
    assert {row["email"] for row in await suppressions.list_all(store.db)} == {"bob@example.com"}
    # Without the CSRF token, nothing.
    r = await client.post("/admin/suppressions", data={"action": "add", "emails": "dora@example.com"})
    assert r.status_code == 403
    assert not await suppressions.is_suppressed(store.db, "dora@example.com")


async def test_the_pages_need_a_login(client):
    for path in ("/admin/deliverability", "/admin/suppressions"):
        r = await client.get(path)
        assert r.status_code in (302, 303) and "/admin/login" in r.headers["location"]


async def test_start_up_warns_when_the_public_url_is_not_https(config, caplog):
    with caplog.at_level(logging.WARNING, logger="cartback"):
        async with LifespanManager(create_app(config)):
            pass
    assert any("not HTTPS" in r.getMessage() for r in caplog.records)
    caplog.clear()
    from dataclasses import replace

    with caplog.at_level(logging.WARNING, logger="cartback"):
        async with LifespanManager(create_app(replace(config, public_url="https://collector.example"))):
            pass
    assert not any("not HTTPS" in r.getMessage() for r in caplog.records)


async def test_the_page_shows_bounce_and_complaint_rates_against_the_line(app, client, store, smtp):
    import time

    from collector.recovery.sweep import sweep_once
    from tests.recovery_support import MINUTE, MUG, Shopper, sweep_state

    site = await store.sites.create(
        "Rated shop", [SHOP_ORIGIN], settings(abandon_after_minutes=0, steps=[{"delay_minutes": 0, "subject": "Hi"}])
    )
    for i in range(2):
        s = Shopper(client, site)
        await s.lead(f"r{i}@example.com")
        await s.cart(MUG)
    await sweep_once(sweep_state(app, smtp.url), now=time.time() + MINUTE)
    assert len(smtp.messages) == 2
    await suppressions.record_event(
        store.db,
        "ses",
        "complaint",
        "r0@example.com",
        site_id=site.id,
        email_id=None,
        detail="abuse",
        suppress=True,
        now=time.time(),
    )
    await login(client, store)
    r = await client.get("/admin/deliverability")
    row = r.text[r.text.index('data-rates="Rated shop"') :]
    row = row[: row.index("</tr>")]
    assert ">2<" in row and "1 (50.0%)" in row and "data-over-line" in row
