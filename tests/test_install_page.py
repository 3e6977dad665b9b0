"""The site's Install page, from outside: what to paste where and which order webhook to create (with
the collector's own URLs), and "last seen" for each part of an installation as it reaches the
collector: the tag, a cart read from the platform, the store's email fields, the popup, and orders by
the Shopify and WooCommerce webhooks, the browser and the API. Without a login it is refused."""

from __future__ import annotations

import re

from tests.conftest import SHOP_ORIGIN
from tests.dashboard_support import login
from tests.fakes import platform_webhooks as fake
from tests.recovery_support import MUG, Shopper
from tests.test_platform_hooks import SHOPIFY_SECRET, WOO_SECRET, platform_settings


def seen(html: str, what: str) -> str:
    m = re.search(rf'<tr data-seen="{what}"><th scope="row">.*?</th><td>(.*?)</td></tr>', html, re.S)
    assert m, what
    return m.group(1)


async def test_install_page_says_what_to_paste_and_shows_each_part_as_it_arrives(client, store, token):
    site = await store.sites.create("Installed shop", [SHOP_ORIGIN], platform_settings(woocommerce_webhook_secret=None))
    url = f"/admin/sites/{site.key}/install"
    assert (await client.get(url, follow_redirects=False)).status_code in (302, 303, 401)
    await login(client, store)
    page = await client.get(url)
    assert page.status_code == 200
    html = page.text
    assert f"/s/{site.key}.js" in html and "layout/theme.liquid" in html and "add_action(&#39;wp_head&#39;" in html
    assert f"http://collector.test/hooks/shopify/{site.key}" in html
    assert f"http://collector.test/hooks/woocommerce/{site.key}" in html
    assert "Order creation" in html and "Order created" in html
    assert "Shopify sends webhooks only to https addresses" in html  # the test collector is http
    shopify = html[html.index('id="shopify"') : html.index('id="woocommerce"')]
    woo = html[html.index('id="woocommerce"') : html.index('id="plain"')]
    assert "A secret is set." in shopify and "No secret is set yet" in woo
    assert all(
        seen(html, w) == '<span class="never">never</span>'
        for w in ("tag", "platform_cart", "identify", "lead", "order_shopify", "order_woocommerce", "order_browser")
    )

    # A shopper on the storefront: a cart without the platform's token (the theme's own call), then
    # one the adapter read from Shopify (with its cart token), an address in the checkout's field.
    shopper = Shopper(client, site)
    await shopper.cart(MUG)
    html = (await client.get(url)).text
    assert "UTC" in seen(html, "tag") and "never" in seen(html, "platform_cart")
    await shopper.send("cart", items=[MUG], currency="EUR", platform_token="c1-7a3f0e5b")
    await shopper.identify("ann@example.com")
    html = (await client.get(url)).text
    assert "UTC" in seen(html, "platform_cart") and "UTC" in seen(html, "identify")
    assert "never" in seen(html, "lead") and "never" in seen(html, "order_shopify")

    # Orders: Shopify's signed webhook, then the browser and the API; WooCommerce's has not come.
    body, headers = fake.shopify_delivery(fake.shopify_order(email="ann@example.com"), SHOPIFY_SECRET)
    r = await client.post(f"/hooks/shopify/{site.key}", content=body, headers=headers)
    assert r.status_code == 200 and r.json()["stored"] is True
    other = Shopper(client, site)
    await other.lead("bob@example.com")
    await other.cart(MUG)
    await other.purchase("B-1", 28.0)
    api = {"site": site.key, "order_id": "A-1", "value": 10.0, "currency": "EUR"}
    assert (
        await client.post("/api/v1/orders", json=api, headers={"Authorization": f"Bearer {token}"})
    ).status_code == 200
    html = (await client.get(url)).text
    for what in ("order_shopify", "order_browser", "order_api", "lead"):
        assert "UTC" in seen(html, what), what
    assert "never" in seen(html, "order_woocommerce")
    # A refused delivery (wrong secret) is not an order seen.
    body, headers = fake.woocommerce_delivery(fake.woocommerce_order(), WOO_SECRET)
    assert (await client.post(f"/hooks/woocommerce/{site.key}", content=body, headers=headers)).status_code == 401
    assert "never" in seen((await client.get(url)).text, "order_woocommerce")


async def test_the_sites_page_links_to_install_instead_of_asking_for_code(client, store):
    site = await store.sites.create("Linked shop", [SHOP_ORIGIN], platform_settings())
    await login(client, store)
    html = (await client.get("/admin")).text
    assert f'href="/admin/sites/{site.key}/install"' in html
    assert "cartback('cart'" not in html  # the platforms need no code: the Install page says so
