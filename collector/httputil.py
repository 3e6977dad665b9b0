"""What the routes share: JSON errors, bounded body reading, CORS headers, and the one since/until parser."""

from __future__ import annotations

from datetime import UTC, datetime

from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, Response

MAX_BODY = 32 * 1024


class BodyTooLarge(Exception):
    """The body is over the limit (declared or as read)."""


class BodyIncomplete(Exception):
    """The client hung up before sending its whole body."""


def error(status: int, reason: str, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"error": reason}, status_code=status, headers=headers)


async def read_body(request: Request, limit: int = MAX_BODY) -> bytes:
    """The body, refusing to read more than limit bytes whatever Content-Length says."""
    declared = request.headers.get("content-length")
    if declared is not None:
        try:
            if int(declared) > limit:
                raise BodyTooLarge
        except ValueError:
            pass
    chunks, size = [], 0
    try:
        async for chunk in request.stream():
            size += len(chunk)
            if size > limit:
                raise BodyTooLarge
            chunks.append(chunk)
    except ClientDisconnect:
        raise BodyIncomplete from None
    return b"".join(chunks)


def cors_headers(origin: str) -> dict[str, str]:
    return {"Access-Control-Allow-Origin": origin, "Vary": "Origin"}


def preflight(origin: str) -> Response:
    headers = cors_headers(origin)
    headers.update(
        {
            "Access-Control-Allow-Methods": "POST, GET, OPTIONS",
            "Access-Control-Allow-Headers": "Content-Type",
            "Access-Control-Max-Age": "86400",
        }
    )
    return Response(status_code=204, headers=headers)


class TimeRangeError(ValueError):
    """`since` or `until` is not an ISO 8601 date or date-time."""


def parse_time(value: str | None) -> float | None:
    """An ISO 8601 date or date-time (UTC when no zone is given) as epoch seconds; None for nothing."""
    if value is None or value.strip() == "":
        return None
    text = value.strip()
    if text.endswith(("Z", "z")):
        text = text[:-1] + "+00:00"
    try:
        dt = datetime.fromisoformat(text)
    except ValueError:
        raise TimeRangeError(
            f"{value[:40]!r} is not an ISO 8601 date, like 2026-11-01 or 2026-11-01T12:00:00Z"
        ) from None
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)
    return dt.timestamp()


def parse_time_range(since: str | None, until: str | None) -> tuple[float | None, float | None]:
    """The API's, the CSV routes' and the command line's `since`/`until`: [since, until) in epoch seconds."""
    return parse_time(since), parse_time(until)


def time_range(request: Request) -> tuple[float | None, float | None] | Response:
    """The request's since/until, or the 400 that says what is wrong with them."""
    try:
        return parse_time_range(request.query_params.get("since"), request.query_params.get("until"))
    except TimeRangeError as exc:
        return error(400, f"since and until: {exc}")
