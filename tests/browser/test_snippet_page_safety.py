"""The snippet stays out of the page's way: nothing thrown, nothing installed twice or over someone else."""

from __future__ import annotations

from tests.browser.conftest import STALL, exit_top, page_html, ready, wait_popup, wait_until


def test_bad_calls_never_throw_into_the_page(shop):
    shop.create_site()
    page = shop.open(shop.page_url())
    page.evaluate("""() => {
      const bad = [[], ['nope'], ['cart'], ['cart', null], ['cart', {items: 'x'}], ['cart', {items: [null, 5]}],
        ['identify'], ['identify', null], ['identify', {email: 42}], ['checkout'], ['purchase'], ['purchase', null],
        ['onRestore'], ['onRestore', 5], ['show', 1, 2], ['constructor'], ['__proto__'], ['hasOwnProperty', 'x'], [{}]];
      for (const args of bad) cartback(...args);
    }""")
    page.wait_for_timeout(300)
    wait_popup(page)  # the one valid call in there, show, did its job
    # Nothing on the wire is rejected either: bad input is cleaned up or not sent at all.
    assert shop.query("SELECT * FROM leads") == []


def test_the_tag_pasted_twice_installs_once(shop):
    shop.create_site()
    page = shop.open(shop.page_url(body=shop.site["snippet"]))
    page.wait_for_timeout(300)
    assert page.evaluate("() => document.querySelectorAll('script[async]').length") == 2
    exit_top(page)
    wait_popup(page)
    page.wait_for_timeout(300)
    assert page.locator("#cartback-popup").count() == 1
    assert len(shop.wait_rows("SELECT * FROM events WHERE type = 'shown'")) == 1
    page.wait_for_timeout(300)
    assert len(shop.query("SELECT * FROM events WHERE type = 'shown'")) == 1


def test_another_scripts_cartback_and_a_script_without_currentscript_are_left_alone(shop):
    shop.create_site()
    # Some other library already owns window.cartback: it is not a stub, so it stays.
    before = "<script>window.cartback = function mine() { return 'theirs'; };</script>"
    page = shop.context().new_page()
    page.goto(shop.page_url(before=before))
    page.wait_for_load_state("load")
    page.wait_for_timeout(300)
    assert page.evaluate("() => cartback()") == "theirs"

    # Run where document.currentScript is null (from a timer): the snippet does nothing at all.
    page = shop.open(shop.page_url())
    src = page.evaluate("() => document.querySelector('script[async]').src")
    text = page.evaluate("async (u) => (await fetch(u)).text()", src)
    assert '"__CARTBACK_CONFIG__"' not in text  # the collector put the site's config in
    bare = shop.context().new_page()
    bare.goto(shop.storefront.add(f"/{shop.site['key']}/bare", page_html("")))
    bare.evaluate("(t) => new Promise((ok) => setTimeout(() => { (0, eval)(t); ok(); }))", text)
    assert bare.evaluate("() => typeof window.cartback") == "undefined"
    assert bare.evaluate("() => localStorage.length") == 0


def test_a_throwing_onrestore_callback_does_not_stop_the_others(shop):
    shop.create_site()
    page = shop.open(shop.page_url())
    ready(page)
    # No recovery token in the URL: callbacks wait, and registering them throws nothing.
    page.evaluate(
        "() => { cartback('onRestore', () => { throw new Error('page bug'); }); cartback('onRestore', () => {}); }"
    )
    page.wait_for_timeout(200)


def test_the_tag_in_head_running_before_the_body_exists_still_shows_the_popup(shop):
    shop.create_site()
    stub = "window.cartback = window.cartback || function () { (window.cartback.q = window.cartback.q || []).push(arguments) };"
    html = f"""<!doctype html><html><head><meta charset="utf-8"><title>Head</title>
      <script>{stub} cartback('show');
        document.addEventListener('DOMContentLoaded', () => {{ window.beforeBody = !!window.cartback._cb; }});</script>
      {shop.site["snippet"]}
      </head>{STALL}<body><p>Slow body</p></body></html>"""
    page = shop.context().new_page()
    page.goto(shop.storefront.add(f"/{shop.site['key']}/head", html))
    wait_popup(page)
    assert page.evaluate("() => window.beforeBody") is True, "the snippet did not run before the body"
    assert page.locator("#cartback-popup").evaluate("e => e.parentNode === document.body")


def test_loading_a_page_costs_the_tag_one_request_and_the_popup_file_follows_the_first_interaction(shop):
    """The contract's "loading it costs the page one request": a page view with a cart (the popup may
    show) asks the collector for the tag and sends the cart, nothing else, until the shopper first
    moves; then the popup's file arrives, and an exit opens the popup."""
    shop.create_site()
    url = shop.page_url()
    ctx = shop.context()
    page = ctx.new_page()
    asked: list[str] = []
    page.on("request", lambda r: asked.append(f"{r.method} {r.url}") if r.url.startswith(shop.collector.url) else None)
    page.goto(url)
    ready(page)
    page.evaluate("cartback('cart', {currency: 'EUR', items: [{id: 'm', name: 'Mug', price: 14, quantity: 1}]})")
    page.wait_for_timeout(1500)  # idle time, twice over
    gets = [a for a in asked if a.startswith("GET ")]
    assert gets == [f"GET {shop.collector.url}/s/{shop.site['key']}.js"], asked
    assert all(a.startswith("POST ") and "/c/" in a for a in asked if a not in gets), asked
    page.mouse.move(300, 300)
    wait_until(lambda: any(a.endswith("/static/cartback-popup.js") for a in asked), page=page)
    exit_top(page)
    wait_popup(page)


def test_a_popup_file_that_could_not_be_fetched_is_fetched_again_at_the_next_ask(shop):
    """The collector out of reach at the shopper's first interaction: nothing reaches the page, and
    once it is back the next cartback('show') fetches the popup's file again and opens it."""
    shop.create_site()
    page = shop.open(shop.page_url())
    page.evaluate("cartback('cart', {currency: 'EUR', items: [{id: 'm', name: 'Mug', price: 14, quantity: 1}]})")
    shop.wait_rows("SELECT * FROM carts")
    shop.collector.stop()
    failed: list[str] = []
    page.on("requestfailed", lambda r: failed.append(r.url) if r.url.endswith("/cartback-popup.js") else None)
    page.mouse.move(300, 300)
    page.evaluate("cartback('show')")
    wait_until(lambda: failed, page=page)
    assert not page.evaluate("() => !!document.getElementById('cartback-popup')")
    shop.collector.start()
    page.evaluate("cartback('show')")
    wait_popup(page)
