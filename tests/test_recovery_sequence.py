"""The reminder sequence against a real SMTP server: abandonment, both steps at the right times, what the
message carries, escaping, the recovery link, the dev mailbox, subject experiments and the code pool."""

from __future__ import annotations

import json
import re
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

import pytest

from collector.experiments import assign_email
from collector.recovery.sweep import sweep_once
from collector.schemas import SiteSettings
from tests.conftest import SHOP_ORIGIN
from tests.recovery_support import (
    EVIL,
    MINUTE,
    MUG,
    Shopper,
    SmtpServer,
    cli,
    cli_env,
    one,
    rows,
    self_signed_certificate,
    server_tls_context,
    settings,
    sweep_state,
)


async def test_abandoned_lead_gets_step_one_then_step_two_at_the_right_times(app, client, store, smtp):
    site = await store.sites.create("Test shop", [SHOP_ORIGIN], settings())
    ann = Shopper(client, site)
    await ann.lead("Ann@Example.com")
    await ann.cart(MUG, EVIL)
    t0 = time.time()
    state = sweep_state(app, smtp.url)

    # Not quiet for abandon_after_minutes yet: nothing happens.
    s = await sweep_once(state, now=t0 + 59 * MINUTE)
    assert s == {"abandoned": 0, "sent": 0, "failed": 0, "retried": 0, "webhooks": 0}
    assert smtp.messages == []

    # Abandoned: step one (delay 0) goes in the same pass.
    t_abandon = t0 + 61 * MINUTE
    s = await sweep_once(state, now=t_abandon)
    assert (s["abandoned"], s["sent"]) == (1, 1)
    cart = await one(store, "SELECT * FROM carts")
    assert cart["status"] == "abandoned" and cart["abandoned_at"] == t_abandon
    assert len(smtp.messages) == 1
    first = smtp.messages[0]
    msg = first.message
    assert first.to == "ann@example.com" and first.mail_from == "shop@shop.test"
    assert msg["Subject"] == "You left something in your cart"
    assert msg["From"] == "Test Shop <shop@shop.test>"
    unsub = re.fullmatch(r"<(http://collector\.test/u/[^>]+)>", msg["List-Unsubscribe"])
    assert unsub, msg["List-Unsubscribe"]
    assert msg["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert msg["Message-ID"].startswith(f"<cartback.{site.key}.")
    html, text = first.part("html"), first.part("plain")
    # Items with image, name, quantity and price in the currency; the button; the footer.
    assert "Enamel mug" in html and 'src="https://shop.test/img/mug.png"' in html
    assert "€14.00" in html and "€28.00" in html and "€31.50" in html
    recovery = re.search(r'href="(http://collector\.test/r/[^"]+)"', html)
    assert recovery, "no recovery link in the HTML part"
    assert f'href="{unsub.group(1)}"' in html
    assert "Your mug is waiting" in html  # the preheader
    # Shopper-typed text is escaped in HTML, and plain in the text part.
    assert "<img src=x onerror=alert(1)>" not in html
    assert "&lt;img src=x onerror=alert(1)&gt;" in html
    assert "<img src=x onerror=alert(1)>: 1 x €3.50" in text
    assert recovery.group(1) in text and unsub.group(1) in text
    assert "SAVE10" not in html  # step one has no code

    # Step two is due 1440 minutes after abandonment, not before.
    s = await sweep_once(state, now=t_abandon + 1439 * MINUTE)
    assert s["sent"] == 0 and len(smtp.messages) == 1
    s = await sweep_once(state, now=t_abandon + 1441 * MINUTE)
    assert s["sent"] == 1 and len(smtp.messages) == 2
    second = smtp.messages[1]
    assert second.message["Subject"] == "Still thinking? Here's 10% off"
    assert "SAVE10" in second.part("html") and "SAVE10" in second.part("plain")
    emails = await rows(store, "SELECT * FROM emails ORDER BY step")
    assert [(e["step"], e["status"], e["discount_code"]) for e in emails] == [(0, "sent", None), (1, "sent", "SAVE10")]
    assert emails[1]["due_at"] == t_abandon + 1440 * MINUTE

    # Nothing more to send, ever.
    s = await sweep_once(state, now=t_abandon + 100 * 1440 * MINUTE)
    assert s["sent"] == 0 and len(smtp.messages) == 2

    # The recovery link records the click and lands on the cart page with a restore token...
    r = await client.get(recovery.group(1).removeprefix("http://collector.test"))
    assert r.status_code == 303
    target = urlsplit(r.headers["location"])
    assert (target.scheme, target.netloc, target.path) == ("https", "shop.test", "/cart")
    restore_token = parse_qs(target.query)["cartback_restore"][0]
    clicked = await one(store, "SELECT clicked_at, click_count FROM emails WHERE step = 0")
    assert clicked["clicked_at"] is not None and clicked["click_count"] == 1
    await client.get(recovery.group(1).removeprefix("http://collector.test"))
    again = await one(store, "SELECT clicked_at, click_count FROM emails WHERE step = 0")
    assert again["clicked_at"] == clicked["clicked_at"] and again["click_count"] == 2
    # ...which the snippet exchanges for the saved cart, on any device (a new visitor id).
    r = await client.get(
        f"/c/{site.key}/restore",
        params={"t": restore_token, "vid": "another-device-01"},
        headers={"Origin": SHOP_ORIGIN},
    )
    assert r.status_code == 200
    restored = r.json()
    assert [i["name"] for i in restored["items"]] == ["Enamel mug", EVIL["name"]]
    assert restored["currency"] == "EUR" and restored["discount_code"] == "SAVE10"


async def test_without_smtp_emails_go_to_the_dev_mailbox(app, client, store):
    site = await store.sites.create("Test shop", [SHOP_ORIGIN], settings(abandon_after_minutes=0))
    ann = Shopper(client, site)
    await ann.lead("ann@example.com")
    await ann.cart(MUG)
    s = await sweep_once(sweep_state(app, None), now=time.time() + 1)
    assert (s["abandoned"], s["sent"]) == (1, 1)
    box = await one(store, "SELECT * FROM mailbox")
    headers = json.loads(box["headers"])
    assert box["to_addr"] == "ann@example.com" and box["from_addr"] == "Test Shop <shop@shop.test>"
    assert box["subject"] == "You left something in your cart"
    assert headers["List-Unsubscribe"].startswith("<http://collector.test/u/")
    assert headers["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert "Enamel mug" in box["html"] and "Enamel mug" in box["text"]
    email_row = await one(store, "SELECT * FROM emails WHERE step = 0")
    assert email_row["status"] == "sent" and box["email_id"] == email_row["id"] and box["site_id"] == site.id


async def test_a_newer_cart_of_the_same_shopper_carries_the_sequence(app, client, store, smtp):
    # Smart sending off: with it, the newer cart's reminder within 16 h is skipped (tests/test_smart_sending.py).
    site = await store.sites.create("Test shop", [SHOP_ORIGIN], settings(smart_sending_hours=0))
    laptop = Shopper(client, site)
    await laptop.lead("ann@example.com")
    await laptop.cart(MUG)
    t0 = time.time()
    state = sweep_state(app, smtp.url)
    await sweep_once(state, now=t0 + 61 * MINUTE)
    assert len(smtp.messages) == 1
    # The same shopper builds a new cart on her phone: the laptop cart is replaced, its step two stops.
    phone = Shopper(client, site)
    await phone.identify("ann@example.com")
    await phone.cart({**MUG, "quantity": 5})
    carts = await rows(store, "SELECT status FROM carts ORDER BY id")
    assert [c["status"] for c in carts] == ["replaced", "open"]
    first = await rows(store, "SELECT status FROM emails WHERE cart_id = (SELECT MIN(id) FROM carts) ORDER BY step")
    assert [e["status"] for e in first] == ["sent", "cancelled"]
    # The phone cart is abandoned in its turn and gets its own sequence; one sequence per shopper.
    await sweep_once(state, now=time.time() + 61 * MINUTE)
    assert len(smtp.messages) == 2 and "Quantity: 5" in smtp.messages[1].part("html")
    await sweep_once(state, now=t0 + 3000 * MINUTE)
    subjects = [m.message["Subject"] for m in smtp.messages]
    assert subjects == [
        "You left something in your cart",
        "You left something in your cart",
        "Still thinking? Here's 10% off",
    ]


async def test_a_cart_that_comes_back_to_life_keeps_the_steps_already_sent(app, client, store, smtp):
    site = await store.sites.create("Test shop", [SHOP_ORIGIN], settings())
    ann = Shopper(client, site)
    await ann.lead("ann@example.com")
    await ann.cart(MUG)
    t0 = time.time()
    state = sweep_state(app, smtp.url)
    await sweep_once(state, now=t0 + 61 * MINUTE)
    # She comes back and changes the cart: it is open again, its unsent step waits.
    await ann.cart({**MUG, "quantity": 3})
    assert (await one(store, "SELECT status FROM carts"))["status"] == "open"
    assert [e["step"] for e in await rows(store, "SELECT step FROM emails")] == [0]
    # Quiet again: abandoned again; step one is not repeated, step two counts from the new abandonment.
    t1 = time.time() + 61 * MINUTE
    s = await sweep_once(state, now=t1)
    assert (s["abandoned"], s["sent"]) == (1, 0)
    step2 = await one(store, "SELECT * FROM emails WHERE step = 1")
    assert step2["status"] == "pending" and step2["due_at"] == t1 + 1440 * MINUTE
    await sweep_once(state, now=t1 + 1441 * MINUTE)
    assert [m.message["Subject"] for m in smtp.messages] == [
        "You left something in your cart",
        "Still thinking? Here's 10% off",
    ]
    assert "Quantity: 3" in smtp.messages[1].part("html")


async def test_subject_experiment_picks_the_subject_per_address(app, client, store, smtp):
    experiment = {
        "name": "subj",
        "kind": "subject",
        "step": 0,
        "variants": [{"name": "plain", "subject": "Your cart"}, {"name": "urgent", "subject": "Last chance!"}],
    }
    site = await store.sites.create(
        "Test shop", [SHOP_ORIGIN], settings(abandon_after_minutes=0, _experiments=[experiment])
    )
    addrs = [f"shopper{i}@example.com" for i in range(6)]
    for addr in addrs:
        s = Shopper(client, site)
        await s.lead(addr)
        await s.cart(MUG)
    await sweep_once(sweep_state(app, smtp.url), now=time.time() + 1)
    assert len(smtp.messages) == 6
    assert len({m.session for m in smtp.messages}) == 1, "one SMTP connection for the whole sweep"
    names = {"plain": "Your cart", "urgent": "Last chance!"}
    for m in smtp.messages:
        expected = assign_email("subj", m.to, [("plain", 1), ("urgent", 1)])
        assert m.message["Subject"] == names[expected]
        row = await one(store, "SELECT subject, variants FROM emails WHERE to_addr = ? AND step = 0", m.to)
        assert json.loads(row["variants"]) == {"subj": expected} and row["subject"] == names[expected]
    # Two shoppers (at least) got the two subject lines.
    assert {m.message["Subject"] for m in smtp.messages} == set(names.values())


async def test_code_pool_hands_each_code_out_once(app, client, store, smtp, database_url, tmp_path):
    steps = [{"delay_minutes": 0, "subject": "Here is your code", "use_code_pool": True, "discount_code": "FALLBACK"}]
    site = await store.sites.create("Test shop", [SHOP_ORIGIN], settings(abandon_after_minutes=0, steps=steps))
    codes = tmp_path / "codes.csv"
    codes.write_text('code,value\nONE-111,10%\nTWO-222,10%\n"THREE-333",10%\nONE-111,dup\n')
    env = cli_env(database_url, tmp_path)
    code, out, err = await cli(env, "codes", "import", "--site", site.key, str(codes))
    assert code == 0, err
    assert "imported 3 code(s)" in out and "3 unused" in out
    code, out, err = await cli(env, "codes", "import", "--site", site.key, "-", stdin=b"FOUR-444\nONE-111\n")
    assert code == 0 and "imported 1 code(s) (1 already in the pool)" in out
    code, _, err = await cli(env, "codes", "import", "--site", "pk_nope", str(codes))
    assert code == 2 and err.startswith("cartback: error:") and err.count("\n") == 1

    for i in range(5):
        s = Shopper(client, site)
        await s.lead(f"pool{i}@example.com")
        await s.cart(MUG)
    await sweep_once(sweep_state(app, smtp.url), now=time.time() + 1)
    sent = await rows(store, "SELECT id, to_addr, discount_code FROM emails ORDER BY id")
    handed = [e["discount_code"] for e in sent]
    assert sorted(handed[:4]) == ["FOUR-444", "ONE-111", "THREE-333", "TWO-222"]
    assert handed[4] == "FALLBACK"  # the pool ran dry: the step's static code
    for e in sent[:4]:
        pool = await one(store, "SELECT email_id, assigned_at FROM discount_codes WHERE code = ?", e["discount_code"])
        assert pool["email_id"] == e["id"] and pool["assigned_at"] is not None
        (m,) = smtp.handler.for_addr(e["to_addr"])
        assert e["discount_code"] in m.part("html")


async def test_smtp_login_with_an_encoded_password(app, client, store):
    server = SmtpServer(auth=("shop@shop.test", "p@ss:word/1"))
    server.start()
    try:
        site = await store.sites.create("Test shop", [SHOP_ORIGIN], settings(abandon_after_minutes=0))
        s = Shopper(client, site)
        await s.lead("ann@example.com")
        await s.cart(MUG)
        url = f"smtp://shop%40shop.test:p%40ss%3Aword%2F1@127.0.0.1:{server.port}"
        summary = await sweep_once(sweep_state(app, url), now=time.time() + 1)
        assert summary["sent"] == 1 and len(server.messages) == 1
        assert server.handler.logins[-1] == (b"shop@shop.test", b"p@ss:word/1")
    finally:
        server.stop()


async def test_abandonment_queues_the_abandoned_webhook_and_the_sweep_delivers_it(app, client, store):
    received: list[dict] = []

    class Hook(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))
            received.append({"event": self.headers["X-Cartback-Event"], "body": json.loads(body)})
            self.send_response(204)
            self.end_headers()

        def log_message(self, *args) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Hook)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}/hook"
        doc = settings(abandon_after_minutes=0).dump()
        doc["webhooks"] = [{"url": url, "events": ["abandoned"]}]
        site = await store.sites.create("Test shop", [SHOP_ORIGIN], SiteSettings.model_validate(doc))
        ann = Shopper(client, site)
        await ann.lead("ann@example.com")
        await ann.cart(MUG)
        s = await sweep_once(sweep_state(app, None), now=time.time() + 1)
        assert (s["abandoned"], s["sent"], s["webhooks"]) == (1, 1, 1)
        (hook,) = received
        cart = await one(store, "SELECT id FROM carts")
        assert hook["event"] == "abandoned" and hook["body"]["site"] == site.key
        data = hook["body"]["data"]
        assert data["cart_id"] == cart["id"] and data["email"] == "ann@example.com" and data["value"] == 28.0
        assert data["items"][0]["name"] == "Enamel mug"
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture(scope="module")
def certificate(tmp_path_factory) -> tuple[str, str]:
    return self_signed_certificate(tmp_path_factory.mktemp("tls"))


@pytest.mark.parametrize("tls", ["starttls", "smtps"])
async def test_tls_modes_send_over_a_verified_encrypted_connection(app, client, store, certificate, monkeypatch, tls):
    server = SmtpServer(tls=tls, ssl_context=server_tls_context(*certificate))
    server.start()
    try:
        site = await store.sites.create("Test shop", [SHOP_ORIGIN], settings(abandon_after_minutes=0))
        for addr in ("ann@example.com", "bob@example.com"):
            s = Shopper(client, site)
            await s.lead(addr)
            await s.cart(MUG)
        state = sweep_state(app, server.url)
        t0 = time.time() + 1
        # The certificate is not trusted yet: the connection fails, and that is a try later, not a loss.
        s1 = await sweep_once(state, now=t0)
        assert (s1["sent"], s1["failed"], s1["retried"]) == (0, 0, 2) and server.messages == []
        monkeypatch.setenv("SSL_CERT_FILE", certificate[0])
        s2 = await sweep_once(state, now=t0 + 3600)
        assert s2["sent"] == 2
        assert all(m.tls for m in server.messages)
        # One connection for the whole sweep.
        assert len({m.session for m in server.messages}) == 1
    finally:
        server.stop()
