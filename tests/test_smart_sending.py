"""Smart sending: a second cart's reminder within the window is skipped with its reason; with 0 it goes."""

from __future__ import annotations

import time

import pytest

from collector.recovery.sweep import sweep_once
from tests.conftest import SHOP_ORIGIN
from tests.dashboard_support import login
from tests.recovery_support import MINUTE, MUG, Shopper, rows, settings, sweep_state

HOUR = 60 * MINUTE
TWO_STEPS = [
    {"delay_minutes": 0, "subject": "You left something in your cart"},
    {"delay_minutes": 120, "subject": "Still there?"},
]


async def two_carts_of_one_address(app, client, store, smtp, hours: float | None):
    extra = {} if hours is None else {"smart_sending_hours": hours}
    site = await store.sites.create(
        "Test shop", [SHOP_ORIGIN], settings(abandon_after_minutes=0, steps=TWO_STEPS, **extra)
    )
    state = sweep_state(app, smtp.url)
    t0 = time.time()
    laptop = Shopper(client, site)
    await laptop.lead("ann@example.com")
    await laptop.cart(MUG)
    await sweep_once(state, now=t0 + MINUTE)
    assert len(smtp.messages) == 1
    # A second cart of the same address from another browser: a sequence of its own.
    other = Shopper(client, site)
    await other.lead("ann@example.com")
    await other.cart({**MUG, "quantity": 3})
    return site, state, t0


async def test_a_second_carts_reminder_within_the_window_is_skipped_with_its_reason(app, client, store, smtp):
    site, state, t0 = await two_carts_of_one_address(app, client, store, smtp, None)  # default 16 h
    await sweep_once(state, now=t0 + 2 * MINUTE)
    await sweep_once(state, now=t0 + 3 * HOUR)
    assert len(smtp.messages) == 1
    second = await rows(store, "SELECT id FROM carts ORDER BY id DESC LIMIT 1")
    skipped = await rows(
        store, "SELECT step, status, error FROM emails WHERE cart_id = ? ORDER BY step", second[0]["id"]
    )
    assert [e["status"] for e in skipped] == ["skipped", "skipped"]
    assert all(e["error"].startswith("smart sending: a reminder of another cart went to this address") for e in skipped)
    # The skip is shown on the cart's page with its reason.
    await login(client, store)
    r = await client.get(f"/admin/sites/{site.key}/carts")
    assert r.status_code == 200, r.text
    assert "skipped" in r.text and "smart sending: a reminder of another cart" in r.text


async def test_the_steps_of_one_sequence_never_skip_each_other(app, client, store, smtp):
    site = await store.sites.create("Test shop", [SHOP_ORIGIN], settings(abandon_after_minutes=0, steps=TWO_STEPS))
    state = sweep_state(app, smtp.url)
    t0 = time.time()
    s = Shopper(client, site)
    await s.lead("bea@example.com")
    await s.cart(MUG)
    await sweep_once(state, now=t0 + MINUTE)
    await sweep_once(state, now=t0 + 3 * HOUR)
    assert [m.message["Subject"] for m in smtp.messages] == ["You left something in your cart", "Still there?"]


async def test_with_0_the_second_carts_reminder_goes(app, client, store, smtp):
    _, state, t0 = await two_carts_of_one_address(app, client, store, smtp, 0)
    await sweep_once(state, now=t0 + 2 * MINUTE)
    assert [m.message["Subject"] for m in smtp.messages] == ["You left something in your cart"] * 2
    assert await rows(store, "SELECT id FROM emails WHERE status = 'skipped'") == []


@pytest.mark.parametrize("hours", [1])
async def test_after_the_window_the_second_carts_reminder_goes(app, client, store, smtp, hours):
    _, state, t0 = await two_carts_of_one_address(app, client, store, smtp, hours)
    await sweep_once(state, now=t0 + 2 * HOUR)
    assert len([m for m in smtp.messages if m.message["Subject"] == "You left something in your cart"]) == 2
