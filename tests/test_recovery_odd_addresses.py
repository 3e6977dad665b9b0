"""One shopper's odd address never stops the others' reminders: a non-ASCII address is sent over
SMTPUTF8 when the server offers it, and otherwise fails alone, with the reason, in the same pass."""

from __future__ import annotations

import time

from collector.recovery.sweep import sweep_once
from tests.conftest import SHOP_ORIGIN
from tests.recovery_support import MUG, Shopper, SmtpServer, rows, settings, sweep_state

ONE_STEP = [{"delay_minutes": 0, "subject": "You left something in your cart"}]
ADDRESSES = ["ann@example.com", "crème@example.com", "bob@example.com", "zoë.o@example.com", "cid@example.com"]


async def shoppers(client, store) -> None:
    site = await store.sites.create("Test shop", [SHOP_ORIGIN], settings(abandon_after_minutes=0, steps=ONE_STEP))
    for addr in ADDRESSES:
        s = Shopper(client, site)
        await s.lead(addr)
        await s.cart(MUG)


async def test_without_smtputf8_the_accented_addresses_fail_alone_and_the_rest_go_in_the_same_pass(app, client, store):
    server = SmtpServer(smtputf8=False)
    server.start()
    try:
        await shoppers(client, store)
        summary = await sweep_once(sweep_state(app, server.url), now=time.time() + 1)
        assert (summary["sent"], summary["failed"]) == (3, 2)
        assert sorted(m.to for m in server.messages) == ["ann@example.com", "bob@example.com", "cid@example.com"]
        by_addr = {e["to_addr"]: e for e in await rows(store, "SELECT to_addr, status, error, claim_token FROM emails")}
        for addr in ("crème@example.com", "zoë.o@example.com"):
            assert by_addr[addr]["status"] == "failed" and "SMTPUTF8" in by_addr[addr]["error"]
            assert by_addr[addr]["claim_token"] is None  # the claim is released, not left to go stale
        # Nothing is retried: the next pass sends nothing more.
        assert (await sweep_once(sweep_state(app, server.url), now=time.time() + 3600))["sent"] == 0
    finally:
        server.stop()


async def test_with_smtputf8_every_address_gets_its_reminder(app, client, store):
    server = SmtpServer(smtputf8=True)
    server.start()
    try:
        await shoppers(client, store)
        summary = await sweep_once(sweep_state(app, server.url), now=time.time() + 1)
        assert (summary["sent"], summary["failed"]) == (5, 0)
        assert sorted(m.to for m in server.messages) == sorted(ADDRESSES)
        sent = next(m for m in server.messages if m.to == "crème@example.com")
        assert sent.message["To"] == "crème@example.com"
    finally:
        server.stop()
