"""The checkout funnel and the reasons: distinct browsers per checkout step, reasons given, reasons per step reached.

Checkout steps come from `cartback('checkout', {step})` (or a platform adapter reporting the same event),
stored as `checkout` events; reasons from the popup (`reason` events). A browser is its visitor id.
"""

from __future__ import annotations

from typing import Any

from collector.analytics.sql import json_text
from collector.store.db import Database, time_window

NO_REASON = "(none given)"


async def checkout_steps(db: Database, site_id: int, since: float | None, until: float | None) -> list[dict[str, Any]]:
    """Per step name: distinct browsers that reached it, most first, with the drop from the step before."""
    where, args = time_window("created_at", since, until)
    step = json_text(db, "data", "step")
    rows = await db.fetchall(
        f"SELECT {step} AS step, COUNT(DISTINCT visitor_id) AS visitors FROM events"
        f" WHERE site_id = ? AND type = 'checkout' AND {step} IS NOT NULL{where} GROUP BY {step}",
        site_id,
        *args,
    )
    return step_funnel([(str(r["step"]), int(r["visitors"])) for r in rows])


def step_funnel(visitors_per_step: list[tuple[str, int]]) -> list[dict[str, Any]]:
    """(step name, distinct browsers) as the stats list them: most first, with the drop from the step before."""
    ordered = sorted(visitors_per_step, key=lambda sv: (-sv[1], sv[0]))
    out: list[dict[str, Any]] = []
    for name, visitors in ordered:
        before = out[-1]["visitors"] if out else None
        drop = before - visitors if before is not None else 0
        out.append(
            {
                "step": name,
                "visitors": visitors,
                "drop": drop,
                "drop_rate": round(drop / before, 4) if before else 0.0,
            }
        )
    return out


async def reasons(db: Database, site_id: int, since: float | None, until: float | None) -> dict[str, int]:
    """Reason -> how many times shoppers gave it, most given first."""
    where, args = time_window("created_at", since, until)
    reason = f"COALESCE(NULLIF(TRIM({json_text(db, 'data', 'reason')}), ''), '{NO_REASON}')"
    rows = await db.fetchall(
        f"SELECT {reason} AS reason, COUNT(*) AS n FROM events WHERE site_id = ? AND type = 'reason'{where}"
        f" GROUP BY {reason}",
        site_id,
        *args,
    )
    return dict(sorted(((str(r["reason"]), int(r["n"])) for r in rows), key=lambda kv: (-kv[1], kv[0])))


async def reasons_by_checkout_step(
    db: Database, site_id: int, since: float | None, until: float | None
) -> dict[str, dict[str, int]]:
    """Per checkout step: the reasons given by the browsers that reached it (reason -> count)."""
    where_c, args_c = time_window("created_at", since, until)
    where_r, args_r = time_window("created_at", since, until)
    step = json_text(db, "data", "step")
    reason = f"COALESCE(NULLIF(TRIM({json_text(db, 'data', 'reason')}), ''), '{NO_REASON}')"
    rows = await db.fetchall(
        "SELECT cs.step AS step, rr.reason AS reason, COUNT(*) AS n FROM"
        f" (SELECT DISTINCT visitor_id, {step} AS step FROM events"
        f"  WHERE site_id = ? AND type = 'checkout' AND {step} IS NOT NULL{where_c}) cs"
        f" JOIN (SELECT visitor_id, {reason} AS reason FROM events WHERE site_id = ? AND type = 'reason'{where_r}) rr"
        " ON rr.visitor_id = cs.visitor_id GROUP BY cs.step, rr.reason",
        site_id,
        *args_c,
        site_id,
        *args_r,
    )
    out: dict[str, dict[str, int]] = {}
    for r in sorted(rows, key=lambda r: (str(r["step"]), -int(r["n"]), str(r["reason"]))):
        out.setdefault(str(r["step"]), {})[str(r["reason"])] = int(r["n"])
    return out
