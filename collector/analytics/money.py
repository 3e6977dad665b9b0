"""Honest money: recoverable carts and their value, revenue per recipient, and the daily series for the chart."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Any

from collector.analytics.sql import bucket
from collector.store.db import Database, time_window

DAY = 86400.0
# Longer ranges are bucketed by week (or more days) so the chart stays readable and the answer small.
MAX_POINTS = 120


async def recoverable(db: Database, site_id: int, since: float | None, until: float | None) -> tuple[int, float]:
    """(abandoned carts with an email, their value) among the carts marked abandoned in the range."""
    where, args = time_window("abandoned_at", since, until)
    row = await db.fetchone(
        "SELECT COUNT(*) AS n, COALESCE(SUM(value), 0) AS v FROM carts"
        f" WHERE site_id = ? AND abandoned_at IS NOT NULL AND email IS NOT NULL{where}",
        site_id,
        *args,
    )
    return (int(row["n"]), round(float(row["v"]), 2)) if row else (0, 0.0)


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
    """Per UTC day (or per `days` days for long ranges): carts, abandoned, recovered orders and revenue, zeros kept."""
    row = await db.fetchone(
        "SELECT MIN(lo) AS lo, MAX(hi) AS hi FROM ("
        " SELECT MIN(created_at) AS lo, MAX(COALESCE(abandoned_at, created_at)) AS hi FROM carts WHERE site_id = ?"
        " UNION ALL SELECT MIN(created_at) AS lo, MAX(created_at) AS hi FROM orders WHERE site_id = ?) x",
        site_id,
        site_id,
    )
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

    async def fill(sql: str, column: str, keys: tuple[str, ...]) -> None:
        where, args = time_window(column, start, end)
        rows = await db.fetchall(
            f"SELECT {bucket(db, column)} AS b, {sql}{where} GROUP BY b", start, width, site_id, *args
        )
        for r in rows:
            i = min(n - 1, max(0, int(r["b"])))
            for key in keys:
                points[i][key] += r[key]

    await fill("COUNT(*) AS carts FROM carts WHERE site_id = ?", "created_at", ("carts",))
    await fill(
        "COUNT(*) AS abandoned FROM carts WHERE site_id = ? AND abandoned_at IS NOT NULL",
        "abandoned_at",
        ("abandoned",),
    )
    await fill(
        "COUNT(*) AS recovered_orders, COALESCE(SUM(value), 0) AS revenue FROM orders WHERE site_id = ? AND recovered = 1",
        "created_at",
        ("recovered_orders", "revenue"),
    )
    for p in points:
        p["revenue"] = round(float(p["revenue"]), 2)
    return points
