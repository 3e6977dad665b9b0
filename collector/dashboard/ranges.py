"""The dashboard's date ranges: whole UTC days from `since` to `until`, a default, and what went wrong in words."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any

from starlette.requests import Request

DEFAULT_RANGE_DAYS = 30


def _day_start(d: date) -> float:
    return datetime(d.year, d.month, d.day, tzinfo=UTC).timestamp()


def all_time() -> dict[str, Any]:
    return {"error": None, "all": True, "since": None, "until": None, "since_ts": None, "until_ts": None}


def date_range(request: Request) -> dict[str, Any]:
    """The overview's range: whole UTC days from `since` to `until` (both included), or all time."""
    if request.query_params.get("range") == "all":
        return all_time()
    today = datetime.now(UTC).date()
    out: dict[str, Any] = {"error": None, "all": False}
    until = today
    since = today - timedelta(days=DEFAULT_RANGE_DAYS - 1)
    try:
        if request.query_params.get("until"):
            until = date.fromisoformat(request.query_params["until"])
        if request.query_params.get("since"):
            since = date.fromisoformat(request.query_params["since"])
        elif request.query_params.get("until"):
            since = until - timedelta(days=DEFAULT_RANGE_DAYS - 1)
    except ValueError:
        out["error"] = "Dates are days like 2026-11-01; showing the last 30 days."
        until, since = today, today - timedelta(days=DEFAULT_RANGE_DAYS - 1)
    if since > until:
        out["error"] = "The start is after the end; they were swapped."
        since, until = until, since
    out.update(
        since=since.isoformat(),
        until=until.isoformat(),
        until_next=(until + timedelta(days=1)).isoformat(),
        since_ts=_day_start(since),
        until_ts=_day_start(until + timedelta(days=1)),
    )
    return out


def experiment_range(request: Request) -> dict[str, Any]:
    """The overview's date range, but all time until a range is asked for: a test runs as long as it runs."""
    if not any(request.query_params.get(k) for k in ("since", "until", "range")):
        return all_time()
    return date_range(request)
