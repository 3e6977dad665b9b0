"""The shop's name cannot be borrowed (issue 13): item links and images in reminders only to the
site's origins, an hourly cap on new sequences with a dashboard warning, `identify` following
popup.require_consent, and the share of reminders that went to addresses without consent."""

from __future__ import annotations

import time

from collector.recovery.sweep import sweep_once
from collector.schemas import SiteSettings
from tests.conftest import SHOP_ORIGIN
from tests.dashboard_support import login
from tests.recovery_support import MUG, Shopper, rows, settings, sweep_state


def with_(base: SiteSettings, **changes) -> SiteSettings:
    doc = base.dump()
    for path, value in changes.items():
        section, key = path.split("__")
        doc[section][key] = value
    return SiteSettings.model_validate(doc)


async def test_a_foreign_item_link_or_image_is_not_in_the_email(app, client, store, smtp):
    site = await store.sites.create("Shop", [SHOP_ORIGIN], settings(abandon_after_minutes=0))
    mallory = Shopper(client, site)
    await mallory.identify("victim@example.com")
    await mallory.cart(
        {
            **MUG,
            "name": "Your parcel is held",
            "url": "https://evil.example/login",
            "image": "https://evil.example/x.png",
        },
        {**MUG, "id": "own", "name": "Own mug", "url": f"{SHOP_ORIGIN}:443/p/mug", "image": f"{SHOP_ORIGIN}/mug.png"},
    )
    await sweep_once(sweep_state(app, smtp.url), now=time.time() + 1)
    [msg] = smtp.messages
    html, text = msg.part("html"), msg.part("plain")
    assert "evil.example" not in html and "evil.example" not in text
    assert f"{SHOP_ORIGIN}:443/p/mug" in html and f"{SHOP_ORIGIN}/mug.png" in html
    # The foreign link became the recovery link.
    assert html.count("http://collector.test/r/") >= 2


async def test_the_hourly_cap_on_new_sequences_and_its_dashboard_warning(app, client, store, smtp):
    site = await store.sites.create(
        "Shop", [SHOP_ORIGIN], with_(settings(abandon_after_minutes=0), recovery__max_new_sequences_per_hour=2)
    )
    for i in range(4):
        s = Shopper(client, site)
        await s.identify(f"victim{i}@example.com")
        await s.cart(MUG)
    await sweep_once(sweep_state(app, smtp.url), now=time.time() + 1)
    assert len(smtp.messages) == 2
    assert len(await rows(store, "SELECT id FROM emails WHERE step = 0")) == 2
    assert len(await rows(store, "SELECT id FROM carts WHERE status = 'abandoned'")) == 4
    await login(client, store)
    page = await client.get(f"/admin/sites/{site.key}")
    assert page.status_code == 200 and "Hourly cap reached" in page.text


async def test_identify_follows_require_consent_and_the_dashboard_shows_the_unconsented_share(
    app, client, store, smtp, token
):
    strict = await store.sites.create(
        "Strict", [SHOP_ORIGIN], with_(settings(abandon_after_minutes=0), popup__require_consent=True)
    )
    quiet = Shopper(client, strict)
    await quiet.identify("noconsent@example.com")
    await quiet.cart(MUG)
    agreed = Shopper(client, strict)
    await agreed.send("identify", email="yes@example.com", consent=True)
    await agreed.cart(MUG)
    await sweep_once(sweep_state(app, smtp.url), now=time.time() + 1)
    assert [m.to for m in smtp.messages] == ["yes@example.com"]

    loose = await store.sites.create("Loose", ["https://loose.test"], settings(abandon_after_minutes=0))
    for i, consent in enumerate([False, False, True, False]):
        r = await client.post(
            f"/c/{loose.key}/identify",
            json={
                "id": f"loose-identify-{i:04d}",
                "vid": f"loose-visitor-{i:04d}",
                "email": f"l{i}@example.com",
                "consent": consent,
            },
            headers={"Origin": "https://loose.test"},
        )
        assert r.status_code == 200
        r = await client.post(
            f"/c/{loose.key}/cart",
            json={"id": f"loose-cart-{i:04d}", "vid": f"loose-visitor-{i:04d}", "items": [MUG], "currency": "EUR"},
            headers={"Origin": "https://loose.test"},
        )
        assert r.status_code == 200
    await sweep_once(sweep_state(app, smtp.url), now=time.time() + 2)
    r = await client.get(f"/api/v1/sites/{loose.key}/stats", headers={"Authorization": f"Bearer {token}"})
    stats = r.json()
    assert stats["emails_sent"] == 4 and stats["reminders_unconsented"] == 3 and stats["unconsented_share"] == 0.75
    await login(client, store)
    page = await client.get(f"/admin/sites/{loose.key}")
    assert (
        "Reminders to addresses without consent" in page.text and 'data-metric="reminders_unconsented">3<' in page.text
    )
