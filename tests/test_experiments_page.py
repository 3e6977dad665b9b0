"""The experiments page shows what collector.experiment_results computes (the stats API's code path),
per kind; and ending a test from it keeps the chosen variant as the site's setting in one step."""

from __future__ import annotations

import html
import json
import re
import time
from typing import Any

from collector.dashboard.templating import fmt_pct as _fmt_pct
from collector.experiments.results import experiment_results
from collector.money import format_money as _fmt_money
from collector.schemas import SiteSettings
from collector.store import variants
from collector.tag import public_config
from tests.dashboard_support import ingest, login

EXPERIMENTS = [
    {
        "name": "hl",
        "kind": "popup",
        "min_sample": 5,
        "variants": [
            {"name": "A", "popup": {"headline": "Wait!"}},
            {"name": "B", "popup": {"headline": "Your cart misses you", "button": "Keep it"}},
        ],
    },
    {
        "name": "offer",
        "kind": "discount",
        "variants": [{"name": "ten", "discount_code": "TEN"}, {"name": "fifteen", "discount_code": "FIFTEEN"}],
    },
    {
        "name": "subj",
        "kind": "subject",
        "step": 0,
        "variants": [{"name": "plain", "subject": "Your cart"}, {"name": "urgent", "subject": "Last chance!"}],
    },
]


async def make_data(client: Any, store: Any, site: Any) -> None:
    """hl: A shown to 10 visitors (1 lead), B to 10 (9 leads). offer: the leads' codes, 3 recovered orders.
    subj: 4 reminders with plain (2 opened, 1 clicked), 3 with urgent (3 opened, 2 clicked)."""
    for i in range(20):
        var = "A" if i < 10 else "B"
        offer = "ten" if i % 2 else "fifteen"
        await ingest(
            client,
            site,
            "event",
            {
                "id": f"shown-{i:04d}",
                "vid": f"visitor-{i:04d}",
                "type": "shown",
                "variants": {"hl": var, "offer": offer},
            },
        )
        if i == 0 or i >= 11:
            await ingest(
                client,
                site,
                "lead",
                {
                    "id": f"lead-{i:06d}",
                    "vid": f"visitor-{i:04d}",
                    "email": f"s{i}@example.com",
                    "variants": {"hl": var, "offer": offer},
                },
            )
    await ingest(
        client,
        site,
        "cart",
        {
            "id": "cart-000001",
            "vid": "visitor-0000",
            "currency": "EUR",
            "items": [{"id": "mug", "name": "Mug", "price": 14, "quantity": 1}],
        },
    )
    now = time.time()

    async def op(tx: Any) -> None:
        cart = await tx.fetchone("SELECT id FROM carts")
        emails = [
            ("plain", now, now),
            ("plain", now, None),
            ("plain", None, None),
            ("plain", None, None),
            ("urgent", now, now),
            ("urgent", now, now),
            ("urgent", now, None),
        ]
        for n, (var, opened, clicked) in enumerate(emails):
            row = await tx.fetchone(
                "INSERT INTO emails (site_id, cart_id, step, to_addr, subject, status, due_at, sent_at, opened_at, clicked_at,"
                " variants, created_at) VALUES (?, ?, ?, ?, ?, 'sent', ?, ?, ?, ?, ?, ?) RETURNING id",
                site.id,
                cart["id"],
                n,
                f"m{n}@example.com",
                var,
                now,
                now,
                opened,
                clicked,
                json.dumps({"subj": var}),
                now,
            )
            # What the reminder's claim records beside the email (store/emails.py, take).
            await variants.record_email(tx, site.id, row["id"], {"subj": var})
        # Recovered orders of three leads: s11 (ten), s12 (fifteen), s13 (ten).
        for n, (email, value) in enumerate(
            [("s11@example.com", 40.0), ("s12@example.com", 25.5), ("s13@example.com", 10.0)]
        ):
            await tx.execute(
                "INSERT INTO orders (site_id, order_id, value, currency, email, recovered, created_at)"
                " VALUES (?, ?, ?, 'EUR', ?, 1, ?)",
                site.id,
                f"o-{n}",
                value,
                email,
                now,
            )

    await store.db.write(op)


def section(page: str, name: str) -> str:
    m = re.search(rf'<section class="card experiment" data-experiment="{name}">(.*?)</section>', page, re.S)
    assert m, f"no section for {name}"
    return m.group(1)


def cells(sec: str, variant: str) -> dict[str, str]:
    row = re.search(rf'<tr data-variant="{variant}"[^>]*>(.*?)</tr>', sec, re.S)
    assert row, f"no row for {variant}"
    out = {}
    for col, value in re.findall(r'<td class="num" data-col="(\w+)">(.*?)</td>', row.group(1), re.S):
        out[col] = html.unescape(re.sub(r"<[^>]+>", "", value)).split("(")[0].strip()
    return out


async def test_the_page_shows_the_numbers_of_experiment_results(client, store, site, token):
    site = await store.sites.update(site.key, settings=SiteSettings.model_validate({"experiments": EXPERIMENTS}))
    await make_data(client, store, site)
    await login(client, store)
    page = (await client.get(f"/admin/sites/{site.key}/experiments")).text
    results = {r["name"]: r for r in await experiment_results(store.db, site.settings, site.id)}

    # The counts that the issue asks for, per kind.
    hl, offer, subj = results["hl"], results["offer"], results["subj"]
    assert [(v["exposures"], v["conversions"]) for v in hl["variants"]] == [(10, 1), (10, 9)]
    assert [(v["exposures"], v["conversions"], v["revenue"]) for v in offer["variants"]] == [(5, 2, 50.0), (5, 1, 25.5)]
    assert [(v["exposures"], v["conversions"], v["clicked"]) for v in subj["variants"]] == [(4, 2, 1), (3, 3, 2)]
    assert hl["winner"] == "B" and offer["winner"] is None and subj["winner"] is None

    # The page shows exactly those numbers.
    for name, r in results.items():
        sec = section(page, name)
        assert (
            html.unescape(re.search(r"<p [^>]*data-progress>(.*?)</p>", sec, re.S).group(1)) == r["progress"]["message"]
        )
        for v in r["variants"]:
            shown = cells(sec, v["name"])
            assert shown["exposures"] == str(v["exposures"]) and shown["conversions"] == str(v["conversions"]), (
                name,
                v,
            )
            assert shown["rate"] == _fmt_pct(v["rate"]) and shown["prob_best"] == _fmt_pct(v["prob_best"])
            if v["ci_low"] is not None:
                assert f"({_fmt_pct(v['ci_low'])} – {_fmt_pct(v['ci_high'])})" in html.unescape(sec)
            if v["lift"] is not None:
                assert shown["lift"] == f"{v['lift'] * 100:+.1f}%"
            if r["kind"] == "subject":
                assert shown["clicked"] == str(v["clicked"]) and shown["click_rate"] == _fmt_pct(v["click_rate"])
            if r["kind"] == "discount":
                assert shown["revenue"] == _fmt_money(v["revenue"])
    hl_sec = section(page, "hl")
    assert '<tr data-variant="B" class="winner">' in hl_sec and "<strong>winner</strong>" in hl_sec
    assert "Opened" in section(page, "subj") and "Clicked" in section(page, "subj")
    assert "Recovered orders" in section(page, "offer") and "Revenue" in section(page, "offer")
    # The winner's button stands out; there is one per variant.
    assert re.search(r'<button type="submit" class="winner" data-keep="B">End the test and keep B</button>', hl_sec)
    assert 'data-keep="A">End the test and keep A</button>' in hl_sec
    assert "No winner yet" in section(page, "subj") and "No winner yet" not in hl_sec

    # The stats API's `variants` are the same counts.
    api = (await client.get(f"/api/v1/sites/{site.key}/stats", headers={"Authorization": f"Bearer {token}"})).json()
    for name, r in results.items():
        for v in r["variants"]:
            assert api["variants"][name][v["name"]]["shown"] == v["exposures"]
            assert api["variants"][name][v["name"]]["converted"] == v["conversions"]
    assert api["variants"]["subj"]["urgent"] == {"shown": 3, "converted": 3, "clicked": 2, "rate": 1.0}
    assert api["variants"]["offer"]["ten"]["revenue"] == 50.0

    # A date range like the overview's: a month long ago holds nothing.
    old = (await client.get(f"/admin/sites/{site.key}/experiments?since=2020-01-01&until=2020-01-31")).text
    assert "2020-01-01 to 2020-01-31" in old
    assert (
        cells(section(old, "hl"), "B")["exposures"] == "0" and cells(section(old, "subj"), "plain")["exposures"] == "0"
    )
    assert "All time." in page


async def test_ending_a_test_keeps_the_variant_as_the_sites_setting_in_one_step(client, store, site):
    site = await store.sites.update(site.key, settings=SiteSettings.model_validate({"experiments": EXPERIMENTS}))
    await make_data(client, store, site)
    csrf = await login(client, store)
    url = f"/admin/sites/{site.key}/experiments/hl/end"

    # Without the session's CSRF token nothing changes.
    r = await client.post(url, data={"keep": "B"})
    assert r.status_code == 403
    r = await client.post(url, data={"keep": "B", "csrf": "forged"})
    assert r.status_code == 403
    assert (await store.sites.get(site.key, fresh=True)).raw_settings == site.raw_settings

    # A variant that is not there (the settings changed since the page was loaded): refused, nothing changes.
    r = await client.post(url, data={"keep": "Z", "csrf": csrf})
    assert r.status_code == 409 and "Nothing changed" in r.text and "no variant" in r.text
    r = await client.post(f"/admin/sites/{site.key}/experiments/gone/end", data={"keep": "A", "csrf": csrf})
    assert r.status_code == 409
    assert (await store.sites.get(site.key, fresh=True)).raw_settings == site.raw_settings

    # The button: ends the test, B's popup becomes the popup, every shopper gets it.
    page = (await client.get(f"/admin/sites/{site.key}/experiments")).text
    assert re.search(rf'action="{url}".*?name="keep" value="B"', section(page, "hl"), re.S)
    r = await client.post(url, data={"keep": "B", "csrf": csrf})
    assert r.status_code == 303 and r.headers["location"] == f"/admin/sites/{site.key}/experiments?ended=hl&kept=B"
    saved = await store.sites.get(site.key, fresh=True)
    assert saved.settings.popup.headline == "Your cart misses you" and saved.settings.popup.button == "Keep it"
    assert [e.enabled for e in saved.settings.experiments] == [False, True, True]
    assert [e["name"] for e in public_config(saved, "http://collector.test")["experiments"]] == ["offer"]
    done = (await client.get(r.headers["location"])).text
    assert 'data-ended="hl"' in done and "has ended" in done and "B is now the site's setting" in done
    hl = section(done, "hl")
    assert "ended" in hl and "End the test" not in hl  # no buttons on an ended test
    assert cells(hl, "B")["exposures"] == "10"  # its results stay readable

    # A subject test: the kept subject becomes the reminder step's subject.
    r = await client.post(f"/admin/sites/{site.key}/experiments/subj/end", data={"keep": "urgent", "csrf": csrf})
    assert r.status_code == 303
    saved = await store.sites.get(site.key, fresh=True)
    assert saved.settings.recovery.steps[0].subject == "Last chance!"
    assert saved.settings.popup.headline == "Your cart misses you"  # the earlier end stays
    assert "the subject of reminder 1" in (await client.get(r.headers["location"])).text


async def test_a_test_removed_from_the_settings_still_shows_its_counts(client, store, site):
    site = await store.sites.update(site.key, settings=SiteSettings.model_validate({"experiments": EXPERIMENTS[:1]}))
    await ingest(
        client,
        site,
        "event",
        {"id": "shown-0001", "vid": "visitor-0001", "type": "shown", "variants": {"old-test": "x", "hl": "C"}},
    )
    await login(client, store)
    page = (await client.get(f"/admin/sites/{site.key}/experiments")).text
    assert "No longer in the settings" in section(page, "old-test") and "<code>x</code>: 1 shown" in page
    assert "Also seen, no longer in the settings: C" in section(page, "hl")


def test_duplicate_names_are_refused():
    import pytest
    from pydantic import ValidationError

    variants = [{"name": "A"}, {"name": "A"}]
    with pytest.raises(ValidationError, match="two variants are named 'A'"):
        SiteSettings.model_validate({"experiments": [{"name": "t", "kind": "popup", "variants": variants}]})
    with pytest.raises(ValidationError, match="two experiments are named 'hl'"):
        SiteSettings.model_validate({"experiments": [EXPERIMENTS[0], EXPERIMENTS[0]]})
