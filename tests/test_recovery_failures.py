"""SMTP trouble and crashes: nothing lost, nothing sent twice, permanent refusals recorded and not retried."""

from __future__ import annotations

import time
from collections import Counter

import pytest

from collector.recovery import reminders
from collector.recovery.abandon import mark_abandoned
from collector.recovery.reminders import CLAIM_STALE_SECONDS
from collector.recovery.sweep import sweep_once
from tests.conftest import SHOP_ORIGIN
from tests.recovery_support import MUG, Shopper, SmtpServer, one, rows, settings, sweep_state

ONE_STEP = [{"delay_minutes": 0, "subject": "You left something in your cart"}]


async def abandoned_shoppers(client, store, n: int, steps=ONE_STEP):
    site = await store.sites.create("Test shop", [SHOP_ORIGIN], settings(abandon_after_minutes=0, steps=steps))
    addrs = []
    for i in range(n):
        s = Shopper(client, site)
        addr = f"shopper{i}@example.com"
        await s.lead(addr)
        await s.cart(MUG)
        addrs.append(addr)
    return site, addrs


def no_duplicates(server: SmtpServer) -> None:
    counts = Counter(m.to for m in server.messages)
    assert all(c == 1 for c in counts.values()), f"sent twice: {[a for a, c in counts.items() if c > 1]}"


async def test_smtp_down_nothing_is_lost_and_all_go_on_a_later_sweep(app, client, store):
    server = SmtpServer()  # not started yet: connection refused
    _, addrs = await abandoned_shoppers(client, store, 4)
    state = sweep_state(app, server.url)
    t0 = time.time() + 1
    s = await sweep_once(state, now=t0)
    assert (s["abandoned"], s["sent"], s["failed"], s["retried"]) == (4, 0, 0, 4)
    emails = await rows(store, "SELECT * FROM emails ORDER BY id")
    assert all(e["status"] == "pending" and e["next_attempt_at"] > t0 for e in emails)
    assert sum(e["attempts"] for e in emails) == 1  # one was tried; the rest waited without a try
    tried = next(e for e in emails if e["attempts"] == 1)
    assert "SMTP" in tried["error"] or "reach" in tried["error"]

    server.start()
    try:
        # Backing off: the server is up again, but the emails wait for their next try.
        s = await sweep_once(state, now=t0 + 10)
        assert s["sent"] == 0 and server.messages == []
        s = await sweep_once(state, now=t0 + 61)
        assert s["sent"] == 4
        assert sorted(m.to for m in server.messages) == sorted(addrs)
        no_duplicates(server)
        assert {e["status"] for e in await rows(store, "SELECT status FROM emails")} == {"sent"}
    finally:
        server.stop()


async def test_server_that_hangs_up_mid_sweep_loses_nothing(app, client, store, smtp):
    _, addrs = await abandoned_shoppers(client, store, 6)
    smtp.handler.accept_then_421 = 2
    state = sweep_state(app, smtp.url)
    t0 = time.time() + 1
    s = await sweep_once(state, now=t0)
    assert s["sent"] == 2 and s["retried"] == 4 and len(smtp.messages) == 2
    smtp.handler.accept_then_421 = None
    s = await sweep_once(state, now=t0 + 3600)
    assert s["sent"] == 4
    assert sorted(m.to for m in smtp.messages) == sorted(addrs)
    no_duplicates(smtp)


async def test_temporary_4xx_is_retried_with_backoff(app, client, store, smtp):
    _, (addr,) = await abandoned_shoppers(client, store, 1)
    smtp.handler.data_reply = "451 4.3.0 Try again later"
    state = sweep_state(app, smtp.url)
    t0 = time.time() + 1
    assert (await sweep_once(state, now=t0))["retried"] == 1
    e = await one(store, "SELECT * FROM emails")
    assert (e["status"], e["attempts"]) == ("pending", 1) and "451" in e["error"]
    first_wait = e["next_attempt_at"] - t0
    # Still 451 on the next try: the wait doubles.
    assert (await sweep_once(state, now=e["next_attempt_at"]))["retried"] == 1
    e2 = await one(store, "SELECT * FROM emails")
    assert e2["attempts"] == 2 and e2["next_attempt_at"] - e["next_attempt_at"] == pytest.approx(2 * first_wait)
    smtp.handler.data_reply = None
    assert (await sweep_once(state, now=e2["next_attempt_at"]))["sent"] == 1
    assert [m.to for m in smtp.messages] == [addr]
    assert (await one(store, "SELECT status, error FROM emails")) == {"status": "sent", "error": None}


async def test_permanent_5xx_is_recorded_as_failed_and_not_retried(app, client, store, smtp):
    _, addrs = await abandoned_shoppers(client, store, 3)
    smtp.handler.refuse_rcpt["shopper1@example.com"] = "550 5.1.1 No such user here"
    state = sweep_state(app, smtp.url)
    t0 = time.time() + 1
    s = await sweep_once(state, now=t0)
    assert (s["sent"], s["failed"], s["retried"]) == (2, 1, 0)
    bad = await one(store, "SELECT * FROM emails WHERE to_addr = 'shopper1@example.com'")
    assert bad["status"] == "failed" and "550" in bad["error"] and "No such user" in bad["error"]
    # The connection stayed usable: the one after the refused address went out.
    assert sorted(m.to for m in smtp.messages) == ["shopper0@example.com", "shopper2@example.com"]
    smtp.handler.refuse_rcpt.clear()
    for later in (3600, 86400, 30 * 86400):
        assert (await sweep_once(state, now=t0 + later))["sent"] == 0
    assert len(smtp.messages) == 2
    assert (await one(store, "SELECT status FROM emails WHERE id = ?", bad["id"]))["status"] == "failed"


async def test_a_crashed_sweeper_claim_is_taken_over_after_the_stale_time(app, client, store, smtp):
    _, (addr,) = await abandoned_shoppers(client, store, 1)
    t0 = time.time() + 1
    await mark_abandoned(store.db, (await store.sites.list())[0], t0)
    # A sweeper claims the email and dies before sending.
    jobs, _ = await reminders.claim_due(store.db, store.sites, t0, "dead-sweeper")
    assert len(jobs) == 1
    state = sweep_state(app, smtp.url)
    # While the claim is fresh, other sweepers leave it alone.
    assert (await sweep_once(state, now=t0 + CLAIM_STALE_SECONDS - 5))["sent"] == 0
    assert smtp.messages == []
    # Once stale, it is taken over and sent, once; the dead sweeper's late write changes nothing.
    s = await sweep_once(state, now=t0 + CLAIM_STALE_SECONDS + 5)
    assert s["sent"] == 1 and [m.to for m in smtp.messages] == [addr]
    e = await one(store, "SELECT * FROM emails")
    assert e["status"] == "sent" and e["attempts"] == 1
    assert await reminders.mark_sent(store.db, jobs[0], t0) is False
    await reminders.mark_retry(store.db, jobs[0], t0, "late")
    assert (await one(store, "SELECT status FROM emails"))["status"] == "sent"
    assert (await sweep_once(state, now=t0 + 10 * CLAIM_STALE_SECONDS))["sent"] == 0
    assert len(smtp.messages) == 1
