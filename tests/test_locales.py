"""Every fixed text a shopper reads comes in the site's language: reminder emails (HTML and text), the
pages behind their links, and the texts the snippet gets; each carries `lang`; "auto" follows the page."""

from __future__ import annotations

import html as htmllib
import json
import re
import string
import time

import pytest

from collector.locales import LOCALES, catalogue, effective, from_accept_language, primary, texts
from collector.recovery.sweep import sweep_once
from collector.schemas import SiteSettings
from collector.tag import public_config
from tests.conftest import SHOP_ORIGIN
from tests.recovery_support import MINUTE, Shopper, rows, sweep_state

OTHERS = [loc for loc in LOCALES if loc != "en"]
# A cart item whose name is no English word, so any English found is Cartback's.
TASSE = {"id": "sku-1", "name": "Tasse Émail", "price": 1234.5, "quantity": 1, "image": "https://shop.test/t.png"}
# English words that no other supported language writes as a word of its own.
ENGLISH_WORDS = re.compile(r"\b(?:your|the|you|cart|left|unsubscribe|reminders?|please|thanks|saved|waiting)\b", re.I)


def english_texts() -> list[str]:
    out: list[str] = []
    for group in catalogue("en").values():
        if isinstance(group, dict):
            for value in group.values():
                out += value if isinstance(value, list) else [value]
    return out


def visible(page: str) -> str:
    """The text a reader meets in an HTML page or email: tags gone, entities decoded, plus alt/aria/title texts."""
    attrs = " ".join(re.findall(r'(?:alt|aria-label|title|placeholder)="([^"]*)"', page))
    text = re.sub(r"<style.*?</style>|<[^>]+>", " ", page, flags=re.S)
    return htmllib.unescape(text + " " + attrs)


def assert_no_english(text: str, locale: str) -> None:
    own = {v for g in catalogue(locale).values() if isinstance(g, dict) for v in g.values() if isinstance(v, str)}
    for phrase in english_texts():
        # A phrase the two languages spell alike ("Total") is not English leaking through.
        head = phrase.split("{")[0].strip()
        if len(head) > 3 and phrase not in own:
            assert not re.search(rf"(?<!\w){re.escape(head)}(?!\w)", text), f"{locale}: English {head!r} in {text!r}"
    found = ENGLISH_WORDS.findall(text)
    assert not found, f"{locale}: English words {found} in {text!r}"


def test_every_catalogue_has_the_english_keys_and_placeholders():
    en = catalogue("en")
    for loc in LOCALES:
        cat = catalogue(loc)
        for group in ("popup", "email", "pages"):
            assert set(cat[group]) == set(en[group]), (loc, group)
            for key, value in cat[group].items():
                assert value, (loc, group, key)
                if isinstance(value, str):
                    names = {f for _, f, _, _ in string.Formatter().parse(value) if f}
                    want = {f for _, f, _, _ in string.Formatter().parse(en[group][key]) if f}
                    assert names == want, (loc, key, names)
                else:
                    assert len(value) == len(en[group][key])


def test_language_tags_resolve_by_primary_subtag():
    assert primary("fr-CA") == "fr" and primary("pt_BR") == "pt" and primary("DE") == "de"
    assert primary("ja") is None and primary("") is None and primary("<script>") is None
    assert effective("auto", "fr-CA") == "fr" and effective("auto", "ja-JP") == "en" and effective("auto", None) == "en"
    assert effective("de", "fr") == "de"
    assert from_accept_language("ja, nl;q=0.8, de;q=0.9") == "de"
    assert from_accept_language("fr-CH, fr;q=0.9, en;q=0.8") == "fr"
    assert from_accept_language("xx;q=bad, ja") == "en"


@pytest.mark.parametrize("locale", OTHERS)
def test_the_snippet_gets_only_its_locales_popup_texts_and_the_site_texts_win(locale):
    settings = SiteSettings.model_validate({"locale": locale, "popup": {"button": "Los!"}})

    class FakeSite:  # public_config reads only these
        key = "k"

    FakeSite.settings = settings  # type: ignore[attr-defined]
    config = public_config(FakeSite(), "https://c.test")  # type: ignore[arg-type]
    assert list(config["texts"]) == [locale]
    assert config["texts"][locale] == texts(locale, "popup")
    assert config["popup"]["button"] == "Los!" and "headline" not in config["popup"]
    assert_no_english(" ".join(str(v) for v in texts(locale, "popup").values()), locale)


def test_auto_sends_the_small_table_of_every_locale():
    settings = SiteSettings.model_validate({"locale": "auto"})

    class FakeSite:
        key = "k"

    FakeSite.settings = settings  # type: ignore[attr-defined]
    config = public_config(FakeSite(), "https://c.test")  # type: ignore[arg-type]
    assert set(config["texts"]) == set(LOCALES)
    raw = len(json.dumps(config["texts"], ensure_ascii=False).encode())
    assert raw < 12_000, raw


def site_settings(locale: str, **recovery: object) -> SiteSettings:
    return SiteSettings.model_validate(
        {
            "locale": locale,
            "recovery": {
                "from": "Boutique Test <shop@shop.test>",
                "cart_url": "https://shop.test/cart",
                "steps": [{"delay_minutes": 0}, {"delay_minutes": 60, "discount_code": "RABAT10"}],
                **recovery,
            },
        }
    )


async def send_both_steps(app, client, store, smtp, settings: SiteSettings, page_locale: str | None = None):
    site = await store.sites.create("Boutique Test", [SHOP_ORIGIN], settings)
    shopper = Shopper(client, site)
    await shopper.lead("ann@example.com")
    if page_locale:
        await shopper.send("cart", items=[TASSE], currency="EUR", locale=page_locale)
    else:
        await shopper.cart(TASSE)
    state = sweep_state(app, smtp.url)
    t = time.time() + 61 * MINUTE
    assert (await sweep_once(state, now=t))["sent"] == 1
    assert (await sweep_once(state, now=t + 61 * MINUTE))["sent"] == 1
    return site


@pytest.mark.parametrize("locale", OTHERS)
async def test_each_locales_emails_and_pages_have_no_english_and_carry_lang(app, client, store, smtp, locale):
    await send_both_steps(app, client, store, smtp, site_settings(locale))
    t = texts(locale, "email")
    assert [m.message["Subject"] for m in smtp.messages] == [t["subject_first"], t["subject_later"]]
    for m in smtp.messages:
        html, text = m.part("html"), m.part("plain")
        assert re.search(rf'<html lang="{locale}"', html)
        assert_no_english(visible(html), locale)
        assert_no_english(text, locale)
        assert t["button"] in text and t["unsubscribe"] in visible(html)
    # Money in the locale's CLDR format (de "1.234,50 €", fr "1 234,50 €", en "€1,234.50").
    from collector.money import format_money

    assert format_money(1234.5, "EUR", locale) in smtp.messages[0].part("plain")

    # The pages behind the links: the unsubscribe question, the answer, the one for an unsubscribed address.
    unsub = re.search(r'href="http://collector\.test(/u/[^"]+)"', smtp.messages[0].part("html")).group(1)
    pages = [(await client.get(unsub)).text, (await client.post(unsub, data={"confirm": "1"})).text]
    pages.append((await client.get(unsub)).text)
    pages.append((await client.get("/u/not-a-token", headers={"Accept-Language": f"{locale}-XX, en;q=0.5"})).text)
    for page in pages:
        assert f'<html lang="{locale}">' in page
        assert_no_english(visible(page), locale)
    assert texts(locale, "pages")["unsub_button"] in pages[0]


async def test_english_is_the_control(app, client, store, smtp):
    await send_both_steps(app, client, store, smtp, site_settings("en"))
    html = smtp.messages[0].part("html")
    assert '<html lang="en"' in html and "Return to your cart" in html and "€1,234.50" in html


async def test_auto_writes_to_the_shopper_in_the_language_of_the_cart_page(app, client, store, smtp):
    await send_both_steps(app, client, store, smtp, site_settings("auto"), page_locale="fr-CA")
    assert (await rows(store, "SELECT locale FROM carts")) == [{"locale": "fr"}]
    html = smtp.messages[0].part("html")
    assert '<html lang="fr"' in html and texts("fr", "email")["button"] in html
    unsub = re.search(r'href="http://collector\.test(/u/[^"]+)"', html).group(1)
    assert '<html lang="fr">' in (await client.get(unsub)).text


async def test_auto_with_an_unsupported_page_language_is_english(app, client, store, smtp):
    await send_both_steps(app, client, store, smtp, site_settings("auto"), page_locale="ja-JP")
    assert (await rows(store, "SELECT locale FROM carts")) == [{"locale": None}]
    assert '<html lang="en"' in smtp.messages[0].part("html")


async def test_texts_the_site_writes_are_shown_as_written_in_any_locale(app, client, store, smtp):
    settings = site_settings(
        "de",
        steps=[{"delay_minutes": 0, "subject": "Dein Korb, Ann"}, {"delay_minutes": 60}],
        email={"heading": "Hallo!", "intro": "Schön, dass du da warst.", "button": "Jetzt zurück", "footer": "Gasse 1"},
    )
    await send_both_steps(app, client, store, smtp, settings)
    first, second = smtp.messages
    assert first.message["Subject"] == "Dein Korb, Ann"
    assert second.message["Subject"] == texts("de", "email")["subject_later"]
    for part in (first.part("html"), first.part("plain")):
        for written in ("Hallo!", "Schön, dass du da warst.", "Jetzt zurück", "Gasse 1"):
            assert htmllib.escape(written, quote=False) in part or written in part
