"""Colours: the defaults pass WCAG AA, a reminder's button text is chosen to pass it, and a test variant
that names some colours changes only those, in the snippet's config and when the test is ended and kept."""

from __future__ import annotations

import pytest

from collector.contrast import BLACK, NEAR_BLACK, WHITE, passes_aa, ratio, text_on
from collector.experiments.ending import end_experiment
from collector.recovery.render import render_email
from collector.schemas import Colors, RecoveryEmail, SiteSettings
from collector.tag import public_config

SITE_COLORS = {"background": "#fefce8", "text": "#14213d", "button": "#15803d", "button_text": "#ffffff"}


def test_wcag_ratios_match_known_values():
    assert ratio("#000000", "#ffffff") == pytest.approx(21.0)
    assert ratio("#ffffff", "#ffffff") == pytest.approx(1.0)
    # The old default button, which axe-core flagged: 4.29:1.
    assert ratio("#ffffff", "#d9480f") == pytest.approx(4.30, abs=0.01)


def test_default_colours_pass_aa():
    c = Colors()
    assert passes_aa(c.text, c.background) and passes_aa(c.button_text, c.button)
    assert passes_aa(text_on(RecoveryEmail().brand_color), RecoveryEmail().brand_color)


@pytest.mark.parametrize("brand", ["#c2410c", "#ffd000", "#000000", "#ffffff", "#777777", "#2563eb", "#a3e635"])
def test_the_email_button_text_is_white_or_near_black_whichever_passes(brand):
    fg = text_on(brand)
    assert fg in (WHITE, NEAR_BLACK, BLACK) and passes_aa(fg, brand)
    html = render_email(
        site_name="S",
        from_addr="S <s@s.test>",
        subject="x",
        preheader=None,
        items=[],
        currency="EUR",
        discount_code=None,
        recovery_url="https://c.test/r/t",
        unsubscribe_url="https://c.test/u/t",
        open_pixel_url=None,
        step=0,
        look=RecoveryEmail(brand_color=brand),
    ).html
    assert f'bgcolor="{brand}"' in html and f"color:{fg};" in html


def test_logo_url_must_be_https():
    with pytest.raises(ValueError, match="https"):
        RecoveryEmail(logo_url="http://shop.test/logo.png")
    assert RecoveryEmail(logo_url="https://shop.test/logo.png").logo_url


def settings_with_colour_test() -> SiteSettings:
    return SiteSettings.model_validate(
        {
            "popup": {"colors": SITE_COLORS},
            "experiments": [
                {
                    "name": "blue",
                    "kind": "popup",
                    "variants": [{"name": "A"}, {"name": "B", "popup": {"colors": {"button": "#1d4ed8"}}}],
                }
            ],
        }
    )


def test_a_variant_sends_only_the_colours_it_names():
    class FakeSite:
        key = "k"
        settings = settings_with_colour_test()

    config = public_config(FakeSite(), "https://c.test")  # type: ignore[arg-type]
    assert config["experiments"][0]["variants"][1]["popup"] == {"colors": {"button": "#1d4ed8"}}
    assert config["popup"]["colors"] == SITE_COLORS


def test_ending_and_keeping_a_variant_changes_only_the_colours_it_names():
    ended = end_experiment(settings_with_colour_test(), "blue", "B")
    assert ended.popup.colors.model_dump() == {**SITE_COLORS, "button": "#1d4ed8"}
    assert ended.experiments[0].enabled is False
