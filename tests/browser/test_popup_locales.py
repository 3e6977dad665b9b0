"""The popup in each locale in real Chromium: no English fixed text, `lang` on the dialog, "auto" following
the page (Shopify.locale over <html lang>), the cart reporting its page's language; and a test variant that
changes one colour changes only that one."""

from __future__ import annotations

from collector.locales import LOCALES, texts
from tests.browser.conftest import ready, shadow, wait_popup, wait_until
from tests.test_locales import assert_no_english

SHOWN_TEXT = """[r.textContent, ...[...r.querySelectorAll('[aria-label],[placeholder]')].map(
    e => (e.getAttribute('aria-label') || '') + ' ' + (e.getAttribute('placeholder') || ''))].join(' ')"""


def page_in(shop, lang: str, before: str = "") -> str:
    shop.n += 1
    html = f"""<!doctype html><html lang="{lang}"><head><meta charset="utf-8"><title>Boutique</title></head>
<body><main><h1>Boutique</h1></main>{before}{shop.site["snippet"]}</body></html>"""
    return shop.storefront.add(f"/{shop.site['key']}/l{shop.n}", html)


def show(page) -> None:
    page.evaluate("() => cartback('show')")
    wait_popup(page)


def test_each_locales_popup_has_no_english_and_carries_lang(shop):
    ctx = shop.context()
    for locale in LOCALES:
        shop.create_site({"require_consent": True, "discount_code": "RABAT"}, locale=locale)
        page = ctx.new_page()
        page.goto(page_in(shop, "en"))  # the page's language does not matter unless the site says "auto"
        ready(page)
        show(page)
        t = texts(locale, "popup")
        assert shadow(page, "r.querySelector('[role=dialog]').getAttribute('lang')") == locale
        assert shadow(page, "r.querySelector('.x').getAttribute('aria-label')") == t["close"]
        assert shadow(page, "r.querySelector('h2').textContent") == t["headline"]
        before = shadow(page, SHOWN_TEXT)
        # A wrong address and a missing tick, told in the locale.
        shadow(page, "(r.querySelector('[type=email]').value = 'nope', r.querySelector('.b').click(), 1)")
        assert shadow(page, "r.querySelector('.e').textContent") == t["invalid_email"]
        shadow(page, "(r.querySelector('[type=email]').value = 'ann@example.com', r.querySelector('.b').click(), 1)")
        assert shadow(page, "r.querySelector('.e').textContent") == t["need_consent"]
        shadow(page, "(r.querySelector('[name=consent]').click(), r.querySelector('.b').click(), 1)")
        assert shadow(page, "r.querySelector('[data-cartback-code]').textContent") == "RABAT"
        after = shadow(page, SHOWN_TEXT)
        assert t["your_code"] in after and t["copy"] in after
        if locale == "en":
            assert "Not buying today?" in before
        else:
            assert_no_english(before + " " + after, locale)
        page.close()


def test_auto_follows_shopify_locale_then_html_lang_then_english(shop):
    shop.create_site(locale="auto")
    ctx = shop.context()
    cases = [
        ("fr-CA", "", "fr"),
        ("fr", "<script>window.Shopify = {locale: 'de'};</script>", "de"),
        ("pt_BR", "", "pt"),
        ("ja", "", "en"),
        ("", "", "en"),
    ]
    for lang, before, want in cases:
        page = ctx.new_page()
        page.goto(page_in(shop, lang, before))
        ready(page)
        show(page)
        assert shadow(page, "r.querySelector('[role=dialog]').getAttribute('lang')") == want, (lang, before)
        assert shadow(page, "r.querySelector('h2').textContent") == texts(want, "popup")["headline"]
        page.close()


def test_the_cart_reports_the_language_of_its_page(shop):
    shop.create_site(locale="auto")
    page = shop.open(page_in(shop, "nl-BE"))
    page.evaluate("() => cartback('cart', {items: [{id: 'a', name: 'Mok', price: 9, quantity: 1}], currency: 'EUR'})")
    carts = wait_until(lambda: shop.query("SELECT locale FROM carts"))
    assert carts == [{"locale": "nl"}]


def test_a_variant_that_sets_only_the_button_colour_keeps_the_sites_other_colours(shop):
    site_colors = {"background": "#fefce8", "text": "#14213d", "button": "#15803d", "button_text": "#ffffff"}
    variant_colors = {"button": "#1d4ed8"}
    shop.create_site(
        {"colors": site_colors},
        experiments=[
            {
                "name": "blue",
                "kind": "popup",
                "variants": [
                    {"name": "A", "popup": {"colors": variant_colors}},
                    {"name": "B", "popup": {"colors": variant_colors}},
                ],
            }
        ],
    )
    page = shop.open(page_in(shop, "en"))
    show(page)
    style = shadow(
        page,
        "(() => { const s = getComputedStyle(r.querySelector('.d')), b = getComputedStyle(r.querySelector('.b'));"
        " return [s.backgroundColor, s.color, b.backgroundColor, b.color]; })()",
    )
    assert style == ["rgb(254, 252, 232)", "rgb(20, 33, 61)", "rgb(29, 78, 216)", "rgb(255, 255, 255)"]
