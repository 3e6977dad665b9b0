"""A/B results from what is stored: exposures and conversions per variant, counted in SQL, then analysed."""

from __future__ import annotations

from typing import Any

from collector.experiments.analysis import analyze
from collector.schemas import SiteSettings
from collector.store.db import Database, time_window


async def _popup_counts(
    db: Database, site_id: int, since: float | None, until: float | None
) -> dict[str, dict[str, dict[str, Any]]]:
    """Popup and discount tests: a visitor shown a variant (first shown in the range) is one
    exposure; their lead under that variant, in the range, is the conversion. A lead with no
    showing (from the API alone) converts nothing, so the rate stays a proportion."""
    shown_where, shown_args = time_window("shown_at", since, until)
    lead_where, lead_args = time_window("lead_at", since, until)
    rows = await db.fetchall(
        "SELECT experiment, variant, COUNT(*) AS shown,"
        f" COUNT(CASE WHEN lead_at IS NOT NULL{lead_where} THEN 1 END) AS converted"
        f" FROM variant_assignments WHERE site_id = ?{shown_where} GROUP BY experiment, variant",
        *lead_args,
        site_id,
        *shown_args,
    )
    out: dict[str, dict[str, dict[str, Any]]] = {}
    for r in rows:
        out.setdefault(r["experiment"], {})[r["variant"]] = {
            "shown": int(r["shown"]),
            "converted": int(r["converted"]),
        }
    return out


async def _discount_counts(
    db: Database, site_id: int, exp: str, since: float | None, until: float | None
) -> dict[str, dict[str, Any]]:
    """Discount tests: a shopper offered a variant's code is the exposure, in the popup (their lead) or
    in a reminder (its variants); their recovered order is the conversion, with its revenue. A shopper
    offered codes of two variants (on two browsers) counts for the first: the popup's, then the
    earliest reminder's. Counted by the database: one row per variant comes back."""
    # `+column`: the range is checked, not read by index, so the offers are found by the experiment's
    # own index (a site's other tests and reminders are never read).
    shown_where, shown_args = time_window("+a.shown_at", since, until)
    lead_where, lead_args = time_window("+a.lead_at", since, until)
    sent_where, sent_args = time_window("+e.sent_at", since, until)
    order_where, order_args = time_window("created_at", since, until)
    rows = await db.fetchall(
        "WITH offers AS ("
        " SELECT a.email AS addr, a.variant AS variant, 0 AS src, a.lead_at AS at FROM variant_assignments a"
        " WHERE a.site_id = ? AND a.experiment = ? AND a.lead_at IS NOT NULL AND a.email IS NOT NULL"
        f"{shown_where}{lead_where}"
        " UNION ALL"
        " SELECT e.to_addr AS addr, v.variant AS variant, 1 AS src, e.sent_at AS at"
        " FROM email_variants v JOIN emails e ON e.id = v.email_id"
        f" WHERE v.site_id = ? AND v.experiment = ? AND e.site_id = v.site_id AND e.status = 'sent'{sent_where}"
        "), firsts AS ("
        " SELECT addr, variant, ROW_NUMBER() OVER (PARTITION BY addr ORDER BY src, at) AS n FROM offers"
        "), won AS ("
        " SELECT email, SUM(value) AS revenue FROM orders"
        f" WHERE site_id = ? AND recovered = 1 AND email IS NOT NULL{order_where} GROUP BY email"
        ")"
        " SELECT f.variant AS variant, COUNT(*) AS shown, COUNT(w.email) AS converted,"
        " COALESCE(SUM(w.revenue), 0) AS revenue"
        " FROM firsts f LEFT JOIN won w ON w.email = f.addr WHERE f.n = 1 GROUP BY f.variant",
        site_id,
        exp,
        *shown_args,
        *lead_args,
        site_id,
        exp,
        *sent_args,
        site_id,
        *order_args,
    )
    return {
        r["variant"]: {
            "shown": int(r["shown"]),
            "converted": int(r["converted"]),
            "revenue": round(float(r["revenue"]), 2),
        }
        for r in rows
    }


async def subject_counts(
    db: Database, site_id: int, since: float | None, until: float | None
) -> dict[str, dict[str, dict[str, Any]]]:
    """Subject tests: an email sent is the exposure; opened (by a person) and clicked are the conversions."""
    where, args = time_window("e.sent_at", since, until)
    rows = await db.fetchall(
        "SELECT v.experiment AS experiment, v.variant AS variant, COUNT(*) AS shown,"
        " COUNT(e.opened_at) AS converted, COUNT(e.clicked_at) AS clicked"
        " FROM emails e JOIN email_variants v ON v.email_id = e.id"
        f" WHERE e.site_id = ? AND e.status = 'sent'{where} GROUP BY v.experiment, v.variant",
        site_id,
        *args,
    )
    out: dict[str, dict[str, dict[str, Any]]] = {}
    for r in rows:
        out.setdefault(r["experiment"], {})[r["variant"]] = {
            "shown": int(r["shown"]),
            "converted": int(r["converted"]),
            "clicked": int(r["clicked"]),
        }
    return out


def _public(cell: dict[str, Any]) -> dict[str, Any]:
    out = dict(cell)
    out["rate"] = round(out["converted"] / out["shown"], 4) if out["shown"] else 0.0
    return out


async def variant_counts(
    db: Database,
    settings: SiteSettings,
    site_id: int,
    since: float | None = None,
    until: float | None = None,
    subject: dict[str, dict[str, dict[str, Any]]] | None = None,
    popup: dict[str, dict[str, dict[str, Any]]] | None = None,
) -> dict[str, dict[str, dict[str, Any]]]:
    """Per experiment and variant: shown, converted, rate (the stats API's `variants`). `subject` and
    `popup` are the range's counts when the caller has them already (from the daily rollups)."""
    if popup is None:
        popup = await _popup_counts(db, site_id, since, until)
    if subject is None:
        subject = await subject_counts(db, site_id, since, until)
    kinds = {e.name: e.kind for e in settings.experiments}
    out: dict[str, dict[str, dict[str, Any]]] = {}
    for exp, cells in popup.items():
        if kinds.get(exp, "popup") == "popup":
            out[exp] = {v: _public(c) for v, c in cells.items()}
    for exp, cells in subject.items():
        # Reminders carry discount variants too; those are counted as discount tests below.
        if kinds.get(exp, "subject") == "subject":
            out.setdefault(exp, {v: _public(c) for v, c in cells.items()})
    for e in settings.experiments:
        if e.kind == "discount":
            counted = await _discount_counts(db, site_id, e.name, since, until)
            out[e.name] = {v: _public(c) for v, c in counted.items()}
    # Experiments with no data yet still list their variants, at zero.
    for e in settings.experiments:
        cells = out.setdefault(e.name, {})
        for v in e.variants:
            extra = {"revenue": 0.0} if e.kind == "discount" else {"clicked": 0} if e.kind == "subject" else {}
            cells.setdefault(v.name, {"shown": 0, "converted": 0, **extra, "rate": 0.0})
    return out


async def experiment_results(
    db: Database,
    settings: SiteSettings,
    site_id: int,
    since: float | None = None,
    until: float | None = None,
    include_removed: bool = False,
) -> list[dict[str, Any]]:
    """Each experiment with its counts analysed: rates, intervals, lift, P(best), winner, progress.

    With ``include_removed``, experiments seen in the data but no longer in the settings follow,
    as {"name", "kind": "removed", "enabled": False, "counts": {variant: cell}} (the dashboard
    lists them so that a test deleted from the settings does not vanish without a trace).
    """
    counts = await variant_counts(db, settings, site_id, since, until)
    results = []
    for e in settings.experiments:
        cells = counts.get(e.name, {})
        rows = [
            {
                "name": v.name,
                "exposures": cells[v.name]["shown"],
                "conversions": min(cells[v.name]["converted"], cells[v.name]["shown"]),
            }
            for v in e.variants
        ]
        analysis = analyze(rows, min_sample=e.min_sample, min_probability=e.min_probability)
        for row in analysis["variants"]:
            extra = cells.get(row["name"], {})
            for key in ("clicked", "revenue"):
                if key in extra:
                    row[key] = extra[key]
            if e.kind == "subject":
                row.setdefault("clicked", 0)
                row["click_rate"] = row["clicked"] / row["exposures"] if row["exposures"] else None
            if e.kind == "discount":
                row.setdefault("revenue", 0.0)
        results.append(
            {
                "name": e.name,
                "kind": e.kind,
                "enabled": e.enabled,
                "metric": METRICS[e.kind],
                **LABELS[e.kind],
                "step": e.step if e.kind == "subject" else None,
                "unknown_variants": sorted(set(cells) - {v.name for v in e.variants}),
                **analysis,
            }
        )
    if include_removed:
        configured = {e.name for e in settings.experiments}
        for name in sorted(set(counts) - configured):
            results.append({"name": name, "kind": "removed", "enabled": False, "counts": counts[name]})
    return results


METRICS = {
    "popup": "popup shown → email given",
    "discount": "offered (popup lead or reminder) → recovered order",
    "subject": "email sent → opened (clicks shown beside)",
}

# What the exposures and the conversions of each kind are, in the dashboard's words.
LABELS = {
    "popup": {"exposure_label": "visitors shown", "conversion_label": "leads"},
    "discount": {"exposure_label": "shoppers offered it", "conversion_label": "recovered orders"},
    "subject": {"exposure_label": "reminders sent", "conversion_label": "opened"},
}
