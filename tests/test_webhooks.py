"""Webhooks reach a real HTTP receiver, signed; a failure is retried with backoff; an
acknowledged event is never sent again; the sweep delivers them."""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import hmac
import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from collector import webhooks
from collector.schemas import SiteSettings
from collector.store import outbox as outbox_store
from collector.store.outbox import WEBHOOKS
from tests.dashboard_support import cart, ingest


async def deliver(app: Any, now: float | None = None) -> int:
    """One delivery pass, with the test receiver on loopback allowed (CARTBACK_WEBHOOK_ALLOW_PRIVATE=1)."""
    return await webhooks.deliver_due(app.state.services.store, now, allow_private=True)


class Receiver:
    """A real HTTP server on a free loopback port that records what it gets and answers as told."""

    def __init__(self) -> None:
        self.requests: list[dict[str, Any]] = []
        self.statuses: list[int] = []  # answers to give, in order; 200 once used up
        self.delay = 0.0
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                receiver.requests.append({"path": self.path, "headers": dict(self.headers), "body": body})
                if receiver.delay:
                    time.sleep(receiver.delay)
                status = receiver.statuses.pop(0) if receiver.statuses else 200
                try:
                    self.send_response(status)
                    self.send_header("Content-Length", "2")
                    self.end_headers()
                    self.wfile.write(b"ok")
                except OSError:
                    pass

            def log_message(self, *args: Any) -> None:
                pass

        class Server(ThreadingHTTPServer):
            request_queue_size = 64  # parallel deliveries must not overflow the listen backlog
            daemon_threads = True

        self.server = Server(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hooks/cartback"
        threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    yield r
    r.close()


async def hooked_site(store: Any, site: Any, url: str, events: list[str] | None = None) -> Any:
    hook: dict[str, Any] = {"url": url}
    if events is not None:
        hook["events"] = events
    return await store.sites.update(site.key, settings=SiteSettings.model_validate({"webhooks": [hook]}))


async def outbox(store: Any) -> list[dict[str, Any]]:
    return await store.db.fetchall("SELECT * FROM webhook_outbox ORDER BY id")


def expected_signature(secret: str, body: bytes) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


async def test_a_lead_reaches_the_receiver_signed_and_only_once(app, client, store, site, receiver):
    site = await hooked_site(store, site, receiver.url)
    await ingest(
        client, site, "lead", {"id": "lead-000001", "vid": "visitor-1", "email": "Ann@Example.com", "consent": True}
    )
    assert await deliver(app) == 1
    assert len(receiver.requests) == 1
    req = receiver.requests[0]
    assert req["path"] == "/hooks/cartback"
    assert req["headers"]["X-Cartback-Signature"] == expected_signature(site.webhook_secret, req["body"])
    assert hmac.compare_digest(
        req["headers"]["X-Cartback-Signature"], expected_signature(site.webhook_secret, req["body"])
    )
    assert req["headers"]["X-Cartback-Event"] == "lead" and req["headers"]["Content-Type"] == "application/json"
    assert abs(int(req["headers"]["X-Cartback-Timestamp"]) - time.time()) < 60
    body = json.loads(req["body"])
    assert body["event"] == "lead" and body["site"] == site.key
    assert body["data"]["email"] == "ann@example.com" and body["data"]["consent"] is True
    # Acknowledged: never sent again, whatever runs later.
    assert await deliver(app) == 0
    assert await deliver(app, now=time.time() + 10 * 86400) == 0
    # The same lead again (a retried request, or the address again) queues nothing new.
    await ingest(client, site, "lead", {"id": "lead-000001", "vid": "visitor-1", "email": "ann@example.com"})
    await ingest(client, site, "lead", {"id": "lead-000002", "vid": "visitor-2", "email": "ann@example.com"})
    assert await deliver(app) == 0
    assert len(receiver.requests) == 1
    (row,) = await outbox(store)
    assert row["status"] == "delivered" and row["attempts"] == 1 and row["delivered_at"]


async def test_a_failing_receiver_gets_retries_with_backoff(app, client, store, site, receiver):
    site = await hooked_site(store, site, receiver.url)
    receiver.statuses = [500, 503]
    await ingest(client, site, "lead", {"id": "lead-000001", "vid": "visitor-1", "email": "ann@example.com"})
    t0 = time.time()
    assert await deliver(app, now=t0) == 0
    (row,) = await outbox(store)
    assert row["status"] == "pending" and row["attempts"] == 1 and row["last_error"] == "HTTP 500"
    assert row["next_attempt_at"] == pytest.approx(t0 + WEBHOOKS.backoff_base)
    # Not before its time.
    assert await deliver(app, now=t0 + WEBHOOKS.backoff_base - 1) == 0
    assert len(receiver.requests) == 1
    t1 = t0 + WEBHOOKS.backoff_base
    assert await deliver(app, now=t1) == 0
    (row,) = await outbox(store)
    assert row["attempts"] == 2 and row["last_error"] == "HTTP 503"
    assert row["next_attempt_at"] == pytest.approx(t1 + 2 * WEBHOOKS.backoff_base)  # doubled
    assert await deliver(app, now=t1 + 2 * WEBHOOKS.backoff_base) == 1
    assert len(receiver.requests) == 3
    # Every attempt carried the same body, signature and delivery id.
    assert (
        len(
            {
                (r["body"], r["headers"]["X-Cartback-Signature"], r["headers"]["X-Cartback-Delivery"])
                for r in receiver.requests
            }
        )
        == 1
    )
    (row,) = await outbox(store)
    assert row["status"] == "delivered" and row["last_error"] is None
    assert await deliver(app, now=t1 + 86400) == 0 and len(receiver.requests) == 3


async def test_delivery_gives_up_after_the_last_attempt(app, client, store, site, receiver, monkeypatch):
    monkeypatch.setattr(outbox_store, "WEBHOOKS", dataclasses.replace(WEBHOOKS, max_attempts=3))
    site = await hooked_site(store, site, receiver.url)
    receiver.statuses = [500] * 10
    await ingest(client, site, "lead", {"id": "lead-000001", "vid": "visitor-1", "email": "ann@example.com"})
    now = time.time()
    for _ in range(5):
        await deliver(app, now=now)
        now += WEBHOOKS.backoff_cap
    (row,) = await outbox(store)
    assert row["status"] == "failed" and row["attempts"] == 3 and len(receiver.requests) == 3


async def test_timeouts_and_refused_connections_are_retried(app, client, store, site, receiver, monkeypatch):
    monkeypatch.setattr(webhooks, "DELIVERY_SECONDS", 0.3)
    site = await hooked_site(store, site, receiver.url)
    receiver.delay = 1.0
    await ingest(client, site, "lead", {"id": "lead-000001", "vid": "visitor-1", "email": "ann@example.com"})
    assert await deliver(app) == 0
    (row,) = await outbox(store)
    assert row["status"] == "pending" and "did not answer within" in row["last_error"]
    receiver.delay = 0
    assert await deliver(app, now=time.time() + WEBHOOKS.backoff_base + 1) == 1
    # A closed port: refused, retried later.
    receiver.close()
    await ingest(client, site, "lead", {"id": "lead-000002", "vid": "visitor-2", "email": "bob@example.com"})
    assert await deliver(app) == 0
    rows = await outbox(store)
    assert rows[1]["status"] == "pending" and rows[1]["last_error"]


async def test_concurrent_passes_deliver_each_event_once(app, client, store, site, receiver):
    site = await hooked_site(store, site, receiver.url)
    receiver.delay = 0.05
    for i in range(12):
        await ingest(client, site, "lead", {"id": f"lead-{i:06d}", "vid": f"visitor-{i}", "email": f"s{i}@example.com"})
    results = await asyncio.gather(*(deliver(app) for _ in range(4)))
    assert sum(results) == 12
    ids = [r["headers"]["X-Cartback-Delivery"] for r in receiver.requests]
    assert len(ids) == 12 and len(set(ids)) == 12


async def test_a_stale_claim_is_taken_over(app, client, store, site, receiver):
    site = await hooked_site(store, site, receiver.url)
    await ingest(client, site, "lead", {"id": "lead-000001", "vid": "visitor-1", "email": "ann@example.com"})
    now = time.time()
    # A sweeper claimed it and died.
    await store.db.write(
        lambda tx: tx.execute("UPDATE webhook_outbox SET status = 'claimed', claimed_at = ?, attempts = 1", now - 10)
    )
    assert await deliver(app, now=now) == 0  # a fresh claim is left alone
    assert await deliver(app, now=now + WEBHOOKS.stale_seconds) == 1
    (row,) = await outbox(store)
    assert row["status"] == "delivered" and row["attempts"] == 2


async def test_a_removed_webhook_gets_nothing_more(app, client, store, site, receiver):
    site = await hooked_site(store, site, receiver.url)
    await ingest(client, site, "lead", {"id": "lead-000001", "vid": "visitor-1", "email": "ann@example.com"})
    await store.sites.update(site.key, settings=SiteSettings())
    assert await deliver(app) == 0
    (row,) = await outbox(store)
    assert row["status"] == "failed" and "no longer" in row["last_error"] and receiver.requests == []


async def test_only_the_events_asked_for_are_queued(app, client, store, site, receiver):
    site = await hooked_site(store, site, receiver.url, events=["recovered"])
    await ingest(client, site, "lead", {"id": "lead-000001", "vid": "visitor-1", "email": "ann@example.com"})
    assert await outbox(store) == []


async def test_the_sweep_delivers_abandoned_and_lead_webhooks(app, client, store, site, receiver):
    from collector.recovery.sweep import sweep_once

    settings = SiteSettings.model_validate(
        {"webhooks": [{"url": receiver.url}], "recovery": {"abandon_after_minutes": 0}}
    )
    site = await store.sites.update(site.key, settings=settings)
    await ingest(client, site, "cart", cart("cart-000001", "visitor-1"))
    await ingest(client, site, "lead", {"id": "lead-000001", "vid": "visitor-1", "email": "ann@example.com"})
    summary = await sweep_once(app.state.services, now=time.time() + 1)
    assert summary["webhooks"] == 2
    events = sorted(r["headers"]["X-Cartback-Event"] for r in receiver.requests)
    assert events == ["abandoned", "lead"]
    for r in receiver.requests:
        assert r["headers"]["X-Cartback-Signature"] == expected_signature(site.webhook_secret, r["body"])
    abandoned = next(
        json.loads(r["body"]) for r in receiver.requests if r["headers"]["X-Cartback-Event"] == "abandoned"
    )
    assert abandoned["data"]["email"] == "ann@example.com"
    assert (await sweep_once(app.state.services, now=time.time() + 2))["webhooks"] == 0 and len(receiver.requests) == 2


def test_verify_helper_matches_the_header():
    body = b'{"event":"lead"}'
    header = webhooks.sign("whsec_x", body)
    assert webhooks.verify("whsec_x", body, header) and not webhooks.verify("whsec_y", body, header)
    assert header == "sha256=" + hmac.new(b"whsec_x", body, hashlib.sha256).hexdigest()
