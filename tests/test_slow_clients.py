"""Slow clients cannot tie up `cartback serve` (issue 13): a request whose headers or body trickle
in gets 408 within the read deadline, and connections past the cap get 503 at once. Against a
real `cartback serve` process, over raw sockets."""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator

import httpx
import pytest

from tests.conftest import SHOP_ORIGIN, LiveCollector

DEADLINE = 2.0


@pytest.fixture
def live(tmp_path) -> Iterator[LiveCollector]:
    collector = LiveCollector(
        tmp_path, {"CARTBACK_READ_TIMEOUT_SECONDS": str(DEADLINE), "CARTBACK_MAX_CONNECTIONS": "6"}
    )
    collector.start()
    try:
        yield collector
    finally:
        collector.stop()


def _connect(live: LiveCollector) -> socket.socket:
    return socket.create_connection(("127.0.0.1", live.port), timeout=DEADLINE * 4)


def _trickle_until_answered(sock: socket.socket, data: bytes, every: float = 0.3) -> tuple[bytes, float]:
    """Sends `data` a byte at a time until the server answers; returns (answer, seconds taken)."""
    start = time.monotonic()
    sock.settimeout(every)
    for byte in data:
        try:
            sock.sendall(bytes([byte]))
        except OSError:
            break  # the server closed on us
        try:
            answer = sock.recv(4096)
            return answer, time.monotonic() - start
        except TimeoutError:
            continue
    sock.settimeout(DEADLINE * 4)
    return sock.recv(4096), time.monotonic() - start


def test_headers_that_trickle_get_408_within_the_deadline(live):
    with _connect(live) as sock:
        request = b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: " + b"a" * 200 + b"\r\n\r\n"
        answer, took = _trickle_until_answered(sock, request)
    assert answer.startswith(b"HTTP/1.1 408"), answer[:100]
    assert DEADLINE - 0.2 <= took < DEADLINE + 1.5
    # The server still answers everyone else.
    assert httpx.get(live.url + "/healthz", timeout=5).status_code == 200


def test_a_body_that_trickles_gets_408_within_the_deadline(live):
    site = live.create_site([SHOP_ORIGIN])
    body = b'{"id":"slow-body-0001","vid":"slow-visitor-1","type":"shown"}' + b" " * 200
    head = (
        f"POST /c/{site['key']}/event HTTP/1.1\r\nHost: 127.0.0.1\r\nOrigin: {SHOP_ORIGIN}\r\n"
        f"Content-Type: text/plain\r\nContent-Length: {len(body)}\r\n\r\n"
    ).encode()
    with _connect(live) as sock:
        sock.sendall(head)
        answer, took = _trickle_until_answered(sock, body)
    assert answer.startswith(b"HTTP/1.1 408"), answer[:100]
    assert b"not received in time" in answer
    assert took < DEADLINE + 1.5


def test_connections_past_the_cap_get_503(live):
    idle = [_connect(live) for _ in range(6)]
    try:
        time.sleep(0.3)
        r = httpx.get(live.url + "/healthz", timeout=5)
        assert r.status_code == 503
    finally:
        for s in idle:
            s.close()
    time.sleep(0.3)
    assert httpx.get(live.url + "/healthz", timeout=5).status_code == 200
