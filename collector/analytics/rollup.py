"""The additive counts of a time range: whole closed UTC days from the daily rollups, the rest from the raw rows.

`raw_counts` is the one place that counts the additive numbers of the stats over an interval, in
SQL on the raw rows: the overview's totals, opens, reasons, the per-step numbers (analytics/steps.py
as it stands, so a change of how orders are attributed flows through), the recoverable carts and
the subject tests. A day's rollup (store/rollups.py) is exactly `raw_counts` of that day, stored;
`range_counts` adds the rollups of the whole days inside a range to `raw_counts` of what is left
(the partial days at the edges, today, any day not computed yet or invalidated by a write), so the
sum equals one raw count of the whole range. Numbers that are not sums of days (distinct carts,
addresses and browsers, the holdout's orders, the popup and discount tests' conversions) are not
here: their callers count them on the raw rows.

`refresh` computes missing closed days, newest first, a bounded number per call (the sweep's pass).
"""

from __future__ import annotations

import json
import re
import time
from typing import Any

from collector.analytics import checkout, steps
from collector.analytics.sql import bucket, json_text
from collector.experiments.results import subject_counts
from collector.store import rollups
from collector.store.db import Database, Reader, time_window

DAY = float(rollups.DAY)
Counts = dict[str, Any]
# How many days one refresh computes at most, and for how long (seconds) it starts new ones.
DAYS_PER_PASS = 6
# What a stored day holds; a row of another version is recomputed, never read.
VERSION = 3
SECONDS_PER_PASS = 2.0


async def _count(
    db: Reader, table: str, site_id: int, column: str, since: float | None, until: float | None, extra: str = ""
) -> int:
    where, args = time_window(column, since, until)
    row = await db.fetchone(f"SELECT COUNT(*) AS n FROM {table} WHERE site_id = ?{extra}{where}", site_id, *args)
    return int(row["n"]) if row else 0


def reason_of(data: str | None) -> str:
    """The reason a `reason` event's JSON gives, as the overview's reason shares name it."""
    try:
        reason = json.loads(data or "{}").get("reason")
    except (ValueError, AttributeError):
        reason = None
    return reason if isinstance(reason, str) and reason.strip() else "(none given)"


async def raw_counts(db: Database, site_id: int, since: float | None, until: float | None) -> Counts:
    """The additive numbers of [since, until) counted on the raw rows (each by the time of its own event)."""
    out: Counts = {
        "carts": await _count(db, "carts", site_id, "created_at", since, until),
        "abandoned": await _count(db, "carts", site_id, "abandoned_at", since, until, " AND abandoned_at IS NOT NULL"),
        "popup_shown": await _count(db, "events", site_id, "created_at", since, until, " AND type = 'shown'"),
        "leads": await _count(db, "leads", site_id, "created_at", since, until),
        "emails_sent": await _count(db, "emails", site_id, "sent_at", since, until, " AND status = 'sent'"),
        # Opens counted once per email, and only opens by a person (not a privacy proxy's prefetch).
        "emails_opened": await _count(db, "emails", site_id, "opened_at", since, until, " AND opened_at IS NOT NULL"),
        "emails_clicked": await _count(
            db, "emails", site_id, "clicked_at", since, until, " AND clicked_at IS NOT NULL"
        ),
    }
    where, args = time_window("created_at", since, until)
    row = await db.fetchone(
        "SELECT COUNT(*) AS n, COALESCE(SUM(value), 0) AS v,"
        " COALESCE(SUM(CASE WHEN verified = 1 THEN value ELSE 0 END), 0) AS verified"
        f" FROM orders WHERE site_id = ? AND recovered = 1{where}",
        site_id,
        *args,
    )
    out["recovered_orders"] = int(row["n"]) if row else 0
    out["recovered_revenue"] = float(row["v"]) if row else 0.0
    # A browser's report counts until the server's report of the same order replaces it;
    # verified_revenue is what no browser console can change: the server's reports only.
    out["verified_revenue"] = float(row["verified"]) if row else 0.0
    # Reminders that went to an address with no consent on record (no lead with consent given).
    where_sent, args_sent = time_window("e.sent_at", since, until)
    row = await db.fetchone(
        "SELECT COUNT(*) AS n FROM emails e WHERE e.site_id = ? AND e.status = 'sent'"
        f"{where_sent} AND NOT EXISTS (SELECT 1 FROM leads l WHERE l.site_id = e.site_id"
        " AND l.email = e.to_addr AND l.consent = 1)",
        site_id,
        *args_sent,
    )
    out["reminders_unconsented"] = int(row["n"]) if row else 0
    # By the open's own site_id (migration 007): one site's opens never read another's.
    row = await db.fetchone(
        "SELECT COUNT(*) AS total, COALESCE(SUM(CASE WHEN is_proxy = 1 THEN 1 ELSE 0 END), 0) AS proxy"
        f" FROM opens WHERE site_id = ?{where}",
        site_id,
        *args,
    )
    out["opens"] = {"total": int(row["total"]), "proxy": int(row["proxy"])} if row else {"total": 0, "proxy": 0}
    rows = await db.fetchall(
        f"SELECT data, COUNT(*) AS n FROM events WHERE site_id = ? AND type = 'reason'{where} GROUP BY data",
        site_id,
        *args,
    )
    shares: dict[str, int] = {}
    for r in rows:
        reason = reason_of(r["data"])
        shares[reason] = shares.get(reason, 0) + int(r["n"])
    out["reason_shares"] = shares
    out["reasons"] = await checkout.reasons(db, site_id, since, until)
    out["steps"] = {
        str(s["step"]): {k: v for k, v in s.items() if k not in ("step", "in_settings")}
        for s in await steps.step_stats(db, site_id, 0, since, until)
    }
    # Abandoned carts with an email, and their value, by abandonment time.
    where_ab, args_ab = time_window("abandoned_at", since, until)
    row = await db.fetchone(
        "SELECT COUNT(*) AS n, COALESCE(SUM(value), 0) AS v FROM carts"
        f" WHERE site_id = ? AND abandoned_at IS NOT NULL AND email IS NOT NULL{where_ab}",
        site_id,
        *args_ab,
    )
    out["recoverable"] = int(row["n"]) if row else 0
    out["lost_value"] = float(row["v"]) if row else 0.0
    out["subject"] = await subject_counts(db, site_id, since, until)
    # Items of the distinct counts (their links are the spans below).
    where_sa, args_sa = time_window("shown_at", since, until)
    # Materialised, so the range is read by its index (grouping first would walk every assignment of the site).
    rows = await db.fetchall(
        "WITH shown AS MATERIALIZED (SELECT experiment, variant FROM variant_assignments"
        f" WHERE site_id = ?{where_sa}) SELECT experiment, variant, COUNT(*) AS n FROM shown GROUP BY experiment, variant",
        site_id,
        *args_sa,
    )
    out["exposures"] = {_key(r["experiment"], r["variant"]): int(r["n"]) for r in rows}
    step = json_text(db, "data", "step")
    rows = await db.fetchall(
        f"SELECT {step} AS step, COUNT(*) AS n, COUNT(visitor_id) AS items FROM events"
        f" WHERE site_id = ? AND type = 'checkout' AND {step} IS NOT NULL{where} GROUP BY {step}",
        site_id,
        *args,
    )
    out["checkout_events"] = {str(r["step"]): int(r["n"]) for r in rows}
    out["checkout_items"] = {str(r["step"]): int(r["items"]) for r in rows}
    return out


# -- numbers that are not sums of days, as sums of spans ---------------------------------------------
# A count of distinct keys among the items inside a range is the items inside it minus the links
# between one key's consecutive items (in time order) that lie inside it: a key's items inside an
# interval are a run of consecutive ones, and a run of k items has k - 1 links. A popup conversion
# (shown and lead both inside) is a span too. A span counts in [since, until) when its first time
# is >= since and its last < until; a day's rollup keeps the spans that end in it, per day they
# start on, and a read adds those that start on a rolled-up day of the range, then counts on the raw
# rows the spans that end, or start, in the rest of the range.
SEP = "\x1f"


def _key(a: Any, b: Any = "") -> str:
    return f"{a}{SEP}{b}"


def _day_sql(db: Database, expr: str) -> str:
    if db.dialect == "postgresql":
        return f"CAST(FLOOR(({expr}) / {rollups.DAY}) AS BIGINT)"
    return f"CAST(({expr}) / {rollups.DAY} AS INTEGER)"


def _emails_links(by: str) -> tuple[str, str]:
    """(previous, next) sent reminder's time of the same cart or address: scalar subqueries on e and p."""
    same_prev = "p.cart_id = e.cart_id" if by == "cart" else "p.site_id = e.site_id AND p.to_addr = e.to_addr"
    same_next = "n.cart_id = p.cart_id" if by == "cart" else "n.site_id = p.site_id AND n.to_addr = p.to_addr"
    prev = (
        f"(SELECT p.sent_at FROM emails p WHERE {same_prev} AND p.status = 'sent' AND"
        " (p.sent_at < e.sent_at OR (p.sent_at = e.sent_at AND p.id < e.id)) ORDER BY p.sent_at DESC, p.id DESC LIMIT 1)"
    )
    nxt = (
        f"(SELECT n.sent_at FROM emails n WHERE {same_next} AND n.status = 'sent' AND"
        " (n.sent_at > p.sent_at OR (n.sent_at = p.sent_at AND n.id > p.id)) ORDER BY n.sent_at, n.id LIMIT 1)"
    )
    return prev, nxt


def _span_sql(db: Database, metric: str, end: str) -> tuple[str, int]:
    """The SELECT of (k1, k2, t: the other end's time) for the spans of `metric` whose `end` ("hi"
    or "lo") lies in a window appended as {w} (its site_id placeholders: the int returned)."""
    if metric in ("carts_emailed", "recipients"):
        prev, nxt = _emails_links("cart" if metric == "carts_emailed" else "address")
        if end == "hi":
            return (
                f"SELECT '' AS k1, '' AS k2, {prev} AS t FROM emails e WHERE e.site_id = ? AND e.status = 'sent'{{w:e.sent_at}}",
                1,
            )
        return (
            f"SELECT '' AS k1, '' AS k2, {nxt} AS t FROM emails p WHERE p.site_id = ? AND p.status = 'sent'{{w:p.sent_at}}",
            1,
        )
    if metric == "checkout":

        def step(r: str) -> str:
            return json_text(db, f"{r}.data", "step")

        if end == "hi":
            other, me, order, cmp = "p", "e", "DESC", "<"
        else:
            other, me, order, cmp = "p", "e", "", ">"
        return (
            f"SELECT {step(me)} AS k1, '' AS k2, (SELECT {other}.created_at FROM events {other}"
            f" WHERE {other}.site_id = {me}.site_id AND {other}.visitor_id = {me}.visitor_id AND {other}.type = 'checkout'"
            f" AND {step(other)} = {step(me)} AND ({other}.created_at {cmp} {me}.created_at"
            f" OR ({other}.created_at = {me}.created_at AND {other}.id {cmp} {me}.id))"
            f" ORDER BY {other}.created_at {order}, {other}.id {order} LIMIT 1) AS t FROM events {me}"
            f" WHERE {me}.site_id = ? AND {me}.type = 'checkout' AND {me}.visitor_id IS NOT NULL"
            f" AND {step(me)} IS NOT NULL{{w:{me}.created_at}}",
            1,
        )
    if metric == "reason_steps":
        return _reason_steps_sql(db, end)
    # popup: an exposure with its lead; the span runs from the earlier of the two to the later.
    if end == "hi":
        return (
            "SELECT experiment AS k1, variant AS k2, shown_at AS t FROM variant_assignments"
            " WHERE site_id = ? AND lead_at IS NOT NULL AND lead_at >= shown_at{w:lead_at}"
            " UNION ALL SELECT experiment, variant, lead_at FROM variant_assignments"
            " WHERE site_id = ? AND lead_at < shown_at{w:shown_at}",
            2,
        )
    return (
        "SELECT experiment AS k1, variant AS k2, lead_at AS t FROM variant_assignments"
        " WHERE site_id = ? AND lead_at IS NOT NULL AND lead_at >= shown_at{w:shown_at}"
        " UNION ALL SELECT experiment, variant, shown_at FROM variant_assignments"
        " WHERE site_id = ? AND lead_at < shown_at{w:lead_at}",
        2,
    )


def _reason_steps_sql(db: Database, end: str) -> tuple[str, int]:
    """Reasons per checkout step reached. For a reason event r inside the range and a step, "the
    browser reached the step inside the range" is its checkout events of that step inside it minus
    the links between consecutive ones: so the count is the pairs (r, c) inside the range minus the
    triples (r, c, the next c). Each is a span from its earliest to its latest time; the branches
    split by which event is the end in the window (ties: the reason is the later end, the checkout
    the earlier), one site placeholder and one window each."""
    pg = db.dialect == "postgresql"
    least, greatest = ("LEAST", "GREATEST") if pg else ("MIN", "MAX")

    def step(r: str) -> str:
        return json_text(db, f"{r}.data", "step")

    reason = f"COALESCE(NULLIF(TRIM({json_text(db, 'r.data', 'reason')}), ''), '{checkout.NO_REASON}')"
    same = "c.site_id = r.site_id AND c.visitor_id = r.visitor_id AND c.type = 'checkout'"
    r_from = "FROM events r JOIN events c ON " + same + f" AND {step('c')} IS NOT NULL"
    where_r = " WHERE r.site_id = ? AND r.type = 'reason' AND r.visitor_id IS NOT NULL{w:r.created_at}"
    where_c = f" WHERE c.site_id = ? AND c.type = 'checkout' AND c.visitor_id IS NOT NULL AND {step('c')} IS NOT NULL"
    c_from = (
        "FROM events c JOIN events r ON r.site_id = c.site_id AND r.visitor_id = c.visitor_id AND r.type = 'reason'"
    )
    # The checkout event of the same browser and step just before (prev) or after (next) c.
    near = (
        "(SELECT o.created_at FROM events o WHERE o.site_id = c.site_id AND o.visitor_id = c.visitor_id"
        f" AND o.type = 'checkout' AND {step('o')} = {step('c')} AND (o.created_at {{cmp}} c.created_at"
        " OR (o.created_at = c.created_at AND o.id {cmp} c.id)) ORDER BY o.created_at {order}, o.id {order} LIMIT 1)"
    )
    prev = near.replace("{cmp}", "<").replace("{order}", "DESC")
    nxt = near.replace("{cmp}", ">").replace("{order}", "")
    k = f"SELECT {step('c')} AS k1, {reason} AS k2"

    def pick(fn: str, link: str) -> str:
        # NULL when c has no link that side (PostgreSQL's LEAST and GREATEST skip a NULL; SQLite's MIN and MAX give it).
        return f"CASE WHEN {link} IS NULL THEN NULL ELSE {fn}(r.created_at, {link}) END"

    if end == "hi":
        pairs = [
            f"{k}, c.created_at AS t, 1 AS w {r_from} AND c.created_at <= r.created_at{where_r}",
            f"{k}, r.created_at AS t, 1 AS w {c_from} AND r.created_at < c.created_at{where_c}" + "{w:c.created_at}",
            # c below is the later of a link; its earlier one is prev.
            f"{k}, {prev} AS t, -1 AS w {r_from} AND c.created_at <= r.created_at{where_r}",
            f"{k}, {pick(least, prev)} AS t, -1 AS w {c_from} AND r.created_at < c.created_at{where_c}"
            + "{w:c.created_at}",
        ]
    else:
        pairs = [
            f"{k}, r.created_at AS t, 1 AS w {c_from} AND c.created_at <= r.created_at{where_c}" + "{w:c.created_at}",
            f"{k}, c.created_at AS t, 1 AS w {r_from} AND c.created_at > r.created_at{where_r}",
            # c below is the earlier of a link; its later one is nxt.
            f"{k}, {pick(greatest, nxt)} AS t, -1 AS w {c_from} AND c.created_at <= r.created_at{where_c}"
            + "{w:c.created_at}",
            f"{k}, {nxt} AS t, -1 AS w {r_from} AND c.created_at > r.created_at{where_r}",
        ]
    # The triples' `t` is NULL where c has no link on that side: the outer query drops those rows.
    return " UNION ALL ".join(pairs), 4


SPANS = ("carts_emailed", "recipients", "checkout", "popup", "reason_steps")


async def _spans(
    db: Database, site_id: int, metric: str, end: str, lo: float | None, hi: float | None, other_from: float | None
) -> list[tuple[str, int, int]]:
    """(key, the other end's day, how many) of `metric`'s spans whose `end` lies in [lo, hi)
    (and, with other_from, whose other end is at or after it)."""
    sql, sites = _span_sql(db, metric, end)
    parts = re.split(r"(\{w:[^}]+\})", sql)
    text, ordered = "", []
    for part in parts:
        m = re.fullmatch(r"\{w:([^}]+)\}", part)
        if m:
            where, wargs = time_window(m.group(1), lo, hi)
            text += where
            ordered.append(wargs)
        else:
            text += part
    flat: list[Any] = []
    for wargs in ordered:
        flat += [site_id, *wargs]
    extra = ""
    if other_from is not None:
        extra = " AND t >= ?"
        flat.append(other_from)
    count = "SUM(w)" if metric == "reason_steps" else "COUNT(*)"
    # Materialised: SQLite would otherwise copy `t` (a correlated subquery) into each place it is used.
    rows = await db.fetchall(
        f"WITH x AS MATERIALIZED ({text}) SELECT k1, k2, {_day_sql(db, 't')} AS d, {count} AS n FROM x"
        f" WHERE t IS NOT NULL{extra} GROUP BY k1, k2, {_day_sql(db, 't')}",
        *flat,
    )
    return [(_key(r["k1"], r["k2"]), int(r["d"]), int(r["n"])) for r in rows]


async def raw_spans(db: Database, site_id: int, since: float, until: float) -> Counts:
    """The spans ending in [since, until) (one day, for its rollup): metric -> key -> start day -> count."""
    out: Counts = {}
    for metric in SPANS:
        for key, day, n in await _spans(db, site_id, metric, "hi", since, until, None):
            hist = out.setdefault(metric, {}).setdefault(key, {})
            hist[str(day)] = hist.get(str(day), 0) + n
    return out


async def span_counts(
    db: Database,
    site_id: int,
    since: float | None,
    until: float | None,
    rows: list[tuple[int, Counts]],
    rest: list[tuple[float | None, float | None]],
) -> dict[str, dict[str, int]]:
    """metric -> key -> the spans lying inside [since, until): from the rolled-up days and the rest."""
    rolled = {d for d, _ in rows}
    out: dict[str, dict[str, int]] = {m: {} for m in SPANS}
    for _, counts in rows:
        for metric, keys in counts.get("spans", {}).items():
            for key, hist in keys.items():
                n = sum(v for d, v in hist.items() if int(d) in rolled)
                if n:
                    out[metric][key] = out[metric].get(key, 0) + n
    for lo, hi in rest:
        for metric in SPANS:
            for key, _, n in await _spans(db, site_id, metric, "hi", lo, hi, since):
                out[metric][key] = out[metric].get(key, 0) + n
            for key, day, n in await _spans(db, site_id, metric, "lo", lo, hi, None):
                if day in rolled:
                    out[metric][key] = out[metric].get(key, 0) + n
    return out


def add(total: Counts, part: Counts) -> Counts:
    """Adds `part` into `total`, key by key (nested dicts key by key too); returns `total`."""
    for key, value in part.items():
        if isinstance(value, dict):
            add(total.setdefault(key, {}), value)
        else:
            total[key] = total.get(key, 0) + value
    return total


def _full_days(since: float | None, until: float | None) -> tuple[int | None, int | None]:
    """The first and last day lying wholly inside [since, until) (None: unbounded)."""
    first = -int(-since // DAY) if since is not None else None
    last = int(until // DAY) - 1 if until is not None else None
    return first, last


def gaps(since: float | None, until: float | None, days: list[int]) -> list[tuple[float | None, float | None]]:
    """The parts of [since, until) not covered by the given whole days (sorted, inside the range)."""
    out: list[tuple[float | None, float | None]] = []
    cursor = since
    for d in days:
        start = d * DAY
        if cursor is None or cursor < start:
            out.append((cursor, start))
        cursor = start + DAY
    if until is None or cursor is None or cursor < until:
        out.append((cursor, until))
    return out


async def _rolled(
    db: Database, site_id: int, since: float | None, until: float | None
) -> tuple[list[tuple[int, Counts]], list[tuple[float | None, float | None]]]:
    first, last = _full_days(since, until)
    if first is not None and last is not None and first > last:
        return [], [(since, until)]
    rows = await rollups.rolled_days(db, site_id, first, last, VERSION)
    return rows, gaps(since, until, [d for d, _ in rows])


async def range_counts(db: Database, site_id: int, since: float | None, until: float | None) -> Counts:
    """`raw_counts` of [since, until), from the rollups of its whole days and the raw rows of the rest."""
    rows, rest = await _rolled(db, site_id, since, until)
    total: Counts = {}
    for _, counts in rows:
        add(total, {k: v for k, v in counts.items() if k not in ("spans", "v")})
    for lo, hi in rest:
        add(total, await raw_counts(db, site_id, lo, hi))
    spans = await span_counts(db, site_id, since, until, rows, rest)
    # The distinct counts: items minus links; the popup tests: exposures and the conversions among them.
    total["carts_emailed"] = total.get("emails_sent", 0) - spans["carts_emailed"].get(_key(""), 0)
    total["recipients"] = total.get("emails_sent", 0) - spans["recipients"].get(_key(""), 0)
    total["checkout_visitors"] = {
        step: total.get("checkout_items", {}).get(step, 0) - spans["checkout"].get(_key(step), 0)
        for step, n in total.get("checkout_events", {}).items()
        if n
    }
    popup: dict[str, dict[str, dict[str, int]]] = {}
    for key, shown in total.get("exposures", {}).items():
        if shown:
            exp, variant = key.split(SEP, 1)
            popup.setdefault(exp, {})[variant] = {"shown": shown, "converted": spans["popup"].get(key, 0)}
    total["popup"] = popup
    found: list[tuple[str, str, int]] = []
    for key, n in spans["reason_steps"].items():
        if n:
            step, reason = key.split(SEP, 1)
            found.append((step, reason, n))
    by_step: dict[str, dict[str, int]] = {}
    for step, reason, n in sorted(found, key=lambda srn: (srn[0], -srn[2], srn[1])):
        by_step.setdefault(step, {})[reason] = n
    total["reasons_by_checkout_step"] = by_step
    return total


async def _raw_per_day(db: Database, site_id: int, since: float | None, until: float | None) -> dict[int, Counts]:
    out: dict[int, Counts] = {}

    async def fill(sql: str, column: str, keys: tuple[str, ...]) -> None:
        where, args = time_window(column, since, until)
        rows = await db.fetchall(f"SELECT {bucket(db, column)} AS b, {sql}{where} GROUP BY b", 0, DAY, site_id, *args)
        for r in rows:
            point = out.setdefault(int(r["b"]), {})
            for key in keys:
                point[key] = point.get(key, 0) + r[key]

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
    return out


async def per_day(db: Database, site_id: int, since: float | None, until: float | None) -> dict[int, Counts]:
    """Per UTC day number with any: carts, abandoned, recovered_orders and revenue inside [since, until)."""
    rows, rest = await _rolled(db, site_id, since, until)
    out: dict[int, Counts] = {}
    for d, c in rows:
        point = {
            "carts": c.get("carts", 0),
            "abandoned": c.get("abandoned", 0),
            "recovered_orders": c.get("recovered_orders", 0),
            "revenue": c.get("recovered_revenue", 0.0),
        }
        if any(point.values()):
            out[d] = point
    for lo, hi in rest:
        for d, point in (await _raw_per_day(db, site_id, lo, hi)).items():
            add(out.setdefault(d, {}), point)
    return out


async def _first_day(db: Database, site_id: int) -> int | None:
    """The day of the site's oldest counted row (one index seek per table)."""
    row = await db.fetchone(
        "SELECT MIN(t) AS t FROM ("
        " SELECT MIN(created_at) AS t FROM carts WHERE site_id = ?"
        " UNION ALL SELECT MIN(created_at) FROM events WHERE site_id = ? AND type = 'shown'"
        " UNION ALL SELECT MIN(created_at) FROM events WHERE site_id = ? AND type = 'reason'"
        " UNION ALL SELECT MIN(created_at) FROM leads WHERE site_id = ?"
        " UNION ALL SELECT MIN(created_at) FROM orders WHERE site_id = ?"
        " UNION ALL SELECT MIN(sent_at) FROM emails WHERE site_id = ? AND status = 'sent') x",
        *([site_id] * 6),
    )
    return rollups.day_of(float(row["t"])) if row and row["t"] is not None else None


async def refresh(db: Database, site_ids: list[int], now: float, max_days: int = DAYS_PER_PASS) -> int:
    """Computes up to `max_days` missing closed days (newest first, site by site); returns how many were stored.

    A day is closed CLOSE_AFTER after its end, by `now` and by the clock (a sweep run ahead of
    the clock in tests never rolls up a day still being written)."""
    done, tried, started = 0, 0, time.monotonic()
    closed_until = min(now, time.time()) - rollups.CLOSE_AFTER
    last = rollups.day_of(closed_until) - 1
    for site_id in site_ids:
        first = await _first_day(db, site_id)
        if first is None:
            continue
        have = await rollups.computed(db, site_id, VERSION)
        for day in range(last, first - 1, -1):
            if day in have:
                continue
            if tried >= max_days or time.monotonic() - started > SECONDS_PER_PASS:
                return done
            tried += 1
            token = await rollups.claim(db, site_id, day, now)
            counts = await raw_counts(db, site_id, day * DAY, (day + 1) * DAY)
            counts["spans"] = await raw_spans(db, site_id, day * DAY, (day + 1) * DAY)
            counts["v"] = VERSION
            if await rollups.fill(db, site_id, day, token, counts, now):
                done += 1
    return done
