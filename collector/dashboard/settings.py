"""The settings page: the site's settings document as a form a marketer reads, with a live preview beside it,
or as JSON for those who prefer it."""

from __future__ import annotations

import json
from typing import Any

from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.routing import Route

from collector.dashboard import auth, settings_form
from collector.dashboard.templating import not_found, render, site_of
from collector.locales import effective
from collector.schemas import SiteSettings, validation_errors_by_key
from collector.services import services
from collector.store import Site, Store


def _summaries(steps: list[dict[str, Any]], locale: str) -> list[str]:
    out = []
    for i, s in enumerate(steps):
        try:
            minutes = float(s.get("delay") or 0) * settings_form.DELAY_UNITS.get(str(s.get("delay_unit")), 1)
        except ValueError:
            minutes = 0
        step = {"delay_minutes": minutes, "subject": s.get("subject"), "discount_code": s.get("discount_code")}
        step["use_code_pool"] = bool(s.get("use_code_pool"))
        out.append(settings_form.step_summary(step, i, locale))
    return out


def _settings_page(
    request: Request,
    site: Site,
    status: int = 200,
    values: dict[str, Any] | None = None,
    errors: dict[str, str] | None = None,
    document: str | None = None,
    document_errors: list[str] | None = None,
    saved: bool = False,
) -> HTMLResponse:
    fields = settings_form.fields()
    sections = [(key, label, [f for f in fields if f.section == key]) for key, label in settings_form.SECTIONS.items()]
    settings: SiteSettings = site.settings
    values = values if values is not None else settings_form.display_values(site.raw_settings)
    variants = [
        f"{e.name}/{v.name}" for e in settings.experiments if e.kind in ("popup", "discount") for v in e.variants
    ]
    return render(
        request,
        "settings.html",
        status=status,
        title=f"Settings · {site.name}",
        site=site,
        tab="settings",
        sections=sections,
        values=values,
        errors=errors or {},
        document=document if document is not None else json.dumps(site.raw_settings, indent=2, ensure_ascii=False),
        document_errors=document_errors or [],
        saved=saved,
        placeholders=settings_form.placeholders(settings),
        warnings=settings_form.contrast_warnings(settings),
        language_names=settings_form.language_names(),
        choice_labels={"locale": settings_form.language_names(), "platform.kind": settings_form.PLATFORM_KINDS},
        webhook_events=settings_form.WEBHOOK_EVENT_LABELS,
        tests=settings_form.test_summaries(site.raw_settings),
        popup_groups=settings_form.POPUP_GROUPS,
        test_kinds=settings_form.TEST_KINDS,
        long_keys=settings_form.LONG_TEXT,
        summaries=_summaries(values.get("recovery.steps", []), effective(settings.locale, None)),
        variants=variants,
    )


@auth.admin
async def settings(request: Request) -> Response:
    site = await site_of(request)
    if site is None:
        return not_found(request)
    if request.method == "GET":
        return _settings_page(request, site, saved=request.query_params.get("saved") == "1")
    store: Store = services(request).store
    form = await request.form()
    if form.get("mode") == "json":
        raw = str(form.get("document", ""))
        try:
            doc = json.loads(raw)
        except ValueError as exc:
            return _settings_page(request, site, 422, document=raw, document_errors=[f"not valid JSON: {exc}"])
        if not isinstance(doc, dict):
            return _settings_page(
                request, site, 422, document=raw, document_errors=["(document): must be a JSON object"]
            )
        parsed, invalid = settings_form.validate(doc)
        if parsed is None:
            assert invalid is not None
            msgs = [f"{k}: {v}" for k, v in validation_errors_by_key(invalid).items()]
            return _settings_page(request, site, 422, document=raw, document_errors=msgs)
    else:
        doc, shown, errors = settings_form.from_form(form, site.raw_settings)
        # Validated even after a field that could not be read, so every mistake is shown at once.
        parsed, invalid = settings_form.validate(doc)
        if errors or parsed is None:
            parsed = None
            if invalid is not None:
                errors = {**settings_form.errors_by_field(invalid), **errors}
            values = settings_form.display_values(site.raw_settings)
            values.update(shown)
            return _settings_page(request, site, 422, values=values, errors=errors)
    # Only a valid document is stored: a mistake leaves the last good settings in place.
    await store.sites.update(site.key, settings=parsed)
    return RedirectResponse(f"/admin/sites/{site.key}/settings?saved=1", status_code=303)


routes = [Route("/admin/sites/{key}/settings", settings, methods=["GET", "POST"])]
