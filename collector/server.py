"""How `cartback serve` runs uvicorn so that slow clients cannot tie it up.

uvicorn times out idle keep-alive connections, but not a client that sends a request's headers
one byte at a time: such a client holds its connection (and a slot) for as long as it likes.
DeadlineH11Protocol gives every request READ_TIMEOUT seconds from its first byte (or from the end
of the previous response on a kept-alive connection) to finish its headers; past that it answers
408 and closes. The body has the same deadline, counted from the start of the request
(collector/middleware.py, ReadDeadlineMiddleware). uvicorn's `limit_concurrency` caps the open
connections: past it, new requests get 503 at once instead of piling up.
"""

from __future__ import annotations

import asyncio
from typing import Any

import h11
from uvicorn.protocols.http.h11_impl import H11Protocol

from collector.config import Config


class DeadlineH11Protocol(H11Protocol):
    """uvicorn's h11 protocol with a deadline for a request's headers (408 past it)."""

    # Set by uvicorn_options for the process (uvicorn makes the protocol objects itself).
    header_timeout: float = 10.0

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._header_deadline: asyncio.TimerHandle | None = None

    def _arm(self) -> None:
        self._disarm()
        self._header_deadline = self.loop.call_later(self.header_timeout, self._headers_too_slow)

    def _disarm(self) -> None:
        if self._header_deadline is not None:
            self._header_deadline.cancel()
            self._header_deadline = None

    def _headers_too_slow(self) -> None:
        self._header_deadline = None
        if self.transport.is_closing() or self.conn.their_state is not h11.IDLE:
            return
        if self.conn.our_state is not h11.IDLE:
            self.transport.close()
            return
        body = b"request headers not received in time\n"
        response = h11.Response(
            status_code=408,
            headers=[(b"content-type", b"text/plain; charset=utf-8"), (b"connection", b"close")],
            reason=b"Request Timeout",
        )
        try:
            self.transport.write(self.conn.send(response) or b"")
            self.transport.write(self.conn.send(h11.Data(data=body)) or b"")
            self.transport.write(self.conn.send(h11.EndOfMessage()) or b"")
        except h11.LocalProtocolError:
            pass
        self.transport.close()

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm()

    def data_received(self, data: bytes) -> None:
        super().data_received(data)
        if self.conn.their_state is not h11.IDLE:
            self._disarm()  # the headers are in; the body's deadline is the middleware's

    def on_response_complete(self) -> None:
        super().on_response_complete()
        if not self.transport.is_closing():
            self._arm()  # the next request on this connection gets the same deadline

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)


def uvicorn_options(config: Config) -> dict[str, Any]:
    """The uvicorn settings of `cartback serve` that bound slow and many clients."""
    DeadlineH11Protocol.header_timeout = config.read_timeout_seconds
    return {
        "http": DeadlineH11Protocol,
        "limit_concurrency": config.max_connections,
        # Idle keep-alive connections are closed after this (uvicorn's default is 5 s).
        "timeout_keep_alive": 5,
    }
