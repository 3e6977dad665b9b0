"""The dashboard's deliverability pages: the DNS records to publish (DKIM, SPF, DMARC), the provider
hooks, the HTTPS warning, and the suppression list (look up, add, remove)."""

from __future__ import annotations

import time

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from collector.addresses import check_email, normalize_email
from collector.dashboard import auth
from collector.dashboard.templating import int_param, pagination, render
from collector.recovery.dkim import list_keys
from collector.recovery.mailer import address_domain
from collector.services import services
from collector.store import suppressions

PER_PAGE = 50
RATE_DAYS = 30
# Gmail's and Yahoo's bulk-sender line for spam complaints (aim under 0.1 %).
COMPLAINT_LINE = 0.003
PROVIDERS = (
    ("Amazon SES (through SNS)", "ses", "CARTBACK_SNS_TOPIC_ARNS"),
    ("Postmark (basic auth in the URL)", "postmark", "CARTBACK_POSTMARK_WEBHOOK_AUTH"),
    ("Mailgun (signed with the webhook signing key)", "mailgun", "CARTBACK_MAILGUN_SIGNING_KEY"),
)


@auth.admin
async def deliverability(request: Request) -> Response:
    svc = services(request)
    store, cfg = svc.store, svc.config
    keys = {k.domain: k for k in await list_keys(store.db)}
    domains = sorted({address_domain(site.settings.recovery.from_).lower() for site in await store.sites.list()})
    configured = {
        "ses": bool(cfg.sns_topic_arns),
        "postmark": bool(cfg.postmark_webhook_auth),
        "mailgun": bool(cfg.mailgun_signing_key),
    }
    return render(
        request,
        "deliverability.html",
        title="Deliverability",
        domains=[(d, keys.get(d)) for d in domains],
        other_keys=[k for d, k in keys.items() if d not in domains],
        providers=[(label, slug, var, configured[slug]) for label, slug, var in PROVIDERS],
        public_url=cfg.public_url,
        suppressed=await suppressions.count(store.db),
        rates=[
            {
                "name": r["name"],
                "sent": int(r["sent"]),
                "bounces": int(r["bounces"]),
                "complaints": int(r["complaints"]),
                "bounce_rate": int(r["bounces"]) / int(r["sent"]) if r["sent"] else None,
                "complaint_rate": int(r["complaints"]) / int(r["sent"]) if r["sent"] else None,
            }
            for r in await suppressions.rates_since(store.db, time.time() - RATE_DAYS * 86400)
        ],
        rate_days=RATE_DAYS,
        complaint_line=COMPLAINT_LINE,
    )


@auth.admin
async def suppressions_page(request: Request) -> Response:
    db = services(request).store.db
    q = request.query_params.get("q", "").strip()
    page = int_param(request, "page")
    rows = await suppressions.list_all(db, PER_PAGE, (page - 1) * PER_PAGE, q or None)
    total = await suppressions.count(db) if not q else len(await suppressions.list_all(db, None, 0, q))
    return render(
        request,
        "suppressions.html",
        title="Suppressions",
        rows=rows,
        q=q,
        total=total,
        pages=pagination(page, total, PER_PAGE, {"q": q} if q else {}),
        message=request.query_params.get("done", ""),
        errors=[],
        entered="",
    )


@auth.admin
async def suppressions_change(request: Request) -> Response:
    db = services(request).store.db
    form = await request.form()
    action = str(form.get("action") or "")
    text = str(form.get("emails") or "")
    addrs, errors = [], []
    for line in text.replace(",", "\n").splitlines():
        if line.strip():
            try:
                check_email(line.strip())
                addrs.append(normalize_email(line))
            except ValueError as exc:
                errors.append(f"{line.strip()}: {exc}")
    if action not in ("add", "remove") or errors or not addrs:
        if not errors:
            errors.append("give at least one address" if action in ("add", "remove") else "unknown action")
        rows = await suppressions.list_all(db, PER_PAGE, 0)
        total = await suppressions.count(db)
        return render(
            request,
            "suppressions.html",
            status=400,
            title="Suppressions",
            rows=rows,
            q="",
            total=total,
            pages=pagination(1, total, PER_PAGE, {}),
            message="",
            errors=errors,
            entered=text,
        )
    if action == "add":
        n = await suppressions.add(db, addrs, suppressions.MANUAL, "added on the dashboard", time.time())
        done = f"added {n}"
    else:
        n = await suppressions.remove(db, addrs)
        done = f"removed {n}"
    return RedirectResponse(f"/admin/suppressions?done={done.replace(' ', '+')}", status_code=303)


routes = [
    Route("/admin/deliverability", deliverability, methods=["GET"]),
    Route("/admin/suppressions", suppressions_page, methods=["GET"]),
    Route("/admin/suppressions", suppressions_change, methods=["POST"]),
]
