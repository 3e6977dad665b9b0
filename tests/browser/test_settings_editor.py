"""The settings editor in real Chromium, by keyboard and mouse: the live preview (the real popup, the email)
follows unsaved values, a third reminder step is added, the locale turns the preview German, a subject test
is started from the form, a webhook is added, a wrong value is shown beside its field and nothing is saved, and the saved
document is what the form showed."""

from __future__ import annotations

import json

from playwright.sync_api import expect

from collector.locales import texts

OWNER = "owner@example.com"
PASSWORD = "a long enough password"


def form_values(page) -> dict[str, list[str]]:
    return page.evaluate(
        """() => { const out = {}; for (const [k, v] of new FormData(document.getElementById('settings-form'))) {
            if (k === 'csrf' || k.startsWith('new_test.') || k.startsWith('preview.')) continue;
            (out[k] = out[k] || []).push(v); } return out; }"""
    )


def stored(live, key):
    return json.loads(live.query("SELECT settings FROM sites WHERE key = ?", key)[0]["settings"])


def test_a_marketer_edits_previews_and_saves_with_keyboard_and_mouse(live_collector, browser):
    live = live_collector
    live.start()
    live.cli("users", "create", "--email", OWNER, "--password-stdin", input=PASSWORD + "\n")
    key = live.create_site(["https://shop.test"], settings={"recovery": {"from": "Shop <shop@example.com>"}})["key"]
    ctx = browser.new_context(viewport={"width": 1400, "height": 1000})
    ctx.set_default_timeout(10_000)
    page = ctx.new_page()
    page.goto(f"{live.url}/admin/login")
    page.click("#email")
    page.keyboard.type(OWNER)
    page.keyboard.press("Tab")
    page.keyboard.type(PASSWORD)
    page.keyboard.press("Enter")
    page.wait_for_url(f"{live.url}/admin")
    page.goto(f"{live.url}/admin/sites/{key}/settings")
    before = stored(live, key)

    popup = page.frame_locator("#popup-preview")
    email = page.frame_locator("#email-preview")
    expect(popup.locator("[role=dialog] h2")).to_have_text(texts("en", "popup")["headline"])
    expect(email.locator("body")).to_contain_text("Return to your cart")

    # The headline, typed: the real popup in the preview changes before anything is saved.
    page.click("#f-popup-headline")
    page.keyboard.type("Hold on a second")
    expect(popup.locator("[role=dialog] h2")).to_have_text("Hold on a second")
    assert stored(live, key) == before
    # The phone width.
    page.click("button[data-width=phone]")
    assert page.locator("[data-popup-frame]").bounding_box()["width"] <= 392

    # German: the preview's fixed texts follow; the headline the marketer wrote stays as written.
    page.select_option("#f-locale", "de")
    de = texts("de", "popup")
    expect(popup.locator("[role=dialog]")).to_have_attribute("lang", "de")
    expect(popup.locator("[role=dialog] .x")).to_have_attribute("aria-label", de["close"])
    expect(popup.locator("[role=dialog] .r p")).to_have_text(de["reasons_prompt"])
    expect(popup.locator("[role=dialog] h2")).to_have_text("Hold on a second")
    expect(email.locator("body")).to_contain_text(texts("de", "email")["button"])

    # A third reminder step: 3 hours, with a code.
    page.click("text=Add a step")
    third = page.locator("li.step").nth(2)
    expect(third.locator("[data-step-delay]")).to_be_focused()
    page.keyboard.press("Control+A")
    page.keyboard.type("3")
    third.locator("[data-step-unit]").select_option("hours")
    third.locator("[data-step-code]").click()
    page.keyboard.type("DREI")
    expect(third.locator("[data-step-summary]")).to_contain_text("3 hours after the cart is abandoned")
    expect(third.locator("[data-step-summary]")).to_contain_text("with code DREI")

    # A subject test of the first step, typed into the form.
    page.click("#f-new-test-name")
    page.keyboard.type("subject-1")
    page.select_option("#f-new-test-kind", "subject")
    page.fill("#f-new-test-step", "1")
    page.click("#f-new-test-0-value")
    page.keyboard.type("Dein Warenkorb wartet")
    page.fill("#f-new-test-0-share", "50")
    page.click("#f-new-test-1-value")
    page.keyboard.type("Noch unentschlossen?")
    page.fill("#f-new-test-1-share", "50")

    # A webhook for the CRM: its address typed, the abandoned carts left out.
    page.click("text=Add a webhook")
    hook = page.locator("li.hook").nth(0)
    expect(hook.locator("[data-hook-url]")).to_be_focused()
    page.keyboard.type("https://hooks.example.com/crm")
    hook.get_by_label("A cart is abandoned").uncheck()

    # A wrong value: shown beside its field, and nothing is saved.
    page.fill("#f-popup-delay_ms", "-5")
    page.click("text=Save settings")
    error = page.locator('.field[data-key="popup.delay_ms"] .field-error')
    expect(error).to_contain_text("greater than or equal to 0")
    assert page.locator("#f-popup-delay_ms").get_attribute("aria-describedby") == "f-popup-delay_ms-error"
    assert stored(live, key) == before
    # What was typed is still there to fix.
    assert page.locator("#f-popup-headline").input_value() == "Hold on a second"
    assert page.locator("li.step").count() == 3 and page.locator("#f-new-test-name").input_value() == "subject-1"

    page.fill("#f-popup-delay_ms", "2500")
    shown = form_values(page)
    page.click("text=Save settings")
    expect(page.locator("p.saved")).to_be_visible()
    doc = stored(live, key)
    assert doc["locale"] == "de" and doc["popup"]["headline"] == "Hold on a second"
    assert doc["popup"]["delay_ms"] == 2500
    assert [s["delay_minutes"] for s in doc["recovery"]["steps"]] == [0, 1440, 180]
    assert doc["recovery"]["steps"][2]["discount_code"] == "DREI"
    assert doc["webhooks"] == [{"url": "https://hooks.example.com/crm", "events": ["lead", "recovered"]}]
    (exp,) = doc["experiments"]
    assert exp["kind"] == "subject" and exp["step"] == 0 and exp["enabled"] is True
    assert [(v["name"], v["subject"], v["weight"]) for v in exp["variants"]] == [
        ("A", "Dein Warenkorb wartet", 50),
        ("B", "Noch unentschlossen?", 50),
    ]
    # The saved document is what the form showed: the form of the saved document shows the same values.
    after = form_values(page)
    after.pop("experiments", None)
    shown.pop("experiments", None)
    assert after == shown

    # Send me a test: the previewed reminder goes to the logged-in user (the dev mailbox here).
    page.click("text=Send me a test")
    expect(email.locator("main")).to_contain_text(f"Sent step 1 to {OWNER}")
    (mail,) = live.query("SELECT to_addr, subject, html FROM mailbox")
    assert mail["to_addr"] == OWNER and mail["subject"].startswith("[Test] ")
    assert '<html lang="de"' in mail["html"]
    ctx.close()
