"""The dashboard's routes, all under /admin and all behind the login (but the login itself).

Pages are rendered server-side with Jinja2 (autoescaped); the little JavaScript there is
(copy buttons) is a static file, so the pages run under a CSP without inline script.
"""

from __future__ import annotations

import asyncio
import json
import math
from datetime import date, datetime, timedelta, timezone
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from jinja2 import Environment, FileSystemLoader, select_autoescape
from starlette.requests import Request
from starlette.responses import HTMLResponse, PlainTextResponse, RedirectResponse, Response, StreamingResponse
from starlette.routing import Route

from collector.audiences import FORMATS, MIN_AUDIENCE, audience_emails, build_audience
from collector.dashboard import auth, data, settings_form
from collector.experiment_results import end_experiment, experiment_results
from collector.exports import iso, lead_csv_chunks
from collector.security import hash_password, verify_password
from collector.snippet import snippet_html
from collector.stats import site_stats
from collector.store import Store
from collector.store.store import Site

TEMPLATES = Path(__file__).resolve().parent / "templates"
LEADS_PER_PAGE = 50
CARTS_PER_PAGE = 25
MAIL_PER_PAGE = 50
DEFAULT_RANGE_DAYS = 30
# Checked against when the address has no login, so that a wrong address takes as long as a wrong password.
_DUMMY_HASH = hash_password("not-a-real-password-0")


def _fmt_time(ts: float | None) -> str:
    if ts is None:
        return ""
    return datetime.fromtimestamp(ts, tz=timezone.utc).strftime("%Y-%m-%d %H:%M UTC")


def _fmt_money(value: float | None, currency: str | None = None) -> str:
    if value is None:
        return ""
    text = f"{value:,.2f}"
    return f"{text} {currency}" if currency else text


def _fmt_pct(value: float | None) -> str:
    if value is None:
        return "–"
    return f"{value * 100:.1f}%"


env = Environment(
    loader=FileSystemLoader(str(TEMPLATES)),
    autoescape=select_autoescape(["html"], default_for_string=True, default=True),
    trim_blocks=True,
    lstrip_blocks=True,
)
env.filters["time"] = _fmt_time
env.filters["iso"] = iso
env.filters["money"] = _fmt_money
env.filters["pct"] = _fmt_pct


def render(request: Request, name: str, status: int = 200, headers: dict[str, str] | None = None, **context: Any) -> HTMLResponse:
    session = request.scope.get("cartback", {}).get("session")
    context.setdefault("session", session)
    context.setdefault("csrf", session.csrf if session else "")
    context.setdefault("path", request.url.path)
    html = env.get_template(name).render(**context)
    return HTMLResponse(html, status_code=status, headers=headers)


def _int_param(request: Request, name: str, default: int = 1) -> int:
    try:
        value = int(request.query_params.get(name, default))
    except ValueError:
        return default
    return max(1, min(value, 1_000_000))


async def _site(request: Request) -> Site | None:
    store: Store = request.app.state.store
    key = request.path_params["key"]
    return await store.get_site(key, fresh=True) if len(key) <= 64 else None


def _not_found(request: Request, what: str = "site") -> HTMLResponse:
    return render(request, "error.html", status=404, title="Not found", message=f"There is no such {what}.")


def _pages(page: int, total: int, per_page: int, params: dict[str, str]) -> dict[str, Any]:
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


# -- login -------------------------------------------------------------------------------
def _login_page(request: Request, status: int = 200, error: str | None = None, email: str = "", next_: str = "/admin",
                headers: dict[str, str] | None = None) -> HTMLResponse:
    nonce = request.cookies.get(auth.LOGIN_COOKIE)
    if not nonce or len(nonce) > 64:
        nonce = auth.new_login_nonce()
    response = render(
        request,
        "login.html",
        status=status,
        headers=headers,
        error=error,
        email=email,
        next=auth.safe_next(next_),
        login_csrf=auth.login_form_token(request.app.state.signer, nonce),
    )
    auth.set_cookie(response, request, auth.LOGIN_COOKIE, nonce, auth.LOGIN_FORM_SECONDS)
    return response


async def login(request: Request) -> Response:
    if request.method == "GET":
        if await auth.load_session(request) is not None:
            return RedirectResponse(auth.safe_next(request.query_params.get("next")), status_code=303)
        return _login_page(request, next_=request.query_params.get("next", "/admin"))
    form = await request.form()
    email = str(form.get("email", ""))[:320].strip().lower()
    password = str(form.get("password", ""))[:1024]
    next_ = str(form.get("next", "/admin"))
    if not auth.login_form_ok(request, form.get("csrf") if isinstance(form.get("csrf"), str) else None):
        return _login_page(request, 403, "The login form expired. Please try again.", email, next_)
    store: Store = request.app.state.store
    ip = auth.client_ip(request)
    wait = await auth.locked_for(store.db, email, ip)
    if wait > 0:
        minutes = max(1, math.ceil(wait / 60))
        return _login_page(
            request, 429, f"Too many failed logins. Try again in {minutes} minute{'s' if minutes > 1 else ''}.",
            email, next_, headers={"Retry-After": str(math.ceil(wait))},
        )
    user = await store.get_user(email) if email else None
    # scrypt takes a while: off the event loop, and run for unknown addresses too.
    ok = await asyncio.to_thread(verify_password, password, user["password_hash"] if user else _DUMMY_HASH)
    if user is None or not ok:
        await auth.record_failure(store.db, email, ip)
        return _login_page(request, 401, "Wrong email or password.", email, next_)
    await auth.clear_failures(store.db, email)
    response = RedirectResponse(auth.safe_next(next_), status_code=303)
    auth.set_cookie(response, request, auth.SESSION_COOKIE, auth.make_session_cookie(request.app.state.signer, user),
                    auth.SESSION_SECONDS)
    auth.clear_cookie(response, request, auth.LOGIN_COOKIE)
    return response


@auth.admin
async def logout(request: Request) -> Response:
    session = await auth.load_session(request)
    assert session is not None
    await auth.revoke_sessions(request.app.state.store.db, session.user_id)
    response = RedirectResponse(auth.LOGIN_PATH, status_code=303)
    auth.clear_cookie(response, request, auth.SESSION_COOKIE)
    return response


# -- sites -------------------------------------------------------------------------------------
@auth.admin
async def home(request: Request) -> Response:
    store: Store = request.app.state.store
    public_url = request.app.state.config.public_url
    sites = [{"site": s, "tag": snippet_html(public_url, s.key)} for s in await store.list_sites()]
    return render(request, "sites.html", title="Sites", sites=sites, public_url=public_url)


def _day_start(d: date) -> float:
    return datetime(d.year, d.month, d.day, tzinfo=timezone.utc).timestamp()


def date_range(request: Request) -> dict[str, Any]:
    """The overview's range: whole UTC days from `since` to `until` (both included), or all time."""
    today = datetime.now(timezone.utc).date()
    out: dict[str, Any] = {"error": None, "all": request.query_params.get("range") == "all"}
    if out["all"]:
        out.update(since=None, until=None, since_ts=None, until_ts=None)
        return out
    until = today
    since = today - timedelta(days=DEFAULT_RANGE_DAYS - 1)
    try:
        if request.query_params.get("until"):
            until = date.fromisoformat(request.query_params["until"])
        if request.query_params.get("since"):
            since = date.fromisoformat(request.query_params["since"])
        elif request.query_params.get("until"):
            since = until - timedelta(days=DEFAULT_RANGE_DAYS - 1)
    except ValueError:
        out["error"] = "Dates are days like 2026-11-01; showing the last 30 days."
        until, since = today, today - timedelta(days=DEFAULT_RANGE_DAYS - 1)
    if since > until:
        out["error"] = "The start is after the end; they were swapped."
        since, until = until, since
    out.update(since=since.isoformat(), until=until.isoformat(), until_next=(until + timedelta(days=1)).isoformat(),
               since_ts=_day_start(since), until_ts=_day_start(until + timedelta(days=1)))
    return out


def revenue_chart(series: list[dict[str, Any]], width: int = 720, height: int = 220) -> dict[str, Any] | None:
    """Bar geometry for the inline SVG chart of recovered revenue."""
    if not series:
        return None
    left, right, top, bottom = 64, 12, 12, 28
    plot_w, plot_h = width - left - right, height - top - bottom
    peak = max(b["revenue"] for b in series)
    scale_max = _nice_ceiling(peak) if peak > 0 else 1.0
    n = len(series)
    slot = plot_w / n
    bar_w = max(1.0, slot * 0.8)
    bars = []
    for i, b in enumerate(series):
        h = plot_h * b["revenue"] / scale_max
        bars.append({
            "x": round(left + i * slot + (slot - bar_w) / 2, 2),
            "y": round(top + plot_h - h, 2),
            "w": round(bar_w, 2),
            "h": round(h, 2),
            "label": f"{b['date']}: {b['revenue']:,.2f} from {b['orders']} order{'s' if b['orders'] != 1 else ''}",
        })
    ticks = [{"y": round(top + plot_h - plot_h * f, 2), "label": f"{scale_max * f:,.0f}"} for f in (0, 0.5, 1)]
    label_idx = sorted({0, n // 2, n - 1})
    xlabels = [{"x": round(left + i * slot + slot / 2, 2), "label": series[i]["date"],
                "anchor": "start" if i == 0 and n > 1 else "end" if i == n - 1 and n > 1 else "middle"} for i in label_idx]
    return {"width": width, "height": height, "bars": bars, "ticks": ticks, "xlabels": xlabels,
            "left": left, "right": width - right, "base": top + plot_h, "total": round(sum(b["revenue"] for b in series), 2)}


def _nice_ceiling(value: float) -> float:
    exp = 10 ** math.floor(math.log10(value))
    for m in (1, 2, 2.5, 5, 10):
        if value <= m * exp:
            return m * exp
    return 10 * exp


def funnel_rows(stats: dict[str, Any]) -> list[dict[str, Any]]:
    r = stats["rates"]
    rows = [
        ("carts", "Carts", stats["carts"], None, ""),
        ("abandoned", "Abandoned", stats["abandoned"], r["abandonment_rate"], "of carts"),
        ("popup_shown", "Popup shown", stats["popup_shown"], None, ""),
        ("leads", "Leads", stats["leads"], r["popup_conversion_rate"], "of popups shown"),
        ("emails_sent", "Emailed", stats["emails_sent"], None, f"reminders to {stats['carts_emailed']} carts"),
        ("emails_opened", "Opened", stats["emails_opened"], r["open_rate"], "of reminders sent"),
        ("emails_clicked", "Clicked", stats["emails_clicked"], r["click_rate"],
         f"of reminders sent ({_fmt_pct(r['click_to_open_rate'])} of opened)" if stats["emails_opened"] else "of reminders sent"),
        ("recovered_orders", "Recovered orders", stats["recovered_orders"], r["recovery_rate"], "of abandoned carts"),
    ]
    peak = max([v for _, _, v, _, _ in rows] + [1])
    return [{"key": k, "label": label, "value": v, "rate": rate, "rate_of": of, "bar": round(300 * v / peak, 1)}
            for k, label, v, rate, of in rows]


@auth.admin
async def overview(request: Request) -> Response:
    site = await _site(request)
    if site is None:
        return _not_found(request)
    store: Store = request.app.state.store
    rng = date_range(request)
    stats = await site_stats(store.db, site.id, rng["since_ts"], rng["until_ts"], settings=site.settings)
    audience_size = len(await audience_emails(store.db, site))
    return render(
        request,
        "overview.html",
        title=site.name,
        site=site,
        tab="overview",
        rng=rng,
        stats=stats,
        funnel=funnel_rows(stats),
        chart=revenue_chart(stats["revenue_series"]),
        audience_size=audience_size,
        audience_min=MIN_AUDIENCE,
        tag=snippet_html(request.app.state.config.public_url, site.key),
        stats_json=json.dumps({k: v for k, v in stats.items() if k not in ("revenue_series",)}, indent=2),
    )


# -- leads ---------------------------------------------------------------------------------------
@auth.admin
async def leads(request: Request) -> Response:
    site = await _site(request)
    if site is None:
        return _not_found(request)
    q = request.query_params.get("q", "")[:200]
    page = _int_param(request, "page")
    rows, total = await data.leads_page(request.app.state.store.db, site.id, q, page, LEADS_PER_PAGE)
    return render(request, "leads.html", title=f"Leads · {site.name}", site=site, tab="leads", leads=rows, q=q,
                  pages=_pages(page, total, LEADS_PER_PAGE, {"q": q}))


@auth.admin
async def leads_csv(request: Request) -> Response:
    site = await _site(request)
    if site is None:
        return _not_found(request)
    from collector.exports import parse_time

    try:
        since = parse_time(request.query_params.get("since"))
        until = parse_time(request.query_params.get("until"))
    except ValueError:
        return PlainTextResponse("since and until must be ISO 8601 dates", status_code=400)
    return StreamingResponse(
        lead_csv_chunks(request.app.state.store.db, site.id, since, until),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="leads-{site.key}.csv"', "Cache-Control": "no-store"},
    )


# -- carts ---------------------------------------------------------------------------------------------
CART_FILTERS = ("abandoned", "all", "open", "purchased", "emptied", "replaced")


@auth.admin
async def carts(request: Request) -> Response:
    site = await _site(request)
    if site is None:
        return _not_found(request)
    which = request.query_params.get("status", "abandoned")
    if which not in CART_FILTERS:
        which = "abandoned"
    q = request.query_params.get("q", "")[:200]
    page = _int_param(request, "page")
    rows, total = await data.carts_page(request.app.state.store.db, site, which, q, page, CARTS_PER_PAGE)
    return render(request, "carts.html", title=f"Carts · {site.name}", site=site, tab="carts", carts=rows, which=which,
                  filters=CART_FILTERS, q=q, pages=_pages(page, total, CARTS_PER_PAGE, {"status": which, "q": q}))


# -- settings --------------------------------------------------------------------------------------------
def _settings_page(request: Request, site: Site, status: int = 200, values: dict[str, Any] | None = None,
                   errors: dict[str, str] | None = None, document: str | None = None,
                   document_errors: list[str] | None = None, saved: bool = False) -> HTMLResponse:
    fields = settings_form.fields()
    sections = [(key, label, [f for f in fields if f.section == key]) for key, label in settings_form.SECTIONS.items()]
    return render(
        request,
        "settings.html",
        status=status,
        title=f"Settings · {site.name}",
        site=site,
        tab="settings",
        sections=sections,
        values=values if values is not None else settings_form.display_values(site.raw_settings),
        errors=errors or {},
        document=document if document is not None else json.dumps(site.raw_settings, indent=2, ensure_ascii=False),
        document_errors=document_errors or [],
        saved=saved,
    )


@auth.admin
async def settings(request: Request) -> Response:
    site = await _site(request)
    if site is None:
        return _not_found(request)
    if request.method == "GET":
        return _settings_page(request, site, saved=request.query_params.get("saved") == "1")
    store: Store = request.app.state.store
    form = await request.form()
    if form.get("mode") == "json":
        raw = str(form.get("document", ""))
        try:
            doc = json.loads(raw)
        except ValueError as exc:
            return _settings_page(request, site, 422, document=raw, document_errors=[f"not valid JSON: {exc}"])
        if not isinstance(doc, dict):
            return _settings_page(request, site, 422, document=raw, document_errors=["(document): must be a JSON object"])
        parsed, exc = settings_form.validate(doc)
        if parsed is None:
            assert exc is not None
            from collector.schemas import validation_errors_by_key

            msgs = [f"{k}: {v}" for k, v in validation_errors_by_key(exc).items()]
            return _settings_page(request, site, 422, document=raw, document_errors=msgs)
    else:
        doc, shown, errors = settings_form.from_form(form, site.raw_settings)
        parsed, exc = settings_form.validate(doc) if not errors else (None, None)
        if parsed is None:
            if exc is not None:
                errors.update(settings_form.errors_by_field(exc))
            values = settings_form.display_values(site.raw_settings)
            values.update(shown)
            return _settings_page(request, site, 422, values=values, errors=errors)
    # Only a valid document is stored: a mistake leaves the last good settings in place.
    await store.update_site(site.key, settings=parsed)
    return RedirectResponse(f"/admin/sites/{site.key}/settings?saved=1", status_code=303)


# -- audiences -------------------------------------------------------------------------------------------
@auth.admin
async def audience_csv(request: Request) -> Response:
    site = await _site(request)
    if site is None:
        return _not_found(request)
    fmt = request.query_params.get("format", "")
    if fmt not in FORMATS:
        return PlainTextResponse("format must be google or meta", status_code=400)
    audience = await build_audience(request.app.state.store.db, site, fmt)
    headers = {"Content-Disposition": f'attachment; filename="audience-{fmt}-{site.key}.csv"', "Cache-Control": "no-store",
               "X-Cartback-Audience-Size": str(audience.size)}
    return Response(audience.csv(), media_type="text/csv; charset=utf-8", headers=headers)


# -- experiments ------------------------------------------------------------------------------------------
def _experiments_range(request: Request) -> dict[str, Any]:
    """The overview's date range, but all time until a range is asked for: a test runs as long as it runs."""
    if not any(request.query_params.get(k) for k in ("since", "until", "range")):
        return {"error": None, "all": True, "since": None, "until": None, "since_ts": None, "until_ts": None}
    return date_range(request)


@auth.admin
async def experiments_page(request: Request) -> Response:
    site = await _site(request)
    if site is None:
        return _not_found(request)
    return await _experiments_response(request, site)


async def _experiments_response(request: Request, site: Site, status: int = 200, error: str | None = None) -> Response:
    rng = _experiments_range(request)
    # The same numbers as the stats API's `variants`: one code path for both.
    results = await experiment_results(request.app.state.store.db, site.settings, site.id, rng["since_ts"], rng["until_ts"],
                                       include_removed=True)
    ended = None
    name, kept = request.query_params.get("ended"), request.query_params.get("kept")
    if name and kept and status == 200:
        exp = next((e for e in site.settings.experiments if e.name == name), None)
        if exp is not None and not exp.enabled and any(v.name == kept for v in exp.variants):
            ended = {"name": name, "kept": kept, "kind": exp.kind, "step": exp.step}
    return render(request, "experiments.html", status=status, title=f"Experiments · {site.name}", site=site,
                  tab="experiments", results=results, rng=rng, ended=ended, error=error)


@auth.admin
async def end_experiment_post(request: Request) -> Response:
    """Ends a test and makes the kept variant the site's setting, in one step."""
    site = await _site(request)
    if site is None:
        return _not_found(request)
    form = await request.form()
    name, keep = request.path_params["name"], form.get("keep")
    if not isinstance(keep, str):
        keep = ""
    try:
        settings = end_experiment(site.settings, name, keep)
    except ValueError as exc:
        # An experiment removed or renamed since the page was loaded: say so, change nothing.
        return await _experiments_response(request, site, status=409, error=f"Nothing changed: {exc}.")
    await request.app.state.store.update_site(site.key, settings=settings)
    query = urlencode({"ended": name, "kept": keep})
    return RedirectResponse(f"/admin/sites/{site.key}/experiments?{query}", status_code=303)


# -- webhooks ---------------------------------------------------------------------------------------------
@auth.admin
async def webhooks_page(request: Request) -> Response:
    site = await _site(request)
    if site is None:
        return _not_found(request)
    from collector.webhooks import MAX_ATTEMPTS, outbox_rows

    rows = await outbox_rows(request.app.state.store.db, site.id)
    return render(request, "webhooks.html", title=f"Webhooks · {site.name}", site=site, tab="webhooks", rows=rows,
                  max_attempts=MAX_ATTEMPTS)


# -- the dev mailbox ------------------------------------------------------------------------------------------
@auth.admin
async def mailbox(request: Request) -> Response:
    q = request.query_params.get("q", "")[:200]
    page = _int_param(request, "page")
    rows, total = await data.mailbox_page(request.app.state.store.db, q, page, MAIL_PER_PAGE)
    return render(request, "mailbox.html", title="Mailbox", messages=rows, q=q,
                  smtp=bool(request.app.state.config.smtp_url), pages=_pages(page, total, MAIL_PER_PAGE, {"q": q}))


@auth.admin
async def mailbox_view(request: Request) -> Response:
    message = await data.mailbox_message(request.app.state.store.db, request.path_params["id"])
    if message is None:
        return _not_found(request, "message")
    images = request.query_params.get("images") == "1"
    return render(request, "mailbox_view.html", title=message["subject"], m=message, images=images)


# The stored email HTML runs in a sandbox: no script, no forms, an opaque origin, and remote
# images only on request (they would count as an open through the tracking pixel).
def _mail_csp(images: bool) -> str:
    img = "img-src data: cid: http: https:" if images else "img-src data: cid:"
    return f"sandbox; default-src 'none'; style-src 'unsafe-inline'; {img}; font-src data:; frame-ancestors 'self'"


@auth.admin
async def mailbox_body(request: Request) -> Response:
    message = await data.mailbox_message(request.app.state.store.db, request.path_params["id"])
    if message is None:
        return PlainTextResponse("no such message", status_code=404)
    images = request.query_params.get("images") == "1"
    headers = {
        "Content-Security-Policy": _mail_csp(images),
        "X-Frame-Options": "SAMEORIGIN",
        "Referrer-Policy": "no-referrer",
        "Cache-Control": "no-store",
    }
    return HTMLResponse(message["html"], headers=headers)


routes = [
    Route("/admin", home, methods=["GET"]),
    Route("/admin/login", login, methods=["GET", "POST"]),
    Route("/admin/logout", logout, methods=["POST"]),
    Route("/admin/sites/{key}", overview, methods=["GET"]),
    Route("/admin/sites/{key}/leads", leads, methods=["GET"]),
    Route("/admin/sites/{key}/leads.csv", leads_csv, methods=["GET"]),
    Route("/admin/sites/{key}/carts", carts, methods=["GET"]),
    Route("/admin/sites/{key}/settings", settings, methods=["GET", "POST"]),
    Route("/admin/sites/{key}/audience.csv", audience_csv, methods=["GET"]),
    Route("/admin/sites/{key}/experiments", experiments_page, methods=["GET"]),
    Route("/admin/sites/{key}/experiments/{name}/end", end_experiment_post, methods=["POST"]),
    Route("/admin/sites/{key}/webhooks", webhooks_page, methods=["GET"]),
    Route("/admin/mailbox", mailbox, methods=["GET"]),
    Route("/admin/mailbox/{id:int}", mailbox_view, methods=["GET"]),
    Route("/admin/mailbox/{id:int}/body", mailbox_body, methods=["GET"]),
]

# Paths that answer without a session (the tests check every other /admin route refuses).
PUBLIC_PATHS = {"/admin/login"}
