"""Rendering reminder emails and the pages of the email links: Jinja2 with autoescape."""

from __future__ import annotations

import re
from collections.abc import Collection
from dataclasses import dataclass
from email.utils import parseaddr
from typing import Any
from urllib.parse import urlsplit

from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape

from collector.contrast import text_on
from collector.locales import texts
from collector.money import format_money
from collector.schemas import RecoveryEmail

_HTTP_URL = re.compile(r"^https?://[^\s\"'<>]+$", re.I)


def safe_url(value: Any) -> str | None:
    """Only http(s) URLs from the shopper's cart reach an href or src."""
    if isinstance(value, str) and _HTTP_URL.match(value.strip()):
        return value.strip()
    return None


_DEFAULT_PORTS = {"http": 80, "https": 443}


def url_origin(url: str) -> str | None:
    """scheme://host[:port] of a URL, lowercased, the scheme's default port left out."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return None
    scheme, host = parts.scheme.lower(), (parts.hostname or "").lower()
    if scheme not in _DEFAULT_PORTS or not host:
        return None
    if ":" in host:
        host = f"[{host}]"
    return f"{scheme}://{host}" if port in (None, _DEFAULT_PORTS[scheme]) else f"{scheme}://{host}:{port}"


def site_url(value: Any, origins: Collection[str]) -> str | None:
    """An item's link or image only when it points at one of the site's own origins.

    The cart's items come from the browser: anyone can report a cart whose item links to a
    phishing page, and the shop's branded reminder would carry it. So a link elsewhere is
    replaced by the recovery link, and an image from elsewhere is left out."""
    url = safe_url(value)
    if url is None:
        return None
    wanted = {o for o in (url_origin(x) for x in origins) if o}
    return url if url_origin(url) in wanted else None


def one_line(value: str) -> str:
    """Header-safe: no line breaks (a header with one is refused, or worse, injected)."""
    return re.sub(r"[\r\n\t]+", " ", value).strip()


_env = Environment(
    loader=PackageLoader("collector.recovery", "templates"),
    autoescape=select_autoescape(
        enabled_extensions=("html",), disabled_extensions=("txt",), default_for_string=True, default=True
    ),
    undefined=StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
)
_env.filters["money"] = format_money


@dataclass
class RenderedEmail:
    subject: str
    html: str
    text: str


def display_name(from_addr: str, fallback: str) -> str:
    name, _ = parseaddr(from_addr)
    return name or fallback


def render_email(
    *,
    site_name: str,
    from_addr: str,
    subject: str,
    preheader: str | None,
    items: list[dict[str, Any]],
    currency: str,
    discount_code: str | None,
    recovery_url: str,
    unsubscribe_url: str,
    open_pixel_url: str | None,
    step: int,
    locale: str = "en",
    look: RecoveryEmail | None = None,
    origins: Collection[str] = (),
) -> RenderedEmail:
    """One reminder in the shopper's language: the site's own texts (`look`) where set, else the
    locale's. Item links and images only to `origins` (the site's), see site_url."""
    look = look or RecoveryEmail()
    t = texts(locale, "email")
    lines = []
    total = 0.0
    for item in items:
        try:
            price = float(item.get("price") or 0)
            qty = int(item.get("quantity") or 1)
        except (TypeError, ValueError):
            price, qty = 0.0, 1
        total += price * qty
        lines.append(
            {
                "name": str(item.get("name") or ""),
                "quantity": qty,
                "price": format_money(price, currency, locale),
                "line_total": format_money(price * qty, currency, locale),
                "image": site_url(item.get("image"), origins),
                # A link elsewhere is not dropped but pointed at the shopper's own cart.
                "url": site_url(item.get("url"), origins) or (recovery_url if item.get("url") else None),
            }
        )
    shop = display_name(from_addr, site_name)
    ctx = {
        "shop": shop,
        "site_name": site_name,
        "subject": subject,
        "preheader": preheader or t["preheader"].format(shop=shop),
        "items": lines,
        "total": format_money(round(total, 2), currency, locale),
        "discount_code": discount_code,
        "recovery_url": recovery_url,
        "unsubscribe_url": unsubscribe_url,
        "open_pixel_url": open_pixel_url,
        "step": step,
        "lang": locale,
        "t": t,
        "logo_url": look.logo_url,
        "heading": look.heading or t["heading"],
        "intro": look.intro or (t["intro_first"] if step == 0 else t["intro_later"]),
        "button": look.button or t["button"],
        "footer": look.footer,
        "footer_reason": t["footer_reason"].format(site=site_name),
        "brand": look.brand_color,
        "brand_text": text_on(look.brand_color),
    }
    return RenderedEmail(
        subject=one_line(subject),
        html=_env.get_template("email.html").render(ctx),
        text=_env.get_template("email.txt").render(ctx),
    )


def render_page(
    title: str,
    message: str,
    *,
    lang: str = "en",
    form_action: str | None = None,
    button: str | None = None,
    link: str | None = None,
    link_text: str | None = None,
) -> str:
    """The plain pages behind the email links (unsubscribe, a link that is not valid)."""
    return _env.get_template("page.html").render(
        title=title, message=message, lang=lang, form_action=form_action, button=button, link=link, link_text=link_text
    )
