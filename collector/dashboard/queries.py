"""The dashboard's reads: leads, carts with their reminder sequence, the mailbox.

Experiment results come from collector.experiments.results, the same code as the stats API's `variants`."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from collector.store import Database, Row, Site
from collector.store.db import like_contains

EMAIL_STATES = ("pending", "claimed", "sent", "failed", "cancelled", "skipped")


@dataclass(frozen=True)
class Keyset:
    """Where a page starts: after (older than) or before (newer than) a row's (time, id).

    Pages are read from the index in order from that row on, so page 1000 costs what page 1
    costs (OFFSET would read and drop every row before it)."""

    ts: float
    id: int
    older: bool

    @classmethod
    def parse(cls, after: str | None, before: str | None) -> Keyset | None:
        """`after`/`before` as the pages' links write them (`TIME_ID`); anything else is page 1."""
        for raw, older in ((after, True), (before, False)):
            if raw:
                ts, _, row_id = raw.partition("_")
                try:
                    return cls(float(ts), int(row_id), older)
                except ValueError:
                    return None
        return None


def cursor(ts: float, row_id: int) -> str:
    return f"{ts!r}_{row_id}"


@dataclass
class Page:
    rows: list[Any]
    total: int
    # Cursors of the first and last row shown, for the newer and older links (None at an end).
    newer: str | None
    older: str | None


async def _keyset(
    db: Database, table: str, columns: str, where: str, args: list[object], key: str, at: Keyset | None, per_page: int
) -> tuple[list[Row], bool]:
    """One page of `table` newest first by (key, id); True when there is more beyond it."""
    if at is None:
        sql = f"SELECT {columns} FROM {table} WHERE {where} ORDER BY {key} DESC, id DESC LIMIT ?"
        extra: list[object] = [per_page + 1]
    elif at.older:
        sql = (
            f"SELECT {columns} FROM {table} WHERE {where} AND ({key}, id) < (?, ?) ORDER BY {key} DESC, id DESC LIMIT ?"
        )
        extra = [at.ts, at.id, per_page + 1]
    else:
        sql = f"SELECT {columns} FROM {table} WHERE {where} AND ({key}, id) > (?, ?) ORDER BY {key}, id LIMIT ?"
        extra = [at.ts, at.id, per_page + 1]
    rows = await db.fetchall(sql, *args, *extra)
    more = len(rows) > per_page
    rows = rows[:per_page]
    if at is not None and not at.older:
        rows.reverse()
    return rows, more


def _page(rows: list[Row], total: int, more: bool, at: Keyset | None, key: str) -> Page:
    if not rows:
        return Page(rows, total, None, None)
    first, last = rows[0], rows[-1]
    # Going older, "more" means more older rows; going newer, it means more newer ones.
    has_older = more if at is None or at.older else True
    has_newer = at is not None and (not at.older and more or at.older)
    return Page(
        rows,
        total,
        cursor(first[key], first["id"]) if has_newer else None,
        cursor(last[key], last["id"]) if has_older else None,
    )


async def leads_page(db: Database, site_id: int, q: str, at: Keyset | None, per_page: int) -> Page:
    where, args = "site_id = ?", list[object]([site_id])
    if q:
        where += " AND email LIKE ? ESCAPE '\\'"
        args.append(like_contains(q.strip().lower()))
    total_row = await db.fetchone(f"SELECT COUNT(*) AS n FROM leads WHERE {where}", *args)
    rows, more = await _keyset(
        db,
        "leads",
        "id, email, created_at, source, consent, discount_code, cart_value, currency, variants",
        where,
        args,
        "created_at",
        at,
        per_page,
    )
    for r in rows:
        r["variants"] = json.loads(r["variants"]) if r["variants"] else {}
    return _page(rows, int(total_row["n"]) if total_row else 0, more, at, "created_at")


def _items(raw: str | None) -> list[dict[str, Any]]:
    try:
        items = json.loads(raw or "[]")
    except ValueError:
        return []
    return [i for i in items if isinstance(i, dict)] if isinstance(items, list) else []


async def carts_page(db: Database, site: Site, which: str, q: str, at: Keyset | None, per_page: int) -> Page:
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
    key = "abandoned_at" if which == "abandoned" else "updated_at"
    total_row = await db.fetchone(f"SELECT COUNT(*) AS n FROM carts WHERE {where}", *args)
    rows, more = await _keyset(db, "carts", "*", where, args, key, at, per_page)
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
    page = _page(rows, int(total_row["n"]) if total_row else 0, more, at, key)
    page.rows = out
    return page


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
