"""The signed links: forged, altered, expired or misused tokens get a friendly page and never a cart;
the open pixel and how opens by privacy proxies are told apart; money, SMTP URLs, restore URLs."""

from __future__ import annotations

import re
import time

import pytest
from itsdangerous import TimestampSigner, URLSafeTimedSerializer

from collector.money import format_money
from collector.recovery.links import make_restore_token, with_restore_param
from collector.recovery.mailer import SmtpSettings
from collector.recovery.routes import PIXEL, is_proxy_open
from collector.recovery.sweep import sweep_once
from tests.conftest import SHOP_ORIGIN, TEST_SECRET
from tests.recovery_support import MUG, Shopper, one, rows, settings, sweep_state

IPHONE_MAIL = (
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Mobile/15E148"
)
DESKTOP = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0 Safari/537.36"


async def sent_email(app, client, store, sent_ago: float = 3600.0):
    """One reminder in the dev mailbox, sent `sent_ago` seconds ago; returns (site, links by kind, email row)."""
    site = await store.sites.create("Test shop", [SHOP_ORIGIN], settings(abandon_after_minutes=0))
    s = Shopper(client, site)
    await s.lead("ann@example.com")
    await s.cart(MUG)
    assert (await sweep_once(sweep_state(app, None), now=time.time() + 1))["sent"] == 1
    box = await one(store, "SELECT * FROM mailbox")
    await store.db.write(lambda tx: tx.execute("UPDATE emails SET sent_at = ?", time.time() - sent_ago))
    html = box["html"]
    links = {
        "r": re.search(r'href="http://collector\.test(/r/[^"]+)"', html).group(1),
        "u": re.search(r'href="http://collector\.test(/u/[^"]+)"', html).group(1),
        "o": re.search(r'src="http://collector\.test(/o/[^"]+\.gif)"', html).group(1),
    }
    email = await one(store, "SELECT * FROM emails WHERE id = ?", box["email_id"])
    return site, links, email


def alter(token: str) -> str:
    """Changes one character inside the signature (not the last one: its low bits are padding)."""
    head, _, sig = token.rpartition(".")
    c = sig[5]
    return f"{head}.{sig[:5]}{'A' if c != 'A' else 'B'}{sig[6:]}"


def old_token(value, purpose: str, age: float) -> str:
    class Past(TimestampSigner):
        def get_timestamp(self) -> int:
            return int(time.time() - age)

    return URLSafeTimedSerializer(TEST_SECRET, salt=f"cartback.{purpose}", signer=Past).dumps(value)


def assert_friendly(r) -> None:
    assert r.status_code in (400, 404), r.status_code
    assert r.headers["content-type"].startswith("text/html")
    assert "not valid" in r.text
    assert "location" not in r.headers
    assert "Enamel mug" not in r.text and "ann@" not in r.text and "Traceback" not in r.text


async def test_forged_altered_expired_and_misused_tokens_get_the_friendly_page(app, client, store):
    site, links, email = await sent_email(app, client, store)
    token = {k: v.split("/")[2].removesuffix(".gif") for k, v in links.items()}
    bad = {
        "forged": {k: "eyJlIjoxfQ.ZZZZZZ.forgedforgedforgedforgedfor" for k in token},
        "altered": {k: alter(v) for k, v in token.items()},
        "expired": {
            "r": old_token({"e": email["id"]}, "recovery", 31 * 86400),
            "u": old_token({"e": email["id"]}, "unsubscribe", 401 * 86400),
            "o": old_token({"e": email["id"]}, "open", 401 * 86400),
        },
        # A valid token of one kind is refused as another (an open pixel token is not a click).
        "misused": {"r": token["o"], "u": token["r"], "o": token["u"]},
        # Well signed but naming an email that does not exist.
        "unknown": {
            "r": old_token({"e": 99999}, "recovery", 0),
            "u": old_token({"e": 99999}, "unsubscribe", 0),
            "o": old_token({"e": 99999}, "open", 0),
        },
        "wrong shape": {
            "r": old_token({"e": "1"}, "recovery", 0),
            "u": old_token([1], "unsubscribe", 0),
            "o": old_token(None, "open", 0),
        },
        "huge": {k: "x" * 5000 for k in token},
    }
    for _case, t in bad.items():
        assert_friendly(await client.get(f"/r/{t['r']}"))
        assert_friendly(await client.get(f"/u/{t['u']}"))
        assert_friendly(
            await client.post(
                f"/u/{t['u']}",
                content=b"List-Unsubscribe=One-Click",
                headers={"Content-Type": "application/x-www-form-urlencoded"},
            )
        )
        assert_friendly(await client.get(f"/o/{t['o']}.gif"))
    # None of that recorded anything.
    after = await one(store, "SELECT click_count, open_count, proxy_open_count FROM emails WHERE id = ?", email["id"])
    assert after == {"click_count": 0, "open_count": 0, "proxy_open_count": 0}
    assert await rows(store, "SELECT * FROM unsubscribes") == []
    # The genuine links still work.
    assert (await client.get(links["r"])).status_code == 303
    assert (await client.get(links["u"])).status_code == 200


async def test_a_tampered_or_foreign_restore_token_gives_no_cart(app, client, store):
    site, links, email = await sent_email(app, client, store)
    r = await client.get(links["r"])
    restore = re.search(r"cartback_restore=([^&]+)", r.headers["location"]).group(1)
    h = {"Origin": SHOP_ORIGIN}
    assert (await client.get(f"/c/{site.key}/restore", params={"t": restore}, headers=h)).status_code == 200
    for t in (
        alter(restore),
        "nonsense",
        old_token({"c": email["cart_id"]}, "restore", 31 * 86400),
        make_restore_token(app.state.services.signer, email["cart_id"] + 1000),
    ):
        r = await client.get(f"/c/{site.key}/restore", params={"t": t}, headers=h)
        assert r.status_code == 404 and "items" not in r.text
    # A genuine token, but for another site's cart: nothing.
    other = await store.sites.create("Other shop", ["https://other.test"], settings())
    r = await client.get(f"/c/{other.key}/restore", params={"t": restore}, headers={"Origin": "https://other.test"})
    assert r.status_code == 404 and "Enamel" not in r.text


async def test_open_pixel_tells_people_from_proxies(app, client, store):
    site, links, email = await sent_email(app, client, store, sent_ago=3600)
    for ua in ("Mozilla/5.0", "Mozilla/5.0 (compatible; Barracuda Sentinel)", "python-requests/2.31", ""):
        r = await client.get(links["o"], headers={"User-Agent": ua})
        assert r.status_code == 200 and r.content == PIXEL and r.headers["content-type"] == "image/gif"
        assert "no-store" in r.headers["cache-control"]
    e = await one(store, "SELECT opened_at, open_count, proxy_open_count FROM emails WHERE id = ?", email["id"])
    # Four machine loads within the short window: one proxy open, and no person's open.
    assert e == {"opened_at": None, "open_count": 0, "proxy_open_count": 1}
    # A person, an hour after sending (a second load at once is the same open).
    await client.get(links["o"], headers={"User-Agent": DESKTOP})
    await client.get(links["o"], headers={"User-Agent": IPHONE_MAIL})
    e = await one(store, "SELECT opened_at, open_count, proxy_open_count FROM emails WHERE id = ?", email["id"])
    assert e["opened_at"] is not None and e["open_count"] == 1 and e["proxy_open_count"] == 1
    opens = await rows(store, "SELECT is_proxy, user_agent FROM opens ORDER BY id")
    assert [o["is_proxy"] for o in opens] == [1, 0]
    assert opens[-1]["user_agent"] == DESKTOP
    stats_opened = await one(store, "SELECT COUNT(*) AS n FROM emails WHERE opened_at IS NOT NULL")
    assert stats_opened["n"] == 1


async def test_an_open_seconds_after_sending_is_a_persons_open(app, client, store):
    site, links, email = await sent_email(app, client, store, sent_ago=2)
    await client.get(links["o"], headers={"User-Agent": DESKTOP})
    e = await one(store, "SELECT opened_at, open_count, proxy_open_count FROM emails WHERE id = ?", email["id"])
    assert e["opened_at"] is not None and e["open_count"] == 1 and e["proxy_open_count"] == 0


def test_proxy_rule():
    now = 10_000.0
    assert is_proxy_open("Mozilla/5.0", now - 3600, now)
    assert is_proxy_open(None, now - 3600, now)
    assert is_proxy_open("Mozilla/5.0 (compatible; Mimecast)", now - 3600, now)
    # Gmail's and Yahoo's proxies load the image when the reader opens the mail.
    assert not is_proxy_open(
        "Mozilla/5.0 (Windows NT 5.1; rv:11.0) Gecko Firefox/11.0 (via ggpht.com GoogleImageProxy)", now - 3600, now
    )
    assert not is_proxy_open(
        "YahooMailProxy; https://help.yahoo.com/kb/yahoo-mail-proxy-SLN28749.html", now - 3600, now
    )
    assert not is_proxy_open(DESKTOP, now - 5, now)  # read the moment it arrived
    assert not is_proxy_open(DESKTOP, now - 3600, now)
    assert not is_proxy_open(IPHONE_MAIL, None, now)


async def test_recovery_link_head_request_is_not_a_click(app, client, store):
    site, links, email = await sent_email(app, client, store)
    r = await client.head(links["r"])
    assert r.status_code == 303
    assert (await one(store, "SELECT click_count FROM emails WHERE id = ?", email["id"]))["click_count"] == 0


def test_money_is_formatted_for_the_currency_and_locale_by_cldr():
    assert format_money(14, "EUR") == "€14.00"
    assert format_money(1234.5, "USD") == "$1,234.50"
    assert format_money(1400, "JPY") == "¥1,400"
    assert format_money(14, "GBP") == "£14.00"
    # CLDR writes a code it has no symbol for before the number in English.
    assert format_money(14, "XYZ") == "XYZ14.00"
    assert format_money(1400, "ISK") == "ISK1,400"
    # The contract's examples: de "1.234,50 €", fr "1 234,50 €" (CLDR's no-break spaces).
    assert format_money(1234.5, "EUR", "de") == "1.234,50\xa0€"
    assert format_money(1234.5, "EUR", "fr") == "1\u202f234,50\xa0€"
    assert format_money(1234.5, "EUR", "en") == "€1,234.50"
    assert format_money(1234.5, None) == "1,234.50"


def test_smtp_urls():
    s = SmtpSettings.from_url("smtp://mail.example:2525")
    assert (s.hostname, s.port, s.use_tls, s.start_tls, s.username, s.password) == (
        "mail.example",
        2525,
        False,
        False,
        None,
        None,
    )
    s = SmtpSettings.from_url("smtp+starttls://user%40shop.test:p%40ss%3Aw@mail.example")
    assert (s.port, s.start_tls, s.use_tls, s.username, s.password) == (587, True, False, "user@shop.test", "p@ss:w")
    s = SmtpSettings.from_url("smtps://u:p@mail.example")
    assert (s.port, s.use_tls, s.start_tls) == (465, True, False)
    with pytest.raises(ValueError):
        SmtpSettings.from_url("http://mail.example")


def test_restore_param_is_added_to_the_cart_url():
    assert with_restore_param("https://shop.test/cart", "T.k-n") == "https://shop.test/cart?cartback_restore=T.k-n"
    assert (
        with_restore_param("https://shop.test/cart?lang=de&cartback_restore=old#top", "NEW")
        == "https://shop.test/cart?lang=de&cartback_restore=NEW#top"
    )
    assert with_restore_param("https://shop.test", "T") == "https://shop.test/?cartback_restore=T"


async def test_unsubscribe_page_escapes_the_shop_name(app, client, store):
    site, links, email = await sent_email(app, client, store)
    await store.sites.update(site.key, name="<script>alert(1)</script> Shop")
    r = await client.get(links["u"])
    assert "<script>alert(1)</script>" not in r.text and "&lt;script&gt;" in r.text
