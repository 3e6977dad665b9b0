"""The links in reminder emails: recovery (/r/), unsubscribe (/u/) and the open pixel (/o/…gif).

A forged, altered or expired token, or one whose email is gone, gets a plain page that says
the link is not valid (404): never a 500, and never anything about someone else's cart.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Callable, Mapping

from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.routing import Route

from collector.locales import effective, from_accept_language, texts
from collector.recovery.links import (
    load_open_token,
    load_recovery_token,
    load_unsubscribe_token,
    make_restore_token,
    with_restore_param,
)
from collector.recovery.render import render_page
from collector.security import Signer
from collector.services import services
from collector.store import Row, Site, Store, carts, emails

log = logging.getLogger("cartback.links")

NO_STORE = {
    "Cache-Control": "no-store",
    # The token is in the URL: no page it leads to should learn it from a Referer.
    "Referrer-Policy": "no-referrer",
    "X-Robots-Tag": "noindex",
}

# A 1x1 transparent GIF.
PIXEL = (
    b"GIF89a\x01\x00\x01\x00\x80\x00\x00\x00\x00\x00\xff\xff\xff!\xf9\x04\x01\x00\x00\x00\x00"
    b",\x00\x00\x00\x00\x01\x00\x01\x00\x00\x02\x02D\x01\x00;"
)

_PROXY_AGENTS = re.compile(
    r"Barracuda|Mimecast|Proofpoint|bingpreview|Googlebot|"
    r"python-requests|python-httpx|curl/|Wget/",
    re.I,
)


def is_proxy_open(user_agent: str | None, sent_at: float | None, now: float) -> bool:
    """Whether a pixel load is a machine (a privacy proxy or a prefetch) rather than a person.

    The rule, in order:
    1. No User-Agent, or exactly "Mozilla/5.0" and nothing more: Apple Mail Privacy Protection,
       which loads every image of every message through Apple's proxies when the mail arrives,
       whether or not anyone reads it. (Apple's proxy IP ranges are not known offline.)
    2. A User-Agent naming a link scanner or a bot: Barracuda, Mimecast, Proofpoint,
       bingpreview, Googlebot, or an HTTP library (python-requests, httpx, curl, Wget).
       Gmail's GoogleImageProxy and Yahoo's YahooMailProxy are NOT in this list: they fetch
       the image when the reader opens the message (not on delivery), so their first load
       is a person's open; counting them as proxies would show no Gmail reader ever opening.
    No rule goes by the time since sending: people do open a reminder the moment it arrives,
    and a window would drop exactly those opens; the machines that fetch at delivery are
    the ones named above. (`sent_at` stays in the signature for the callers.)
    Everything else is a person's open. Proxy opens are kept (opens.is_proxy = 1,
    emails.proxy_open_count) but only a person's open sets emails.opened_at and counts in
    emails.open_count, which is what "opened" means in the stats.
    """
    ua = (user_agent or "").strip()
    if not ua or ua == "Mozilla/5.0":
        return True
    return bool(_PROXY_AGENTS.search(ua))


# A reminder fetched this soon after it was sent was fetched by a machine: the receiving
# mail system's link scanner (Safe Links, Mimecast, Proofpoint...) checks every link on delivery.
SCANNER_SECONDS = 10.0
_PREFETCH_HEADERS = ("purpose", "sec-purpose", "x-purpose", "x-moz")


def is_scanner_click(headers: Mapping[str, str], sent_at: float | None, now: float) -> bool:
    """Whether a GET of a recovery link is a link scanner's rather than a shopper's click.

    A click is a browser's GET. Not a click: a prefetch (`Purpose`/`Sec-Purpose: prefetch`,
    `X-Purpose: preview`, `X-Moz: prefetch`); a User-Agent that is missing, bare, or names a
    scanner, bot or HTTP library (the list of is_proxy_open); any fetch within
    SCANNER_SECONDS of sending. (A HEAD is never a click: the route records GETs only.)
    """
    for name in _PREFETCH_HEADERS:
        value = headers.get(name, "").lower()
        if "prefetch" in value or "preview" in value or "prerender" in value:
            return True
    if is_proxy_open(headers.get("user-agent"), sent_at, now):
        return True
    return sent_at is not None and 0 <= now - sent_at < SCANNER_SECONDS


def invalid_link(request: Request, status: int = 404) -> HTMLResponse:
    # No site is known behind a broken link: the browser's language says which one to answer in.
    lang = from_accept_language(request.headers.get("accept-language"))
    t = texts(lang, "pages")
    html = render_page(t["invalid_title"], t["invalid_message"], lang=lang)
    return HTMLResponse(html, status_code=status, headers=NO_STORE)


async def _page_locale(store: Store, site: Site, email: Row) -> str:
    """The pages behind an email's links speak the email's language: the site's, or the cart's page's with "auto"."""
    if site.settings.locale != "auto":
        return effective(site.settings.locale, None)
    cart = await carts.get(store.db, email["cart_id"])
    return effective("auto", cart["locale"] if cart is not None else None)


def _mask(addr: str) -> str:
    local, _, domain = addr.partition("@")
    return f"{local[:1]}{'•' * max(1, min(len(local) - 1, 6))}@{domain}"


async def _email_for(request: Request, loader: Callable[[Signer, str], int | None]) -> tuple[Row, Site] | None:
    token = request.path_params.get("token", "")
    email_id = loader(services(request).signer, token)
    if email_id is None:
        return None
    store: Store = services(request).store
    email = await emails.get(store.db, email_id)
    if email is None:
        return None
    site = await store.sites.by_id(email["site_id"])
    if site is None:
        return None
    return email, site


async def recover(request: Request) -> Response:
    """Records the click, then sends the shopper to the store's cart page with a restore token."""
    found = await _email_for(request, load_recovery_token)
    if found is None:
        return invalid_link(request)
    email, site = found
    if request.method == "GET":  # a HEAD (link checkers) is not a click
        now = time.time()
        scanner = is_scanner_click(request.headers, email["sent_at"], now)
        await emails.record_click(services(request).store.db, email["id"], now, scanner=scanner)
    restore = make_restore_token(services(request).signer, email["cart_id"])
    target = with_restore_param(site.settings.recovery.cart_url, restore)
    return RedirectResponse(target, status_code=303, headers=NO_STORE)


async def unsubscribe(request: Request) -> Response:
    """GET: a page with a confirm button (scanners follow GETs, so a GET changes nothing).
    POST: unsubscribes, for the button and for RFC 8058 one-click (List-Unsubscribe=One-Click)."""
    found = await _email_for(request, load_unsubscribe_token)
    if found is None:
        return invalid_link(request)
    email, site = found
    store: Store = services(request).store
    lang = await _page_locale(store, site, email)
    t = texts(lang, "pages")
    names = {"shop": site.name, "email": _mask(email["to_addr"])}
    if request.method == "POST":
        await emails.unsubscribe(store.db, site.id, email["to_addr"], time.time())
        html = render_page(t["unsub_done_title"], t["unsub_done"].format(**names), lang=lang)
        return HTMLResponse(html, headers=NO_STORE)
    if await emails.is_unsubscribed(store.db, site.id, email["to_addr"]):
        html = render_page(t["unsub_done_title"], t["unsub_already"].format(**names), lang=lang)
        return HTMLResponse(html, headers=NO_STORE)
    html = render_page(
        t["unsub_ask_title"],
        t["unsub_ask"].format(**names),
        lang=lang,
        form_action=str(request.url.path),
        button=t["unsub_button"],
    )
    return HTMLResponse(html, headers=NO_STORE)


async def open_pixel(request: Request) -> Response:
    found = await _email_for(request, load_open_token)
    if found is None:
        return invalid_link(request)
    email, _ = found
    if request.method == "GET":
        now = time.time()
        ua = request.headers.get("user-agent")
        try:
            await emails.record_open(
                services(request).store.db, email["id"], is_proxy_open(ua, email["sent_at"], now), ua, now
            )
        except Exception:  # an open is worth less than the image: never a broken picture for it
            log.exception("recording an open failed")
    return Response(
        PIXEL,
        media_type="image/gif",
        headers={
            "Cache-Control": "no-store, no-cache, must-revalidate, max-age=0",
            "Pragma": "no-cache",
            "Expires": "0",
            "Referrer-Policy": "no-referrer",
        },
    )


routes = [
    Route("/r/{token}", recover, methods=["GET"]),
    Route("/u/{token}", unsubscribe, methods=["GET", "POST"]),
    Route("/o/{token}.gif", open_pixel, methods=["GET"]),
]
