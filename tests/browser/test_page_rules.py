"""Page-rule globs are matched without backtracking (issue 13): a glob like *a*a*…b, which a
regular expression takes minutes over on a 41-character path, is answered at once and correctly."""

from __future__ import annotations

from tests.browser.conftest import exit_top, stays_closed, wait_popup

EVIL = "*a" * 20 + "*b"


def test_a_pathological_glob_does_not_hang_the_shoppers_tab(shop):
    # Excluded by a glob that does not match the path (the worst case for a backtracking matcher),
    # included by one that does.
    shop.create_site({"pages": {"include": ["/*"], "exclude": [EVIL]}})
    key = shop.site["key"]
    page = shop.open(shop.page_url(path=f"/{key}/" + "a" * 40))
    page.wait_for_timeout(150)
    exit_top(page)
    wait_popup(page)  # the tab answered, and the glob that does not match excluded nothing
    page.close()

    shop.create_site({"pages": {"include": ["/*"], "exclude": ["*a" * 20 + "*"]}})
    key = shop.site["key"]
    page = shop.open(shop.page_url(path=f"/{key}/" + "a" * 40))
    page.wait_for_timeout(150)
    exit_top(page)
    assert stays_closed(page)  # this one matches: the page is excluded
