"""The holdout comparison: held-out and treated carts, their recovered orders and revenue, the incremental rate.

Intent to treat: a group's `carts` are its carts marked abandoned in the range (the group drawn at
abandonment, carts.holdout), and its `recovered_*` the orders placed for those carts within
`attribution_days` of abandonment, click or not. So the treated group's number includes shoppers who
would have come back anyway, exactly as the holdout's does, and the difference is what the reminders add.
"""

from __future__ import annotations

from typing import Any

from collector.experiments.analysis import diff_interval
from collector.experiments.holdout import HELD_OUT, TREATED
from collector.schemas import SiteSettings
from collector.store.db import Database, time_window

DAY = 86400.0


def _rate(num: int, den: int) -> float:
    return round(num / den, 4) if den else 0.0


async def holdout_stats(
    db: Database, site_id: int, since: float | None, until: float | None, settings: SiteSettings
) -> dict[str, Any] | None:
    """The holdout keys of the stats; None when no holdout is set and no cart in the range was drawn into one."""
    where, args = time_window("c.abandoned_at", since, until)
    window = settings.recovery.attribution_days * DAY
    # One row per (group, order) so an order that closed two carts of one shopper counts once.
    rows = await db.fetchall(
        "SELECT g.grp AS grp, COUNT(g.order_pk) AS orders, COALESCE(SUM(g.value), 0) AS revenue FROM ("
        " SELECT DISTINCT c.holdout AS grp, o.id AS order_pk, o.value AS value FROM carts c"
        " JOIN orders o ON o.site_id = c.site_id AND o.order_id = c.order_id"
        # Only an order placed after abandonment closes an abandoned cart, so no lower bound.
        " AND o.created_at <= c.abandoned_at + ?"
        f" WHERE c.site_id = ? AND c.holdout IS NOT NULL AND c.abandoned_at IS NOT NULL{where}"
        ") g GROUP BY g.grp",
        window,
        site_id,
        *args,
    )
    cart_rows = await db.fetchall(
        "SELECT c.holdout AS grp, COUNT(*) AS n FROM carts c"
        f" WHERE c.site_id = ? AND c.holdout IS NOT NULL AND c.abandoned_at IS NOT NULL{where} GROUP BY c.holdout",
        site_id,
        *args,
    )
    if not cart_rows and settings.recovery.holdout_percent <= 0:
        return None
    carts = {int(r["grp"]): int(r["n"]) for r in cart_rows}
    orders = {int(r["grp"]): (int(r["orders"]), float(r["revenue"])) for r in rows}

    def group(g: int) -> dict[str, Any]:
        n = carts.get(g, 0)
        k, revenue = orders.get(g, (0, 0.0))
        return {"carts": n, "recovered_orders": k, "recovered_revenue": round(revenue, 2), "recovery_rate": _rate(k, n)}

    held, treated = group(HELD_OUT), group(TREATED)
    hn, hk = held["carts"], held["recovered_orders"]
    tn, tk = treated["carts"], treated["recovered_orders"]
    incremental = round(tk / tn - hk / hn, 4) if hn and tn else None
    interval = diff_interval((hk, hn), (tk, tn)) if hn and tn else None
    # What the reminders added in money: the treated carts' revenue beyond what they would have
    # brought at the holdout's revenue per cart.
    incremental_revenue = (
        round(treated["recovered_revenue"] - tn * held["recovered_revenue"] / hn, 2) if hn and tn else None
    )
    return {
        "holdout": held,
        "treated": treated,
        "incremental_recovery_rate": incremental,
        "interval": [round(interval[0], 4), round(interval[1], 4)] if interval else None,
        "incremental_revenue": incremental_revenue,
        "holdout_percent": settings.recovery.holdout_percent,
        "holdout_summary": summary(incremental, interval, hn, tn),
    }


def _points(x: float) -> str:
    return f"{x * 100:+.1f} points"


def summary(incremental: float | None, interval: tuple[float, float] | None, hn: int, tn: int) -> str:
    """In words: what the reminders add and how sure that is."""
    if incremental is None or interval is None:
        missing = "held-out" if not hn else "treated"
        return f"No {missing} carts in this range yet: nothing to compare."
    low, high = interval
    span = f"95% interval {_points(low)} to {_points(high)}"
    if low > 0:
        return f"Reminders add {_points(incremental)} of recovery rate ({span}): the lift is real at 95%."
    if high < 0:
        return f"Treated carts recover {_points(incremental)} less than held-out ones ({span}): the reminders hurt."
    return (
        f"Reminders add {_points(incremental)} of recovery rate, but the {span} includes zero:"
        f" not sure yet ({hn} held-out and {tn} treated carts)."
    )
