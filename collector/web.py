"""Small helpers shared by the routes: JSON errors, bounded body reading, CORS headers."""

from __future__ import annotations

from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, Response

MAX_BODY = 32 * 1024


class BodyTooLarge(Exception):
    pass


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
