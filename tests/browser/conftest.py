"""Real headless Chromium (Debian's, never a downloaded build) against a live collector, with the
storefront served from another origin, the way a shop pastes the snippet."""

from __future__ import annotations

import json
import os
import shutil
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from playwright.sync_api import Browser, BrowserContext, Page, sync_playwright

CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]

# Fast settings for tests that are not about timing: armed at once, no cart needed.
FAST_POPUP = {"delay_ms": 100, "only_with_cart": False}


def chromium_path() -> str:
    path = os.environ.get("CARTBACK_TEST_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
    if not os.path.exists(path):
        # A browser test that cannot run its browser fails: it never skips silently.
        pytest.fail(f"Debian's chromium is missing ({path}): run `make browser-deps` or `apt-get install chromium`")
    return path


# Module scope, not session: while sync Playwright runs, its event loop counts as the running loop
# of the main thread, and the pytest-asyncio tests that follow the browser tests could not start
# theirs. Stopping it at the end of each module costs one browser launch (about a second) per file.
@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    path = chromium_path()
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=path, headless=True, args=CHROMIUM_ARGS)
        yield b
        b.close()


# In a page's HTML, the server sends what comes before this marker, stalls, then sends the rest:
# scripts in <head> then run while there is no <body> yet.
STALL = "<!--stall-->"


class Storefront:
    """A static server on its own free port (so its own origin) holding the test's HTML pages."""

    def __init__(self) -> None:
        pages: dict[str, str] = {}
        self.pages = pages

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                html = pages.get(self.path.split("?")[0])
                body = (html or "not found").encode()
                self.send_response(200 if html is not None else 404)
                self.send_header("Content-Type", "text/html; charset=utf-8")
                self.send_header("Cache-Control", "no-store")
                if STALL.encode() not in body:
                    self.send_header("Content-Length", str(len(body)))
                    self.end_headers()
                    self.wfile.write(body)
                    return
                # No length: the page ends when the connection closes (HTTP/1.0).
                self.end_headers()
                first, rest = body.split(STALL.encode(), 1)
                self.wfile.write(first + b" " * 2048)  # past the parser's first-chunk buffering
                self.wfile.flush()
                time.sleep(1.0)
                self.wfile.write(rest)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.origin = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def add(self, path: str, html: str) -> str:
        self.pages[path] = html
        return self.origin + path

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture(scope="session")
def storefront() -> Iterator[Storefront]:
    s = Storefront()
    yield s
    s.close()


def page_html(snippet: str, body: str = "", before: str = "", title: str = "Shop") -> str:
    """A storefront page: `before` runs ahead of the pasted snippet, `body` is the page's content."""
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title}</title></head>
<body style="margin:0;font-family:sans-serif">
<h1>{title}</h1>
<button id="before" type="button">Add to cart</button>
{body}
{before}
{snippet}
</body></html>"""


class Shop:
    """One test's world: a live collector with a site, the storefront, and a browser context."""

    def __init__(self, collector: Any, storefront: Storefront, browser: Browser) -> None:
        self.collector = collector
        self.storefront = storefront
        self.browser = browser
        self.errors: list[str] = []
        self.contexts: list[BrowserContext] = []
        self.site: dict[str, Any] = {}
        self.n = 0

    # -- set-up --------------------------------------------------------------------------
    def create_site(self, popup: dict[str, Any] | None = None, **settings: Any) -> dict[str, Any]:
        doc = {"popup": {**FAST_POPUP, **(popup or {})}, **settings}
        self.site = self.collector.create_site(origins=[self.storefront.origin], settings=doc)
        return self.site

    def page_url(self, body: str = "", before: str = "", path: str | None = None) -> str:
        self.n += 1
        path = path or f"/{self.site['key']}/p{self.n}"
        return self.storefront.add(path, page_html(self.site["snippet"], body=body, before=before))

    def context(self, **options: Any) -> BrowserContext:
        ctx = self.browser.new_context(**{"viewport": {"width": 1024, "height": 700}, **options})
        ctx.set_default_timeout(10_000)
        ctx.on("page", self._watch)
        self.contexts.append(ctx)
        return ctx

    def mobile_context(self) -> BrowserContext:
        return self.context(
            viewport={"width": 390, "height": 664}, is_mobile=True, has_touch=True, device_scale_factor=2
        )

    def _watch(self, page: Page) -> None:
        page.on("pageerror", lambda exc: self.errors.append(f"{page.url}: {exc}"))

    def open(self, url: str, ctx: BrowserContext | None = None) -> Page:
        page = (ctx or self.context()).new_page()
        page.goto(url)
        ready(page)
        return page

    # -- looking at what happened --------------------------------------------------------
    def query(self, sql: str, *args: Any) -> list[dict[str, Any]]:
        return self.collector.query(sql, *args)

    def wait_rows(self, sql: str, *args: Any, count: int = 1, timeout: float = 10.0) -> list[dict[str, Any]]:
        """Polls the collector's database until the query returns `count` rows (or more)."""
        deadline = time.monotonic() + timeout
        while True:
            rows = self.query(sql, *args)
            if len(rows) >= count or time.monotonic() > deadline:
                return rows
            time.sleep(0.1)

    def assert_no_page_errors(self) -> None:
        assert self.errors == [], f"errors reached the page: {self.errors}"

    def close(self) -> None:
        for ctx in self.contexts:
            ctx.close()


def platform_site(shop: Shop, fake: Any, cart_path: str) -> None:
    """The site of a platform fake (Shopify-like, WooCommerce-like): no popup, one reminder at once
    with a code that lands on the fake's cart page; the fake's pages carry the site's tag."""
    shop.site = shop.collector.create_site(
        origins=[fake.origin],
        settings={
            "popup": {"enabled": False},
            "recovery": {
                "abandon_after_minutes": 0,
                "cart_url": fake.origin + cart_path,
                "from": "Test Shop <shop@shop.test>",
                "steps": [{"delay_minutes": 0, "subject": "Your cart", "discount_code": "COMEBACK15"}],
            },
        },
    )
    fake.snippet = shop.site["snippet"]


@pytest.fixture
def shop(live_collector: Any, storefront: Storefront, browser: Browser) -> Iterator[Shop]:
    s = Shop(live_collector, storefront, browser)
    try:
        yield s
        s.assert_no_page_errors()
    finally:
        s.close()


# -- page helpers ------------------------------------------------------------------------
def ready(page: Page) -> None:
    """Waits until the snippet has loaded and replaced the stub."""
    page.wait_for_function("() => window.cartback && window.cartback._cb === 1")


def popup_open(page: Page) -> bool:
    return page.evaluate("() => !!document.getElementById('cartback-popup')")


def wait_popup(page: Page) -> None:
    page.wait_for_selector("#cartback-popup [role=dialog]")


def stays_closed(page: Page, ms: int = 400) -> bool:
    """True when the popup has not opened after `ms` (longer than the snippet's grace delay)."""
    page.wait_for_timeout(ms)
    return not popup_open(page)


def exit_top(page: Page, x: int = 500) -> None:
    """A real mouse that moves up and leaves the window through its top edge."""
    page.mouse.move(x, 400)
    page.mouse.move(x, 60, steps=4)
    page.mouse.move(x, -20, steps=2)


def outbox(page: Page, key: str) -> list[Any]:
    return json.loads(page.evaluate(f"() => localStorage.getItem('cb_{key}_q') || '[]'"))


def local(page: Page, key: str, name: str) -> Any:
    raw = page.evaluate(f"() => localStorage.getItem('cb_{key}_{name}')")
    return None if raw is None else json.loads(raw)


def shadow(page: Page, js: str) -> Any:
    """Evaluates `js` with `r` bound to the popup's shadow root."""
    return page.evaluate(f"() => {{ const r = document.getElementById('cartback-popup').shadowRoot; return ({js}); }}")


def wait_until(pred: Callable[[], Any], timeout: float = 10.0, interval: float = 0.05, page: Page | None = None) -> Any:
    """Polls `pred`; pass `page` when it reads what Playwright's handlers record (routes, events):
    the sync API runs those only while it is inside a call, so the wait goes through the page."""
    deadline = time.monotonic() + timeout
    while True:
        value = pred()
        if value or time.monotonic() > deadline:
            return value
        if page is not None:
            page.wait_for_timeout(interval * 1000)
        else:
            time.sleep(interval)
