"""The popup in real Chromium: caps across reloads, the keyboard alone, consent, the honeypot, 320 px."""

from __future__ import annotations

from tests.browser.conftest import (
    exit_top,
    local,
    outbox,
    popup_open,
    shadow,
    stays_closed,
    wait_popup,
    wait_until,
)

SITE_ROWS = "SELECT {cols} FROM {table} t JOIN sites s ON s.id = t.site_id WHERE s.key = ?"


def rows(shop, table, cols="t.*", where=""):
    return shop.query(SITE_ROWS.format(cols=cols, table=table) + where, shop.site["key"])


def close_with_button(page):
    page.locator("#cartback-popup button[aria-label=Close]").click()
    assert not popup_open(page)


def test_a_closed_popup_stays_closed_across_reloads_and_show_passes_the_cap(shop):
    key = shop.create_site({"cap_days": 7})["key"]
    page = shop.open(shop.page_url())
    exit_top(page)
    wait_popup(page)
    close_with_button(page)
    assert local(page, key, "closed") > 0

    for _ in range(2):
        page.reload()
        page.wait_for_function("() => window.cartback && window.cartback._cb")
        page.wait_for_timeout(150)
        exit_top(page)
        assert stays_closed(page)

    # show() is for previews and tests: it opens past every cap.
    page.evaluate("() => cartback('show')")
    wait_popup(page)
    assert wait_until(lambda: len(rows(shop, "events", where=" AND t.type = 'closed'")) == 1)


def test_the_cap_falls_back_to_a_cookie_without_localstorage(shop):
    key = shop.create_site({"cap_days": 7})["key"]
    ctx = shop.context()
    ctx.add_init_script("""Object.defineProperty(window, 'localStorage', {get() {
        throw new DOMException('The operation is insecure.', 'SecurityError'); }});""")
    page = shop.open(shop.page_url(), ctx)
    exit_top(page)
    wait_popup(page)
    close_with_button(page)
    cookies = {c["name"]: c for c in ctx.cookies()}
    assert f"cb_{key}_closed" in cookies and f"cb_{key}_vid" in cookies
    assert cookies[f"cb_{key}_closed"]["expires"] > 0  # a real max-age, not a session cookie

    page.reload()
    page.wait_for_function("() => window.cartback && window.cartback._cb")
    page.wait_for_timeout(150)
    exit_top(page)
    assert stays_closed(page)


def test_a_given_email_means_never_again(shop):
    # cap_days 0: closing alone does not hold the popup back, so only the email can.
    key = shop.create_site({"cap_days": 0})["key"]
    page = shop.open(shop.page_url())
    exit_top(page)
    wait_popup(page)
    close_with_button(page)
    page.reload()
    page.wait_for_function("() => window.cartback && window.cartback._cb")
    page.wait_for_timeout(150)
    exit_top(page)
    wait_popup(page)  # closing with cap_days 0 did not cap it

    page.locator("#cartback-popup input[name=email]").fill("ann@example.com")
    page.locator("#cartback-popup button[type=submit]").click()
    page.wait_for_selector("#cartback-popup [data-cartback-code]")
    close_with_button(page)
    assert local(page, key, "lead")

    for _ in range(2):
        page.reload()
        page.wait_for_function("() => window.cartback && window.cartback._cb")
        page.wait_for_timeout(150)
        exit_top(page)
        assert stays_closed(page)
    assert len(shop.wait_rows("SELECT * FROM leads")) == 1


def test_keyboard_only_tab_stays_inside_escape_closes_and_focus_returns(shop):
    shop.create_site({"require_consent": True, "reasons": ["Shipping costs", "Just browsing"]})
    page = shop.open(shop.page_url(body='<a href="#x" id="after">More</a>'))
    page.keyboard.press("Tab")
    assert page.evaluate("() => document.activeElement.id") == "before"
    page.evaluate("() => cartback('show')")
    wait_popup(page)

    inside = (
        "() => { const h = document.getElementById('cartback-popup'); const a = h && h.shadowRoot.activeElement;"
        " return document.activeElement === h && a ? (a.name || a.getAttribute('aria-label') || a.textContent) : null; }"
    )
    assert page.evaluate(inside) == "email", "focus starts on the email field"
    seen = []
    for _ in range(8):
        page.keyboard.press("Tab")
        where = page.evaluate(inside)
        assert where is not None, f"Tab left the dialog after {seen}"
        seen.append(where)
    assert set(seen) == {"email", "consent", "Send my code", "Close", "Shipping costs", "Just browsing"}
    assert "website" not in seen  # the honeypot is out of the tab order
    for _ in range(8):
        page.keyboard.press("Shift+Tab")
        assert page.evaluate(inside) is not None, "Shift+Tab left the dialog"

    # Focus pushed outside by the page is brought back in.
    page.evaluate("() => document.getElementById('after').focus()")
    assert page.evaluate(inside) is not None

    page.keyboard.press("Escape")
    assert not popup_open(page)
    assert page.evaluate("() => document.activeElement.id") == "before"

    # The whole form works from the keyboard: type, tick with Space, submit with Enter.
    page.evaluate("() => cartback('show')")
    wait_popup(page)
    page.keyboard.type("kim@example.com")
    page.keyboard.press("Tab")
    assert page.evaluate(inside) == "consent"
    page.keyboard.press("Space")
    page.keyboard.press("Tab")
    page.keyboard.press("Enter")
    page.wait_for_selector("#cartback-popup [data-cartback-code]")
    assert page.evaluate(inside) is not None, "focus stays in the dialog after the form is replaced"
    page.keyboard.press("Escape")
    assert page.evaluate("() => document.activeElement.id") == "before"
    assert len(shop.wait_rows("SELECT * FROM leads WHERE email = 'kim@example.com' AND consent = 1")) == 1


def test_consent_required_blocks_sending_until_ticked(shop):
    key = shop.create_site({"require_consent": True, "consent_text": "Yes, email me."})["key"]
    page = shop.open(shop.page_url())
    page.evaluate("() => cartback('show')")
    wait_popup(page)
    popup = page.locator("#cartback-popup")
    assert popup.locator("label", has_text="Yes, email me.").count() == 1

    popup.locator("input[name=email]").fill("not-an-email")
    popup.locator("button[type=submit]").click()
    assert "valid email" in popup.locator("[role=alert]").inner_text()

    popup.locator("input[name=email]").fill("lee@example.com")
    popup.locator("button[type=submit]").click()
    assert "tick the box" in popup.locator("[role=alert]").inner_text()
    assert popup.locator("[data-cartback-code]").count() == 0
    assert shadow(page, "r.activeElement && r.activeElement.name") == "consent"
    page.wait_for_timeout(500)
    assert rows(shop, "leads") == []
    assert [i for i in outbox(page, key) if i["k"] == "lead"] == []

    popup.locator("input[name=consent]").check()
    popup.locator("button[type=submit]").click()
    assert popup.locator("[data-cartback-code]").inner_text() == "SAVE10"
    leads = shop.wait_rows("SELECT * FROM leads")
    assert [(r["email"], r["consent"]) for r in leads] == [("lee@example.com", 1)]


def test_a_filled_honeypot_stores_nothing(shop):
    key = shop.create_site()["key"]
    page = shop.open(shop.page_url())
    page.evaluate("() => cartback('show')")
    wait_popup(page)
    # People never see the field; a bot fills every input it finds.
    assert (
        not page.locator("#cartback-popup input[name=website]").is_visible()
        or shadow(page, "r.querySelector('[name=website]').getBoundingClientRect().right") < 0
    )
    shadow(page, "r.querySelector('[name=website]').value = 'http://spam.example'")
    page.locator("#cartback-popup input[name=email]").fill("bot@example.com")
    page.locator("#cartback-popup button[type=submit]").click()
    page.wait_for_selector("#cartback-popup [data-cartback-code]")  # the bot learns nothing
    # Delivered (the collector answered) and still nothing stored.
    assert wait_until(lambda: outbox(page, key) == [] and rows(shop, "events", where=" AND t.type = 'shown'"))
    page.wait_for_timeout(300)
    assert rows(shop, "leads") == []
    assert rows(shop, "events", where=" AND t.type = 'lead'") == []


def test_the_popup_fits_a_320_px_screen(shop):
    shop.create_site({"shipping_note": "Free shipping over $50 · free returns for 30 days"})
    ctx = shop.context(viewport={"width": 320, "height": 568}, is_mobile=True, has_touch=True)
    page = shop.open(shop.page_url(), ctx)
    page.evaluate("() => cartback('show')")
    wait_popup(page)
    box = page.locator("#cartback-popup [role=dialog]").bounding_box()
    assert box["x"] >= 0 and box["x"] + box["width"] <= 320
    assert page.evaluate("() => document.documentElement.scrollWidth") <= 320
    popup = page.locator("#cartback-popup")
    assert popup.locator(".s").inner_text().startswith("Free shipping over $50")
    for sel in ["input[name=email]", "button[type=submit]", "button[aria-label=Close]"]:
        b = popup.locator(sel).bounding_box()
        assert b["x"] >= 0 and b["x"] + b["width"] <= 320, sel
    popup.locator("input[name=email]").fill("sam@example.com")
    popup.locator("button[type=submit]").tap()
    assert popup.locator("[data-cartback-code]").inner_text() == "SAVE10"
