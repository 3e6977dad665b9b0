"""A/B tests in real Chromium against `cartback serve`: two visitors get different headlines from one
popup experiment, their leads carry their variants into the stats API and the leads CSV, and the
marketer ends the test from the dashboard, keeping a variant as the site's setting in one step."""

from __future__ import annotations

import csv
import io
import json
import re

import httpx
from playwright.sync_api import expect

from collector.experiments import assign
from tests.browser.conftest import exit_top, local, wait_popup

HEADLINES = {"A": "Wait, your cart!", "B": "Take 10% with you"}
CODES = {"ten": "TEN-OFF", "fifteen": "FIFTEEN-OFF"}
EXPERIMENTS = [
    {
        "name": "hl",
        "kind": "popup",
        "variants": [
            {"name": "A", "weight": 1, "popup": {"headline": HEADLINES["A"]}},
            {"name": "B", "weight": 1, "popup": {"headline": HEADLINES["B"], "button": "Send my code"}},
        ],
    },
    {
        "name": "offer",
        "kind": "discount",
        "variants": [
            {"name": "ten", "weight": 1, "discount_code": CODES["ten"]},
            {"name": "fifteen", "weight": 1, "discount_code": CODES["fifteen"]},
        ],
    },
]
OWNER, PASSWORD = "owner@example.com", "a long enough password"


def expected_variants(vid: str) -> dict[str, str]:
    return {e["name"]: assign(e["name"], vid, [(v["name"], v["weight"]) for v in e["variants"]]) for e in EXPERIMENTS}


def test_two_visitors_get_two_headlines_and_their_leads_carry_their_variants(shop):
    live = shop.collector
    key = shop.create_site(experiments=EXPERIMENTS)["key"]
    url = shop.page_url()

    # Fresh visitors (each a browser context of its own, so a visitor id of its own) until one of each
    # headline variant came; 50/50, so 24 tries all alike would happen once in 8 million runs.
    visitors: dict[str, tuple[str, object]] = {}
    for _ in range(24):
        ctx = shop.context()
        page = shop.open(url, ctx)
        vid = local(page, key, "vid")
        variant = expected_variants(vid)["hl"]
        if variant in visitors:
            ctx.close()
            shop.contexts.remove(ctx)
            continue
        visitors[variant] = (vid, page)
        if len(visitors) == 2:
            break
    assert set(visitors) == {"A", "B"}, "24 visitors all got the same variant"

    emails = {}
    for variant, (vid, page) in sorted(visitors.items()):
        expect_ = expected_variants(vid)
        exit_top(page)
        wait_popup(page)
        popup = page.locator("#cartback-popup")
        # The headline the snippet chose in the browser is the one the collector's assign() gives.
        assert popup.locator("h2").inner_text() == HEADLINES[variant]
        emails[variant] = f"shopper-{variant.lower()}@example.com"
        popup.locator("input[name=email]").fill(emails[variant])
        popup.locator("button[type=submit]").click()
        assert popup.locator("[data-cartback-code]").inner_text() == CODES[expect_["offer"]]
    assert len({page.locator("#cartback-popup h2").inner_text() for _, page in visitors.values()}) == 2

    leads = shop.wait_rows("SELECT * FROM leads", count=2)
    shown = shop.wait_rows("SELECT * FROM events WHERE type = 'shown'", count=2)
    assert len(leads) == 2 and len(shown) == 2
    by_email = {r["email"]: r for r in leads}
    for variant, (vid, _) in visitors.items():
        lead = by_email[emails[variant]]
        assert lead["visitor_id"] == vid and json.loads(lead["variants"]) == expected_variants(vid)
        assert lead["discount_code"] == CODES[expected_variants(vid)["offer"]]
    # Each impression carries the variants too.
    assert sorted(json.loads(e["data"])["variants"]["hl"] for e in shown) == ["A", "B"]

    # The stats API: per experiment and variant, shown, converted, rate.
    token = live.cli("tokens", "create", "--name", "ab-test").stdout.strip().splitlines()[-1]
    auth = {"Authorization": f"Bearer {token}"}
    stats = httpx.get(f"{live.url}/api/v1/sites/{key}/stats", headers=auth, timeout=10)
    assert stats.status_code == 200, stats.text
    variants = stats.json()["variants"]
    assert variants["hl"]["A"] == {"shown": 1, "converted": 1, "rate": 1.0}
    assert variants["hl"]["B"] == {"shown": 1, "converted": 1, "rate": 1.0}
    # The discount test's exposures are the leads given each offer (no order yet: no conversion).
    offers = [expected_variants(vid)["offer"] for vid, _ in visitors.values()]
    for name in CODES:
        assert variants["offer"][name]["shown"] == offers.count(name)
        assert variants["offer"][name]["converted"] == 0

    # The leads CSV (API and CLI): the variant column names each experiment and variant.
    text = httpx.get(f"{live.url}/api/v1/sites/{key}/leads.csv", headers=auth, timeout=10).text
    rows = list(csv.DictReader(io.StringIO(text)))
    assert {r["email"]: r["variant"] for r in rows} == {
        emails[v]: f"hl={v};offer={expected_variants(vid)['offer']}" for v, (vid, _) in visitors.items()
    }
    # (the CLI helper reads text mode, where the CSV's CRLF line ends read as LF)
    assert live.cli("leads", "export", "--site", key).stdout == text.replace("\r\n", "\n")

    # The marketer ends the test from the dashboard and keeps B: one click.
    live.cli("users", "create", "--email", OWNER, "--password-stdin", input=PASSWORD + "\n")
    admin = shop.context().new_page()
    admin.goto(f"{live.url}/admin/sites/{key}/experiments")
    admin.fill("#email", OWNER)
    admin.fill("#password", PASSWORD)
    admin.click("button[type=submit]")
    expect(admin).to_have_url(f"{live.url}/admin/sites/{key}/experiments")
    section = admin.locator('section[data-experiment="hl"]')
    for variant in ("A", "B"):
        row = section.locator(f'tr[data-variant="{variant}"]')
        expect(row.locator('[data-col="exposures"]')).to_have_text("1")
        expect(row.locator('[data-col="conversions"]')).to_have_text("1")
    expect(section.locator("[data-progress]")).to_contain_text("499 more exposures on A")
    section.get_by_role("button", name="End the test and keep B").click()
    expect(admin).to_have_url(re.compile(r"/experiments\?ended=hl&kept=B$"))
    expect(admin.locator("[data-ended=hl]")).to_contain_text("B is now the site's setting")
    expect(admin.locator('section[data-experiment="hl"] button')).to_have_count(0)
    settings = json.loads(live.query("SELECT settings FROM sites WHERE key = ?", key)[0]["settings"])
    assert settings["popup"]["headline"] == HEADLINES["B"] and settings["popup"]["button"] == "Send my code"
    assert [e["enabled"] for e in settings["experiments"]] == [False, True]
