"""The stats API's second-release keys in one dictionary, put together from the analytics modules."""

from __future__ import annotations

from typing import Any

from collector.analytics import checkout, holdout, money, steps
from collector.schemas import SiteSettings
from collector.store.db import Database


async def outcome_stats(
    db: Database,
    site_id: int,
    since: float | None,
    until: float | None,
    settings: SiteSettings,
    recovered_revenue: float,
) -> dict[str, Any]:
    """recoverable, lost_value, revenue_per_recipient, steps, checkout_steps, reasons, reasons_by_checkout_step,
    daily, and (when a holdout is set or ran in the range) holdout, treated, incremental_recovery_rate, interval."""
    n_recoverable, lost = await money.recoverable(db, site_id, since, until)
    recipients = await money.recipients(db, site_id, since, until)
    out: dict[str, Any] = {
        "recoverable": n_recoverable,
        "lost_value": lost,
        "recipients": recipients,
        "revenue_per_recipient": round(recovered_revenue / recipients, 2) if recipients else 0.0,
        "steps": await steps.step_stats(db, site_id, len(settings.recovery.steps), since, until),
        "checkout_steps": await checkout.checkout_steps(db, site_id, since, until),
        "reasons": await checkout.reasons(db, site_id, since, until),
        "reasons_by_checkout_step": await checkout.reasons_by_checkout_step(db, site_id, since, until),
        "daily": await money.daily_series(db, site_id, since, until),
    }
    groups = await holdout.holdout_stats(db, site_id, since, until, settings)
    if groups is not None:
        out.update(groups)
    return out
