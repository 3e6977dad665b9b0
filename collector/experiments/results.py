"""A/B results from what is stored: exposures and conversions per variant, counted in SQL, then analysed."""

from __future__ import annotations

import json
from typing import Any

from collector.experiments.analysis import analyze
from collector.schemas import SiteSettings
from collector.store.db import Database, time_window


def _variants_of(raw: str | None, key: str | None = None) -> dict[str, str]:
    if not raw:
        return {}
    try:
        data = json.loads(raw)
    except ValueError:
        return {}
    if key is not None:
        data = data.get(key) if isinstance(data, dict) else None
    return data if isinstance(data, dict) else {}


async def _popup_counts(
    db: Database, site_id: int, since: float | None, until: float | None
) -> dict[str, dict[str, dict[str, Any]]]:
    """Popup and discount tests: a visitor shown a variant is one exposure; their lead is the conversion."""
    where, args = time_window("created_at", since, until)
    exposed: dict[tuple[str, str], set[str]] = {}
    rows = await db.fetchall(
        f"SELECT visitor_id, data FROM events WHERE site_id = ? AND type = 'shown' AND data LIKE ?{where}",
        site_id,
        '%"variants"%',
        *args,
    )
    for r in rows:
        for exp, var in _variants_of(r["data"], "variants").items():
            exposed.setdefault((exp, var), set()).add(r["visitor_id"])
    out: dict[str, dict[str, dict[str, Any]]] = {}
    for (exp, var), visitors in exposed.items():
        out.setdefault(exp, {})[var] = {"shown": len(visitors), "converted": 0, "_visitors": visitors, "_emails": set()}
    leads = await db.fetchall(
        f"SELECT email, visitor_id, variants FROM leads WHERE site_id = ? AND variants IS NOT NULL{where}",
        site_id,
        *args,
    )
    for r in leads:
        for exp, var in _variants_of(r["variants"]).items():
            cell = out.setdefault(exp, {}).setdefault(
                var, {"shown": 0, "converted": 0, "_visitors": set(), "_emails": set()}
            )
            # A conversion counts only for a visitor who was shown that variant, so the
            # rate stays a proportion (a lead from the API alone is no conversion).
            if r["visitor_id"] in cell["_visitors"]:
                cell["converted"] += 1
                cell["_emails"].add(r["email"])
    return out


async def _discount_counts(
    db: Database, site_id: int, exp: str, popup: dict[str, dict[str, Any]], since: float | None, until: float | None
) -> dict[str, dict[str, Any]]:
    """Discount tests: a shopper offered a variant's code is the exposure, in the popup (their lead) or
    in a reminder (its variants); their recovered order is the conversion, with its revenue. A shopper
    offered codes of two variants (on two browsers) counts for the first: the popup's."""
    where, args = time_window("created_at", since, until)
    orders = await db.fetchall(
        f"SELECT email, value FROM orders WHERE site_id = ? AND recovered = 1 AND email IS NOT NULL{where}",
        site_id,
        *args,
    )
    by_email: dict[str, float] = {}
    for o in orders:
        by_email[o["email"]] = by_email.get(o["email"], 0.0) + float(o["value"])
    offered: dict[str, set[str]] = {var: set(cell["_emails"]) for var, cell in popup.get(exp, {}).items()}
    seen = set().union(*offered.values()) if offered else set()
    where, args = time_window("sent_at", since, until)
    emailed = await db.fetchall(
        f"SELECT to_addr, variants FROM emails WHERE site_id = ? AND status = 'sent' AND variants LIKE ?{where} ORDER BY sent_at",
        site_id,
        f'%"{exp}"%',
        *args,
    )
    for r in emailed:
        var = _variants_of(r["variants"]).get(exp)
        if var is not None and r["to_addr"] not in seen:
            offered.setdefault(var, set()).add(r["to_addr"])
            seen.add(r["to_addr"])
    out = {}
    for var, emails in offered.items():
        won = [e for e in emails if e in by_email]
        out[var] = {"shown": len(emails), "converted": len(won), "revenue": round(sum(by_email[e] for e in won), 2)}
    return out


async def _subject_counts(
    db: Database, site_id: int, since: float | None, until: float | None
) -> dict[str, dict[str, dict[str, Any]]]:
    """Subject tests: an email sent is the exposure; opened (by a person) and clicked are the conversions."""
    where, args = time_window("sent_at", since, until)
    rows = await db.fetchall(
        f"SELECT variants, opened_at, clicked_at FROM emails WHERE site_id = ? AND status = 'sent' AND variants IS NOT NULL{where}",
        site_id,
        *args,
    )
    out: dict[str, dict[str, dict[str, Any]]] = {}
    for r in rows:
        for exp, var in _variants_of(r["variants"]).items():
            cell = out.setdefault(exp, {}).setdefault(var, {"shown": 0, "converted": 0, "clicked": 0})
            cell["shown"] += 1
            cell["converted"] += 1 if r["opened_at"] is not None else 0
            cell["clicked"] += 1 if r["clicked_at"] is not None else 0
    return out


def _public(cell: dict[str, Any]) -> dict[str, Any]:
    out = {k: v for k, v in cell.items() if not k.startswith("_")}
    out["rate"] = round(out["converted"] / out["shown"], 4) if out["shown"] else 0.0
    return out


async def variant_counts(
    db: Database, settings: SiteSettings, site_id: int, since: float | None = None, until: float | None = None
) -> dict[str, dict[str, dict[str, Any]]]:
    """Per experiment and variant: shown, converted, rate (the stats API's `variants`)."""
    popup = await _popup_counts(db, site_id, since, until)
    subject = await _subject_counts(db, site_id, since, until)
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
            counted = await _discount_counts(db, site_id, e.name, popup, since, until)
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
