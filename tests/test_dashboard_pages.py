"""The dashboard's pages show what is stored: the funnel (the same numbers as the stats API),
leads with search, pages and the CSV, carts with their reminder sequence, the settings editor,
the mailbox, experiments and webhooks; shopper text is always shown as text."""

from __future__ import annotations

import csv
import html
import io
import json
import re
import time
from typing import Any

from collector.exports import lead_csv_chunks
from collector.funnel import site_stats
from collector.schemas import SiteSettings
from tests.dashboard_support import cart, ingest, login

XSS = "<img src=x onerror=alert(1)>"


def metrics(page: str) -> dict[str, str]:
    return {k: html.unescape(v) for k, v in re.findall(r'data-metric="(\w+)">([^<]*)<', page)}


async def make_funnel(client: Any, store: Any, site: Any) -> None:
    """3 carts, 2 of them abandoned with an email, 4 popups shown, 3 reasons, 2 leads,
    3 reminders sent (2 carts), 2 opened (+1 proxy open), 1 clicked, 1 recovered order of 42.50."""
    await ingest(
        client, site, "cart", cart("c-000001", "visitor-1", [{"id": "x", "name": XSS, "price": 10, "quantity": 1}])
    )
    await ingest(client, site, "cart", cart("c-000002", "visitor-2"))
    await ingest(client, site, "cart", cart("c-000003", "visitor-3"))
    for i in range(4):
        await ingest(
            client,
            site,
            "event",
            {
                "id": f"shown-{i:04d}",
                "vid": f"visitor-{i}",
                "type": "shown",
                "variants": {"headline": "A" if i % 2 else "B"},
            },
        )
    for i, reason in enumerate(["Shipping costs", "Shipping costs", "<script>alert(2)</script>"]):
        await ingest(
            client, site, "event", {"id": f"reason-{i:04d}", "vid": f"visitor-{i}", "type": "reason", "reason": reason}
        )
    await ingest(
        client,
        site,
        "lead",
        {
            "id": "lead-000001",
            "vid": "visitor-1",
            "email": "ann@example.com",
            "consent": True,
            "variants": {"headline": "A"},
        },
    )
    await ingest(
        client, site, "lead", {"id": "lead-000002", "vid": "visitor-2", "email": "bob@example.com", "consent": False}
    )
    now = time.time()

    async def op(tx: Any) -> None:
        await tx.execute("UPDATE carts SET status = 'abandoned', abandoned_at = ? WHERE email IS NOT NULL", now)
        carts = await tx.fetchall("SELECT id, email FROM carts WHERE email IS NOT NULL ORDER BY id")
        rows = [
            (carts[0], 0, "sent", now, now, now),
            (carts[0], 1, "sent", now, None, None),
            (carts[1], 0, "sent", now, now, None),
            (carts[1], 1, "pending", None, None, None),
        ]
        for c, step, status, sent, opened, clicked in rows:
            await tx.execute(
                "INSERT INTO emails (site_id, cart_id, step, to_addr, subject, status, due_at, attempts, sent_at, opened_at,"
                " open_count, proxy_open_count, clicked_at, click_count, created_at) VALUES (?, ?, ?, ?, 'Your cart', ?, ?, 1, ?, ?, ?, 0, ?, ?, ?)",
                site.id,
                c["id"],
                step,
                c["email"],
                status,
                now,
                sent,
                opened,
                1 if opened else 0,
                clicked,
                1 if clicked else 0,
                now,
            )
        first = await tx.fetchone("SELECT id FROM emails WHERE step = 0 ORDER BY id LIMIT 1")
        await tx.execute(
            "INSERT INTO opens (site_id, email_id, is_proxy, user_agent, created_at) VALUES (?, ?, 1, 'Mozilla/5.0', ?)",
            site.id,
            first["id"],
            now,
        )
        await tx.execute(
            "INSERT INTO opens (site_id, email_id, is_proxy, user_agent, created_at) VALUES (?, ?, 0, 'Thunderbird', ?)",
            site.id,
            first["id"],
            now,
        )
        await tx.execute(
            "INSERT INTO orders (site_id, order_id, value, currency, email, cart_id, recovered, email_id, created_at)"
            " VALUES (?, 'o-1', 42.5, 'EUR', 'ann@example.com', ?, 1, ?, ?)",
            site.id,
            carts[0]["id"],
            first["id"],
            now,
        )
        await tx.execute(
            "INSERT INTO orders (site_id, order_id, value, currency, email, cart_id, recovered, email_id, created_at)"
            " VALUES (?, 'o-2', 99, 'EUR', 'zed@example.com', NULL, 0, NULL, ?)",
            site.id,
            now,
        )

    await store.db.write(op)


async def test_overview_shows_the_funnel_as_stored_and_as_the_api_says(client, store, site, token):
    await make_funnel(client, store, site)
    await login(client, store)
    r = await client.get(f"/admin/sites/{site.key}")
    assert r.status_code == 200
    shown = metrics(r.text)
    expected = {
        "carts": 3,
        "abandoned": 2,
        "popup_shown": 4,
        "leads": 2,
        "emails_sent": 3,
        "emails_opened": 2,
        "emails_clicked": 1,
        "recovered_orders": 1,
    }
    for key, value in expected.items():
        assert shown[key] == str(value), key
    assert shown["recovered_revenue"] == "42.50" and shown["proxy_opens"] == "1"
    stats = await site_stats(store.db, site.id)
    api = (await client.get(f"/api/v1/sites/{site.key}/stats", headers={"Authorization": f"Bearer {token}"})).json()
    for key, value in expected.items():
        assert stats[key] == value and api[key] == value, key
    assert api["recovered_revenue"] == 42.5 and api["recovery_rate"] == 0.5
    # visitor-1 was shown A and gave their email: A's one conversion (B's shoppers gave none).
    assert api["variants"]["headline"]["A"] == {"shown": 2, "converted": 1, "rate": 0.5}
    assert api["variants"]["headline"]["B"] == {"shown": 2, "converted": 0, "rate": 0.0}
    assert stats["variants"] == api["variants"]
    assert api["rates"]["open_rate"] == round(2 / 3, 4) and api["opens"] == {"total": 2, "human": 1, "proxy": 1}
    # The rates between the steps, the reasons (as text), the chart and how opens are counted.
    assert "50.0%" in r.text and "66.7%" in r.text
    assert "&lt;script&gt;alert(2)&lt;/script&gt;" in r.text and "<script>alert(2)" not in r.text
    assert re.search(r"<td>Shipping costs</td><td class=\"num\" data-reason-count>2</td>", r.text)
    assert '<svg class="chart"' in r.text and '<rect class="rev"' in r.text
    assert "How opens are counted" in r.text and "Apple Mail Privacy Protection" in r.text
    assert site.webhook_secret in r.text
    # Growth you can see: the database's size and the oldest data kept (today's, here).
    today = time.strftime("%Y-%m-%d", time.gmtime())
    assert shown["oldest_event"] == today and shown["oldest_cart"] == today
    assert re.fullmatch(r"[\d.]+ (kB|MB|GB)", shown["database_size"]), shown["database_size"]
    # A range that holds nothing shows zeros, and the page says which range it shows.
    empty = metrics((await client.get(f"/admin/sites/{site.key}?since=2020-01-01&until=2020-01-31")).text)
    assert empty["carts"] == "0" and empty["recovered_orders"] == "0"
    bad = await client.get(f"/admin/sites/{site.key}?since=yesterday")
    assert bad.status_code == 200 and "Dates are days" in bad.text


async def test_unknown_site_is_a_404_page(client, store):
    await login(client, store)
    for path in (
        "/admin/sites/pk_nope",
        "/admin/sites/pk_nope/leads",
        "/admin/sites/pk_nope/settings",
        "/admin/sites/pk_nope/leads.csv",
    ):
        assert (await client.get(path)).status_code == 404


async def test_sites_page_has_the_exact_tag_and_links_to_the_install_notes(client, store, site, config):
    from collector.tag import snippet_html

    await login(client, store)
    r = await client.get("/admin")
    shown = re.search(rf'<code id="tag-{site.key}" class="tag">(.*?)</code>', r.text, re.S).group(1)
    assert html.unescape(shown) == snippet_html(config.public_url, site.key)
    assert 'data-copy-target="tag-' in r.text and "/static/admin/admin.js" in r.text
    # The step-by-step notes per platform are on the site's Install page (tests/test_install_page.py).
    assert f'href="/admin/sites/{site.key}/install"' in r.text
    install = await client.get(f"/admin/sites/{site.key}/install")
    for words in ("Any other shop", "Shopify", "theme.liquid", "WooCommerce", "functions.php", "wp_head"):
        assert words in install.text
    js = await client.get("/static/admin/admin.js")
    assert js.status_code == 200 and "clipboard" in js.text


async def test_leads_table_searches_and_pages_and_the_csv_is_the_export(client, store, site):
    for i in range(57):
        await ingest(
            client,
            site,
            "lead",
            {
                "id": f"lead-{i:06d}",
                "vid": f"visitor-{i:03d}",
                "email": f"shopper{i:02d}@example.com",
                "consent": i % 2 == 0,
            },
        )
    await ingest(client, site, "lead", {"id": "lead-formula", "vid": "visitor-999", "email": "=cmd@example.com"})
    await login(client, store)
    first = await client.get(f"/admin/sites/{site.key}/leads")
    assert first.text.count('<td class="email">') == 50 and "Page 1 of 2" in first.text
    # Keyset pages: the "Older" link carries the last row's cursor, and "Newer" leads back.
    older = html.unescape(re.search(r'<a href="([^"]+)" rel="next">', first.text).group(1))
    second = await client.get(f"/admin/sites/{site.key}/leads{older}")
    assert second.text.count('<td class="email">') == 8 and "Page 2 of 2" in second.text
    assert 'rel="next"' not in second.text
    newer = html.unescape(re.search(r'<a href="([^"]+)" rel="prev">', second.text).group(1))
    back = await client.get(f"/admin/sites/{site.key}/leads{newer}")
    assert re.findall(r'<td class="email">([^<]+)</td>', back.text) == re.findall(
        r'<td class="email">([^<]+)</td>', first.text
    )
    found = await client.get(f"/admin/sites/{site.key}/leads", params={"q": "shopper4"})
    emails = re.findall(r'<td class="email">([^<]+)</td>', found.text)
    assert sorted(emails) == [f"shopper4{i}@example.com" for i in range(10)]
    # LIKE's wildcards are searched as text.
    assert (
        re.findall(r'<td class="email">', (await client.get(f"/admin/sites/{site.key}/leads", params={"q": "%"})).text)
        == []
    )
    r = await client.get(f"/admin/sites/{site.key}/leads.csv")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/csv")
    assert "attachment" in r.headers["content-disposition"]
    expected = "".join([c async for c in lead_csv_chunks(store.db, site.id)])
    assert r.text == expected
    rows = list(csv.DictReader(io.StringIO(r.text)))
    stored = await store.db.fetchall("SELECT email, consent FROM leads WHERE site_id = ?", site.id)
    assert len(rows) == len(stored) == 58
    assert {"'" + s["email"] if s["email"].startswith("=") else s["email"] for s in stored} == {
        row["email"] for row in rows
    }


async def test_carts_page_shows_the_sequence_and_shopper_text_as_text(client, store, site):
    await make_funnel(client, store, site)
    await login(client, store)
    r = await client.get(f"/admin/sites/{site.key}/carts")
    assert r.status_code == 200
    assert XSS not in r.text and html.escape(XSS, quote=False) in r.text
    assert r.text.count("<tr data-cart=") == 2  # the two abandoned carts
    states = re.findall(r'data-step="(\d)">([a-z ]+)<', r.text)
    assert ("0", "sent") in states and ("1", "pending") in states and ("1", "sent") in states
    everything = await client.get(f"/admin/sites/{site.key}/carts?status=all")
    assert everything.text.count("<tr data-cart=") == 3 and "no email yet" in everything.text
    mine = await client.get(f"/admin/sites/{site.key}/carts", params={"q": "ann@"})
    assert mine.text.count("<tr data-cart=") == 1


def page_form(html_text: str) -> dict[str, str]:
    """What a browser would post for the settings form as the page shows it."""
    form_html = html_text[
        html_text.index('id="settings-form"') : html_text.index("</form>", html_text.index('id="settings-form"'))
    ]
    form_html = re.sub(r"<template.*?</template>", "", form_html, flags=re.S)
    out: dict[str, str] = {}
    for tag in re.findall(r"<input [^>]*>", form_html):
        name = re.search(r' name="([^"]+)"', tag)
        if not name:
            continue
        kind = re.search(r' type="([^"]+)"', tag)
        if kind and kind.group(1) == "checkbox":
            if " checked" in tag:
                out[name.group(1)] = "on"
            continue
        value = re.search(r' value="([^"]*)"', tag)
        out[name.group(1)] = html.unescape(value.group(1)) if value else ""
    for name, value in re.findall(r'<textarea [^>]*name="([^"]+)"[^>]*>([^<]*)</textarea>', form_html):
        out[name] = html.unescape(value)
    for name, body in re.findall(r'<select [^>]*name="([^"]+)"[^>]*>(.*?)</select>', form_html, flags=re.S):
        chosen = re.search(r'<option value="([^"]*)" selected', body) or re.search(r'<option value="([^"]*)"', body)
        out[name] = html.unescape(chosen.group(1)) if chosen else ""
    return out


async def test_settings_mistake_is_shown_beside_the_field_and_the_last_good_settings_stay(client, store, site):
    csrf = await login(client, store)
    page = await client.get(f"/admin/sites/{site.key}/settings")
    assert 'id="f-popup-delay_ms"' in page.text and 'id="f-step-0-delay"' in page.text
    # Plain labels, the right controls, nothing that asks for JSON outside the advanced parts.
    assert '<label for="f-popup-delay_ms">Wait before it may show</label>' in page.text
    assert re.search(r'<input type="number"[^>]*id="f-popup-delay_ms"', page.text)
    assert re.search(r'<input type="color" id="f-popup-colors-button"', page.text)
    assert re.search(r'<select id="f-locale" name="locale"', page.text)
    assert "1 day after the cart is abandoned" in page.text
    base = {**page_form(page.text), "csrf": csrf, "mode": "form"}
    # A good change is stored.
    r = await client.post(
        f"/admin/sites/{site.key}/settings", data={**base, "popup.headline": "Hold on!", "popup.delay_ms": "2500"}
    )
    assert r.status_code == 303
    saved = await store.sites.get(site.key, fresh=True)
    assert saved.settings.popup.headline == "Hold on!" and saved.settings.popup.delay_ms == 2500
    assert saved.settings.popup.enabled is True and saved.settings.recovery.steps == SiteSettings().recovery.steps
    # A mistake is refused, shown next to its field, and the stored settings do not move.
    r = await client.post(
        f"/admin/sites/{site.key}/settings",
        data={
            **base,
            "popup.headline": "Second try",
            "popup.delay_ms": "-5",
            "recovery.steps.1.delay": "soon",
            "recovery.steps.0.subject": "x" * 201,
        },
    )
    assert r.status_code == 422
    m = re.search(r'<div class="field has-error" data-key="popup.delay_ms">(.*?)</div>', r.text, re.S)
    assert m and 'id="f-popup-delay_ms-error"' in m.group(1) and "greater than or equal to 0" in m.group(1)
    assert 'value="-5"' in m.group(1)  # what was typed stays in the field to fix
    assert re.search(r'id="f-step-1-delay-error" role="alert">a number', r.text)
    assert 'value="soon"' in r.text
    assert re.search(r'id="f-step-0-subject-error" role="alert">String should have at most 200', r.text)
    assert "last good settings" in r.text
    after = await store.sites.get(site.key, fresh=True)
    assert after.raw_settings == saved.raw_settings
    # A webhook's wrong address and a webhook with no event are shown beside their own fields.
    bad_hooks = {
        "webhooks.0.url": "ftp://hooks.example.com/x",
        "webhooks.0.events.lead": "on",
        "webhooks.3.url": "https://hooks.example.com/y",
    }
    r = await client.post(f"/admin/sites/{site.key}/settings", data={**base, **bad_hooks})
    assert r.status_code == 422
    assert re.search(r'id="f-hook-0-url-error" role="alert">[^<]*http', r.text)
    assert re.search(r'id="f-hook-1-events-error" role="alert">choose at least one event', r.text)
    assert 'value="ftp://hooks.example.com/x"' in r.text
    assert (await store.sites.get(site.key, fresh=True)).raw_settings == saved.raw_settings
    # Nothing on the form asks for JSON (the whole-document editor is a separate, advanced form).
    form_html = page.text[page.text.index('id="settings-form"') : page.text.index("</form>")]
    assert "JSON" not in form_html and 'spellcheck="false"' not in form_html
    # The whole-document editor names the key that is wrong.
    doc = json.loads(json.dumps(saved.raw_settings))
    doc["popup"]["colour"] = "#fff"
    r = await client.post(
        f"/admin/sites/{site.key}/settings", data={"csrf": csrf, "mode": "json", "document": json.dumps(doc)}
    )
    assert r.status_code == 422 and "popup.colour: unknown key" in r.text
    assert (await store.sites.get(site.key, fresh=True)).raw_settings == saved.raw_settings


async def test_mailbox_shows_messages_and_sandboxes_their_html(client, store, site):
    now = time.time()
    evil = '<p>Hello</p><script>alert(3)</script><img src="http://tracker.example/o.gif">'
    await store.db.write(
        lambda tx: tx.execute(
            "INSERT INTO mailbox (site_id, email_id, to_addr, from_addr, subject, html, text, headers, created_at)"
            " VALUES (?, NULL, 'ann@example.com', 'Shop <shop@example.com>', ?, ?, 'Hello in text', ?, ?)",
            site.id,
            "Your cart <b>",
            evil,
            json.dumps({"List-Unsubscribe": "<https://x/u>"}),
            now,
        )
    )
    await login(client, store)
    listing = await client.get("/admin/mailbox")
    assert "ann@example.com" in listing.text and "Your cart &lt;b&gt;" in listing.text
    mid = re.search(r'href="/admin/mailbox/(\d+)"', listing.text).group(1)
    view = await client.get(f"/admin/mailbox/{mid}")
    assert "<script>alert(3)" not in view.text and "Hello in text" in view.text and "List-Unsubscribe" in view.text
    assert re.search(r'<iframe class="mail" sandbox title="[^"]+" src="/admin/mailbox/\d+/body"', view.text)
    body = await client.get(f"/admin/mailbox/{mid}/body")
    csp = body.headers["content-security-policy"]
    assert csp.startswith("sandbox;") and "script-src" not in csp and "default-src 'none'" in csp
    assert "img-src data: cid:;" in csp  # remote images (the tracking pixel) only on request
    assert "http:" in (await client.get(f"/admin/mailbox/{mid}/body?images=1")).headers["content-security-policy"]
    assert body.headers["x-frame-options"] == "SAMEORIGIN" and "frame-ancestors 'self'" in csp
    assert (await client.get("/admin/mailbox/99999")).status_code == 404


async def test_experiments_page_shows_the_analysis(client, store, site):
    settings = SiteSettings.model_validate(
        {
            "experiments": [
                {"name": "headline", "kind": "popup", "min_sample": 2, "variants": [{"name": "A"}, {"name": "B"}]}
            ]
        }
    )
    await store.sites.update(site.key, settings=settings)
    for i in range(6):
        await ingest(
            client,
            site,
            "event",
            {
                "id": f"shown-{i:04d}",
                "vid": f"visitor-{i}",
                "type": "shown",
                "variants": {"headline": "A" if i < 3 else "B"},
            },
        )
    for i in (3, 4):
        await ingest(
            client,
            site,
            "lead",
            {"id": f"lead-{i:06d}", "vid": f"visitor-{i}", "email": f"s{i}@example.com", "variants": {"headline": "B"}},
        )
    await login(client, store)
    r = await client.get(f"/admin/sites/{site.key}/experiments")
    assert r.status_code == 200 and 'data-experiment="headline"' in r.text
    row_b = re.search(r'<tr data-variant="B".*?</tr>', r.text, re.S).group(0)
    assert re.findall(r'<td class="num" data-col="(?:exposures|conversions)">(\d+)</td>', row_b) == ["3", "2"]
    assert "66.7%" in row_b and "Chance of being best" in r.text


async def test_webhooks_page_shows_the_secret_and_the_deliveries(client, store, site):
    settings = SiteSettings.model_validate({"webhooks": [{"url": "https://hooks.example/cartback"}]})
    site = await store.sites.update(site.key, settings=settings)
    await ingest(client, site, "lead", {"id": "lead-000001", "vid": "visitor-1", "email": "ann@example.com"})
    await login(client, store)
    r = await client.get(f"/admin/sites/{site.key}/webhooks")
    assert site.webhook_secret in r.text and "https://hooks.example/cartback" in r.text
    assert "X-Cartback-Signature" in r.text and "state-pending" in r.text
