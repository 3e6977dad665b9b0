"""Security headers for every HTML response of the collector, and the deadline for reading a request body.

- The dashboard (/admin): a strict Content-Security-Policy (scripts and styles from this
  origin only, no inline script), frame-ancestors 'none' and X-Frame-Options DENY,
  Referrer-Policy same-origin (nothing leaves for other sites), X-Content-Type-Options nosniff.
- Other HTML pages (unsubscribe pages and the like): the same, but inline styles and
  images from anywhere are allowed (their templates may style inline) and the referrer
  policy is strict-origin-when-cross-origin.
- /demo: the demo storefront has an inline script and runs the snippet, like a real shop
  page; it gets no CSP (it is a stand-in for somebody else's page), but framing and
  sniffing are still refused.
A response that sets its own Content-Security-Policy (the mailbox's sandboxed email view)
keeps it. Every response, HTML or not, gets X-Content-Type-Options: nosniff.
"""

from __future__ import annotations

import asyncio

from starlette.datastructures import MutableHeaders
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

ADMIN_CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; font-src 'self';"
    " connect-src 'self'; frame-src 'self'; form-action 'self'; base-uri 'none'; object-src 'none';"
    " frame-ancestors 'none'"
)
PAGE_CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data: https: http:;"
    " form-action 'self'; base-uri 'none'; object-src 'none'; frame-ancestors 'none'"
)
NO_CSP_PATHS = ("/demo",)


def headers_for(path: str) -> dict[str, str]:
    if path == "/admin" or path.startswith("/admin/"):
        return {
            "Content-Security-Policy": ADMIN_CSP,
            "X-Frame-Options": "DENY",
            # Not no-referrer: with it, Chromium sends "Origin: null" on the dashboard's own forms.
            "Referrer-Policy": "same-origin",
            "Cache-Control": "no-store",
        }
    base = {"X-Frame-Options": "DENY", "Referrer-Policy": "strict-origin-when-cross-origin"}
    if path in NO_CSP_PATHS or path.startswith(tuple(p + "/" for p in NO_CSP_PATHS)):
        return base
    return {"Content-Security-Policy": PAGE_CSP, **base}


class SecurityHeadersMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path: str = scope.get("path", "")

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                headers.setdefault("X-Content-Type-Options", "nosniff")
                if headers.get("content-type", "").startswith("text/html"):
                    own_csp = "content-security-policy" in headers
                    for name, value in headers_for(path).items():
                        if name == "Content-Security-Policy" and own_csp:
                            continue
                        if name == "X-Frame-Options" and own_csp:
                            continue  # a response with its own CSP sets its own framing rules
                        headers.setdefault(name, value)
            await send(message)

        await self.app(scope, receive, send_with_headers)


class ReadDeadlineMiddleware:
    """A request's body must arrive within `seconds` of the request's start, or it gets 408.

    A client that trickles its body (slowloris) would otherwise hold a connection and a task for
    as long as it likes. The deadline is one total for the whole body, not one per read. The 408
    goes through the app's HTTPException handler, so ingest and the API answer it as JSON.
    (The deadline for the headers is the server's: collector/server.py.)
    """

    def __init__(self, app: ASGIApp, seconds: float) -> None:
        self.app = app
        self.seconds = seconds

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.seconds
        body_done = False

        async def timed_receive() -> Message:
            nonlocal body_done
            if body_done:
                return await receive()  # after the body, receive only waits for a disconnect
            try:
                async with asyncio.timeout(max(0.0, deadline - loop.time())):
                    message = await receive()
            except TimeoutError:
                raise HTTPException(408, "the request body was not received in time") from None
            if message["type"] != "http.request" or not message.get("more_body", False):
                body_done = True
            return message

        await self.app(scope, timed_receive, send)
