"""The leads CSV: RFC 4180, formula-safe, streamed row by row."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import AsyncIterator
from datetime import datetime, timezone

from collector.store import Database

LEAD_COLUMNS = ["email", "created_at", "source", "consent", "discount_code", "cart_value", "currency", "variant"]
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
# Rows per chunk handed to the response: big enough to amortise, small enough to keep memory flat.
CHUNK_ROWS = 500


def safe_cell(value: object) -> str:
    """A cell a spreadsheet will not run as a formula (OWASP's CSV injection advice)."""
    text = "" if value is None else str(value)
    if text.startswith(_FORMULA_START):
        return "'" + text
    return text


def iso(ts: float | None) -> str:
    if ts is None:
        return ""
    return datetime.fromtimestamp(ts, tz=timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_time(value: str | None) -> float | None:
    """An ISO 8601 date or date-time (UTC when no zone is given) as epoch seconds."""
    if value is None or value == "":
        return None
    text = value.strip()
    if text.endswith("Z"):
        text = text[:-1] + "+00:00"
    dt = datetime.fromisoformat(text)  # ValueError for the caller to report
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=timezone.utc)
    return dt.timestamp()


def variant_cell(raw: str | None) -> str:
    if not raw:
        return ""
    try:
        variants = json.loads(raw)
    except ValueError:
        return ""
    return ";".join(f"{k}={v}" for k, v in sorted(variants.items()))


def lead_row(r: dict) -> list[str]:
    value = r["cart_value"]
    return [
        safe_cell(r["email"]),
        iso(r["created_at"]),
        safe_cell(r["source"]),
        "true" if r["consent"] else "false",
        safe_cell(r["discount_code"]),
        "" if value is None else f"{value:.2f}",
        safe_cell(r["currency"]),
        safe_cell(variant_cell(r["variants"])),
    ]


async def lead_csv_chunks(
    db: Database, site_id: int, since: float | None = None, until: float | None = None
) -> AsyncIterator[str]:
    """The CSV in chunks of CHUNK_ROWS rows: memory stays flat for any number of leads."""
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\r\n")
    writer.writerow(LEAD_COLUMNS)
    sql = "SELECT email, created_at, source, consent, discount_code, cart_value, currency, variants FROM leads WHERE site_id = ?"
    args: list[object] = [site_id]
    if since is not None:
        sql += " AND created_at >= ?"
        args.append(since)
    if until is not None:
        sql += " AND created_at < ?"
        args.append(until)
    sql += " ORDER BY created_at, id"
    n = 0
    async for r in db.iterate(sql, *args, batch=CHUNK_ROWS):
        writer.writerow(lead_row(r))
        n += 1
        if n % CHUNK_ROWS == 0:
            yield buf.getvalue()
            buf.seek(0)
            buf.truncate()
    yield buf.getvalue()
