"""Webhook delivery: the outbox rows that collector/store/outbox.py queued, POSTed with retries.

Each event (`lead`, `abandoned`, `recovered`) for each webhook URL in the site's settings is
one webhook_outbox row, unique by (site, url, event, ref), so one event is queued once.
`deliver_due(store)` (called by the sweep, and so by `cartback send-due`) claims the rows
that are due (the claim protocol of collector/store/claims.py, shared with the reminders),
POSTs them and records the outcome:

- 2xx: `delivered`, never sent again;
- anything else (a status, a timeout, a refused connection): `pending` again, due after an
  exponential backoff (1 minute, doubling, at most 6 hours), until 10 attempts, then `failed`;
- a row claimed more than 5 minutes ago (its sweeper died mid-way) is claimed again; its
  outcome is recorded only by the latest claim.

The request, as a receiver sees it:

    POST <url>
    Content-Type: application/json
    User-Agent: Cartback-Webhooks/1
    X-Cartback-Event: lead | abandoned | recovered
    X-Cartback-Delivery: <outbox id, the same on every retry of one event>
    X-Cartback-Timestamp: <unix seconds of this attempt>
    X-Cartback-Signature: sha256=<hex HMAC-SHA256 of the raw body, keyed with the site's webhook secret>

    {"event": "lead", "site": "pk_...", "created_at": 1760000000.0, "data": {...}}

Verify the signature over the raw bytes of the body before parsing it, with a constant-time
comparison; deduplicate on X-Cartback-Delivery (a 2xx that gets lost in the network makes the
event arrive again). The secret is shown on the site's page in the dashboard.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import logging
import secrets
import time

import httpx

from collector.store import Row, Store, outbox

log = logging.getLogger("cartback.webhooks")

TIMEOUT_SECONDS = 10.0
BATCH = 50
CONCURRENCY = 8
USER_AGENT = "Cartback-Webhooks/1"


def sign(secret: str, body: bytes) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def verify(secret: str, body: bytes, header: str) -> bool:
    """For receivers written in Python: does the X-Cartback-Signature header match the body?"""
    return hmac.compare_digest(sign(secret, body), header or "")


async def _post(client: httpx.AsyncClient, row: Row, secret: str) -> tuple[bool, str | None]:
    body = row["body"].encode()
    headers = {
        "Content-Type": "application/json",
        "User-Agent": USER_AGENT,
        "X-Cartback-Event": row["event"],
        "X-Cartback-Delivery": str(row["id"]),
        "X-Cartback-Timestamp": str(int(time.time())),
        "X-Cartback-Signature": sign(secret, body),
    }
    try:
        response = await client.post(row["url"], content=body, headers=headers)
    except httpx.HTTPError as exc:
        return False, f"{type(exc).__name__}: {exc}"[:500] or type(exc).__name__
    if 200 <= response.status_code < 300:
        return True, None
    return False, f"HTTP {response.status_code}"


async def deliver_due(store: Store, now: float | None = None, *, client: httpx.AsyncClient | None = None) -> int:
    """One pass: delivers every due webhook; returns how many were acknowledged (2xx)."""
    db = store.db
    delivered = 0
    token = secrets.token_hex(16)
    own_client = client is None
    if client is None:
        client = httpx.AsyncClient(timeout=TIMEOUT_SECONDS, follow_redirects=False, trust_env=False)
    try:
        while True:
            rows = await outbox.claim_due(db, time.time() if now is None else now, token, BATCH)
            if not rows:
                break
            gate = asyncio.Semaphore(CONCURRENCY)

            async def one(row: Row, client: httpx.AsyncClient = client, gate: asyncio.Semaphore = gate) -> bool:
                site = await store.sites.by_id(row["site_id"])
                if site is None or row["url"] not in {h.url for h in site.settings.webhooks}:
                    # The owner removed the webhook: nothing more goes to that URL.
                    await outbox.discard(db, row, "the webhook is no longer in the site's settings")
                    return False
                async with gate:
                    ok, error = await _post(client, row, site.webhook_secret)
                if not ok:
                    log.warning("webhook %s to %s failed (attempt %s): %s", row["id"], row["url"], row["attempts"], error)
                await outbox.finish(db, row, ok, error, time.time() if now is None else now)
                return ok

            results = await asyncio.gather(*(one(r) for r in rows))
            delivered += sum(results)
            if len(rows) < BATCH:
                break
    finally:
        if own_client:
            await client.aclose()
    return delivered
