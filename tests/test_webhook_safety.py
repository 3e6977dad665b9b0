"""Webhooks that cannot hurt: the URL checked when saved, private receivers refused, one bad receiver alone.

Receivers here are real sockets on loopback: one that never answers, one that drips its answer,
one that sends a huge body, one that speaks no HTTP, and a good one beside them.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import resource
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest
from pydantic import ValidationError

from collector import webhooks
from collector.netguard import check_webhook_url, is_public
from collector.schemas import SiteSettings
from tests.dashboard_support import ingest

Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


@contextlib.asynccontextmanager
async def tcp_receiver(handle: Handler) -> AsyncIterator[tuple[str, list[dict[str, Any]]]]:
    """A raw TCP server on a free loopback port; yields its URL and the requests it read."""
    seen: list[dict[str, Any]] = []

    async def on_connect(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            request: dict[str, Any] = {"line": await reader.readline(), "headers": {}}
            while line := (await reader.readline()).strip():
                name, _, value = line.decode().partition(":")
                request["headers"][name.strip().lower()] = value.strip()
            request["body"] = await reader.readexactly(int(request["headers"].get("content-length", "0")))
            seen.append(request)
            await handle(reader, writer)
        except (ConnectionError, asyncio.CancelledError):
            pass
        finally:
            writer.close()

    server = await asyncio.start_server(on_connect, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}/hook", seen
    finally:
        server.close()


async def answer_ok(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok")
    await writer.drain()


async def never_answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    await asyncio.sleep(60)


async def drip(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 100000\r\n\r\n")
    for _ in range(100_000):
        writer.write(b"x")
        await writer.drain()
        await asyncio.sleep(0.05)


async def huge(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 500000000\r\n\r\n")
    chunk = b"y" * 65536
    for _ in range(500_000_000 // 65536):
        writer.write(chunk)
        await writer.drain()


async def not_http(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    writer.write(b"SSH-2.0-OpenSSH_9.2\r\n\x00\x01\x02 garbage\r\n\r\n")
    await writer.drain()


async def set_hooks(store: Any, site: Any, urls: list[str]) -> Any:
    settings = SiteSettings.model_validate({"webhooks": [{"url": u, "events": ["lead"]} for u in urls]})
    return await store.sites.update(site.key, settings=settings)


async def outbox_by_url(store: Any) -> dict[str, dict[str, Any]]:
    rows = await store.db.fetchall("SELECT url, status, attempts, last_error FROM webhook_outbox ORDER BY id")
    return {r["url"]: r for r in rows}


def test_webhook_urls_are_checked_in_full_when_the_settings_are_saved() -> None:
    bad = {
        "http://shop.example:99999/hook": "port",
        "http://shop.example:0/hook": "port",
        "ftp://shop.example/hook": "http",
        "http:///hook": "host",
        "http://shop example/hook": "spaces",
        "http://shop.example/ho\nok": "control",
        "http://user:pw@shop.example/hook": "password",
        "http://-bad-.example/hook": "host name",
    }
    for url, word in bad.items():
        with pytest.raises(ValidationError) as caught:
            SiteSettings.model_validate({"webhooks": [{"url": url}]})
        assert "webhooks.0.url" in str(caught.value) and word in str(caught.value), url
    for url in ("https://hooks.shop.example/cartback", "http://203.0.113.7:8080/x", "https://[2001:db8::1]/x"):
        assert check_webhook_url(url) == url


def test_only_public_addresses_count_as_public() -> None:
    for address in (
        "127.0.0.1",
        "10.1.2.3",
        "172.16.0.1",
        "192.168.1.1",
        "169.254.169.254",
        "::1",
        "fe80::1",
        "fc00::1",
        "0.0.0.0",
        "::ffff:127.0.0.1",
        "100.64.0.1",
        "224.0.0.1",
    ):
        assert not is_public(address), address
    for address in ("93.184.216.34", "2606:4700::1111", "1.1.1.1"):
        assert is_public(address), address


async def test_a_loopback_receiver_is_refused_without_the_variable(app, client, store, site) -> None:
    async with tcp_receiver(answer_ok) as (url, seen):
        site = await set_hooks(store, site, [url])
        await ingest(client, site, "lead", {"id": "lead-000001", "vid": "visitor-1", "email": "ann@example.com"})
        assert await webhooks.deliver_due(store, allow_private=False) == 0
        row = (await outbox_by_url(store))[url]
        assert row["status"] == "pending" and "CARTBACK_WEBHOOK_ALLOW_PRIVATE" in row["last_error"]
        assert seen == []  # not even a connection was made
        assert await webhooks.deliver_due(store, time.time() + 120, allow_private=True) == 1
        assert len(seen) == 1


async def test_bad_receivers_fail_alone_and_the_pass_stays_bounded(app, client, store, site, monkeypatch) -> None:
    monkeypatch.setattr(webhooks, "DELIVERY_SECONDS", 1.0)
    async with contextlib.AsyncExitStack() as stack:
        urls = {}
        for name, handler in (
            ("good", answer_ok),
            ("silent", never_answer),
            ("drip", drip),
            ("huge", huge),
            ("garbage", not_http),
        ):
            urls[name], _ = await stack.enter_async_context(tcp_receiver(handler))
        urls["closed"] = "http://127.0.0.1:9/hook"  # the discard port: nothing listens there
        site = await set_hooks(store, site, list(urls.values()))
        await ingest(client, site, "lead", {"id": "lead-000001", "vid": "visitor-1", "email": "ann@example.com"})
        rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        started = time.monotonic()
        delivered = await webhooks.deliver_due(store, allow_private=True)
        took = time.monotonic() - started
        rss_grew_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - rss_before
    rows = await outbox_by_url(store)
    print(f"one pass over 6 receivers took {took:.2f} s; peak memory grew {rss_grew_kb} KiB")
    # The huge body is read only as far as its first few KB: its 200 counts, nothing piles up.
    assert (
        delivered == 2 and rows[urls["good"]]["status"] == "delivered" and rows[urls["huge"]]["status"] == "delivered"
    )
    assert took < 4.0 and rss_grew_kb < 50_000
    assert "did not answer within 1 s" in rows[urls["silent"]]["last_error"]
    assert "did not answer within 1 s" in rows[urls["drip"]]["last_error"]
    assert rows[urls["garbage"]]["last_error"] == "the receiver's answer was not valid HTTP"
    assert rows[urls["closed"]]["last_error"] == "could not connect to the receiver"
    for name in ("silent", "drip", "garbage", "closed"):
        assert rows[urls[name]]["status"] == "pending" and rows[urls[name]]["attempts"] == 1, name


async def test_the_v1_signature_covers_time_delivery_and_body(app, client, store, site) -> None:
    async with tcp_receiver(answer_ok) as (url, seen):
        site = await set_hooks(store, site, [url])
        await ingest(client, site, "lead", {"id": "lead-000001", "vid": "visitor-1", "email": "ann@example.com"})
        assert await webhooks.deliver_due(store, allow_private=True) == 1
    (request,) = seen
    headers, body = request["headers"], request["body"]
    delivery, header = headers["x-cartback-delivery"], headers["x-cartback-signature-v1"]
    assert header.startswith(f"t={headers['x-cartback-timestamp']},v1=")
    assert webhooks.verify_v1(site.webhook_secret, body, delivery, header)
    assert webhooks.verify(
        site.webhook_secret, body, headers["x-cartback-signature"]
    )  # the old header, one more release
    assert headers["host"] == url.split("/")[2]
    assert not webhooks.verify_v1(site.webhook_secret, body, str(int(delivery) + 1), header)  # another delivery
    assert not webhooks.verify_v1(site.webhook_secret, body + b" ", delivery, header)  # another body
    assert not webhooks.verify_v1("whsec_other", body, delivery, header)
    old = webhooks.sign_v1(site.webhook_secret, str(int(time.time()) - 3600), delivery, body)
    assert not webhooks.verify_v1(site.webhook_secret, body, delivery, old)  # replayed an hour later
    assert json.loads(body)["event"] == "lead"
