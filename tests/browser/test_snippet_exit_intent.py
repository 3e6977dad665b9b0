"""Exit intent in real Chromium: a mouse leaving through the top on desktop, a fast scroll up on phones."""

from __future__ import annotations

import time

from tests.browser.conftest import exit_top, popup_open, stays_closed, wait_popup, wait_until


def test_a_mouse_leaving_through_the_top_opens_the_popup(shop):
    site = shop.create_site()
    page = shop.open(shop.page_url())
    page.wait_for_timeout(150)  # past delay_ms
    assert not popup_open(page)

    exit_top(page)

    wait_popup(page)
    dialog = page.locator("#cartback-popup [role=dialog]")
    assert dialog.get_attribute("aria-modal") == "true"
    assert dialog.locator("#" + dialog.get_attribute("aria-labelledby")).inner_text() == "Wait! Your cart is saved"
    shown = shop.wait_rows(
        "SELECT e.* FROM events e JOIN sites s ON s.id = e.site_id WHERE s.key = ? AND e.type = 'shown'", site["key"]
    )
    assert len(shown) == 1


def test_leaving_sideways_through_a_select_an_iframe_or_before_arming_does_not_open_it(shop):
    shop.create_site({"delay_ms": 1500})
    body = """
      <select id="size" style="position:absolute;top:4px;left:20px"><option>S<option>M<option>L</select>
      <iframe srcdoc="<p>video</p>" style="position:absolute;top:0;left:600px;width:300px;height:120px;border:0"></iframe>
      <div style="height:1500px"></div>"""
    page = shop.open(shop.page_url(body=body))
    start = time.monotonic()

    # Before the arming time (delay_ms) a real exit through the top is ignored.
    exit_top(page)
    assert time.monotonic() - start < 1.2
    assert stays_closed(page)
    page.wait_for_timeout(max(0, int((1.6 - (time.monotonic() - start)) * 1000)))

    # Sideways, out through the left and the right edges, halfway down.
    page.mouse.move(300, 350)
    page.mouse.move(-20, 350, steps=3)
    page.mouse.move(300, 350, steps=3)
    page.mouse.move(1050, 350, steps=3)
    assert stays_closed(page)

    # Out through the bottom.
    page.mouse.move(300, 350)
    page.mouse.move(300, 720, steps=3)
    assert stays_closed(page)

    # Opening a <select> at the very top and picking an option.
    page.mouse.move(300, 300)
    page.mouse.click(40, 12)
    page.mouse.move(40, 60, steps=3)
    page.mouse.move(45, 2, steps=3)
    page.keyboard.press("ArrowDown")
    page.keyboard.press("Enter")
    assert stays_closed(page)
    # Firefox reports a select's (or an autocomplete list's) popup as a mouseleave whose
    # relatedTarget is the control: that is not an exit.
    page.evaluate("""() => document.documentElement.dispatchEvent(new MouseEvent('mouseleave',
        {clientX: 40, clientY: 2, relatedTarget: document.getElementById('size')}))""")
    assert stays_closed(page)

    # Moving into an iframe at the top of the page.
    page.mouse.move(700, 300)
    page.mouse.move(700, 40, steps=4)
    page.mouse.move(750, 5, steps=2)
    assert stays_closed(page)
    page.evaluate("""() => document.documentElement.dispatchEvent(new MouseEvent('mouseleave',
        {clientX: 750, clientY: 5}))""")
    assert stays_closed(page)

    # Out through the top and straight back in, within the grace delay.
    page.evaluate("""() => { const d = document.documentElement;
        d.dispatchEvent(new MouseEvent('mouseleave', {clientX: 300, clientY: -5}));
        d.dispatchEvent(new MouseEvent('mouseenter', {clientX: 300, clientY: 5})); }""")
    assert stays_closed(page)

    # And the same page, armed, does open on a real exit through the top.
    exit_top(page, x=300)
    wait_popup(page)


def test_a_fast_scroll_up_on_a_phone_opens_it_and_a_slow_one_does_not(shop):
    shop.create_site()
    ctx = shop.mobile_context()
    page = shop.open(shop.page_url(body='<div style="height:6000px;background:linear-gradient(#eee,#999)"></div>'), ctx)
    assert page.evaluate("() => matchMedia('(pointer:coarse)').matches")
    page.evaluate("() => window.scrollTo(0, 3000)")
    page.wait_for_timeout(200)
    cdp = ctx.new_cdp_session(page)

    def swipe(dy: int, ms: int, steps: int) -> None:
        """A finger on the glass: touchStart, `steps` touchMoves over `ms`, touchEnd."""
        cdp.send("Input.dispatchTouchEvent", {"type": "touchStart", "touchPoints": [{"x": 200, "y": 150}]})
        for i in range(1, steps + 1):
            time.sleep(ms / 1000 / steps)
            cdp.send(
                "Input.dispatchTouchEvent",
                {"type": "touchMove", "touchPoints": [{"x": 200, "y": 150 + dy * i / steps}]},
            )
        cdp.send("Input.dispatchTouchEvent", {"type": "touchEnd", "touchPoints": []})

    # Scrolling up at a reading pace: about 0.6 px/ms (well over 100 px within 300 ms, under 1 px/ms).
    y0 = page.evaluate("() => scrollY")
    swipe(600, 1000, 16)
    page.wait_for_timeout(300)
    assert page.evaluate("() => scrollY") < y0 - 150, "the slow swipe did not scroll"
    assert stays_closed(page)

    # A flick toward the address bar.
    swipe(400, 80, 4)
    wait_popup(page)
    assert wait_until(lambda: page.evaluate("() => scrollY") < 2500)

    # The tab left for another app and come back to. (Headless Chromium never hides a tab, so the
    # page's visibility is switched by hand; the snippet only listens to visibilitychange.)
    other = shop.open(shop.page_url(), ctx)
    other.wait_for_timeout(150)
    other.evaluate("""() => { const flip = (h) => { Object.defineProperty(document, 'hidden', {value: h, configurable: true});
        document.dispatchEvent(new Event('visibilitychange')); }; flip(true); setTimeout(() => flip(false), 50); }""")
    wait_popup(other)


def test_display_rules_pages_and_enabled(shop):
    shop.create_site({"pages": {"include": ["/*/shop/*", "/*/cart"], "exclude": ["/*/shop/checkout*"]}})
    key = shop.site["key"]

    def exits_open(path: str) -> bool:
        page = shop.open(shop.page_url(path=f"/{key}{path}"))
        page.wait_for_timeout(150)
        exit_top(page)
        opened = not stays_closed(page)
        page.close()
        return opened

    assert exits_open("/shop/tee")
    assert exits_open("/cart")
    assert not exits_open("/shop/checkout/payment")
    assert not exits_open("/about")

    shop.create_site({"enabled": False})
    page = shop.open(shop.page_url())
    page.wait_for_timeout(150)
    exit_top(page)
    assert stays_closed(page)
    page.evaluate("() => cartback('show')")  # previews still work
    wait_popup(page)
