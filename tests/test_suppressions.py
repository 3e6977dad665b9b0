"""The suppression list: its commands as the contract writes them, and no email to a suppressed address."""

from __future__ import annotations

import time

from collector.recovery.sweep import sweep_once
from collector.store import suppressions
from tests.conftest import SHOP_ORIGIN
from tests.recovery_support import MINUTE, MUG, Shopper, cli, cli_env, rows, settings, sweep_state

ONE_STEP = [{"delay_minutes": 0, "subject": "You left something in your cart"}]


async def test_commands_add_remove_import_export_list(database_url, tmp_path, app):
    env = cli_env(database_url, tmp_path)
    code, out, err = await cli(env, "suppressions", "add", "Ann@Example.com", "bob@example.com")
    assert code == 0, err
    code, out, _ = await cli(env, "suppressions", "list")
    assert [line.split("\t")[:2] for line in out.splitlines()] == [
        ["ann@example.com", "manual"],
        ["bob@example.com", "manual"],
    ]
    # Case-insensitive: the upper-case form is the same address.
    code, out, err = await cli(env, "suppressions", "remove", "BOB@example.com")
    assert code == 0 and "removed 1" in out
    lines = tmp_path / "list.txt"
    lines.write_text("carl@example.com\n\nDora@example.com\n")
    code, out, err = await cli(env, "suppressions", "import", str(lines))
    assert code == 0 and "imported 2" in out, err
    table = tmp_path / "list.csv"
    table.write_text("Name,EMAIL\nEve,eve@example.com\nAnn again,ann@example.com\n")
    code, out, err = await cli(env, "suppressions", "import", str(table))
    assert code == 0 and "imported 1" in out and "1 already" in out, err
    exported = tmp_path / "out.csv"
    code, _, err = await cli(env, "suppressions", "export", "--output", str(exported))
    assert code == 0, err
    assert exported.read_text().splitlines() == [
        "email",
        "ann@example.com",
        "carl@example.com",
        "dora@example.com",
        "eve@example.com",
    ]
    code, out, _ = await cli(env, "suppressions", "export")
    assert out.splitlines()[0] == "email" and len(out.splitlines()) == 5


async def test_an_invalid_address_changes_nothing_and_exits_2_naming_it(database_url, tmp_path, app, store):
    env = cli_env(database_url, tmp_path)
    code, _, err = await cli(env, "suppressions", "add", "ok@example.com", "not-an-address")
    assert code == 2 and "not-an-address" in err and len(err.strip().splitlines()) == 1
    bad = tmp_path / "bad.txt"
    bad.write_text("fine@example.com\nbroken@@example.com\n")
    code, _, err = await cli(env, "suppressions", "import", str(bad))
    assert code == 2 and "broken@@example.com" in err and "line 2" in err
    bad_csv = tmp_path / "bad.csv"
    bad_csv.write_text("email\nfine@example.com\nnope\n")
    code, _, err = await cli(env, "suppressions", "import", str(bad_csv))
    assert code == 2 and "'nope'" in err
    code, _, err = await cli(env, "suppressions", "remove", "x@")
    assert code == 2
    assert await suppressions.count(store.db) == 0


async def test_a_suppressed_address_gets_nothing_and_its_reminder_is_skipped(app, client, store, smtp):
    site = await store.sites.create("Test shop", [SHOP_ORIGIN], settings(abandon_after_minutes=0, steps=ONE_STEP))
    for addr in ("kept@example.com", "Gone@Example.com"):
        s = Shopper(client, site)
        await s.lead(addr)
        await s.cart(MUG)
    await suppressions.add(store.db, ["GONE@example.com"], suppressions.MANUAL, None, time.time())
    summary = await sweep_once(sweep_state(app, smtp.url), now=time.time() + MINUTE)
    assert [m.to for m in smtp.messages] == ["kept@example.com"]
    assert summary["sent"] == 1
    emails = await rows(store, "SELECT to_addr, status, error FROM emails ORDER BY to_addr")
    assert [(e["to_addr"], e["status"], e["error"]) for e in emails] == [
        ("gone@example.com", "skipped", "suppressed"),
        ("kept@example.com", "sent", None),
    ]
    # Skipped for good: taken off the list, the address still gets nothing for this reminder.
    await suppressions.remove(store.db, ["gone@example.com"])
    await sweep_once(sweep_state(app, smtp.url), now=time.time() + 2 * MINUTE)
    assert [m.to for m in smtp.messages] == ["kept@example.com"]


async def test_a_suppression_after_the_claim_stops_the_email_before_it_goes(app, client, store, smtp):
    """Suppressed between claim and send: the check right before sending reads it."""
    from collector.recovery import reminders

    site = await store.sites.create("Test shop", [SHOP_ORIGIN], settings(abandon_after_minutes=0, steps=ONE_STEP))
    s = Shopper(client, site)
    await s.lead("late@example.com")
    await s.cart(MUG)
    from collector.recovery.abandon import mark_abandoned

    now = time.time() + MINUTE
    await mark_abandoned(store.db, site, now)
    jobs, _ = await reminders.claim_due(store.db, store.sites, now, "tok")
    assert len(jobs) == 1
    await suppressions.add(store.db, ["late@example.com"], suppressions.BOUNCE, "test", now)
    assert await reminders.recheck(store.db, jobs[0], now) == reminders.SUPPRESSED


async def test_a_permanent_refusal_of_the_address_suppresses_it(app, client, store, smtp):
    site = await store.sites.create("Test shop", [SHOP_ORIGIN], settings(abandon_after_minutes=0, steps=ONE_STEP))
    s = Shopper(client, site)
    await s.lead("nobody@example.com")
    await s.cart(MUG)
    smtp.handler.refuse_rcpt["nobody@example.com"] = "550 5.1.1 <nobody@example.com>: user unknown"
    summary = await sweep_once(sweep_state(app, smtp.url), now=time.time() + MINUTE)
    assert summary["failed"] == 1 and smtp.messages == []
    assert await suppressions.is_suppressed(store.db, "NOBODY@example.com")
    listed = await suppressions.list_all(store.db)
    assert listed[0]["reason"] == "bounce" and "550" in listed[0]["detail"]
    events = await rows(store, "SELECT provider, kind, site_id FROM mail_events")
    assert [(e["provider"], e["kind"], e["site_id"]) for e in events] == [("smtp", "bounce", site.id)]


async def test_a_permanent_refusal_of_the_message_does_not_suppress(app, client, store, smtp):
    site = await store.sites.create("Test shop", [SHOP_ORIGIN], settings(abandon_after_minutes=0, steps=ONE_STEP))
    s = Shopper(client, site)
    await s.lead("fine@example.com")
    await s.cart(MUG)
    smtp.handler.data_reply = "554 5.7.1 Message content rejected"
    summary = await sweep_once(sweep_state(app, smtp.url), now=time.time() + MINUTE)
    assert summary["failed"] == 1
    assert not await suppressions.is_suppressed(store.db, "fine@example.com")
