"""The snippet: gzipped size, main-thread time at page load, and exit intent to a visible popup.

- Size: static/cartback.js gzipped at level 9 (as the build checks it), beside ouibounce's
  881 bytes gzipped for exit intent alone (the stated baseline); also what the collector
  really sends for a site (the settings inside, gzip).
- Main-thread time at load: Debian's Chromium (headless, through Playwright) loads a storefront
  page from its own origin twice over, with the tag and without it; Chrome's own counters
  (CDP Performance.getMetrics in thread ticks, the main thread's CPU time: TaskDuration, all
  main-thread work, and ScriptDuration) are read once the page has loaded and gone quiet. The
  figure is the difference of the medians of TaskDuration. The same on the Shopify-like and the
  WooCommerce-like fakes (tests/fakes/), a product page with an item in the cart, with the tag (so
  with the popup's file and the platform's adapter, and its cart read) and without it.
- Exit intent to visible: a real mouse (Playwright's, through Chromium's input pipeline)
  leaves through the top edge; performance.now() in the page at the mouseout that leaves the
  window, and at the first animation frame where the #cartback-popup host's dialog has a size.
Seven rounds of each; medians.

    .venv/bin/python bench/bench_snippet.py [--rounds 7]
"""

from __future__ import annotations

import argparse
import gzip
import re
import subprocess
import sys
import tempfile
import threading
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # tests.fakes: the platform stores

from _common import (
    PY,
    ROOT,
    bench_env,
    cartback,
    create_site,
    ensure_apt,
    ensure_pip,
    free_port,
    median,
    report,
    row,
    wait_http,
)

OUIBOUNCE_GZIP = 881
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
POPUP = {"popup": {"delay_ms": 100, "only_with_cart": False, "cap_days": 0}}

PAGE = """<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Blue enamel mug - Bench shop</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>body{font:16px/1.5 system-ui,sans-serif;margin:0}header,main,footer{padding:16px 32px}
.grid{display:grid;grid-template-columns:repeat(4,1fr);gap:16px}.card{border:1px solid #ddd;padding:12px;border-radius:8px}</style>
__TAG__
</head><body><header><h1>Bench shop</h1><nav><a href="/">Home</a> · <a href="/cart">Cart (2)</a></nav></header>
<main><h2>Blue enamel mug</h2><p>A sturdy mug for tea and coffee. 12.50 EUR.</p><button>Add to cart</button>
<div class="grid">__CARDS__</div></main><footer>© Bench shop</footer></body></html>"""
CARDS = "".join(f'<div class="card"><h3>Product {i}</h3><p>Something nice, {i + 5}.00 EUR</p></div>' for i in range(24))

MEASURE_EXIT = """
window.__cb = {exit: null, inserted: null, visible: null};
document.addEventListener('mouseout', (e) => {
  if (!e.relatedTarget && e.clientY <= 0 && window.__cb.exit === null) window.__cb.exit = performance.now();
}, true);
new MutationObserver(() => {
  if (window.__cb.inserted === null && document.getElementById('cartback-popup')) window.__cb.inserted = performance.now();
}).observe(document, {childList: true, subtree: true});
(function frame() {
  const host = document.getElementById('cartback-popup');
  const dialog = host && host.shadowRoot && host.shadowRoot.querySelector('[role=dialog]');
  if (dialog && window.__cb.exit !== null) {
    const r = dialog.getBoundingClientRect();
    if (r.width > 0 && r.height > 0 && getComputedStyle(dialog).visibility !== 'hidden') {
      window.__cb.visible = performance.now();
      return;
    }
  }
  requestAnimationFrame(frame);
})();
"""


class Storefront:
    def __init__(self, pages: dict[str, str]) -> None:
        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                body = pages.get(self.path.split("?")[0], "not found").encode()
                self.send_response(200 if self.path.split("?")[0] in pages else 404)
                self.send_header("Content-Type", "text/html; charset=utf-8")
                self.send_header("Content-Length", str(len(body)))
                self.send_header("Cache-Control", "no-store")
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.origin = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


# An item in the platform's cart before the measured load (the adapter then has a cart to read and report).
ADD_TO_CART = {
    "shopify": "fetch('/cart/add.js', {method: 'POST', headers: {'Content-Type': 'application/json'},"
    " body: JSON.stringify({items: [{id: 40000000001, quantity: 1}]})})",
    "woocommerce": "fetch('/?wc-ajax=add_to_cart', {method: 'POST', body: new URLSearchParams({product_id: '21', quantity: '1'})})",
}


def load_metrics(browser: Any, url: str, cart: str | None = None) -> dict[str, float]:
    ctx = browser.new_context(viewport={"width": 1280, "height": 800})
    try:
        page = ctx.new_page()
        if cart:
            # The cart is filled from another page of the same origin (its cookie), not measured.
            setup = ctx.new_page()
            setup.goto(url.split("/", 3)[0] + "//" + url.split("/", 3)[2] + "/nothing-here")
            setup.evaluate(f"() => {ADD_TO_CART[cart]}")
            setup.close()
        cdp = ctx.new_cdp_session(page)
        # Thread ticks: the main thread's own CPU time, so the machine's other load adds little.
        cdp.send("Performance.enable", {"timeDomain": "threadTicks"})
        page.goto(url, wait_until="load")
        if cart:
            # A fixed settle time, the same with and without the tag: the Shopify adapter's cart
            # attribute write leaves its (unread) answer open, so the network is never "idle".
            page.wait_for_timeout(2000)
        else:
            page.wait_for_load_state("networkidle")
            page.wait_for_timeout(300)
        metrics = {m["name"]: m["value"] for m in cdp.send("Performance.getMetrics")["metrics"]}
        return {"task": metrics["TaskDuration"] * 1000, "script": metrics["ScriptDuration"] * 1000}
    finally:
        ctx.close()


def exit_to_visible(browser: Any, url: str) -> tuple[float, float]:
    ctx = browser.new_context(viewport={"width": 1280, "height": 800})
    try:
        page = ctx.new_page()
        page.add_init_script(MEASURE_EXIT)
        page.goto(url, wait_until="load")
        page.wait_for_load_state("networkidle")
        page.wait_for_timeout(300)  # past delay_ms
        page.mouse.move(500, 400)
        page.mouse.move(500, 60, steps=4)
        page.mouse.move(500, -20, steps=2)
        page.wait_for_function("() => window.__cb.visible !== null", timeout=10_000)
        m = page.evaluate("() => window.__cb")
        return m["visible"] - m["exit"], m["inserted"] - m["exit"]
    finally:
        ctx.close()


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=7)
    args = ap.parse_args()
    chromium = ensure_apt("chromium", "chromium")
    ensure_pip("playwright")
    from playwright.sync_api import sync_playwright

    from tests.fakes.shopify import ShopifyStore
    from tests.fakes.woocommerce import WooStore

    def gz(name: str) -> int:
        return len(gzip.compress((ROOT / "static" / name).read_bytes(), compresslevel=9, mtime=0))

    size, popup, shopify, woo = (gz(f"cartback{n}.js") for n in ("", "-popup", "-shopify", "-woocommerce"))
    source = (ROOT / "static" / "cartback.js").read_bytes()
    print(
        f"static/cartback.js (core): {len(source):,} bytes, {size:,} bytes gzipped (ouibounce: {OUIBOUNCE_GZIP});"
        f" cartback-popup.js {popup:,}; cartback-shopify.js {shopify:,}; cartback-woocommerce.js {woo:,} (gzipped)",
        flush=True,
    )
    print(
        f"a page loads: core + popup {size + popup:,} B; on Shopify core + adapter {size + shopify:,} B"
        f" (+ popup {size + shopify + popup:,}); on WooCommerce {size + woo:,} B (+ popup {size + woo + popup:,})",
        flush=True,
    )

    with tempfile.TemporaryDirectory(prefix="cartback-bench-snippet-") as t:
        db = Path(t) / "cartback.db"
        port = free_port()
        env = bench_env(db, f"http://127.0.0.1:{port}")
        cartback(env, "migrate")
        pages: dict[str, str] = {}
        shop = Storefront(pages)
        site = create_site(env, shop.origin, POPUP)
        pages["/with"] = PAGE.replace("__TAG__", site["snippet"]).replace("__CARDS__", CARDS)
        pages["/without"] = PAGE.replace("__TAG__", "").replace("__CARDS__", CARDS)
        # The platform stores: one with the tag of a site that has the store's origin, one without.
        platforms: dict[str, tuple[Any, Any, str]] = {}
        for kind, make, path in (
            ("shopify", ShopifyStore, "/products/enamel-mug"),
            ("woocommerce", WooStore, "/product/hoodie/"),
        ):
            tagged, bare = make(), make()
            tagged.snippet = create_site(env, tagged.origin, POPUP)["snippet"]
            platforms[kind] = (tagged, bare, path)
        proc = subprocess.Popen(
            [PY, "-m", "collector", "serve", "--host", "127.0.0.1", "--port", str(port)],
            env=env,
            cwd=ROOT,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            wait_http(f"http://127.0.0.1:{port}/healthz", proc)
            req = urllib.request.Request(
                f"http://127.0.0.1:{port}/s/{site['key']}.js", headers={"Accept-Encoding": "gzip"}
            )
            with urllib.request.urlopen(req) as r:
                served = len(r.read())
            print(f"served for a site (settings inside, gzip): {served:,} bytes", flush=True)
            with sync_playwright() as p:
                browser = p.chromium.launch(executable_path=chromium, headless=True, args=CHROMIUM_ARGS)
                try:
                    load_metrics(browser, shop.origin + "/with")  # warm-up: caches of the machine, not the page's
                    with_tag, without_tag, visible, inserted = [], [], [], []
                    on_platform: dict[str, tuple[list[float], list[float]]] = {k: ([], []) for k in platforms}
                    for r in range(args.rounds):
                        for kind, (tagged, bare, path) in platforms.items():
                            w = load_metrics(browser, tagged.origin + path, cart=kind)["task"]
                            wo = load_metrics(browser, bare.origin + path, cart=kind)["task"]
                            on_platform[kind][0].append(w)
                            on_platform[kind][1].append(wo)
                            print(
                                f"round {r + 1}: {kind} product page {w:.1f} ms with the tag, {wo:.1f} ms without",
                                flush=True,
                            )
                        without_tag.append(load_metrics(browser, shop.origin + "/without"))
                        with_tag.append(load_metrics(browser, shop.origin + "/with"))
                        v, i = exit_to_visible(browser, shop.origin + "/with")
                        visible.append(v)
                        inserted.append(i)
                        print(
                            f"round {r + 1}: main thread at load {with_tag[-1]['task']:.1f} ms with the tag,"
                            f" {without_tag[-1]['task']:.1f} ms without (script {with_tag[-1]['script']:.1f} /"
                            f" {without_tag[-1]['script']:.1f} ms); exit to popup in the DOM {i:.1f} ms, visible {v:.1f} ms",
                            flush=True,
                        )
                finally:
                    browser.close()
        finally:
            proc.terminate()
            proc.wait()

    task = median([m["task"] for m in with_tag]) - median([m["task"] for m in without_tag])
    script = median([m["script"] for m in with_tag]) - median([m["script"] for m in without_tag])
    vis = median(visible)
    added = {k: median(w) - median(wo) for k, (w, wo) in on_platform.items()}
    for tagged, bare, _ in platforms.values():
        tagged.close()
        bare.close()
    print(
        "median: on the product page the tag adds "
        + ", ".join(f"{added[k]:.1f} ms on {k} (with its adapter and cart read)" for k in added)
    )
    print(
        f"median: the tag adds {task:.1f} ms of main-thread work at load (script {script:.1f} ms);"
        f" exit intent to visible popup {vis:.1f} ms (in the DOM after {median(inserted):.1f} ms)"
    )
    grace = re.search(r"\bGRACE\s*=\s*(\d+)", (ROOT / "snippet" / "src" / "exit.js").read_text(errors="replace"))
    if grace:
        print(
            f"of which {grace.group(1)} ms is the snippet's own grace delay after the mouse leaves"
            f" (snippet/src/exit.js GRACE: a mouse that comes back within it cancels the popup)"
        )
    report(
        [
            row(
                "snippet: gzipped size, core (every page)",
                f"{size:,} B",
                f"{OUIBOUNCE_GZIP} B (ouibounce)",
                size / OUIBOUNCE_GZIP,
                "<= 5,120 B",
                size <= 5120,
            ),
            row(
                "snippet: core + popup's file (fetched at idle where the popup may show)",
                f"{size + popup:,} B",
                "",
                None,
                "",
                None,
            ),
            row(
                "snippet: core + Shopify adapter",
                f"{size + shopify:,} B",
                "",
                None,
                "<= 7,168 B",
                size + shopify <= 7168,
            ),
            row("snippet: core + WooCommerce adapter", f"{size + woo:,} B", "", None, "<= 7,168 B", size + woo <= 7168),
            row(
                "snippet: main-thread time added at load",
                f"{task:.1f} ms",
                "page without the tag",
                None,
                "<= 3 ms",
                task <= 3,
            ),
            *(
                row(
                    f"snippet: main-thread time added at load on {k} (adapter, cart read, popup's file)",
                    f"{added[k]:.1f} ms",
                    "the same store page without the tag",
                    None,
                    "<= 3 ms",
                    added[k] <= 3,
                )
                for k in added
            ),
            row("snippet: exit intent to popup visible", f"{vis:.1f} ms", "", None, "< 50 ms", vis < 50),
        ]
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
