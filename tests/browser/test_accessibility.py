"""axe-core (the npm package, run in real Chromium) finds no serious or critical violation in the popup,
at desktop and phone widths and in two locales, nor on any dashboard page."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.sync_api import Page

from tests.browser.conftest import ready, wait_popup
from tests.conftest import ROOT

AXE = Path(ROOT) / "node_modules" / "axe-core" / "axe.min.js"
OWNER = "owner@example.com"
PASSWORD = "a long enough password"


def serious_violations(page: Page) -> list[dict[str, Any]]:
    if not AXE.exists():
        pytest.fail(f"axe-core is missing ({AXE}): run `npm ci` (make test does)")
    page.add_script_tag(path=str(AXE))
    found = page.evaluate(
        """async () => (await axe.run(document, {resultTypes: ['violations']})).violations.map(v => ({
            id: v.id, impact: v.impact, help: v.help,
            nodes: v.nodes.slice(0, 5).map(n => [n.target.join(' '), n.failureSummary])}))"""
    )
    return [v for v in found if v["impact"] in ("serious", "critical")]


def storefront_page(shop, lang: str) -> str:
    shop.n += 1
    html = f"""<!doctype html><html lang="{lang}"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1"><title>Boutique</title></head>
<body><main><h1>Boutique</h1><p>Tasse</p></main>{shop.site["snippet"]}</body></html>"""
    return shop.storefront.add(f"/{shop.site['key']}/a{shop.n}", html)


@pytest.mark.parametrize("locale", ["en", "de"])
def test_the_popup_has_no_serious_axe_violation_on_desktop_and_phone(shop, locale):
    shop.create_site({"require_consent": True}, locale=locale)
    url = storefront_page(shop, locale)
    for ctx in (shop.context(), shop.mobile_context()):
        page = ctx.new_page()
        page.goto(url)
        ready(page)
        page.evaluate("() => cartback('show')")
        wait_popup(page)
        assert serious_violations(page) == [], json.dumps(serious_violations(page), indent=1)
        # After a lead: the code, the copy button.
        page.locator("#cartback-popup input[type=email]").fill("ann@example.com")
        page.locator("#cartback-popup input[name=consent]").check()
        page.locator("#cartback-popup button[type=submit]").click()
        page.wait_for_selector("#cartback-popup [data-cartback-code]")
        assert serious_violations(page) == []


def test_every_dashboard_page_has_no_serious_axe_violation(live_collector, browser):
    live = live_collector
    live.start()
    live.cli("users", "create", "--email", OWNER, "--password-stdin", input=PASSWORD + "\n")
    site = live.create_site(
        ["https://shop.test"],
        settings={
            "recovery": {"abandon_after_minutes": 0, "from": "Shop <shop@example.com>"},
            "experiments": [{"name": "hl", "kind": "popup", "variants": [{"name": "A"}, {"name": "B"}]}],
            "webhooks": [{"url": "https://hooks.example/x"}],
        },
    )
    key = site["key"]
    headers = {"Origin": "https://shop.test", "Content-Type": "text/plain"}
    for kind, body in [
        ("lead", {"id": "lead-000001", "vid": "visitor-ann", "email": "ann@example.com", "consent": True}),
        (
            "cart",
            {
                "id": "cart-000001",
                "vid": "visitor-ann",
                "currency": "EUR",
                "items": [{"id": "m", "name": "Mug", "price": 14, "quantity": 2}],
            },
        ),
        ("event", {"id": "evnt-000001", "vid": "visitor-ann", "type": "reason", "reason": "Just browsing"}),
    ]:
        assert httpx.post(f"{live.url}/c/{key}/{kind}", content=json.dumps(body), headers=headers).status_code == 200
    live.cli("send-due")

    if True:
        # bypass_csp: the dashboard's CSP refuses inline scripts, and axe is injected as one.
        ctx = browser.new_context(bypass_csp=True, viewport={"width": 1280, "height": 900})
        page = ctx.new_page()
        page.goto(f"{live.url}/admin/login")
        pages: dict[str, list[dict[str, Any]]] = {"login": serious_violations(page)}
        page.fill("input[name=email]", OWNER)
        page.fill("input[name=password]", PASSWORD)
        page.click("button[type=submit]")
        page.wait_for_url(f"{live.url}/admin")
        mail_id = live.query("SELECT id FROM mailbox ORDER BY id LIMIT 1")[0]["id"]
        for path in [
            "/admin",
            f"/admin/sites/{key}",
            f"/admin/sites/{key}/carts",
            f"/admin/sites/{key}/leads",
            f"/admin/sites/{key}/experiments",
            f"/admin/sites/{key}/webhooks",
            f"/admin/sites/{key}/settings",
            f"/admin/sites/{key}/install",
            "/admin/mailbox",
            f"/admin/mailbox/{mail_id}",
        ]:
            assert page.goto(live.url + path).status == 200, path
            pages[path] = serious_violations(page)
        ctx.close()
    bad = {path: v for path, v in pages.items() if v}
    assert bad == {}, json.dumps(bad, indent=1)
