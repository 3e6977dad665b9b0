"""The fixed texts a shopper reads (popup, reminder emails, the pages behind their links), one JSON file per language.

Each `xx.json` here holds the same keys in three groups: `popup`, `email` and `pages`. The site's own
texts (settings) win; these fill what the site left out (null) and every label the site cannot set.
"""

from __future__ import annotations

import json
import re
from functools import cache
from pathlib import Path
from typing import Any, Literal

Locale = Literal["en", "de", "fr", "es", "it", "nl", "pt", "pl", "sv", "da"]
LocaleSetting = Literal["auto", "en", "de", "fr", "es", "it", "nl", "pt", "pl", "sv", "da"]
LOCALES: tuple[Locale, ...] = ("en", "de", "fr", "es", "it", "nl", "pt", "pl", "sv", "da")
DEFAULT: Locale = "en"
_DIR = Path(__file__).resolve().parent
_TAG = re.compile(r"^[A-Za-z]{2,3}(?:[-_][A-Za-z0-9]{1,8})*$")


@cache
def catalogue(locale: str) -> dict[str, dict[str, Any]]:
    """The whole catalogue of one supported locale (English for anything else)."""
    code = locale if locale in LOCALES else DEFAULT
    data: dict[str, dict[str, Any]] = json.loads((_DIR / f"{code}.json").read_text(encoding="utf-8"))
    return data


def texts(locale: str, group: Literal["popup", "email", "pages"]) -> dict[str, Any]:
    return catalogue(locale)[group]


def primary(tag: str | None) -> Locale | None:
    """The supported locale a language tag names by its primary subtag ("fr-CA" -> "fr"), or None."""
    if not tag or not _TAG.match(tag.strip()):
        return None
    code = re.split(r"[-_]", tag.strip())[0].lower()
    for loc in LOCALES:
        if loc == code:
            return loc
    return None


def effective(setting: str, page_locale: str | None) -> Locale:
    """The language of a shopper's emails and pages: the site's locale, or with "auto" the page's the cart came from."""
    if setting != "auto":
        return primary(setting) or DEFAULT
    return primary(page_locale) or DEFAULT


def from_accept_language(header: str | None) -> Locale:
    """For pages where no site is known (a broken link): the browser's first supported language."""
    best: tuple[float, int, Locale] | None = None
    for i, part in enumerate((header or "").split(",")[:20]):
        tag, _, params = part.strip().partition(";")
        q = 1.0
        if params.strip().startswith("q="):
            try:
                q = float(params.strip()[2:])
            except ValueError:
                q = 0.0
        loc = primary(tag)
        if loc is not None and q > 0 and (best is None or (q, -i) > (best[0], best[1])):
            best = (q, -i, loc)
    return best[2] if best else DEFAULT


def step_subject(locale: str, step: int) -> str:
    """The subject a reminder step has when the site leaves it out: the first step's, or the later ones'."""
    group = texts(locale, "email")
    return str(group["subject_first"] if step == 0 else group["subject_later"])
