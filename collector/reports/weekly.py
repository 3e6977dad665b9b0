"""The weekly report: an email to each dashboard user (opt-out per user) on last week's results and what needs care.

For the ISO week (Monday 00:00 UTC to Monday 00:00 UTC) before the one in which it runs, per site:
recovered revenue and orders, the incremental lift when a holdout runs, the step that brought the
most revenue, the top reasons shoppers gave, and what needs attention (webhooks that failed for good,
reminders that failed, suppressions (unsubscribes, bounces, complaints) rising week over week, a settings row left at its example value
or recovery turned off). Each user gets each week once (weekly_reports, claimed before sending and
given back when the send fails); users who opted out (users.weekly_report = 0) get nothing.
Sent by the server's sweep loop and by `cartback reports send-weekly`; over SMTP when
CARTBACK_SMTP_URL is set, else into the dev mailbox.
"""

from __future__ import annotations

import logging
import time
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from email.utils import formatdate
from typing import Any
from urllib.parse import urlsplit

from jinja2 import Environment

from collector.funnel import site_stats
from collector.money import format_money
from collector.recovery.mailer import POLICY, SendError, SmtpSender, message_bytes, message_headers
from collector.security import Signer
from collector.services import Services
from collector.store import Site, Store, emails, suppressions, users
from collector.store.db import Database, time_window

log = logging.getLogger("cartback.reports")

OPTOUT_PURPOSE = "weekly-report-optout"
OPTOUT_MAX_AGE = 400 * 86400.0
EXAMPLE_HOSTS = ("example.com", "shop.example")


def report_week(now: float) -> tuple[str, float, float]:
    """(ISO week label like 2026-W48, start, end) of the last full week before `now`."""
    today = datetime.fromtimestamp(now, tz=UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    this_monday = today - timedelta(days=today.weekday())
    start = this_monday - timedelta(days=7)
    year, week, _ = start.isocalendar()
    return f"{year}-W{week:02d}", start.timestamp(), this_monday.timestamp()


def make_optout_token(signer: Signer, user_id: int) -> str:
    return signer.dumps(user_id, OPTOUT_PURPOSE)


def load_optout_token(signer: Signer, token: str) -> int | None:
    value = signer.loads(token, OPTOUT_PURPOSE, OPTOUT_MAX_AGE)
    return value if isinstance(value, int) and not isinstance(value, bool) else None


async def _count(db: Database, sql: str, column: str, site_id: int, since: float, until: float) -> int:
    where, args = time_window(column, since, until)
    row = await db.fetchone(f"{sql}{where}", site_id, *args)
    return int(row["n"]) if row else 0


async def _suppressions_added(db: Database, site_id: int, since: float, until: float) -> dict[str, int]:
    """{"unsubscribes", "bounces", "complaints"} of the site in [since, until)."""
    unsubs = await _count(
        db, "SELECT COUNT(*) AS n FROM unsubscribes WHERE site_id = ?", "created_at", site_id, since, until
    )
    mail = await suppressions.event_counts(db, site_id, since, until)
    return {"unsubscribes": unsubs, "bounces": mail.get("bounce", 0), "complaints": mail.get("complaint", 0)}


async def attention(db: Database, site: Site, since: float, until: float) -> list[str]:
    """What the owner should look at this week, in words (empty when all is well)."""
    notes: list[str] = []
    failed_hooks = await _count(
        db,
        "SELECT COUNT(*) AS n FROM webhook_outbox WHERE site_id = ? AND status = 'failed'",
        "created_at",
        site.id,
        since,
        until,
    )
    if failed_hooks:
        notes.append(
            f"{failed_hooks} webhook deliver{'y' if failed_hooks == 1 else 'ies'} failed for good: check the receiver"
        )
    failed_mail = await _count(
        db, "SELECT COUNT(*) AS n FROM emails WHERE site_id = ? AND status = 'failed'", "due_at", site.id, since, until
    )
    if failed_mail:
        notes.append(f"{failed_mail} reminder{'' if failed_mail == 1 else 's'} failed for good (see the Carts page)")
    # Suppressions rising: the site's addresses newly kept from reminders (unsubscribes, and the
    # bounces and complaints its providers reported), this week against the week before.
    now_sup = await _suppressions_added(db, site.id, since, until)
    before_sup = await _suppressions_added(db, site.id, since - (until - since), since)
    if sum(now_sup.values()) > sum(before_sup.values()):
        parts = [f"{n} {what if n != 1 else what[:-1]}" for what, n in now_sup.items() if n]
        notes.append(
            f"suppressions rising: {sum(now_sup.values())} this week ({', '.join(parts)}),"
            f" {sum(before_sup.values())} the week before"
        )
    rec = site.settings.recovery
    if not rec.enabled:
        notes.append("recovery is turned off: no reminders go out")
    sender_host = rec.from_.rpartition("@")[2].rstrip(">").lower()
    if sender_host in EXAMPLE_HOSTS:
        notes.append(f"settings: recovery.from is still the example address ({rec.from_})")
    if (urlsplit(rec.cart_url).hostname or "") in EXAMPLE_HOSTS:
        notes.append(f"settings: recovery.cart_url is still the example page ({rec.cart_url})")
    return notes


async def site_summary(db: Database, site: Site, since: float, until: float) -> dict[str, Any]:
    stats = await site_stats(db, site.id, since, until, settings=site.settings)
    steps = [s for s in stats["steps"] if s["recovered_revenue"] > 0]
    best = max(steps, key=lambda s: (s["recovered_revenue"], -s["step"])) if steps else None
    lift = None
    if stats.get("incremental_recovery_rate") is not None:
        lift = {
            "rate": stats["incremental_recovery_rate"],
            "interval": stats["interval"],
            "revenue": stats["incremental_revenue"],
            "summary": stats["holdout_summary"],
        }
    return {
        "name": site.name,
        "key": site.key,
        "recovered_revenue": stats["recovered_revenue"],
        "recovered_orders": stats["recovered_orders"],
        "emails_sent": stats["emails_sent"],
        "abandoned": stats["abandoned"],
        "lift": lift,
        "best_step": best,
        "reasons": list(stats["reasons"].items())[:3],
        "attention": await attention(db, site, since, until),
    }


_env = Environment(autoescape=True, trim_blocks=True, lstrip_blocks=True)
_env.filters["money"] = format_money
HTML = _env.from_string(
    """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{{ subject }}</title></head>
<body style="font-family:Helvetica,Arial,sans-serif;color:#1f2933;max-width:640px;margin:0 auto;padding:16px">
<h1 style="font-size:20px">Cartback: the week of {{ week_label }}</h1>
{% for s in sites %}
<h2 style="font-size:17px;margin-top:24px">{{ s.name }}</h2>
<p><strong>{{ s.recovered_revenue | money }}</strong> recovered from {{ s.recovered_orders }} order{{ '' if s.recovered_orders == 1 else 's' }}
 ({{ s.abandoned }} carts abandoned, {{ s.emails_sent }} reminders sent).</p>
{% if s.lift %}<p>Holdout: {{ s.lift.summary }} Incremental revenue {{ s.lift.revenue | money }}.</p>{% endif %}
{% if s.best_step %}<p>Best step: step {{ s.best_step.step + 1 }}, {{ s.best_step.recovered_revenue | money }} from {{ s.best_step.recovered_orders }} order{{ '' if s.best_step.recovered_orders == 1 else 's' }}.</p>{% endif %}
{% if s.reasons %}<p>Top reasons shoppers gave: {% for r, n in s.reasons %}{{ r }} ({{ n }}){% if not loop.last %}, {% endif %}{% endfor %}.</p>{% endif %}
{% if s.attention %}<p><strong>Needs attention:</strong></p><ul>{% for a in s.attention %}<li>{{ a }}</li>{% endfor %}</ul>
{% else %}<p>Nothing needs attention.</p>{% endif %}
{% endfor %}
<p style="font-size:12px;color:#52606d;margin-top:32px">You get this as a Cartback dashboard user.
<a href="{{ optout_url }}">Stop the weekly report</a>.</p>
</body></html>
"""
)
TEXT = Environment(autoescape=False, trim_blocks=True, lstrip_blocks=True)
TEXT.filters["money"] = format_money
TEXT_TEMPLATE = TEXT.from_string(
    """Cartback: the week of {{ week_label }}
{% for s in sites %}

{{ s.name }}
{{ s.recovered_revenue | money }} recovered from {{ s.recovered_orders }} orders ({{ s.abandoned }} carts abandoned, {{ s.emails_sent }} reminders sent).
{% if s.lift %}Holdout: {{ s.lift.summary }} Incremental revenue {{ s.lift.revenue | money }}.
{% endif %}
{% if s.best_step %}Best step: step {{ s.best_step.step + 1 }}, {{ s.best_step.recovered_revenue | money }} from {{ s.best_step.recovered_orders }} orders.
{% endif %}
{% if s.reasons %}Top reasons: {% for r, n in s.reasons %}{{ r }} ({{ n }}){% if not loop.last %}, {% endif %}{% endfor %}.
{% endif %}
{% if s.attention %}Needs attention:
{% for a in s.attention %}- {{ a }}
{% endfor %}
{% else %}Nothing needs attention.
{% endif %}
{% endfor %}

Stop the weekly report: {{ optout_url }}
"""
)


def render(week_label: str, sites: list[dict[str, Any]], optout_url: str) -> tuple[str, str, str]:
    """(subject, text, html) of one user's report."""
    total = round(sum(s["recovered_revenue"] for s in sites), 2)
    subject = f"Cartback weekly report {week_label}: {format_money(total)} recovered"
    ctx = {"week_label": week_label, "sites": sites, "optout_url": optout_url, "subject": subject}
    return subject, TEXT_TEMPLATE.render(**ctx), HTML.render(**ctx)


def sender_address(public_url: str) -> str:
    host = urlsplit(public_url).hostname or "localhost"
    return f"Cartback <cartback@{host}>"


async def send_weekly(services: Services, now: float | None = None) -> int:
    """Sends last week's report to every user who wants it and has not had it; returns how many went."""
    store: Store = services.store
    at = time.time() if now is None else now
    week, since, until = report_week(at)
    recipients = await users.weekly_recipients(store.db, week)
    if not recipients:
        return 0
    sites = [await site_summary(store.db, site, since, until) for site in await store.sites.list()]
    sender = sender_address(services.config.public_url)
    smtp = SmtpSender(services.config.smtp) if services.config.smtp is not None else None
    sent = 0
    try:
        for user in recipients:
            if not await users.claim_weekly(store.db, user["id"], week, at):
                continue  # another sweeper has it
            optout = f"{services.config.public_url}/report-optout/{make_optout_token(services.signer, user['id'])}"
            subject, text, html = render(week, sites, optout)
            msg = EmailMessage(policy=POLICY)
            msg["Subject"] = subject
            msg["From"] = sender
            msg["To"] = user["email"]
            msg["Date"] = formatdate(at, usegmt=True)
            msg["Message-ID"] = f"<cartback.weekly.{week}.{user['id']}@{sender.rpartition('@')[2].rstrip('>')}>"
            msg["List-Unsubscribe"] = f"<{optout}>"
            msg["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"
            msg.set_content(text, cte="quoted-printable")
            msg.add_alternative(html, subtype="html", cte="quoted-printable")
            try:
                if smtp is None:
                    await emails.add_to_mailbox(
                        store.db,
                        None,
                        {
                            "to_addr": user["email"],
                            "from_addr": sender,
                            "subject": subject,
                            "html": html,
                            "text": text,
                            "headers": message_headers(msg),
                        },
                        at,
                    )
                else:
                    await smtp.send(
                        "cartback@" + sender.rpartition("@")[2].rstrip(">"), user["email"], message_bytes(msg)
                    )
            except SendError as exc:  # this user's report fails alone and is tried again next pass
                log.warning("weekly report to user %s failed: %s", user["id"], exc)
                await users.release_weekly(store.db, user["id"], week)
                continue
            sent += 1
    finally:
        if smtp is not None:
            await smtp.close()
    return sent
