"""The dashboard's pages: Jinja2 (autoescaped), the filters they format with, and the helpers every page uses.

Pages are rendered server-side; the little JavaScript there is (copy buttons) is a static file,
so the pages run under a CSP without inline script.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from jinja2 import Environment, FileSystemLoader, select_autoescape
from starlette.requests import Request
from starlette.responses import HTMLResponse

from collector.exports import iso
from collector.money import format_money
from collector.services import services
from collector.store import Site

TEMPLATES = Path(__file__).resolve().parent / "templates"


def fmt_time(ts: float | None) -> str:
    if ts is None:
        return ""
    return datetime.fromtimestamp(ts, tz=UTC).strftime("%Y-%m-%d %H:%M UTC")


def fmt_pct(value: float | None) -> str:
    if value is None:
        return "–"
    return f"{value * 100:.1f}%"


env = Environment(
    loader=FileSystemLoader(str(TEMPLATES)),
    autoescape=select_autoescape(["html"], default_for_string=True, default=True),
    trim_blocks=True,
    lstrip_blocks=True,
)
env.filters["time"] = fmt_time
env.filters["iso"] = iso
env.filters["money"] = format_money
env.filters["pct"] = fmt_pct


def render(
    request: Request, name: str, status: int = 200, headers: dict[str, str] | None = None, **context: Any
) -> HTMLResponse:
    session = request.scope.get("cartback", {}).get("session")
    context.setdefault("session", session)
    context.setdefault("csrf", session.csrf if session else "")
    context.setdefault("path", request.url.path)
    # RFC 8058 wants the one-click unsubscribe URL (under CARTBACK_PUBLIC_URL) on HTTPS.
    context.setdefault("public_url_insecure", not request.app.state.services.config.public_url.startswith("https://"))
    html = env.get_template(name).render(**context)
    return HTMLResponse(html, status_code=status, headers=headers)


def not_found(request: Request, what: str = "site") -> HTMLResponse:
    return render(request, "error.html", status=404, title="Not found", message=f"There is no such {what}.")


async def site_of(request: Request) -> Site | None:
    """The site the path names, read past the cache (the owner may have just changed it)."""
    key = request.path_params["key"]
    return await services(request).store.sites.get(key, fresh=True) if len(key) <= 64 else None


def int_param(request: Request, name: str, default: int = 1) -> int:
    try:
        value = int(request.query_params.get(name, default))
    except ValueError:
        return default
    return max(1, min(value, 1_000_000))


def keyset_pagination(
    page: int, total: int, per_page: int, params: dict[str, str], newer: str | None, older: str | None
) -> dict[str, Any]:
    """The pager of a keyset page: links carry the cursor of the row to go on from, and the
    page number only as the label (the rows never depend on it)."""
    last = max(1, math.ceil(total / per_page))
    keep = {k: v for k, v in params.items() if v and k not in ("page", "after", "before")}
    page = min(max(1, page), last)
    return {
        "page": page,
        "last": last,
        "total": total,
        "prev": "?" + urlencode({**keep, "before": newer, "page": str(page - 1)}) if newer else None,
        "next": "?" + urlencode({**keep, "after": older, "page": str(page + 1)}) if older else None,
    }


def pagination(page: int, total: int, per_page: int, params: dict[str, str]) -> dict[str, Any]:
    last = max(1, math.ceil(total / per_page))
    keep = {k: v for k, v in params.items() if v and k != "page"}

    def link(p: int) -> str:
        return "?" + urlencode({**keep, "page": str(p)})

    return {
        "page": page,
        "last": last,
        "total": total,
        "prev": link(page - 1) if page > 1 else None,
        "next": link(page + 1) if page < last else None,
    }
