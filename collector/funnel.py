"""The funnel numbers of a site over a time range: one function for the dashboard and the API.

`site_stats` answers the contract's keys (carts, abandoned, popup_shown, leads, emails_sent,
emails_opened, emails_clicked, recovered_orders, recovered_revenue, recovery_rate, variants)
and, beyond them, `carts_emailed`, `rates`, `opens`, `reason_shares` and `revenue_series`; the second
release's keys come from collector/analytics (outcome_stats). The
dashboard's overview renders exactly this dictionary, so the page and the API agree.

How each number is counted (each by the time of its own event inside the range):
- carts: carts created; abandoned: carts marked abandoned (abandoned_at);
- popup_shown: `shown` events; leads: leads created (one per address and site);
- emails_sent: reminder emails sent (sent_at); carts_emailed: distinct carts among them;
- emails_opened: emails with opened_at, which the recovery sweep sets only for an open by a
  person: opens from mail privacy proxies and image prefetchers (Apple Mail Privacy
  Protection, mail scanners and the like) are kept in `opens` with is_proxy = 1 and
  counted apart (`opens.proxy`), so they never inflate the open rate;
- emails_clicked: emails with a click (clicked_at);
- recovered_orders / recovered_revenue: orders attributed to a clicked reminder.
- verified_revenue: the part of recovered_revenue that the store's server reported (the API or a
  platform webhook); a browser's `cartback('purchase')` counts in recovered_revenue only.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from collector.analytics.outcomes import outcome_stats
from collector.experiments.results import variant_counts
from collector.schemas import SiteSettings
from collector.store import Database
from collector.store.db import time_window

DAY = 86400.0
# Longer ranges are charted by week (or longer) so that the chart stays readable and small.
MAX_DAILY_POINTS = 120


async def _count(
    db: Database, table: str, site_id: int, column: str, since: float | None, until: float | None, extra: str = ""
) -> int:
    where, args = time_window(column, since, until)
    row = await db.fetchone(f"SELECT COUNT(*) AS n FROM {table} WHERE site_id = ?{extra}{where}", site_id, *args)
    return int(row["n"]) if row else 0


def ratio(num: float, den: float) -> float:
    return round(num / den, 4) if den else 0.0


async def site_stats(
    db: Database,
    site_id: int,
    since: float | None = None,
    until: float | None = None,
    settings: SiteSettings | None = None,
) -> dict[str, Any]:
    """The funnel numbers; pass the site's settings so `variants` counts each experiment by its kind."""
    carts = await _count(db, "carts", site_id, "created_at", since, until)
    abandoned = await _count(db, "carts", site_id, "abandoned_at", since, until, " AND abandoned_at IS NOT NULL")
    shown = await _count(db, "events", site_id, "created_at", since, until, " AND type = 'shown'")
    leads = await _count(db, "leads", site_id, "created_at", since, until)
    sent = await _count(db, "emails", site_id, "sent_at", since, until, " AND status = 'sent'")
    where, args = time_window("sent_at", since, until)
    row = await db.fetchone(
        f"SELECT COUNT(DISTINCT cart_id) AS n FROM emails WHERE site_id = ? AND status = 'sent'{where}", site_id, *args
    )
    carts_emailed = int(row["n"]) if row else 0
    # Opens counted once per email, and only opens by a person (not a privacy proxy's prefetch).
    opened = await _count(db, "emails", site_id, "opened_at", since, until, " AND opened_at IS NOT NULL")
    clicked = await _count(db, "emails", site_id, "clicked_at", since, until, " AND clicked_at IS NOT NULL")
    where, args = time_window("created_at", since, until)
    row = await db.fetchone(
        "SELECT COUNT(*) AS n, COALESCE(SUM(value), 0) AS v,"
        " COALESCE(SUM(CASE WHEN verified = 1 THEN value ELSE 0 END), 0) AS verified"
        f" FROM orders WHERE site_id = ? AND recovered = 1{where}",
        site_id,
        *args,
    )
    recovered, revenue = (int(row["n"]), float(row["v"])) if row else (0, 0.0)
    # A browser's report counts until the server's report of the same order replaces it;
    # verified_revenue is what no browser console can change: the server's reports only.
    verified = float(row["verified"]) if row else 0.0
    # Reminders that went to an address with no consent on record (no lead with consent given).
    where_sent, args_sent = time_window("e.sent_at", since, until)
    row = await db.fetchone(
        "SELECT COUNT(*) AS n FROM emails e WHERE e.site_id = ? AND e.status = 'sent'"
        f"{where_sent} AND NOT EXISTS (SELECT 1 FROM leads l WHERE l.site_id = e.site_id"
        " AND l.email = e.to_addr AND l.consent = 1)",
        site_id,
        *args_sent,
    )
    unconsented = int(row["n"]) if row else 0
    settings = settings or SiteSettings()
    stats: dict[str, Any] = {
        "carts": carts,
        "abandoned": abandoned,
        "popup_shown": shown,
        "leads": leads,
        "emails_sent": sent,
        "emails_opened": opened,
        "emails_clicked": clicked,
        "recovered_orders": recovered,
        "recovered_revenue": round(revenue, 2),
        "verified_revenue": round(verified, 2),
        "recovery_rate": ratio(recovered, abandoned),
        "variants": await variant_stats(db, site_id, since, until, settings),
        # Beyond the contract's keys: what the dashboard's overview shows.
        "carts_emailed": carts_emailed,
        "reminders_unconsented": unconsented,
        "unconsented_share": ratio(unconsented, sent),
        "rates": {
            "abandonment_rate": ratio(abandoned, carts),
            "popup_conversion_rate": ratio(leads, shown),
            "open_rate": ratio(opened, sent),
            "click_rate": ratio(clicked, sent),
            "click_to_open_rate": ratio(clicked, opened),
            "order_per_click_rate": ratio(recovered, clicked),
            "recovery_rate": ratio(recovered, abandoned),
        },
        "opens": await open_counts(db, site_id, since, until),
        "reason_shares": await reason_counts(db, site_id, since, until),
        "revenue_series": await revenue_series(db, site_id, since, until),
    }
    # The second release's keys (collector/analytics): holdout, steps, checkout funnel, reasons, money.
    stats.update(await outcome_stats(db, site_id, since, until, settings, round(revenue, 2)))
    return stats


async def open_counts(db: Database, site_id: int, since: float | None, until: float | None) -> dict[str, int]:
    """Every recorded open (the `opens` table), split into opens by a person and by a proxy."""
    # By the open's own site_id (migration 007): one site's opens never read another's.
    where, args = time_window("created_at", since, until)
    row = await db.fetchone(
        "SELECT COUNT(*) AS total, COALESCE(SUM(CASE WHEN is_proxy = 1 THEN 1 ELSE 0 END), 0) AS proxy"
        f" FROM opens WHERE site_id = ?{where}",
        site_id,
        *args,
    )
    total, proxy = (int(row["total"]), int(row["proxy"])) if row else (0, 0)
    return {"total": total, "human": total - proxy, "proxy": proxy}


async def reason_counts(db: Database, site_id: int, since: float | None, until: float | None) -> list[dict[str, Any]]:
    """The reasons shoppers picked in the popup, most given first."""
    where, args = time_window("created_at", since, until)
    rows = await db.fetchall(
        f"SELECT data, COUNT(*) AS n FROM events WHERE site_id = ? AND type = 'reason'{where} GROUP BY data",
        site_id,
        *args,
    )
    counts: dict[str, int] = {}
    for r in rows:
        try:
            reason = json.loads(r["data"] or "{}").get("reason")
        except (ValueError, AttributeError):
            reason = None
        if not isinstance(reason, str) or not reason.strip():
            reason = "(none given)"
        counts[reason] = counts.get(reason, 0) + int(r["n"])
    total = sum(counts.values())
    return [
        {"reason": reason, "count": n, "share": ratio(n, total)}
        for reason, n in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))
    ]


def _day(ts: float) -> float:
    return ts - ts % DAY


async def revenue_series(db: Database, site_id: int, since: float | None, until: float | None) -> list[dict[str, Any]]:
    """Recovered revenue per UTC day (per week, or more days, for long ranges; `days` says), empty days as zeros."""
    where, args = time_window("created_at", since, until)
    rows = await db.fetchall(
        f"SELECT created_at, value FROM orders WHERE site_id = ? AND recovered = 1{where} ORDER BY created_at",
        site_id,
        *args,
    )
    if since is None and not rows:
        return []
    start = _day(since if since is not None else rows[0]["created_at"])
    end_ts = until if until is not None else max([r["created_at"] for r in rows] or [start]) + 1
    days = max(1, int((end_ts - start + DAY - 1) // DAY))
    # Days per point: 1 up to MAX_DAILY_POINTS days, then 7, then as many as keep the points bounded.
    per = 1 if days <= MAX_DAILY_POINTS else 7 if days <= 7 * MAX_DAILY_POINTS else -(-days // MAX_DAILY_POINTS)
    step = per * DAY
    n = max(1, int((end_ts - start + step - 1) // step))
    revenue, orders = [0.0] * n, [0] * n
    for r in rows:
        i = min(n - 1, max(0, int((r["created_at"] - start) // step)))
        revenue[i] += float(r["value"])
        orders[i] += 1
    return [
        {
            "date": datetime.fromtimestamp(start + i * step, tz=UTC).strftime("%Y-%m-%d"),
            "days": per,
            "revenue": round(revenue[i], 2),
            "orders": orders[i],
        }
        for i in range(n)
    ]


async def variant_stats(
    db: Database, site_id: int, since: float | None, until: float | None, settings: SiteSettings | None = None
) -> dict[str, Any]:
    """Per experiment and variant: shown, converted, rate, counted as the experiments page counts
    them (collector.experiment_results): popup tests visitors shown to their leads, discount tests
    leads to recovered orders, subject tests reminders sent to opened. Without the settings every
    experiment seen in the data is counted as a popup test."""
    return await variant_counts(db, settings or SiteSettings(), site_id, since, until)
