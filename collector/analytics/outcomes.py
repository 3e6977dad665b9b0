"""The stats API's second-release keys in one dictionary, put together from the analytics modules."""

from __future__ import annotations

from typing import Any

from collector.analytics import checkout, holdout, money, rollup
from collector.schemas import SiteSettings
from collector.store.db import Database


async def outcome_stats(
    db: Database,
    site_id: int,
    since: float | None,
    until: float | None,
    settings: SiteSettings,
    recovered_revenue: float,
    parts: rollup.Counts | None = None,
) -> dict[str, Any]:
    """recoverable, lost_value, revenue_per_recipient, steps, checkout_steps, reasons, reasons_by_checkout_step,
    daily, and (when a holdout is set or ran in the range) holdout, treated, incremental_recovery_rate, interval.

    `parts` is rollup.range_counts of the range when the caller has it (the additive numbers);
    the holdout is counted on the raw rows."""
    if parts is None:
        parts = await rollup.range_counts(db, site_id, since, until)
    recipients = parts["recipients"]
    out: dict[str, Any] = {
        "recoverable": parts["recoverable"],
        "lost_value": round(float(parts["lost_value"]), 2),
        "recipients": recipients,
        "revenue_per_recipient": round(recovered_revenue / recipients, 2) if recipients else 0.0,
        "steps": step_list(parts["steps"], len(settings.recovery.steps)),
        "checkout_steps": checkout.step_funnel(list(parts["checkout_visitors"].items())),
        "reasons": dict(sorted(parts["reasons"].items(), key=lambda kv: (-kv[1], kv[0]))),
        "reasons_by_checkout_step": parts["reasons_by_checkout_step"],
        "daily": await money.daily_series(db, site_id, since, until),
    }
    groups = await holdout.holdout_stats(db, site_id, since, until, settings)
    if groups is not None:
        out.update(groups)
    return out


def step_list(counted: dict[str, dict[str, Any]], n_steps: int) -> list[dict[str, Any]]:
    """The per-step numbers (steps.step_stats's, summed over days) as the stats list them: every step of
    the settings (zeros included), then any older step still in the data."""
    out = []
    for step in sorted(set(range(n_steps)) | {int(s) for s in counted}):
        c = counted.get(str(step), {})
        out.append(
            {
                "step": step,
                "sent": c.get("sent", 0),
                "skipped": c.get("skipped", 0),
                "skipped_reasons": dict(sorted(c.get("skipped_reasons", {}).items(), key=lambda kv: (-kv[1], kv[0]))),
                "opened": c.get("opened", 0),
                "clicked": c.get("clicked", 0),
                "recovered_orders": c.get("recovered_orders", 0),
                "recovered_revenue": round(float(c.get("recovered_revenue", 0.0)), 2),
                "in_settings": step < n_steps,
            }
        )
    return out
