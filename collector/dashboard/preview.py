"""The settings page's live preview, from the form's unsaved values: the real popup (the built snippet's own
code, with a config made from those values), the reminder email with a sample cart, and "send me a test"."""

from __future__ import annotations

import base64
import binascii
import html
import json
import time
from email.utils import parseaddr
from typing import Any

from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.routing import Route

from collector.dashboard import auth, settings_form
from collector.dashboard.templating import not_found, site_of
from collector.locales import effective, step_subject, texts
from collector.recovery.mailer import SendError, SmtpSender, build_message, message_bytes, message_headers
from collector.recovery.render import RenderedEmail, render_email
from collector.schemas import SiteSettings
from collector.services import services
from collector.store import Site, emails
from collector.tag import CONFIG_TOKEN, SnippetCache

SAMPLE_CART = [
    {"id": "mug", "name": "Enamel mug", "price": 14.0, "quantity": 2, "image": None},
    {"id": "tote", "name": "Canvas tote", "price": 22.5, "quantity": 1, "image": None},
]
# The preview's own frames: scripts only from here, framed only by the dashboard, nothing sent anywhere else.
FRAME_CSP = (
    "default-src 'none'; script-src 'self'; style-src 'unsafe-inline'; img-src 'self' data: https:;"
    " connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'self'"
)
MAIL_CSP = "default-src 'none'; style-src 'unsafe-inline'; img-src data: https:; frame-ancestors 'self'"
FRAME_HEADERS = {"X-Frame-Options": "SAMEORIGIN", "Cache-Control": "no-store", "Referrer-Policy": "no-referrer"}
_snippets = SnippetCache()


def unsaved_settings(form: FormData, site: Site) -> tuple[SiteSettings | None, dict[str, str]]:
    """The document the form would save, validated (and the errors by field when it is not valid)."""
    doc, _, errors = settings_form.from_form(form, site.raw_settings)
    if errors:
        return None, errors
    parsed, invalid = settings_form.validate(doc)
    if parsed is None:
        assert invalid is not None
        return None, settings_form.errors_by_field(invalid)
    return parsed, {}


def preview_locale(settings: SiteSettings, form: FormData) -> str:
    """The site's locale; with "auto", the language the marketer picked to preview."""
    return effective(settings.locale, str(form.get("preview.lang") or "en"))


def popup_config(settings: SiteSettings, variant: str, lang: str, endpoint: str) -> dict[str, Any]:
    """The snippet's config for the preview: the popup as the chosen test variant shows it, opened only by
    cartback('show') (no triggers), sending to a key no site has (so nothing is counted)."""
    popup = settings.popup.model_dump(mode="json", exclude_none=True)
    exp_name, _, var_name = variant.partition("/")
    for exp in settings.experiments:
        if exp.name != exp_name or exp.kind not in ("popup", "discount"):
            continue
        for v in exp.variants:
            if v.name != var_name:
                continue
            if v.popup is not None:
                changes = v.popup.model_dump(mode="json", exclude_none=True)
                colors = changes.pop("colors", {})
                popup.update(changes)
                popup["colors"] = {**popup.get("colors", {}), **colors}
            if v.discount_code is not None:
                popup["discount_code"] = v.discount_code
    popup["enabled"] = False
    return {"key": "preview", "endpoint": endpoint, "popup": popup, "texts": {lang: texts(lang, "popup")}}


def _frame(body: str, lang: str = "en", title: str = "Preview") -> HTMLResponse:
    page = (
        f'<!doctype html><html lang="{html.escape(lang)}"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{html.escape(title)}</title></head>"
        '<body style="margin:0;min-height:100vh;font:15px/1.4 system-ui,sans-serif;background:#e4e7eb;color:#1f2933">'
        f"{body}</body></html>"
    )
    return HTMLResponse(page, headers={"Content-Security-Policy": FRAME_CSP, **FRAME_HEADERS})


def _errors_frame(errors: dict[str, str]) -> HTMLResponse:
    items = "".join(f"<li><b>{html.escape(k)}</b>: {html.escape(v)}</li>" for k, v in errors.items())
    return _frame(
        f'<main style="padding:16px" role="alert"><p>The preview waits for valid values:</p><ul>{items}</ul></main>'
    )


async def _unsaved(request: Request) -> tuple[Site, SiteSettings, FormData] | Response:
    """The site and the form's unsaved settings, or the answer when there are none (no such
    site, or values that do not validate): what every preview route starts with."""
    site = await site_of(request)
    if site is None:
        return not_found(request)
    form = await request.form()
    settings, errors = unsaved_settings(form, site)
    if settings is None:
        return _errors_frame(errors)
    return site, settings, form


@auth.admin
async def popup_preview(request: Request) -> Response:
    unsaved = await _unsaved(request)
    if isinstance(unsaved, Response):
        return unsaved
    site, settings, form = unsaved
    lang = preview_locale(settings, form)
    endpoint = str(request.base_url).rstrip("/") + "/preview-sink"
    config = popup_config(settings, str(form.get("preview.variant") or ""), lang, endpoint)
    packed = base64.urlsafe_b64encode(json.dumps(config, separators=(",", ":")).encode()).decode()
    src = f"/admin/sites/{site.key}/preview/snippet.js?c={packed}"
    return _frame(
        '<main style="padding:12px 16px"><p>Your storefront page</p></main>'
        f'<script src="{html.escape(src)}"></script><script src="/static/admin/preview.js"></script>',
        lang=lang,
        title="Popup preview",
    )


@auth.admin
async def snippet_js(request: Request) -> Response:
    """The built snippet with the preview's config in place of the site's: the popup's own code, not a copy."""
    try:
        config = json.loads(base64.urlsafe_b64decode(request.query_params.get("c", "").encode()))
    except (ValueError, binascii.Error):
        config = None
    if not isinstance(config, dict) or config.get("key") != "preview":
        return Response("/* cartback preview: bad config */", status_code=400, media_type="application/javascript")
    literal = json.dumps(config, separators=(",", ":")).replace("</", "<\\/")
    body = _snippets.template().replace(CONFIG_TOKEN, literal, 1)
    return Response(body, media_type="application/javascript; charset=utf-8", headers={"Cache-Control": "no-store"})


def _step_index(settings: SiteSettings, form: FormData) -> int:
    try:
        step = int(str(form.get("preview.step") or 0))
    except ValueError:
        step = 0
    return max(0, min(step, len(settings.recovery.steps) - 1))


def sample_email(site: Site, settings: SiteSettings, step: int, lang: str) -> RenderedEmail:
    """The reminder of one step with a sample cart, as the sweep would render it (links go nowhere)."""
    s = settings.recovery.steps[step]
    return render_email(
        site_name=site.name,
        from_addr=settings.recovery.from_,
        subject=s.subject or step_subject(lang, step),
        preheader=s.preheader,
        items=SAMPLE_CART,
        currency="EUR",
        discount_code=s.discount_code,
        recovery_url=settings.recovery.cart_url,
        unsubscribe_url=settings.recovery.cart_url,
        open_pixel_url=None,
        step=step,
        locale=lang,
        look=settings.recovery.email,
    )


@auth.admin
async def email_preview(request: Request) -> Response:
    unsaved = await _unsaved(request)
    if isinstance(unsaved, Response):
        return unsaved
    site, settings, form = unsaved
    if not settings.recovery.steps:
        return _frame('<main style="padding:16px"><p>No reminder steps: no email goes.</p></main>')
    rendered = sample_email(site, settings, _step_index(settings, form), preview_locale(settings, form))
    return HTMLResponse(rendered.html, headers={"Content-Security-Policy": MAIL_CSP, **FRAME_HEADERS})


@auth.admin
async def send_test(request: Request) -> Response:
    """Sends the previewed reminder to the logged-in user's own address (over SMTP, else to the dev mailbox)."""
    unsaved = await _unsaved(request)
    if isinstance(unsaved, Response):
        return unsaved
    site, settings, form = unsaved
    session = await auth.load_session(request)
    assert session is not None  # auth.admin let the request in
    if not settings.recovery.steps:
        return _frame('<main style="padding:16px"><p>No reminder steps: nothing to send.</p></main>')
    step = _step_index(settings, form)
    rendered = sample_email(site, settings, step, preview_locale(settings, form))
    rendered.subject = "[Test] " + rendered.subject
    now = time.time()
    msg = build_message(
        rendered=rendered,
        from_addr=settings.recovery.from_,
        to_addr=session.email,
        unsubscribe_url=settings.recovery.cart_url,
        message_id=f"<cartback.test.{site.key}.{int(now * 1000)}@cartback.invalid>",
        now=now,
    )
    svc = services(request)
    where = "the dev mailbox (Mailbox, above)"
    if svc.config.smtp is not None:
        sender = SmtpSender(svc.config.smtp)
        try:
            await sender.send(parseaddr(settings.recovery.from_)[1], session.email, message_bytes(msg))
        except SendError as exc:  # the marketer reads why, in the frame
            return _frame(f'<main style="padding:16px" role="alert"><p>Not sent: {html.escape(str(exc))}</p></main>')
        finally:
            await sender.close()
        where = "your inbox"
    else:
        await emails.add_to_mailbox(
            svc.store.db,
            site.id,
            {
                "to_addr": session.email,
                "from_addr": str(msg["From"]),
                "subject": str(msg["Subject"]),
                "html": rendered.html,
                "text": rendered.text,
                "headers": message_headers(msg),
            },
            now,
        )
    return _frame(
        f'<main style="padding:16px" role="status"><p>Sent step {step + 1} to {html.escape(session.email)}: '
        f"look in {where}.</p></main>"
    )


async def sink(request: Request) -> Response:
    """Where the preview's popup sends its events: answered and forgotten, so a preview counts nothing."""
    return Response(status_code=204)


routes = [
    Route("/preview-sink/c/preview/{kind}", sink, methods=["POST"]),
    Route("/admin/sites/{key}/preview/popup", popup_preview, methods=["POST"]),
    Route("/admin/sites/{key}/preview/snippet.js", snippet_js, methods=["GET"]),
    Route("/admin/sites/{key}/preview/email", email_preview, methods=["POST"]),
    Route("/admin/sites/{key}/preview/send-test", send_test, methods=["POST"]),
]
