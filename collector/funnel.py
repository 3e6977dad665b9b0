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

from datetime import UTC, datetime
from typing import Any

from collector.analytics import rollup
from collector.analytics.outcomes import outcome_stats
from collector.experiments.results import variant_counts
from collector.schemas import SiteSettings
from collector.store import Database
from collector.store.db import time_window

DAY = 86400.0
# Longer ranges are charted by week (or longer) so that the chart stays readable and small.
MAX_DAILY_POINTS = 120


def ratio(num: float, den: float) -> float:
    return round(num / den, 4) if den else 0.0


async def site_stats(
    db: Database,
    site_id: int,
    since: float | None = None,
    until: float | None = None,
    settings: SiteSettings | None = None,
) -> dict[str, Any]:
    """The funnel numbers; pass the site's settings so `variants` counts each experiment by its kind.

    The additive numbers come from collector/analytics/rollup.py (the daily rollups of the whole
    days in the range, the raw rows for the rest: always equal to one count of the raw rows)."""
    parts = await rollup.range_counts(db, site_id, since, until)
    carts, abandoned, shown, leads = parts["carts"], parts["abandoned"], parts["popup_shown"], parts["leads"]
    sent, opened, clicked = parts["emails_sent"], parts["emails_opened"], parts["emails_clicked"]
    # Distinct carts: reminders sent minus the links between a cart's consecutive ones (analytics/rollup.py).
    carts_emailed = parts["carts_emailed"]
    recovered, revenue = parts["recovered_orders"], round(float(parts["recovered_revenue"]), 2)
    unconsented = parts["reminders_unconsented"]
    settings = settings or SiteSettings()
    opens = parts["opens"]
    stats: dict[str, Any] = {
        "carts": carts,
        "abandoned": abandoned,
        "popup_shown": shown,
        "leads": leads,
        "emails_sent": sent,
        "emails_opened": opened,
        "emails_clicked": clicked,
        "recovered_orders": recovered,
        "recovered_revenue": revenue,
        "verified_revenue": round(float(parts["verified_revenue"]), 2),
        "recovery_rate": ratio(recovered, abandoned),
        "variants": await variant_counts(
            db, settings, site_id, since, until, subject=parts.get("subject", {}), popup=parts["popup"]
        ),
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
        "opens": {"total": opens["total"], "human": opens["total"] - opens["proxy"], "proxy": opens["proxy"]},
        "reason_shares": reason_shares(parts["reason_shares"]),
        "revenue_series": await revenue_series(db, site_id, since, until),
    }
    # The second release's keys (collector/analytics): holdout, steps, checkout funnel, reasons, money.
    stats.update(await outcome_stats(db, site_id, since, until, settings, revenue, parts))
    return stats


def reason_shares(counts: dict[str, int]) -> list[dict[str, Any]]:
    """The reasons shoppers picked in the popup (reason -> count), most given first, with their shares."""
    total = sum(counts.values())
    return [
        {"reason": reason, "count": n, "share": ratio(n, total)}
        for reason, n in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))
    ]


def _day(ts: float) -> float:
    return ts - ts % DAY


async def revenue_series(db: Database, site_id: int, since: float | None, until: float | None) -> list[dict[str, Any]]:
    """Recovered revenue per UTC day (per week, or more days, for long ranges; `days` says), empty days as zeros."""
    days_with = {
        d: p for d, p in (await rollup.per_day(db, site_id, since, until)).items() if p.get("recovered_orders")
    }
    if since is None and not days_with:
        return []
    start = _day(since) if since is not None else min(days_with) * DAY
    if until is not None:
        end_ts = until
    else:
        # One past the last order's time (an index seek), as a walk over the orders would find it.
        where, args = time_window("created_at", since, until)
        row = await db.fetchone(
            f"SELECT MAX(created_at) AS t FROM orders WHERE site_id = ? AND recovered = 1{where}", site_id, *args
        )
        end_ts = float(row["t"]) + 1 if row and row["t"] is not None else start + 1
    days = max(1, int((end_ts - start + DAY - 1) // DAY))
    # Days per point: 1 up to MAX_DAILY_POINTS days, then 7, then as many as keep the points bounded.
    per = 1 if days <= MAX_DAILY_POINTS else 7 if days <= 7 * MAX_DAILY_POINTS else -(-days // MAX_DAILY_POINTS)
    step = per * DAY
    n = max(1, int((end_ts - start + step - 1) // step))
    revenue, orders = [0.0] * n, [0] * n
    for d, p in days_with.items():
        i = min(n - 1, max(0, int((d * DAY - start) // step)))
        revenue[i] += float(p["revenue"])
        orders[i] += int(p["recovered_orders"])
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
