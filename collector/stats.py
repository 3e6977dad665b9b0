"""The funnel numbers of a site over a time range: one function for the dashboard and the API."""

from __future__ import annotations

import json
from typing import Any

from collector.store import Database


def _range(column: str, since: float | None, until: float | None) -> tuple[str, list[float]]:
    sql, args = "", []
    if since is not None:
        sql += f" AND {column} >= ?"
        args.append(since)
    if until is not None:
        sql += f" AND {column} < ?"
        args.append(until)
    return sql, args


async def _count(db: Database, table: str, site_id: int, column: str, since: float | None, until: float | None, extra: str = "") -> int:
    where, args = _range(column, since, until)
    row = await db.fetchone(f"SELECT COUNT(*) AS n FROM {table} WHERE site_id = ?{extra}{where}", site_id, *args)
    return int(row["n"]) if row else 0


def ratio(num: float, den: float) -> float:
    return round(num / den, 4) if den else 0.0


async def site_stats(db: Database, site_id: int, since: float | None = None, until: float | None = None) -> dict[str, Any]:
    carts = await _count(db, "carts", site_id, "created_at", since, until)
    abandoned = await _count(db, "carts", site_id, "abandoned_at", since, until, " AND abandoned_at IS NOT NULL")
    shown = await _count(db, "events", site_id, "created_at", since, until, " AND type = 'shown'")
    leads = await _count(db, "leads", site_id, "created_at", since, until)
    sent = await _count(db, "emails", site_id, "sent_at", since, until, " AND status = 'sent'")
    # Opens counted once per email, and only opens by a person (not a privacy proxy's prefetch).
    opened = await _count(db, "emails", site_id, "opened_at", since, until, " AND opened_at IS NOT NULL")
    clicked = await _count(db, "emails", site_id, "clicked_at", since, until, " AND clicked_at IS NOT NULL")
    where, args = _range("created_at", since, until)
    row = await db.fetchone(
        f"SELECT COUNT(*) AS n, COALESCE(SUM(value), 0) AS v FROM orders WHERE site_id = ? AND recovered = 1{where}",
        site_id,
        *args,
    )
    recovered, revenue = (int(row["n"]), float(row["v"])) if row else (0, 0.0)
    return {
        "carts": carts,
        "abandoned": abandoned,
        "popup_shown": shown,
        "leads": leads,
        "emails_sent": sent,
        "emails_opened": opened,
        "emails_clicked": clicked,
        "recovered_orders": recovered,
        "recovered_revenue": round(revenue, 2),
        "recovery_rate": ratio(recovered, abandoned),
        "variants": await variant_stats(db, site_id, since, until),
    }


async def variant_stats(db: Database, site_id: int, since: float | None, until: float | None) -> dict[str, Any]:
    """Per experiment and variant: popup impressions and the leads they turned into."""
    out: dict[str, dict[str, dict[str, Any]]] = {}
    where, args = _range("created_at", since, until)
    for table, sql_type, key in (("events", " AND type = 'shown'", "shown"), ("leads", "", "converted")):
        col = "data" if table == "events" else "variants"
        rows = await db.fetchall(
            f"SELECT {col} AS v, COUNT(*) AS n FROM {table} WHERE site_id = ? AND {col} IS NOT NULL{sql_type}{where} GROUP BY {col}",
            site_id,
            *args,
        )
        for r in rows:
            data = json.loads(r["v"])
            variants = data.get("variants", {}) if table == "events" else data
            for exp, var in variants.items():
                cell = out.setdefault(exp, {}).setdefault(var, {"shown": 0, "converted": 0})
                cell[key] += int(r["n"])
    for exp in out.values():
        for cell in exp.values():
            cell["rate"] = ratio(cell["converted"], cell["shown"])
    return out
