"""The site's Install page: what to paste where on a plain shop, Shopify and WooCommerce, which order
webhook to create in the platform's admin and where its secret goes, and when each part of the
installation last reached the collector, so an owner can see it works."""

from __future__ import annotations

import time

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from collector.dashboard import auth
from collector.dashboard.templating import not_found, render, site_of
from collector.services import services
from collector.store import carts
from collector.tag import snippet_html

# A part not seen for this long is shown as "not lately": an installation that worked once and broke.
STALE_SECONDS = 7 * 86400


@auth.admin
async def install(request: Request) -> Response:
    site = await site_of(request)
    if site is None:
        return not_found(request)
    svc = services(request)
    public_url = svc.config.public_url
    seen = await carts.last_seen(svc.store.db, site.id)
    platform = site.settings.platform
    return render(
        request,
        "install.html",
        title=f"Install · {site.name}",
        site=site,
        tab="install",
        tag=snippet_html(public_url, site.key),
        public_url=public_url,
        hooks={
            "shopify": f"{public_url}/hooks/shopify/{site.key}",
            "woocommerce": f"{public_url}/hooks/woocommerce/{site.key}",
        },
        secrets={
            "shopify": platform.shopify_webhook_secret is not None,
            "woocommerce": platform.woocommerce_webhook_secret is not None,
        },
        platform=platform,
        seen=seen,
        stale_before=time.time() - STALE_SECONDS,
        https=public_url.startswith("https://"),
    )


routes = [Route("/admin/sites/{key}/install", install, methods=["GET"])]
