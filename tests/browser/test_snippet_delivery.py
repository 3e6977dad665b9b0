"""Carts, leads and API calls reach the collector with the right values, once, whatever the network does."""

from __future__ import annotations

import json

from collector.experiments import assign
from collector.recovery.links import make_restore_token
from collector.security import Signer
from tests.browser.conftest import exit_top, local, outbox, ready, stays_closed, wait_popup, wait_until

CART = {
    "items": [
        {
            "id": "tee",
            "name": "Organic tee",
            "price": 20,
            "quantity": 2,
            "image": "https://shop.example/tee.png",
            "url": "https://shop.example/p/tee",
        },
        {"id": "mug", "name": "Mug", "price": 9.5, "quantity": 1},
    ],
    "currency": "eur",
}

# Records the window events and the dataLayer pushes the page would hand to a tag manager.
LISTEN = """<script>
  window.dataLayer = [];
  window.seen = [];
  ['shown', 'closed', 'lead', 'restore'].forEach(function (n) {
    addEventListener('cartback:' + n, function (e) { seen.push([n, e.detail]); });
  });
</script>"""


def site_rows(shop, table, where="", *args):
    return shop.query(
        f"SELECT t.* FROM {table} t JOIN sites s ON s.id = t.site_id WHERE s.key = ?{where}", shop.site["key"], *args
    )


def test_the_lead_and_the_cart_are_stored_with_the_right_values_and_the_code_is_shown(shop):
    experiments = [
        {
            "name": "offer",
            "kind": "discount",
            "variants": [
                {"name": "ten", "weight": 1, "discount_code": "TEN-OFF"},
                {"name": "fifteen", "weight": 1, "discount_code": "FIFTEEN-OFF"},
            ],
        },
        {
            "name": "words",
            "kind": "popup",
            "variants": [
                {"name": "plain", "weight": 2, "popup": {"headline": "Before you go"}},
                {
                    "name": "bold",
                    "weight": 1,
                    "popup": {
                        "headline": "Your cart misses you",
                        "colors": {
                            "background": "#123456",
                            "text": "#ffffff",
                            "button": "#ffcc00",
                            "button_text": "#000000",
                        },
                    },
                },
            ],
        },
    ]
    key = shop.create_site(
        {"only_with_cart": True, "reasons": ["Shipping costs", "Just browsing"]}, experiments=experiments
    )["key"]
    page = shop.open(shop.page_url(before=LISTEN))
    vid = local(page, key, "vid")
    expect = {e["name"]: assign(e["name"], vid, [(v["name"], v["weight"]) for v in e["variants"]]) for e in experiments}
    code = {"ten": "TEN-OFF", "fifteen": "FIFTEEN-OFF"}[expect["offer"]]
    headline = {"plain": "Before you go", "bold": "Your cart misses you"}[expect["words"]]

    # only_with_cart: nothing before the cart.
    page.wait_for_timeout(150)
    exit_top(page)
    assert stays_closed(page)

    page.evaluate(f"() => cartback('cart', {json.dumps(CART)})")
    carts = shop.wait_rows("SELECT * FROM carts")
    assert len(carts) == 1
    cart = carts[0]
    assert cart["visitor_id"] == vid and cart["status"] == "open"
    assert cart["currency"] == "EUR" and cart["value"] == 49.5 and cart["item_count"] == 3
    assert json.loads(cart["items"]) == [
        {
            "id": "tee",
            "name": "Organic tee",
            "price": 20.0,
            "quantity": 2,
            "image": "https://shop.example/tee.png",
            "url": "https://shop.example/p/tee",
        },
        {"id": "mug", "name": "Mug", "price": 9.5, "quantity": 1},
    ]

    exit_top(page)
    wait_popup(page)
    popup = page.locator("#cartback-popup")
    assert popup.locator("h2").inner_text() == headline
    if expect["words"] == "bold":
        assert popup.locator("[role=dialog]").evaluate("e => getComputedStyle(e).backgroundColor") == "rgb(18, 52, 86)"
    popup.get_by_role("button", name="Shipping costs").click()
    popup.locator("input[name=email]").fill("  Ann.Lee@Example.com ")
    popup.locator("button[type=submit]").click()
    assert popup.locator("[data-cartback-code]").inner_text() == code
    assert popup.get_by_role("button", name="Copy code").count() == 1

    leads = shop.wait_rows("SELECT * FROM leads")
    assert len(leads) == 1
    lead = leads[0]
    assert lead["email"] == "ann.lee@example.com" and lead["source"] == "popup" and lead["consent"] == 0
    assert lead["visitor_id"] == vid and lead["discount_code"] == code
    assert lead["cart_value"] == 49.5 and lead["currency"] == "EUR"
    assert json.loads(lead["variants"]) == expect
    assert shop.wait_rows("SELECT * FROM carts WHERE email = 'ann.lee@example.com'")

    by_type = {}
    shop.wait_rows("SELECT * FROM events WHERE type = 'reason'")
    for e in site_rows(shop, "events"):
        by_type.setdefault(e["type"], []).append(json.loads(e["data"]) if e["data"] else None)
    assert by_type["shown"] == [{"variants": expect}]
    assert by_type["reason"] == [{"reason": "Shipping costs", "variants": expect}]

    popup.get_by_role("button", name="Close").click()
    shop.wait_rows("SELECT * FROM events WHERE type = 'closed'")
    seen = page.evaluate("() => seen")
    assert [n for n, _ in seen] == ["shown", "lead", "closed"]
    assert seen[1][1] == {"email": "Ann.Lee@Example.com", "discount_code": code}
    layer = page.evaluate("() => dataLayer")
    assert {"event": "cartback:lead", "email": "Ann.Lee@Example.com", "discount_code": code} in layer
    assert [d["event"] for d in layer] == ["cartback:shown", "cartback:lead", "cartback:closed"]
    assert wait_until(lambda: outbox(page, key) == [])


def test_a_lead_given_while_the_collector_is_down_arrives_once_after_it_is_back(shop):
    key = shop.create_site()["key"]
    url = shop.page_url()
    page = shop.open(url)
    page.evaluate(f"() => cartback('cart', {json.dumps(CART)})")
    shop.wait_rows("SELECT * FROM carts")
    # The shopper moves the mouse: the popup's file comes (after the first interaction) while the
    # collector is still up.
    page.mouse.move(300, 300)
    page.wait_for_function("() => window.cartback.u && window.cartback.u.o")

    shop.collector.stop()
    page.evaluate("() => cartback('show')")
    wait_popup(page)
    page.locator("#cartback-popup input[name=email]").fill("offline@example.com")
    page.locator("#cartback-popup button[type=submit]").click()
    # The code shows at once: the lead waits in the outbox, not on the server.
    assert page.locator("#cartback-popup [data-cartback-code]").inner_text() == "SAVE10"
    page.wait_for_timeout(1500)  # a first attempt and a retry fail
    kinds = [i["k"] for i in outbox(page, key)]
    assert "lead" in kinds and kinds.count("lead") == 1

    shop.collector.start()
    page.reload()
    ready(page)
    leads = shop.wait_rows("SELECT * FROM leads WHERE email = 'offline@example.com'")
    assert len(leads) == 1 and leads[0]["discount_code"] == "SAVE10" and leads[0]["cart_value"] == 49.5
    assert wait_until(lambda: outbox(page, key) == [])
    for _ in range(2):
        page.reload()
        ready(page)
        page.wait_for_timeout(300)
    assert len(site_rows(shop, "events", " AND t.type = 'lead'")) == 1
    assert len(site_rows(shop, "leads")) == 1


def test_a_lost_acknowledgement_means_a_retry_that_is_stored_once(shop):
    key = shop.create_site()["key"]
    ctx = shop.context()
    page = shop.open(shop.page_url(), ctx)
    lost, sent = [], []

    def lose_the_answer(route):
        sent.append(json.loads(route.request.post_data))
        if not lost:
            # The collector gets and stores the lead, but its answer never reaches the page.
            route.fetch()
            lost.append(1)
            route.abort("connectionreset")
        else:
            route.continue_()

    page.route(shop.collector.url + "/c/*/lead", lose_the_answer)
    page.evaluate("() => cartback('show')")
    wait_popup(page)
    page.locator("#cartback-popup input[name=email]").fill("twice@example.com")
    page.locator("#cartback-popup button[type=submit]").click()
    assert wait_until(lambda: lost, page=page)
    assert len(shop.wait_rows("SELECT * FROM leads")) == 1
    # The retry (same client id) is acknowledged and the outbox empties, with one row stored.
    assert wait_until(lambda: outbox(page, key) == [], timeout=15)
    assert len(site_rows(shop, "events", " AND t.type = 'lead'")) == 1
    assert len(sent) == 2 and sent[0] == sent[1], "the retry is the same message with the same client id"


def test_calls_made_before_the_script_loads_are_all_kept(shop):
    shop.create_site({"only_with_cart": True})
    before = (
        LISTEN
        + f"""<script>
      window.cartback = window.cartback || function () {{ (window.cartback.q = window.cartback.q || []).push(arguments) }};
      cartback('cart', {json.dumps(CART)});
      cartback('identify', {{email: 'early@example.com', consent: true}});
      cartback('checkout', {{step: 'shipping'}});
      cartback('onRestore', function (cart) {{ window.restored = cart; }});
      cartback('purchase', {{order_id: 'A-1001', value: 49.5, currency: 'EUR'}});
      cartback('show');
      window.queued = window.cartback.q.length;
      window.loadedEarly = !!window.cartback._cb;
    </script>"""
    )
    page = shop.open(shop.page_url(before=before))
    assert page.evaluate("() => [queued, loadedEarly]") == [6, False]
    wait_popup(page)

    orders = shop.wait_rows("SELECT * FROM orders")
    assert [(o["order_id"], o["value"], o["currency"], o["email"]) for o in orders] == [
        ("A-1001", 49.5, "EUR", "early@example.com")
    ]
    carts = shop.query("SELECT * FROM carts")
    assert len(carts) == 1 and carts[0]["status"] == "purchased" and carts[0]["value"] == 49.5
    leads = shop.query("SELECT * FROM leads")
    assert [(r["email"], r["source"], r["consent"]) for r in leads] == [("early@example.com", "identify", 1)]
    steps = [json.loads(e["data"]) for e in site_rows(shop, "events", " AND t.type = 'checkout'")]
    assert steps == [{"step": "shipping"}]
    assert [n for n, _ in page.evaluate("() => seen")] == ["shown"]

    # Calls after the load go straight through the real function.
    page.evaluate("() => cartback('checkout', {step: 'payment'})")
    assert len(shop.wait_rows("SELECT * FROM events WHERE type = 'checkout'", count=2)) == 2


def test_a_recovery_link_restores_the_cart_once_on_another_device(shop):
    key = shop.create_site()["key"]
    first = shop.open(shop.page_url())
    first.evaluate(f"() => cartback('cart', {json.dumps(CART)})")
    first.evaluate("() => cartback('identify', {email: 'far@example.com'})")
    cart_id = shop.wait_rows("SELECT * FROM carts WHERE email = 'far@example.com'")[0]["id"]
    token = make_restore_token(Signer(shop.collector.env["CARTBACK_SECRET_KEY"]), cart_id)

    before = (
        LISTEN
        + """<script>
      window.cartback = window.cartback || function () { (window.cartback.q = window.cartback.q || []).push(arguments) };
      window.calls = [];
      cartback('onRestore', function (cart) { calls.push(['early', cart]); });
    </script>"""
    )
    base = shop.page_url(before=before)
    phone = shop.mobile_context()
    page = phone.new_page()
    page.goto(f"{base}?utm_source=email&cartback_restore={token}&b=2#top")
    ready(page)
    page.wait_for_function("() => calls.length === 1")
    page.evaluate("() => cartback('onRestore', function (cart) { calls.push(['late', cart]); })")
    calls = page.evaluate("() => calls")
    assert [c[0] for c in calls] == ["early", "late"]
    assert calls[0][1]["currency"] == "EUR" and [i["id"] for i in calls[0][1]["items"]] == ["tee", "mug"]
    assert page.evaluate("() => location.search + location.hash") == "?utm_source=email&b=2#top"
    assert [n for n, _ in page.evaluate("() => seen")] == ["restore"]
    assert page.evaluate("() => dataLayer")[0]["event"] == "cartback:restore"
    vid = local(page, key, "vid")
    # The browser that restored is not bound to the first shopper's address (issue 13: a link passed
    # on or planted must not send the opener's next carts to her).
    assert shop.query("SELECT * FROM visitors WHERE visitor_id = ?", vid) == []

    # The same link opened again in this tab: the cart was handed over already.
    page.goto(f"{base}?cartback_restore={token}")
    ready(page)
    page.wait_for_timeout(500)
    assert page.evaluate("() => calls") == []
    assert page.evaluate("() => location.search") == ""


def test_server_errors_are_retried_and_refused_input_is_dropped(shop):
    key = shop.create_site()["key"]
    page = shop.open(shop.page_url())
    answers = {"lead": [503, 429, 408], "cart": [422]}
    calls = []

    def flaky(route):
        kind = route.request.url.rsplit("/", 1)[1]
        calls.append(kind)
        if answers.get(kind):
            route.fulfill(
                status=answers[kind].pop(0),
                body='{"error": "test"}',
                headers={"Access-Control-Allow-Origin": shop.storefront.origin},
            )
        else:
            route.continue_()

    page.route(shop.collector.url + "/c/*/*", flaky)
    # A 4xx other than 408/429 says the input will never be accepted: dropped, not retried.
    page.evaluate(f"() => cartback('cart', {json.dumps(CART)})")
    assert wait_until(lambda: outbox(page, key) == [])
    assert calls == ["cart"] and shop.query("SELECT * FROM carts") == []

    # 503, 429 and 408 are retried (with backoff) until the collector takes it.
    page.evaluate("() => cartback('identify', {email: 'x@example.com'})")
    shop.wait_rows("SELECT * FROM leads")
    page.evaluate("() => cartback('show')")
    wait_popup(page)
    page.locator("#cartback-popup input[name=email]").fill("retry@example.com")
    page.locator("#cartback-popup button[type=submit]").click()
    # The network coming back ('online') retries at once, past the backoff.
    for n in (1, 2, 3):
        assert wait_until(lambda n=n: calls.count("lead") >= n, page=page)
        page.wait_for_timeout(50)
        page.evaluate("() => dispatchEvent(new Event('online'))")
    assert wait_until(lambda: not [i for i in outbox(page, key) if i["k"] == "lead"])
    assert calls.count("lead") == 4
    assert len(shop.query("SELECT * FROM leads WHERE email = 'retry@example.com'")) == 1
