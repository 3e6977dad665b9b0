"""The settings form's parts that are not a plain field: the reminder steps as a list (moved, removed, the delay
in its unit), a test started from the form, and the preview routes (login, the real snippet, the email)."""

from __future__ import annotations

import base64
import json
import re

from collector.dashboard import preview, settings_form
from collector.schemas import SiteSettings
from tests.dashboard_support import login
from tests.test_dashboard_pages import page_form


class Form(dict):
    """A form as Starlette hands it over: names in the order the page lists them."""


def test_steps_come_in_the_order_the_form_lists_them_with_the_delay_in_its_unit():
    form = Form(
        {
            "recovery.steps.present": "1",
            "recovery.steps.2.delay": "3",
            "recovery.steps.2.delay_unit": "hours",
            "recovery.steps.2.discount_code": "DREI",
            "recovery.steps.0.delay": "0",
            "recovery.steps.0.delay_unit": "minutes",
            "recovery.steps.0.subject": "Hi",
            "recovery.steps.0.use_code_pool": "on",
        }
    )
    doc, _, errors = settings_form.from_form(form, SiteSettings().dump())
    assert errors == {}
    steps = SiteSettings.model_validate(doc).recovery.steps
    assert [(s.delay_minutes, s.discount_code, s.subject, s.use_code_pool) for s in steps] == [
        (180, "DREI", None, False),
        (0, None, "Hi", True),
    ]
    assert settings_form.step_summary(doc["recovery"]["steps"][0], 0, "en") == (
        "3 hours after the cart is abandoned: \u201cYou left something in your cart\u201d with code DREI"
    )
    assert settings_form.step_values({"delay_minutes": 2880}) == {
        "delay": "2",
        "delay_unit": "days",
        "subject": "",
        "preheader": "",
        "discount_code": "",
        "use_code_pool": False,
    }


def test_all_steps_removed_means_no_reminders_and_a_form_without_steps_keeps_them():
    doc, _, _ = settings_form.from_form(Form({"recovery.steps.present": "1"}), SiteSettings().dump())
    assert doc["recovery"]["steps"] == []
    doc, _, _ = settings_form.from_form(Form({}), SiteSettings().dump())
    assert len(doc["recovery"]["steps"]) == 2


def test_a_popup_test_from_the_form_with_an_empty_control_and_shares():
    form = Form(
        {
            "new_test.name": "headline-1",
            "new_test.kind": "popup.headline",
            "new_test.variant.0.value": "",
            "new_test.variant.0.share": "70",
            "new_test.variant.1.value": "Don't go yet!",
            "new_test.variant.1.share": "30",
        }
    )
    doc, _, errors = settings_form.from_form(form, SiteSettings().dump())
    assert errors == {}
    (exp,) = SiteSettings.model_validate(doc).experiments
    assert exp.kind == "popup" and [(v.name, v.weight) for v in exp.variants] == [("A", 70), ("B", 30)]
    assert exp.variants[0].popup is None and exp.variants[1].popup.headline == "Don't go yet!"


def test_a_test_needs_two_variants_and_a_kind():
    form = Form({"new_test.name": "t", "new_test.kind": "nope", "new_test.variant.0.value": "X"})
    _, _, errors = settings_form.from_form(form, SiteSettings().dump())
    assert errors == {
        "new_test.kind": "choose what the test changes",
        "new_test.variant.0.value": "a test needs at least two variants",
    }


def test_the_preview_of_a_variant_changes_only_what_it_names():
    settings = SiteSettings.model_validate(
        {
            "popup": {"colors": {"background": "#fefce8"}},
            "experiments": [
                {
                    "name": "c",
                    "kind": "popup",
                    "variants": [{"name": "A"}, {"name": "B", "popup": {"colors": {"button": "#1d4ed8"}}}],
                }
            ],
        }
    )
    config = preview.popup_config(settings, "c/B", "en", "https://c.test/preview-sink")
    assert config["popup"]["colors"]["background"] == "#fefce8" and config["popup"]["colors"]["button"] == "#1d4ed8"
    assert config["popup"]["enabled"] is False and config["key"] == "preview"


async def test_preview_routes_need_a_login_and_render_the_real_snippet_and_the_email(client, store, site):
    r = await client.post(f"/admin/sites/{site.key}/preview/popup", data={})
    assert r.status_code == 401
    csrf = await login(client, store)
    page = await client.get(f"/admin/sites/{site.key}/settings")
    form = {**page_form(page.text), "csrf": csrf, "locale": "de", "popup.headline": "Halt!"}
    r = await client.post(f"/admin/sites/{site.key}/preview/popup", data=form)
    assert r.status_code == 200 and "frame-ancestors 'self'" in r.headers["content-security-policy"]
    src = re.search(r'<script src="(/admin/sites/[^"]+/preview/snippet\.js\?c=[^"]+)"', r.text).group(1)
    js = await client.get(src)
    built = open("static/cartback.js", encoding="utf-8").read()
    assert js.status_code == 200 and built.split('"__CARTBACK_CONFIG__"')[0] in js.text
    config = json.loads(base64.urlsafe_b64decode(src.split("c=")[1]))
    assert config["popup"]["headline"] == "Halt!" and list(config["texts"]) == ["de"]
    assert (await client.get(f"/admin/sites/{site.key}/preview/snippet.js?c=e30=")).status_code == 400
    mail = await client.post(f"/admin/sites/{site.key}/preview/email", data={**form, "preview.step": "1"})
    assert mail.status_code == 200 and '<html lang="de"' in mail.text and "Zurück zum Warenkorb" in mail.text
    # A wrong value: the preview says which, and nothing is stored.
    bad = await client.post(f"/admin/sites/{site.key}/preview/popup", data={**form, "popup.delay_ms": "-1"})
    assert "popup.delay_ms" in bad.text and (await store.sites.get(site.key, fresh=True)).settings.locale == "en"
    # Send me a test: to the logged-in user, here into the dev mailbox.
    sent = await client.post(f"/admin/sites/{site.key}/preview/send-test", data=form)
    assert "Sent step 1 to owner@example.com" in sent.text
    rows = await store.db.fetchall("SELECT to_addr, subject FROM mailbox")
    assert [(r["to_addr"], r["subject"].startswith("[Test] ")) for r in rows] == [("owner@example.com", True)]


def test_webhooks_are_a_list_of_addresses_with_a_box_per_event():
    form = Form(
        {
            "webhooks.present": "1",
            "webhooks.4.url": " https://hooks.example.com/crm ",
            "webhooks.4.events.lead": "on",
            "webhooks.4.events.recovered": "on",
            "webhooks.0.url": "",  # a row added and left empty: no webhook
            "webhooks.0.events.lead": "on",
            "webhooks.1.url": "https://hooks.example.com/all",
            "webhooks.1.events.lead": "on",
            "webhooks.1.events.abandoned": "on",
            "webhooks.1.events.recovered": "on",
        }
    )
    doc, shown, errors = settings_form.from_form(form, SiteSettings().dump())
    assert errors == {}
    hooks = SiteSettings.model_validate(doc).webhooks
    assert [(h.url, h.events) for h in hooks] == [
        ("https://hooks.example.com/crm", ["lead", "recovered"]),
        ("https://hooks.example.com/all", ["lead", "abandoned", "recovered"]),
    ]
    assert shown["webhooks"][0] == {"url": "https://hooks.example.com/crm", "events": ["lead", "recovered"]}
    # Shown again as the form lists them, and a form without the list keeps the stored webhooks.
    assert settings_form.display_values(doc)["webhooks"] == shown["webhooks"]
    kept, _, _ = settings_form.from_form(Form({}), doc)
    assert kept["webhooks"] == doc["webhooks"]
    removed, _, _ = settings_form.from_form(Form({"webhooks.present": "1"}), doc)
    assert removed["webhooks"] == []


def test_a_toggle_is_read_only_when_its_section_was_on_the_form():
    """An unticked checkbox sends nothing: a form without the Platform section must not turn
    the store's email fields off (as a form of only the Popup section once did)."""
    current = SiteSettings().dump()
    assert current["platform"]["email_fields"] is True
    doc, _, _ = settings_form.from_form(Form({"present.popup": "1", "popup.enabled": "on"}), current)
    assert doc["platform"]["email_fields"] is True and doc["popup"]["enabled"] is True
    doc, _, _ = settings_form.from_form(Form({"present.platform": "1", "platform.kind": "shopify"}), current)
    assert doc["platform"]["email_fields"] is False and doc["platform"]["kind"] == "shopify"
    assert doc["popup"]["enabled"] is True
