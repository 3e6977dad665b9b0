"""The script tag: the HTML a store owner pastes, and /s/{key}.js, the built snippet with the site's public settings inside."""

from __future__ import annotations

import gzip
import hashlib
import json
from pathlib import Path
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from collector.locales import LOCALES, effective, texts
from collector.services import services
from collector.store import Site, Store

STATIC_DIR = Path(__file__).resolve().parent.parent / "static"
SNIPPET_FILE = STATIC_DIR / "cartback.js"
CONFIG_TOKEN = '"__CARTBACK_CONFIG__"'
# Short enough that a settings change reaches shoppers within minutes.
CACHE_CONTROL = "public, max-age=300"


def script_url(public_url: str, key: str) -> str:
    return f"{public_url}/s/{key}.js"


STUB = (
    "window.cartback = window.cartback || function () "
    "{ (window.cartback.q = window.cartback.q || []).push(arguments) };"
)


def snippet_html(public_url: str, key: str) -> str:
    """The exact HTML a store owner pastes: the async tag and the one-line stub."""
    return f'<script async src="{script_url(public_url, key)}"></script>\n<script>{STUB}</script>'


def popup_texts(locale_setting: str) -> dict[str, dict[str, Any]]:
    """The popup's fixed texts (and the defaults of those the site leaves out), by locale.

    Only the site's locale goes into its snippet (about 1 KB); with "auto" every supported locale's
    table goes (about 8 KB raw, 3 KB gzipped, in the served config, never in the built file), so the
    page's own language picks one without a second request."""
    if locale_setting == "auto":
        return {loc: texts(loc, "popup") for loc in LOCALES}
    loc = effective(locale_setting, None)
    return {loc: texts(loc, "popup")}


def public_config(site: Site, public_url: str) -> dict[str, Any]:
    settings = site.settings
    experiments = []
    for exp in settings.experiments:
        if not exp.enabled or exp.kind not in ("popup", "discount"):
            continue
        variants = []
        for v in exp.variants:
            entry: dict[str, Any] = {"name": v.name, "weight": v.weight}
            if v.popup is not None:
                entry["popup"] = v.popup.model_dump(mode="json", exclude_none=True)
            if v.discount_code is not None:
                entry["discount_code"] = v.discount_code
            variants.append(entry)
        experiments.append({"name": exp.name, "kind": exp.kind, "variants": variants})
    return {
        "key": site.key,
        "endpoint": public_url,
        # Texts the site left out are null here: the snippet takes them from `texts`.
        "popup": settings.popup.model_dump(mode="json", exclude_none=True),
        "texts": popup_texts(settings.locale),
        "experiments": experiments,
        # Only what the adapters need: the webhook secrets never leave the collector.
        "platform": settings.platform.model_dump(mode="json", include={"kind", "email_fields"}),
    }


class SnippetCache:
    """The rendered script per site, rebuilt when the settings or the build change."""

    def __init__(self) -> None:
        self._template: tuple[float, str] | None = None
        self._rendered: dict[str, tuple[str, bytes, bytes, str]] = {}

    def template(self) -> str:
        mtime = SNIPPET_FILE.stat().st_mtime
        if self._template is None or self._template[0] != mtime:
            self._template = (mtime, SNIPPET_FILE.read_text())
            self._rendered.clear()
        return self._template[1]

    def render(self, site: Site, public_url: str) -> tuple[bytes, bytes, str]:
        template = self.template()
        # </ must not end an inline script if someone pastes the file inline.
        config = json.dumps(public_config(site, public_url), separators=(",", ":")).replace("</", "<\\/")
        fingerprint = hashlib.sha256(config.encode()).hexdigest()
        hit = self._rendered.get(site.key)
        if hit is not None and hit[0] == fingerprint:
            return hit[1], hit[2], hit[3]
        body = template.replace(CONFIG_TOKEN, config, 1).encode()
        gz = gzip.compress(body, compresslevel=9, mtime=0)
        etag = '"' + hashlib.sha256(body).hexdigest()[:32] + '"'
        self._rendered[site.key] = (fingerprint, body, gz, etag)
        return body, gz, etag


async def serve_snippet(request: Request) -> Response:
    store: Store = services(request).store
    key = request.path_params["key"]
    site = await store.sites.get(key) if len(key) <= 64 else None
    if site is None:
        return Response("/* cartback: unknown site key */", status_code=404, media_type="application/javascript")
    try:
        body, gz, etag = request.app.state.snippets.render(site, services(request).config.public_url)
    except FileNotFoundError:
        return Response(
            "/* cartback: the snippet is not built (make snippet) */",
            status_code=503,
            media_type="application/javascript",
        )
    headers = {
        "Cache-Control": CACHE_CONTROL,
        "ETag": etag,
        "Vary": "Accept-Encoding",
        "Access-Control-Allow-Origin": "*",
        "X-Content-Type-Options": "nosniff",
    }
    inm = request.headers.get("if-none-match", "")
    if etag in [t.strip() for t in inm.split(",")]:
        return Response(status_code=304, headers=headers)
    if "gzip" in request.headers.get("accept-encoding", ""):
        headers["Content-Encoding"] = "gzip"
        return Response(gz, media_type="application/javascript; charset=utf-8", headers=headers)
    return Response(body, media_type="application/javascript; charset=utf-8", headers=headers)


routes = [Route("/s/{key}.js", serve_snippet, methods=["GET", "HEAD"])]
