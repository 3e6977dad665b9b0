"""The leads CSV: RFC 4180, formula-safe, streamed row by row."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import AsyncIterator, Iterable, Sequence
from datetime import UTC, datetime
from operator import itemgetter
from typing import Any

from collector.store import Database
from collector.store.db import time_window

LEAD_COLUMNS = ["email", "created_at", "source", "consent", "discount_code", "cart_value", "currency", "variant"]
_FORMULA_START = ("=", "+", "-", "@")
# First characters that send a cell of the fast path to safe_cell: a formula's, a tab or a
# carriage return, and a space (a formula may stand behind spaces).
_FORMULA_FIRST = frozenset(("=", "+", "-", "@", "\t", "\r", " "))
# Rows per chunk handed to the response: big enough to amortise, small enough to keep memory flat.
CHUNK_ROWS = 2000
# The exports run through these a million times: small caches keyed by what repeats.
_CACHE_MAX = 4096
_minutes: dict[int, str] = {}
_SECONDS = [f"{s:02d}Z" for s in range(60)]
_variants: dict[str, str] = {}


def safe_cell(value: object) -> str:
    """A cell a spreadsheet will not run as a formula (OWASP's CSV injection advice): one whose
    first character other than a space is = + - @, or that starts with a tab or a carriage
    return, gets a leading '. The one formula-escaping rule of every CSV Cartback writes."""
    text = "" if value is None else str(value)
    if text.startswith(("\t", "\r")) or text.lstrip(" ").startswith(_FORMULA_START):
        return "'" + text
    return text


def _iso_slow(ts: float) -> str:
    return datetime.fromtimestamp(ts, tz=UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def iso(ts: float | None) -> str:
    if ts is None:
        return ""
    sec = int(ts)
    # datetime rounds to the microsecond before it truncates to the second: near the next
    # second, and before 1970, let it decide.
    if ts < 0 or ts - sec >= 0.999999:
        return _iso_slow(ts)
    minute, seconds = divmod(sec, 60)
    prefix = _minutes.get(minute)
    if prefix is None:
        if len(_minutes) >= _CACHE_MAX:
            _minutes.clear()
        prefix = _minutes[minute] = _iso_slow(minute * 60)[:17]  # "YYYY-MM-DDTHH:MM:"
    return prefix + _SECONDS[seconds]


def _variant_cell(raw: str) -> str:
    try:
        variants = json.loads(raw)
    except ValueError:
        return ""
    return ";".join(f"{k}={v}" for k, v in sorted(variants.items()))


def variant_cell(raw: str | None) -> str:
    if not raw:
        return ""
    cell = _variants.get(raw)
    if cell is None:
        if len(_variants) >= _CACHE_MAX:
            _variants.clear()
        cell = _variants[raw] = _variant_cell(raw)
    return cell


def _safe(value: object) -> str:
    # safe_cell, with the common cases (None, a str not starting like a formula) first.
    if value is None:
        return ""
    if type(value) is str:
        return safe_cell(value) if value[:1] in _FORMULA_FIRST else value
    return safe_cell(value)


_FIELDS = ("email", "created_at", "source", "consent", "discount_code", "cart_value", "currency", "variants")
_SQL = "SELECT " + ", ".join(_FIELDS) + " FROM leads WHERE site_id = ?"
_as_tuple = itemgetter(*_FIELDS)


def lead_row(r: dict[str, Any]) -> list[str]:
    return _lead_rows([_as_tuple(r)])[0]


def _lead_rows(batch: Iterable[Sequence[Any]]) -> list[list[str]]:
    """lead_row for many rows given as tuples in _FIELDS order: the same cells, with the per-row
    work inlined (an export runs it a million times)."""
    first, minutes, seconds_cells = _FORMULA_FIRST, _minutes, _SECONDS
    variants_cache: dict[str, str] = _variants
    out: list[list[str]] = []
    append = out.append
    for email, ts, source, consent, code, value, currency, raw in batch:
        if type(email) is not str or email[:1] in first:
            email = _safe(email)
        if type(source) is not str or source[:1] in first:
            source = _safe(source)
        if code is None:
            code = ""
        elif type(code) is not str or code[:1] in first:
            code = _safe(code)
        if currency is None:
            currency = ""
        elif type(currency) is not str or currency[:1] in first:
            currency = _safe(currency)
        if ts is None:
            created = ""
        else:
            sec = int(ts)
            minute, second = divmod(sec, 60)
            prefix = minutes.get(minute)
            if prefix is None or ts - sec >= 0.999999 or ts < 0:
                created = iso(ts)
            else:
                created = prefix + seconds_cells[second]
        if not raw:
            variant = ""
        else:
            cached = variants_cache.get(raw)
            variant = variant_cell(raw) if cached is None else cached
            if variant[:1] in first:
                variant = safe_cell(variant)
        append(
            [
                email,
                created,
                source,
                "true" if consent else "false",
                code,
                "" if value is None else f"{value:.2f}",
                currency,
                variant,
            ]
        )
    return out


async def lead_csv_chunks(
    db: Database, site_id: int, since: float | None = None, until: float | None = None
) -> AsyncIterator[str]:
    """The CSV in chunks of CHUNK_ROWS rows: memory stays flat for any number of leads."""
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\r\n")
    writer.writerow(LEAD_COLUMNS)
    window, window_args = time_window("created_at", since, until)
    sql = _SQL + window + " ORDER BY created_at, id"
    async for rows in db.iterate_batches(sql, site_id, *window_args, batch=CHUNK_ROWS):
        writer.writerows(_lead_rows(rows))
        yield buf.getvalue()
        buf.seek(0)
        buf.truncate()
    yield buf.getvalue()
