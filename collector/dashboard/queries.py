"""The dashboard's reads: leads, carts with their reminder sequence, the mailbox.

Experiment results come from collector.experiments.results, the same code as the stats API's `variants`."""

from __future__ import annotations

import json
from typing import Any

from collector.store import Database, Row, Site
from collector.store.db import like_contains

EMAIL_STATES = ("pending", "claimed", "sent", "failed", "cancelled", "skipped")


async def leads_page(db: Database, site_id: int, q: str, page: int, per_page: int) -> tuple[list[Row], int]:
    where, args = "site_id = ?", list[object]([site_id])
    if q:
        where += " AND email LIKE ? ESCAPE '\\'"
        args.append(like_contains(q.strip().lower()))
    total_row = await db.fetchone(f"SELECT COUNT(*) AS n FROM leads WHERE {where}", *args)
    rows = await db.fetchall(
        "SELECT id, email, created_at, source, consent, discount_code, cart_value, currency, variants"
        f" FROM leads WHERE {where} ORDER BY created_at DESC, id DESC LIMIT ? OFFSET ?",
        *args,
        per_page,
        (page - 1) * per_page,
    )
    for r in rows:
        r["variants"] = json.loads(r["variants"]) if r["variants"] else {}
    return rows, int(total_row["n"]) if total_row else 0


def _items(raw: str | None) -> list[dict[str, Any]]:
    try:
        items = json.loads(raw or "[]")
    except ValueError:
        return []
    return [i for i in items if isinstance(i, dict)] if isinstance(items, list) else []


async def carts_page(
    db: Database, site: Site, which: str, q: str, page: int, per_page: int
) -> tuple[list[dict[str, Any]], int]:
    """Carts (abandoned ones by default) with the state of each step of the reminder sequence."""
    where, args = "site_id = ?", list[object]([site.id])
    if which == "abandoned":
        where += " AND abandoned_at IS NOT NULL"
    elif which in ("open", "purchased", "emptied", "replaced"):
        where += " AND status = ?"
        args.append(which)
    if q:
        where += " AND email LIKE ? ESCAPE '\\'"
        args.append(like_contains(q.strip().lower()))
    order = "abandoned_at DESC, id DESC" if which == "abandoned" else "updated_at DESC, id DESC"
    total_row = await db.fetchone(f"SELECT COUNT(*) AS n FROM carts WHERE {where}", *args)
    rows = await db.fetchall(
        f"SELECT * FROM carts WHERE {where} ORDER BY {order} LIMIT ? OFFSET ?", *args, per_page, (page - 1) * per_page
    )
    emails: dict[int, dict[int, Row]] = {}
    if rows:
        marks = ", ".join("?" for _ in rows)
        for e in await db.fetchall(
            "SELECT cart_id, step, status, due_at, sent_at, opened_at, clicked_at, error, attempts, discount_code"
            f" FROM emails WHERE cart_id IN ({marks}) ORDER BY step",
            *[r["id"] for r in rows],
        ):
            emails.setdefault(e["cart_id"], {})[e["step"]] = e
    steps = site.settings.recovery.steps
    out = []
    for r in rows:
        by_step = emails.get(r["id"], {})
        n_steps = max([len(steps)] + [s + 1 for s in by_step])
        sequence = []
        for i in range(n_steps):
            sent = by_step.get(i)
            sequence.append({"step": i, "state": sent["status"] if sent else "not scheduled", "email": sent})
        out.append({**r, "items": _items(r["items"]), "sequence": sequence})
    return out, int(total_row["n"]) if total_row else 0


async def mailbox_page(db: Database, q: str, page: int, per_page: int) -> tuple[list[Row], int]:
    where, args = "1 = 1", []
    if q:
        where += " AND (m.to_addr LIKE ? ESCAPE '\\' OR m.subject LIKE ? ESCAPE '\\')"
        args += [like_contains(q.strip()), like_contains(q.strip())]
    total_row = await db.fetchone(f"SELECT COUNT(*) AS n FROM mailbox m WHERE {where}", *args)
    rows = await db.fetchall(
        "SELECT m.id, m.site_id, m.email_id, m.to_addr, m.from_addr, m.subject, m.created_at, s.key AS site_key,"
        f" s.name AS site_name FROM mailbox m LEFT JOIN sites s ON s.id = m.site_id WHERE {where}"
        " ORDER BY m.id DESC LIMIT ? OFFSET ?",
        *args,
        per_page,
        (page - 1) * per_page,
    )
    return rows, int(total_row["n"]) if total_row else 0


async def mailbox_message(db: Database, message_id: int) -> Row | None:
    row = await db.fetchone(
        "SELECT m.*, s.key AS site_key, s.name AS site_name FROM mailbox m LEFT JOIN sites s ON s.id = m.site_id WHERE m.id = ?",
        message_id,
    )
    if row is not None:
        try:
            headers = json.loads(row["headers"] or "{}")
        except ValueError:
            headers = {}
        if isinstance(headers, dict):
            row["header_list"] = [(str(k), str(v)) for k, v in headers.items()]
        elif isinstance(headers, list):
            row["header_list"] = [
                (str(h[0]), str(h[1])) for h in headers if isinstance(h, (list, tuple)) and len(h) == 2
            ]
        else:
            row["header_list"] = []
    return row
