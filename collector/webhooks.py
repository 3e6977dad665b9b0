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
    X-Cartback-Signature-V1: t=<the timestamp>,v1=<hex HMAC-SHA256 of "<t>.<delivery>.<raw body>">
    X-Cartback-Signature: sha256=<hex HMAC-SHA256 of the raw body> (the first release's; for one more release)

    {"event": "lead", "site": "pk_...", "created_at": 1760000000.0, "data": {...}}

Both are keyed with the site's webhook secret. Verify X-Cartback-Signature-V1 over the raw bytes
of the body before parsing it, with a constant-time comparison, and refuse a timestamp more than
a few minutes old; deduplicate on X-Cartback-Delivery (a 2xx that gets lost in the network makes
the event arrive again). The secret is shown on the site's page in the dashboard.

Where a delivery may go (collector/netguard.py): the URL's form is checked when the settings are
saved; the address after DNS on every delivery: loopback, private and link-local receivers are
refused unless CARTBACK_WEBHOOK_ALLOW_PRIVATE=1. A delivery has DELIVERY_SECONDS in all, from
resolving the name to the last byte read, and reads at most MAX_ANSWER_BYTES of the answer.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import logging
import secrets
import time

import httpx

from collector import netguard
from collector.store import Row, Store, outbox

log = logging.getLogger("cartback.webhooks")

# One delivery, from resolving the name to the last byte of the answer read.
DELIVERY_SECONDS = 10.0
# Well under the whole: a port that does not answer reads as "could not connect", like a closed one.
CONNECT_SECONDS = 4.0
# What is read of an answer: its status is all that counts, so a huge body costs nothing.
MAX_ANSWER_BYTES = 4096
BATCH = 50
CONCURRENCY = 8
USER_AGENT = "Cartback-Webhooks/1"


def sign(secret: str, body: bytes) -> str:
    """The signature of the first release (X-Cartback-Signature): the body alone. Kept for one release."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def sign_v1(secret: str, timestamp: str, delivery: str, body: bytes) -> str:
    """X-Cartback-Signature-V1: `t=<unix seconds>,v1=<hex HMAC-SHA256 of "t.delivery.body">`.

    The timestamp and the delivery id are signed with the body, so a captured delivery cannot be
    replayed later or as another delivery with fresh headers."""
    mac = hmac.new(secret.encode(), f"{timestamp}.{delivery}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={mac}"


def verify(secret: str, body: bytes, header: str) -> bool:
    """For receivers written in Python: does the X-Cartback-Signature header match the body?"""
    return hmac.compare_digest(sign(secret, body), header or "")


def verify_v1(secret: str, body: bytes, delivery: str, header: str, tolerance: float = 300.0) -> bool:
    """For receivers written in Python: X-Cartback-Signature-V1 matches, and is at most `tolerance` seconds old."""
    fields = dict(part.split("=", 1) for part in (header or "").split(",") if "=" in part)
    timestamp = fields.get("t", "")
    if not timestamp.isdigit() or abs(time.time() - int(timestamp)) > tolerance:
        return False
    return hmac.compare_digest(sign_v1(secret, timestamp, delivery, body), header)


async def _post(client: httpx.AsyncClient, row: Row, secret: str, allow_private: bool) -> tuple[bool, str | None]:
    """One delivery: (acknowledged, why not). Never raises: whatever goes wrong is this delivery's alone."""
    body = row["body"].encode()
    timestamp, delivery = str(int(time.time())), str(row["id"])
    headers = {
        "Content-Type": "application/json",
        "User-Agent": USER_AGENT,
        "X-Cartback-Event": row["event"],
        "X-Cartback-Delivery": delivery,
        "X-Cartback-Timestamp": timestamp,
        "X-Cartback-Signature": sign(secret, body),
        "X-Cartback-Signature-V1": sign_v1(secret, timestamp, delivery, body),
    }
    try:
        url = httpx.URL(row["url"])
        host = url.raw_host.decode("ascii")
        async with asyncio.timeout(DELIVERY_SECONDS):
            # Resolved here and checked, then connected to by address, so DNS cannot hand the
            # connection a private address after the check (the name still goes in Host and SNI).
            address = await netguard.resolve(host, url.port or (443 if url.scheme == "https" else 80), allow_private)
            headers["Host"] = url.netloc.decode("ascii")
            extensions = {"sni_hostname": host} if url.scheme == "https" else {}
            request = client.build_request(
                "POST", url.copy_with(host=address), content=body, headers=headers, extensions=extensions
            )
            response = await client.send(request, stream=True)
            try:
                read = 0
                async for chunk in response.aiter_raw():
                    read += len(chunk)
                    if read >= MAX_ANSWER_BYTES:
                        break
            finally:
                await response.aclose()
    except netguard.BlockedAddress as exc:
        return False, f"{exc} (set CARTBACK_WEBHOOK_ALLOW_PRIVATE=1 for a receiver on this network)"
    except (httpx.ConnectError, httpx.ConnectTimeout):
        # One message for refused, filtered, unreachable and unresolvable alike: the owner learns
        # that the receiver is down, not which ports of a host are open.
        return False, "could not connect to the receiver"
    except (TimeoutError, httpx.TimeoutException):  # before OSError: TimeoutError is one
        return False, f"the receiver did not answer within {DELIVERY_SECONDS:g} s"
    except OSError:  # the name did not resolve
        return False, "could not connect to the receiver"
    except Exception as exc:  # noqa: BLE001 - any failure is this delivery's alone: reset, bad TLS, bad HTTP
        log.info("webhook %s: %s", row["id"], exc)
        return False, "the receiver's answer was not valid HTTP"
    if 200 <= response.status_code < 300:
        return True, None
    return False, f"HTTP {response.status_code}"


async def deliver_due(
    store: Store, now: float | None = None, *, allow_private: bool = False, client: httpx.AsyncClient | None = None
) -> int:
    """One pass: delivers every due webhook; returns how many were acknowledged (2xx)."""
    db = store.db
    delivered = 0
    token = secrets.token_hex(16)
    own_client = client is None
    if client is None:
        timeout = httpx.Timeout(DELIVERY_SECONDS, connect=min(CONNECT_SECONDS, DELIVERY_SECONDS / 2))
        client = httpx.AsyncClient(timeout=timeout, follow_redirects=False, trust_env=False)
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
                    ok, error = await _post(client, row, site.webhook_secret, allow_private)
                if not ok:
                    log.warning(
                        "webhook %s to %s failed (attempt %s): %s", row["id"], row["url"], row["attempts"], error
                    )
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
