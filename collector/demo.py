"""The demo storefront at /demo, with the demo site's tag pasted, so `make run` shows the product working.

`make run` also serves a Shopify-like and a WooCommerce-like demo store on their own loopback ports
(tests/fakes/demo_stores.py: the tests' fakes of the two platforms, built from their documentation),
each with only its own demo site's tag pasted; /demo links to them."""

from __future__ import annotations

import html

from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.routing import Route

from collector.services import services
from collector.store import Store
from collector.tag import STATIC_DIR, snippet_html

DEMO_SITE_NAME = "Demo store"
# The platform demo stores: site name, loopback port, and the cart page a recovery link lands on.
PLATFORM_DEMOS = {
    "shopify": ("Demo store (Shopify-like)", 8001, "/cart"),
    "woocommerce": ("Demo store (WooCommerce-like)", 8002, "/cart/"),
}


async def demo_page(request: Request) -> Response:
    store: Store = services(request).store
    site = next((s for s in await store.sites.list() if s.name == DEMO_SITE_NAME), None)
    page = (STATIC_DIR / "demo" / "index.html").read_text()
    if site is None:
        tag = "<!-- no demo site yet: run `cartback demo-setup` -->"
    else:
        tag = snippet_html(services(request).config.public_url, site.key)
    names = {s.name for s in await store.sites.list()}
    links = " ".join(
        f'<a href="http://127.0.0.1:{port}/">{html.escape(name)}</a>'
        for name, port, _ in PLATFORM_DEMOS.values()
        if name in names
    )
    more = f'<p class="note" id="platform-demos">The same tag on a platform: {links}.</p>' if links else ""
    return HTMLResponse(
        page.replace("<!--CARTBACK_SNIPPET-->", tag)
        .replace("<!--PLATFORM_DEMOS-->", more)
        .replace("{{site_name}}", html.escape(DEMO_SITE_NAME))
    )


routes = [Route("/demo", demo_page, methods=["GET"])]
