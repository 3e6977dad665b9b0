"""Per reminder step: sent, skipped (with reasons), opened, clicked, and the recovered orders and revenue it brought.

Each number is counted by the time of its own event inside the range, as the overview's totals are:
sent by sent_at, skipped by due_at (when it came due and was not sent), opened by opened_at (opens by
a person only: the sweep never sets opened_at for a privacy proxy's prefetch), clicked by clicked_at,
recovered by the order's time. An order is credited to the step of the reminder it is attributed to
(orders.email_id: the address's last clicked reminder inside the attribution window, else the last one
opened by a person; store/emails.py credited_within).
"""

from __future__ import annotations

from typing import Any

from collector.store.db import Database, time_window


async def _per_step(
    db: Database, sql: str, column: str, site_id: int, since: float | None, until: float | None
) -> dict[int, int]:
    where, args = time_window(column, since, until)
    rows = await db.fetchall(f"{sql}{where} GROUP BY step", site_id, *args)
    return {int(r["step"]): int(r["n"]) for r in rows}


async def step_stats(
    db: Database, site_id: int, n_steps: int, since: float | None, until: float | None
) -> list[dict[str, Any]]:
    """One entry per step of the settings (0-based `step`, zeros included), then any older step still in the data."""
    base = "SELECT step, COUNT(*) AS n FROM emails WHERE site_id = ?"
    sent = await _per_step(db, base + " AND status = 'sent'", "sent_at", site_id, since, until)
    skipped = await _per_step(db, base + " AND status = 'skipped'", "due_at", site_id, since, until)
    opened = await _per_step(db, base + " AND opened_at IS NOT NULL", "opened_at", site_id, since, until)
    clicked = await _per_step(db, base + " AND clicked_at IS NOT NULL", "clicked_at", site_id, since, until)
    where, args = time_window("due_at", since, until)
    reason_rows = await db.fetchall(
        "SELECT step, COALESCE(error, '(no reason recorded)') AS reason, COUNT(*) AS n FROM emails"
        f" WHERE site_id = ? AND status = 'skipped'{where} GROUP BY step, COALESCE(error, '(no reason recorded)')",
        site_id,
        *args,
    )
    reasons: dict[int, dict[str, int]] = {}
    for r in reason_rows:
        reasons.setdefault(int(r["step"]), {})[str(r["reason"])] = int(r["n"])
    where, args = time_window("o.created_at", since, until)
    order_rows = await db.fetchall(
        "SELECT e.step AS step, COUNT(*) AS n, COALESCE(SUM(o.value), 0) AS v FROM orders o"
        f" JOIN emails e ON e.id = o.email_id WHERE o.site_id = ? AND o.recovered = 1{where} GROUP BY e.step",
        site_id,
        *args,
    )
    recovered = {int(r["step"]): (int(r["n"]), float(r["v"])) for r in order_rows}
    seen = set(sent) | set(skipped) | set(opened) | set(clicked) | set(recovered)
    out = []
    for step in sorted(set(range(n_steps)) | seen):
        orders, revenue = recovered.get(step, (0, 0.0))
        n_sent = sent.get(step, 0)
        out.append(
            {
                "step": step,
                "sent": n_sent,
                "skipped": skipped.get(step, 0),
                "skipped_reasons": dict(sorted(reasons.get(step, {}).items(), key=lambda kv: (-kv[1], kv[0]))),
                "opened": opened.get(step, 0),
                "clicked": clicked.get(step, 0),
                "recovered_orders": orders,
                "recovered_revenue": round(revenue, 2),
                "in_settings": step < n_steps,
            }
        )
    return out
