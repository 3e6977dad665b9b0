"""Honest money: recoverable carts and their value, revenue per recipient, and the daily series for the chart."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Any

from collector.analytics import rollup
from collector.store.db import Database, time_window

DAY = 86400.0
# Longer ranges are bucketed by week (or more days) so the chart stays readable and the answer small.
MAX_POINTS = 120


async def recipients(db: Database, site_id: int, since: float | None, until: float | None) -> int:
    """Distinct addresses sent at least one reminder in the range."""
    where, args = time_window("sent_at", since, until)
    row = await db.fetchone(
        f"SELECT COUNT(DISTINCT to_addr) AS n FROM emails WHERE site_id = ? AND status = 'sent'{where}", site_id, *args
    )
    return int(row["n"]) if row else 0


def _day(ts: float) -> float:
    return ts - ts % DAY


async def daily_series(
    db: Database, site_id: int, since: float | None, until: float | None, now: float | None = None
) -> list[dict[str, Any]]:
    """Per UTC day (or per `days` days for long ranges): carts, abandoned, recovered orders and revenue, zeros kept.

    The days' numbers come from rollup.per_day (the daily rollups, the raw rows for days without one)."""
    # The first and last time of the site's carts and orders: index seeks, not a walk over the carts
    # (a cart is abandoned after it was made, so its latest time is abandoned_at when it has one).
    # One MIN or MAX per subquery: SQLite answers each from its index's first or last entry only then.
    row = await db.fetchone(
        "SELECT (SELECT MIN(created_at) FROM carts WHERE site_id = ?) AS c_lo,"
        " (SELECT MAX(created_at) FROM carts WHERE site_id = ?) AS c_hi,"
        " (SELECT MAX(abandoned_at) FROM carts WHERE site_id = ? AND abandoned_at IS NOT NULL) AS a_hi,"
        " (SELECT MIN(created_at) FROM orders WHERE site_id = ?) AS o_lo,"
        " (SELECT MAX(created_at) FROM orders WHERE site_id = ?) AS o_hi",
        *([site_id] * 5),
    )
    los = [float(row[k]) for k in ("c_lo", "o_lo") if row and row[k] is not None]
    his = [float(row[k]) for k in ("c_hi", "a_hi", "o_hi") if row and row[k] is not None]
    row = {"lo": min(los) if los else None, "hi": max(his) if his else None}
    if since is None:
        if row is None or row["lo"] is None:
            return []
        since = float(row["lo"])
    start = _day(since)
    if until is not None:
        end = until
    else:
        # Up to now, or to the latest event when the sweep ran ahead of the clock (`cartback send-due` in tests).
        latest = float(row["hi"]) + 1 if row and row["hi"] is not None else start
        end = max(now if now is not None else time.time(), latest)
    days = max(1, int(-(-(end - start) // DAY)))
    per = 1 if days <= MAX_POINTS else 7 if days <= 7 * MAX_POINTS else -(-days // MAX_POINTS)
    width = per * DAY
    n = max(1, int(-(-(end - start) // width)))
    points: list[dict[str, Any]] = [
        {
            "date": datetime.fromtimestamp(start + i * width, tz=UTC).strftime("%Y-%m-%d"),
            "days": per,
            "carts": 0,
            "abandoned": 0,
            "recovered_orders": 0,
            "revenue": 0.0,
        }
        for i in range(n)
    ]
    for d, counts in (await rollup.per_day(db, site_id, start, end)).items():
        i = min(n - 1, max(0, int((d * DAY - start) // width)))
        for key in ("carts", "abandoned", "recovered_orders", "revenue"):
            points[i][key] += counts.get(key, 0)
    for p in points:
        p["revenue"] = round(float(p["revenue"]), 2)
    return points
