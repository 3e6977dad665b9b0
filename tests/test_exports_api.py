"""The leads CSV (escaping, filters, streaming) and the token-protected server API."""

from __future__ import annotations

import csv
import io
import json

from collector.exports import safe_cell
from collector.schemas import SiteSettings
from tests.conftest import SHOP_ORIGIN

H = {"Origin": SHOP_ORIGIN, "Content-Type": "text/plain"}


async def add_lead(client, site, n: int, email: str, **extra):
    body = {"id": f"evt-lead-{n:06d}", "vid": f"visitor-{n:06d}", "email": email, **extra}
    r = await client.post(f"/c/{site.key}/lead", content=json.dumps(body), headers=H)
    assert r.status_code == 200, r.text


def test_formula_cells_get_a_leading_quote():
    for value in ("=1+1", "+1", "-1", "@SUM(A1)", "\tx", "\rx"):
        assert safe_cell(value) == "'" + value
    assert safe_cell("ann@example.com") == "ann@example.com"
    assert safe_cell(None) == ""


async def test_leads_csv_is_rfc4180_and_formula_safe(client, site, store, token):
    # Codes the site itself gives out (a lead's code the site never gave is stored as "not issued").
    offers = {
        "name": "offer",
        "kind": "discount",
        "variants": [
            {"name": "A", "discount_code": '=HYPERLINK("x")'},
            {"name": "B", "discount_code": 'SAVE "10", now'},
        ],
    }
    await store.sites.update(site.key, SiteSettings.model_validate({"experiments": [offers]}))
    site = await store.sites.get(site.key, fresh=True)
    await add_lead(
        client, site, 1, "ann@example.com", consent=True, discount_code='=HYPERLINK("x")', variants={"hl": "B"}
    )
    await add_lead(client, site, 2, "bob@example.com", discount_code='SAVE "10", now')
    r = await client.get(f"/api/v1/sites/{site.key}/leads.csv", headers={"Authorization": f"Bearer {token}"})
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/csv")
    assert "\r\n" in r.text
    rows = list(csv.DictReader(io.StringIO(r.text)))
    assert list(rows[0].keys()) == [
        "email",
        "created_at",
        "source",
        "consent",
        "discount_code",
        "cart_value",
        "currency",
        "variant",
    ]
    assert rows[0]["email"] == "ann@example.com" and rows[0]["consent"] == "true" and rows[0]["source"] == "popup"
    assert rows[0]["discount_code"] == '\'=HYPERLINK("x")' and rows[0]["variant"] == "hl=B"
    assert rows[1]["discount_code"] == 'SAVE "10", now' and rows[1]["consent"] == "false"


async def test_leads_csv_filters_by_time(client, site, store, token):
    await add_lead(client, site, 1, "old@example.com")
    await store.db.write(
        lambda tx: tx.execute("UPDATE leads SET created_at = ? WHERE email = ?", 1_700_000_000.0, "old@example.com")
    )
    await add_lead(client, site, 2, "new@example.com")
    auth = {"Authorization": f"Bearer {token}"}
    r = await client.get(f"/api/v1/sites/{site.key}/leads.csv?since=2024-01-01", headers=auth)
    assert [row["email"] for row in csv.DictReader(io.StringIO(r.text))] == ["new@example.com"]
    r = await client.get(f"/api/v1/sites/{site.key}/leads.csv?until=2024-01-01T00:00:00Z", headers=auth)
    assert [row["email"] for row in csv.DictReader(io.StringIO(r.text))] == ["old@example.com"]
    r = await client.get(f"/api/v1/sites/{site.key}/leads.csv?since=yesterday", headers=auth)
    assert r.status_code == 400 and "ISO 8601" in r.json()["error"]


async def test_api_without_a_valid_token_is_401_and_leaks_nothing(client, site, token):
    paths = [f"/api/v1/sites/{site.key}/leads.csv", f"/api/v1/sites/{site.key}/stats", "/api/v1/sites/pk_unknown/stats"]
    for headers in (
        {},
        {"Authorization": "Bearer nope"},
        {"Authorization": f"Basic {token}"},
        {"Authorization": "Bearer " + "x" * 5000},
    ):
        for path in paths:
            r = await client.get(path, headers=headers)
            assert r.status_code == 401, path
            assert site.key not in r.text and "Test shop" not in r.text
        r = await client.post(
            "/api/v1/orders", json={"site": site.key, "order_id": "1", "value": 1, "currency": "EUR"}, headers=headers
        )
        assert r.status_code == 401


async def test_orders_api_is_idempotent_and_closes_the_cart(client, site, store, token):
    auth = {"Authorization": f"Bearer {token}"}
    await add_lead(client, site, 1, "ann@example.com")
    cart = {
        "id": "evt-cart-000001",
        "vid": "visitor-000001",
        "currency": "EUR",
        "items": [{"id": "a", "name": "Mug", "price": 10, "quantity": 1}],
    }
    await client.post(f"/c/{site.key}/cart", content=json.dumps(cart), headers=H)
    order = {"site": site.key, "order_id": "A-1", "value": 10, "currency": "EUR", "email": "ANN@example.com"}
    for _ in range(2):
        r = await client.post("/api/v1/orders", json=order, headers=auth)
        assert r.status_code == 200 and r.json()["order_id"] == "A-1"
    assert (await store.db.fetchone("SELECT COUNT(*) AS n FROM orders"))["n"] == 1
    assert (await store.db.fetchone("SELECT status FROM carts"))["status"] == "purchased"
    bad = await client.post("/api/v1/orders", json={**order, "value": -5}, headers=auth)
    assert bad.status_code == 422 and "value" in bad.json()["error"]
    unknown = await client.post("/api/v1/orders", json={**order, "site": "pk_nope"}, headers=auth)
    assert unknown.status_code == 404
    forged = await client.post(
        "/api/v1/orders", json={**order, "order_id": "A-2", "cart_token": "forged.token"}, headers=auth
    )
    assert forged.status_code == 422


async def test_stats_counts_what_is_stored(client, site, store, token):
    await add_lead(client, site, 1, "ann@example.com")
    await add_lead(client, site, 2, "bob@example.com")
    shown = {"id": "evt-shown-00001", "vid": "visitor-000001", "type": "shown", "variants": {"hl": "A"}}
    await client.post(f"/c/{site.key}/event", content=json.dumps(shown), headers=H)
    r = await client.get(f"/api/v1/sites/{site.key}/stats", headers={"Authorization": f"Bearer {token}"})
    stats = r.json()
    for key in (
        "carts",
        "abandoned",
        "popup_shown",
        "leads",
        "emails_sent",
        "emails_opened",
        "emails_clicked",
        "recovered_orders",
        "recovered_revenue",
        "recovery_rate",
        "variants",
    ):
        assert key in stats
    assert stats["leads"] == 2 and stats["popup_shown"] == 1
    assert stats["variants"]["hl"]["A"]["shown"] == 1


async def test_snippet_is_served_cached_and_gzipped(client, site, store):
    r = await client.get(f"/s/{site.key}.js", headers={"Accept-Encoding": "gzip"})
    assert r.status_code == 200
    assert r.headers["content-encoding"] == "gzip" and "max-age" in r.headers["cache-control"]
    assert site.key in r.text and "__CARTBACK_CONFIG__" not in r.text
    etag = r.headers["etag"]
    again = await client.get(f"/s/{site.key}.js", headers={"If-None-Match": etag})
    assert again.status_code == 304
    await store.sites.update(
        site.key,
        settings=site.settings.model_copy(
            update={"popup": site.settings.popup.model_copy(update={"headline": "Changed"})}
        ),
    )
    changed = await client.get(f"/s/{site.key}.js")
    assert changed.headers["etag"] != etag and "Changed" in changed.text
    assert (await client.get("/s/pk_unknown.js")).status_code == 404


async def test_demo_page_has_the_demo_sites_tag(client, store):
    from collector.demo import DEMO_SITE_NAME

    demo = await store.sites.create(DEMO_SITE_NAME, ["http://collector.test"])
    r = await client.get("/demo")
    assert r.status_code == 200 and f"/s/{demo.key}.js" in r.text and "window.cartback = window.cartback" in r.text
