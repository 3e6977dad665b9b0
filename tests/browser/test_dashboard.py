"""The dashboard in real Chromium against a live collector: log in, read the funnel of the data
this test made, download the leads CSV, make a settings mistake, and see shopper text as text."""

from __future__ import annotations

import asyncio
import csv
import io
import json
import os
import re
import shutil
import sqlite3
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from playwright.sync_api import Browser, Page, expect, sync_playwright

from collector.exports import lead_row

CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
SHOP_ORIGIN = "https://shop.test"
OWNER = "owner@example.com"
PASSWORD = "a long enough password"
XSS = "<img src=x onerror=alert(1)>"
REASON_XSS = "<b onmouseover=alert(2)>bold</b>"


@pytest.fixture(scope="module")
def dashboard_browser(request: pytest.FixtureRequest) -> Iterator[Browser]:
    """Debian's Chromium, for this module only: a sync Playwright left running for the whole
    session keeps an event loop in the main thread and breaks the async tests that follow."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        pass
    else:  # another module's sync Playwright is live in this thread: share its browser
        yield request.getfixturevalue("browser")
        return
    path = os.environ.get("CARTBACK_TEST_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
    if not os.path.exists(path):
        pytest.fail(f"Debian's chromium is missing ({path}): the dashboard's browser test cannot run")
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=path, headless=True, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


def post(live: Any, key: str, kind: str, body: dict[str, Any]) -> None:
    r = httpx.post(
        f"{live.url}/c/{key}/{kind}",
        content=json.dumps(body),
        headers={"Origin": SHOP_ORIGIN, "Content-Type": "text/plain"},
        timeout=10,
    )
    assert r.status_code == 200, r.text


def make_data(live: Any, key: str) -> None:
    """3 carts (one with a hostile item name), 4 popups shown, 2 reasons, 2 leads; the sweep marks
    the 2 carts with an address abandoned and sends each a reminder; Ann's mail client is a privacy
    proxy (not counted as an open); she clicks and buys: 1 recovered order of 28.00."""
    item = {"id": "x1", "name": XSS, "price": 10, "quantity": 1}
    post(live, key, "cart", {"id": "cart-000001", "vid": "visitor-ann", "currency": "EUR", "items": [item]})
    post(
        live,
        key,
        "cart",
        {
            "id": "cart-000002",
            "vid": "visitor-bob",
            "currency": "EUR",
            "items": [{"id": "mug", "name": "Enamel mug", "price": 14, "quantity": 2}],
        },
    )
    post(
        live,
        key,
        "cart",
        {
            "id": "cart-000003",
            "vid": "visitor-cid",
            "currency": "EUR",
            "items": [{"id": "tee", "name": "Organic tee", "price": 29, "quantity": 1}],
        },
    )
    for i, vid in enumerate(["visitor-ann", "visitor-bob", "visitor-cid", "visitor-dan"]):
        post(live, key, "event", {"id": f"shown-{i:04d}", "vid": vid, "type": "shown"})
    post(live, key, "event", {"id": "reason-0001", "vid": "visitor-cid", "type": "reason", "reason": "Shipping costs"})
    post(live, key, "event", {"id": "reason-0002", "vid": "visitor-dan", "type": "reason", "reason": REASON_XSS})
    post(
        live,
        key,
        "lead",
        {
            "id": "lead-000001",
            "vid": "visitor-ann",
            "email": "ann@example.com",
            "consent": True,
            "discount_code": "SAVE10",
        },
    )
    post(live, key, "lead", {"id": "lead-000002", "vid": "visitor-bob", "email": "=bob@example.com", "consent": False})
    out = live.cli("send-due").stdout
    assert out.strip(), "send-due printed no summary"
    mail = live.query("SELECT html FROM mailbox WHERE to_addr = 'ann@example.com'")
    assert len(mail) == 1
    html = mail[0]["html"]
    pixel = re.search(r'src="(http://127\.0\.0\.1:\d+/o/[^"]+)"', html).group(1)
    link = re.search(r'href="(http://127\.0\.0\.1:\d+/r/[^"]+)"', html).group(1)
    assert httpx.get(pixel.replace("&amp;", "&"), headers={"User-Agent": "Mozilla/5.0"}).status_code == 200
    # Ann reads it an hour later, in her browser (a fetch seconds after sending, or by an HTTP
    # library, is a link scanner's and no click).
    with sqlite3.connect(live.db_path, timeout=10) as db:
        db.execute("UPDATE emails SET sent_at = sent_at - 3600")
    browser_ua = {"User-Agent": "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0"}
    assert httpx.get(link.replace("&amp;", "&"), headers=browser_ua, follow_redirects=False).status_code == 303
    post(
        live,
        key,
        "purchase",
        {"id": "purchase-0001", "vid": "visitor-ann", "order_id": "o-1001", "value": 28, "currency": "EUR"},
    )


def stored_funnel(live: Any) -> dict[str, int]:
    one = lambda sql: live.query(sql)[0]["n"]  # noqa: E731
    return {
        "carts": one("SELECT COUNT(*) AS n FROM carts"),
        "abandoned": one("SELECT COUNT(*) AS n FROM carts WHERE abandoned_at IS NOT NULL"),
        "popup_shown": one("SELECT COUNT(*) AS n FROM events WHERE type = 'shown'"),
        "leads": one("SELECT COUNT(*) AS n FROM leads"),
        "emails_sent": one("SELECT COUNT(*) AS n FROM emails WHERE status = 'sent'"),
        "emails_opened": one("SELECT COUNT(*) AS n FROM emails WHERE opened_at IS NOT NULL"),
        "emails_clicked": one("SELECT COUNT(*) AS n FROM emails WHERE clicked_at IS NOT NULL"),
        "recovered_orders": one("SELECT COUNT(*) AS n FROM orders WHERE recovered = 1"),
    }


def metric(page: Page, key: str) -> str:
    return (page.locator(f'[data-metric="{key}"]').text_content() or "").strip()


def test_the_dashboard_in_chromium(live_collector: Any, dashboard_browser: Browser) -> None:
    live, browser = live_collector, dashboard_browser
    site = live.create_site(
        [SHOP_ORIGIN],
        settings={
            "recovery": {
                "abandon_after_minutes": 0,
                "cart_url": "https://shop.test/cart",
                "steps": [
                    {"delay_minutes": 0, "subject": "You left something"},
                    {"delay_minutes": 60, "subject": "Still there?"},
                ],
            }
        },
        name="Chromium shop",
    )
    key = site["key"]
    live.cli("users", "create", "--email", OWNER, "--password-stdin", input=PASSWORD + "\n")
    make_data(live, key)
    expected = {
        "carts": 3,
        "abandoned": 2,
        "popup_shown": 4,
        "leads": 2,
        "emails_sent": 2,
        "emails_opened": 0,
        "emails_clicked": 1,
        "recovered_orders": 1,
    }
    assert stored_funnel(live) == expected

    ctx = browser.new_context(accept_downloads=True, viewport={"width": 1200, "height": 900})
    ctx.set_default_timeout(10_000)
    ctx.grant_permissions(["clipboard-read", "clipboard-write"], origin=live.url)
    dialogs: list[str] = []
    problems: list[str] = []
    page = ctx.new_page()
    page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
    page.on("pageerror", lambda exc: problems.append(f"page error: {exc}"))
    page.on("console", lambda m: problems.append(f"console: {m.text}") if m.type == "error" else None)
    page.on("response", lambda r: problems.append(f"HTTP {r.status} {r.url}") if r.status >= 400 else None)
    try:
        # The dashboard sends a stranger to the login.
        page.goto(f"{live.url}/admin/sites/{key}")
        expect(page).to_have_url(re.compile(r"/admin/login\?next="))
        page.fill("#email", OWNER)
        page.fill("#password", "not the password")
        page.click("button[type=submit]")
        expect(page.locator("#login-error")).to_contain_text("Wrong email or password")
        page.fill("#password", PASSWORD)
        page.click("button[type=submit]")
        # Back where it was going: the site's overview.
        expect(page).to_have_url(f"{live.url}/admin/sites/{key}")

        # The funnel: the numbers of the data this test made, as stored.
        for name, value in expected.items():
            assert metric(page, name) == str(value), name
        assert metric(page, "recovered_revenue") == "28.00"
        assert metric(page, "proxy_opens") == "1"
        expect(page.locator('[data-rate="abandoned"]')).to_have_text("66.7%")
        expect(page.locator('[data-rate="leads"]')).to_have_text("50.0%")
        expect(page.locator('[data-rate="recovered_orders"]')).to_have_text("50.0%")
        expect(page.locator("svg.chart rect.rev")).not_to_have_count(0)
        # The reasons, with a hostile one shown as text.
        expect(page.locator("table.reasons td", has_text=REASON_XSS)).to_have_count(1)
        assert page.locator("table.reasons b").count() == 0
        page.locator("summary", has_text="How opens are counted").click()
        expect(page.get_by_text("Apple Mail Privacy Protection")).to_be_visible()

        # The sites page: the exact tag, and its copy button.
        page.click("header nav >> text=Sites")
        tag = page.locator(f"#tag-{key}")
        assert tag.inner_text() == site["snippet"]
        page.click(f'button[data-copy-target="tag-{key}"]')
        expect(page.locator(f'button[data-copy-target="tag-{key}"]')).to_have_text("Copied")
        assert page.evaluate("() => navigator.clipboard.readText()") == site["snippet"]

        # Leads: the table, and the CSV download compared with the stored leads.
        page.click(f'a[href="/admin/sites/{key}/leads"]')
        expect(page.locator("table.leads td.email")).to_have_count(2)
        with page.expect_download() as info:
            page.click("#leads-csv")
        download = info.value
        text = open(download.path(), encoding="utf-8", newline="").read()
        got = list(csv.reader(io.StringIO(text)))
        stored = live.query(
            "SELECT email, created_at, source, consent, discount_code, cart_value, currency, variants"
            " FROM leads ORDER BY created_at, id"
        )
        assert got[0][:8] == [
            "email",
            "created_at",
            "source",
            "consent",
            "discount_code",
            "cart_value",
            "currency",
            "variant",
        ]
        assert got[1:] == [lead_row(r) for r in stored]
        assert {row[0] for row in got[1:]} == {"ann@example.com", "'=bob@example.com"}  # formula-safe

        # Carts: the hostile item name is text, no element, no dialog.
        page.goto(f"{live.url}/admin/sites/{key}/carts?status=all")
        expect(page.locator(".item-name", has_text=XSS)).to_have_count(1)
        assert page.locator(".item-name").filter(has_text=XSS).inner_text() == XSS
        assert page.locator("main img").count() == 0
        expect(page.locator('tr[data-cart] [data-step="0"]', has_text="sent")).to_have_count(2)
        expect(page.locator('tr[data-cart] [data-step="1"]', has_text="cancelled")).to_have_count(1)  # Ann bought

        # Settings: a mistake is shown beside its field, and the last good settings stay.
        before = json.loads(live.query("SELECT settings FROM sites WHERE key = ?", key)[0]["settings"])
        page.click(f'a[href="/admin/sites/{key}/settings"]')
        field = page.locator("#f-popup-delay_ms")
        good = field.input_value()
        assert good == str(before["popup"]["delay_ms"])
        field.fill("-5")
        page.fill("#f-popup-headline", "This must not be saved")
        page.click("text=Save settings")
        error = page.locator('.field[data-key="popup.delay_ms"] .field-error')
        expect(error).to_be_visible()
        expect(error).to_contain_text("greater than or equal to 0")
        expect(page.locator("#settings-error")).to_contain_text("last good settings")
        box, err_box = page.locator("#f-popup-delay_ms").bounding_box(), error.bounding_box()
        assert box and err_box and 0 <= err_box["y"] - (box["y"] + box["height"]) < 40  # right under the field
        assert page.locator("#f-popup-delay_ms").get_attribute("aria-describedby") == "f-popup-delay_ms-error"
        after = json.loads(live.query("SELECT settings FROM sites WHERE key = ?", key)[0]["settings"])
        assert after == before
        page.goto(f"{live.url}/admin/sites/{key}/settings")
        assert page.locator("#f-popup-delay_ms").input_value() == good
        # Left out (null): the field is empty and the locale's default shows.
        assert page.locator("#f-popup-headline").input_value() == (before["popup"]["headline"] or "")
        # Fixed, it saves.
        page.fill("#f-popup-delay_ms", "1500")
        page.click("text=Save settings")
        expect(page.locator("p.saved")).to_be_visible()
        saved = json.loads(live.query("SELECT settings FROM sites WHERE key = ?", key)[0]["settings"])
        assert saved["popup"]["delay_ms"] == 1500 and saved["recovery"] == before["recovery"]

        # The dev mailbox: the reminder, its HTML sandboxed.
        page.click("header nav >> text=Mailbox")
        expect(page.locator("table.mailbox tbody tr")).to_have_count(2)
        page.locator("table.mailbox tr", has_text="ann@example.com").locator("a").click()
        frame = page.frame_locator("iframe.mail")
        expect(frame.locator("body")).to_contain_text("Return to your cart")
        expect(frame.locator("body")).to_contain_text(XSS)

        # Log out: the dashboard is closed again.
        page.click("button:has-text('Log out')")
        expect(page).to_have_url(f"{live.url}/admin/login")
        page.goto(f"{live.url}/admin")
        expect(page).to_have_url(re.compile(r"/admin/login"))

        page.wait_for_timeout(200)
        assert dialogs == [], f"a dialog fired: {dialogs}"
        # What the test did on purpose: a wrong password (401), a settings mistake (422), and the
        # mailbox blocking the email's tracking image. Nothing else: no CSP violation, no 404.
        allowed = [
            re.compile(r"console: Failed to load resource: the server responded with a status of (401|422) "),
            re.compile(rf"HTTP 401 {re.escape(live.url)}/admin/login$"),
            re.compile(rf"HTTP 422 {re.escape(live.url)}/admin/sites/{key}/settings$"),
            re.compile(
                r"console: Loading the image '[^']+/o/[^']+\.gif' violates the following Content Security Policy"
                r" directive: \"img-src data: cid:\""
            ),
        ]
        unexpected = [p for p in problems if not any(a.match(p) for a in allowed)]
        assert unexpected == [], "\n".join(unexpected)
    finally:
        ctx.close()
