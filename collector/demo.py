"""The demo storefront at /demo, with the demo site's tag pasted, so `make run` shows the product working."""

from __future__ import annotations

import html

from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.routing import Route

from collector.services import services
from collector.store import Store
from collector.tag import STATIC_DIR, snippet_html

DEMO_SITE_NAME = "Demo store"


async def demo_page(request: Request) -> Response:
    store: Store = services(request).store
    site = next((s for s in await store.sites.list() if s.name == DEMO_SITE_NAME), None)
    page = (STATIC_DIR / "demo" / "index.html").read_text()
    if site is None:
        tag = "<!-- no demo site yet: run `cartback demo-setup` -->"
    else:
        tag = snippet_html(services(request).config.public_url, site.key)
    return HTMLResponse(
        page.replace("<!--CARTBACK_SNIPPET-->", tag).replace("{{site_name}}", html.escape(DEMO_SITE_NAME))
    )


routes = [Route("/demo", demo_page, methods=["GET"])]
